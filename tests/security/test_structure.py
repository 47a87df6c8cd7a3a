"""The structure inspection of an upload (verify/structure.py), with tiny files made by pikepdf:
object and page counts, nesting depth, the decoded size of all streams together (a bomb is
refused once past the limit), and active content — JavaScript, actions, embedded files — refused
by name wherever it hides (a dictionary key, an action's /S, nested direct objects, the
trailer). Each limit is tried at the limit (passes) and one past it (refused)."""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable
from dataclasses import replace

import pikepdf
import pytest

import verify.structure as structure_module
from verify.isolation import Limits
from verify.report import Indication, SubIndication
from verify.structure import Inspection, _decoded_size, structure

LIMITS = Limits()


def made(build: Callable[[pikepdf.Pdf], None] = lambda pdf: None, pages: int = 1) -> bytes:
    pdf = pikepdf.new()
    for _ in range(pages):
        pdf.add_blank_page()
    build(pdf)
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def limited(**changes: int) -> Limits:
    return replace(LIMITS, **changes)


def over(check: str, detail: str) -> Inspection:
    return Inspection(False, check, detail, Indication.INDETERMINATE, SubIndication.LIMIT_EXCEEDED)


def active(detail: str) -> Inspection:
    return Inspection(False, "active_content", detail, Indication.FAILED,
                      SubIndication.FORMAT_FAILURE)


def test_a_plain_page_passes_with_its_counts() -> None:
    assert structure(made(), LIMITS) == Inspection(True, objects=4, pages=1)
    assert structure(made(pages=2), LIMITS) == Inspection(True, objects=6, pages=2)


def test_unreadable_bytes_are_malformed() -> None:
    assert structure(b"%PDF-1.7 not really", LIMITS) == Inspection(
        False, "format", "不是可读的PDF / not a readable PDF: PdfError", Indication.INDETERMINATE,
        SubIndication.MALFORMED)


def test_the_object_limit() -> None:
    data = made()
    assert structure(data, limited(max_objects=4)).ok
    assert structure(data, limited(max_objects=3)) == over("structure", "对象过多 / 4 objects > 3")


def test_the_page_limit() -> None:
    data = made(pages=3)
    assert structure(data, limited(max_pages=3)).ok
    assert structure(data, limited(max_pages=2)) == over("structure", "页数过多 / 3 pages > 2")


def nested(depth: int) -> bytes:
    """A direct array nested ``depth`` levels below the catalog."""
    def build(pdf: pikepdf.Pdf) -> None:
        value = pikepdf.Array([1])
        for _ in range(depth - 1):
            value = pikepdf.Array([value])
        pdf.Root.Deep = value
    return made(build)


def test_the_nesting_limit() -> None:
    assert structure(nested(3), limited(max_depth=3)).ok
    assert structure(nested(4), limited(max_depth=3)) == over(
        "structure", "嵌套过深 / nesting deeper than 3")


def test_nesting_in_dictionaries_counts_too() -> None:
    def build(pdf: pikepdf.Pdf) -> None:
        pdf.Root.Deep = pikepdf.Dictionary(A=pikepdf.Dictionary(B=pikepdf.Dictionary(C=1)))
    assert structure(made(build), limited(max_depth=3)).ok
    assert structure(made(build), limited(max_depth=2)) == over(
        "structure", "嵌套过深 / nesting deeper than 2")


def streams(*streams: tuple[bytes, object]) -> bytes:
    """A page without content, plus one stream per (raw bytes, /Filter)."""
    def build(pdf: pikepdf.Pdf) -> None:
        del pdf.pages[0].obj["/Contents"]
        held = []
        for raw, filters in streams:
            stream = pikepdf.Stream(pdf, raw)
            if filters is not None:
                stream.Filter = filters
            held.append(pdf.make_indirect(stream))
        pdf.Root.Held = pikepdf.Array(held)
    return made(build)


BODY = bytes(range(256)) * 40  # 10,240 bytes


@pytest.mark.parametrize("filters", [pikepdf.Name.FlateDecode, pikepdf.Array([pikepdf.Name.FlateDecode])],
                         ids=["name", "array"])
def test_a_flate_bomb_is_refused_past_the_decoded_limit(filters: object) -> None:
    data = streams((zlib.compress(BODY), filters))
    assert structure(data, limited(max_stream_bytes=len(BODY))).ok
    assert structure(data, limited(max_stream_bytes=len(BODY) - 1)) == over(
        "structure", f"解压后过大 / decoded streams exceed {len(BODY) - 1} bytes")


def test_a_large_bomb_stops_inflating_soon_after_the_limit() -> None:
    bomb = zlib.compress(b"\0" * (8 * 1024 * 1024), 9)
    refused = structure(streams((bomb, pikepdf.Name.FlateDecode)), limited(max_stream_bytes=70_000))
    assert refused == over("structure", "解压后过大 / decoded streams exceed 70000 bytes")


def test_all_streams_count_together() -> None:
    half = zlib.compress(BODY)
    data = streams((half, pikepdf.Name.FlateDecode), (half, pikepdf.Name.FlateDecode))
    assert structure(data, limited(max_stream_bytes=2 * len(BODY))).ok
    assert not structure(data, limited(max_stream_bytes=2 * len(BODY) - 1)).ok


@pytest.mark.parametrize(("raw", "filters", "size"), [
    (BODY, None, len(BODY)),
    (BODY.hex().encode() + b">", pikepdf.Name.ASCIIHexDecode, len(BODY)),
    (zlib.compress(BODY) + b"trailing", pikepdf.Name.FlateDecode, len(BODY)),
    (zlib.compress(BODY)[:-4], pikepdf.Name.FlateDecode, len(BODY)),  # no checksum
    (zlib.compress(BODY)[:-50], pikepdf.Name.FlateDecode, 5417),  # qpdf recovers this much
], ids=["unfiltered", "hex", "trailing-bytes", "no-checksum", "truncated"])
def test_other_streams_are_counted_as_qpdf_decodes_them(raw: bytes, filters: object, size: int) -> None:
    data = streams((raw, filters))
    assert structure(data, limited(max_stream_bytes=size)).ok
    assert structure(data, limited(max_stream_bytes=size - 1)) == over(
        "structure", f"解压后过大 / decoded streams exceed {size - 1} bytes")


@pytest.mark.parametrize(("key", "detail"), [
    ("/JS", "含有JavaScript脚本 / contains JavaScript; a licence never does"),
    ("/JavaScript", "含有JavaScript脚本 / contains JavaScript; a licence never does"),
    ("/Launch", "含有启动动作 / contains launch action; a licence never does"),
    ("/OpenAction", "含有打开动作 / contains open action; a licence never does"),
    ("/AA", "含有附加动作 / contains additional actions; a licence never does"),
    ("/EmbeddedFiles", "含有嵌入文件 / contains embedded files; a licence never does"),
    ("/EmbeddedFile", "含有嵌入文件 / contains embedded file; a licence never does"),
    ("/RichMedia", "含有活动内容 / contains rich media; a licence never does"),
    ("/XFA", "含有活动内容 / contains XFA form; a licence never does"),
    ("/SubmitForm", "含有活动内容 / contains submit-form action; a licence never does"),
    ("/ImportData", "含有活动内容 / contains import-data action; a licence never does"),
    ("/GoToR", "含有活动内容 / contains remote go-to action; a licence never does"),
    ("/URI", "含有活动内容 / contains URI action; a licence never does"),
])
def test_active_content_is_refused_by_name(key: str, detail: str) -> None:
    def as_key(pdf: pikepdf.Pdf) -> None:
        pdf.Root[key] = pikepdf.Dictionary()

    def as_action(pdf: pikepdf.Pdf) -> None:
        pdf.pages[0].obj.Annots = pikepdf.Array([pikepdf.Dictionary(
            Type=pikepdf.Name.Annot, A=pikepdf.Dictionary(S=pikepdf.Name(key)))])

    assert structure(made(as_key), LIMITS) == active(detail)
    assert structure(made(as_action), LIMITS) == active(detail)


def test_a_harmless_action_type_is_not_refused() -> None:
    def build(pdf: pikepdf.Pdf) -> None:
        pdf.Root.Link = pikepdf.Dictionary(S=pikepdf.Name.GoTo, D=pikepdf.Array([0]))
    assert structure(made(build), LIMITS).ok


def test_active_content_deep_in_direct_objects_and_streams_is_found() -> None:
    def deep(pdf: pikepdf.Pdf) -> None:
        pdf.Root.Deep = pikepdf.Array([pikepdf.Array([pikepdf.Dictionary(JS=pikepdf.String("x"))])])

    def in_stream(pdf: pikepdf.Pdf) -> None:
        stream = pikepdf.Stream(pdf, b"x")
        stream.Launch = pikepdf.Dictionary()
        pdf.Root.Held = pdf.make_indirect(stream)

    assert structure(made(deep), LIMITS) == active(
        "含有JavaScript脚本 / contains JavaScript; a licence never does")
    assert structure(made(in_stream), LIMITS) == active(
        "含有启动动作 / contains launch action; a licence never does")


def test_active_content_in_the_trailer_is_found() -> None:
    def build(pdf: pikepdf.Pdf) -> None:
        pdf.trailer.AA = pikepdf.Dictionary()
    assert structure(made(build), LIMITS) == active(
        "含有附加动作 / contains additional actions; a licence never does")


def test_the_trailer_is_held_to_the_nesting_limit() -> None:
    def build(pdf: pikepdf.Pdf) -> None:
        pdf.trailer.Info2 = pikepdf.Dictionary(A=pikepdf.Dictionary(B=1))
    assert structure(made(build), limited(max_depth=2)).ok
    assert structure(made(build), limited(max_depth=1)) == over(
        "structure", "嵌套过深 / nesting deeper than 1")


def test_a_stream_neither_zlib_nor_qpdf_can_decode_raises_for_the_worker_to_refuse() -> None:
    with pytest.raises(pikepdf.DataDecodingError):
        structure(streams((b"not flate at all", pikepdf.Name.FlateDecode)), LIMITS)


class FakeStream:
    """A stream as ``_decoded_size`` sees it, with qpdf's full decoding (``read_bytes``) told
    apart by its length (``qpdf`` bytes) and counted."""

    def __init__(self, raw: bytes, filters: object = pikepdf.Name.FlateDecode,
                 qpdf: int = 7) -> None:
        self.raw, self.filters, self.qpdf, self.decoded = raw, filters, qpdf, 0

    def get(self, key: str) -> object:
        assert key == "/Filter"
        return self.filters

    def read_raw_bytes(self) -> bytes:
        return self.raw

    def read_bytes(self) -> bytes:
        self.decoded += 1
        return b"q" * self.qpdf


BOMB = zlib.compress(b"\0" * (8 * 1024 * 1024), 9)


@pytest.mark.parametrize(("budget", "size"), [
    (70_000, 131_072), (65_536, 131_072), (65_535, 65_536), (0, 65_536),
])
def test_a_bomb_is_inflated_a_chunk_past_its_budget_and_no_further(budget: int, size: int) -> None:
    stream = FakeStream(BOMB)
    assert _decoded_size(stream, budget) == size
    assert stream.decoded == 0


@pytest.mark.parametrize("filters", [pikepdf.Name.FlateDecode,
                                     pikepdf.Array([pikepdf.Name.FlateDecode])],
                         ids=["name", "array"])
@pytest.mark.parametrize("budget", [len(BODY), len(BODY) + 1, 10**9])
def test_a_whole_flate_stream_is_counted_without_qpdf(filters: object, budget: int) -> None:
    stream = FakeStream(zlib.compress(BODY), filters)
    assert (_decoded_size(stream, budget), stream.decoded) == (len(BODY), 0)


@pytest.mark.parametrize(("raw", "filters", "inflated"), [
    (zlib.compress(BODY) + b"more", pikepdf.Name.FlateDecode, len(BODY)),
    (zlib.compress(BODY)[:-4], pikepdf.Name.FlateDecode, len(BODY)),
    (zlib.compress(BODY)[:-50], pikepdf.Name.FlateDecode, 5417),
    (b"not flate", pikepdf.Name.FlateDecode, 0),
    (BODY, pikepdf.Name.ASCIIHexDecode, 0),
    (zlib.compress(BODY), pikepdf.Array([pikepdf.Name.FlateDecode, pikepdf.Name.FlateDecode]), 0),
    (zlib.compress(BODY), pikepdf.Array([pikepdf.Name.ASCIIHexDecode]), 0),
], ids=["trailing", "no-checksum", "truncated", "not-zlib", "hex", "two-filters", "one-other"])
def test_other_streams_are_left_to_qpdf(raw: bytes, filters: object, inflated: int) -> None:
    """Within the budget (up to what zlib inflated of it), qpdf decides the size."""
    for budget in (inflated, 10**9):
        stream = FakeStream(raw, filters)
        assert (_decoded_size(stream, budget), stream.decoded) == (7, 1)
    if inflated:  # past the budget, what zlib inflated already refuses it
        stream = FakeStream(raw, filters)
        assert (_decoded_size(stream, inflated - 1), stream.decoded) == (inflated, 0)


def test_an_unfiltered_stream_counts_its_raw_bytes() -> None:
    stream = FakeStream(b"abc", None)
    assert (_decoded_size(stream, 0), stream.decoded) == (3, 0)


def test_each_stream_gets_what_is_left_of_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    budgets: list[int] = []

    def counted(stream: object, budget: int) -> int:
        budgets.append(budget)
        return 100

    monkeypatch.setattr(structure_module, "_decoded_size", counted)
    data = streams((b"a", None), (b"b", None), (b"c", None))
    assert structure(data, limited(max_stream_bytes=250)) == over(
        "structure", "解压后过大 / decoded streams exceed 250 bytes")
    assert budgets == [250, 150, 50]
