"""OFD licences issued by the product (a type set to "both" through the catalogue API), verified
by the product: PASSED with the repository's data and the same identifier as the PDF; the ten
tamper variants a forger would try FAILED with their sub-indications; a re-packed copy is not the
issued file; a licence revoked or suspended after issuance FAILED as its PDF is. Uploads go
through the service and its limited worker, as the API's do."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import col, select

from core.clock import FixedClock
from core.db import reading
from keys.sm2 import sm3
from licences.models import LicenceOfd
from seals import ses
from seals.ofd_zip import zip_package
from tests.domain import Domain, demo_domain
from tests.ofd_build import (
    SEAL_FILE,
    SIGNATURE,
    SIGNED_VALUE,
    Sm2Pki,
    seal_files,
    unzip,
    with_timestamp,
)
from verify.log import VerificationLog
from verify.report import Report

PAGE = "Doc_0/Pages/Page_0/Content.xml"
DOCUMENT = "Doc_0/Document.xml"
# A PUT of a licence type carries these fields (the read-only ones are left out).
TYPE_FIELDS = (
    "name",
    "name_en",
    "authority_name",
    "authority_level",
    "holder_category",
    "validity_rule",
    "validity_years",
    "issuing_level",
    "service_items",
    "service_item_fields",
    "field_schema",
    "issuer_codes",
    "layout",
    "document_formats",
)


@dataclass(frozen=True)
class Issued:
    answer: dict[str, Any]
    pdf: bytes
    ofd: bytes

    @property
    def identifier(self) -> str:
        return str(self.answer["identifier"])


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory) -> Domain:
    domain = demo_domain(tmp_path_factory, "ofdissued")
    code = domain.department()["sample_request"]["licence_type"]
    current = domain.client.get(f"/api/v1/catalogue/licence-types/{code}").json()
    body = {k: v for k, v in current.items() if k in TYPE_FIELDS} | {"document_formats": "both"}
    answers = [
        domain.client.put(
            f"/api/v1/catalogue/licence-types/{code}", json=body, headers=domain.auth(i)
        )
        for i, _ in enumerate(domain.credentials["departments"])
    ]
    assert any(a.status_code == 200 for a in answers), [a.text for a in answers]
    return domain


def issue(domain: Domain) -> Issued:
    answer = domain.issue()
    assert set(answer["documents"]) == {"pdf", "ofd"}, answer
    ofd = domain.client.get(
        f"/api/v1/licences/{answer['identifier']}/document.ofd", headers=domain.auth()
    )
    assert ofd.status_code == 200, ofd.text
    return Issued(answer, domain.pdf(answer), ofd.content)


@pytest.fixture(scope="module")
def issued(domain: Domain) -> Issued:
    return issue(domain)


def verify(domain: Domain, data: bytes) -> Report:
    return domain.services.verification.verify_pdf(data, channel="cli", actor="test:ofd")


def failed(domain: Domain, data: bytes, check: str, indication: str, sub: str) -> Report:
    report = verify(domain, data)
    assert (report.indication.value, report.sub_indication and report.sub_indication.value) == (
        indication,
        sub,
    ), [(c.name, c.result.value, c.detail) for c in report.checks]
    assert report.checks[-1].name == check and report.checks[-1].result.value == "failed"
    assert report.licence is None  # a failed seal never reaches the repository's record
    return report


def test_an_issued_ofd_passes_with_the_repositorys_data(domain: Domain, issued: Issued) -> None:
    report = verify(domain, issued.ofd)
    assert report.indication.value == "PASSED", [(c.name, c.detail) for c in report.checks]
    assert report.licence is not None and report.licence.identifier == issued.identifier
    assert report.extra["method"] == "ofd"
    names = [c.name for c in report.checks]
    assert names[-4:] == ["registered", "revocation", "repository", "status"]
    with reading(domain.services.engine) as session:
        stored = session.get(LicenceOfd, issued.identifier)
        row = session.exec(select(VerificationLog).order_by(col(VerificationLog.id).desc())).first()
    assert stored is not None and stored.ofd == issued.ofd
    assert report.seal is not None
    assert report.seal.certificate_serial == stored.sm2_certificate_serial  # the SM2 one
    assert report.seal.timestamp is not None  # proven by our TSA
    assert row is not None and (row.method, row.identifier) == ("ofd", issued.identifier)


def test_its_pdf_passes_with_the_same_identifier(domain: Domain, issued: Issued) -> None:
    report = verify(domain, issued.pdf)
    assert report.indication.value == "PASSED"
    assert report.licence is not None and report.licence.identifier == issued.identifier


def test_two_licences_each_verify_as_themselves(domain: Domain, issued: Issued) -> None:
    other = issue(domain)
    assert other.identifier != issued.identifier
    report = verify(domain, other.ofd)
    assert report.licence is not None and report.licence.identifier == other.identifier


def test_a_re_packed_copy_is_not_the_issued_file(domain: Domain, issued: Issued) -> None:
    """The same files in another order: every signature still holds, but the repository
    vouches for the file it issued."""
    files = unzip(issued.ofd)
    repacked = zip_package(dict(reversed(list(files.items()))))
    assert repacked != issued.ofd
    report = failed(domain, repacked, "repository", "FAILED", "NOT_IN_REPOSITORY")
    assert "issued as another file" in report.checks[-1].detail
    assert [c.result.value for c in report.checks[:-1]] == ["passed"] * (len(report.checks) - 1)


# -- the ten tamper variants ---------------------------------------------------------------------


def test_1_a_changed_field_in_the_page(domain: Domain, issued: Issued) -> None:
    files = unzip(issued.ofd)
    files[PAGE] = files[PAGE].replace(b"2031", b"2039", 1)
    assert files[PAGE] != unzip(issued.ofd)[PAGE]
    failed(domain, zip_package(files), "references", "FAILED", "HASH_FAILURE")


def test_2_a_replaced_seal_picture(domain: Domain, issued: Issued) -> None:
    files = unzip(issued.ofd)
    seal = ses.SESeal.load(files[SEAL_FILE])
    info = ses.SES_SealInfo.load(seal["eseal_info"].dump())
    info["picture"]["data"] = b"\x89PNG\r\n\x1a\n" + b"a forger's seal"
    files[SEAL_FILE] = ses.seseal(
        info, maker_certificate_der=seal["cert"].native, signature=seal["signed_value"].native
    ).dump(force=True)
    failed(domain, zip_package(files), "seal_file", "FAILED", "HASH_FAILURE")


def test_3_an_extra_unsigned_page(domain: Domain, issued: Issued) -> None:
    files = unzip(issued.ofd)
    files[DOCUMENT] = files[DOCUMENT].replace(
        b"</ofd:Pages>", b'<ofd:Page ID="999" BaseLoc="Pages/Page_1/Content.xml"/></ofd:Pages>'
    )
    files["Doc_0/Pages/Page_1/Content.xml"] = files[PAGE]
    failed(domain, zip_package(files), "references", "FAILED", "HASH_FAILURE")


def test_3b_an_extra_page_file_alone_is_content_added_after_sealing(
    domain: Domain, issued: Issued
) -> None:
    files = unzip(issued.ofd)
    files["Doc_0/Pages/Page_1/Content.xml"] = files[PAGE]
    failed(domain, zip_package(files), "coverage", "FAILED", "MODIFIED_AFTER_SEALING")


def test_4_a_removed_file(domain: Domain, issued: Issued) -> None:
    files = unzip(issued.ofd)
    font = next(name for name in files if name.startswith("Doc_0/Res/"))
    del files[font]
    failed(domain, zip_package(files), "references", "FAILED", "HASH_FAILURE")


def test_5_a_changed_check_value(domain: Domain, issued: Issued) -> None:
    files = unzip(issued.ofd)
    before = base64.b64encode(sm3(files[PAGE]))
    files[PAGE] = files[PAGE].replace(b"2031", b"2039", 1)
    files[SIGNATURE] = files[SIGNATURE].replace(before, base64.b64encode(sm3(files[PAGE])))
    failed(domain, zip_package(files), "data_hash", "FAILED", "HASH_FAILURE")


def test_6_a_changed_signature_xml(domain: Domain, issued: Issued) -> None:
    files = unzip(issued.ofd)
    files[SIGNATURE] = files[SIGNATURE].replace(b'ProviderName="elicence"', b'ProviderName="x"')
    failed(domain, zip_package(files), "data_hash", "FAILED", "HASH_FAILURE")


def test_7_a_second_signature(domain: Domain, issued: Issued) -> None:
    files = unzip(issued.ofd)
    listed = "Doc_0/Signs/Signatures.xml"
    files[listed] = files[listed].replace(
        b"</ofd:Signatures>",
        b'<ofd:Signature ID="2" Type="Seal" BaseLoc="Sign_1/Signature.xml"/></ofd:Signatures>',
    )
    for name in (SIGNATURE, SEAL_FILE, SIGNED_VALUE):
        files[name.replace("Sign_0", "Sign_1")] = files[name]
    failed(domain, zip_package(files), "seal_count", "FAILED", "MODIFIED_AFTER_SEALING")


def test_8_a_certificate_swapped_for_a_foreign_sm2_one(domain: Domain, issued: Issued) -> None:
    """toSign re-signed by a forger's SM2 key, the forger's certificate in its place."""
    files = unzip(issued.ofd)
    signature = ses.SES_Signature.load(files[SIGNED_VALUE])
    forger = Sm2Pki(name="forger")
    to_sign = signature["to_sign"].dump()
    value = forger.seal_key.sign_digest(forger.seal_key.public_key().digest(to_sign))
    files[SIGNED_VALUE] = with_timestamp(
        ses.SES_Signature(
            {
                "to_sign": ses.TBS_Sign.load(to_sign),
                "cert": forger.seal,
                "signature_alg_id": signature["signature_alg_id"].native,
                "signature": value,
            }
        ),
        signature["time_stamp"].native,
    )
    failed(domain, zip_package(files), "seal_holder", "FAILED", "NO_SIGNING_CERTIFICATE_FOUND")


def test_8b_a_whole_foreign_seal_does_not_chain(domain: Domain, issued: Issued) -> None:
    """The forger's own seal maker and seal, with our TSA's timestamp on the new signature."""
    files = unzip(issued.ofd)
    content = {k: v for k, v in files.items() if not k.startswith("Doc_0/Signs/")}
    forged = unzip(seal_files(Sm2Pki(name="forger"), None, content))
    signature = ses.SES_Signature.load(forged[SIGNED_VALUE])
    ours = ses.SES_Signature.load(files[SIGNED_VALUE])  # a real token of our TSA, other bytes
    forged[SIGNED_VALUE] = with_timestamp(signature, ours["time_stamp"].native)
    failed(domain, zip_package(forged), "timestamp", "FAILED", "HASH_FAILURE")


def test_9_a_signature_bit_flip(domain: Domain, issued: Issued) -> None:
    files = unzip(issued.ofd)
    signature = ses.SES_Signature.load(files[SIGNED_VALUE])
    value = bytearray(signature["signature"].native)
    value[-3] ^= 0x01
    files[SIGNED_VALUE] = with_timestamp(
        ses.SES_Signature(
            {
                "to_sign": ses.TBS_Sign.load(signature["to_sign"].dump()),
                "cert": signature["cert"].native,
                "signature_alg_id": signature["signature_alg_id"].native,
                "signature": bytes(value),
            }
        ),
        signature["time_stamp"].native,
    )
    failed(domain, zip_package(files), "integrity", "FAILED", "SIG_CRYPTO_FAILURE")


def test_10_the_timestamp_removed(domain: Domain, issued: Issued) -> None:
    files = unzip(issued.ofd)
    files[SIGNED_VALUE] = with_timestamp(ses.SES_Signature.load(files[SIGNED_VALUE]), None)
    failed(domain, zip_package(files), "timestamp", "FAILED", "NO_POE")


def test_10b_the_timestamp_replaced_by_another_licences(domain: Domain, issued: Issued) -> None:
    other = issue(domain)
    token = ses.SES_Signature.load(unzip(other.ofd)[SIGNED_VALUE])["time_stamp"].native
    files = unzip(issued.ofd)
    files[SIGNED_VALUE] = with_timestamp(ses.SES_Signature.load(files[SIGNED_VALUE]), token)
    failed(domain, zip_package(files), "timestamp", "FAILED", "HASH_FAILURE")


# -- after issuance ------------------------------------------------------------------------------


def lifecycle(domain: Domain, identifier: str, action: str, body: dict[str, Any]) -> None:
    response = domain.client.post(
        f"/api/v1/licences/{identifier}/{action}", json=body, headers=domain.auth()
    )
    assert response.status_code == 200, response.text


def test_suspended_then_revoked_after_issuance_both_documents_fail(domain: Domain) -> None:
    licence = issue(domain)
    lifecycle(domain, licence.identifier, "suspend", {"reason": "核查中"})
    for document in (licence.ofd, licence.pdf):
        report = verify(domain, document)
        assert (report.indication.value, report.sub_indication.value) == ("FAILED", "SUSPENDED")  # type: ignore[union-attr]
    lifecycle(domain, licence.identifier, "resume", {"reason": "核查完毕"})
    lifecycle(domain, licence.identifier, "revoke", {"reason": "以欺骗手段取得许可"})
    for document in (licence.ofd, licence.pdf):
        report = verify(domain, document)
        assert (report.indication.value, report.sub_indication.value) == ("FAILED", "REVOKED")  # type: ignore[union-attr]
        assert report.checks[-1].name == "status"
        # the verdict shows the repository's record, as the PDF's does
        assert report.licence is not None and report.licence.status == "revoked"


def test_a_seal_revoked_after_sealing_leaves_its_ofd_valid_with_a_note(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The department's seal (both its certificates) revoked an hour after the licence was
    sealed and timestamped: the OFD stands, as its PDF does, and the check says why."""
    clock = FixedClock(datetime.now(UTC).replace(microsecond=0))
    domain = demo_domain(tmp_path_factory, "ofdsealrevoked", clock=clock)
    code = domain.department()["sample_request"]["licence_type"]
    current = domain.client.get(f"/api/v1/catalogue/licence-types/{code}").json()
    body = {k: v for k, v in current.items() if k in TYPE_FIELDS} | {"document_formats": "both"}
    for index, _ in enumerate(domain.credentials["departments"]):
        domain.client.put(
            f"/api/v1/catalogue/licence-types/{code}", json=body, headers=domain.auth(index)
        )
    licence = issue(domain)
    with reading(domain.services.engine) as session:
        seal = domain.services.seals.seal_for_issuance(session, domain.department()["code"])
    clock.advance(timedelta(hours=1))
    revoked = domain.client.post(
        f"/api/v1/seals/{seal.seal.code}/revoke",
        json={"reason": "keyCompromise"},
        headers=domain.auth(),
    )
    assert revoked.status_code == 200, revoked.text
    report = verify(domain, licence.ofd)
    assert report.indication.value == "PASSED", [(c.name, c.detail) for c in report.checks]
    note = next(c for c in report.checks if c.name == "revocation")
    assert "revoked since" in note.detail and "before that, as timestamped" in note.detail


def test_the_verify_page_shows_an_ofd_verdict_from_the_repository(
    domain: Domain, issued: Issued
) -> None:
    page = domain.client.post(
        "/verify", files={"file": ("证照.ofd", issued.ofd, "application/ofd")}
    )
    assert page.status_code == 200
    assert "有效" in page.text and issued.identifier in page.text
    assert 'OFD文件 / <span lang="en">OFD file</span>' in page.text
    assert 'accept="application/pdf,.pdf,application/ofd,.ofd"' in page.text


def test_a_signed_value_that_is_no_ses_signature_is_worded_for_an_ofd(
    domain: Domain, issued: Issued
) -> None:
    files = unzip(issued.ofd)
    files[SIGNED_VALUE] = b"\x30\x03\x02\x01\x04"  # a SEQUENCE holding one INTEGER
    report = failed(domain, zip_package(files), "seal_structure", "FAILED", "FORMAT_FAILURE")
    assert "OFD" in report.message and "二维码" not in report.message
