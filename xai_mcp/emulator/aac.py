"""Silence in AAC-LC, written from the specification (ISO/IEC 14496-3): no encoder needed.

A raw AAC frame holding one single-channel element whose `max_sfb` is 0 codes no spectral
bands at all, which decodes to 1024 samples of silence. It is 32 bits long:

    id_syn_ele SCE(3) element_instance_tag(4) global_gain(8)
    ics_info: ics_reserved_bit(1) window_sequence ONLY_LONG(2) window_shape(1) max_sfb 0(6)
              predictor_data_present(1)
    pulse_data_present(1) tns_data_present(1) gain_control_data_present(1)
    id_syn_ele END(3)
"""

from __future__ import annotations

SAMPLES_PER_FRAME = 1024
SAMPLE_RATE = 48_000
_SAMPLING_FREQUENCY_INDEX = {96_000: 0, 88_200: 1, 64_000: 2, 48_000: 3, 44_100: 4, 32_000: 5, 24_000: 6}
_AOT_AAC_LC = 2
_ID_SCE, _ID_END = 0, 7
_GLOBAL_GAIN = 100  # any value: with no bands coded, no scale factor is derived from it


def _pack(fields: list[tuple[int, int]]) -> bytes:
    """Bit fields (width, value), MSB first, zero-padded to whole bytes."""
    bits = "".join(format(value, f"0{width}b") for width, value in fields)
    bits += "0" * (-len(bits) % 8)
    return int(bits, 2).to_bytes(len(bits) // 8, "big")


SILENT_MONO_FRAME = _pack(
    [
        (3, _ID_SCE),
        (4, 0),  # element_instance_tag
        (8, _GLOBAL_GAIN),
        (1, 0),  # ics_reserved_bit
        (2, 0),  # window_sequence: ONLY_LONG_SEQUENCE
        (1, 0),  # window_shape: sine
        (6, 0),  # max_sfb: no scale factor bands, so no section, scale factor or spectral data
        (1, 0),  # predictor_data_present
        (1, 0),  # pulse_data_present
        (1, 0),  # tns_data_present
        (1, 0),  # gain_control_data_present
        (3, _ID_END),
    ]
)


def audio_specific_config(sample_rate: int = SAMPLE_RATE) -> bytes:
    """AudioSpecificConfig of mono AAC-LC with 1024-sample frames (what `esds` carries)."""
    return _pack(
        [
            (5, _AOT_AAC_LC),
            (4, _SAMPLING_FREQUENCY_INDEX[sample_rate]),
            (4, 1),  # channelConfiguration: mono
            (1, 0),  # GASpecificConfig: frameLengthFlag (1024 samples)
            (1, 0),  # dependsOnCoreCoder
            (1, 0),  # extensionFlag
        ]
    )
