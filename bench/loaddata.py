"""bench/load.py's data, created with the ORM before the load: the sandbox's directory, the integration
connected through a real OAuth round trip, the lines, and the operators (a workplace, a personal client and
a logged-in session each)."""

from __future__ import annotations

from dataclasses import dataclass

from _common import SandboxProcess
from loadplan import LINE, PARK_LINE, known_client, operator_sip


@dataclass
class World:
    notify_path: str
    sessions: list[str]  # session key of each operator


def setup_data(sandbox: SandboxProcess, operators: int) -> World:
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.sessions.backends.db import SessionStore
    from django.utils import timezone

    from contacts.models import Contact
    from contacts.services import contact_add_number
    from integrations.models import ExternalNumber, Integration, Workplace

    # The sandbox's directory: makeCall accepts only workplaces it knows.
    sandbox.control(
        "POST",
        "directory",
        {
            "workplaces": [{"workplace": operator_sip(i), "name": f"Оператор {i}"} for i in range(operators)],
            "terminals": [],
            "numbers": [{"number": LINE, "type": None}, {"number": PARK_LINE, "type": None}],
        },
    )
    integration = Integration.objects.create(
        name="bench",
        client_id=sandbox.client_id,
        client_secret=sandbox.client_secret,
        oauth_url=sandbox.url,
        api_url=sandbox.url,
        status=Integration.Status.CONNECTED,
        last_sync_at=timezone.now(),
    )
    tokens = sandbox.tokens(redirect_uri=f"http://127.0.0.1{integration.notify_path}")
    now = timezone.now()
    integration.access_token = tokens["access_token"]
    integration.access_token_expires_at = now + timezone.timedelta(seconds=tokens["expires_in"])
    integration.refresh_token = tokens["refresh_token"]
    integration.refresh_token_expires_at = now + timezone.timedelta(days=3)
    integration.save()
    ExternalNumber.objects.create(integration=integration, number=LINE)
    ExternalNumber.objects.create(integration=integration, number=PARK_LINE, is_parking=True)
    users = get_user_model().objects
    sessions = []
    for i in range(operators):
        user = users.create_user(f"op{i:04d}", first_name="Оператор", last_name=str(i))
        Workplace.objects.create(
            integration=integration, sip_id=operator_sip(i), name=f"Оператор {i}", user=user
        )
        # The operator's own client: a parked call from this number is transferred to them when free.
        contact = Contact.objects.create(name=f"Клиент {i}", personal_manager=user)
        contact_add_number(contact=contact, number=known_client(i))
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        sessions.append(session.session_key or "")
    return World(notify_path=integration.notify_path, sessions=sessions)
