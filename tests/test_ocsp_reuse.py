"""Sealing reuses a good OCSP answer about a certificate for a few minutes (trust/ocsp.py
``status_responses``); what a suspended or revoked seal, or a withdrawn responder, must never
get from that: the remembered ``good``. The revocations here are written the way the product
writes them (the seal desk over HTTP, the certificate table), never by telling the responder,
so the same holds for every worker of a fleet."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.x509 import ocsp

from core.clock import FixedClock
from core.db import reading, transaction
from core.errors import Forbidden, Unavailable
from keys.store import KeyRef
from tests.domain import Domain, demo_domain
from trust.models import CertificateRecord
from trust.ocsp import OCSP_VALIDITY, REUSE

pytestmark = pytest.mark.slow  # a demo domain each, seals and OCSP answers at every step

T0 = datetime.now(UTC).replace(microsecond=0)


class Uses:
    """A key-use listener that counts the OCSP responder's signatures."""

    def __init__(self) -> None:
        self.count = 0

    def key_used(self, ref: KeyRef, purpose: str) -> None:
        self.count += purpose == "ocsp"


@pytest.fixture
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Domain, FixedClock]:
    clock = FixedClock(T0)
    return demo_domain(tmp_path_factory, "ocsp-reuse", clock=clock), clock


def seal_chain(domain: Domain, index: int) -> tuple[str, list[bytes]]:
    """The department's seal code, and its certificate then its CA certificates but the root
    (which has no OCSP answer), DER."""
    with reading(domain.services.engine) as session:
        context = domain.services.seals.seal_for_issuance(session, domain.department(index)["code"])
    chain = [context.certificate_der, *context.chain_der]
    certificates = [x509.load_der_x509_certificate(der) for der in chain]
    return context.seal.code, [
        der for der, c in zip(chain, certificates, strict=True) if c.issuer != c.subject
    ]


def answers(domain: Domain, chain: list[bytes], uses: Uses | None = None) -> list[bytes]:
    with reading(domain.services.engine) as session:
        return domain.services.trust_services.ocsp.status_responses(
            session, [x509.load_der_x509_certificate(der) for der in chain], uses
        )


def parsed(der: bytes) -> ocsp.OCSPResponse:
    return ocsp.load_der_ocsp_response(der)


def archival_evidence(domain: Domain, chain: list[bytes]) -> object:
    with reading(domain.services.engine) as session:
        return domain.services.trust_services.long_term.evidence(
            session, chain, None, archival=True
        )


def test_a_good_answer_is_reused_in_its_window_and_never_past_it(
    world: tuple[Domain, FixedClock],
) -> None:
    domain, clock = world
    _, chain = seal_chain(domain, 0)
    uses = Uses()
    first = answers(domain, chain, uses)
    assert uses.count == len(chain)
    assert all(parsed(a).certificate_status is ocsp.OCSPCertStatus.GOOD for a in first)

    clock.advance(REUSE - timedelta(seconds=1))
    assert answers(domain, chain, uses) == first  # the same bytes, no signature made
    assert uses.count == len(chain)
    for der in first:  # still current when handed out: minutes before its nextUpdate
        answer = parsed(der)
        next_update = answer.next_update_utc
        assert next_update is not None
        assert answer.this_update_utc <= clock.now() < next_update
        assert next_update - clock.now() >= OCSP_VALIDITY - REUSE

    clock.advance(timedelta(seconds=1))
    later = answers(domain, chain, uses)
    assert uses.count == 2 * len(chain)
    assert all(a != b for a, b in zip(first, later, strict=True))
    assert {parsed(a).this_update_utc for a in later} == {clock.now()}

    clock.advance(-timedelta(minutes=1))  # a clock set back: an answer from "the future"
    assert answers(domain, chain, uses) != later
    assert uses.count == 3 * len(chain)


def test_a_suspended_or_revoked_seal_never_gets_the_remembered_good_answer(
    world: tuple[Domain, FixedClock],
) -> None:
    domain, clock = world
    code, chain = seal_chain(domain, 1)
    good = answers(domain, chain)[0]
    assert parsed(good).certificate_status is ocsp.OCSPCertStatus.GOOD
    archival_evidence(domain, chain)  # sealing remembers the good answers too

    clock.advance(timedelta(seconds=30))  # well inside the reuse window
    held = domain.client.post(
        f"/api/v1/seals/{code}/revoke", json={"reason": "certificateHold"}, headers=domain.auth(1)
    )
    assert held.status_code == 200, held.text
    answer = parsed(answers(domain, chain)[0])
    assert answer.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert answer.revocation_reason is x509.ReasonFlags.certificate_hold
    with pytest.raises(Forbidden) as refused:
        archival_evidence(domain, chain)
    assert refused.value.extra == {"seal_status": "certificate"}

    clock.advance(timedelta(seconds=30))
    resumed = domain.client.post(f"/api/v1/seals/{code}/resume", headers=domain.auth(1))
    assert resumed.status_code == 200, resumed.text
    after = answers(domain, chain)[0]
    assert parsed(after).certificate_status is ocsp.OCSPCertStatus.GOOD
    assert after != good  # a new answer, not the one from before the hold
    assert parsed(after).this_update_utc == clock.now()

    clock.advance(timedelta(seconds=30))
    revoked = domain.client.post(
        f"/api/v1/seals/{code}/revoke", json={"reason": "keyCompromise"}, headers=domain.auth(1)
    )
    assert revoked.status_code == 200, revoked.text
    answer = parsed(answers(domain, chain)[0])
    assert answer.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert answer.revocation_reason is x509.ReasonFlags.key_compromise
    with pytest.raises(Forbidden):
        archival_evidence(domain, chain)


def test_a_withdrawn_responder_certificate_stops_the_reuse_of_its_answers(
    world: tuple[Domain, FixedClock],
) -> None:
    """The responder's certificate revoked (its key compromised, say) in the table: its
    remembered answers are not embedded again; with no good responder left, sealing stops."""
    domain, clock = world
    _, chain = seal_chain(domain, 0)
    first = answers(domain, chain)
    responder = format(parsed(first[0]).certificates[0].serial_number, "x")
    with transaction(domain.services.engine) as session:
        record = session.get(CertificateRecord, responder)
        assert record is not None
        record.status = "revoked"
        record.revoked_at = clock.now()
        session.add(record)
    clock.advance(timedelta(seconds=10))
    with pytest.raises(Unavailable):
        answers(domain, chain)
