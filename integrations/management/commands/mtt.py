"""`python manage.py mtt …`: scripted setup and maintenance of MTT integrations."""

from __future__ import annotations

import signal
import threading
from argparse import ArgumentParser
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from integrations.applier import Applier, applier_drain
from integrations.demo import demo_setup
from integrations.models import Integration
from integrations.mtt.errors import MttError
from integrations.services import (
    integration_create,
    integration_rotate_notify_token,
    integration_sync_directory,
)
from integrations.spool import spool_replay
from monitoring.report import health_report
from webhooks.models import WebhookSubscription


class Command(BaseCommand):
    help = (
        "Manage MTT integrations: add, list, sync, rotate-keys, rotate-notify-token, spool-replay, applier, "
        "health, demo."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)

        add = sub.add_parser(
            "add", help="Create an integration; prints its notify URL (the Redirect URI) last."
        )
        add.add_argument("name")
        add.add_argument("--client-id", required=True)
        add.add_argument("--client-secret", required=True)
        add.add_argument("--oauth-url", default=None)
        add.add_argument("--api-url", default=None)

        sub.add_parser("list", help="One line per integration: name, status, notify URL (tab-separated).")

        sync = sub.add_parser("sync", help="Sync workplaces, terminals and numbers now.")
        sync.add_argument("name", nargs="?", default=None)

        sub.add_parser(
            "rotate-keys", help="Re-encrypt every stored secret with the first FIELD_ENCRYPTION_KEYS key."
        )

        rotate = sub.add_parser(
            "rotate-notify-token",
            help="Give an integration a new notify URL (Redirect URI); prints it last. The old one is "
            "accepted for the grace period (NOTIFY_TOKEN_GRACE_HOURS).",
        )
        rotate.add_argument("integration", help="the integration's id (or its name)")
        rotate.add_argument(
            "--grace-hours",
            type=float,
            default=None,
            help="hours the old notify URL is still accepted (default NOTIFY_TOKEN_GRACE_HOURS; 0: none)",
        )

        sub.add_parser(
            "spool-replay",
            help="Store the notifications spooled while the database was down (NOTIFY_SPOOL_DIR) now.",
        )

        applier_help = (
            "Apply stored notifications as they arrive: the one process that applies them (run one or more). "
            "Woken by PostgreSQL NOTIFY, or looking every 0.1 s on SQLite; stores what the notify URL "
            "spooled; stops on SIGTERM or Ctrl-C (integrations/applier.py)."
        )
        applier = sub.add_parser("applier", help=applier_help, description=applier_help)
        applier.add_argument(
            "--once", action="store_true", help="apply what is due now, then exit (no waiting)"
        )

        health_help = (
            "Print the health facts and warnings of each integration (monitoring/report.py). Exit "
            "code 0: all good; 1: a warning needs a person (needs reconnect, refresh token expiring "
            "within 24 h, no notifications, inbox backlog, recordings failing); 2: nothing to check "
            "(no integration, none connected, unknown --integration) or the database cannot be read."
        )
        health = sub.add_parser("health", help=health_help, description=health_help)
        health.add_argument("--integration", default=None, help="the integration's id or name (default: all)")
        health.add_argument("--json", action="store_true", help="one JSON document instead of text")

        demo = sub.add_parser("demo", help="Demo data: users, and an integration connected to the sandbox.")
        demo.add_argument("--sandbox-url", default=None)
        demo.add_argument(
            "--wait", type=float, default=30.0, help="Seconds to wait for the sandbox to answer."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        handler = getattr(self, "handle_" + action.replace("-", "_"))
        handler(**options)

    def handle_add(self, *, name: str, client_id: str, client_secret: str, **options: Any) -> None:
        if Integration.objects.filter(name=name).exists():
            raise CommandError(f"An integration named {name!r} exists already.")
        try:
            integration = integration_create(
                name=name,
                client_id=client_id,
                client_secret=client_secret,
                oauth_url=options.get("oauth_url"),
                api_url=options.get("api_url"),
            )
        except ValidationError as exc:
            raise CommandError(
                "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
            ) from None
        self.stdout.write(
            f"Created integration {integration.name!r}. Paste this Redirect URI into the MTT portal,"
        )
        self.stdout.write("then press Connect on its admin page:")
        self.stdout.write(integration.notify_url)

    def handle_list(self, **options: Any) -> None:
        for integration in Integration.objects.order_by("name"):
            self.stdout.write("\t".join([integration.name, integration.status, integration.notify_url]))

    def handle_sync(self, *, name: str | None, **options: Any) -> None:
        qs = Integration.objects.all()
        if name:
            qs = qs.filter(name=name)
            if not qs.exists():
                raise CommandError(f"No integration named {name!r}.")
        else:
            qs = qs.filter(status=Integration.Status.CONNECTED)
        failed = False
        for integration in qs.order_by("name"):
            try:
                result = integration_sync_directory(integration_id=integration.pk)
            except MttError as exc:
                failed = True
                self.stderr.write(f"{integration.name}: sync failed: {exc}")
            else:
                self.stdout.write(f"{integration.name}: {result}")
        if failed:
            raise CommandError("Some integrations failed to sync.")

    def handle_rotate_keys(self, **options: Any) -> None:
        fields = ["client_secret", "access_token", "refresh_token"]
        count = 0
        with transaction.atomic():
            # Reading decrypts with whichever key fits (MultiFernet); saving encrypts with the first
            # key, so after this the old keys can be removed from FIELD_ENCRYPTION_KEYS.
            for integration in Integration.objects.select_for_update().order_by("pk"):
                integration.save(update_fields=fields)
                count += 1
            # The webhook subscriptions' signing secrets are encrypted with the same keys.
            hooks = 0
            for subscription in WebhookSubscription.objects.select_for_update().order_by("pk"):
                subscription.save(update_fields=["secret"])
                hooks += 1
        self.stdout.write(
            f"Re-encrypted the secrets of {count} integration(s) and {hooks} webhook subscription(s) "
            "with the first key."
        )

    def handle_rotate_notify_token(
        self, *, integration: str, grace_hours: float | None, **options: Any
    ) -> None:
        hours = settings.NOTIFY_TOKEN_GRACE_HOURS if grace_hours is None else grace_hours
        if hours < 0:
            raise CommandError("--grace-hours cannot be negative.")
        lookup = {"pk": int(integration)} if integration.isdigit() else {"name": integration}
        found = Integration.objects.filter(**lookup).values_list("pk", flat=True).first()
        if found is None:
            raise CommandError(f"No integration {integration!r}.")
        rotation = integration_rotate_notify_token(integration_id=found, grace=timedelta(hours=hours))
        if rotation.previous_valid_until:
            until = timezone.localtime(rotation.previous_valid_until).strftime("%Y-%m-%d %H:%M %Z")
            self.stdout.write(f"{rotation.integration.name}: the old notify URL is accepted until {until}.")
        else:
            self.stdout.write(f"{rotation.integration.name}: the old notify URL is refused from now on.")
        self.stdout.write(
            "Paste the new Redirect URI into the MTT portal (Открытое API → Мои интеграции) before then:"
        )
        self.stdout.write(rotation.new_url)

    def handle_spool_replay(self, **options: Any) -> None:
        result = spool_replay()
        self.stdout.write(f"Notification spool: {result}")
        if result.busy or result.database_down or result.failed:
            raise CommandError("Some spooled notifications are still waiting (see above and the log).")

    def handle_applier(self, *, once: bool, **options: Any) -> None:
        if once:
            result = applier_drain()
            self.stdout.write(
                f"Applied {result.applied}, ignored {result.ignored}, failed {result.failed} notification(s)."
            )
            return
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_args: stop.set())
        Applier(stop=stop).run()

    def handle_health(self, *, integration: str | None, json: bool, **options: Any) -> None:
        report = health_report(integration=integration, as_json=json)
        if report.text:
            self.stdout.write(report.text)
        if report.error:
            self.stderr.write(report.error)
        if report.code:
            raise SystemExit(report.code)

    def handle_demo(self, **options: Any) -> None:
        for line in demo_setup(sandbox_url=options.get("sandbox_url"), wait=options["wait"]):
            self.stdout.write(line)
