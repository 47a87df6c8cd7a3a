"""The printed QR symbol, placed from a per-version plan, is the symbol the standard gives.

Three independent expectations: the Reed-Solomon codewords of the worked example in ISO/IEC
18004 (Annex I, "01234567" at 1-M), segno's own encoder for every version 1-40 in both modes
the product uses, and zxing-cpp reading the symbol back from an image.
"""

from __future__ import annotations

import random

import pytest
import segno
from PIL import Image

from licences.qr import ALPHANUMERIC, FIXED_MASK, QUIET_ZONE, QrMatrix, qr_matrix
from licences.qr_layout import correction, plan
from tests.tools import require_module

# ISO/IEC 18004 Annex I: "01234567" in numeric mode at 1-M, its 16 data codewords and the 10
# error correction codewords the standard prints for them.
ANNEX_DATA = bytes.fromhex("10200c56618 0ec11ec11ec11ec11ec11".replace(" ", ""))
ANNEX_ECC = bytes.fromhex("a524d4c1ed36c7872c55")

ALPHA = sorted(ALPHANUMERIC)
# Byte mode: characters outside the alphanumeric set, one UTF-8 byte each.
BYTES = "abcdefghijklmnopqrstuvwxyz0123456789-._~:/?#[]@!&'(),;="

# ISO/IEC 18004, table 7: characters a version holds at error correction M.
ALPHANUMERIC_M = (
    20, 38, 61, 90, 122, 154, 178, 221, 262, 311, 366, 419, 483, 528, 600, 656, 734, 816, 909,
    970, 1035, 1134, 1248, 1326, 1451, 1542, 1637, 1732, 1839, 1994, 2113, 2238, 2369, 2506,
    2632, 2780, 2894, 3054, 3220, 3391,
)  # fmt: skip
BYTE_M = (
    14, 26, 42, 62, 84, 106, 122, 152, 180, 213, 251, 287, 331, 362, 412, 450, 504, 560, 624,
    666, 711, 779, 857, 911, 997, 1059, 1125, 1190, 1264, 1370, 1452, 1538, 1628, 1722, 1809,
    1911, 1989, 2099, 2213, 2331,
)  # fmt: skip


def segno_symbol(text: str, mode: str) -> tuple[int, tuple[tuple[bool, ...], ...]]:
    code = segno.make_qr(
        text,
        error="m",
        boost_error=False,
        mask=FIXED_MASK,
        mode=mode,
        encoding="utf-8" if mode == "byte" else None,
    )
    return int(code.version), tuple(tuple(bool(cell) for cell in row) for row in code.matrix)


def full(alphabet: list[str] | str, length: int, seed: str) -> str:
    rnd = random.Random(seed)
    return "".join(rnd.choice(alphabet) for _ in range(length))


def test_error_correction_codewords_of_the_standards_worked_example() -> None:
    assert len(ANNEX_DATA) == 16
    assert correction(ANNEX_DATA, 10) == ANNEX_ECC


@pytest.mark.parametrize(
    ("alphabet", "mode", "capacities"),
    [(ALPHA, "alphanumeric", ALPHANUMERIC_M), (BYTES, "byte", BYTE_M)],
)
def test_every_version_matches_segnos_symbol(
    alphabet: list[str] | str, mode: str, capacities: tuple[int, ...]
) -> None:
    for version, capacity in enumerate(capacities, start=1):
        text = full(alphabet, capacity, f"{mode}-{version}")
        qr = qr_matrix(text)
        assert qr.version == version
        assert (qr.version, qr.modules) == segno_symbol(text, mode), f"version {version}"
        if version < 40:  # one character more takes the next version
            assert qr_matrix(text + alphabet[0]).version == version + 1


def test_chinese_text_goes_in_byte_mode_as_utf8() -> None:
    text = "电子证照核验" * 7  # 42 characters, 126 UTF-8 bytes: version 8 at M holds 152
    qr = qr_matrix(text)
    assert qr.version == 8
    assert (qr.version, qr.modules) == segno_symbol(text, "byte")


def test_plan_fills_the_data_region_once_in_order() -> None:
    # 1-M: 21 × 21 modules, 208 of them carry the 26 codewords (16 data, 10 correction) with no
    # remainder bits; the first bit lands bottom right and climbs the rightmost column pair.
    layout = plan(1, FIXED_MASK)
    assert layout.size == 21
    assert len(layout.positions) == 26 * 8
    assert len(set(layout.positions)) == len(layout.positions)
    assert layout.positions[:4] == (20 * 21 + 20, 20 * 21 + 19, 19 * 21 + 20, 19 * 21 + 19)
    # 2-M carries 44 codewords and 7 remainder bits (ISO/IEC 18004, table 1)
    assert len(plan(2, FIXED_MASK).positions) == 44 * 8 + 7


def image(qr: QrMatrix, scale: int = 4) -> Image.Image:
    side = (qr.size + 2 * QUIET_ZONE) * scale
    picture = Image.new("L", (side, side), 255)
    for r, row in enumerate(qr.modules):
        for col, dark in enumerate(row):
            if dark:
                x, y = (QUIET_ZONE + col) * scale, (QUIET_ZONE + r) * scale
                picture.paste(0, (x, y, x + scale, y + scale))
    return picture


@pytest.mark.parametrize("version", [1, 2, 7, 11, 14, 21, 27])
def test_zxing_reads_the_symbol_back(version: int) -> None:
    zxingcpp = require_module("zxingcpp")
    text = full(ALPHA, ALPHANUMERIC_M[version - 1], f"zxing-{version}")
    qr = qr_matrix(text)
    assert qr.version == version
    read = [b.text for b in zxingcpp.read_barcodes(image(qr))]
    assert read == [text]
