"""The API's request parser: DRF's JSONParser, with a body nested too deeply answered as a 400."""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

from django.utils.translation import gettext_lazy as _
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class ApiJSONParser(JSONParser):
    """Python's json module parses nested arrays and objects by recursion, so a few thousand ``[`` raise
    RecursionError, which DRF does not take for a parse error (a 500). No field of the API nests, so such a
    body is refused as unreadable JSON, in words."""

    def parse(
        self, stream: IO[Any], media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(_("The JSON body is nested too deeply.")) from None
