"""Parking of external numbers (guide §5.4, §10.2): which company numbers hold an incoming call up to 5 s for
the CRM's routing decision (calls/routing/). Switched per number in the admin, re-applied after a
(re)connection."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from .models import ExternalNumber, Integration
from .mtt.client import MttClient
from .mtt.errors import MttError
from .tokens import integration_record_error

logger = logging.getLogger(__name__)


def external_numbers_set_parking(
    *, integration: Integration, numbers: Sequence[str], is_parking: bool
) -> int:
    """``setParkingNumbers`` for some numbers of one integration, then our flags = what MTT confirmed.

    Raises ``MttError`` (our flags untouched) when MTT does not confirm. Returns the rows updated.
    """
    numbers = sorted(set(numbers))
    if not numbers:
        return 0
    MttClient(integration).set_parking_numbers(numbers, is_parking=is_parking)
    updated = ExternalNumber.objects.filter(integration=integration, number__in=numbers).update(
        is_parking=is_parking
    )
    logger.info("Parking %s for %s (integration %s)", "on" if is_parking else "off", numbers, integration.pk)
    return updated


def parking_reapply(*, integration_id: int) -> bool:
    """After a (re)connection, tell MTT again which numbers park; returns whether MTT confirmed.

    Numbers the PBX no longer has (inactive) are left out: MTT refuses unknown numbers. A refusal is
    recorded on the integration (its admin page and the health panel show it), never raised.
    """
    integration = Integration.objects.get(pk=integration_id)
    rows = ExternalNumber.objects.filter(integration_id=integration_id, is_active=True)
    try:
        client = MttClient(integration)
        for flag in (True, False):
            numbers = sorted(rows.filter(is_parking=flag).values_list("number", flat=True))
            if numbers:
                client.set_parking_numbers(numbers, is_parking=flag)
    except MttError as exc:
        integration_record_error(
            integration_id=integration_id, message=f"Parking could not be re-applied: {exc}"
        )
        logger.warning("Integration %s: re-applying parking failed: %s", integration_id, exc)
        return False
    return True
