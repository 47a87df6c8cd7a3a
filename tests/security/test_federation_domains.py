"""Recognising, refreshing, mapping and removing other domains (``trust/federation.py``,
``trust/federation_store.py``) on an in-memory database and a fake network: a refused list is
refused whole, audited, and leaves the stored list as it was; the verifier sees only lists that
keep the scope rules, refreshed when old."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlmodel import Session, select

import trust.federation_store  # noqa: F401  (its tables)
from core.audit import AuditEntry, AuditLog
from core.clock import FixedClock
from core.errors import Conflict, ElicenceError, InvalidInput, NotFound, Unavailable
from tests.security.federation_support import (
    Network,
    Pki,
    ca_entry,
    certificate,
    domain,
    new_key,
    seal_entry,
)
from tests.security.support import NOW, memory_engine
from trust import federation as federation_module
from trust.federation import AUTO, Federation, Outcome
from trust.federation_http import system_resolve
from trust.federation_store import (
    RecognisedDomain,
    TypeMapping,
    document_digest,
    mappings,
    record_refusal,
    stored_state,
)
from trust.profiles import TRUST_LIST_SIGNING, Role
from trust.trustlist import canonical, fingerprint

OWN = domain("z")
FOREIGN = "1135010000360001XN001"
LOCAL = "91350100000000000X002"
OPERATOR = "operator:alice"


def public(host: str, port: int) -> list[str]:
    return ["93.184.216.34"]


@dataclass
class Setup:
    federation: Federation
    network: Network
    clock: FixedClock

    @property
    def engine(self) -> Any:
        return self.federation._engine

    def row(self, name: str) -> RecognisedDomain | None:
        with Session(self.engine) as session:
            return session.get(RecognisedDomain, name)

    def audit(self, action: str | None = None) -> list[tuple[str, str, str, str, dict[str, Any]]]:
        with Session(self.engine) as session:
            entries = session.exec(select(AuditEntry).order_by(AuditEntry.seq)).all()  # type: ignore[arg-type]
            assert {e.object_type for e in entries} <= {"trust-domain"}
            return [(e.actor, e.action, e.object_id, e.outcome, e.detail) for e in entries
                    if action is None or e.action == action]

    def add(self, pki: Pki, pin: str | None = None) -> Outcome:
        return self.federation.add(pki.url, pin or pki.pin, actor=OPERATOR)


def service_certificate(session: Any, role: Role, name: str) -> tuple[Any, Any]:
    assert isinstance(session, Session) and session.bind is not None
    assert (role, name) == (Role.TRUST_LIST, "trust-list")
    return OWN.signer, SimpleNamespace(key_ref="memory:x:v1")


def local_types(session: Any, code: str) -> str | None:
    assert isinstance(session, Session) and session.bind is not None
    return {LOCAL: "本地许可证"}.get(code)


def own_list(session: Any) -> dict[str, Any]:
    assert isinstance(session, Session) and session.bind is not None
    return OWN.body()


def setup(*pkis: Pki, allow_private: bool = False, own_list: bool = True) -> Setup:
    clock = FixedClock(NOW)
    network = Network()
    for pki in pkis or (domain("a"), domain("b")):
        network.add(pki)
    trust = SimpleNamespace(identity=SimpleNamespace(name="z"),
                            service_certificate=service_certificate)
    federation = Federation(
        engine=memory_engine(), clock=clock, audit=AuditLog(clock), trust=trust,  # type: ignore[arg-type]
        local_types=local_types,
        own_list=globals()["own_list"] if own_list else None,
        allow_private_addresses=allow_private, transport=network.transport(),
    )
    federation.resolve = public
    return Setup(federation, network, clock)


def refused(call: Any, *args: Any, kind: type[ElicenceError] = InvalidInput, **kwargs: Any) -> str:
    with pytest.raises(kind) as caught:
        call(*args, **kwargs)
    return caught.value.message


# -- add -------------------------------------------------------------------------------------


def test_adding_a_domain_stores_its_list_root_and_audit_entry() -> None:
    s = setup()
    b = domain("b")
    pin = ":".join(b.pin[i:i + 2] for i in range(0, 64, 2)).upper()
    assert s.add(b, " " + pin + " ") == Outcome("b", "added", 1)
    row = s.row("b")
    assert row is not None
    assert (row.url, row.fingerprint, row.root_sha256, row.sequence) == (
        b.url, b.pin, fingerprint(b.root), 1)
    assert json.loads(row.document) == s.network.lists["b.example"]
    assert '"b 数据局"' in row.document  # stored as fetched, not escaped
    assert row.next_update.replace(tzinfo=None) == (NOW + timedelta(days=7)).replace(tzinfo=None)
    assert row.fetched_at.replace(tzinfo=None) == NOW.replace(tzinfo=None)
    assert row.added_at.replace(tzinfo=None) == NOW.replace(tzinfo=None)
    assert s.audit() == [(OPERATOR, "federation.add", "b", "ok", {
        "url": b.url, "fingerprint": b.pin, "root_sha256": fingerprint(b.root), "sequence": 1,
        "result": "added"})]
    assert [r.url.path for r in s.network.requests] == ["/pki/trust-list"]
    assert s.network.requests[0].headers["Accept"] == "application/json"


def test_a_bad_fingerprint_or_url_is_refused_before_anything_is_asked() -> None:
    s = setup()
    b = domain("b")
    with pytest.raises(InvalidInput) as caught:
        s.federation.add(b.url, b.pin[:-1], actor=OPERATOR)
    assert caught.value.message == (
        "指纹须为64位十六进制SHA-256 / --fingerprint must be a SHA-256 in 64 hex digits")
    assert caught.value.field == "fingerprint"
    assert refused(s.federation.add, b.url, "g" * 64, actor=OPERATOR).startswith("指纹须为")
    assert refused(s.federation.add, "ftp://b.example/l", b.pin, actor=OPERATOR).startswith(
        "须为 http(s) 网址")
    assert s.network.requests == [] and s.audit() == []


def test_adding_again_takes_a_newer_list_and_refuses_a_replay() -> None:
    s = setup()
    b = domain("b")
    s.add(b)
    assert s.add(b) == Outcome("b", "unchanged", 1)
    s.network.lists["b.example"] = b.document(3)
    assert s.add(b) == Outcome("b", "updated", 3)
    assert s.row("b").sequence == 3  # type: ignore[union-attr]
    s.network.lists["b.example"] = b.document(2)
    message = refused(s.add, b, kind=Conflict)
    assert message.startswith("信任列表序号 2 早于已保存的 3")
    assert s.row("b").sequence == 3  # type: ignore[union-attr]
    results = [(a[1], a[3], a[4].get("result"), a[4].get("reason")) for a in s.audit()]
    assert results == [
        ("federation.add", "ok", "added", None), ("federation.add", "ok", "unchanged", None),
        ("federation.add", "ok", "updated", None), ("federation.add", "refused", None, message)]
    assert s.audit()[-1][2] == b.url  # a refusal names what was asked
    assert s.audit()[-1][4]["fingerprint"] == b.pin


def second_signer(pki: Pki) -> Pki:
    """The same domain with another trust-list signer certificate and key."""
    ref = pki.store.create(f"signer2-{len(pki.store.list())}")
    public_key = pki.store.public_key(ref)
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    signer = certificate(f"{pki.name} Trust List 2", public_key, pki.ca, pki.ca_key,
                         eku=TRUST_LIST_SIGNING)
    return replace(pki, signer=signer, signer_ref=ref)


def test_a_domain_recognised_with_another_pin_must_be_removed_first() -> None:
    s = setup()
    b = domain("b")
    s.add(b)
    other = second_signer(b)
    s.network.lists["b.example"] = other.document(2)
    assert refused(s.add, other, kind=Conflict) == (
        "信任域 b 已按另一指纹承认，请先移除 / b is already recognised with another pinned "
        "fingerprint; remove it first")
    assert s.row("b").fingerprint == b.pin  # type: ignore[union-attr]
    assert s.audit()[-1][3] == "refused"
    with pytest.raises(Conflict) as caught:
        s.add(other)
    assert caught.value.field == "fingerprint"
    # the same sequence under another pin is named as another pin, not as a changed list
    s.network.lists["b.example"] = other.document(1)
    assert refused(s.add, other, kind=Conflict).startswith("信任域 b 已按另一指纹承认")


def test_our_own_list_is_refused() -> None:
    s = setup(OWN)
    message = "这是本信任域自己的信任列表 / this is this domain's own trust list"
    assert refused(s.add, OWN) == message
    with pytest.raises(InvalidInput) as caught:
        s.add(OWN)
    assert caught.value.field == "trust-list"
    renamed = OWN.document(domain={**OWN.body()["domain"], "name": "q"})
    s.network.lists["z.example"] = renamed
    assert refused(s.add, OWN) == message
    assert s.row("z") is None and s.row("q") is None


def test_a_list_naming_another_recognised_domains_key_is_refused_whole() -> None:
    a, b = domain("a"), domain("b")
    s = setup()
    s.add(a)
    s.network.lists["b.example"] = b.document(seals=[seal_entry(b.seal), seal_entry(a.seal)])
    message = refused(s.add, b)
    assert message == (
        "信任列表列出了已承认信任域 a 的印章证书 / the list names a seal of the recognised domain "
        "a; a domain speaks only for its own keys")
    assert s.row("b") is None
    assert s.audit()[-1][1:4] == ("federation.add", b.url, "refused")
    assert s.audit()[-1][4]["reason"] == message


def test_a_list_naming_our_own_key_is_refused_whole() -> None:
    b = domain("b")
    s = setup()
    s.network.lists["b.example"] = b.document(qr_keys=[b.qr_entry(), OWN.qr_entry()])
    assert refused(s.add, b) == (
        "信任列表列出了本信任域的二维码密钥 / the list names a QR key of this domain; a domain "
        "speaks only for its own keys")
    without = setup(own_list=False)
    without.network.lists["b.example"] = s.network.lists["b.example"]
    assert without.add(b).result == "added"


def test_a_list_with_urls_off_its_origin_is_refused() -> None:
    b = domain("b")
    s = setup()
    body = b.body()
    body["cas"][1]["ocsp_url"] = "http://169.254.169.254/ocsp"
    s.network.lists["b.example"] = b.sign(body)
    assert refused(s.add, b) == (
        "信任列表的 cas[issuing].ocsp_url 不在信任列表网址的源上 / the list's cas[issuing].ocsp_url "
        "is not on the origin (scheme, host, port) of its trust-list URL")


def test_an_unreachable_or_private_peer_is_failed_or_refused() -> None:
    b = domain("b")
    s = setup()
    s.network.domains.pop("b.example")
    message = refused(s.add, b, kind=Unavailable)
    assert message == f"无法获取信任列表 / cannot fetch the trust list from {b.url}: HTTP 404"
    assert s.audit()[-1][3:] == ("failed", {"url": b.url, "fingerprint": b.pin,
                                            "reason": message})
    s = setup()
    s.federation.resolve = lambda h, p: ["10.0.0.8"]
    assert "resolves to a loopback, link-local or private address (10.0.0.8)" in refused(s.add, b)
    allowed = setup(allow_private=True)
    allowed.federation.resolve = lambda h, p: ["10.0.0.8"]
    assert allowed.add(b).result == "added"
    assert allowed.federation.peers.allow_private is True


# -- refresh ---------------------------------------------------------------------------------


def test_refresh_takes_a_newer_list_and_audits_it() -> None:
    b = domain("b")
    s = setup()
    s.add(b)
    s.clock.advance(timedelta(hours=1))
    assert s.federation.refresh("b", actor=OPERATOR) == [Outcome("b", "unchanged", 1)]
    s.network.lists["b.example"] = b.document(2)
    assert s.federation.refresh("b", actor=OPERATOR) == [Outcome("b", "refreshed", 2)]
    row = s.row("b")
    assert row is not None and row.sequence == 2
    assert row.fetched_at.replace(tzinfo=None) == (NOW + timedelta(hours=1)).replace(tzinfo=None)
    assert s.audit("federation.refresh") == [
        (OPERATOR, "federation.refresh", "b", "ok", {"from": 1, "sequence": 1, "changed": False}),
        (OPERATOR, "federation.refresh", "b", "ok", {"from": 1, "sequence": 2, "changed": True}),
    ]


def test_refresh_refuses_a_replay_and_another_domains_list() -> None:
    b = domain("b")
    s = setup()
    s.network.lists["b.example"] = b.document(2)
    s.add(b)
    s.network.lists["b.example"] = b.document(1)
    assert refused(s.federation.refresh, "b", actor=OPERATOR, kind=Conflict).startswith(
        "信任列表序号 1 早于已保存的 2")
    s.network.lists["b.example"] = b.document(3, domain={**b.body()["domain"], "name": "b2"})
    with pytest.raises(InvalidInput) as caught:
        s.federation.refresh("b", actor=OPERATOR)
    assert caught.value.message == (
        "列表属于另一信任域 b2 / the list at this URL is of another domain")
    assert caught.value.field == "trust-list"
    assert [a[3] for a in s.audit("federation.refresh")] == ["refused", "refused"]
    assert s.audit("federation.refresh")[-1][2] == "b"
    assert s.audit("federation.refresh")[-1][4]["url"] == b.url
    assert s.row("b").sequence == 2  # type: ignore[union-attr]
    with pytest.raises(NotFound) as missing:
        s.federation.refresh("x", actor=OPERATOR)
    assert (missing.value.message, missing.value.field) == (
        "未承认该信任域 / x is not a recognised domain", "domain")


def test_refreshing_every_domain_reports_each() -> None:
    a, b, c = domain("a"), domain("b"), domain("c")
    s = setup(a, b, c)
    for pki in (a, b, c):
        s.add(pki)
    s.network.lists["a.example"] = a.document(2)
    s.network.lists["b.example"] = b.document(seals=[seal_entry(c.seal)], sequence=2)
    s.network.domains.pop("c.example")
    outcomes = s.federation.refresh(actor=OPERATOR)
    assert [(o.name, o.result, o.sequence) for o in outcomes] == [
        ("a", "refreshed", 2), ("b", "refused", 1), ("c", "unreachable", 1)]
    assert outcomes[1].message.startswith("信任列表列出了已承认信任域 c 的印章证书")
    assert outcomes[2].message == (
        f"无法获取信任列表 / cannot fetch the trust list from {c.url}: HTTP 404")
    assert outcomes[0].message == ""


def test_an_automatic_refresh_of_the_same_list_is_not_audited() -> None:
    b = domain("b")
    s = setup()
    s.add(b)
    s.federation.refresh("b", actor=AUTO)
    assert s.audit("federation.refresh") == []
    s.network.lists["b.example"] = b.document(2)
    s.federation.refresh("b", actor=AUTO)
    assert s.audit("federation.refresh") == [
        (AUTO, "federation.refresh", "b", "ok", {"from": 1, "sequence": 2, "changed": True})]
    assert AUTO == "system:federation"


# -- remove, map, describe -------------------------------------------------------------------


def test_mappings_need_a_recognised_domain_and_a_local_type() -> None:
    b = domain("b")
    s = setup()
    s.add(b)
    f = s.federation
    assert refused(f.map, "b", "nope", LOCAL, actor=OPERATOR) == (
        "外域证照类型代码格式错误 / 'nope' is not a licence type code (18-character credit code "
        "+ 3 digits)")
    assert refused(f.map, "b", FOREIGN[:-1] + "X", LOCAL, actor=OPERATOR).startswith("外域")
    assert refused(f.map, "x", FOREIGN, LOCAL, actor=OPERATOR, kind=NotFound) == (
        "未承认该信任域 / x is not a recognised domain")
    assert refused(f.map, "b", FOREIGN, "91350100000000000X009", actor=OPERATOR,
                   kind=NotFound) == (
        "本域目录中没有该证照类型 / no licence type 91350100000000000X009 in this domain's "
        "catalogue")
    assert refused(f.map, "b", FOREIGN, None, actor=OPERATOR, kind=NotFound) == (
        f"没有该映射 / no mapping of {FOREIGN} for b")
    row = f.map("b", FOREIGN, LOCAL, actor=OPERATOR)
    assert row is not None and (row.domain_name, row.foreign_type, row.local_type) == (
        "b", FOREIGN, LOCAL)
    with Session(s.engine) as session:
        assert f.local_type(session, "b", FOREIGN) == (LOCAL, "本地许可证")
        assert f.local_type(session, "b", "1135010000360001XN002") is None
        session.add(TypeMapping(domain_name="b", foreign_type="1135010000360001XN002",
                                local_type="gone", created_at=NOW))
        session.commit()
        assert f.local_type(session, "b", "1135010000360001XN002") is None
        assert [m.foreign_type for m in mappings(session)] == [FOREIGN, "1135010000360001XN002"]
        assert [m.foreign_type for m in mappings(session, "a")] == []
    assert f.map("b", FOREIGN, LOCAL, actor=OPERATOR) is not None  # again: the same row
    assert f.map("b", FOREIGN, None, actor=OPERATOR) is None
    with Session(s.engine) as session:
        assert session.get(TypeMapping, ("b", FOREIGN)) is None
    assert [(a[1], a[4]) for a in s.audit() if a[1] != "federation.add"] == [
        ("federation.map", {"foreign_type": FOREIGN, "local_type": LOCAL}),
        ("federation.map", {"foreign_type": FOREIGN, "local_type": LOCAL}),
        ("federation.unmap", {"foreign_type": FOREIGN, "local_type": None}),
    ]


def test_removing_a_domain_removes_its_mappings_in_one_transaction() -> None:
    b = domain("b")
    s = setup()
    s.add(b)
    s.federation.map("b", FOREIGN, LOCAL, actor=OPERATOR)
    s.federation.remove("b", actor=OPERATOR)
    assert s.row("b") is None
    with Session(s.engine) as session:
        assert mappings(session) == []
    assert s.audit()[-1] == (OPERATOR, "federation.remove", "b", "ok",
                             {"url": b.url, "fingerprint": b.pin, "mappings": 1})
    assert refused(s.federation.remove, "b", actor=OPERATOR, kind=NotFound) == (
        "未承认该信任域 / b is not a recognised domain")


def test_describe_shows_each_domain() -> None:
    a, b = domain("a"), domain("b")
    s = setup()
    s.add(b)
    s.add(a)
    s.federation.map("b", FOREIGN, LOCAL, actor=OPERATOR)
    described = s.federation.describe()
    assert [d["name"] for d in described] == ["a", "b"]
    assert s.federation.describe("b") == [{
        "name": "b", "organisation": "b 数据局", "url": b.url, "fingerprint": b.pin,
        "root_sha256": fingerprint(b.root), "sequence": 1,
        "fetched_at": NOW.isoformat(), "next_update": (NOW + timedelta(days=7)).isoformat(),
        "added_at": NOW.isoformat(), "cas": 2, "seals": 1,
        "mappings": [{"foreign_type": FOREIGN, "local_type": LOCAL}],
    }]
    assert refused(s.federation.describe, "x", kind=NotFound) == (
        "未承认该信任域 / x is not a recognised domain")


def test_stored_state_is_sequence_and_canonical_digest() -> None:
    b = domain("b")
    s = setup()
    s.add(b)
    row = s.row("b")
    assert row is not None
    import hashlib

    served = s.network.lists["b.example"]
    assert stored_state(row) == (1, hashlib.sha256(canonical(served)).hexdigest())
    assert document_digest({"b": 1, "a": "é"}) == hashlib.sha256(
        '{"a":"é","b":1}'.encode()).hexdigest()


def test_a_refusal_that_cannot_be_recorded_leaves_the_original_error() -> None:
    s = setup()

    class Broken:
        def append(self, *args: Any, **kwargs: Any) -> None:
            raise Unavailable("audit down")

    record_refusal(s.engine, Broken(), "federation.add", "x" * 200, "op",  # type: ignore[arg-type]
                   InvalidInput("r" * 400), {})
    record_refusal(s.engine, AuditLog(s.clock), "federation.add", "x" * 200, "op",
                   InvalidInput("r" * 400), {"url": "u"})
    entry = s.audit()[-1]
    assert entry[2] == "x" * 128 and entry[3] == "refused"
    assert entry[4] == {"url": "u", "reason": "r" * 300}


# -- what the verifier sees -------------------------------------------------------------------


def test_recognised_gives_each_usable_domain_and_refreshes_old_lists() -> None:
    a, b = domain("a"), domain("b")
    s = setup()
    s.add(a)
    s.add(b)
    s.network.requests.clear()
    found = s.federation.recognised()
    assert [(d.name, d.url, d.fingerprint, d.root_sha256, d.stale, d.refresh_error)
            for d in found] == [
        ("a", a.url, a.pin, fingerprint(a.root), False, None),
        ("b", b.url, b.pin, fingerprint(b.root), False, None)]
    assert found[1].trust_list.seals[0].certificate == b.seal
    assert found[1].fetched_at == NOW
    assert s.network.requests == []
    s.clock.advance(timedelta(seconds=299))
    s.federation.recognised()
    assert s.network.requests == []
    s.clock.advance(timedelta(seconds=1))
    s.network.lists["b.example"] = b.document(2)
    found = s.federation.recognised()
    assert [r.url.host for r in s.network.requests] == ["a.example", "b.example"]
    assert found[1].trust_list.sequence == 2
    assert found[1].fetched_at == NOW + timedelta(seconds=300)


def test_a_failed_refresh_keeps_the_stored_list_and_waits_before_trying_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    b = domain("b")
    s = setup(b)
    s.add(b)
    tick = [1000.0]
    monkeypatch.setattr(federation_module.time, "monotonic", lambda: tick[0])
    s.network.domains.pop("b.example")
    s.network.requests.clear()
    s.clock.advance(timedelta(days=6, hours=23))
    first = s.federation.recognised()
    error = f"无法获取信任列表 / cannot fetch the trust list from {b.url}: HTTP 404"
    assert [(d.name, d.stale, d.refresh_error) for d in first] == [("b", False, error)]
    assert len(s.network.requests) == 1
    tick[0] = 1029.9
    again = s.federation.recognised()  # 29.9 s later: not asked again
    assert again[0].refresh_error == error and len(s.network.requests) == 1
    s.clock.advance(timedelta(hours=1))  # now past next_update
    tick[0] = 1030.0
    late = s.federation.recognised()  # 30 s after the failure: asked again
    assert len(s.network.requests) == 2
    assert (late[0].stale, late[0].refresh_error) == (True, error)
    s.network.add(b, b.document(2, next_update=NOW + timedelta(days=30)))
    tick[0] = 1060.0
    fresh = s.federation.recognised()
    assert (fresh[0].stale, fresh[0].refresh_error, fresh[0].trust_list.sequence) == (
        False, None, 2)


def test_a_stored_list_that_breaks_the_scope_rules_is_not_used(
    caplog: pytest.LogCaptureFixture,
) -> None:
    a, b = domain("a"), domain("b")
    s = setup()
    s.add(a)
    s.add(b)
    with Session(s.engine) as session:
        row = session.get(RecognisedDomain, "a")
        assert row is not None
        row.url = "https://other.example/pki/trust-list"  # re-added elsewhere, say
        session.add(row)
        session.commit()
    with caplog.at_level(logging.WARNING, logger="trust.federation"):
        assert [d.name for d in s.federation.recognised()] == ["b"]
    assert [r.getMessage() for r in caplog.records] == [
        "stored trust list of a is not used: 信任列表的 domain.base_url 不在信任列表网址的源上 / "
        "the list's domain.base_url is not on the origin (scheme, host, port) of its trust-list "
        "URL"]
    with Session(s.engine) as session:
        row = session.get(RecognisedDomain, "a")
        assert row is not None
        row.url = a.url
        session.add(row)
        session.commit()
    assert [d.name for d in s.federation.recognised()] == ["a", "b"]
    with Session(s.engine) as session:
        row = session.get(RecognisedDomain, "a")
        assert row is not None
        row.root_sha256 = "0" * 64
        session.add(row)
        session.commit()
    assert [d.name for d in s.federation.recognised()] == ["b"]
    with Session(s.engine) as session:
        row = session.get(RecognisedDomain, "a")
        assert row is not None
        row.root_sha256 = None  # recognised before the root was recorded
        session.add(row)
        session.commit()
    assert [(d.name, d.root_sha256) for d in s.federation.recognised()] == [
        ("a", fingerprint(a.root)), ("b", fingerprint(b.root))]


def test_the_parsed_list_follows_the_stored_one() -> None:
    b = domain("b")
    s = setup(b)
    s.add(b)
    assert s.federation.recognised()[0].trust_list.sequence == 1
    s.network.lists["b.example"] = b.document(2)
    s.federation.refresh("b", actor=OPERATOR)
    assert s.federation.recognised()[0].trust_list.sequence == 2
    assert len([k for k in s.federation._parsed if k[0] == "b"]) == 1
    assert len([k for k in s.federation._roots if k[0] == "b"]) == 1


def test_settings_reach_the_peers() -> None:
    s = setup()
    assert s.federation.refresh_interval == timedelta(seconds=300)
    peers = s.federation.peers
    assert (peers.allow_private, peers.resolve, peers.transport) == (
        False, public, s.federation.transport)
    assert isinstance(s.federation.transport, httpx.MockTransport)


def rerooted(pki: Pki) -> dict[str, Any]:
    """The domain's list with its CA's key certified by another root: the same signer, seals
    and TSA, chaining now to a root that is not the one recorded."""
    key = new_key()
    root = certificate(f"{pki.name} Root 2", key.public_key(), None, key, ca=True)
    cross = certificate(f"{pki.name} CA", pki.ca_key.public_key(), root, key, ca=True)
    return pki.document(2, cas=[ca_entry("root", root, pki.base), ca_entry("issuing", cross,
                                                                            pki.base)])


def test_a_list_under_another_root_than_the_recorded_one_is_refused() -> None:
    b = domain("b")
    s = setup(b)
    s.add(b)
    s.network.lists["b.example"] = rerooted(b)
    expected = "信任列表的根CA已变更 / the list's root "
    assert refused(s.federation.refresh, "b", actor=OPERATOR).startswith(expected)
    assert refused(s.add, b).startswith(expected)  # adding again is a refresh, same rule
    row = s.row("b")
    assert row is not None and (row.sequence, row.root_sha256) == (1, fingerprint(b.root))
    # removed and added again, the new root is recorded
    s.federation.remove("b", actor=OPERATOR)
    assert s.add(b).result == "added"
    assert s.row("b").root_sha256 != fingerprint(b.root)  # type: ignore[union-attr]


def test_a_refresh_keeps_the_recorded_root() -> None:
    b = domain("b")
    s = setup(b)
    s.add(b)
    s.network.lists["b.example"] = b.document(2)
    s.federation.refresh("b", actor=OPERATOR)
    assert s.row("b").root_sha256 == fingerprint(b.root)  # type: ignore[union-attr]


def while_fetching(s: Setup, change: Any) -> None:
    """Another process changes the stored domain while this one fetches its list."""
    fetch = s.federation.fetch

    def racing(url: str) -> Any:
        document = fetch(url)
        with Session(s.engine) as session:
            row = session.get(RecognisedDomain, "b")
            change(session, row)
            session.commit()
        return document

    s.federation.fetch = racing  # type: ignore[method-assign]


def test_a_refresh_racing_another_change_stores_nothing() -> None:
    b = domain("b")
    s = setup(b)
    s.add(b)
    s.network.lists["b.example"] = b.document(2)
    while_fetching(s, lambda session, row: session.delete(row))
    assert refused(s.federation.refresh, "b", actor=OPERATOR, kind=NotFound) == (
        "未承认该信任域 / b is not a recognised domain")
    s = setup(b)
    s.add(b)
    s.network.lists["b.example"] = b.document(2)

    def moved(session: Session, row: RecognisedDomain) -> None:
        row.url = "https://b.example/other"
        session.add(row)

    while_fetching(s, moved)
    assert refused(s.federation.refresh, "b", actor=OPERATOR, kind=Conflict) == (
        "信任域 b 已被另行更新 / b changed; retry")
    assert s.row("b").sequence == 1  # type: ignore[union-attr]
    s = setup(b)
    s.add(b)
    newer = b.document(3)
    s.network.lists["b.example"] = b.document(2)

    def stored_newer(session: Session, row: RecognisedDomain) -> None:
        row.sequence, row.document = 3, json.dumps(newer)
        session.add(row)

    while_fetching(s, stored_newer)
    assert refused(s.federation.refresh, "b", actor=OPERATOR, kind=Conflict).startswith(
        "信任列表序号 2 早于已保存的 3")
    assert s.row("b").sequence == 3  # type: ignore[union-attr]


def test_a_successful_refresh_clears_a_failed_attempt(monkeypatch: pytest.MonkeyPatch) -> None:
    b = domain("b")
    s = setup(b)
    s.add(b)
    monkeypatch.setattr(federation_module.time, "monotonic", lambda: 1000.0)
    s.network.domains.pop("b.example")
    s.clock.advance(timedelta(seconds=300))
    assert s.federation.recognised()[0].refresh_error is not None
    s.network.add(b, b.document(2))
    s.federation.refresh("b", actor=OPERATOR)
    s.clock.advance(timedelta(seconds=300))
    s.network.requests.clear()
    found = s.federation.recognised()  # the failure is forgotten: asked again at once
    assert (found[0].refresh_error, len(s.network.requests)) == (None, 1)


def test_a_list_that_is_not_json_is_named_for_the_trust_list() -> None:
    b = domain("b")
    s = setup(b)
    s.network.lists["b.example"] = ["not", "an", "object"]  # type: ignore[assignment]
    with pytest.raises(InvalidInput) as caught:
        s.add(b)
    assert (caught.value.message, caught.value.field) == (
        "信任列表不是JSON对象 / the trust list is not a JSON object", "trust-list")


def test_a_federation_by_default_refuses_private_addresses_and_resolves_names() -> None:
    clock = FixedClock(NOW)
    plain = Federation(engine=memory_engine(), clock=clock, audit=AuditLog(clock),
                       trust=SimpleNamespace(), local_types=local_types)  # type: ignore[arg-type]
    assert plain.peers.allow_private is False
    assert plain.peers.resolve is system_resolve
    assert plain.peers.transport is None
    assert plain.refresh_interval == timedelta(seconds=300)


def test_mappings_belong_to_their_domain() -> None:
    a, b = domain("a"), domain("b")
    s = setup()
    s.add(a)
    s.add(b)
    second = "1135010000360001XN002"
    s.federation.map("b", second, LOCAL, actor=OPERATOR)
    s.federation.map("b", FOREIGN, LOCAL, actor=OPERATOR)
    s.federation.map("a", second, LOCAL, actor=OPERATOR)
    with Session(s.engine) as session:
        assert [(m.domain_name, m.foreign_type) for m in mappings(session)] == [
            ("a", second), ("b", FOREIGN), ("b", second)]
        assert [m.foreign_type for m in mappings(session, "b")] == [FOREIGN, second]
    assert [m["foreign_type"] for m in s.federation.describe("b")[0]["mappings"]] == [
        FOREIGN, second]
    assert len(s.federation.describe("a")[0]["mappings"]) == 1
    s.federation.remove("b", actor=OPERATOR)
    assert s.audit()[-1][4]["mappings"] == 2
    with Session(s.engine) as session:
        assert [(m.domain_name, m.foreign_type) for m in mappings(session)] == [("a", second)]


def test_mapping_refusals_name_their_field() -> None:
    b = domain("b")
    s = setup(b)
    s.add(b)
    cases: list[tuple[Any, type[ElicenceError], str]] = [
        (("b", "nope", LOCAL), InvalidInput, "foreign_type"),
        (("x", FOREIGN, LOCAL), NotFound, "domain"),
        (("b", FOREIGN, "91350100000000000X009"), NotFound, "local_type"),
        (("b", FOREIGN, None), NotFound, "foreign_type"),
    ]
    for args, kind, field_name in cases:
        with pytest.raises(kind) as caught:
            s.federation.map(*args, actor=OPERATOR)
        assert caught.value.field == field_name
    with pytest.raises(NotFound) as caught:
        s.federation.remove("x", actor=OPERATOR)
    assert caught.value.field == "domain"
