"""The licence lifecycle against a table written out here, not read back from the product.

Every (status, action) pair is either allowed — with the status the licence ends in — or refused
as a conflict naming the current status. The product's own table (``licences.lifecycle.ALLOWED``)
is never consulted: a change to it that the rules do not allow (resuming a revoked licence,
say) fails here. Runs on an in-memory database with a pinned clock, in milliseconds.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime

import pytest
from sqlmodel import Session, col, select

from core.audit import AuditEntry, AuditLog, verify_chain
from core.clock import FixedClock
from core.errors import Conflict, Forbidden, InvalidInput, NotFound
from licences.identifiers import LicenceIdentifier
from licences.lifecycle import Lifecycle, Transition, check_reason, parse_identifier
from licences.models import IdempotencyRecord, Licence, LicenceStatus
from tests.security.support import memory_engine

ISSUER = "1135010000360001XN"
OTHER = "11350100003600020R"
TYPE_CODE = ISSUER + "001"
# 2026-03-14 10:00 in Beijing; a licence whose last day was 2026-03-13 has expired.
NOW = datetime(2026, 3, 14, 2, 0, tzinfo=UTC)
YESTERDAY = date(2026, 3, 13)
REASON = "依法处理 / by law"

# The lifecycle rules of the licence standard, one row per action, one column per status the
# licence is in (expired = valid, but past its last day). A status means "allowed, and the
# licence ends in this status"; "-" means refused with a conflict.
TABLE = """
action   valid       suspended   cancelled  revoked  superseded  void  expired
suspend  suspended   -           -          -        -           -     -
resume   -           valid       -          -        -           -     -
cancel   cancelled   cancelled   -          -        -           -     cancelled
revoke   revoked     revoked     -          -        -           -     revoked
amend    superseded  -           -          -        -           -     -
renew    superseded  -           -          -        -           -     superseded
reissue  void        -           -          -        -           -     -
"""
# Which actions need a reason, and which make a new version of the licence.
NEEDS_REASON = {"suspend", "cancel", "revoke", "reissue"}
NEW_VERSION = {"amend", "renew", "reissue"}
ZH = {"suspend": "暂停", "resume": "恢复", "cancel": "注销", "revoke": "吊销",
      "amend": "变更", "renew": "延续", "reissue": "补发"}
STATUS_ZH = {"valid": "有效", "suspended": "暂停", "cancelled": "已注销", "revoked": "已吊销",
             "superseded": "已变更", "void": "已作废", "expired": "已过期"}


def _expected() -> dict[tuple[str, str], str | None]:
    header, *rows = [line.split() for line in TABLE.strip().splitlines()]
    table: dict[tuple[str, str], str | None] = {}
    for action, *cells in rows:
        for status, cell in zip(header[1:], cells, strict=True):
            table[(action, status)] = None if cell == "-" else cell
    return table


EXPECTED = _expected()
PAIRS = sorted(EXPECTED)


def test_the_table_covers_every_action_and_status() -> None:
    assert {a for a, _ in EXPECTED} == {t.value for t in Transition}
    assert {s for _, s in EXPECTED} == {s.value for s in LicenceStatus}
    assert sum(1 for v in EXPECTED.values() if v is not None) == 12


def identifier(serial: str) -> str:
    return str(LicenceIdentifier(TYPE_CODE, ISSUER, serial))


def licence(status: str, serial: str = "A1") -> Licence:
    stored = "valid" if status == "expired" else status
    return Licence(
        identifier=identifier(serial), type_code=TYPE_CODE, issuer_code=ISSUER, serial=serial,
        holder_id=1, fields={}, valid_from=date(2020, 1, 1),
        valid_until=YESTERDAY if status == "expired" else date(2030, 1, 1), status=stored,
        issued_at=datetime(2020, 1, 1, tzinfo=UTC), verify_code="C" + serial, sha256="0" * 64,
        seal_code="S",
    )


def lifecycle() -> Lifecycle:
    clock = FixedClock(NOW)
    return Lifecycle(AuditLog(clock), clock)


@pytest.mark.parametrize(("action", "status"), PAIRS, ids=[f"{a}-from-{s}" for a, s in PAIRS])
def test_check_follows_the_table(action: str, status: str) -> None:
    target = EXPECTED[(action, status)]
    subject = licence(status)
    if target is not None:
        assert lifecycle().check(subject, Transition(action), department_code=ISSUER) == status
        return
    with pytest.raises(Conflict) as refused:
        lifecycle().check(subject, Transition(action), department_code=ISSUER)
    assert refused.value.message == (
        f"当前状态为{STATUS_ZH[status]}，不能{ZH[action]} / cannot {action} a licence "
        f"whose status is {status}"
    )
    assert refused.value.field == "status"
    assert refused.value.extra == {"current_status": status}


STATUS_ONLY = [(a, s) for a, s in PAIRS if a not in NEW_VERSION]


@pytest.mark.parametrize(("action", "status"), STATUS_ONLY,
                         ids=[f"{a}-from-{s}" for a, s in STATUS_ONLY])
def test_apply_changes_the_status_and_audits_it_or_changes_nothing(action: str, status: str) -> None:
    target = EXPECTED[(action, status)]
    engine = memory_engine()
    with Session(engine) as session:
        session.add(licence(status))
        session.commit()
    with Session(engine) as session:
        if target is None:
            with pytest.raises(Conflict):
                lifecycle().apply(session, identifier=identifier("A1"), transition=Transition(action),
                                  reason=REASON, actor="department:x", department_code=ISSUER)
            session.rollback()
        else:
            changed = lifecycle().apply(session, identifier=identifier("A1"),
                                        transition=Transition(action), reason=f"  {REASON} ",
                                        actor="department:x", department_code=ISSUER,
                                        request_id="req-1")
            assert changed.status == target
            session.commit()
    with Session(engine) as session:
        stored = session.get(Licence, identifier("A1"))
        assert stored is not None
        entries = list(session.exec(select(AuditEntry).order_by(col(AuditEntry.seq))))
        if target is None:
            assert stored.status == ("valid" if status == "expired" else status)
            assert entries == []
            return
        assert (stored.status, stored.status_reason) == (target, REASON)
        assert stored.status_changed_at is not None
        assert stored.status_changed_at.replace(tzinfo=UTC) == NOW
        assert [(e.actor, e.action, e.object_type, e.object_id, e.request_id, e.detail)
                for e in entries] == [
            ("department:x", f"licence.{action}", "licence", identifier("A1"), "req-1",
             {"from": "valid" if status == "expired" else status, "to": target, "reason": REASON})
        ]
        assert verify_chain(session).intact


@pytest.mark.parametrize("action", sorted(NEW_VERSION))
def test_apply_refuses_the_actions_that_make_a_new_version(action: str) -> None:
    with Session(memory_engine()) as session, pytest.raises(InvalidInput) as refused:
        lifecycle().apply(session, identifier=identifier("A1"), transition=Transition(action),
                          reason=REASON, actor="x", department_code=ISSUER)
    assert refused.value.message == f"{action} 会产生新版本 / {action} makes a new version"
    assert refused.value.field == "action"


@pytest.mark.parametrize("action", [t.value for t in Transition])
def test_only_the_issuing_department_acts(action: str) -> None:
    with pytest.raises(Forbidden) as refused:
        lifecycle().check(licence("valid"), Transition(action), department_code=OTHER)
    assert refused.value.message == "只有发证部门可以变更证照状态 / only the issuing department may change it"
    # an operator acting for the domain (no department) is not held to the issuer
    if EXPECTED[(action, "valid")] is not None:
        assert lifecycle().check(licence("valid"), Transition(action), department_code=None) == "valid"


def test_a_department_cannot_suspend_another_departments_licence_through_apply() -> None:
    engine = memory_engine()
    with Session(engine) as session:
        session.add(licence("valid"))
        session.commit()
    with Session(engine) as session, pytest.raises(Forbidden):
        lifecycle().apply(session, identifier=identifier("A1"), transition=Transition.SUSPEND,
                          reason=REASON, actor="x", department_code=OTHER)
    with Session(engine) as session:
        assert session.get(Licence, identifier("A1")).status == "valid"  # type: ignore[union-attr]


def test_expiry_is_measured_on_the_china_date() -> None:
    # 2026-03-13 16:30 UTC is already 2026-03-14 00:30 in Beijing: the licence has expired.
    late = datetime(2026, 3, 13, 16, 30, tzinfo=UTC)
    with pytest.raises(Conflict) as refused:
        lifecycle().check(licence("expired"), Transition.SUSPEND, department_code=ISSUER, now=late)
    assert refused.value.extra == {"current_status": "expired"}
    # the licence's last day itself is still valid
    last_day = licence("valid")
    last_day.valid_until = date(2026, 3, 14)
    assert lifecycle().check(last_day, Transition.SUSPEND, department_code=ISSUER) == "valid"
    # without ``now`` the lifecycle's own clock is used
    early = Lifecycle(AuditLog(FixedClock(datetime(2026, 3, 13, 15, 0, tzinfo=UTC))),
                      FixedClock(datetime(2026, 3, 13, 15, 0, tzinfo=UTC)))
    assert early.check(licence("expired"), Transition.SUSPEND, department_code=ISSUER) == "valid"


@pytest.mark.parametrize("action", [t.value for t in Transition])
def test_reasons(action: str) -> None:
    transition = Transition(action)
    if action in NEEDS_REASON:
        for missing in (None, "", "   "):
            with pytest.raises(InvalidInput) as refused:
                check_reason(transition, missing)
            assert refused.value.message == f"{ZH[action]}须说明原因 / a reason is required to {action}"
            assert refused.value.field == "reason"
    else:
        assert check_reason(transition, None) is None
        assert check_reason(transition, "  ") is None
    assert check_reason(transition, "  原因 ") == "原因"
    assert check_reason(transition, "x" * 256) == "x" * 256
    for bad in ("x" * 257, "原\n因", "a\x1fb"):
        with pytest.raises(InvalidInput) as refused:
            check_reason(transition, bad)
        assert refused.value.message == (
            "原因过长或含控制字符 / reason longer than 256 or with control characters")
        assert refused.value.field == "reason"
    assert check_reason(transition, "a b") == "a b"  # a space (32) is not a control character


def test_mark_links_a_successor_and_says_so_in_the_audit() -> None:
    engine = memory_engine()
    with Session(engine) as session:
        session.add(licence("valid"))
        session.commit()
    with Session(engine) as session:
        subject = session.get(Licence, identifier("A1"))
        assert subject is not None
        lifecycle().mark(session, subject, Transition.AMEND, reason=None, actor="a",
                         request_id=None, successor=identifier("A2"))
        session.commit()
        entry = session.exec(select(AuditEntry)).one()
        assert entry.detail == {"from": "valid", "to": "superseded", "reason": None,
                                "successor": identifier("A2")}
    with Session(engine) as session:
        stored = session.get(Licence, identifier("A1"))
        assert stored is not None and (stored.status, stored.superseded_by) == (
            "superseded", identifier("A2"))


def test_identifiers_are_checked_before_they_are_looked_up() -> None:
    assert parse_identifier(identifier("A1")) == identifier("A1")
    with pytest.raises(InvalidInput):
        parse_identifier(identifier("A1")[:-1] + "0")
    with Session(memory_engine()) as session, pytest.raises(NotFound):
        lifecycle().apply(session, identifier=identifier("B2"), transition=Transition.SUSPEND,
                          reason=REASON, actor="x", department_code=ISSUER)


def stored_licence(status: str = "valid") -> tuple[Lifecycle, object]:
    engine = memory_engine()
    with Session(engine) as session:
        session.add(licence(status))
        session.commit()
    return lifecycle(), engine


def test_apply_once_applies_once_per_key_and_refuses_a_reused_key() -> None:
    changes, engine = stored_licence()
    args = {"identifier": identifier("A1"), "transition": Transition.SUSPEND, "reason": REASON,
            "actor": "department:x", "department_code": ISSUER, "request_id": "r1"}
    first = changes.apply_once(engine, key="K-1", **args)  # type: ignore[arg-type]
    assert (first.licence.identifier, first.licence.status, first.replayed) == (
        identifier("A1"), "suspended", False)
    again = changes.apply_once(engine, key="K-1", **args)  # type: ignore[arg-type]
    assert (again.licence.identifier, again.licence.status, again.replayed) == (
        identifier("A1"), "suspended", True)
    # the same key with another reason is another request: refused, not replayed
    with pytest.raises(Conflict) as reused:
        changes.apply_once(engine, key="K-1", **{**args, "reason": "另一原因"})  # type: ignore[arg-type]
    assert reused.value.field == "Idempotency-Key"
    # the key is the department's own: another department's twin key is not a replay
    with pytest.raises(Forbidden):
        changes.apply_once(engine, key="K-1", **{**args, "department_code": OTHER})  # type: ignore[arg-type]
    # the same key on another action is another request
    resumed = changes.apply_once(engine, key="K-1", **{**args, "transition": Transition.RESUME})  # type: ignore[arg-type]
    assert (resumed.licence.status, resumed.replayed) == ("valid", False)
    with Session(engine) as session:  # type: ignore[arg-type]
        actions = [(e.action, e.request_id, e.detail["reason"])
                   for e in session.exec(select(AuditEntry).order_by(col(AuditEntry.seq)))]
    assert actions == [("licence.suspend", "r1", REASON), ("licence.resume", "r1", REASON)]
    # what is remembered of the request: its fingerprint, stable across releases so that a
    # retry after an upgrade is still recognised
    body = json.dumps({"identifier": identifier("A1"), "reason": REASON}, sort_keys=True,
                      ensure_ascii=False)
    with Session(engine) as session:  # type: ignore[arg-type]
        records = session.exec(select(IdempotencyRecord)).all()
    assert sorted((r.department_code, r.scope, r.key, r.request_sha256, r.identifier)
                  for r in records) == [
        (ISSUER, action, "K-1", hashlib.sha256(body.encode()).hexdigest(), identifier("A1"))
        for action in ("resume", "suspend")]


def test_apply_once_without_a_key_applies_each_time() -> None:
    changes, engine = stored_licence()
    args = {"identifier": identifier("A1"), "reason": REASON, "actor": "a", "department_code": ISSUER}
    assert changes.apply_once(engine, transition=Transition.SUSPEND, **args).replayed is False  # type: ignore[arg-type]
    with pytest.raises(Conflict):
        changes.apply_once(engine, transition=Transition.SUSPEND, **args)  # type: ignore[arg-type]


def test_apply_locks_the_row_it_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two changes of one licence serialise on PostgreSQL through SELECT ... FOR UPDATE."""
    import licences.lifecycle as module

    seen: list[object] = []
    real = module.licence_by_identifier

    def spy(session: Session, identifier: str, *, for_update: bool = False) -> Licence:
        seen.append(for_update)
        return real(session, identifier, for_update=for_update)

    monkeypatch.setattr(module, "licence_by_identifier", spy)
    changes, engine = stored_licence()
    with Session(engine) as session:  # type: ignore[arg-type]
        changes.apply(session, identifier=identifier("A1"), transition=Transition.SUSPEND,
                      reason=REASON, actor="a", department_code=ISSUER)
    assert seen == [True]
