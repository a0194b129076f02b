"""The API's request parser: DRF's JSONParser, with every refusal a 400 in words.

- Python's json module parses nested arrays and objects by recursion, so a few thousand ``[`` raise
  RecursionError, which DRF does not take for a parse error (a 500). No field of the API nests, so such a
  body is refused as unreadable JSON.
- DRF words a body that is not JSON in English ("JSON parse error - Expecting value: …"), whatever the
  language; here it says where the body breaks, in the CRM's language.
- NaN, Infinity and a number too large for a float (``1e999``, read by Python as infinity) are refused.
- A key twice in one object (``{"numbers": [...], "numbers": []}``) is refused: Python keeps the last one
  silently, while a proxy or a client library may read the first, so what was meant is not known.
- A body of ``null`` is refused here in words (DRF's serializers say "No data provided", in English).
"""

from __future__ import annotations

import codecs
import json
import math
from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from django.utils.translation import gettext as _
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

# A key is repeated in a refusal up to this many characters.
KEY_SHOWN = 40


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    # NaN, Infinity, -Infinity: not JSON (RFC 8259), and no field of the API takes them.
    raise ValueError(name)


def _finite(text: str) -> float:
    # A number too large for a float (1e999) is valid JSON that Python reads as infinity: refused as
    # NaN and Infinity are (a text field took it as the word "inf").
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(text[:KEY_SHOWN])
    return number


class ApiJSONParser(JSONParser):
    def parse(
        self, stream: IO[Any], media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = codecs.getreader(encoding)(stream).read()
            data = json.loads(
                text, object_pairs_hook=_object, parse_constant=_no_constant, parse_float=_finite
            )
        except RecursionError:
            raise ParseError(_("The JSON body is nested too deeply.")) from None
        except _DuplicateKey as exc:
            raise ParseError(
                _("The key “%(key)s” appears twice in one JSON object: send each field once.")
                % {"key": exc.key[:KEY_SHOWN]}
            ) from None
        except json.JSONDecodeError as exc:
            raise ParseError(
                _("The request body is not valid JSON (line %(line)d, column %(column)d).")
                % {"line": exc.lineno, "column": exc.colno}
            ) from None
        except ValueError:  # not in the declared encoding, or NaN / Infinity
            raise ParseError(_("The request body is not valid JSON.")) from None
        if data is None:
            raise ParseError(_("The request body is null: send a JSON object."))
        return data
