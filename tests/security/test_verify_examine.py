"""The examination of a real sealed PDF (verify/signature.py): what the seal, its timestamp, the
document timestamps after it and the embedded revocation data prove, as plain facts. Each PDF is
built once per process (tests/security/examined_pdfs.py); the facts are written out here.

Long-term evidence: the newest document timestamp is checked now, each older one at the time of
the next; the seal's timestamp at the oldest document timestamp's time, with the CRLs the
document embeds; the seal's chain at the time its timestamp claims, with those CRLs. At the
current time the embedded CRLs are stale and do not count."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

import verify.signature as signature
from tests.security.examined_pdfs import (
    ARCHIVED,
    REARCHIVED,
    SEAL_SERIAL,
    STAMPED,
    TSA_SERIAL,
    anchors,
    archived,
    crl,
    document_timestamp,
    good_ocsp,
    page,
    rogue_tsa,
    root,
    seal,
    sealed,
    tsa,
    with_dss,
)
from tests.security.support import NOW
from verify.signature import (
    ArchiveFacts,
    EmbeddedFacts,
    Revocation,
    SignatureFacts,
    TimestampFacts,
    TrustAnchors,
    examine,
    revoked_before,
)

NOW_ISO = NOW.isoformat()


def token() -> TimestampFacts:
    return TimestampFacts(True, True, True, STAMPED, TSA_SERIAL, "Common Name: 测试时间戳 Test TSA",
                          tsa().der)


def seal_facts(**changes: Any) -> SignatureFacts:
    """The facts of the plain sealed file (no timestamp), apart from ``changes``."""
    good = SignatureFacts(
        moment=NOW, signatures=1, docmdp=1, intact=True, valid=True, trusted=True,
        signer_der=seal().der, signer_serial=SEAL_SERIAL, signer_subject="Common Name: 测试印章 Test seal",
        chain=(seal().der, root().der), coverage="ENTIRE_FILE", modification="NONE", docmdp_ok=True,
    )
    return replace(good, **changes)


def examined(data: bytes, **kwargs: Any) -> SignatureFacts:
    facts = examine(data, anchors(), moment=kwargs.pop("moment", NOW), **kwargs)
    assert facts.signing_time is None or facts.signing_time.tzinfo is not None
    return replace(facts, signing_time=None)  # the signer's clock: the time the test ran


LTA = {"coverage": "ENTIRE_REVISION", "modification": "LTA_UPDATES"}


def test_a_plain_seal() -> None:
    assert examined(sealed()) == seal_facts()
    assert examine(sealed(), anchors(), moment=NOW).signing_time is not None


def test_a_seal_with_its_own_timestamp() -> None:
    assert examined(sealed(True)) == seal_facts(claimed_time=STAMPED, timestamp=token())


def test_one_document_timestamp_proves_existence_at_its_time() -> None:
    assert examined(archived(("tsa", ARCHIVED))) == seal_facts(
        claimed_time=STAMPED, timestamp=token(), **LTA, archive=ArchiveFacts(
            1, None, ARCHIVED,
            "1 document timestamp(s); the oldest proves the seal existed at "
            "2026-01-10T08:00:00+00:00"))


def test_the_oldest_of_a_chain_of_document_timestamps_counts() -> None:
    facts = examined(archived(("tsa", ARCHIVED), ("tsa", REARCHIVED)))
    assert facts.archive == ArchiveFacts(
        2, None, ARCHIVED,
        "2 document timestamp(s); the oldest proves the seal existed at 2026-01-10T08:00:00+00:00")
    assert (facts.timestamp, facts.trusted) == (token(), True)


def test_an_untrusted_newest_document_timestamp_cuts_the_chain() -> None:
    assert examined(archived(("rogue", ARCHIVED))).archive == ArchiveFacts(
        1, None, None, f"document timestamp of 2026-01-10T08:00:00+00:00 not verifiable at {NOW_ISO}")
    cut = examined(archived(("tsa", ARCHIVED), ("rogue", REARCHIVED))).archive
    assert cut == ArchiveFacts(
        2, None, None, f"document timestamp of 2026-02-20T08:00:00+00:00 not verifiable at {NOW_ISO}")


def test_an_older_document_timestamp_is_checked_at_the_time_of_the_next() -> None:
    cut = examined(archived(("rogue", ARCHIVED), ("tsa", REARCHIVED))).archive
    assert cut == ArchiveFacts(
        2, None, None,
        "document timestamp of 2026-01-10T08:00:00+00:00 not verifiable at 2026-02-20T08:00:00+00:00")


@pytest.mark.parametrize(("since", "tolerance", "cut"), [
    (ARCHIVED - timedelta(hours=1), timedelta(0), True),
    (ARCHIVED, timedelta(0), True),
    (ARCHIVED + timedelta(seconds=1), timedelta(seconds=1), True),
    (ARCHIVED + timedelta(seconds=1), timedelta(0), False),
    (ARCHIVED + timedelta(days=1), timedelta(seconds=1), False),
])
def test_a_document_timestamp_by_a_revoked_tsa_proves_nothing(
    since: datetime, tolerance: timedelta, cut: bool
) -> None:
    revoked = (Revocation(TSA_SERIAL, since, "keyCompromise"), Revocation(1, ARCHIVED))
    facts = examined(archived(("tsa", ARCHIVED)), revoked=revoked, tolerance=tolerance)
    if cut:
        assert facts.archive == ArchiveFacts(
            1, None, None,
            f"document timestamp of 2026-01-10T08:00:00+00:00 revoked at {since.isoformat()} "
            "(keyCompromise)")
    else:
        assert facts.archive.proof_time == ARCHIVED


def test_a_revoked_newer_timestamp_leaves_older_ones_checked_for_integrity_only() -> None:
    revoked = (Revocation(TSA_SERIAL, ARCHIVED - timedelta(days=1), "keyCompromise"),)
    facts = examined(archived(("rogue", ARCHIVED), ("tsa", REARCHIVED)), revoked=revoked)
    assert facts.archive == ArchiveFacts(
        2, None, None,
        "document timestamp of 2026-02-20T08:00:00+00:00 revoked at "
        "2026-01-09T08:00:00+00:00 (keyCompromise)")


def tampered_archive(data: bytes | None = None) -> bytes:
    """The last document timestamp's signature value altered (one hex digit)."""
    data = data or archived(("tsa", ARCHIVED))
    start = data.rindex(b"/Contents <") + len(b"/Contents <")
    digits = data[start:data.index(b">", start)]
    at = start + len(digits.rstrip(b"0")) - 10
    return data[:at] + (b"1" if data[at:at + 1] != b"1" else b"2") + data[at + 1:]


def test_a_broken_document_timestamp_is_named() -> None:
    facts = examined(tampered_archive())
    assert facts.archive.count == 1 and facts.archive.proof_time is None
    assert facts.archive.detail == ""
    assert re.fullmatch(r"document timestamp Timestamp-[0-9a-f-]{36}", facts.archive.broken or "")


@pytest.mark.parametrize("between", [False, True], ids=["next", "one-between"])
def test_older_timestamps_behind_a_cut_are_still_checked_for_integrity(between: bool) -> None:
    data = tampered_archive()
    if between:
        data = document_timestamp(data, tsa(), ARCHIVED + timedelta(days=10))
    facts = examined(document_timestamp(data, rogue_tsa(), REARCHIVED))
    assert (facts.archive.count, facts.archive.proof_time, facts.archive.detail) == (
        3 if between else 2, None, "")
    assert re.fullmatch(r"document timestamp Timestamp-[0-9a-f-]{36}", facts.archive.broken or "")


def test_an_older_document_timestamp_is_checked_with_the_embedded_crls() -> None:
    """At the time of the next timestamp the CRLs embedded then are the evidence: the TSA was
    revoked between the two timestamps, so the older one proves nothing."""
    revoked_tsa = crl((TSA_SERIAL, ARCHIVED + timedelta(days=1)), ARCHIVED + timedelta(days=2))
    data = with_dss(sealed(True), crls=(revoked_tsa,))
    data = document_timestamp(document_timestamp(data, tsa(), ARCHIVED), tsa(), REARCHIVED)
    assert examined(data).archive == ArchiveFacts(
        2, None, None,
        "document timestamp of 2026-01-10T08:00:00+00:00 not verifiable at "
        "2026-02-20T08:00:00+00:00")


def test_the_reader_is_lenient() -> None:
    """A file pyHanko's strict reader refuses is read leniently (and fails later, by name)."""
    data = sealed().replace(b"%%EOF", b"%%EOF \n")
    assert examine(data, anchors(), moment=NOW) == SignatureFacts(
        moment=NOW, unreadable="ObjectHeaderReadError")


# ----- embedded revocation data (DSS) -----

def revoking(serial: int, since: datetime) -> bytes:
    """A CRL listing ``serial`` revoked at ``since``, issued 60 days later: after the moments it
    is used at, as an archive's CRLs are (retroactive revocation information)."""
    return crl((serial, since), since + timedelta(days=60))


def test_embedded_material_is_counted() -> None:
    empty = crl(None, STAMPED)
    facts = examined(with_dss(sealed(True), certs=(tsa().der,), crls=(empty,)))
    assert facts.embedded == EmbeddedFacts(certificates=1, ocsp_responses=0, crls=1)


def test_embedded_ocsp_responses_are_used_at_past_moments(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    answer = good_ocsp(STAMPED)
    data = with_dss(sealed(True), certs=(rogue_tsa().der,), ocsps=(answer,))
    made: list[dict[str, Any]] = []
    real = signature.ValidationContext

    def recording(**kwargs: Any) -> Any:
        made.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(signature, "ValidationContext", recording)
    facts = examined(data)
    assert facts.embedded == EmbeddedFacts(certificates=1, ocsp_responses=1, crls=0)
    # the seal at its timestamp's time (past: the response counts); its timestamp now (not)
    assert [(c["moment"], [o.dump() for o in c["ocsps"]]) for c in made] == [
        (STAMPED, [answer]), (NOW, [])]
    assert rogue_tsa().der in {c.dump() for c in made[0]["certificate_registry"]}


def test_a_seal_revoked_before_its_timestamp_is_not_trusted() -> None:
    data = with_dss(sealed(True), crls=(revoking(SEAL_SERIAL, STAMPED - timedelta(days=30)),))
    facts = examined(data)
    assert (facts.trusted, facts.trust_problem, facts.intact, facts.valid) == (
        False, "REVOKED_NO_POE", True, True)
    assert facts.claimed_time == STAMPED


def test_a_seal_revoked_after_its_timestamp_stays_trusted() -> None:
    data = with_dss(sealed(True), crls=(revoking(SEAL_SERIAL, STAMPED + timedelta(days=30)),))
    assert (examined(data).trusted, examined(data).trust_problem) == (True, None)


def test_embedded_crls_are_stale_at_the_current_time() -> None:
    """Without a timestamp the chain is checked now, and this domain's records decide."""
    data = with_dss(sealed(), crls=(revoking(SEAL_SERIAL, STAMPED - timedelta(days=30)),))
    facts = examined(data)
    assert (facts.trusted, facts.trust_problem, facts.claimed_time) == (True, None, None)


def test_the_seals_timestamp_is_checked_at_the_archive_time_with_embedded_crls() -> None:
    revoked_tsa = revoking(TSA_SERIAL, STAMPED + timedelta(days=30))
    data = document_timestamp(with_dss(sealed(True), crls=(revoked_tsa,)), tsa(), ARCHIVED)
    facts = examined(data)
    assert facts.archive.proof_time == ARCHIVED
    assert facts.timestamp == replace(token(), trusted=False)
    unarchived = examined(with_dss(sealed(True), crls=(revoked_tsa,)))
    assert unarchived.timestamp == token()  # checked now: the stale CRL does not count


def test_a_root_not_among_the_anchors_is_not_trusted() -> None:
    facts = examine(sealed(), TrustAnchors((tsa().der,), ()), moment=NOW)
    assert (facts.trusted, facts.trust_problem, facts.chain) == (
        False, "NO_CERTIFICATE_CHAIN_FOUND", ())
    middle = examine(sealed(), TrustAnchors((root().der,), (tsa().der,)), moment=NOW)
    assert middle.trusted


# ----- what is not examined, and failures -----

def test_unreadable_bytes() -> None:
    assert examine(b"%PDF-1.7 nothing", anchors(), moment=NOW) == SignatureFacts(
        moment=NOW, unreadable="PdfReadError")


def test_no_signature() -> None:
    assert examine(page(), anchors(), moment=NOW) == SignatureFacts(moment=NOW, signatures=0)


def test_two_signatures_are_not_examined() -> None:
    import io

    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers

    from tests.security import test_docmdp

    out = io.BytesIO()
    signers.PdfSigner(signers.PdfSignatureMetadata(field_name="Second"),
                      test_docmdp._seal_material()[0]).sign_pdf(
        IncrementalPdfFileWriter(io.BytesIO(test_docmdp.sealed(None))), output=out)
    assert examine(out.getvalue(), anchors(), moment=NOW) == SignatureFacts(moment=NOW,
                                                                            signatures=2)


def test_an_unreadable_docmdp_level_is_not_certified(monkeypatch: pytest.MonkeyPatch) -> None:
    from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature

    def broken(self: Any) -> Any:
        raise ValueError

    monkeypatch.setattr(EmbeddedPdfSignature, "docmdp_level", property(broken))
    assert examine(sealed(), anchors(), moment=NOW) == SignatureFacts(moment=NOW, signatures=1)


def test_validation_that_raises_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def validate(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("x")

    monkeypatch.setattr(signature, "validate_pdf_signature", validate)
    assert examine(sealed(), anchors(), moment=NOW) == SignatureFacts(
        moment=NOW, signatures=1, docmdp=1, error="KeyError")


@pytest.mark.parametrize("error", [MemoryError, RecursionError])
def test_limits_propagate(monkeypatch: pytest.MonkeyPatch, error: type[Exception]) -> None:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise error

    monkeypatch.setattr(signature, "validate_pdf_signature", fail)
    with pytest.raises(error):
        examine(sealed(), anchors(), moment=NOW)
    monkeypatch.setattr(signature, "parse", fail)
    with pytest.raises(error):
        examine(sealed(), anchors(), moment=NOW)


def test_a_signature_without_byte_range_fails_to_parse() -> None:
    from tests.security.test_isolation import broken_signature

    assert examine(broken_signature(), anchors(), moment=NOW) == SignatureFacts(
        moment=NOW, unreadable="PdfReadError")


@pytest.mark.parametrize(("since", "tolerance", "expected"), [
    (STAMPED + timedelta(seconds=1), timedelta(seconds=1),
     "revoked at 2025-06-01T04:00:01+00:00 (keyCompromise)"),
    (STAMPED + timedelta(seconds=1, microseconds=1), timedelta(seconds=1), None),
    (STAMPED, timedelta(0), "revoked at 2025-06-01T04:00:00+00:00 (keyCompromise)"),
    (STAMPED - timedelta(days=1), timedelta(0), "revoked at 2025-05-31T04:00:00+00:00 (keyCompromise)"),
])
def test_revoked_before(since: datetime, tolerance: timedelta, expected: str | None) -> None:
    assert revoked_before(Revocation(1, since, "keyCompromise"), STAMPED, tolerance) == expected
    assert revoked_before(None, STAMPED, tolerance) is None
    assert revoked_before(Revocation(1, STAMPED), STAMPED, tolerance) == (
        "revoked at 2025-06-01T04:00:00+00:00 (None)")


def test_the_validation_contexts_never_fetch_and_share_one_registry(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """Which context each step gets: the document timestamp now, with no embedded CRL; the
    seal at its timestamp's time and the seal's timestamp at the archive time, both with the
    embedded CRLs; never fetching, soft-fail, retroactive revocation information allowed."""
    made: list[dict[str, Any]] = []
    real = signature.ValidationContext

    def recording(**kwargs: Any) -> Any:
        made.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(signature, "ValidationContext", recording)
    empty = crl(None, STAMPED)
    data = document_timestamp(with_dss(sealed(True), crls=(empty,)), tsa(), ARCHIVED)
    facts = examined(data)
    assert (facts.trusted, facts.archive.proof_time) == (True, ARCHIVED)
    assert [(c["moment"], len(c["ocsps"]), len(c["crls"])) for c in made] == [
        (NOW, 0, 0), (STAMPED, 0, 1), (ARCHIVED, 0, 1)]
    assert [c["crls"][0].dump() for c in made[1:]] == [empty, empty]
    for context in made:
        assert (context["allow_fetching"], context["retroactive_revinfo"],
                context["revocation_mode"]) == (False, True, "soft-fail")
        assert context["trust_manager"] is made[0]["trust_manager"]
        assert context["certificate_registry"] is made[0]["certificate_registry"]
    roots = [c.dump() for c in made[0]["trust_manager"].iter_certs()]
    assert roots == [root().der]


def test_intermediates_are_registered_for_path_building(monkeypatch: pytest.MonkeyPatch) -> None:
    registries: list[Any] = []
    real = signature.ValidationContext

    def recording(**kwargs: Any) -> Any:
        registries.append(kwargs["certificate_registry"])
        return real(**kwargs)

    monkeypatch.setattr(signature, "ValidationContext", recording)
    examine(sealed(), TrustAnchors((root().der,), (tsa().der,)), moment=NOW)
    assert tsa().der in {c.dump() for c in registries[0]}
