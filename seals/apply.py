"""Applying a department's seal to a licence the service rendered itself.

The seal is a PAdES certification signature (DocMDP P=1: no change of any kind is allowed after
it) with the seal image as its visible appearance, placed over the issuer's name. Only bytes that
came out of the licence renderer are ever passed here: the API has no way to seal an upload.
"""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pyhanko.pdf_utils import layout
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.fields import MDPPerm
from pyhanko.sign.signers.pdf_signer import PdfTimeStamper
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko.stamp import StaticStampStyle

from seals.ltv import ArchivalEvidence, InProcessTimeStamper, LongTermEvidence
from seals.seal_xobject import SealImage
from seals.signer import KeyStoreSigner
from trust.parsed import certificate, ocsp_response

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


class _ClockedPdfSigner(signers.PdfSigner):
    """pyHanko takes the signing time from the system clock; the domain's clock decides it,
    so the seal's signing time and its timestamp agree (and tests can move time)."""

    def __init__(self, *args: Any, signing_time: datetime, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._signing_time = signing_time

    def init_signing_session(self, pdf_out: Any, existing_fields_only: bool = False) -> Any:
        session = super().init_signing_session(pdf_out, existing_fields_only=existing_fields_only)
        session.system_time = self._signing_time
        return session


def apply_seal(
    request: SealRequest, signer: KeyStoreSigner, evidence: LongTermEvidence | None = None
) -> bytes:
    """Seal ``request.pdf``; return the whole sealed file.

    Without ``evidence`` the seal is PAdES B-B. With it, the seal is timestamped (B-T) and,
    when the evidence carries archival material, revocation data and a document timestamp
    are appended in one more revision (B-LTA): the returned bytes are then the final file.
    """
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
        background=SealImage(request.image_png),
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
    pdf_signer: signers.PdfSigner
    if evidence is None:
        pdf_signer = signers.PdfSigner(meta, signer, stamp_style=style, new_field_spec=field_spec)
    else:
        pdf_signer = _ClockedPdfSigner(
            meta,
            signer,
            timestamper=evidence.timestamper,
            stamp_style=style,
            new_field_spec=field_spec,
            signing_time=evidence.signing_time,
        )
    writer = IncrementalPdfFileWriter(io.BytesIO(request.pdf), strict=True)
    output = io.BytesIO()

    async def seal() -> None:
        # pyHanko's synchronous calls each start and close an event loop; one loop serves both
        # revisions (nothing here fetches, so no validation context has sessions to release).
        await pdf_signer.async_sign_pdf(writer, bytes_reserved=BYTES_RESERVED, output=output)
        if evidence is not None and evidence.archival is not None:
            await archive_revision(output, evidence.archival, evidence.timestamper)

    asyncio.run(seal())
    return output.getvalue()


async def archive_revision(
    signed: io.BytesIO, archival: ArchivalEvidence, timestamper: InProcessTimeStamper
) -> None:
    """Append to ``signed`` one incremental update holding the DSS (the certificates and OCSP
    responses of ``archival``, the responders' certificates taken from the responses; no VRI,
    which PAdES makes optional) and a document timestamp over everything before it: B-LT and
    B-LTA in one revision, so the file ends with the timestamp's revision.

    pyHanko's own B-LTA path validates the seal chain and the TSA chain before and after
    signing to find out what to embed; here what to embed is known (``seals.ltv`` made every
    response, and refused anything but ``good``), so nothing is validated twice and the
    document is parsed once more, not twice."""
    writer = IncrementalPdfFileWriter(signed, strict=True)
    DocumentSecurityStore.supply_dss_in_writer(
        writer,
        None,
        certs=[certificate(der) for der in archival.certificates],
        ocsps=[ocsp_response(der) for der in archival.ocsp_responses],
    )
    await PdfTimeStamper(timestamper).async_timestamp_pdf(
        writer, "sha256", bytes_reserved=timestamper.reserved("sha256"), in_place=True
    )
