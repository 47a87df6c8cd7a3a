"""The baselines: the crypto limit, and pyHanko used well — the same page, key, certificate,
visible seal and certification for sealing; the same file and trust anchors for validation."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bench.domain import Captured
from bench.timing import Rate, timed

if TYPE_CHECKING:  # for annotations only: this module imports pyHanko where it is used
    from pyhanko.sign.signers import SimpleSigner
    from pyhanko.stamp import StaticStampStyle


def raw_ecdsa(seconds: float, key: Any) -> Rate:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    data = hashlib.sha256(b"bench").digest()
    algo = ec.ECDSA(hashes.SHA256())

    def once() -> None:
        for _ in range(100):
            key.sign(data, algo)

    rate = timed("raw ECDSA P-256 sign (x100)", once, seconds)
    rate.n *= 100
    rate.latencies = [x / 100 for x in rate.latencies]
    rate.name = "raw ECDSA P-256 sign"
    return rate


def raw_sealer(page: Captured, private_key: Any) -> Callable[[], bytes]:
    """pyHanko used well: key and certificates parsed once, fixed signature size, the same
    certification seal with the same visible image, B-B."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers
    from pyhanko.sign.fields import MDPPerm

    meta = signers.PdfSignatureMetadata(
        field_name="Seal",
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
        certify=True,
        docmdp_permissions=MDPPerm.NO_CHANGES,
        reason=page.reason,
        location=page.location,
        name=page.name,
    )
    spec = fields.SigFieldSpec(
        sig_field_name="Seal",
        on_page=0,
        box=tuple(round(v) for v in page.box),  # type: ignore[arg-type]
    )
    pdf_signer = signers.PdfSigner(
        meta, _signer(page, private_key), stamp_style=_stamp(page), new_field_spec=spec
    )

    def seal() -> bytes:
        writer = IncrementalPdfFileWriter(io.BytesIO(page.pdf), strict=True)
        out = io.BytesIO()
        pdf_signer.sign_pdf(writer, bytes_reserved=12288, output=out)
        return out.getvalue()

    return seal


def _signer(page: Captured, private_key: Any) -> SimpleSigner:
    """A ``SimpleSigner`` with the seal key and its chain parsed once."""
    from asn1crypto import keys as asn1_keys
    from asn1crypto import x509 as asn1_x509
    from cryptography.hazmat.primitives import serialization
    from pyhanko.sign import signers
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    certs = [asn1_x509.Certificate.load(der) for der in page.chain_der]
    key_info = asn1_keys.PrivateKeyInfo.load(
        private_key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return signers.SimpleSigner(
        signing_cert=certs[0],
        signing_key=key_info,
        # pyhanko_certvalidator leaves from_certs unannotated (as in seals/signer.py)
        cert_registry=SimpleCertificateStore.from_certs(certs[1:]),  # type: ignore[no-untyped-call]
        embed_roots=False,
    )


def _stamp(page: Captured) -> StaticStampStyle:
    """The same visible seal as the product's: the seal image filling the box, no border."""
    from PIL import Image
    from pyhanko.pdf_utils import layout
    from pyhanko.pdf_utils.images import PdfImage
    from pyhanko.stamp import StaticStampStyle

    image = Image.open(io.BytesIO(page.image_png))
    image.load()
    return StaticStampStyle(
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


def raw_validator(services: Any, pdf: bytes, archive: bool = True) -> Callable[[], object]:
    """pyHanko's own validation of the same sealed file: ``validate_pdf_signature`` (with the
    seal's timestamp) with a context of the domain's roots and CAs (parsed once), no fetching;
    with ``archive``, also ``validate_pdf_timestamp`` of the document timestamp, which a B-LTA
    file carries and our verifier checks too (like for like)."""
    from asn1crypto import x509 as asn1_x509
    from cryptography.hazmat.primitives import serialization
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature, validate_pdf_timestamp
    from pyhanko_certvalidator import ValidationContext

    from core.db import reading

    with reading(services.engine) as session:
        roots = services.trust.roots(session)
        inter = services.trust.intermediates(session)

    def asn1(c: Any) -> Any:
        return asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER))

    roots_a, inter_a = [asn1(c) for c in roots], [asn1(c) for c in inter]

    def validate() -> object:
        context = ValidationContext(
            trust_roots=roots_a,
            other_certs=inter_a,
            allow_fetching=False,
            revocation_mode="soft-fail",
        )
        reader = PdfFileReader(io.BytesIO(pdf), strict=False)
        signature = reader.embedded_regular_signatures[0]
        status = validate_pdf_signature(
            signature, signer_validation_context=context, ts_validation_context=context
        )
        assert status.intact and status.valid
        if archive:
            for stamp in reader.embedded_timestamp_signatures:
                ts = validate_pdf_timestamp(stamp, context)
                assert ts.intact and ts.valid
        return status

    return validate
