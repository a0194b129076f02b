"""`python manage.py mtt …`: scripted setup and maintenance of MTT integrations."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from integrations.models import Integration
from integrations.mtt.errors import MttError
from integrations.services import integration_create, integration_sync_directory


class Command(BaseCommand):
    help = "Manage MTT integrations: add, list, sync, rotate-keys, demo."

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
        self.stdout.write(f"Re-encrypted the secrets of {count} integration(s) with the first key.")

    def handle_demo(self, **options: Any) -> None:
        from integrations.demo import demo_setup

        for line in demo_setup(sandbox_url=options.get("sandbox_url"), wait=options["wait"]):
            self.stdout.write(line)
