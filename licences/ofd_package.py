"""The OFD package of a licence (GB/T 33190-2016), before its seal: the files and their bytes.

One document, one page, laid out as /tmp/notes/OFD-CONTRACT.md fixes it::

    OFD.xml                         DocInfo (DocID, Title, CreationDate, the identifier and the
                                    verification URL as CustomData), DocRoot, Signatures
    Doc_0/Document.xml              CommonData (MaxUnitID, PageArea in mm, PublicRes,
                                    DocumentRes), the page
    Doc_0/PublicRes.xml             the two fonts, files in Doc_0/Res/
    Doc_0/DocumentRes.xml           the photo, when the page has one
    Doc_0/Res/font_0.ttf, font_1.ttf, image_0.jpg
    Doc_0/Pages/Page_0/Content.xml  the page (``licences.ofd_page``)

The seal (``seals.ofd_sealing``) adds ``Doc_0/Signs/`` and freezes every file listed here: each
one's SM3 is in ``Signature.xml``. The same view gives the same files, byte for byte: no clock
is read here, the DocID is a digest of the identifier and the verification URL.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from licences.layout import Layout
from licences.ofd_canvas import ImageMark
from licences.ofd_fonts import subset_font
from licences.ofd_page import (
    NS,
    XML_DECL,
    PageIds,
    attr,
    boundary,
    content_xml,
    draw_page,
    jpeg,
    num,
    text_of,
)
from licences.render import MM, LicenceView

DOC = "Doc_0"
PAGE_ID = 1  # the page's ID; a stamp annotation names it (PageRef)
CONTENT = f"{DOC}/Pages/Page_0/Content.xml"


@dataclass(frozen=True)
class OfdPage:
    """The unsealed package and where its seal goes."""

    files: dict[str, bytes]  # package path -> bytes, in the order they are zipped
    stamp_box: tuple[float, float, float, float]  # x, y, w, h in mm from the top left
    page_id: int
    qr_version: int


def _ofd_xml(view: LicenceView, created: date) -> bytes:
    doc_id = hashlib.sha256(f"{view.identifier}\n{view.verify_url}".encode()).hexdigest()[:32]
    custom = "".join(
        f"<ofd:CustomData Name={attr(name)}>{_esc(value)}</ofd:CustomData>"
        for name, value in (
            ("licence.identifier", view.identifier),
            ("licence.verify_url", view.verify_url),
        )
    )
    return (
        f'{XML_DECL}<ofd:OFD xmlns:ofd="{NS}" Version="1.0" DocType="OFD"><ofd:DocBody>'
        f"<ofd:DocInfo><ofd:DocID>{doc_id}</ofd:DocID><ofd:Title>{_esc(view.title)}</ofd:Title>"
        f"<ofd:Author>{_esc(view.issuer_name)}</ofd:Author>"
        f"<ofd:Subject>{_esc(f'{view.title} — {view.issuer_name}')}</ofd:Subject>"
        f"<ofd:CreationDate>{created.isoformat()}</ofd:CreationDate>"
        f"<ofd:Keywords><ofd:Keyword>{_esc(view.identifier)}</ofd:Keyword></ofd:Keywords>"
        f"<ofd:Creator>elicence</ofd:Creator><ofd:CustomDatas>{custom}</ofd:CustomDatas>"
        f"</ofd:DocInfo><ofd:DocRoot>{DOC}/Document.xml</ofd:DocRoot>"
        f"<ofd:Signatures>{DOC}/Signs/Signatures.xml</ofd:Signatures>"
        "</ofd:DocBody></ofd:OFD>"
    ).encode()


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def build_package(
    view: LicenceView,
    layout: Layout | None,
    *,
    created: date,
    regular_font: Path,
    bold_font: Path,
    photo: bytes | None = None,
) -> OfdPage:
    """The package's files for ``view`` on its type's page; ``created`` is the issue date
    (China), written as the document's CreationDate."""
    page = draw_page(view, layout, regular_font=regular_font, bold_font=bold_font, photo=photo)
    files: dict[str, bytes] = {}
    font_ids: dict[str, int] = {}
    fonts_xml: list[str] = []
    next_id = PAGE_ID + 1
    for index, (name, path) in enumerate(page.fonts.items()):
        subset = subset_font(path, text_of(page.marks, name))
        files[f"{DOC}/Res/font_{index}.ttf"] = subset.data
        font_ids[name] = next_id
        bold = ' Bold="true"' if index == 1 else ""
        fonts_xml.append(
            f'<ofd:Font ID="{next_id}" FontName={attr(subset.name)} '
            f"FamilyName={attr(subset.family)}{bold}>"
            f"<ofd:FontFile>font_{index}.ttf</ofd:FontFile></ofd:Font>"
        )
        next_id += 1
    images = [m for m in page.marks if isinstance(m, ImageMark)]
    media: list[str] = []
    image_ids: list[int] = []
    for index, image in enumerate(images):
        files[f"{DOC}/Res/image_{index}.jpg"] = jpeg(image)
        image_ids.append(next_id)
        media.append(
            f'<ofd:MultiMedia ID="{next_id}" Type="Image" Format="JPEG">'
            f"<ofd:MediaFile>image_{index}.jpg</ofd:MediaFile></ofd:MultiMedia>"
        )
        next_id += 1
    content, max_id = content_xml(page, PageIds(font_ids, image_ids, next_id))
    width, height = page.width / MM, page.height / MM
    head = {
        "OFD.xml": _ofd_xml(view, created),
        f"{DOC}/Document.xml": (
            f'{XML_DECL}<ofd:Document xmlns:ofd="{NS}"><ofd:CommonData>'
            f"<ofd:MaxUnitID>{max_id}</ofd:MaxUnitID><ofd:PageArea><ofd:PhysicalBox>"
            f"0 0 {num(width)} {num(height)}</ofd:PhysicalBox></ofd:PageArea>"
            "<ofd:PublicRes>PublicRes.xml</ofd:PublicRes>"
            "<ofd:DocumentRes>DocumentRes.xml</ofd:DocumentRes></ofd:CommonData>"
            f'<ofd:Pages><ofd:Page ID="{PAGE_ID}" BaseLoc="Pages/Page_0/Content.xml"/>'
            "</ofd:Pages></ofd:Document>"
        ).encode(),
        f"{DOC}/PublicRes.xml": (
            f'{XML_DECL}<ofd:Res xmlns:ofd="{NS}" BaseLoc="Res"><ofd:Fonts>'
            f"{''.join(fonts_xml)}</ofd:Fonts></ofd:Res>"
        ).encode(),
        f"{DOC}/DocumentRes.xml": (
            f'{XML_DECL}<ofd:Res xmlns:ofd="{NS}" BaseLoc="Res">'
            + (f"<ofd:MultiMedias>{''.join(media)}</ofd:MultiMedias>" if media else "")
            + "</ofd:Res>"
        ).encode(),
    }
    x1, y1, x2, y2 = page.seal_box
    stamp = (x1 / MM, (page.height - y2) / MM, (x2 - x1) / MM, (y2 - y1) / MM)
    return OfdPage(
        files={**head, **files, CONTENT: content},
        stamp_box=stamp,
        page_id=PAGE_ID,
        qr_version=page.qr_version,
    )


def stamp_boundary(page: OfdPage) -> str:
    return boundary(page.stamp_box)
