"""An attack corpus made from a licence the service issued, the way published attacks on PDF
signatures build theirs (shadow attacks, incremental saving attacks, signature wrapping,
universal signature forgery), plus hostile and broken files. Each entry names the indications
it may get; none may be PASSED."""

from __future__ import annotations

import functools
import io
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import pikepdf
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers

from tests import tampering

FAILED = frozenset({"FAILED"})
INDETERMINATE = frozenset({"INDETERMINATE"})
NOT_PASSED = frozenset({"FAILED", "INDETERMINATE"})


@dataclass(frozen=True)
class Attack:
    name: str
    build: Callable[[bytes], bytes]
    expected: frozenset[str]
    sub: frozenset[str] | None = None  # acceptable sub-indications, when they are fixed


def _writer(pdf: bytes) -> IncrementalPdfFileWriter:
    return IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)


def _out(writer: IncrementalPdfFileWriter) -> bytes:
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def _name(value: str) -> generic.NameObject:
    return generic.NameObject(value)


def _first_page(writer: IncrementalPdfFileWriter) -> generic.DictionaryObject:
    page = writer.root["/Pages"]["/Kids"][0].get_object()
    assert isinstance(page, generic.DictionaryObject)
    return page


def shadow_hide(pdf: bytes) -> bytes:
    """Shadow *hide*: an overlay annotation whose appearance is a white box over the content."""
    writer = _writer(pdf)
    page = _first_page(writer)
    appearance = generic.StreamObject(
        {
            _name("/Type"): _name("/XObject"),
            _name("/Subtype"): _name("/Form"),
            _name("/BBox"): generic.ArrayObject(
                [generic.NumberObject(v) for v in (0, 0, 400, 200)]
            ),
        },
        stream_data=b"1 g 0 0 400 200 re f",
    )
    annot = generic.DictionaryObject(
        {
            _name("/Type"): _name("/Annot"),
            _name("/Subtype"): _name("/Square"),
            _name("/Rect"): generic.ArrayObject(
                [generic.NumberObject(v) for v in (100, 400, 500, 600)]
            ),
            _name("/AP"): generic.DictionaryObject({_name("/N"): writer.add_object(appearance)}),
        }
    )
    page[_name("/Annots")] = generic.ArrayObject([writer.add_object(annot)])
    writer.update_container(page)
    return _out(writer)


def shadow_hide_and_replace(pdf: bytes) -> bytes:
    """Shadow *hide-and-replace*: the page keeps its content and gets a second stream drawn on
    top, blanking the holder's name and writing another."""
    writer = _writer(pdf)
    page = _first_page(writer)
    overlay = generic.StreamObject(
        stream_data=b"q 1 g 50 600 500 60 re f Q BT /F1 18 Tf 60 620 Td (Mallory) Tj ET"
    )
    original = page["/Contents"]
    items = (
        list(original) if isinstance(original, generic.ArrayObject) else [page.raw_get("/Contents")]
    )
    page[_name("/Contents")] = generic.ArrayObject([*items, writer.add_object(overlay)])
    writer.update_container(page)
    return _out(writer)


def shadow_replace_stream(pdf: bytes) -> bytes:
    """Shadow *replace*: the existing content stream object is overwritten in a new revision."""
    writer = _writer(pdf)
    page = _first_page(writer)
    ref = page.raw_get("/Contents")
    if isinstance(ref, generic.ArrayObject):
        ref = ref[0]
    assert isinstance(ref, generic.IndirectObject)
    stream = generic.StreamObject(stream_data=b"BT /F1 24 Tf 100 700 Td (FORGED) Tj ET")
    writer.objects[(ref.generation, ref.idnum)] = stream
    writer.mark_update(ref)
    return _out(writer)


def remove_perms(pdf: bytes) -> bytes:
    """Incremental update that drops /Perms (the DocMDP lock) from the catalogue."""
    writer = _writer(pdf)
    del writer.root["/Perms"]
    writer.update_root()
    return _out(writer)


def weaken_docmdp(pdf: bytes) -> bytes:
    """A new revision of the signature dictionary claiming DocMDP P=3 (annotations allowed)."""
    writer = _writer(pdf)
    perms = writer.root["/Perms"]
    ref = perms.raw_get("/DocMDP")
    sig = ref.get_object()
    sig_ref = sig["/Reference"][0]
    params = sig_ref["/TransformParams"]
    params[_name("/P")] = generic.NumberObject(3)
    writer.mark_update(ref)
    return _out(writer)


def second_signature(pdf: bytes) -> bytes:
    """An approval signature by a key outside the domain, appended after the seal."""
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    cert = _self_signed(key)
    signer = tampering._simple_signer(key, cert)
    meta = signers.PdfSignatureMetadata(field_name="Second")
    out = io.BytesIO()

    class Careless(signers.PdfSigner):
        """An attacker's tool ignores the DocMDP lock that pyHanko honours."""

        def _enforce_certification_constraints(self, reader: object) -> None:
            return None

    Careless(
        meta, signer, new_field_spec=fields.SigFieldSpec("Second", box=(10, 10, 60, 60))
    ).sign_pdf(_writer(pdf), output=out)
    return out.getvalue()


def _self_signed(key: object) -> object:
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Mallory")])
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())  # type: ignore[attr-defined]
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())  # type: ignore[arg-type]
    )


def _byte_range(pdf: bytes) -> re.Match[bytes]:
    match = re.search(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]", pdf)
    assert match is not None
    return match


def _same_length(old: bytes, new: bytes) -> bytes:
    assert len(new) <= len(old)
    return new + b" " * (len(old) - len(new))


def crafted_byte_range(pdf: bytes) -> bytes:
    """The ByteRange is rewritten in place to cover less than the file."""
    match = _byte_range(pdf)
    _, b, c, d = (int(x) for x in match.groups())
    crafted = f"/ByteRange [0 {b} {c} {d // 2}]".encode()
    return pdf[: match.start()] + _same_length(match.group(0), crafted) + pdf[match.end() :]


def missing_byte_range(pdf: bytes) -> bytes:
    """The ByteRange key is blanked out in place (same length), so nothing says what is signed."""
    match = _byte_range(pdf)
    return pdf[: match.start()] + b" " * len(match.group(0)) + pdf[match.end() :]


def empty_contents(pdf: bytes) -> bytes:
    """The CMS in /Contents is replaced by zeros (the placeholder of an unsigned field)."""
    match = _byte_range(pdf)
    _, b, c, _ = (int(x) for x in match.groups())
    return pdf[: b + 1] + b"0" * (c - b - 2) + pdf[c - 1 :]


def signature_wrapping(pdf: bytes) -> bytes:
    """Signature wrapping: new content is inserted between the signed ranges (after /Contents),
    and the second range is moved to follow it, so the signed bytes themselves are unchanged."""
    match = _byte_range(pdf)
    a, b, c, d = (int(x) for x in match.groups())
    payload = b"\n99 0 obj\n<< /Length 30 >>\nstream\nBT (FORGED) Tj ET\nendstream\nendobj\n"
    moved = f"/ByteRange [{a} {b} {c + len(payload)} {d}]".encode()
    head = pdf[: match.start()] + _same_length(match.group(0), moved) + pdf[match.end() : c]
    return head + payload + pdf[c:]


def broken_startxref(pdf: bytes) -> bytes:
    index = pdf.rfind(b"startxref")
    return pdf[:index] + b"startxref\n999999999\n%%EOF\n"


def new_root_update(pdf: bytes) -> bytes:
    """Universal-forgery style: a hand-written update whose trailer points to a fresh catalogue
    with no signature, so a careless validator shows pages that were never sealed."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    reader = PdfFileReader(io.BytesIO(pdf), strict=False)
    size = int(reader.trailer["/Size"])
    pages = reader.root.raw_get("/Pages")
    prev = int(pdf[pdf.rfind(b"startxref") + 9 :].split()[0])
    obj = f"\n{size} 0 obj\n<< /Type /Catalog /Pages {pages.idnum} 0 R >>\nendobj\n".encode()
    offset = len(pdf) + 1
    xref_at = len(pdf) + len(obj)
    tail = (
        f"xref\n{size} 1\n{offset:010d} 00000 n \n"
        f"trailer\n<< /Size {size + 1} /Root {size} 0 R /Prev {prev} >>\n"
        f"startxref\n{xref_at}\n%%EOF\n"
    ).encode()
    return pdf + obj + tail


def appended_garbage_trailer(pdf: bytes) -> bytes:
    return pdf + b"\ntrailer\n<< /Size 9999 /Root 999 0 R /Prev 12 >>\nstartxref\n12\n%%EOF\n"


def _with_root_entry(
    key: str, value_factory: Callable[[IncrementalPdfFileWriter], object]
) -> Callable[[bytes], bytes]:
    def build(pdf: bytes) -> bytes:
        writer = _writer(pdf)
        writer.root[_name(key)] = value_factory(writer)  # type: ignore[assignment]
        writer.update_root()
        return _out(writer)

    return build


def _javascript(writer: IncrementalPdfFileWriter) -> object:
    return writer.add_object(
        generic.DictionaryObject(
            {
                _name("/S"): _name("/JavaScript"),
                _name("/JS"): generic.TextStringObject("app.alert('有效')"),
            }
        )
    )


def _launch(writer: IncrementalPdfFileWriter) -> object:
    return writer.add_object(
        generic.DictionaryObject(
            {_name("/S"): _name("/Launch"), _name("/F"): generic.TextStringObject("calc.exe")}
        )
    )


def _embedded(writer: IncrementalPdfFileWriter) -> object:
    stream = generic.StreamObject(
        {_name("/Type"): _name("/EmbeddedFile")}, stream_data=b"MZ not really"
    )
    spec = generic.DictionaryObject(
        {
            _name("/Type"): _name("/Filespec"),
            _name("/F"): generic.TextStringObject("readme.exe"),
            _name("/EF"): generic.DictionaryObject({_name("/F"): writer.add_object(stream)}),
        }
    )
    names = generic.ArrayObject([generic.TextStringObject("readme.exe"), writer.add_object(spec)])
    return generic.DictionaryObject(
        {_name("/EmbeddedFiles"): generic.DictionaryObject({_name("/Names"): names})}
    )


def _plain_pdf(build: Callable[[pikepdf.Pdf], None]) -> bytes:
    pdf = pikepdf.new()
    pdf.add_blank_page()
    build(pdf)
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


@functools.cache
def _zeros_compressed() -> bytes:
    return zlib.compress(b"\0" * (128 * 1024 * 1024), 1)


def bomb(_: bytes) -> bytes:
    """A 600 KiB file that inflates to 128 MiB."""

    def build(pdf: pikepdf.Pdf) -> None:
        stream = pikepdf.Stream(pdf, b"")
        stream.write(_zeros_compressed(), filter=pikepdf.Name.FlateDecode)
        pdf.pages[0].Contents = pdf.make_indirect(stream)

    return _plain_pdf(build)


def many_objects(_: bytes) -> bytes:
    def build(pdf: pikepdf.Pdf) -> None:
        pdf.Root.Junk = pikepdf.Array(
            [pdf.make_indirect(pikepdf.Dictionary(N=i)) for i in range(30_000)]
        )

    return _plain_pdf(build)


def deep_nesting(_: bytes) -> bytes:
    depth = 5_000
    body = b"[" * depth + b"]" * depth
    obj = b"1 0 obj\n<< /Type /Catalog /Deep " + body + b" >>\nendobj\n"
    head = b"%PDF-1.7\n"
    xref_at = len(head) + len(obj)
    xref = b"xref\n0 2\n0000000000 65535 f \n" + f"{len(head):010d} 00000 n \n".encode()
    trailer = f"trailer\n<< /Size 2 /Root 1 0 R >>\nstartxref\n{xref_at}\n%%EOF\n".encode()
    return head + obj + xref + trailer


def moderately_deep(_: bytes) -> bytes:
    """Nesting below qpdf's own limit but above ours."""

    def build(pdf: pikepdf.Pdf) -> None:
        value = pikepdf.Array([])
        for _ in range(100):
            value = pikepdf.Array([value])
        pdf.Root.Deep = value

    return _plain_pdf(build)


def many_pages(_: bytes) -> bytes:
    def build(pdf: pikepdf.Pdf) -> None:
        for _ in range(40):
            pdf.add_blank_page()

    return _plain_pdf(build)


def plain_javascript(_: bytes) -> bytes:
    def build(pdf: pikepdf.Pdf) -> None:
        pdf.Root.OpenAction = pikepdf.Dictionary(S=pikepdf.Name.JavaScript, JS="app.alert(1)")

    return _plain_pdf(build)


ATTACKS: tuple[Attack, ...] = (
    Attack("annotation", tampering.add_annotation, FAILED),
    Attack("form_field", tampering.add_form_field, FAILED),
    Attack("replace_page_content", tampering.replace_page_content, FAILED),
    Attack("shadow_hide", shadow_hide, FAILED),
    Attack("shadow_hide_and_replace", shadow_hide_and_replace, FAILED),
    Attack("shadow_replace_stream", shadow_replace_stream, FAILED),
    Attack("remove_perms", remove_perms, FAILED),
    Attack("weaken_docmdp", weaken_docmdp, FAILED),
    Attack("second_signature", second_signature, FAILED),
    Attack("crafted_byte_range", crafted_byte_range, FAILED),
    Attack("missing_byte_range", missing_byte_range, INDETERMINATE),
    Attack("empty_contents", empty_contents, INDETERMINATE),
    Attack("signature_wrapping", signature_wrapping, NOT_PASSED),
    Attack("flip_signed_byte", tampering.flip_byte_in_signed_range, FAILED),
    Attack("broken_startxref", broken_startxref, NOT_PASSED),
    Attack("new_root_update", new_root_update, FAILED),
    Attack("garbage_trailer", appended_garbage_trailer, NOT_PASSED),
    Attack(
        "javascript",
        _with_root_entry("/OpenAction", _javascript),
        FAILED,
        frozenset({"FORMAT_FAILURE"}),
    ),
    Attack(
        "launch", _with_root_entry("/OpenAction", _launch), FAILED, frozenset({"FORMAT_FAILURE"})
    ),
    Attack(
        "embedded_file",
        _with_root_entry("/Names", _embedded),
        FAILED,
        frozenset({"FORMAT_FAILURE"}),
    ),
    Attack("plain_javascript", plain_javascript, FAILED, frozenset({"FORMAT_FAILURE"})),
    Attack("decompression_bomb", bomb, INDETERMINATE, frozenset({"LIMIT_EXCEEDED"})),
    Attack("many_objects", many_objects, INDETERMINATE, frozenset({"LIMIT_EXCEEDED"})),
    Attack("many_pages", many_pages, INDETERMINATE, frozenset({"LIMIT_EXCEEDED"})),
    Attack("deep_nesting", deep_nesting, INDETERMINATE),
    Attack("moderately_deep", moderately_deep, INDETERMINATE, frozenset({"LIMIT_EXCEEDED"})),
    Attack("empty", lambda _: b"", INDETERMINATE, frozenset({"MALFORMED"})),
    Attack("truncated", lambda pdf: pdf[: len(pdf) // 2], INDETERMINATE),
    Attack("header_only", lambda _: b"%PDF-1.7\n", INDETERMINATE, frozenset({"MALFORMED"})),
    Attack(
        "png", lambda _: b"\x89PNG\r\n\x1a\n" + b"\0" * 64, INDETERMINATE, frozenset({"MALFORMED"})
    ),
    Attack("random", lambda _: bytes(range(256)) * 16, INDETERMINATE, frozenset({"MALFORMED"})),
)


def build_corpus(sealed: bytes) -> dict[str, bytes]:
    return {attack.name: attack.build(sealed) for attack in ATTACKS}
