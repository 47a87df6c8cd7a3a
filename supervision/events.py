"""Licence events, read off the audit chain as it is written.

Every status change of a licence is audited in the transaction that makes it
(``licences.lifecycle``, ``licences.issuance``), so the outbox observer turns those entries into
events in the same transaction: no path can change a licence without its event, and no event
exists for a change that rolled back. An event names the licence and its statuses, never its
holder or fields: a subscriber that needs more reads the licence through the API it is entitled
to. Expiry is not an action; the worker's daily scan emits it (``supervision.expiry``).
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from core.audit import AuditEntry, Pending
from licences.identifiers import LicenceIdentifier
from supervision.outbox import OutboxEvent, emit

# The audited action -> the event kind a subscriber sees (past tense: it has happened).
KINDS: dict[str, str] = {
    "licence.issue": "licence.issued",
    "licence.suspend": "licence.suspended",
    "licence.resume": "licence.resumed",
    "licence.revoke": "licence.revoked",
    "licence.cancel": "licence.cancelled",
    "licence.amend": "licence.amended",
    "licence.renew": "licence.renewed",
    "licence.reissue": "licence.reissued",
}
EXPIRED = "licence.expired"


def licence_data(identifier: str, **more: Any) -> dict[str, Any]:
    arcs = LicenceIdentifier.parse(identifier)
    return {
        "licence": {
            "identifier": identifier,
            "type_code": arcs.type_code,
            "issuer_code": arcs.issuer_code,
        },
        **more,
    }


def concerns(pending: Pending) -> bool:
    """The entries :func:`licence_event` turns into events (told before they are written)."""
    return pending.action in KINDS and pending.outcome == "ok"


def licence_event(session: Session, entry: AuditEntry) -> OutboxEvent | None:
    """The audit observer: an outbox event for an audited licence status change."""
    kind = KINDS.get(entry.action)
    if kind is None or entry.outcome != "ok":
        return None
    detail = entry.detail or {}
    more: dict[str, Any] = {}
    if "to" in detail:
        more["status"] = {"from": detail.get("from"), "to": detail["to"]}
    elif kind == "licence.issued":
        more["status"] = {"from": None, "to": "valid"}
    for name in ("successor", "previous"):
        if detail.get(name):
            more[name] = detail[name]
    data = licence_data(entry.object_id, **more)
    return emit(
        session,
        kind=kind,
        at=entry.at,
        data=data,
        licence=entry.object_id,
        department_code=data["licence"]["issuer_code"],
        type_code=data["licence"]["type_code"],
        audit_seq=entry.seq,
    )
