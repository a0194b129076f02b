"""The API's exception handler (DRF's documented ``EXCEPTION_HANDLER`` setting): every error in words.

DRF's own handler turns Django's ``Http404`` into a 404 whose detail is Django's untranslated
"No Contact matches the given query." (it names the model, in English, whatever the language) and a
429's "Expected available in N seconds." is formatted before it is translated, so it stays English.
Here both are answered in the CRM's language, as every other error of the API, and a body over
DATA_UPLOAD_MAX_MEMORY_SIZE is a 413 in words (not Django's HTML "Bad Request (400)").
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.utils.translation import ngettext
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class PayloadTooLarge(exceptions.APIException):
    status_code = 413
    default_detail = _lazy("The request body is larger than the CRM accepts.")
    default_code = "payload_too_large"


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, RequestDataTooBig):
        # A body over DATA_UPLOAD_MAX_MEMORY_SIZE, found when DRF reads it: Django's own answer would be
        # an HTML "Bad Request (400)" in English.
        exc = PayloadTooLarge()
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()  # "Not found.", translated; the same for a row that exists unseen
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        wait = int(exc.wait)
        detail = " ".join(
            (
                _("Too many requests."),
                ngettext("Try again in %(wait)d second.", "Try again in %(wait)d seconds.", wait)
                % {"wait": wait},
            )
        )
        throttled = exceptions.Throttled(detail=detail)
        throttled.wait = wait  # the Retry-After header
        exc = throttled
    return drf_exception_handler(exc, context)
