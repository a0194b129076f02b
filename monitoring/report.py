"""`python manage.py mtt health`: the health panel's facts as text or JSON, and an exit code.

Exit codes (also in README and the command's help):
  0  every integration checked is connected and no warning holds;
  1  at least one warning needs a person: needs reconnect, refresh token expiring within 24 h, no
     notification for HEALTH_SILENCE_HOURS of business hours, inbox backlog, recordings failing;
  2  nothing to check or cannot check: no integration, no connected one (none ever connected), the
     integration asked for does not exist, or the database could not be read.

Read-only: the warnings are computed now from the facts (so it works without beat); it opens no
episode and sends no mail (beat's check does). Open episodes recorded by beat are listed too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from django.db import DatabaseError
from django.utils import timezone
from django.utils.timesince import timesince, timeuntil
from django.utils.translation import gettext as _

from integrations.models import Integration

from .selectors import (
    HealthFacts,
    HealthIssue,
    duration_words,
    integration_health,
    open_warnings,
    warnings_for,
)

EXIT_OK = 0
EXIT_WARNING = 1
EXIT_UNKNOWN = 2


@dataclass
class Report:
    code: int
    text: str  # for stdout
    error: str = ""  # for stderr


def _when(value: datetime | None, now: datetime, *, future: bool = False) -> str:
    if value is None:
        return _("never") if not future else "—"
    stamp = timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S")
    if future:
        left = _("in %(time)s") % {"time": timeuntil(value, now)} if value > now else _("expired")
        return f"{stamp} ({left})"
    return f"{stamp} ({_('%(time)s ago') % {'time': timesince(value, now)}})"


def _text(facts: HealthFacts, issues: list[HealthIssue], episodes: dict[str, datetime]) -> list[str]:
    now = facts.now
    rows: list[tuple[str, str]] = [
        (_("connection status"), f"{facts.status_label} ({facts.status})"),
        (
            _("last error"),
            f"{facts.last_error} ({_when(facts.last_error_at, now)})" if facts.last_error else "—",
        ),
        (_("access token expires"), _when(facts.access_token_expires_at, now, future=True)),
        (_("refresh token expires"), _when(facts.refresh_token_expires_at, now, future=True)),
        (_("last successful token refresh"), _when(facts.tokens_refreshed_at, now)),
        (_("last notification received"), _when(facts.last_notification_at, now)),
        (_("notifications in the last hour"), str(facts.notifications_last_hour)),
        (
            _("quiet for (business hours)"),
            duration_words(facts.quiet_for) if facts.quiet_for is not None else "—",
        ),
        (
            _("inbox rows not yet applied"),
            _("%(pending)s (waiting too long: %(backlog)s; set aside as failed: %(failed)s)")
            % {"pending": facts.inbox_pending, "backlog": facts.inbox_backlog, "failed": facts.inbox_failed},
        ),
        (
            _("MTT requests in the last hour"),
            _("%(requests)s, errors %(errors)s")
            % {"requests": facts.requests_last_hour, "errors": facts.errors_last_hour},
        ),
        (
            _("limiter waits in the last hour"),
            _("%(count)s, %(total)s ms in all, longest %(longest)s ms")
            % {
                "count": facts.limiter_waits_last_hour,
                "total": facts.limiter_wait_ms_last_hour,
                "longest": facts.limiter_wait_max_ms_last_hour,
            },
        ),
        (
            _("recordings"),
            _("waiting %(pending)s, failed in 24 h %(failed)s, expiring at MTT unstored %(expiring)s")
            % {
                "pending": facts.recordings_pending,
                "failed": facts.recordings_failed_24h,
                "expiring": facts.recordings_expiring,
            },
        ),
        (
            _("calls ended with no final notification, last 24 h"),
            str(facts.calls_unfinished_24h),
        ),
    ]
    width = max(len(label) for label, _value in rows)
    lines = [f"{facts.name} (id {facts.integration_id})"]
    lines += [f"  {label.ljust(width)}  {value}" for label, value in rows]
    for m in facts.by_method:
        lines.append(
            "    "
            + _("%(method)s: %(requests)s requests, %(errors)s errors, %(waits)s limiter waits (%(wait)s ms)")
            % {
                "method": m.method,
                "requests": m.requests,
                "errors": m.errors,
                "waits": m.limiter_waits,
                "wait": m.limiter_wait_ms,
            }
        )
    if not issues:
        lines.append("  " + _("warnings: none"))
    for issue in issues:
        since = episodes.get(issue.kind)
        opened = (
            " " + _("(open since %(time)s)") % {"time": timezone.localtime(since).strftime("%Y-%m-%d %H:%M")}
            if since
            else ""
        )
        lines.append(f"  {_('WARNING')} [{issue.kind}] {issue.message}{opened}")
    return lines


def health_report(
    *, integration: str | None = None, as_json: bool = False, now: datetime | None = None
) -> Report:
    now = now or timezone.now()
    try:
        qs = Integration.objects.order_by("name")
        if integration is not None:
            lookup = {"pk": int(integration)} if integration.isdigit() else {"name": integration}
            qs = qs.filter(**lookup)
        rows = list(qs)
        if not rows:
            message = (
                _("No integration %(ref)r.") % {"ref": integration}
                if integration is not None
                else _("No integration is configured: nothing to check.")
            )
            return Report(EXIT_UNKNOWN, "", message)
        checked = [i for i in rows if i.status != Integration.Status.NOT_CONNECTED]
        if not checked:
            return Report(EXIT_UNKNOWN, "", _("No integration has been connected yet: nothing to check."))
        episodes = open_warnings(integration_ids=[i.pk for i in checked])
        results = []
        for row in checked:
            facts = integration_health(row, now=now)
            results.append((facts, warnings_for(facts)))
    except DatabaseError as exc:
        return Report(EXIT_UNKNOWN, "", _("Cannot read the database: %(error)s") % {"error": exc})
    code = EXIT_WARNING if any(issues for _facts, issues in results) else EXIT_OK
    skipped = [i.name for i in rows if i.status == Integration.Status.NOT_CONNECTED]
    if as_json:
        payload = {
            "status": {EXIT_OK: "ok", EXIT_WARNING: "warning"}[code],
            "exit_code": code,
            "checked_at": now.isoformat(),
            "not_connected": skipped,
            "integrations": [
                {
                    **facts.as_json(),
                    "warnings": [{"kind": i.kind, "message": i.message} for i in issues],
                    "open_episodes": [
                        {
                            "kind": ep.kind,
                            "opened_at": ep.opened_at.isoformat(),
                            "mailed_at": ep.mailed_at.isoformat() if ep.mailed_at else None,
                        }
                        for ep in episodes
                        if ep.integration_id == facts.integration_id
                    ],
                }
                for facts, issues in results
            ],
        }
        return Report(code, json.dumps(payload, ensure_ascii=False, indent=2))
    lines: list[str] = []
    for facts, issues in results:
        opened = {ep.kind: ep.opened_at for ep in episodes if ep.integration_id == facts.integration_id}
        lines += _text(facts, issues, opened)
        lines.append("")
    for name in skipped:
        lines.append(_("%(name)s: not connected, not checked") % {"name": name})
    summary = _("OK: nothing needs a person.") if code == EXIT_OK else _("Something needs a person (exit 1).")
    lines.append(summary)
    return Report(code, "\n".join(lines))
