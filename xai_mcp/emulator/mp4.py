"""A minimal MP4 (ISO/IEC 14496-12 and -15) muxer for one H.264 video track, and a duration reader.

The file is `ftyp`, then `moov` (so players can start before the media data arrives), then
`mdat`. The sample table can show the same coded picture many times without storing it
again: every sample is its own chunk, and chunks of repeated pictures share an offset into
`mdat`. That is valid when every picture is an IDR (decodable on its own) and consecutive
samples are different pictures (consecutive IDRs must differ in idr_pic_id).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

MOVIE_TIMESCALE = 1000  # movie-level times (mvhd, tkhd) in milliseconds
_IDENTITY_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
_LANGUAGE_UND = ((ord("u") - 0x60) << 10) | ((ord("n") - 0x60) << 5) | (ord("d") - 0x60)


@dataclass(frozen=True)
class AvcTrack:
    """What the muxer needs: parameter sets and pictures as NAL units (no start codes), and timing.

    Sample i shows `pictures[order[i]]` for `durations[i]` units of `timescale` per second.
    """

    width: int
    height: int
    sps: bytes
    pps: bytes
    pictures: Sequence[bytes]
    order: Sequence[int]
    durations: Sequence[int]
    timescale: int

    def __post_init__(self) -> None:
        if not self.order or len(self.order) != len(self.durations):
            raise ValueError("a track needs at least one sample, and one duration per sample")
        if any(not 0 <= index < len(self.pictures) for index in self.order):
            raise ValueError("sample order names a picture that does not exist")
        if any(d <= 0 for d in self.durations):
            raise ValueError("sample durations must be positive")


def box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I", 8 + len(body)) + kind + body


def full_box(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    return box(kind, struct.pack(">I", (version << 24) | flags), *payload)


def _avc_config(track: AvcTrack) -> bytes:
    # AVCDecoderConfigurationRecord (14496-15, 5.3.3.1): profile, compatibility and level are
    # copied from the SPS; NAL unit lengths are 4 bytes (lengthSizeMinusOne = 3).
    profile, compatibility, level = track.sps[1:4]
    return box(
        b"avcC",
        bytes([1, profile, compatibility, level, 0xFC | 3, 0xE0 | 1]),
        struct.pack(">H", len(track.sps)),
        track.sps,
        bytes([1]),
        struct.pack(">H", len(track.pps)),
        track.pps,
    )


def _sample_entry(track: AvcTrack) -> bytes:
    compressor = b"xai-mcp emulator"
    return box(
        b"avc1",
        bytes(6),  # reserved
        struct.pack(">H", 1),  # data_reference_index
        bytes(16),  # pre_defined and reserved
        struct.pack(">HH", track.width, track.height),
        struct.pack(">II", 0x00480000, 0x00480000),  # 72 dpi
        bytes(4),  # reserved
        struct.pack(">H", 1),  # frame_count: one picture per sample
        bytes([len(compressor)]) + compressor.ljust(31, b"\x00"),
        struct.pack(">Hh", 0x18, -1),  # depth: colour, no alpha; pre_defined
        _avc_config(track),
    )


def _time_to_sample(durations: Sequence[int]) -> bytes:
    runs: list[list[int]] = []  # [count, delta], run-length coded
    for delta in durations:
        if runs and runs[-1][1] == delta:
            runs[-1][0] += 1
        else:
            runs.append([1, delta])
    return full_box(b"stts", 0, 0, struct.pack(">I", len(runs)), *(struct.pack(">II", c, d) for c, d in runs))


def _sample_table(track: AvcTrack, samples: Sequence[bytes], mdat_start: int) -> bytes:
    picture_offsets = []
    offset = mdat_start
    for sample in samples:
        picture_offsets.append(offset)
        offset += len(sample)
    count = len(track.order)
    return box(
        b"stbl",
        full_box(b"stsd", 0, 0, struct.pack(">I", 1), _sample_entry(track)),
        _time_to_sample(track.durations),
        # No stss: its absence declares every sample a sync sample, which they all are.
        full_box(b"stsc", 0, 0, struct.pack(">IIII", 1, 1, 1, 1)),  # from chunk 1: 1 sample per chunk
        full_box(
            b"stsz", 0, 0, struct.pack(">II", 0, count), *(struct.pack(">I", len(samples[i])) for i in track.order)
        ),
        full_box(
            b"stco", 0, 0, struct.pack(">I", count), *(struct.pack(">I", picture_offsets[i]) for i in track.order)
        ),
    )


def _moov(track: AvcTrack, samples: Sequence[bytes], mdat_start: int) -> bytes:
    media_duration = sum(track.durations)
    # Rounded, not truncated: with a timescale that is a multiple of 1000 it is exact anyway.
    movie_duration = (media_duration * MOVIE_TIMESCALE + track.timescale // 2) // track.timescale
    mvhd = full_box(
        b"mvhd",
        0,
        0,
        struct.pack(">IIII", 0, 0, MOVIE_TIMESCALE, movie_duration),  # creation/modification times 0
        struct.pack(">IH", 0x00010000, 0x0100),  # rate 1.0, volume 1.0
        bytes(10),  # reserved
        _IDENTITY_MATRIX,
        bytes(24),  # pre_defined
        struct.pack(">I", 2),  # next_track_ID
    )
    tkhd = full_box(
        b"tkhd",
        0,
        0x000003,  # track_enabled | track_in_movie
        struct.pack(">IIII", 0, 0, 1, 0),  # creation, modification, track_ID 1, reserved
        struct.pack(">I", movie_duration),
        bytes(8),  # reserved
        struct.pack(">hhhH", 0, 0, 0, 0),  # layer, alternate_group, volume (0 for video), reserved
        _IDENTITY_MATRIX,
        struct.pack(">II", track.width << 16, track.height << 16),  # 16.16 fixed point
    )
    mdhd = full_box(
        b"mdhd",
        0,
        0,
        struct.pack(">IIII", 0, 0, track.timescale, media_duration),
        struct.pack(">HH", _LANGUAGE_UND, 0),
    )
    hdlr = full_box(b"hdlr", 0, 0, bytes(4), b"vide", bytes(12), b"VideoHandler\x00")
    dinf = box(b"dinf", full_box(b"dref", 0, 0, struct.pack(">I", 1), full_box(b"url ", 0, 1)))  # data in this file
    vmhd = full_box(b"vmhd", 0, 1, bytes(8))  # graphicsmode copy, opcolor unused
    minf = box(b"minf", vmhd, dinf, _sample_table(track, samples, mdat_start))
    return box(b"moov", mvhd, box(b"trak", tkhd, box(b"mdia", mdhd, hdlr, minf)))


def write(track: AvcTrack) -> bytes:
    """The MP4 file of one H.264 track."""
    # Samples are length-prefixed NAL units (avcC says 4-byte lengths); each stored once.
    samples = [struct.pack(">I", len(picture)) + picture for picture in track.pictures]
    ftyp = box(b"ftyp", b"isom", struct.pack(">I", 0x200), b"isom", b"iso2", b"avc1", b"mp41")
    # The moov's size does not depend on the offsets it holds: measure it, then write it for real.
    moov_size = len(_moov(track, samples, 0))
    mdat_start = len(ftyp) + moov_size + 8
    moov = _moov(track, samples, mdat_start)
    return ftyp + moov + box(b"mdat", *samples)


# --- reading -------------------------------------------------------------------------------


def _children(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, payload) of the boxes at one level of an ISO-BMFF file, in file order."""
    found = []
    pos = 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if size < 8:  # 0 (to end of file) and 1 (64-bit size) do not occur in what we read
            break
        found.append((kind, data[pos + 8 : pos + size]))
        pos += size
    return found


def _child(data: bytes, kind: bytes) -> bytes:
    """The payload of the first box of type `kind` at this level, or b"" if there is none."""
    return next((payload for found, payload in _children(data) if found == kind), b"")


def duration_seconds(data: bytes) -> float | None:
    """The duration in seconds from an MP4's `moov/mvhd`, or None if it has none."""
    mvhd = _child(_child(data, b"moov"), b"mvhd")
    try:
        if mvhd[:1] == b"\x00":
            timescale, duration = struct.unpack(">II", mvhd[12:20])
        elif mvhd[:1] == b"\x01":
            timescale, duration = struct.unpack(">IQ", mvhd[20:32])
        else:
            return None
    except struct.error:
        return None
    return duration / timescale if timescale else None


def frame_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of an MP4's first track with a picture (from `tkhd`), or None."""
    for kind, trak in _children(_child(data, b"moov")):
        if kind != b"trak":
            continue
        tkhd = _child(trak, b"tkhd")
        at = {b"\x00": 76, b"\x01": 88}.get(tkhd[:1])  # where width sits in versions 0 and 1
        if at is None or len(tkhd) < at + 8:
            continue
        width, height = struct.unpack(">II", tkhd[at : at + 8])
        if width >> 16 and height >> 16:  # 16.16 fixed point; audio tracks have 0
            return width >> 16, height >> 16
    return None
