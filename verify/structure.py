"""What a licence file may contain, checked with pikepdf before anything else reads it.

A licence this service issues is one page, a few hundred objects, no JavaScript, no actions, no
embedded files; anything else is refused by name, with the check that failed. The structure
limits (objects, pages, nesting, decoded bytes) are the caller's (``verify.isolation.Limits``);
this runs in the limited worker process, before pyHanko opens the same bytes.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from verify.report import Indication, SubIndication

if TYPE_CHECKING:
    from verify.isolation import Limits

DANGEROUS_KEYS = {
    "/JS": "JavaScript",
    "/JavaScript": "JavaScript",
    "/Launch": "launch action",
    "/OpenAction": "open action",
    "/AA": "additional actions",
    "/EmbeddedFiles": "embedded files",
    "/EmbeddedFile": "embedded file",
    "/RichMedia": "rich media",
    "/XFA": "XFA form",
    "/SubmitForm": "submit-form action",
    "/ImportData": "import-data action",
    "/GoToR": "remote go-to action",
    "/URI": "URI action",
}


@dataclass(frozen=True)
class Inspection:
    """What the inspection found: ``ok`` or the named check that failed, and why (small and
    picklable: a refusal is all that crosses back from the worker, else ``SignatureFacts``)."""

    ok: bool
    check: str = "inspection"
    detail: str = ""
    indication: Indication = Indication.PASSED
    sub: SubIndication | None = None
    objects: int = 0
    pages: int = 0


def refuse(check: str, detail: str, indication: Indication, sub: SubIndication) -> Inspection:
    return Inspection(False, check, detail, indication, sub)


def structure(data: bytes, limits: Limits) -> Inspection:
    """pikepdf: object, page, nesting and decoded-size limits, and no active content."""
    import io

    import pikepdf

    try:
        pdf = pikepdf.open(io.BytesIO(data))
    except Exception as exc:
        return refuse(
            "format",
            f"不是可读的PDF / not a readable PDF: {type(exc).__name__}",
            Indication.INDETERMINATE,
            SubIndication.MALFORMED,
        )
    with pdf:
        objects = len(pdf.objects)
        if objects > limits.max_objects:
            return refuse(
                "structure",
                f"对象过多 / {objects} objects > {limits.max_objects}",
                Indication.INDETERMINATE,
                SubIndication.LIMIT_EXCEEDED,
            )
        pages = len(pdf.pages)
        if pages > limits.max_pages:
            return refuse(
                "structure",
                f"页数过多 / {pages} pages > {limits.max_pages}",
                Indication.INDETERMINATE,
                SubIndication.LIMIT_EXCEEDED,
            )
        decoded = 0
        for obj in pdf.objects:
            found = _scan(obj, limits.max_depth)
            if found is not None:
                return found
            if isinstance(obj, pikepdf.Stream):
                decoded += _decoded_size(obj, limits.max_stream_bytes - decoded)
                if decoded > limits.max_stream_bytes:
                    return refuse(
                        "structure",
                        f"解压后过大 / decoded streams exceed {limits.max_stream_bytes} bytes",
                        Indication.INDETERMINATE,
                        SubIndication.LIMIT_EXCEEDED,
                    )
        found = _scan(pdf.trailer, limits.max_depth)
        if found is not None:
            return found
    return Inspection(True, objects=objects, pages=pages)


def _decoded_size(stream: Any, budget: int) -> int:
    """How many bytes ``stream`` decodes to, counted without keeping them, and at most a little
    past ``budget``: a bomb is refused once it passes the limit, not after it has been inflated
    in full. A licence's streams are all Flate (its images inflate to about a megabyte, which
    need not be held); other filter chains are decoded by qpdf as before, as are Flate streams
    zlib refuses, cut short or followed by more bytes (qpdf may recover what zlib cannot, and
    answers the same as it did). Flate alone counts before any predictor is undone, so never
    less than the stream decodes to."""
    import pikepdf

    filters = stream.get("/Filter")
    if isinstance(filters, pikepdf.Array) and len(filters) == 1:
        filters = filters[0]
    if filters is None:
        return len(stream.read_raw_bytes())
    if filters != pikepdf.Name.FlateDecode:
        return len(stream.read_bytes())
    inflate = zlib.decompressobj()
    pending, size = stream.read_raw_bytes(), 0
    try:
        while pending and size <= budget and not inflate.eof:
            size += len(inflate.decompress(pending, _INFLATE_CHUNK))
            pending = inflate.unconsumed_tail
    except zlib.error:
        return len(stream.read_bytes())
    if size <= budget and not (inflate.eof and not inflate.unused_data):
        return len(stream.read_bytes())  # truncated, or bytes after the end: qpdf's call
    return size


# Below the C allocator's mmap threshold, so each chunk reuses memory instead of mapping it
# afresh (measured: 64 KiB chunks 3.7 ms a licence, 256 KiB 5.3 ms).
_INFLATE_CHUNK = 64 * 1024


def _scan(root: Any, max_depth: int) -> Inspection | None:
    """Depth-first over direct objects (indirect ones are scanned on their own), iteratively,
    so a deeply nested file cannot overflow the stack."""
    import pikepdf

    stack: list[tuple[Any, int]] = [(root, 0)]
    while stack:
        obj, depth = stack.pop()
        if depth > max_depth:
            return refuse(
                "structure",
                f"嵌套过深 / nesting deeper than {max_depth}",
                Indication.INDETERMINATE,
                SubIndication.LIMIT_EXCEEDED,
            )
        if isinstance(obj, pikepdf.Dictionary | pikepdf.Stream):
            for key in obj.keys():
                what = DANGEROUS_KEYS.get(key)
                if what is not None or (key == "/S" and str(obj.get("/S")) in DANGEROUS_KEYS):
                    name = what or DANGEROUS_KEYS[str(obj.get("/S"))]
                    return refuse(
                        "active_content",
                        f"含有{_ZH.get(name, '活动内容')} / contains {name}; a licence never does",
                        Indication.FAILED,
                        SubIndication.FORMAT_FAILURE,
                    )
                value = obj.get(key)
                if isinstance(value, pikepdf.Dictionary | pikepdf.Array) and not value.is_indirect:
                    stack.append((value, depth + 1))
        elif isinstance(obj, pikepdf.Array):
            for value in obj:
                if isinstance(value, pikepdf.Dictionary | pikepdf.Array) and not value.is_indirect:
                    stack.append((value, depth + 1))
    return None


_ZH = {
    "JavaScript": "JavaScript脚本",
    "launch action": "启动动作",
    "open action": "打开动作",
    "additional actions": "附加动作",
    "embedded files": "嵌入文件",
    "embedded file": "嵌入文件",
}
