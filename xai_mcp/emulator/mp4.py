"""A minimal MP4 (ISO/IEC 14496-12, -14, -15) muxer, and readers for duration and frame size.

The file is `ftyp`, then `moov` (so players can start before the media data arrives), then
`mdat`. Data that repeats is stored once: a track is a run of chunks, and chunks that repeat
the same samples share an offset into `mdat`. For video that is valid when every picture is an
IDR (decodable on its own) and consecutive samples are different pictures (consecutive IDRs
must differ in idr_pic_id); silent audio frames are all alike and independent anyway.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from xai_mcp.emulator import aac

MOVIE_TIMESCALE = 1000  # movie-level times (mvhd, tkhd) in milliseconds
_IDENTITY_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
_LANGUAGE_UND = ((ord("u") - 0x60) << 10) | ((ord("n") - 0x60) << 5) | (ord("d") - 0x60)


@dataclass(frozen=True)
class Track:
    """One track's description and samples.

    `blobs` are stored in `mdat` once each; blob b holds samples of sizes `blob_samples[b]`,
    back to back. The track plays `chunks` in order, each (blob, count): the first `count`
    samples of that blob. Sample i lasts `durations[i]` units of `timescale` per second.
    """

    handler: bytes  # b"vide" or b"soun"
    sample_entry: bytes  # the one entry of `stsd`
    timescale: int
    durations: Sequence[int]
    blobs: Sequence[bytes]
    blob_samples: Sequence[Sequence[int]]
    chunks: Sequence[tuple[int, int]]
    width: int = 0  # video only
    height: int = 0

    def __post_init__(self) -> None:
        if not self.durations or any(d <= 0 for d in self.durations):
            raise ValueError("a track needs at least one sample, each of positive duration")
        if sum(count for _, count in self.chunks) != len(self.durations):
            raise ValueError("the chunks hold a different number of samples than there are durations")
        for blob, count in self.chunks:
            if not 0 <= blob < len(self.blobs) or not 0 < count <= len(self.blob_samples[blob]):
                raise ValueError(f"chunk ({blob}, {count}) names samples that do not exist")
        for data, sizes in zip(self.blobs, self.blob_samples, strict=True):
            if sum(sizes) != len(data):
                raise ValueError("a blob's sample sizes do not add up to its length")


def box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I", 8 + len(body)) + kind + body


def full_box(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    return box(kind, struct.pack(">I", (version << 24) | flags), *payload)


# --- the two kinds of track ------------------------------------------------------------------


def avc_track(
    width: int,
    height: int,
    sps: bytes,
    pps: bytes,
    pictures: Sequence[bytes],
    order: Sequence[int],
    durations: Sequence[int],
    timescale: int,
) -> Track:
    """An H.264 track: sample i shows `pictures[order[i]]` (NAL units without start codes)."""
    # AVCDecoderConfigurationRecord (14496-15, 5.3.3.1): profile, compatibility and level are
    # copied from the SPS; NAL unit lengths are 4 bytes (lengthSizeMinusOne = 3).
    profile, compatibility, level = sps[1:4]
    avcc = box(
        b"avcC",
        bytes([1, profile, compatibility, level, 0xFC | 3, 0xE0 | 1]),
        struct.pack(">H", len(sps)),
        sps,
        bytes([1]),
        struct.pack(">H", len(pps)),
        pps,
    )
    compressor = b"xai-mcp emulator"
    entry = box(
        b"avc1",
        bytes(6),  # reserved
        struct.pack(">H", 1),  # data_reference_index
        bytes(16),  # pre_defined and reserved
        struct.pack(">HH", width, height),
        struct.pack(">II", 0x00480000, 0x00480000),  # 72 dpi
        bytes(4),  # reserved
        struct.pack(">H", 1),  # frame_count: one picture per sample
        bytes([len(compressor)]) + compressor.ljust(31, b"\x00"),
        struct.pack(">Hh", 0x18, -1),  # depth: colour, no alpha; pre_defined
        avcc,
    )
    samples = [struct.pack(">I", len(picture)) + picture for picture in pictures]  # length-prefixed
    return Track(
        b"vide",
        entry,
        timescale,
        durations,
        samples,
        [[len(sample)] for sample in samples],
        [(index, 1) for index in order],
        width,
        height,
    )


def _descriptor(tag: int, *payload: bytes) -> bytes:
    body = b"".join(payload)
    if len(body) > 127:  # one-byte sizes are all this muxer writes
        raise ValueError("descriptor too long")
    return bytes([tag, len(body)]) + body


_SILENCE_FRAMES_STORED = 47  # about one second at 48 kHz; longer audio repeats the same chunk


def silent_aac_track(milliseconds: int) -> Track:
    """A mono AAC-LC track of silence lasting exactly `milliseconds` (the last frame cut short)."""
    total = milliseconds * aac.SAMPLE_RATE // 1000
    count = -(-total // aac.SAMPLES_PER_FRAME)
    durations = [aac.SAMPLES_PER_FRAME] * (count - 1) + [total - aac.SAMPLES_PER_FRAME * (count - 1)]
    stored = min(count, _SILENCE_FRAMES_STORED)
    chunks = [(0, stored)] * (count // stored) + ([(0, count % stored)] if count % stored else [])
    # ES_Descriptor (14496-1, 7.2.6.5) with the decoder configuration: object type 0x40
    # (MPEG-4 audio), stream type 5 (audio); SLConfigDescriptor predefined 2 (MP4 files).
    decoder_config = _descriptor(
        0x04,
        bytes([0x40, (0x05 << 2) | 1]),
        (len(aac.SILENT_MONO_FRAME)).to_bytes(3, "big"),  # bufferSizeDB
        struct.pack(">II", 0, 0),  # max and average bitrate: unknown
        _descriptor(0x05, aac.audio_specific_config()),
    )
    esds = full_box(
        b"esds", 0, 0, _descriptor(0x03, struct.pack(">HB", 0, 0), decoder_config, _descriptor(0x06, b"\x02"))
    )
    entry = box(
        b"mp4a",
        bytes(6),  # reserved
        struct.pack(">H", 1),  # data_reference_index
        bytes(8),  # reserved
        struct.pack(">HHHH", 1, 16, 0, 0),  # channelcount, samplesize, pre_defined, reserved
        struct.pack(">I", aac.SAMPLE_RATE << 16),  # 16.16 fixed point
        esds,
    )
    return Track(
        b"soun",
        entry,
        aac.SAMPLE_RATE,
        durations,
        [aac.SILENT_MONO_FRAME * stored],
        [[len(aac.SILENT_MONO_FRAME)] * stored],
        chunks,
    )


# --- writing ---------------------------------------------------------------------------------


def _run_lengths(values: Sequence[int]) -> list[tuple[int, int]]:
    """[(count, value), ...] of consecutive equal values."""
    runs: list[list[int]] = []
    for value in values:
        if runs and runs[-1][1] == value:
            runs[-1][0] += 1
        else:
            runs.append([1, value])
    return [(count, value) for count, value in runs]


def _sample_table(track: Track, blob_offsets: Sequence[int]) -> bytes:
    stts = _run_lengths(track.durations)
    # stsc lists (first chunk, samples per chunk, description) where samples per chunk changes.
    stsc, first = [], 1
    for count, per_chunk in _run_lengths([n for _, n in track.chunks]):
        stsc.append((first, per_chunk, 1))
        first += count
    sizes = [size for blob, count in track.chunks for size in track.blob_samples[blob][:count]]
    return box(
        b"stbl",
        full_box(b"stsd", 0, 0, struct.pack(">I", 1), track.sample_entry),
        full_box(b"stts", 0, 0, struct.pack(">I", len(stts)), *(struct.pack(">II", c, d) for c, d in stts)),
        # No stss: its absence declares every sample a sync sample, which they all are.
        full_box(b"stsc", 0, 0, struct.pack(">I", len(stsc)), *(struct.pack(">III", *entry) for entry in stsc)),
        _sample_sizes(sizes),
        full_box(
            b"stco",
            0,
            0,
            struct.pack(">I", len(track.chunks)),
            *(struct.pack(">I", blob_offsets[blob]) for blob, _ in track.chunks),
        ),
    )


def _sample_sizes(sizes: Sequence[int]) -> bytes:
    if len(set(sizes)) == 1:  # one size for all (silent audio frames): no table needed
        return full_box(b"stsz", 0, 0, struct.pack(">II", sizes[0], len(sizes)))
    return full_box(b"stsz", 0, 0, struct.pack(">II", 0, len(sizes)), *(struct.pack(">I", size) for size in sizes))


def _trak(track: Track, track_id: int, blob_offsets: Sequence[int]) -> bytes:
    media_duration = sum(track.durations)
    video = track.handler == b"vide"
    tkhd = full_box(
        b"tkhd",
        0,
        0x000003,  # track_enabled | track_in_movie
        struct.pack(">IIII", 0, 0, track_id, 0),  # creation, modification, track_ID, reserved
        struct.pack(">I", _movie_time(media_duration, track.timescale)),
        bytes(8),  # reserved
        struct.pack(">hhhH", 0, 0, 0 if video else 0x0100, 0),  # layer, alternate_group, volume, reserved
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
    name = b"VideoHandler\x00" if video else b"SoundHandler\x00"
    hdlr = full_box(b"hdlr", 0, 0, bytes(4), track.handler, bytes(12), name)
    media_header = full_box(b"vmhd", 0, 1, bytes(8)) if video else full_box(b"smhd", 0, 0, bytes(4))
    dinf = box(b"dinf", full_box(b"dref", 0, 0, struct.pack(">I", 1), full_box(b"url ", 0, 1)))  # data in this file
    minf = box(b"minf", media_header, dinf, _sample_table(track, blob_offsets))
    return box(b"trak", tkhd, box(b"mdia", mdhd, hdlr, minf))


def _movie_time(duration: int, timescale: int) -> int:
    # Rounded, not truncated: with a timescale that is a multiple of 1000 it is exact anyway.
    return (duration * MOVIE_TIMESCALE + timescale // 2) // timescale


def _moov(tracks: Sequence[Track], blob_offsets: Sequence[Sequence[int]]) -> bytes:
    movie_duration = max(_movie_time(sum(t.durations), t.timescale) for t in tracks)
    mvhd = full_box(
        b"mvhd",
        0,
        0,
        struct.pack(">IIII", 0, 0, MOVIE_TIMESCALE, movie_duration),  # creation/modification times 0
        struct.pack(">IH", 0x00010000, 0x0100),  # rate 1.0, volume 1.0
        bytes(10),  # reserved
        _IDENTITY_MATRIX,
        bytes(24),  # pre_defined
        struct.pack(">I", len(tracks) + 1),  # next_track_ID
    )
    traks = (_trak(track, i + 1, offsets) for i, (track, offsets) in enumerate(zip(tracks, blob_offsets, strict=True)))
    return box(b"moov", mvhd, *traks)


def write(tracks: Sequence[Track]) -> bytes:
    """The MP4 file of these tracks (track ids 1, 2, ... in this order)."""
    ftyp = box(b"ftyp", b"isom", struct.pack(">I", 0x200), b"isom", b"iso2", b"avc1", b"mp41")

    def offsets(start: int) -> list[list[int]]:
        result: list[list[int]] = []
        for track in tracks:
            result.append([])
            for blob in track.blobs:
                result[-1].append(start)
                start += len(blob)
        return result

    # The moov's size does not depend on the offsets it holds: measure it, then write it for real.
    moov_size = len(_moov(tracks, offsets(0)))
    moov = _moov(tracks, offsets(len(ftyp) + moov_size + 8))
    return ftyp + moov + box(b"mdat", *(blob for track in tracks for blob in track.blobs))


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


def handlers(data: bytes) -> list[bytes]:
    """The handler type of each track of an MP4 (b"vide", b"soun", ...), in file order."""
    found = []
    for kind, trak in _children(_child(data, b"moov")):
        hdlr = _child(_child(trak, b"mdia"), b"hdlr")
        if kind == b"trak" and len(hdlr) >= 12:
            found.append(hdlr[8:12])  # after version/flags and pre_defined
    return found


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
