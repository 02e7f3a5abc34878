"""Pictures for the emulator: a tiny PNG encoder, a deterministic renderer, a size sniffer.

No imaging library is needed: a PNG is a signature plus CRC-checked chunks, and 8-bit RGB
pixel data is just rows of bytes, each led by a filter-type byte, deflated with zlib.

The renderer draws diagonal stripes over horizontal bands, with colours taken from a hash of
the prompt and a variant number, so the same request always gives the same bytes while
different prompts (or the n images of one request) give visibly different pictures.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Iterable

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_BANDS = 8  # horizontal bands, each tinted differently
# Level 6 keeps a 2048x2048 picture well under 100 ms: the rows repeat a lot, so deflate is fast.
_COMPRESSION_LEVEL = 6

RGB = tuple[int, int, int]


def _chunk(kind: bytes, payload: bytes) -> bytes:
    # The CRC covers the chunk type and its data, not the length.
    crc = zlib.crc32(payload, zlib.crc32(kind))
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def encode_rgb(width: int, height: int, rows: Iterable[bytes]) -> bytes:
    """Encode 8-bit RGB rows (each `width * 3` bytes, top to bottom) as a PNG file."""
    if width <= 0 or height <= 0:
        raise ValueError(f"bad PNG size {width}x{height}")
    row_size = width * 3
    # Filter type 0 (None) on every row: the renderer's rows are already easy to deflate.
    raw = bytearray()
    count = 0
    for row in rows:
        if len(row) != row_size:
            raise ValueError(f"row {count} has {len(row)} bytes, expected {row_size}")
        raw += b"\x00"
        raw += row
        count += 1
    if count != height:
        raise ValueError(f"got {count} rows, expected {height}")
    # Bit depth 8, colour type 2 (truecolour), compression 0, filter 0, no interlace.
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"".join(
        (
            PNG_SIGNATURE,
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", zlib.compress(bytes(raw), _COMPRESSION_LEVEL)),
            _chunk(b"IEND", b""),
        )
    )


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return (
        round(a[0] + (b[0] - a[0]) * t),
        round(a[1] + (b[1] - a[1]) * t),
        round(a[2] + (b[2] - a[2]) * t),
    )


def render(prompt: str, width: int, height: int, *, variant: int = 0) -> bytes:
    """A deterministic PNG of `width` x `height` whose colours and stripes derive from the prompt."""
    digest = hashlib.sha256(f"{variant}\x00{prompt}".encode()).digest()
    stripe_a: RGB = (digest[0], digest[1], digest[2])
    stripe_b: RGB = (digest[3], digest[4], digest[5])
    tint_top: RGB = (digest[6], digest[7], digest[8])
    tint_bottom: RGB = (digest[9], digest[10], digest[11])
    period = 24 + digest[12] % 136  # stripe period in pixels
    slope = 1 + digest[13] % 3  # pixels the stripes shift per row: the diagonal's angle

    # Each band gets one "ribbon": a row of stripes, one period longer than the picture so any
    # row can be a shifted slice of it. Rows then cost a slice, not a pixel loop.
    ribbons: list[bytes] = []
    for band in range(_BANDS):
        tint = _mix(tint_top, tint_bottom, band / (_BANDS - 1))
        period_pixels = bytearray()
        for x in range(period):
            phase = x / period
            triangle = 2 * phase if phase < 0.5 else 2 - 2 * phase
            period_pixels += bytes(_mix(_mix(stripe_a, stripe_b, triangle), tint, 0.45))
        repeats = (width + period) // period + 1
        ribbons.append(bytes(period_pixels) * repeats)

    row_size = width * 3
    rows = []
    for y in range(height):
        ribbon = ribbons[y * _BANDS // height]
        start = ((y * slope) % period) * 3
        rows.append(ribbon[start : start + row_size])
    return encode_rgb(width, height, rows)


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of PNG, JPEG, WebP or GIF bytes; None if the bytes are none of these."""
    try:
        if data.startswith(PNG_SIGNATURE) and data[12:16] == b"IHDR":
            width, height = struct.unpack(">II", data[16:24])
            return int(width), int(height)
        if data[:6] in (b"GIF87a", b"GIF89a"):
            width, height = struct.unpack("<HH", data[6:10])
            return int(width), int(height)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp_size(data)
        if data[:2] == b"\xff\xd8":
            return _jpeg_size(data)
    except struct.error:  # truncated header
        return None
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    kind = data[12:16]
    if kind == b"VP8X":  # extended format: 24-bit canvas size minus one
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    if kind == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":  # lossy: after the key-frame start code
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if kind == b"VP8L" and data[20] == 0x2F:  # lossless: 14-bit sizes minus one, packed
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    # Walk the marker segments up to a start-of-frame, which holds the size.
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            pos += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image or start of scan: no frame header found
            return None
        # SOF0..SOF15, except DHT (C4), JPG (C8) and DAC (CC), which share the range.
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return int(width), int(height)
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        pos += 2 + length
    return None
