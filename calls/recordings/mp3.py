"""Just enough of MPEG audio to recognise an mp3 and tell its duration (no dependency).

An mp3 starts with an ID3v2 tag ("ID3") or directly with a frame header (11 bits of sync, 0xFFE…);
the duration comes from a Xing/Info/VBRI header when present, else from the first frame's bitrate
(CBR: the guide's records are 32 kbps mono without ID3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

# kbps by [version is MPEG-1][layer]; index 0 is "free", 15 is invalid.
_BITRATES = {
    (True, 1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (False, 3): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
# Hz by version bits: 3 = MPEG-1, 2 = MPEG-2, 0 = MPEG-2.5 (1 is reserved).
_SAMPLE_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}
_SCAN_LIMIT = 64 * 1024


@dataclass(frozen=True)
class FrameHeader:
    mpeg1: bool
    layer: int
    bitrate_kbps: int
    sample_rate: int
    mono: bool

    @property
    def samples_per_frame(self) -> int:
        if self.layer == 1:
            return 384
        if self.layer == 2 or self.mpeg1:
            return 1152
        return 576


def parse_frame_header(data: bytes) -> FrameHeader | None:
    """The 4-byte frame header at the start of ``data``, or None if it is not a valid one."""
    if len(data) < 4 or data[0] != 0xFF or data[1] & 0xE0 != 0xE0:
        return None
    version = (data[1] >> 3) & 0b11
    layer_bits = (data[1] >> 1) & 0b11
    bitrate_index = data[2] >> 4
    rate_index = (data[2] >> 2) & 0b11
    if version == 1 or layer_bits == 0 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    layer = 4 - layer_bits
    mpeg1 = version == 3
    return FrameHeader(
        mpeg1=mpeg1,
        layer=layer,
        bitrate_kbps=_BITRATES[(mpeg1, layer)][bitrate_index],
        sample_rate=_SAMPLE_RATES[version][rate_index],
        mono=(data[3] >> 6) == 0b11,
    )


def id3_size(head: bytes) -> int:
    """Bytes taken by a leading ID3v2 tag (0 if none)."""
    if len(head) < 10 or head[:3] != b"ID3":
        return 0
    size = 0
    for byte in head[6:10]:
        size = (size << 7) | (byte & 0x7F)  # synchsafe integer
    footer = 10 if head[5] & 0x10 else 0
    return 10 + size + footer


def looks_like_mp3(head: bytes) -> bool:
    """The first bytes of a file: an ID3v2 tag, or a valid MPEG audio frame header."""
    if head[:3] == b"ID3":
        return len(head) >= 4 and head[3] < 0xFF
    return parse_frame_header(head[:4]) is not None


def duration_seconds(fh: BinaryIO, size: int) -> float | None:
    """Duration of the mp3 in ``fh`` (``size`` bytes); None when no frame header is found."""
    fh.seek(0)
    offset = id3_size(fh.read(10))
    fh.seek(offset)
    window = fh.read(_SCAN_LIMIT)
    for i in range(max(0, len(window) - 3)):
        header = parse_frame_header(window[i : i + 4])
        if header is None:
            continue
        frame = window[i:]
        frames = _vbr_frames(frame, header)
        if frames:
            return round(frames * header.samples_per_frame / header.sample_rate, 3)
        audio_bytes = size - offset - i
        if audio_bytes > 0 and size >= 128:
            fh.seek(size - 128)
            if fh.read(3) == b"TAG":  # ID3v1 at the end
                audio_bytes -= 128
        return round(max(0, audio_bytes) * 8 / (header.bitrate_kbps * 1000), 3)
    return None


def _vbr_frames(frame: bytes, header: FrameHeader) -> int | None:
    """Frame count from a Xing/Info header (in the first frame's side data) or a VBRI header."""
    if header.layer == 3:
        side = (17 if header.mono else 32) if header.mpeg1 else (9 if header.mono else 17)
        xing = frame[4 + side : 4 + side + 12]
        if xing[:4] in (b"Xing", b"Info") and len(xing) >= 12 and xing[7] & 0x01:
            return int.from_bytes(xing[8:12], "big") or None
    vbri = frame[36:54]
    if vbri[:4] == b"VBRI" and len(vbri) >= 18:
        return int.from_bytes(vbri[14:18], "big") or None
    return None
