"""Hostile OFD packages: each is refused by name, bounded in time and memory, never a 500.

The attacks come first (a zip bomb, a ratio bomb, a lying size, path traversal, duplicate and
case-folded names, symbolic links, encryption, hidden bytes, a central directory that lies, a
billion laughs, an external entity, 10^5 entries, a non-zip, a truncated zip, a PDF in an OFD's
name); every refusal is checked for its indication, sub-indication and its words, and every
attack is built in the test (nothing large is committed).
"""

from __future__ import annotations

import io
import time
import tracemalloc
import zipfile

import pytest

from tests.ofd_zips import STORED, Raw, build, entry, zeros_entry
from verify.isolation import Inspector, Limits
from verify.ofd_package import Refused, looks_like_zip, read_package
from verify.ofd_xml import parse_xml
from verify.report import Indication, SubIndication

LIMITS = Limits()
OFD_XML = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<ofd:OFD xmlns:ofd="http://www.ofdspec.org/2016" Version="1.0" DocType="OFD">'
    b"<ofd:DocBody><ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot></ofd:DocBody></ofd:OFD>"
)


def refused(data: bytes, limits: Limits = LIMITS) -> Refused:
    with pytest.raises(Refused) as caught:
        read_package(data, limits)
    return caught.value


def assert_refusal(found: Refused, indication: Indication, sub: SubIndication, *words: str) -> None:
    inspection = found.inspection
    assert not inspection.ok
    assert (inspection.indication, inspection.sub) == (indication, sub), inspection.detail
    for word in words:
        assert word in inspection.detail, inspection.detail


def forbidden(data: bytes, *words: str) -> None:
    assert_refusal(refused(data), Indication.FAILED, SubIndication.FORMAT_FAILURE, *words)


def over_limit(data: bytes, *words: str) -> None:
    assert_refusal(refused(data), Indication.INDETERMINATE, SubIndication.LIMIT_EXCEEDED, *words)


def malformed(data: bytes, *words: str) -> None:
    assert_refusal(refused(data), Indication.INDETERMINATE, SubIndication.MALFORMED, *words)


# -- bombs ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gigabyte() -> Raw:
    """1 GiB of zeros, about a megabyte deflated, made here and never written to disk."""
    return zeros_entry("Doc_0/Res/font_0.ttf", 1 << 30)


def test_a_gigabyte_entry_is_refused_from_its_claim_before_inflating(gigabyte: Raw) -> None:
    data = build([entry("OFD.xml", OFD_XML), gigabyte])
    assert len(data) < 2 * 1024 * 1024
    tracemalloc.start()
    started = time.perf_counter()
    try:
        over_limit(data, "font_0.ttf", str(1 << 30), "inflates to")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - started < 1.0
    assert peak < 4 * 1024 * 1024  # nothing inflated


def test_a_bomb_that_lies_about_its_size_stops_inflating_at_the_claim(gigabyte: Raw) -> None:
    liar = Raw(gigabyte.name, gigabyte.payload, size=1000, crc=0)
    tracemalloc.start()
    try:
        over_limit(build([entry("OFD.xml", OFD_XML), liar]), "inflates past", "1000")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024  # one 64 KiB chunk, not a gigabyte


def test_a_ratio_bomb_under_the_size_cap_is_refused() -> None:
    bomb = zeros_entry("Doc_0/Pages/Page_0/Content.xml", 10 * 1024 * 1024)
    assert bomb.size < LIMITS.max_zip_entry_bytes
    over_limit(build([entry("OFD.xml", OFD_XML), bomb]), "压缩比", "Content.xml")


def test_many_entries_together_past_the_total_are_refused() -> None:
    limits = Limits(max_zip_total_bytes=1000, max_zip_ratio=10**6)
    entries = [entry(f"Doc_0/Res/r{i}.bin", bytes(400)) for i in range(3)]
    found = refused(build(entries), limits)
    assert_refusal(found, Indication.INDETERMINATE, SubIndication.LIMIT_EXCEEDED, "1000 bytes")


def test_a_hundred_thousand_entries_are_refused_by_count() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for i in range(100_000):
            archive.writestr(f"f{i}", b"")
    started = time.perf_counter()
    over_limit(buffer.getvalue(), "entries", str(LIMITS.max_zip_entries))
    assert time.perf_counter() - started < 0.5


def test_an_end_record_understating_the_count_is_refused() -> None:
    items = [entry("OFD.xml", OFD_XML), entry("Doc_0/Document.xml", b"<a/>")]
    forbidden(build(items, count=1), "central directory")


# -- names ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("../../etc/passwd", "'..'"),
        ("Doc_0/../../x.xml", "'..'"),
        ("Doc_0/./Document.xml", "'.'"),
        ("Doc_0//Document.xml", "empty segment"),
        ("/etc/passwd", "absolute"),
        ("Doc_0\\..\\x.xml", "backslash"),
        ("C:/Windows/x.xml", "drive letter"),
        ("Doc_0/a\x00b.xml", "control character"),
    ],
)
def test_path_traversal_and_odd_names_are_refused(name: str, words: str) -> None:
    forbidden(build([entry("OFD.xml", OFD_XML), entry(name, b"x")]), words)


def test_a_name_longer_than_the_cap_is_refused() -> None:
    over_limit(build([entry("a" * 300, b"x")]), "300 bytes")


def test_a_name_that_is_not_utf8_is_refused() -> None:
    forbidden(build([entry(b"Doc_0/\xff.xml", b"x", flags=0x0800)]), "UTF-8")


@pytest.mark.parametrize("second", ["OFD.xml", "ofd.XML", "Ofd.Xml"])
def test_duplicate_names_also_case_folded_are_refused(second: str) -> None:
    forbidden(build([entry("OFD.xml", OFD_XML), entry(second, b"<x/>")]), "duplicate")


def test_a_file_used_as_a_folder_is_refused() -> None:
    forbidden(build([entry("Doc_0", b"x"), entry("Doc_0/Document.xml", b"<a/>")]), "under a file")


def test_a_symbolic_link_entry_is_refused() -> None:
    link = entry(
        "Doc_0/Document.xml", b"/etc/passwd", made_by=(3 << 8) | 20, external=0o120777 << 16
    )
    forbidden(build([entry("OFD.xml", OFD_XML), link]), "symbolic link", "Document.xml")


def test_a_device_entry_is_refused() -> None:
    device = entry("Doc_0/x", b"", made_by=(3 << 8) | 20, external=0o020644 << 16)
    forbidden(build([device]), "not a regular file")


# -- the archive's own claims --------------------------------------------------------------------


def test_an_encrypted_entry_is_refused() -> None:
    forbidden(build([entry("OFD.xml", OFD_XML, flags=0x0001)]), "encrypted")


def test_an_unknown_compression_method_is_refused() -> None:
    odd = Raw(b"OFD.xml", b"xx", 2, 0, method=12)  # bzip2
    forbidden(build([odd]), "compression method 12")


def test_bytes_hidden_before_the_first_entry_are_refused() -> None:
    forbidden(build([entry("OFD.xml", OFD_XML)], prefix=b"%PDF-1.7 hidden"), "hidden")


def test_bytes_hidden_before_the_central_directory_are_refused() -> None:
    forbidden(build([entry("OFD.xml", OFD_XML)], gap=b"secret page"), "between the last entry")


def test_bytes_after_the_end_record_are_refused() -> None:
    malformed(build([entry("OFD.xml", OFD_XML)], suffix=b"trailing"), "end-of-directory")


def test_a_central_directory_at_another_offset_than_claimed_is_refused() -> None:
    forbidden(build([entry("OFD.xml", OFD_XML)], cd_shift=-4), "claims")


def test_two_names_sharing_one_entrys_bytes_are_refused() -> None:
    """The overlapping-entry bomb: many central records pointing at one local entry."""
    first = entry("OFD.xml", OFD_XML)
    second = entry("Doc_0/Document.xml", OFD_XML, offset=0, local_name=b"OFD.xml")
    forbidden(build([first, second]), "hidden between or under entries")


def test_a_local_header_naming_another_file_is_refused() -> None:
    forbidden(build([entry("OFD.xml", OFD_XML, local_name=b"EVIL.xml")]), "differs")


def test_a_crc_that_does_not_match_is_refused() -> None:
    item = entry("OFD.xml", OFD_XML)
    item.crc ^= 1
    forbidden(build([item]), "CRC")


def test_a_stored_entry_whose_sizes_differ_is_refused() -> None:
    item = entry("OFD.xml", OFD_XML, method=STORED)
    item.size += 5
    forbidden(build([item]), "stored entry")


def test_a_broken_deflate_stream_is_refused() -> None:
    item = entry("OFD.xml", OFD_XML * 20)
    item.payload = item.payload[: len(item.payload) // 2]
    forbidden(build([item]), "OFD.xml")


# -- not a zip at all ----------------------------------------------------------------------------


def test_text_named_ofd_is_not_a_zip() -> None:
    data = b"this is not a package, whatever its name says" * 3
    assert not looks_like_zip(data)
    malformed(data, "not a ZIP")


def test_a_truncated_zip_is_refused_as_unreadable() -> None:
    whole = build([entry("OFD.xml", OFD_XML), entry("Doc_0/Document.xml", b"<a/>" * 100)])
    cut = whole[: len(whole) // 2]
    assert looks_like_zip(cut)
    malformed(cut, "truncated")


def test_a_pdf_renamed_ofd_is_not_a_package() -> None:
    pdf = b"%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    assert not looks_like_zip(pdf)  # the service sends it down the PDF path, by content
    malformed(pdf, "not a ZIP")


def test_a_well_formed_package_reads_back_in_order() -> None:
    items = [entry("OFD.xml", OFD_XML), entry("Doc_0/Document.xml", b"<a/>", method=STORED)]
    package = read_package(build(items), LIMITS)
    assert list(package.files) == ["OFD.xml", "Doc_0/Document.xml"]
    assert package.files["OFD.xml"] == OFD_XML


def test_a_zipfile_written_package_with_folders_reads() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("Doc_0/", b"")
        archive.writestr("OFD.xml", OFD_XML)
    package = read_package(buffer.getvalue(), LIMITS)
    assert package.files == {"OFD.xml": OFD_XML}
    assert package.directories == {"Doc_0"}


# -- XML -----------------------------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<ofd:OFD xmlns:ofd="http://www.ofdspec.org/2016">&lol9;</ofd:OFD>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE ofd [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<ofd:OFD xmlns:ofd="http://www.ofdspec.org/2016">&xxe;</ofd:OFD>"""

PLAIN_DTD = b"""<?xml version="1.0"?><!DOCTYPE ofd SYSTEM "http://example.invalid/ofd.dtd">
<ofd:OFD xmlns:ofd="http://www.ofdspec.org/2016"/>"""


def xml_refused(data: bytes, limits: Limits = LIMITS) -> Refused:
    with pytest.raises(Refused) as caught:
        parse_xml("OFD.xml", data, limits)
    return caught.value


@pytest.mark.parametrize("document", [BILLION_LAUGHS, EXTERNAL_ENTITY, PLAIN_DTD])
def test_dtds_and_entities_are_refused(document: bytes) -> None:
    found = xml_refused(document)
    assert_refusal(found, Indication.FAILED, SubIndication.FORMAT_FAILURE, "OFD.xml", "DTD")


def test_deep_nesting_is_refused_while_reading() -> None:
    deep = b"<a>" * 10_000 + b"</a>" * 10_000
    found = xml_refused(deep)
    assert_refusal(found, Indication.INDETERMINATE, SubIndication.LIMIT_EXCEEDED, "deeper than 32")


def test_too_many_elements_are_refused_while_reading() -> None:
    wide = b"<a>" + b"<b/>" * 200_000 + b"</a>"
    found = xml_refused(wide)
    assert_refusal(found, Indication.INDETERMINATE, SubIndication.LIMIT_EXCEEDED, "100000")


def test_an_oversized_xml_file_is_refused_unread() -> None:
    found = xml_refused(b"<a>" + b" " * (5 * 1024 * 1024) + b"</a>")
    assert_refusal(found, Indication.INDETERMINATE, SubIndication.LIMIT_EXCEEDED, "bytes")


def test_xml_that_is_not_well_formed_is_malformed() -> None:
    found = xml_refused(b"<ofd:OFD><unclosed></ofd:OFD>")
    assert_refusal(found, Indication.INDETERMINATE, SubIndication.MALFORMED, "well-formed")


def test_plain_xml_parses_with_namespaces() -> None:
    root = parse_xml("OFD.xml", OFD_XML, LIMITS)
    assert root.tag == "{http://www.ofdspec.org/2016}OFD"


# -- in the limited worker -----------------------------------------------------------------------


@pytest.mark.slow
def test_the_worker_answers_a_bomb_with_its_reason_and_lives_on(gigabyte: Raw) -> None:
    """Through the real worker pool: the refusal names the entry; the next package still reads."""
    bomb = build([entry("OFD.xml", OFD_XML), Raw(gigabyte.name, gigabyte.payload, 1000, 0)])
    with Inspector(Limits(workers=1)) as inspector:
        found = inspector.inspect_ofd(bomb)
        assert (found.indication, found.sub) == (
            Indication.INDETERMINATE,
            SubIndication.LIMIT_EXCEEDED,
        )
        assert "inflates past" in found.detail
        fine = inspector.inspect_ofd(build([entry("OFD.xml", OFD_XML)]))
        assert fine.ok, fine.detail


# -- nothing the uploader wrote reaches the report -----------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["../请致电400-123-4567核实.xml", "Doc_0/请致电400-123-4567核实.xml", "Doc_0/Res/CALL-400.ttf"],
)
def test_an_entry_name_of_the_uploaders_choice_is_never_quoted(name: str) -> None:
    """Refused for traversal, or (a plain name) for the encryption flag set on it."""
    found = refused(build([entry("OFD.xml", OFD_XML), entry(name, b"x", flags=0x0801)]))
    assert "400" not in found.inspection.detail
    assert "an entry not named as a licence's" in found.inspection.detail
