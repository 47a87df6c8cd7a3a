"""OFD uploads through the public entry points (``POST /api/v1/verify`` and the ``/verify`` page),
parsed in the real limited worker: a hostile package is answered with a report naming why, never
a 500; the upload is told apart by its content, not its name; every upload leaves the audit entry
and the verification-log row of kind "ofd"; the page never shows what the file says."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import col, select

from core.audit import AuditEntry
from core.db import reading
from tests.domain import Domain, demo_domain
from tests.ofd_build import Sm2Pki, Tsa, seal_files
from tests.ofd_zips import Raw, build, entry, zeros_entry
from verify.log import VerificationLog

OFD_XML = (
    b'<ofd:OFD xmlns:ofd="http://www.ofdspec.org/2016" Version="1.0" DocType="OFD">'
    b"<ofd:DocBody><ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot></ofd:DocBody></ofd:OFD>"
)


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory) -> Domain:
    return demo_domain(tmp_path_factory, "ofdapi")


def upload(domain: Domain, data: bytes, name: str = "licence.ofd") -> dict[str, Any]:
    response = domain.client.post("/api/v1/verify", files={"file": (name, data, "application/ofd")})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def last_log(domain: Domain) -> tuple[VerificationLog, AuditEntry]:
    with reading(domain.services.engine) as session:
        row = session.exec(select(VerificationLog).order_by(col(VerificationLog.id).desc())).first()
        entry_ = session.exec(
            select(AuditEntry)
            .where(AuditEntry.action == "licence.verify")
            .order_by(col(AuditEntry.seq).desc())
        ).first()
    assert row is not None and entry_ is not None
    return row, entry_


def test_a_zip_bomb_is_answered_with_its_reason_and_recorded(domain: Domain) -> None:
    bomb = zeros_entry("Doc_0/Res/font_0.ttf", 1 << 30)
    liar = Raw(bomb.name, bomb.payload, 1000, 0)
    report = upload(domain, build([entry("OFD.xml", OFD_XML), liar]))
    assert (report["indication"], report["sub_indication"]) == ("INDETERMINATE", "LIMIT_EXCEEDED")
    assert report["extra"]["method"] == "ofd"
    assert "inflates past" in report["checks"][0]["detail"]
    assert report["licence"] is None
    row, audit = last_log(domain)
    assert (row.method, row.indication, row.sub_indication) == (
        "ofd",
        "INDETERMINATE",
        "LIMIT_EXCEEDED",
    )
    assert row.identifier is None  # nothing the file claims is believed
    assert audit.detail["method"] == "ofd" and audit.object_id.startswith("sha256:")


def test_a_path_traversal_package_is_failed_and_the_page_does_not_quote_it(domain: Domain) -> None:
    data = build([entry("OFD.xml", OFD_XML), entry("../../请致电400-123-4567.xml", b"x")])
    report = upload(domain, data)
    assert (report["indication"], report["sub_indication"]) == ("FAILED", "FORMAT_FAILURE")
    page = domain.client.post("/verify", files={"file": ("licence.ofd", data, "application/ofd")})
    assert page.status_code == 200
    assert "无效" in page.text and "400-123-4567" not in page.text


def test_a_billion_laughs_package_is_failed(domain: Domain) -> None:
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><ofd:OFD '
        b'xmlns:ofd="http://www.ofdspec.org/2016">&b;</ofd:OFD>'
    )
    report = upload(domain, build([entry("OFD.xml", laughs)]))
    assert (report["indication"], report["sub_indication"]) == ("FAILED", "FORMAT_FAILURE")
    assert "DTD" in report["checks"][-1]["detail"]


def test_a_truncated_package_is_unreadable(domain: Domain) -> None:
    whole = build([entry("OFD.xml", OFD_XML), entry("Doc_0/Document.xml", b"<a/>" * 200)])
    report = upload(domain, whole[: len(whole) // 2])
    assert (report["indication"], report["sub_indication"]) == ("INDETERMINATE", "MALFORMED")
    assert report["extra"]["method"] == "ofd"


def test_text_named_ofd_goes_the_pdf_way_and_is_unreadable(domain: Domain) -> None:
    report = upload(domain, b"not a licence at all " * 10)
    assert (report["indication"], report["sub_indication"]) == ("INDETERMINATE", "MALFORMED")
    row, _ = last_log(domain)
    assert row.method == "pdf"  # told apart by content: this is no ZIP


def test_a_genuine_pdf_named_ofd_is_verified_as_the_pdf_it_is(domain: Domain) -> None:
    issued = domain.issue()
    report = upload(domain, domain.pdf(issued), name="licence.ofd")
    assert report["indication"] == "PASSED", report
    assert report["licence"]["identifier"] == issued["identifier"]


def test_an_ofd_sealed_under_another_pki_is_not_this_domains(domain: Domain) -> None:
    """A well-formed package sealed by someone else's SM2 keys and TSA: its timestamp proves
    nothing here, so the verdict never reaches the repository."""
    report = upload(domain, seal_files(Sm2Pki(name="forger"), Tsa(name="forger")))
    assert (report["indication"], report["sub_indication"]) == ("INDETERMINATE", "NO_POE")
    assert report["licence"] is None and report["seal"] is None
    names = [c["name"] for c in report["checks"]]
    assert names[:4] == ["format", "seal_count", "references", "coverage"]
    assert "forger" not in str(report)


def test_an_empty_zip_is_not_an_ofd(domain: Domain) -> None:
    report = upload(domain, build([]))
    assert (report["indication"], report["sub_indication"]) == ("FAILED", "FORMAT_FAILURE")
    assert "no OFD.xml" in report["checks"][-1]["detail"]


def test_an_ofd_over_the_upload_limit_is_a_413_problem(domain: Domain) -> None:
    limit = domain.services.verification.max_bytes
    big = b"PK\x03\x04" + bytes(limit + 1)
    response = domain.client.post(
        "/api/v1/verify", files={"file": ("licence.ofd", big, "application/ofd")}
    )
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/problem+json")
