"""``manage.py mtt_sandbox``: serve the MTT PBX sandbox (a plain WSGI app) with werkzeug."""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from werkzeug.serving import run_simple

from sandbox.app import create_app
from sandbox.config import SandboxConfig
from sandbox.quirks import MODES, check_quirks

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Run the local MTT PBX sandbox: OAuth server, Open API methods and call notification scenarios."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=settings.SANDBOX_PORT)
        parser.add_argument(
            "--notify-url",
            default=None,
            help="Where scenario notifications go (default: the redirect_uri the CRM last authorized with).",
        )
        parser.add_argument(
            "--notify-base",
            default=None,
            help="Send notifications to this scheme://host:port, not the Redirect URI's (docker compose).",
        )
        parser.add_argument(
            "--control-password",
            default=settings.SANDBOX_CONTROL_PASSWORD,
            help="HTTP Basic password (login SANDBOX_LOGIN) of the control panel and /_sandbox/; "
            "required to listen beyond loopback (default SANDBOX_CONTROL_PASSWORD).",
        )
        parser.add_argument("--access-token-lifetime", type=int, default=7200, help="Seconds (guide: 7200).")
        parser.add_argument(
            "--public-url", default=None, help="Base of recording links (default http://host:port)."
        )
        parser.add_argument(
            "--step-delay", type=float, default=0.3, help="Seconds between scenario notifications."
        )
        parser.add_argument(
            "--mode",
            default=None,
            help="friendly, realistic, or quirks separated by commas (sandbox/quirks.py); "
            "default SANDBOX_MODE.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["control_password"] and not _loopback(options["host"]):
            raise CommandError(
                f"The sandbox would listen on {options['host']} with no login: anyone who reaches it "
                "could play calls into the CRM. Set SANDBOX_CONTROL_PASSWORD (or --control-password), "
                "or listen on 127.0.0.1."
            )
        quirks = _quirks(options["mode"] if options["mode"] is not None else settings.SANDBOX_MODE)
        config = SandboxConfig(
            host=options["host"],
            port=options["port"],
            client_id=settings.SANDBOX_CLIENT_ID,
            client_secret=settings.SANDBOX_CLIENT_SECRET,
            login=settings.SANDBOX_LOGIN,
            password=settings.SANDBOX_PASSWORD,
            control_password=options["control_password"] or None,
            notify_url=options["notify_url"],
            notify_base=options["notify_base"],
            access_token_lifetime=options["access_token_lifetime"],
            public_url=options["public_url"],
            step_delay=options["step_delay"],
            quirks=quirks,
        )
        app = create_app(config)
        self.stdout.write(
            f"MTT sandbox running at http://{config.host}:{config.port}/ "
            f"(client_id={config.client_id}, portal login={config.login}, mode {config.mode})"
        )
        # Whoever started us (make run) may be waiting for this line on a pipe.
        self.stdout.flush()
        try:
            run_simple(config.host, config.port, app, threaded=True, use_reloader=False)
        finally:
            app.shutdown()


def _quirks(mode: str) -> frozenset[str]:
    """A mode's quirks: a preset's name, or quirk names separated by commas."""
    mode = mode.strip()
    if mode in MODES:
        return MODES[mode]
    try:
        return check_quirks(name.strip() for name in mode.split(",") if name.strip())
    except ValueError as exc:
        raise CommandError(f"SANDBOX_MODE / --mode: {exc}; or one of {', '.join(MODES)}") from exc


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
