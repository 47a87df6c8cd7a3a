"""One licence end to end: issued over the API, sealed, checked by independent tools, verified,
and every tampered variant refused."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.fields import MDPPerm
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

from core.db import reading
from licences.identifiers import LicenceIdentifier
from tests import tampering
from tests.domain import Domain, demo_domain
from tests.tools import require


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory) -> Domain:
    return demo_domain(tmp_path_factory, "skeleton")


@pytest.fixture(scope="module")
def issued(domain: Domain) -> dict:
    return domain.issue()


@pytest.fixture(scope="module")
def sealed(domain: Domain, issued: dict) -> bytes:
    return domain.pdf(issued)


def test_issue_returns_identifier_with_valid_check_and_links(domain: Domain, issued: dict) -> None:
    identifier = LicenceIdentifier.parse(issued["identifier"])
    assert str(identifier) == issued["identifier"]
    assert identifier.issuer_code == domain.department()["code"]
    assert issued["status"] == "valid"
    assert issued["version"] == 1
    assert issued["links"]["verify"].startswith("HTTPS://LICENCE.EXAMPLE.GOV.CN/V/")
    assert len(issued["sha256"]) == 64


def test_stored_bytes_match_the_reported_sha256(
    domain: Domain, issued: dict, sealed: bytes
) -> None:
    import hashlib

    assert hashlib.sha256(sealed).hexdigest() == issued["sha256"]
    assert sealed.startswith(b"%PDF-")


def test_seal_is_a_certification_signature_that_forbids_changes(
    domain: Domain, sealed: bytes
) -> None:
    reader = PdfFileReader(io.BytesIO(sealed))
    # The seal is the one regular signature; document timestamps (B-LTA) may follow it.
    (signature,) = reader.embedded_regular_signatures
    assert signature.docmdp_level is MDPPerm.NO_CHANGES
    with reading(domain.services.engine) as session:
        root = domain.services.trust.roots(session)[0]
        intermediate = domain.services.trust.intermediates(session)[0]
    context = ValidationContext(
        trust_roots=[asn1_x509.Certificate.load(root.public_bytes(serialization.Encoding.DER))],
        other_certs=[
            asn1_x509.Certificate.load(intermediate.public_bytes(serialization.Encoding.DER))
        ],
        allow_fetching=False,
        revocation_mode="soft-fail",
    )
    status = validate_pdf_signature(signature, context)
    assert status.intact and status.valid and status.trusted
    assert status.coverage in (
        SignatureCoverageLevel.ENTIRE_FILE,
        SignatureCoverageLevel.ENTIRE_REVISION,
    )
    assert status.modification_level in (ModificationLevel.NONE, ModificationLevel.LTA_UPDATES)
    usage = status.signing_cert.key_usage_value.native
    assert {"digital_signature", "non_repudiation"} <= set(usage)


def test_pdfsig_reports_the_seal_valid(sealed: bytes, tmp_path: Path) -> None:
    pdfsig = require("pdfsig")
    path = tmp_path / "licence.pdf"
    path.write_bytes(sealed)
    out = subprocess.run([pdfsig, str(path)], capture_output=True, text=True, check=False).stdout
    assert "Signature Validation: Signature is Valid." in out
    assert "Signature Type: ETSI.CAdES.detached" in out


def test_qpdf_check_passes(sealed: bytes, tmp_path: Path) -> None:
    qpdf = require("qpdf")
    path = tmp_path / "licence.pdf"
    path.write_bytes(sealed)
    result = subprocess.run(
        [qpdf, "--check", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No syntax or stream encoding errors found" in result.stdout


def test_qr_decoded_from_the_page_image_is_the_verify_link(
    issued: dict, sealed: bytes, tmp_path: Path
) -> None:
    import zxingcpp
    from PIL import Image

    pdftoppm = require("pdftoppm")
    path = tmp_path / "licence.pdf"
    path.write_bytes(sealed)
    subprocess.run(
        [pdftoppm, "-r", "150", "-png", "-f", "1", "-l", "1", str(path), str(tmp_path / "page")],
        check=True,
    )
    (image_path,) = tmp_path.glob("page*.png")
    codes = zxingcpp.read_barcodes(Image.open(image_path))
    texts = [c.text for c in codes if c.format == zxingcpp.BarcodeFormat.QRCode]
    assert texts == [issued["links"]["verify"]]


def test_issued_licence_verifies_passed(domain: Domain, issued: dict, sealed: bytes) -> None:
    report = domain.verify_pdf(sealed)
    assert report["indication"] == "PASSED", report
    assert report["sub_indication"] is None
    assert report["licence"]["identifier"] == issued["identifier"]
    assert report["seal"]["department"] == domain.department()["name"]
    assert {c["name"] for c in report["checks"]} >= {
        "integrity",
        "modifications",
        "chain",
        "repository",
        "status",
    }
    assert all(c["result"] == "passed" for c in report["checks"])


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        (tampering.flip_byte_in_signed_range, "HASH_FAILURE"),
        (tampering.add_annotation, "MODIFIED_AFTER_SEALING"),
        (tampering.add_form_field, "MODIFIED_AFTER_SEALING"),
        (tampering.replace_page_content, "MODIFIED_AFTER_SEALING"),
    ],
)
def test_tampered_variants_fail(domain: Domain, sealed: bytes, tamper, expected: str) -> None:  # type: ignore[no-untyped-def]
    altered = tamper(sealed)
    assert altered != sealed
    report = domain.verify_pdf(altered)
    assert report["indication"] == "FAILED", report
    assert report["sub_indication"] == expected
    assert report["licence"] is None


def _render_unsealed(
    domain: Domain, issued: dict
) -> tuple[bytes, tuple[float, float, float, float]]:
    """Render a licence page the way issuance does, without sealing it."""
    from licences.render import LicenceView, render_licence

    view = LicenceView(
        title="食品经营许可证",
        title_en=None,
        identifier=issued["identifier"],
        holder_label="持证主体",
        holder_name="示范餐饮管理有限公司",
        holder_id="91350100M000100Y43",
        fields=(("经营场所", "示范市"),),
        issuer_name="示范市市场监督管理局",
        issue_date="2026年1月1日",
        valid_from="2026年1月1日",
        valid_until=None,
        verify_url=issued["links"]["verify"],
        version="001",
    )
    fonts = domain.services.issuance._fonts
    rendered = render_licence(view, regular_font=fonts.regular, bold_font=fonts.bold)
    return rendered.pdf, rendered.seal_box


def test_seal_from_outside_the_domain_is_never_passed(domain: Domain, issued: dict) -> None:
    pdf, box = _render_unsealed(domain, issued)
    forged = tampering.seal_with_foreign_key(pdf, box)
    report = domain.verify_pdf(forged)
    assert report["indication"] in ("FAILED", "INDETERMINATE")
    assert report["sub_indication"] == "NO_CHAIN_FOUND"


def test_genuinely_sealed_pdf_not_in_repository_is_failed(domain: Domain, issued: dict) -> None:
    """Our own seal on bytes the repository never recorded: genuine signature, not a licence."""
    from keys.audit import KeyUseRecorder
    from seals.apply import SealRequest, apply_seal

    pdf, box = _render_unsealed(domain, issued)
    services = domain.services
    with reading(services.engine) as session:
        context = services.seals.seal_for_issuance(session, domain.department()["code"])
    sealed = apply_seal(
        SealRequest(
            pdf=pdf, box=box, image_png=context.seal.image_png, reason="x", location="x", name="x"
        ),
        services.seals.signer(context, KeyUseRecorder()),
    )
    report = domain.verify_pdf(sealed)
    assert report["indication"] == "FAILED"
    assert report["sub_indication"] == "NOT_IN_REPOSITORY"
    assert [c["name"] for c in report["checks"] if c["result"] == "failed"] == ["repository"]


def test_not_a_pdf_is_indeterminate(domain: Domain) -> None:
    report = domain.verify_pdf(b"this is not a pdf at all")
    assert report["indication"] == "INDETERMINATE"
    assert report["sub_indication"] == "MALFORMED"


def test_truncated_pdf_is_not_passed(domain: Domain, sealed: bytes) -> None:
    report = domain.verify_pdf(sealed[: len(sealed) // 2])
    assert report["indication"] != "PASSED"


def test_revoked_licence_fails_verification_at_once(domain: Domain) -> None:
    issued = domain.issue()
    pdf = domain.pdf(issued)
    response = domain.client.post(
        f"/api/v1/licences/{issued['identifier']}/revoke",
        json={"reason": "以欺骗手段取得许可"},
        headers=domain.auth(),
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "revoked"
    report = domain.verify_pdf(pdf)
    assert report["indication"] == "FAILED"
    assert report["sub_indication"] == "REVOKED"
    assert report["licence"]["identifier"] == issued["identifier"]
    again = domain.client.post(
        f"/api/v1/licences/{issued['identifier']}/revoke",
        json={"reason": "again"},
        headers=domain.auth(),
    )
    assert again.status_code == 409
    assert again.headers["content-type"].startswith("application/problem+json")
    assert again.json()["status"] == 409
    assert again.json()["current_status"] == "revoked"
