"""A tiny H.264 encoder for pictures made of horizontal colour bands: pure Python, any even size.

The emulator serves real, playable video without ffmpeg. Flat colour needs almost no bits in
H.264 when the encoder only ever predicts:

- The first macroblock of each band is I_PCM: its samples (the band's colour) are stored raw.
- Every other macroblock is Intra_16x16 with no residual: it copies the column to its left
  (horizontal prediction) in a band's first macroblock row, or the row above it (vertical
  prediction) further down. Prediction alone reproduces the flat colour exactly, in 6 to 8 bits.

Streams are Constrained Baseline (CAVLC), 4:2:0, 8-bit, one slice per picture, every picture an
IDR with the deblocking filter off (flat bands have no blocking to hide and sharp edges are
intended). Sizes that are not multiples of 16 are coded whole macroblocks larger and cropped.
Written from the H.264 specification (ITU-T Rec. H.264, sections 7.3 and 9.2).
"""

from __future__ import annotations

from collections.abc import Sequence

RGB = tuple[int, int, int]

PROFILE_IDC = 66  # Baseline
CONSTRAINT_FLAGS = 0xC0  # constraint_set0 and constraint_set1: Constrained Baseline
LEVEL_IDC = 40  # level 4.0: up to 8192 macroblocks a frame, enough for 1920x1080 and 1080x1920
_MAX_MACROBLOCKS = 8192
_MAX_SIDE_MACROBLOCKS = 256

_NAL_SPS, _NAL_PPS, _NAL_IDR = 7, 8, 5
_I_PCM = 25  # mb_type in an I slice
_I16_VERTICAL, _I16_HORIZONTAL = 1, 2  # mb_type I_16x16_<mode>_0_0: no coded residual
_CHROMA_DC, _CHROMA_HORIZONTAL = 0, 1  # intra_chroma_pred_mode


class _Bits:
    """An RBSP being written MSB first, kept as a string of '0'/'1' (short and simple to splice)."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0

    def put(self, bits: str) -> None:
        self.parts.append(bits)
        self.length += len(bits)

    def u(self, width: int, value: int) -> None:
        self.put(format(value, f"0{width}b"))

    def ue(self, value: int) -> None:
        self.put(ue(value))

    def se(self, value: int) -> None:
        self.ue(2 * value - 1 if value > 0 else -2 * value)

    def align_zero(self) -> None:
        self.put("0" * (-self.length % 8))

    def trailing(self) -> bytes:
        """rbsp_trailing_bits(), then the bytes."""
        self.put("1")
        self.align_zero()
        bits = "".join(self.parts)
        return int(bits, 2).to_bytes(len(bits) // 8, "big")


def ue(value: int) -> str:
    """Exp-Golomb code ue(v) of a non-negative integer, as bits."""
    code = format(value + 1, "b")
    return "0" * (len(code) - 1) + code


def _nal(nal_type: int, rbsp: bytes) -> bytes:
    """A NAL unit (header byte + payload) with emulation prevention bytes inserted (7.4.1)."""
    out = bytearray([0x60 | nal_type])  # forbidden_zero_bit 0, nal_ref_idc 3
    zeros = 0
    for byte in rbsp:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def _ycbcr(colour: RGB) -> tuple[int, int, int]:
    """BT.601 limited-range Y'CbCr of an sRGB colour (what decoders assume without VUI)."""
    r, g, b = colour
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    cb = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    cr = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    return round(y), round(cb), round(cr)


def _coeff_token_none(n_c: int) -> str:
    """coeff_token for TotalCoeff 0, TrailingOnes 0 under the VLC table nC selects (Table 9-5)."""
    if n_c < 2:
        return "1"
    if n_c < 4:
        return "11"
    if n_c < 8:
        return "1111"
    return "000011"  # 6-bit fixed-length code


def fits(width: int, height: int) -> bool:
    """Whether the level this encoder declares allows pictures of this size (A.3.1: the frame
    size in macroblocks, and each side at most sqrt(8 * that limit) = 256 macroblocks)."""
    columns, rows = -(-width // 16), -(-height // 16)
    return columns * rows <= _MAX_MACROBLOCKS and max(columns, rows) <= _MAX_SIDE_MACROBLOCKS


class Encoder:
    """Encodes pictures of one size. `sps` and `pps` are the parameter sets, as NAL units."""

    def __init__(self, width: int, height: int) -> None:
        if width <= 0 or height <= 0 or width % 2 or height % 2:
            raise ValueError(f"frame size must be positive and even, got {width}x{height}")
        self.width, self.height = width, height
        self.mb_cols, self.mb_rows = -(-width // 16), -(-height // 16)
        if not fits(width, height):
            raise ValueError(f"{width}x{height} is larger than level 4.0 allows")
        self.sps = _nal(_NAL_SPS, self._sps())
        self.pps = _nal(_NAL_PPS, self._pps())

    def _sps(self) -> bytes:
        bits = _Bits()
        bits.u(8, PROFILE_IDC)
        bits.u(8, CONSTRAINT_FLAGS)
        bits.u(8, LEVEL_IDC)
        bits.ue(0)  # seq_parameter_set_id
        bits.ue(0)  # log2_max_frame_num_minus4: frame_num is 4 bits (always 0: every picture is IDR)
        bits.ue(2)  # pic_order_cnt_type 2: output order is decoding order, nothing to signal
        bits.ue(1)  # max_num_ref_frames
        bits.u(1, 0)  # gaps_in_frame_num_value_allowed_flag
        bits.ue(self.mb_cols - 1)  # pic_width_in_mbs_minus1
        bits.ue(self.mb_rows - 1)  # pic_height_in_map_units_minus1
        bits.u(1, 1)  # frame_mbs_only_flag
        bits.u(1, 1)  # direct_8x8_inference_flag
        crop_right = (self.mb_cols * 16 - self.width) // 2  # in 4:2:0 frames, crop units are 2 pixels
        crop_bottom = (self.mb_rows * 16 - self.height) // 2
        if crop_right or crop_bottom:
            bits.u(1, 1)  # frame_cropping_flag
            for offset in (0, crop_right, 0, crop_bottom):  # left, right, top, bottom
                bits.ue(offset)
        else:
            bits.u(1, 0)
        bits.u(1, 0)  # vui_parameters_present_flag: timing lives in the container
        return bits.trailing()

    @staticmethod
    def _pps() -> bytes:
        bits = _Bits()
        bits.ue(0)  # pic_parameter_set_id
        bits.ue(0)  # seq_parameter_set_id
        bits.u(1, 0)  # entropy_coding_mode_flag: CAVLC
        bits.u(1, 0)  # bottom_field_pic_order_in_frame_present_flag
        bits.ue(0)  # num_slice_groups_minus1
        bits.ue(0)  # num_ref_idx_l0_default_active_minus1
        bits.ue(0)  # num_ref_idx_l1_default_active_minus1
        bits.u(1, 0)  # weighted_pred_flag
        bits.u(2, 0)  # weighted_bipred_idc
        bits.se(0)  # pic_init_qp_minus26
        bits.se(0)  # pic_init_qs_minus26
        bits.se(0)  # chroma_qp_index_offset
        bits.u(1, 1)  # deblocking_filter_control_present_flag: lets slices turn the filter off
        bits.u(1, 0)  # constrained_intra_pred_flag
        bits.u(1, 0)  # redundant_pic_cnt_present_flag
        return bits.trailing()

    def picture(self, row_colours: Sequence[RGB], idr_pic_id: int) -> bytes:
        """One IDR picture as a NAL unit: macroblock row r is coloured `row_colours[r]`.

        `row_colours` has one entry per macroblock row (16 pixel rows). Consecutive pictures
        must differ in `idr_pic_id` (7.4.3).
        """
        if len(row_colours) != self.mb_rows:
            raise ValueError(f"expected {self.mb_rows} row colours, got {len(row_colours)}")
        bits = _Bits()
        # Slice header (7.3.3) of an I slice in an IDR picture.
        bits.ue(0)  # first_mb_in_slice
        bits.ue(7)  # slice_type: I, and every slice of the picture is I
        bits.ue(0)  # pic_parameter_set_id
        bits.u(4, 0)  # frame_num
        bits.ue(idr_pic_id)
        bits.u(1, 0)  # dec_ref_pic_marking: no_output_of_prior_pics_flag
        bits.u(1, 0)  # dec_ref_pic_marking: long_term_reference_flag
        bits.se(0)  # slice_qp_delta (no residual is coded, so the QP never matters)
        bits.ue(1)  # disable_deblocking_filter_idc: off

        # Macroblock layers (7.3.5). What follows a macroblock never depends on the macroblock
        # row except through nC, the coeff_token table selector of the (empty) Intra16x16 DC
        # block: a neighbour that is I_PCM counts as 16 coefficients (9.2.1), others as 0.
        empty_dc_after_pcm = _coeff_token_none(16)  # also (16 + 0 + 1) >> 1 = 8 selects this table
        empty_dc = _coeff_token_none(0)
        across = ue(_I16_HORIZONTAL) + ue(_CHROMA_HORIZONTAL) + "1"  # mb_type, chroma mode, qp delta 0
        down = ue(_I16_VERTICAL) + ue(_CHROMA_DC) + "1"
        previous: RGB | None = None
        first_in_band = False  # whether the row above started a band (its first macroblock is I_PCM)
        for colour in row_colours:
            if colour != previous:  # a band starts: raw colour, then copy it rightwards
                self._pcm(bits, colour)
                if self.mb_cols > 1:
                    bits.put(across + empty_dc_after_pcm)
                    bits.put((across + empty_dc) * (self.mb_cols - 2))
            elif previous is not None:
                bits.put(down + (empty_dc_after_pcm if first_in_band else empty_dc))
                bits.put((down + empty_dc) * (self.mb_cols - 1))
            first_in_band = colour != previous
            previous = colour
        return _nal(_NAL_IDR, bits.trailing())

    @staticmethod
    def _pcm(bits: _Bits, colour: RGB) -> None:
        y, cb, cr = _ycbcr(colour)
        bits.ue(_I_PCM)
        bits.align_zero()  # pcm_alignment_zero_bit
        samples = bytes([y]) * 256 + bytes([cb]) * 64 + bytes([cr]) * 64
        bits.put(format(int.from_bytes(samples, "big"), f"0{len(samples) * 8}b"))
