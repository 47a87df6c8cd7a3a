"""Another domain's trust list (``trust/federation_list.py``): pinned signer first, then the
JWS, the members, the signer's issuer and EKU, ``next_update``, and the sequence against the
stored list — each refusal with the message that names the rule."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID

from core.errors import Conflict, InvalidInput
from tests.security.federation_support import (
    ca_entry,
    certificate,
    domain,
    iso,
    pem,
    seal_entry,
)
from tests.security.support import NOW
from trust.federation_jws import STATUS_TYPE
from trust.federation_list import (
    TrustList,
    accept,
    authenticate,
    check_current,
    check_successor,
    parse,
    parse_time,
)
from trust.profiles import TRUST_LIST_SIGNING
from trust.trustlist import canonical, fingerprint

NOT_SIGNED = "不是签名的信任列表 / not a signed trust list (no signer certificate or signature)"
FORGED = "信任列表签名无效（已被改动或伪造） / the trust list's signature does not verify " \
    "(altered or forged)"


def refused(call: Any, *args: Any) -> str:
    with pytest.raises(InvalidInput) as caught:
        call(*args)
    assert caught.value.field == "trust-list"
    return caught.value.message


# -- pin and signature ---------------------------------------------------------------------


def test_a_genuine_list_is_accepted_with_its_members() -> None:
    b = domain("b")
    listed, new = accept(b.document(3), b.pin.upper(), NOW)
    assert new is True
    assert (listed.name, listed.sequence, listed.fingerprint) == ("b", 3, b.pin)
    assert listed.organisation == "b 数据局"
    assert listed.base_url == "https://b.example"
    assert listed.trust_list_url == "https://b.example/pki/trust-list"
    assert listed.issued_at == NOW - timedelta(hours=1)
    assert listed.next_update == NOW + timedelta(days=7)
    assert [ca.name for ca in listed.cas] == ["root", "issuing"]
    assert listed.cas[1].ocsp_url == "https://b.example/pki/ocsp/issuing"
    assert listed.cas[1].crl_url == "https://b.example/pki/crl/issuing"
    assert listed.signer == b.signer and listed.tsa == b.tsa
    seal = listed.seals[0]
    assert (seal.seal, seal.serial, seal.department_name, seal.department_code, seal.status,
            seal.revoked_at) == ("S1", format(b.seal.serial_number, "x"), "测试局", "D1",
                                 "valid", None)
    assert seal.certificate == b.seal


def test_a_list_of_another_signer_is_named_as_such_before_its_signature() -> None:
    a, b = domain("a"), domain("b")
    message = refused(authenticate, a.document(), b.pin.upper())
    assert message == (
        f"签名者证书指纹不符 / the signer's SHA-256 fingerprint {a.pin} is not the pinned {b.pin}"
    )
    # another domain's list carrying b's signer certificate, signed by a's key: forged
    claimed = a.sign(a.body(signer={"certificate": pem(b.signer)}))
    assert refused(authenticate, claimed, b.pin) == FORGED


def test_an_altered_or_retyped_list_is_forged() -> None:
    b = domain("b")
    altered = b.document()
    altered["sequence"] = 99
    assert refused(authenticate, altered, b.pin) == FORGED
    status_typed = b.sign(b.body(), STATUS_TYPE)
    assert refused(authenticate, status_typed, b.pin) == FORGED
    broken = b.document()
    broken["signature"] = {"protected": broken["signature"]["protected"], "signature": "!!"}
    assert refused(authenticate, broken, b.pin) == FORGED
    authenticate(b.document(), b.pin)


@pytest.mark.parametrize(
    "document",
    [
        None,
        {},
        {"signer": {"certificate": "junk"}, "signature": {"protected": "x"}},
        {"signer": None, "signature": {"protected": "x"}},
        "signed",
    ],
)
def test_a_document_without_signer_or_signature_is_not_a_signed_list(document: Any) -> None:
    assert refused(authenticate, document, domain("b").pin) == NOT_SIGNED


def test_a_signature_without_a_protected_header_is_not_a_signed_list() -> None:
    b = domain("b")
    for signature in (None, {}, {"protected": 5}, {"signature": "x"}):
        document = {**b.document(), "signature": signature}
        assert refused(authenticate, document, b.pin) == NOT_SIGNED


def test_a_signature_member_that_breaks_the_check_is_forged() -> None:
    b = domain("b")
    document = b.document()
    document["signature"] = {"protected": document["signature"]["protected"], "signature": None}
    assert refused(authenticate, document, b.pin) == FORGED


# -- members -------------------------------------------------------------------------------


def malformed(**changes: Any) -> str:
    return refused(parse, domain("b").body(**changes))


def test_format_sequence_and_name_are_checked() -> None:
    assert malformed(format="elicence-trust-list/2") == (
        "不支持的信任列表格式 / format 'elicence-trust-list/2' is not elicence-trust-list/1"
    )
    assert malformed(format=None) == (
        "不支持的信任列表格式 / format None is not elicence-trust-list/1"
    )
    for sequence in (0, -1, True, "2", 1.0, None):
        assert malformed(sequence=sequence) == (
            "信任列表序号无效 / sequence is not a positive integer"
        )
    b = domain("b")
    for name in ("", "n" * 129, 7, None):
        assert malformed(domain={**b.body()["domain"], "name": name}) == (
            "信任域名称无效 / domain.name must be 1 to 128 characters"
        )
    assert parse(b.body(sequence=1)).sequence == 1
    longest = parse(b.body(domain={**b.body()["domain"], "name": "n" * 128}))
    assert longest.name == "n" * 128
    assert parse(b.body(domain={**b.body()["domain"], "name": "x"})).name == "x"


def test_missing_members_are_named() -> None:
    b = domain("b")
    body = b.body()
    del body["cas"]
    assert refused(parse, body) == (
        "信任列表内容不完整 / the trust list is malformed: KeyError 'cas'"
    )
    body = b.body()
    del body["sequence"]
    assert refused(parse, body) == (
        "信任列表内容不完整 / the trust list is malformed: KeyError 'sequence'"
    )
    assert malformed(cas=[{"name": "x", "certificate": "junk"}]).startswith(
        "信任列表内容不完整 / the trust list is malformed: ValueError"
    )
    assert malformed(seals=[{"seal": "S"}]) == (
        "信任列表内容不完整 / the trust list is malformed: KeyError 'serial'"
    )
    assert malformed(cas=[]) == "信任列表没有CA / the trust list names no CA"
    assert malformed(domain="b").startswith(
        "信任列表内容不完整 / the trust list is malformed: TypeError"
    )


def test_optional_members_default_to_empty() -> None:
    b = domain("b")
    bare = b.body(domain={"name": "b"}, tsa=None)
    bare["cas"] = [{"name": "root", "certificate": pem(b.root)},
                   {"name": "issuing", "certificate": pem(b.ca)}]
    bare["seals"] = [{"seal": 1, "serial": 2, "certificate": pem(b.seal), "status": 3}]
    listed = parse(bare)
    assert (listed.organisation, listed.base_url, listed.trust_list_url) == ("", "", "")
    assert listed.tsa is None
    assert (listed.cas[0].crl_url, listed.cas[0].ocsp_url) == (None, None)
    seal = listed.seals[0]
    assert (seal.seal, seal.serial, seal.status, seal.department_name,
            seal.department_code, seal.revoked_at) == ("1", "2", "3", None, None, None)


def test_a_revoked_seal_has_its_time() -> None:
    b = domain("b")
    revoked = seal_entry(b.seal, "revoked", revoked_at="2026-01-02T03:04:05Z")
    listed = parse(b.body(seals=[revoked]))
    assert listed.seals[0].revoked_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert malformed(seals=[seal_entry(b.seal, revoked_at="soon")]) == (
        "信任列表 revoked_at 格式错误 / revoked_at is not an RFC 3339 time"
    )


def test_times_must_be_rfc3339_with_a_zone() -> None:
    assert parse_time("2026-03-14T02:00:00Z", "t") == NOW
    assert parse_time("2026-03-14T10:00:00+08:00", "t") == NOW
    assert refused(parse_time, None, "issued_at") == (
        "信任列表缺少 issued_at / the trust list has no valid issued_at"
    )
    assert refused(parse_time, 5, "next_update") == (
        "信任列表缺少 next_update / the trust list has no valid next_update"
    )
    assert refused(parse_time, "tomorrow", "next_update") == (
        "信任列表 next_update 格式错误 / next_update is not an RFC 3339 time"
    )
    assert refused(parse_time, "2026-03-14T02:00:00", "next_update") == (
        "信任列表 next_update 缺少时区 / next_update has no time zone"
    )
    assert malformed(issued_at=None) == (
        "信任列表缺少 issued_at / the trust list has no valid issued_at"
    )
    assert malformed(next_update="2026-03-21T02:00:00") == (
        "信任列表 next_update 缺少时区 / next_update has no time zone"
    )


# -- the signer ----------------------------------------------------------------------------


def test_the_signer_must_be_issued_by_a_listed_ca() -> None:
    a, b = domain("a"), domain("b")
    assert malformed(cas=[ca_entry("root", b.root, b.base)]) == (
        "签名者证书不由列表中的CA签发 / the signer certificate is not issued by a CA of the list"
    )
    # a certificate naming b's CA as issuer, signed by another key
    fake = certificate("b Trust List", b.signer.public_key(), b.ca, a.ca_key,  # type: ignore[arg-type]
                       eku=TRUST_LIST_SIGNING)
    assert malformed(signer={"certificate": pem(fake)}) == (
        "签名者证书不由列表中的CA签发 / the signer certificate is not issued by a CA of the list"
    )


def test_the_signer_must_carry_the_trust_list_signing_eku() -> None:
    b = domain("b")
    lacks = "签名者证书不是信任列表签名证书 / the signer certificate lacks the trust-list signing EKU"
    for eku in (None, ExtendedKeyUsageOID.CODE_SIGNING, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE):
        signer = certificate("s", b.signer.public_key(), b.ca, b.ca_key, eku=eku)  # type: ignore[arg-type]
        assert malformed(signer={"certificate": pem(signer)}) == lacks


# -- current -------------------------------------------------------------------------------


def test_a_list_past_its_next_update_is_stale() -> None:
    b = domain("b")
    listed = b.parsed(next_update=NOW)
    assert refused(check_current, listed, NOW) == (
        "信任列表已过期（下次更新 2026-03-14T02:00:00+00:00） / the trust list is stale: its "
        "next_update 2026-03-14T02:00:00+00:00 has passed"
    )
    check_current(listed, NOW - timedelta(seconds=1))
    with pytest.raises(InvalidInput):
        accept(b.document(next_update=NOW - timedelta(days=1)), b.pin, NOW)


def test_the_signer_must_be_valid_now() -> None:
    b = domain("b")
    listed = b.parsed(next_update=datetime(2031, 1, 1, tzinfo=UTC))
    invalid = "信任列表签名证书不在有效期内 / the signer certificate is not valid now"
    start, end = b.signer.not_valid_before_utc, b.signer.not_valid_after_utc
    check_current(listed, start)
    check_current(listed, end)
    assert refused(check_current, listed, start - timedelta(seconds=1)) == invalid
    assert refused(check_current, listed, end + timedelta(seconds=1)) == invalid


# -- the sequence ----------------------------------------------------------------------------


def conflict(listed: TrustList, stored: tuple[int, str]) -> str:
    with pytest.raises(Conflict) as caught:
        check_successor(listed, *stored)
    assert caught.value.field == "trust-list"
    return caught.value.message


def test_a_lower_sequence_is_a_replay_and_a_reused_one_must_be_the_same_list() -> None:
    b = domain("b")
    listed = b.parsed(4)
    digest = listed.digest
    assert digest == __import__("hashlib").sha256(canonical(listed.document)).hexdigest()
    assert conflict(listed, (5, digest)) == (
        "信任列表序号 4 早于已保存的 5，拒绝回放 / sequence 4 is older than the stored 5; refused "
        "as a replay"
    )
    assert conflict(listed, (4, "0" * 64)) == (
        "信任列表序号 4 与已保存列表相同但内容不同 / sequence 4 equals the stored one but the "
        "content differs; refused"
    )
    assert check_successor(listed, 4, digest) is False
    assert check_successor(listed, 3, "0" * 64) is True


def test_accept_compares_with_the_stored_list() -> None:
    b = domain("b")
    document = b.document(2)
    stored = parse(document)
    assert accept(document, b.pin, NOW, (2, stored.digest))[1] is False
    assert accept(b.document(3), b.pin, NOW, (2, stored.digest))[1] is True
    with pytest.raises(Conflict):
        accept(b.document(1), b.pin, NOW, (2, stored.digest))
    # the rules run in order: a stale forged list is named forged
    forged = b.document(next_update=NOW - timedelta(days=1))
    forged["sequence"] = 7
    assert refused(accept, forged, b.pin, NOW) == FORGED
    stale_old = b.document(1, next_update=NOW)
    assert "stale" in refused(accept, stale_old, b.pin, NOW, (2, stored.digest))
    bad_format = b.sign(b.body(format="x", next_update=NOW))
    assert "format" in refused(accept, bad_format, b.pin, NOW)


def test_the_digest_is_of_the_canonical_document() -> None:
    b = domain("b")
    one = b.parsed()
    reordered = json.loads(json.dumps(one.document, sort_keys=True))
    assert replace(one, document=reordered).digest == one.digest
    assert replace(one, document={**one.document, "x": 1}).digest != one.digest


def test_issuer_of_and_seal_match_exactly() -> None:
    a, b = domain("a"), domain("b")
    listed = b.parsed()
    assert listed.issuer_of(b.seal) == listed.cas[1]
    assert listed.issuer_of(b.ca) == listed.cas[0]
    assert listed.issuer_of(a.seal) is None
    same_name = certificate("x", a.seal.public_key(), b.ca, a.ca_key)  # type: ignore[arg-type]
    assert listed.issuer_of(same_name) is None
    assert listed.seal(b.seal) == listed.seals[0]
    assert listed.seal(a.seal) is None
    twin = certificate("b Seal", b.seal_key.public_key(), b.ca, b.ca_key)
    assert listed.seal(twin) is None
    assert iso(NOW) == "2026-03-14T02:00:00Z"
    assert fingerprint(b.signer) == listed.fingerprint
