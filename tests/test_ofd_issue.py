"""Issuing the national form: a licence type set to ``both`` issues its sealed PDF and its OFD
(GB/T 33190, sealed per GB/T 38540 with SM2/SM3) from one request, with one identifier and one
signed QR payload; ``ofd`` issues the OFD alone; downloads follow the PDF's authorisation.

The demo domain's special equipment operator certificate is ``both`` (api.ops.demo). Attacks
first: another department's client, an unknown or malformed identifier, a PDF-only licence.
Then the package's chain of evidence, checked with keys.sm2 over the exact bytes, against the
domain's own SM2 PKI rows."""

from __future__ import annotations

import base64
import hashlib
import io
import re
import zipfile
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from asn1crypto import cms
from asn1crypto import x509 as asn1_x509
from defusedxml import ElementTree
from pyhanko.pdf_utils.reader import PdfFileReader
from sqlalchemy import create_engine, inspect
from sqlmodel import SQLModel, select

from api.ops.demo import FOOD_LICENCE, HEALTH, MARKET, OPERATOR_CERTIFICATE
from api.ops.demo_faces import placeholder_face_b64
from core.audit import AuditEntry
from core.db import reading
from keys.sm2 import Sm2PublicKey, sm3
from licences import issued_store
from licences.identifiers import LicenceIdentifier, random_serial
from licences.models import Licence, LicenceDocument, LicenceOfd
from licences.qr import QUIET_ZONE, qr_matrix
from migrations.runner import alembic_config
from seals import ses
from tests.domain import Domain, demo_domain
from trust.sm2_pki import SM2_SEAL_CA
from trust.sm2_records import Sm2CertificateRecord

OFD = "{http://www.ofdspec.org/2016}"
PAGE = "Doc_0/Pages/Page_0/Content.xml"
SIGNATURE = "Doc_0/Signs/Sign_0/Signature.xml"
SIGNED_VALUE = "Doc_0/Signs/Sign_0/SignedValue.dat"
CONTENT_FILES = {
    "OFD.xml",
    "Doc_0/Document.xml",
    "Doc_0/PublicRes.xml",
    "Doc_0/DocumentRes.xml",
    "Doc_0/Res/font_0.ttf",
    "Doc_0/Res/font_1.ttf",
    "Doc_0/Res/image_0.jpg",  # the holder's photo: the operator certificate's page has one
    PAGE,
}
SIGNS = {
    "Doc_0/Signs/Signatures.xml",
    SIGNATURE,
    "Doc_0/Signs/Sign_0/Seal.esl",
    SIGNED_VALUE,
}
OPERATOR = {
    "licence_type": OPERATOR_CERTIFICATE["code"],
    "holder": {"id_type": "111", "id": "350105198811230023", "name": "郑雅琴"},
    "fields": {
        "category": "特种设备作业",
        "item": "叉车司机（N1）",
        "employer": "示范市港务物流有限公司",
    },
    "photo": placeholder_face_b64("郑雅琴"),
}


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory) -> Domain:
    return demo_domain(tmp_path_factory, "ofd-issue")


def index_of(domain: Domain, code: str) -> int:
    return next(i for i, d in enumerate(domain.credentials["departments"]) if d["code"] == code)


def issue(domain: Domain, body: dict[str, Any] | None = None, key: str | None = None) -> Any:
    headers = domain.auth(index_of(domain, MARKET["code"]))
    if key is not None:
        headers["Idempotency-Key"] = key
    return domain.client.post("/api/v1/licences", json=body or OPERATOR, headers=headers)


def get_ofd(domain: Domain, identifier: str, department: str = MARKET["code"]) -> Any:
    return domain.client.get(
        f"/api/v1/licences/{identifier}/document.ofd",
        headers=domain.auth(index_of(domain, department)),
    )


def unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


@pytest.fixture(scope="module")
def both(domain: Domain) -> dict[str, Any]:
    response = issue(domain)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


# -- attacks ---------------------------------------------------------------------------------


def test_another_departments_client_gets_for_the_ofd_what_it_gets_for_the_pdf(
    domain: Domain, both: dict[str, Any]
) -> None:
    identifier = both["identifier"]
    health = domain.auth(index_of(domain, HEALTH["code"]))
    ofd = get_ofd(domain, identifier, HEALTH["code"])
    pdf = domain.client.get(f"/api/v1/licences/{identifier}/pdf", headers=health)
    assert ofd.status_code == pdf.status_code == 403
    assert ofd.headers["content-type"].startswith("application/problem+json")
    assert b"PK" not in ofd.content[:2] and "ofd" not in ofd.headers["content-type"]
    # Without a client at all: 401, nothing of the file either.
    anonymous = domain.client.get(f"/api/v1/licences/{identifier}/document.ofd")
    assert anonymous.status_code == 401 and not anonymous.content.startswith(b"PK")


def test_an_unknown_identifier_is_a_404_problem_and_a_malformed_one_a_422(domain: Domain) -> None:
    unknown = LicenceIdentifier(
        type_code=OPERATOR_CERTIFICATE["code"],
        issuer_code=MARKET["code"],
        serial=random_serial(),
        version="001",
    )
    response = get_ofd(domain, str(unknown))
    assert response.status_code == 404, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    wrong_check = str(unknown)[:-1] + ("1" if str(unknown).endswith("0") else "0")
    for malformed in ("not-an-identifier", wrong_check):
        response = get_ofd(domain, malformed)
        assert response.status_code == 422, malformed
        assert response.headers["content-type"].startswith("application/problem+json")


def test_a_pdf_only_licence_has_no_ofd(domain: Domain) -> None:
    food = domain.issue(index_of(domain, MARKET["code"]))
    assert food["documents"] == {"pdf": food["links"]["pdf"]} and food["links"]["ofd"] is None
    response = get_ofd(domain, food["identifier"])
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "OFD" in response.json()["detail"]


# -- one request, two documents --------------------------------------------------------------


def pdf_qr_runs(pdf: bytes) -> set[tuple[int, int, int]]:
    """The QR code's dark runs as the PDF draws them: ``x y n 1 re`` in module units."""
    reader = PdfFileReader(io.BytesIO(pdf))
    contents = reader.root["/Pages"]["/Kids"][0]["/Contents"]
    data = contents.data.decode("latin-1")
    return {
        (int(x), int(y), int(n)) for x, y, n in re.findall(r"(?m)^(\d+) (\d+) (\d+) 1 re$", data)
    }


def ofd_qr_runs(content: bytes, box: list[float], size: int) -> set[tuple[int, int, int]]:
    """The QR code's dark runs as the OFD draws them, in the PDF's module units (x from the QR
    box's left, y upwards from its bottom, quiet zone included)."""
    root = ElementTree.fromstring(content)
    module = box[2] / (size + 2 * QUIET_ZONE)
    runs = set()
    for path in root.iter(f"{OFD}PathObject"):
        data = path.findtext(f"{OFD}AbbreviatedData") or ""
        if data.count("M") < 50:
            continue
        left, top = (float(v) for v in (path.get("Boundary") or "").split()[:2])
        for x1, y1, x2 in re.findall(r"M ([\d.]+) ([\d.]+) L ([\d.]+) [\d.]+ L", data):
            x = round((left + float(x1) - box[0]) / module)
            n = round((float(x2) - float(x1)) / module)
            # The first corner is the run's bottom left (PDF order): its row from the top.
            row = round((top + float(y1) - box[1]) / module)
            runs.add((x, size + 2 * QUIET_ZONE - row, n))
    return runs


def test_a_both_type_issues_the_pdf_and_the_ofd_with_one_identifier_and_one_qr(
    domain: Domain, both: dict[str, Any]
) -> None:
    identifier, url = both["identifier"], both["links"]["verify"]
    assert set(both["documents"]) == {"pdf", "ofd"}
    assert both["links"]["ofd"] == both["documents"]["ofd"]
    ofd = get_ofd(domain, identifier)
    assert ofd.status_code == 200
    assert ofd.headers["content-type"] == "application/ofd"
    assert ofd.headers["x-content-sha256"] == hashlib.sha256(ofd.content).hexdigest()
    parts = unzip(ofd.content)
    info = ElementTree.fromstring(parts["OFD.xml"])
    custom = {c.get("Name"): c.text for c in info.iter(f"{OFD}CustomData")}
    assert custom == {"licence.identifier": identifier, "licence.verify_url": url}
    texts = "".join(
        c.text or "" for c in ElementTree.fromstring(parts[PAGE]).iter(f"{OFD}TextCode")
    )
    assert identifier in texts and "郑雅琴" in texts

    qr = qr_matrix(url)
    expected = set(qr.dark_runs())
    box = next(e["box"] for e in OPERATOR_CERTIFICATE["layout"]["elements"] if e["kind"] == "qr")
    assert ofd_qr_runs(parts[PAGE], box, qr.size) == expected
    assert pdf_qr_runs(domain.pdf(both, index_of(domain, MARKET["code"]))) == expected
    with reading(domain.services.engine) as session:
        stored = session.get(LicenceOfd, identifier)
        assert stored is not None and stored.ofd == ofd.content
        assert stored.sha256 == hashlib.sha256(ofd.content).hexdigest()
        assert session.get(LicenceDocument, identifier) is not None  # and its PDF


def test_the_ofds_seal_holds_with_the_domains_sm2_certificates(
    domain: Domain, both: dict[str, Any]
) -> None:
    parts = unzip(get_ofd(domain, both["identifier"]).content)
    assert set(parts) == CONTENT_FILES | SIGNS
    signature_xml = parts[SIGNATURE]
    refs = {
        r.get("FileRef"): r.findtext(f"{OFD}CheckValue")
        for r in ElementTree.fromstring(signature_xml).iter(f"{OFD}Reference")
    }
    assert set(refs) == {f"/{p}" for p in CONTENT_FILES}
    for path in CONTENT_FILES:
        assert base64.b64decode(refs[f"/{path}"] or "") == sm3(parts[path]), path

    value = ses.SES_Signature.load(parts[SIGNED_VALUE])
    tbs = value["to_sign"]
    assert tbs["data_hash"].native == sm3(signature_xml)
    signer = value["cert"].native
    assert Sm2PublicKey.from_certificate_der(signer).verify(value["signature"].native, tbs.dump())
    seseal = tbs["eseal"]
    maker = seseal["cert"].native
    assert Sm2PublicKey.from_certificate_der(maker).verify(
        seseal["signed_value"].native, seseal["eseal_info"].dump()
    )
    assert list(seseal["eseal_info"]["property"]["cert_list"].native) == [signer]

    services = domain.services
    with reading(services.engine) as session:
        stored = session.get(LicenceOfd, both["identifier"])
        assert stored is not None
        record = session.get(Sm2CertificateRecord, stored.sm2_certificate_serial)
        assert record is not None and record.der == signer  # the certificate the row names
        assert services.trust.sm2.ca_certificate_der(session, SM2_SEAL_CA) == maker
    serial = format(asn1_x509.Certificate.load(signer).serial_number, "x")
    assert serial == stored.sm2_certificate_serial

    # Our TSA's token, over the SHA-256 of the signature value's bytes.
    token = cms.ContentInfo.load(value["time_stamp"].native)
    info = token["content"]["encap_content_info"]["content"].parsed
    imprint = info["message_imprint"]
    assert imprint["hash_algorithm"]["algorithm"].native == "sha256"
    assert imprint["hashed_message"].native == hashlib.sha256(value["signature"].native).digest()


def test_every_key_use_of_the_ofd_is_audited_with_the_issuance(domain: Domain) -> None:
    response = issue(domain, key="ofd-audit-1")
    assert response.status_code == 201
    identifier = response.json()["identifier"]
    ofd = get_ofd(domain, identifier).content
    with reading(domain.services.engine) as session:
        entries = list(session.exec(select(AuditEntry).order_by(AuditEntry.seq)))
    issued = next(e for e in entries if e.action == "licence.issue" and e.object_id == identifier)
    assert issued.detail["ofd_sha256"] == hashlib.sha256(ofd).hexdigest()
    assert issued.detail["sha256"] == response.json()["sha256"]  # the PDF's
    uses = [
        e.detail.get("purpose")
        for e in entries
        if e.action == "key.sign" and e.request_id == issued.request_id
    ]
    assert uses.count("ofd-seal") == 1  # the department's SM2 seal key
    assert uses.count("seal") == 1  # the PDF's ECDSA seal key
    assert "tsa" in " ".join(map(str, uses))  # our TSA's key, for both documents' timestamps


def test_a_replayed_request_returns_the_same_documents_and_seals_nothing_new(
    domain: Domain,
) -> None:
    first = issue(domain, key="ofd-replay-1")
    again = issue(domain, key="ofd-replay-1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["documents"] == first.json()["documents"]
    identifier = first.json()["identifier"]
    with reading(domain.services.engine) as session:
        rows = session.exec(select(LicenceOfd).where(LicenceOfd.identifier == identifier)).all()
    assert len(rows) == 1 and get_ofd(domain, identifier).content == rows[0].ofd


def test_a_batch_and_a_new_version_follow_the_types_formats(domain: Domain) -> None:
    headers = domain.auth(index_of(domain, MARKET["code"]))
    second = {**OPERATOR, "holder": {**OPERATOR["holder"]}}
    batch = domain.client.post(
        "/api/v1/licences:batch", json={"items": [OPERATOR, second]}, headers=headers
    )
    assert batch.status_code == 200, batch.text
    results = batch.json()["results"]
    assert [r["status"] for r in results] == [201, 201]
    assert all(r["links"]["ofd"] for r in results)
    identifier = results[0]["identifier"]
    amended = domain.client.post(
        f"/api/v1/licences/{identifier}/amend",
        json={"fields": {"item": "电梯修理（T）"}, "reason": "作业项目变更"},
        headers=headers,
    )
    assert amended.status_code == 201, amended.text
    new = amended.json()
    assert set(new["documents"]) == {"pdf", "ofd"} and new["identifier"] != identifier
    parts = unzip(get_ofd(domain, new["identifier"]).content)
    custom = {
        c.get("Name"): c.text
        for c in ElementTree.fromstring(parts["OFD.xml"]).iter(f"{OFD}CustomData")
    }
    assert custom["licence.identifier"] == new["identifier"]
    texts = "".join(
        c.text or "" for c in ElementTree.fromstring(parts[PAGE]).iter(f"{OFD}TextCode")
    )
    assert "电梯修理（T）" in texts and "叉车司机" not in texts


# -- the catalogue ---------------------------------------------------------------------------


def read_type(domain: Domain, code: str, what: str = "") -> Any:
    headers = domain.auth(index_of(domain, MARKET["code"]))
    response = domain.client.get(f"/api/v1/catalogue/licence-types/{code}{what}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def definition(domain: Domain, code: str) -> dict[str, Any]:
    body = read_type(domain, code)
    keep = (
        "name", "name_en", "authority_name", "authority_level", "holder_category",
        "validity_rule", "validity_years", "issuing_level", "service_items",
        "service_item_fields", "field_schema", "issuer_codes", "layout", "document_formats",
    )  # fmt: skip
    return {k: body[k] for k in keep}


def test_an_unknown_format_is_refused_naming_the_field_in_both_languages(domain: Domain) -> None:
    code = FOOD_LICENCE["code"]
    headers = domain.auth(index_of(domain, MARKET["code"]))
    before = read_type(domain, code)["version"]
    for bad in ("xml", "PDF", "pdf,ofd"):
        response = domain.client.put(
            f"/api/v1/catalogue/licence-types/{code}",
            json={**definition(domain, code), "document_formats": bad},
            headers=headers,
        )
        assert response.status_code == 422, response.text
        problem = response.json()
        assert problem["field"] == "document_formats"
        assert "文件格式" in problem["detail"] and "must be one of" in problem["detail"]
    assert read_type(domain, code)["version"] == before


def test_an_ofd_only_type_issues_no_pdf_and_its_row_names_the_ofd(domain: Domain) -> None:
    code = FOOD_LICENCE["code"]
    headers = domain.auth(index_of(domain, MARKET["code"]))
    changed = domain.client.put(
        f"/api/v1/catalogue/licence-types/{code}",
        json={**definition(domain, code), "document_formats": "ofd"},
        headers=headers,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["document_formats"] == "ofd"
    try:
        issued = domain.issue(index_of(domain, MARKET["code"]))
        assert set(issued["documents"]) == {"ofd"}
        ofd = get_ofd(domain, issued["identifier"]).content
        assert issued["sha256"] == hashlib.sha256(ofd).hexdigest()
        pdf = domain.client.get(f"/api/v1/licences/{issued['identifier']}/pdf", headers=headers)
        assert pdf.status_code == 404
        # The version history keeps the format of each version; omitting it keeps it.
        unchanged = {k: v for k, v in definition(domain, code).items() if k != "document_formats"}
        kept = domain.client.put(
            f"/api/v1/catalogue/licence-types/{code}", json=unchanged, headers=headers
        )
        assert kept.json()["document_formats"] == "ofd"
        versions = read_type(domain, code, "/versions")
        formats = [v["definition"].get("document_formats") for v in versions]
        assert formats[0] in (None, "pdf") and formats[-1] == "ofd"
    finally:
        domain.client.put(
            f"/api/v1/catalogue/licence-types/{code}",
            json={**definition(domain, code), "document_formats": "pdf"},
            headers=headers,
        )


# -- verification (helper V's verifier) and revocation -----------------------------------------


def verify(domain: Domain, data: bytes) -> dict[str, Any]:
    response = domain.client.post(
        "/api/v1/verify", files={"file": ("licence.ofd", data, "application/ofd")}
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


@pytest.mark.slow
def test_both_documents_verify_and_both_fail_after_revocation(domain: Domain) -> None:
    response = issue(domain)
    issued = response.json()
    ofd = get_ofd(domain, issued["identifier"]).content
    pdf = domain.pdf(issued, index_of(domain, MARKET["code"]))
    assert verify(domain, ofd)["indication"] == "PASSED"
    assert domain.verify_pdf(pdf)["indication"] == "PASSED"
    revoked = domain.client.post(
        f"/api/v1/licences/{issued['identifier']}/revoke",
        json={"reason": "以欺骗手段取得许可"},
        headers=domain.auth(index_of(domain, MARKET["code"])),
    )
    assert revoked.status_code == 200, revoked.text
    assert verify(domain, ofd)["indication"] != "PASSED"
    assert domain.verify_pdf(pdf)["indication"] != "PASSED"


# -- revision 0027 ---------------------------------------------------------------------------


def test_revision_0027_creates_what_the_models_describe(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    command.upgrade(alembic_config(url), "0027")
    engine = create_engine(url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
        indexes = {i["name"]: i["column_names"] for i in inspect(conn).get_indexes("licence_ofd")}
        columns = {c["name"]: c for c in inspect(conn).get_columns("licence_type")}
    flat = [d for item in diff for d in (item if isinstance(item, list) else [item])]
    assert [d for d in flat if re.search(r"licence_ofd|document_formats", repr(d))] == []
    assert indexes == {"ix_licence_ofd_sha256": ["sha256"]}
    assert "pdf" in str(columns["document_formats"]["default"])  # existing types stay PDF
    engine.dispose()


# -- whole or not at all -----------------------------------------------------------------------


def counts(domain: Domain) -> tuple[int, int, int]:
    with reading(domain.services.engine) as session:
        return (
            len(session.exec(select(Licence.identifier)).all()),
            len(session.exec(select(LicenceDocument.identifier)).all()),
            len(session.exec(select(LicenceOfd.identifier)).all()),
        )


def test_an_ofd_that_cannot_be_stored_takes_the_licence_and_its_pdf_with_it(
    domain: Domain, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = counts(domain)

    def full_disk(*_: Any) -> None:
        raise OSError("no space left for licence_ofd")

    monkeypatch.setattr(issued_store, "store_ofd", full_disk)
    with pytest.raises(OSError):
        domain.client.post(
            "/api/v1/licences", json=OPERATOR, headers=domain.auth(index_of(domain, MARKET["code"]))
        )
    assert counts(domain) == before  # no row, no PDF, no OFD


def test_a_service_without_sm2_seals_refuses_an_ofd_type_before_sealing_anything(
    domain: Domain, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A custody without SM2 (OpenBao transit, PKCS#11) builds no OFD issuance: a type set to
    issue OFD is refused in words, naming the type, and nothing is signed or written."""
    service = getattr(domain.services.issuance, "_inner", domain.services.issuance)  # metrics
    monkeypatch.setattr(service, "_ofd", None)
    before = counts(domain)
    with reading(domain.services.engine) as session:
        signed = len(session.exec(select(AuditEntry).where(AuditEntry.action == "key.sign")).all())
    response = issue(domain)
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["field"] == "licence_type"
    assert "SM2" in problem["detail"] and "国密" in problem["detail"]
    assert counts(domain) == before
    with reading(domain.services.engine) as session:
        after = len(session.exec(select(AuditEntry).where(AuditEntry.action == "key.sign")).all())
    assert after == signed
    food = domain.issue(index_of(domain, MARKET["code"]))  # a PDF type still issues
    assert set(food["documents"]) == {"pdf"}
