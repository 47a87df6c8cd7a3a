"""The checks of a foreign verification that need no network and no database, and the report's
licence and seal sections built from the issuing domain's signed status answer (never from the
upload). Used by ``verify.foreign``.

The rules are the local verifier's (``verify.rules``); what is foreign is the evidence fed to
them: the issuing domain's TSA for the sealing time, its OCSP answers for revocation, its
signed status answer for the licence."""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from licences.models import LicenceStatus
from licences.payload import key_id
from trust.federation import Recognised
from trust.federation_ocsp import OcspAnswer
from trust.federation_status import StatusAnswer
from verify import rules
from verify.report import (
    Check,
    CheckResult,
    Indication,
    LicenceSummary,
    SealSummary,
    SubIndication,
)
from verify.signature import SignatureFacts
from verify.steps import Steps, Verdict

SEAL_REVOKED = "印章证书已被签发信任域吊销 / the issuing domain revoked the seal's certificate"
TRY_LATER = (
    "暂时无法向签发信任域确认，请稍后再试 / the issuing domain cannot be asked just now; try later"
)


def stale_message(name: str) -> str:
    return (
        f"信任域 {name} 的信任列表已过期且无法更新 / the trust list of {name} is past its "
        "next_update and could not be refreshed; try later"
    )


def signature_checks(facts: SignatureFacts, steps: Steps) -> None:
    """Integrity and modifications, the rules the local verifier applies (``verify.rules``)."""
    steps.apply(rules.integrity(facts))
    steps.apply(rules.modifications(facts))


def sealing_time(facts: SignatureFacts, domain: Recognised, steps: Steps) -> datetime | None:
    """The sealing time the seal's timestamp proves, when that domain's TSA made it."""
    broken = rules.broken_archive(facts.archive)
    if broken is not None:
        steps.apply(broken)
    token, trusted = facts.timestamp, False
    if token is not None and token.intact and token.valid:
        tsa = x509.load_der_x509_certificate(token.signer_der)
        trusted = token.trusted and domain.trust_list.issuer_of(tsa) is not None
    steps.apply(
        rules.sealing_timestamp(token, trusted=trusted, whose=f"{domain.name}'s", proof="RFC 3161")
    )
    return token.time if token is not None else None


def licence_status(answer: StatusAnswer, steps: Steps) -> None:
    licence = answer.licence or {}
    try:
        status = LicenceStatus(licence.get("status"))
    except ValueError:
        raise steps.fail(
            "status",
            "the signed answer names a status this domain does not know",
            Indication.INDETERMINATE,
            SubIndication.TRY_LATER,
            TRY_LATER,
        ) from None
    label = str(licence.get("status_label") or status.label)
    steps.apply(
        rules.licence_status(status, f"{label} (signed answer of {answer.produced_at.isoformat()})")
    )


def revocation(
    answers: list[tuple[x509.Certificate, OcspAnswer]],
    proven: datetime | None,
    steps: Steps,
    domain_name: str,
) -> None:
    """The OCSP answers of the issuing domain about the seal certificate and its CAs: revoked
    (or on hold) before the proven sealing time, or with no proof of it, fails."""
    evidence: list[rules.Revoked | Verdict] = []
    for certificate, answer in answers:
        subject = certificate.subject.rfc4514_string()
        if answer.status == "unknown":
            evidence.append(
                Verdict(
                    Check(
                        "ocsp", CheckResult.FAILED, f"{subject}: unknown to its issuer's responder"
                    ),
                    (Indication.FAILED, SubIndication.NOT_IN_REPOSITORY, None),
                )
            )
        elif answer.status == "revoked":
            assert answer.revoked_at is not None
            line = f"{subject} revoked at {answer.revoked_at.isoformat()} ({answer.reason})"
            evidence.append(rules.Revoked(line, answer.revoked_at, SEAL_REVOKED))
    steps.apply(
        rules.revocation(
            "ocsp",
            evidence,
            proven,
            note="",
            passed=f"{len(answers)} certificate(s) good at {domain_name}'s OCSP responder",
        )
    )


def licence(answer: StatusAnswer | None) -> LicenceSummary | None:
    if answer is None or answer.licence is None:
        return None
    return build(LicenceSummary, answer.licence)  # type: ignore[no-any-return]


def seal(
    answer: StatusAnswer | None, signing_time: str | None, timestamp: str | None
) -> SealSummary | None:
    if answer is None or answer.seal is None:
        return None
    return build(SealSummary, {**answer.seal, "signing_time": signing_time, "timestamp": timestamp})  # type: ignore[no-any-return]


def build(kind: Any, values: dict[str, Any]) -> Any:
    """The dataclass from the members it knows; None when the answer lacks one it needs."""
    names = {f.name for f in fields(kind)}
    try:
        return kind(**{k: v for k, v in values.items() if k in names})
    except TypeError:
        return None


def ders(domain: Recognised, *, roots: bool) -> list[bytes]:
    return [
        ca.certificate.public_bytes(serialization.Encoding.DER)
        for ca in domain.trust_list.cas
        if (ca.certificate.issuer == ca.certificate.subject) == roots
    ]


def issued_by(certificate: x509.Certificate, issuer_der: bytes) -> bool:
    issuer = x509.load_der_x509_certificate(issuer_der)
    if certificate.issuer != issuer.subject:
        return False
    try:
        certificate.verify_directly_issued_by(issuer)
    except Exception:  # InvalidSignature: same name, another key
        return False
    return True


def qr_keys(domain: Recognised) -> dict[bytes, ec.EllipticCurvePublicKey]:
    """The domain's published QR keys by key id, each id recomputed from its key."""
    keys: dict[bytes, ec.EllipticCurvePublicKey] = {}
    for entry in domain.trust_list.document.get("qr_keys") or []:
        try:
            public = serialization.load_pem_public_key(entry["public_key_pem"].encode("ascii"))
        except (TypeError, KeyError, ValueError, AttributeError):
            continue
        if isinstance(public, ec.EllipticCurvePublicKey) and entry.get("alg") == "ES256":
            keys[key_id(public)] = public
    return keys


def check(name: str, passed: bool | None, detail: str) -> Check:
    result = (
        CheckResult.SKIPPED
        if passed is None
        else CheckResult.PASSED
        if passed
        else CheckResult.FAILED
    )
    return Check(name, result, detail)
