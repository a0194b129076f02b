"""The media view: a stored recording for logged-in users with ``calls.listen_recording`` only, of a
call they may see (calls/visibility.py).

The files are never reachable through a public URL (MEDIA_URL is not routed); this view checks the
permission, answers single HTTP Range requests (206, so the player can seek; 416 when unsatisfiable),
streams the file in blocks and logs every listen or download.
"""

from __future__ import annotations

import re
from typing import Any

from django.contrib.auth.decorators import login_required, permission_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.views.decorators.http import require_safe

from mttcrm.clientip import client_address

from ..models import Recording, RecordingAccess
from ..visibility import recording_visible_to
from .services import recording_access_log
from .storage import recording_file_open

# At most 19 digits a position (files are far smaller): a longer one is a header we do not understand
# (the whole file is sent), never a number too long for int() (a ValueError past 4300 digits).
_RANGE = re.compile(r"^bytes=(\d{0,19})-(\d{0,19})$")
UNSATISFIABLE = (-1, -1)


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) byte of a single satisfiable range; None to send the whole file (no header, a
    header we do not understand, several ranges); UNSATISFIABLE for a range beyond the end."""
    if not header:
        return None
    match = _RANGE.match(header.strip().replace(" ", ""))
    if match is None:
        return None
    first_text, last_text = match.groups()
    if not first_text:
        if not last_text:
            return None
        suffix = int(last_text)
        if suffix == 0 or size == 0:
            return UNSATISFIABLE
        return max(0, size - suffix), size - 1
    first = int(first_text)
    if last_text and int(last_text) < first:
        return None  # syntactically invalid: ignored, the whole file is sent
    if first >= size:
        return UNSATISFIABLE
    last = int(last_text) if last_text else size - 1
    return first, min(last, size - 1)


class _Slice:
    """Read at most ``length`` bytes from ``fh`` (already positioned); FileResponse streams it."""

    def __init__(self, fh: Any, length: int) -> None:
        self._fh = fh
        self._left = length

    def read(self, size: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        want = self._left if size is None or size < 0 else min(size, self._left)
        data: bytes = self._fh.read(want)
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._fh.close()


@require_safe
@login_required
@permission_required("calls.listen_recording", raise_exception=True)
def recording_media(request: HttpRequest, pk: int) -> HttpResponseBase:
    recording = get_object_or_404(
        Recording.objects.select_related("call"), pk=pk, status=Recording.Status.STORED
    )
    if not recording_visible_to(request.user, recording):
        # Team mode: another team's call. 404, like a recording that does not exist, and nothing logged.
        raise Http404("No such recording")
    return recording_file_response(request, recording=recording)


def recording_file_response(request: HttpRequest, *, recording: Recording) -> HttpResponseBase:
    """The stored file of ``recording`` for ``request.user``, who passed the permission and visibility
    checks (this page, and the API's ``/api/v1/recordings/<id>/audio/``): ranges, and the access log."""
    download = request.GET.get("download") == "1"
    try:
        fh = recording_file_open(key=recording.storage_key)
    except (FileNotFoundError, OSError):
        raise Http404("The recording file is missing") from None
    size = int(fh.size)
    selected = parse_range(request.headers.get("Range"), size)
    if selected == UNSATISFIABLE:
        fh.close()
        refused = HttpResponse(status=416)
        refused["Content-Range"] = f"bytes */{size}"
        refused["Accept-Ranges"] = "bytes"
        return refused
    first, last = selected or (0, size - 1)
    if request.method == "GET" and first == 0:
        # Seeking asks for later ranges: one entry per listen, not one per seek.
        action = RecordingAccess.Action.DOWNLOAD if download else RecordingAccess.Action.LISTEN
        # The client's address, not the proxy's: X-Forwarded-For only from TRUSTED_PROXIES (as axes does).
        address = client_address(request)
        recording_access_log(
            recording=recording, user=request.user, action=action, ip=str(address) if address else None
        )
    filename = f"recording-{timezone.localtime(recording.created_at):%Y%m%d-%H%M%S}-{recording.pk}.mp3"
    if selected is None:
        response = FileResponse(fh, as_attachment=download, filename=filename, content_type="audio/mpeg")
        response["Content-Length"] = str(size)
    else:
        fh.seek(first)
        length = last - first + 1
        response = FileResponse(
            _Slice(fh, length),
            status=206,
            as_attachment=download,
            filename=filename,
            content_type="audio/mpeg",
        )
        response["Content-Length"] = str(length)
        response["Content-Range"] = f"bytes {first}-{last}/{size}"
    response["Accept-Ranges"] = "bytes"
    # Recordings are personal data: no shared or stored caches.
    response["Cache-Control"] = "private, no-store"
    return response
