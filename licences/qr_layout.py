"""Where each bit of a QR symbol's message goes, worked out once per version.

segno places a message bit by bit and then masks the data region through one function call per
module: ~4 ms for the version-11 symbol of a verification URL, a tenth of a whole issuance. At a
fixed error correction level (M) and mask, everything but the message is the same for every
symbol of one version: the finder, timing and alignment patterns, the format and version
information, the mask over the data region, and the order in which the message's bits fill
that region (ISO/IEC 18004:2015, 7.7.3). A :class:`Plan` holds those once; a symbol is then its
template with the message's dark bits flipped at the planned positions.

The message itself (segments, terminator, padding, Reed-Solomon blocks, interleaving) is
segno's own code, called step by step as ``segno.encoder._encode`` does; segno is pinned in
``constraints.txt`` and ``tests/test_qr_layout.py`` holds every version's symbols equal to
``segno.make_qr``'s, so an upgrade that moved those functions fails there, not on a licence.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from segno import consts as _consts
from segno import encoder as _encoder

# segno's encoder steps and tables are untyped internals: used here, and only here, as Any
segno_encoder: Any = _encoder
consts: Any = _consts

ERROR_M = consts.ERROR_LEVEL_M
FREE = 0x2  # segno's value for a module not yet taken by a function pattern
BIT_CHARS = bytes.maketrans(b"\x00\x01", b"01")  # segno's bit buffer, one byte a bit, as text


@dataclass(frozen=True, slots=True)
class Plan:
    """One version at error correction M and one mask, row-major over ``size × size``.

    ``template`` holds the function modules as they print and, in the data region, the mask's
    bit (what a light message bit becomes); ``positions[k]`` is where message bit ``k`` goes."""

    size: int
    template: tuple[int, ...]
    positions: tuple[int, ...]


@cache  # at most 40 versions × 8 masks
def plan(version: int, mask: int) -> Plan:
    size = segno_encoder.calc_matrix_size(version)
    matrix = segno_encoder.make_matrix(size, size)
    segno_encoder.add_finder_patterns(matrix, size, size)
    segno_encoder.add_alignment_patterns(matrix, size, size)
    free = [[cell == FREE for cell in row] for row in matrix]
    segno_encoder.add_format_info(matrix, version, ERROR_M, mask)
    segno_encoder.add_version_info(matrix, version)
    masked = segno_encoder.get_data_mask_functions(False)[mask]
    template = tuple(
        int(masked(i, j)) if free[i][j] else matrix[i][j] for i in range(size) for j in range(size)
    )
    return Plan(size, template, tuple(placement_order(free)))


def placement_order(free: list[list[bool]]) -> list[int]:
    """The data region's modules in the order the message fills them: two-module columns from
    the right, alternately upwards and downwards, the vertical timing column skipped, the right
    module of a pair before the left (ISO/IEC 18004:2015, 7.7.3)."""
    size = len(free)
    order: list[int] = []
    upwards = True
    right = size - 1
    while right > 0:
        if right == 6:  # the vertical timing pattern takes column 6
            right -= 1
        rows = range(size - 1, -1, -1) if upwards else range(size)
        for i in rows:
            for j in (right, right - 1):
                if free[i][j]:
                    order.append(i * size + j)
        upwards = not upwards
        right -= 2
    return order


def message(text: str, mode: str, encoding: str | None) -> tuple[int, str]:
    """The smallest version that holds ``text`` at M, and the final message as a string of
    ``0``/``1``: data and error correction codewords interleaved (7.6), no remainder bits."""
    segments = segno_encoder.prepare_data(text, segno_encoder.normalize_mode(mode), encoding)
    version: int = segno_encoder.find_version(segments, ERROR_M, eci=False, micro=False)
    buffer = segno_encoder.Buffer()
    versions = segno_encoder.version_range(version)
    for segment in segments:
        segno_encoder.write_segment(buffer, segment, None, versions, False)
    capacity = consts.SYMBOL_CAPACITY[version][ERROR_M]
    segno_encoder.write_terminator(buffer, capacity, None, len(buffer))
    segno_encoder.write_padding_bits(buffer, version, len(buffer))
    segno_encoder.write_pad_codewords(buffer, version, capacity, len(buffer))
    bits = bytes(buffer.getbits()).translate(BIT_CHARS).decode("ascii")
    data = int(bits, 2).to_bytes(len(bits) // 8, "big")
    final = interleaved(version, data)
    return version, format(int.from_bytes(final, "big"), f"0{len(final) * 8}b")


def interleaved(version: int, data: bytes) -> bytes:
    """``data`` split into the version's blocks at M, each block's error correction codewords
    computed, then both read column by column across the blocks (7.5.2, 7.6)."""
    blocks: list[bytes] = []
    corrections: list[bytes] = []
    start = 0
    for info in consts.ECC[version][ERROR_M]:
        for _ in range(info.num_blocks):
            block = data[start : start + info.num_data]
            start += info.num_data
            blocks.append(block)
            corrections.append(correction(block, info.num_total - info.num_data))
    out = bytearray()
    for group in (blocks, corrections):
        for column in range(max(map(len, group))):
            out.extend(block[column] for block in group if column < len(block))
    return bytes(out)


def correction(block: bytes, count: int) -> bytes:
    """The ``count`` Reed-Solomon codewords of ``block``: the remainder of its division by the
    generator polynomial, a byte at a time with the remainder held in one integer."""
    products = generator_products(count)
    top = 8 * (count - 1)
    width = (1 << 8 * count) - 1
    remainder = 0
    for byte in block:
        remainder = ((remainder << 8) & width) ^ products[byte ^ (remainder >> top)]
    return remainder.to_bytes(count, "big")


@cache  # one table per error correction codeword count, at most 31 of them
def generator_products(count: int) -> tuple[int, ...]:
    """For each leading coefficient 0..255, that coefficient times the generator polynomial of
    degree ``count`` (its leading term dropped), as one big-endian integer of ``count`` bytes."""
    log, exp = consts.GALIOS_LOG, consts.GALIOS_EXP
    generator = consts.GEN_POLY[count]  # exponents of the coefficients after the leading 1
    products = [0]
    for coefficient in range(1, 256):
        products.append(int.from_bytes(bytes(exp[log[coefficient] + g] for g in generator), "big"))
    return tuple(products)


def symbol(text: str, mode: str, encoding: str | None, mask: int) -> tuple[int, list[list[int]]]:
    """``text`` as a QR symbol at M with ``mask``: its version and rows of 1 (dark) and 0."""
    version, bits = message(text, mode, encoding)
    layout = plan(version, mask)
    remainder = len(layout.positions) - len(bits)  # 0, 3, 4 or 7 light bits (7.6)
    if remainder not in (0, 3, 4, 7):  # pragma: no cover - segno's capacity tables agree
        raise ValueError(f"QR version {version}: {len(bits)} bits for {len(layout.positions)}")
    cells = list(layout.template)
    # the positions past the message are its remainder bits, light: the template already is
    for position, bit in zip(layout.positions, bits, strict=False):
        if bit == "1":
            cells[position] ^= 1
    size = layout.size
    return version, [cells[r * size : (r + 1) * size] for r in range(size)]
