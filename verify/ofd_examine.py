"""What the GB/T 38540 seal of an uploaded OFD proves, examined in the worker without the
repository.

The checks run in the order the report shows them, and the first failure ends the examination:
the package (``verify.ofd_package``) and its layout (``verify.ofd_document``); exactly one seal;
every referenced file's SM3 equal to its CheckValue, then no file that is neither referenced nor
part of the seal (an added page or resource is MODIFIED_AFTER_SEALING, the wording the PDF path
gives to content added after sealing; a changed or missing referenced file is HASH_FAILURE);
``Seal.esl`` the very SESeal that was signed; ``dataHash`` the SM3 of ``Signature.xml``; the
SM2 signature over DER(toSign) with the signer's certificate; the seal maker's SM2 signature over
DER(esealInfo); the signer's certificate one of the SESeal's ``certList``; the timestamp from
this domain's TSA over the signature (none is FAILED/NO_POE: this service timestamps every seal);
the signer's and the maker's certificates chained to this domain's SM2 root at the proven time.

The answer (``OfdFacts``) is plain values: the checks made, the failure if any, and what the
parent needs for revocation, the repository and the status now (``verify.ofd``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from keys.sm2 import SM2_WITH_SM3_OID, Sm2PublicKey, sm3
from seals.ses import SES_Signature
from verify import rules
from verify.ofd_chain import Sm2Anchors, validate
from verify.ofd_document import SIGNATURES, Layout, read_layout, resolve
from verify.ofd_package import Package, Refused, read_package, shown
from verify.report import Check, CheckResult, Indication, SubIndication
from verify.signature import Revocation, TimestampFacts, TrustAnchors, revoked_before
from verify.steps import Verdict
from verify.structure import Inspection

if TYPE_CHECKING:
    from verify.isolation import Limits

NOT_HOLDER = "签章人证书不是该印章的持有人证书 / the signer's certificate is not the seal's own"
NO_TIMESTAMP = "没有时间戳，无法证明盖章时间 / no timestamp: the time of sealing cannot be proven"


@dataclass(frozen=True)
class OfdFacts:
    """What the worker found: its checks in order, the failure that ended them (if any), and the
    values the parent decides with."""

    checks: tuple[Check, ...]
    failure: tuple[Indication, SubIndication, str | None] | None
    identifier: str | None = None  # claimed by the package; a lookup key only
    signer_serial: int | None = None
    signer_der: bytes | None = None  # the SM2 seal certificate, once its signature held
    signing_time: datetime | None = None  # toSign's timeInfo, self-reported
    timestamp: TimestampFacts | None = None
    proven: datetime | None = None  # the genTime of a trusted timestamp


class _Stop(Exception):
    pass


class _Run:
    """The checks as they are made; ``fail`` raises to end the examination."""

    def __init__(self) -> None:
        self.checks: list[Check] = []
        self.failure: tuple[Indication, SubIndication, str | None] | None = None

    def ok(self, name: str, detail: str) -> None:
        self.checks.append(Check(name, CheckResult.PASSED, detail))

    def fail(
        self,
        name: str,
        detail: str,
        indication: Indication,
        sub: SubIndication,
        message: str | None = None,
    ) -> _Stop:
        self.checks.append(Check(name, CheckResult.FAILED, detail))
        self.failure = (indication, sub, message)
        return _Stop()

    def apply(self, verdict: Verdict) -> None:
        self.checks.append(verdict.check)
        if verdict.failure is not None:
            self.failure = verdict.failure
            raise _Stop()


def examine_ofd(
    data: bytes,
    limits: Limits,
    *,
    anchors: TrustAnchors,
    sm2: Sm2Anchors,
    moment: datetime,
    revoked: tuple[Revocation, ...] = (),
    tolerance: timedelta = timedelta(0),
) -> OfdFacts | Inspection:
    """The worker's work for an OFD upload: a refusal of the package (``Inspection``), or the
    facts of its seal."""
    try:
        package = read_package(data, limits)
        layout = read_layout(package, limits)
    except Refused as refused:
        return refused.inspection
    run = _Run()
    state: dict[str, object] = {}
    try:
        _examine(package, layout, run, state, anchors, sm2, moment, revoked, tolerance)
    except _Stop:
        pass
    except (ValueError, TypeError, KeyError, OverflowError) as exc:  # read lazily, did not parse
        run.checks.append(
            Check("seal_structure", CheckResult.FAILED, f"unreadable: {type(exc).__name__}")
        )
        run.failure = (Indication.FAILED, SubIndication.FORMAT_FAILURE, None)
    return OfdFacts(
        checks=tuple(run.checks),
        failure=run.failure,
        identifier=layout.identifier,
        signer_serial=state.get("serial"),  # type: ignore[arg-type]
        signer_der=state.get("signer"),  # type: ignore[arg-type]
        signing_time=state.get("time"),  # type: ignore[arg-type]
        timestamp=state.get("timestamp"),  # type: ignore[arg-type]
        proven=state.get("proven"),  # type: ignore[arg-type]
    )


def _examine(
    package: Package,
    layout: Layout,
    run: _Run,
    state: dict[str, object],
    anchors: TrustAnchors,
    sm2: Sm2Anchors,
    moment: datetime,
    revoked: tuple[Revocation, ...],
    tolerance: timedelta,
) -> None:
    files = package.files
    run.ok("format", f"OFD package, {len(files)} files")
    _seal_count(layout, run)
    _references(files, layout, run)
    signature = _signed_value(files[layout.signed_value_file], run)
    to_sign = signature["to_sign"]
    seal = to_sign["eseal"]
    if files.get(layout.seal_file) != seal.dump():
        raise run.fail(
            "seal_file",
            f"{shown(layout.seal_file)} differs from the seal signed in "
            f"{shown(layout.signed_value_file)}",
            Indication.FAILED,
            SubIndication.HASH_FAILURE,
        )
    _data_hash(files, layout, to_sign, run)
    signer_der = bytes(signature["cert"].native)
    signer = _sm2_key(signer_der, "signer", run)
    if not signer.verify(bytes(signature["signature"].native), to_sign.dump()):
        raise run.fail(
            "integrity",
            "the SM2 signature over toSign does not verify with the signer's certificate",
            Indication.FAILED,
            SubIndication.SIG_CRYPTO_FAILURE,
        )
    run.ok("integrity", "SM2 signature over toSign valid (SM2-with-SM3, ID 1234567812345678)")
    maker_der = bytes(seal["cert"].native)
    maker = _sm2_key(maker_der, "seal maker", run)
    if not maker.verify(bytes(seal["signed_value"].native), seal["eseal_info"].dump()):
        raise run.fail(
            "seal_maker",
            "the seal maker's signature over the seal (SESeal) does not verify",
            Indication.FAILED,
            SubIndication.SIG_CRYPTO_FAILURE,
        )
    run.ok("seal_maker", "SESeal signed by its maker's SM2 certificate")
    holders = [bytes(c) for c in seal["eseal_info"]["property"]["cert_list"].native]
    if signer_der not in holders:
        raise run.fail(
            "seal_holder",
            "the signer's certificate is not in the seal's certList",
            Indication.FAILED,
            SubIndication.NO_SIGNING_CERTIFICATE_FOUND,
            NOT_HOLDER,
        )
    run.ok("seal_holder", "the signer's certificate is the seal holder's")
    state["serial"] = int(_serial(signer_der))
    state["signer"] = signer_der
    state["time"] = to_sign["time_info"].native
    proven = _timestamp(signature, anchors, moment, revoked, tolerance, run, state)
    at = proven or moment
    for name, der, whose in (
        ("chain", signer_der, "signer's"),
        ("maker_chain", maker_der, "seal maker's"),
    ):
        result = validate(der, sm2, at, whose)
        if not result.trusted:
            raise run.fail(
                name, result.detail, Indication.INDETERMINATE, SubIndication.NO_CHAIN_FOUND
            )
        run.ok(name, result.detail)


def _seal_count(layout: Layout, run: _Run) -> None:
    count = layout.signature_count
    if count == 0:
        raise run.fail("seal_count", "no seal", Indication.FAILED, SubIndication.NO_SIGNATURE)
    if count > 1:
        raise run.fail(
            "seal_count",
            f"{SIGNATURES} lists {count} signatures; a licence has one seal",
            Indication.FAILED,
            SubIndication.MODIFIED_AFTER_SEALING,
        )
    run.ok("seal_count", "exactly one seal")


def _references(files: dict[str, bytes], layout: Layout, run: _Run) -> None:
    for reference in layout.references:
        content = files.get(reference.path)
        if content is None:
            raise run.fail(
                "references",
                f"signed file {shown(reference.path)} is missing",
                Indication.FAILED,
                SubIndication.HASH_FAILURE,
            )
        if sm3(content) != reference.check_value:
            raise run.fail(
                "references",
                f"SM3 of {shown(reference.path)} differs from its CheckValue",
                Indication.FAILED,
                SubIndication.HASH_FAILURE,
            )
    run.ok("references", f"SM3 of {len(layout.references)} signed files match their CheckValues")
    seal = {SIGNATURES, layout.signature_xml, layout.seal_file, layout.signed_value_file}
    signed = {r.path for r in layout.references}
    extra = sorted(name for name in files if name not in signed and name not in seal)
    if extra:
        raise run.fail(
            "coverage",
            f"not covered by the seal: {', '.join(shown(name) for name in extra[:5])}"
            + (f" and {len(extra) - 5} more" if len(extra) > 5 else ""),
            Indication.FAILED,
            SubIndication.MODIFIED_AFTER_SEALING,
        )
    run.ok("coverage", "every file is signed or part of the seal")


def _signed_value(data: bytes, run: _Run) -> SES_Signature:
    """SignedValue.dat: a DER SES_Signature of version 4 with SM2-with-SM3, nothing else."""
    try:
        signature: SES_Signature = SES_Signature.load(data, strict=True)
        signature.native  # noqa: B018 - parse all of it now
        if signature.dump(force=True) != data:
            raise ValueError("not DER")
        to_sign = signature["to_sign"]
        algorithms = (signature["signature_alg_id"].dotted, to_sign["eseal"]["sign_alg_id"].dotted)
        if to_sign["version"].native != 4 or algorithms != (SM2_WITH_SM3_OID,) * 2:
            raise ValueError(f"version {to_sign['version'].native}, algorithms {algorithms}")
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
        raise run.fail(
            "seal_structure",
            f"SignedValue.dat is not a GB/T 38540 v4 SES_Signature ({type(exc).__name__})",
            Indication.FAILED,
            SubIndication.FORMAT_FAILURE,
        ) from None
    run.ok("seal_structure", "GB/T 38540 v4 SES_Signature, SM2-with-SM3")
    return signature


def _data_hash(files: dict[str, bytes], layout: Layout, to_sign: object, run: _Run) -> None:
    named = str(to_sign["property_info"].native)  # type: ignore[index]
    try:
        same_file = resolve(named, "") == layout.signature_xml
    except Refused:
        same_file = False
    if not same_file:
        raise run.fail(
            "data_hash",
            "the seal names another signature file than the package's",
            Indication.FAILED,
            SubIndication.HASH_FAILURE,
        )
    if bytes(to_sign["data_hash"].native) != sm3(files[layout.signature_xml]):  # type: ignore[index]
        raise run.fail(
            "data_hash",
            f"SM3 of {shown(layout.signature_xml)} differs from the seal's dataHash",
            Indication.FAILED,
            SubIndication.HASH_FAILURE,
        )
    run.ok("data_hash", f"SM3 of {shown(layout.signature_xml)} equals the seal's dataHash")


def _sm2_key(der: bytes, whose: str, run: _Run) -> Sm2PublicKey:
    try:
        return Sm2PublicKey.from_certificate_der(der)
    except (ValueError, TypeError):
        raise run.fail(
            "integrity" if whose == "signer" else "seal_maker",
            f"the {whose}'s certificate is not an SM2 certificate",
            Indication.FAILED,
            SubIndication.SIG_CRYPTO_FAILURE,
        ) from None


def _serial(der: bytes) -> int:
    from asn1crypto import x509 as asn1_x509

    return int(asn1_x509.Certificate.load(der)["tbs_certificate"]["serial_number"].native)


def _timestamp(
    signature: SES_Signature,
    anchors: TrustAnchors,
    moment: datetime,
    revoked: tuple[Revocation, ...],
    tolerance: timedelta,
    run: _Run,
    state: dict[str, object],
) -> datetime | None:
    """This domain's TSA over the signature's bytes; its genTime, unless the TSA's certificate
    was revoked by then. No token is a failure: every seal this service makes has one."""
    from verify.ofd_timestamp import timestamp_facts

    token = signature["time_stamp"]
    if not token.native:
        raise run.fail(
            "timestamp",
            "no timestamp token in the seal",
            Indication.FAILED,
            SubIndication.NO_POE,
            NO_TIMESTAMP,
        )
    found = timestamp_facts(
        bytes(token.native), bytes(signature["signature"].native), anchors, moment
    )
    if isinstance(found, str):
        raise run.fail("timestamp", found, Indication.FAILED, SubIndication.HASH_FAILURE)
    state["timestamp"] = found
    run.apply(
        rules.sealing_timestamp(
            found, trusted=found.trusted, whose="this domain's", proof="RFC 3161 timestamp"
        )
    )
    revocation = next((r for r in revoked if r.serial == found.signer_serial), None)
    why = revoked_before(revocation, found.time, tolerance)
    if why:
        raise run.fail(
            "timestamp",
            f"the TSA certificate was {why}",
            Indication.INDETERMINATE,
            SubIndication.NO_POE,
        )
    state["proven"] = found.time
    return found.time
