"""Applying a department's seal to a licence the service rendered itself.

The seal is a PAdES certification signature (DocMDP P=1: no change of any kind is allowed after
it) with the seal image as its visible appearance, placed over the issuer's name. Only bytes that
came out of the licence renderer are ever passed here: the API has no way to seal an upload.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image
from pyhanko.pdf_utils import layout
from pyhanko.pdf_utils.images import PdfImage
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.fields import MDPPerm
from pyhanko.stamp import StaticStampStyle

from seals.signer import KeyStoreSigner

SEAL_FIELD = "Seal"
# Enough for an ECDSA or RSA-3072 CMS with a chain of three certificates; fixed so pyHanko
# does not run a dry-run signature to size the placeholder.
BYTES_RESERVED = 12288


@dataclass(frozen=True)
class SealRequest:
    pdf: bytes
    box: tuple[float, float, float, float]
    image_png: bytes
    reason: str
    location: str
    name: str


def apply_seal(request: SealRequest, signer: KeyStoreSigner) -> bytes:
    """Seal ``request.pdf``; return the whole sealed file."""
    image = Image.open(io.BytesIO(request.image_png))
    image.load()
    meta = signers.PdfSignatureMetadata(
        field_name=SEAL_FIELD,
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
        certify=True,
        docmdp_permissions=MDPPerm.NO_CHANGES,
        reason=request.reason,
        location=request.location,
        name=request.name,
    )
    style = StaticStampStyle(
        background=PdfImage(image),
        border_width=0,
        background_opacity=1.0,
        background_layout=layout.SimpleBoxLayoutRule(
            x_align=layout.AxisAlignment.ALIGN_MID,
            y_align=layout.AxisAlignment.ALIGN_MID,
            margins=layout.Margins(0, 0, 0, 0),
            inner_content_scaling=layout.InnerScaling.SHRINK_TO_FIT,
        ),
    )
    field_spec = fields.SigFieldSpec(
        sig_field_name=SEAL_FIELD,
        on_page=0,
        box=tuple(round(v) for v in request.box),  # type: ignore[arg-type]
        readable_field_name="电子印章",
    )
    pdf_signer = signers.PdfSigner(meta, signer, stamp_style=style, new_field_spec=field_spec)
    writer = IncrementalPdfFileWriter(io.BytesIO(request.pdf), strict=True)
    output = io.BytesIO()
    pdf_signer.sign_pdf(writer, bytes_reserved=BYTES_RESERVED, output=output)
    return output.getvalue()
