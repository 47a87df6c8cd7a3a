"""Revoking and suspending a seal, with a controlled clock: licences sealed before the
revocation (as their timestamps prove) stay valid; anything sealed after is REVOKED; a
suspension can be lifted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import ocsp

from core.clock import FixedClock
from core.db import reading
from keys.audit import KeyUseRecorder
from seals.apply import SealRequest, apply_seal
from seals.issuing_seal import SealContext
from seals.models import Department, Seal
from tests.domain import Domain, demo_domain
from trust.models import CertificateRecord

pytestmark = pytest.mark.slow  # seals, revocation data and PDFs at each step

T0 = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Domain, FixedClock]:
    clock = FixedClock(T0)
    return demo_domain(tmp_path_factory, "revocation", clock=clock), clock


def seal_code(domain: Domain, index: int) -> str:
    with reading(domain.services.engine) as session:
        return domain.services.seals.seal_for_issuance(
            session, domain.department(index)["code"]
        ).seal.code


def seal_now(domain: Domain, code: str, *, timestamped: bool = True) -> bytes:
    """A page sealed at the clock's now with the seal, whatever its status: what a holder of
    a revoked key could still make."""
    services = domain.services
    recorder = KeyUseRecorder()
    with reading(services.engine) as session:
        seal = session.get(Seal, code)
        assert seal is not None
        department = session.get(Department, seal.department_code)
        record = session.get(CertificateRecord, seal.certificate_serial)
        assert department is not None and record is not None
        chain = tuple(
            c.public_bytes(serialization.Encoding.DER)
            for c in services.trust.intermediates(session) + services.trust.roots(session)
        )
        context = SealContext(
            seal=seal,
            department=department,
            certificate_der=x509.load_pem_x509_certificate(record.pem.encode()).public_bytes(
                serialization.Encoding.DER
            ),
            chain_der=chain,
        )
        evidence = (
            services.trust_services.long_term.evidence(
                session, [context.certificate_der, *chain], recorder, archival=False
            )
            if timestamped
            else None
        )
    from tests.test_walking_skeleton import _render_unsealed

    pdf, box = _render_unsealed(domain, {"identifier": "X", "links": {"verify": "HTTPS://X/V/Y"}})
    request = SealRequest(
        pdf=pdf, box=box, image_png=seal.image_png, reason="r", location="l", name="n"
    )
    return apply_seal(request, services.seals.signer(context, recorder), evidence)


def ocsp_status(domain: Domain, code: str) -> ocsp.OCSPResponse:
    services = domain.services
    with reading(services.engine) as session:
        seal = session.get(Seal, code)
        assert seal is not None
        record = session.get(CertificateRecord, seal.certificate_serial)
        assert record is not None
        der = services.trust_services.ocsp.status_response(
            session, x509.load_pem_x509_certificate(record.pem.encode())
        )
    return ocsp.load_der_ocsp_response(der)


def crl_serials(domain: Domain) -> dict[str, x509.ReasonFlags | None]:
    crl = x509.load_der_x509_crl(domain.client.get("/pki/crl/seal-ca.crl").content)
    found = {}
    for entry in crl:
        try:
            reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
        except x509.ExtensionNotFound:
            reason = None
        found[format(entry.serial_number, "x")] = reason
    return found


def check(report: dict, name: str) -> dict:  # type: ignore[type-arg]
    return next(c for c in report["checks"] if c["name"] == name)  # type: ignore[no-any-return]


def test_revoked_seal_keeps_earlier_licences_and_refuses_later_seals(
    world: tuple[Domain, FixedClock],
) -> None:
    domain, clock = world
    code = seal_code(domain, 0)
    issued = domain.issue(0)
    before = domain.pdf(issued)
    untimestamped = seal_now(domain, code, timestamped=False)

    clock.advance(timedelta(hours=1))
    other = domain.client.post(
        f"/api/v1/seals/{code}/revoke", json={"reason": "keyCompromise"}, headers=domain.auth(1)
    )
    assert other.status_code == 403
    response = domain.client.post(
        f"/api/v1/seals/{code}/revoke", json={"reason": "keyCompromise"}, headers=domain.auth(0)
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "revoked"
    assert {c["status"] for c in response.json()["certificates"]} == {"revoked"}

    report = domain.verify_pdf(before)
    assert report["indication"] == "PASSED", report
    note = check(report, "revocation")
    assert note["result"] == "passed"
    assert "revoked since" in note["detail"] and "before that, as timestamped" in note["detail"]
    assert report["seal"]["timestamp"] is not None

    refused = domain.client.post(
        "/api/v1/licences", json=domain.department(0)["sample_request"], headers=domain.auth(0)
    )
    assert refused.status_code == 403

    clock.advance(timedelta(hours=1))
    after = domain.verify_pdf(seal_now(domain, code))
    assert after["indication"] == "FAILED"
    assert after["sub_indication"] == "REVOKED"
    assert "印章证书已吊销" in after["message"]
    assert check(after, "revocation")["result"] == "failed"

    no_proof = domain.verify_pdf(untimestamped)
    assert no_proof["sub_indication"] == "REVOKED"
    assert "no proof of when it was sealed" in check(no_proof, "revocation")["detail"]

    answer = ocsp_status(domain, code)
    assert answer.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert answer.revocation_reason is x509.ReasonFlags.key_compromise
    assert answer.revocation_time_utc == T0 + timedelta(hours=1)

    again = domain.client.post(
        f"/api/v1/seals/{code}/revoke", json={"reason": "keyCompromise"}, headers=domain.auth(0)
    )
    assert again.status_code == 409
    bad = domain.client.post(
        f"/api/v1/seals/{code}/revoke", json={"reason": "because"}, headers=domain.auth(0)
    )
    assert bad.status_code == 422


def test_suspension_refuses_new_seals_and_can_be_lifted(world: tuple[Domain, FixedClock]) -> None:
    domain, clock = world
    code = seal_code(domain, 1)
    issued = domain.issue(1)
    before = domain.pdf(issued, 1)
    serial = domain.client.get(f"/api/v1/seals/{code}", headers=domain.auth(1)).json()[
        "certificate_serial"
    ]

    clock.advance(timedelta(hours=1))
    held = domain.client.post(
        f"/api/v1/seals/{code}/revoke", json={"reason": "certificateHold"}, headers=domain.auth(1)
    )
    assert held.status_code == 200, held.text
    assert held.json()["status"] == "suspended"
    assert crl_serials(domain)[serial] is x509.ReasonFlags.certificate_hold
    assert ocsp_status(domain, code).revocation_reason is x509.ReasonFlags.certificate_hold

    report = domain.verify_pdf(before)
    assert report["indication"] == "PASSED", report
    assert "on hold since" in check(report, "revocation")["detail"]
    refused = domain.client.post(
        "/api/v1/licences", json=domain.department(1)["sample_request"], headers=domain.auth(1)
    )
    assert refused.status_code == 403

    clock.advance(timedelta(minutes=30))
    during = seal_now(domain, code)
    held_report = domain.verify_pdf(during)
    assert held_report["sub_indication"] == "REVOKED"
    assert "暂停" in held_report["message"]

    clock.advance(timedelta(minutes=30))
    resumed = domain.client.post(f"/api/v1/seals/{code}/resume", headers=domain.auth(1))
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["status"] == "active"
    assert serial not in crl_serials(domain)
    assert ocsp_status(domain, code).certificate_status is ocsp.OCSPCertStatus.GOOD
    assert domain.issue(1)["status"] == "valid"
    lifted = domain.verify_pdf(during)
    assert check(lifted, "revocation")["result"] == "passed"
    assert lifted["sub_indication"] == "NOT_IN_REPOSITORY"  # genuine, but never issued
    assert (
        domain.client.post(f"/api/v1/seals/{code}/resume", headers=domain.auth(1)).status_code
        == 409
    )


def test_init_of_an_older_data_dir_adds_the_missing_service_certificates(
    world: tuple[Domain, FixedClock],
) -> None:
    """A data dir initialised before the trust services existed has only its CAs and seals;
    the next `elicence init` issues the OCSP, TSA and trust-list certificates."""
    from sqlmodel import delete, select

    from core.db import transaction
    from trust.profiles import Role

    domain, _ = world
    services = domain.services
    service_roles = [Role.OCSP.value, Role.TSA.value, Role.TRUST_LIST.value]
    with transaction(services.engine) as session:
        session.exec(delete(CertificateRecord).where(CertificateRecord.role.in_(service_roles)))  # type: ignore[attr-defined,call-overload]
    with transaction(services.engine) as session:
        assert services.trust.initialise(session, "operator:test") is False
    with reading(services.engine) as session:
        roles = session.exec(
            select(CertificateRecord.role, CertificateRecord.name).where(
                CertificateRecord.role.in_(service_roles)  # type: ignore[attr-defined]
            )
        ).all()
    assert sorted(roles) == [
        ("ocsp", "root"),
        ("ocsp", "seal-ca"),
        ("trust-list", "trust-list"),
        ("tsa", "tsa"),
    ]
    issued = domain.issue(1)
    assert domain.verify_pdf(domain.pdf(issued, 1))["indication"] == "PASSED"
