from __future__ import annotations

from typing import Any

from django import template
from django.utils.html import format_html, json_script
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from contacts.people import person_name
from contacts.phones import for_people

from ..desk import desk_config
from ..selectors import call_list_for_contact
from ..visibility import calls_visible_to
from ..words import end_reason_words, leg_state_words

register = template.Library()


@register.filter
def phone(value: str | None) -> str:
    """A number formatted for people (+7 921 946-27-61); raw when it is not a phone number."""
    return for_people(value or "")


@register.filter
def duration(seconds: int | None) -> str:
    if seconds is None:
        return "—"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@register.inclusion_tag("calls/_contact_calls.html", takes_context=True)
def contact_calls(context: Any, contact: Any, limit: int = 50) -> dict[str, Any]:
    """The contact page's call history (newest first)."""
    # Only the calls the viewer may see (team mode: another team's calls with this client stay hidden).
    request = context.get("request")
    user = getattr(request, "user", None)
    calls = list(calls_visible_to(user, call_list_for_contact(contact_id=contact.pk))[: limit + 1])
    # The call table shows players by permission: hand it the page's perms.
    return {
        "calls": calls[:limit],
        "more": len(calls) > limit,
        "contact": contact,
        "perms": context.get("perms"),
    }


@register.simple_tag(takes_context=True)
def desk_config_script(context: Any) -> str:
    """The desk's configuration as <script type="application/json" id="live-config"> (base.html)."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return ""
    return json_script(desk_config(user), "live-config")


@register.simple_tag
def end_reason(call: Any) -> str:
    """The call's end reason in words (raw values: admin, exports)."""
    return end_reason_words(call.end_reason, call.end_reason_code) or "—"


@register.simple_tag
def call_operator(call: Any) -> SafeString | str:
    """Who took the call, once and in words: the operator's name; the workplace only when it says more (it
    is not the operator's own, or nobody is linked to it), by its name and never by its SIP ID."""
    user, workplace = call.operator, call.workplace
    if user is None:
        if workplace is None or not workplace.name:
            return "—"
        return format_html('{} <span class="muted">· {}</span>', workplace.name, _("workplace"))
    name = person_name(user)
    if workplace is None or workplace.user_id == user.pk or not workplace.name:
        return name
    note = _("workplace “%(name)s”") % {"name": workplace.name}
    return format_html('{} <span class="muted">· {}</span>', name, note)


@register.filter
def leg_state(state: str) -> str:
    return leg_state_words(state)


@register.filter
def leg_party(leg: Any) -> str:
    """Whose leg a history line is about, for people: the operator or workplace, the company's line, the
    client (never a Call-ID)."""
    if leg.is_line_leg:
        return str(_("the company's line"))
    workplace = leg.workplace
    if workplace is not None:
        user = workplace.user
        return person_name(user) if user is not None else workplace.name or workplace.sip_id
    return str(_("client"))
