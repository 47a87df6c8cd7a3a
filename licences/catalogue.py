"""The catalogue of licence types (统一编目): one code, one standard, one field schema per type —
"同一事项同一标准同一编码".

A type's field schema is a JSON Schema object; it both validates what a department sends and
lays out the fields on the rendered licence, in the order the schema lists them. Entries are
versioned: every change of the definition is a new version, kept in ``licence_type_version``, and
every licence records the version it was issued under. A type with licences is withdrawn, never
deleted: its licences must stay readable and verifiable. Only the defining authority changes its
own types, and a type without an issuer list is issued by its defining authority alone.

The rules an entry must satisfy (and the field checks issuance uses) are in
``licences.catalogue_rules``; this module stores entries, their versions and their audit trail.
"""

from __future__ import annotations

import builtins
from typing import Any

from sqlmodel import Session, col, func, select

from core.audit import AuditLog
from core.clock import Clock, SystemClock
from core.errors import Conflict, Forbidden, NotFound
from licences.catalogue_rules import (
    EDITABLE,
    definition,
    issuers,
    normalise,
    revised_definition,
)
from licences.models import Licence, LicenceType, LicenceTypeVersion, TypeStatus
from seals.authorisation import authorise_licence_seals


class Catalogue:
    def __init__(self, audit: AuditLog, clock: Clock | None = None) -> None:
        self._audit = audit
        self._clock = clock or SystemClock()

    def add(self, session: Session, *, actor: str, entry: LicenceType) -> LicenceType:
        normalise(entry)
        if session.get(LicenceType, entry.code) is not None:
            raise Conflict(f"证照类型已存在 / licence type {entry.code} exists", field="code")
        entry.version = 1
        entry.status = TypeStatus.ACTIVE.value
        entry.updated_at = self._clock.now()
        session.add(entry)
        session.flush()
        self._record_version(session, entry, actor)
        self._audit.append(
            session,
            actor=actor,
            action="catalogue.add",
            object_type="licence_type",
            object_id=entry.code,
            detail={"name": entry.name, "version": 1},
        )
        authorise_licence_seals(  # the issuers' licence seals may seal it (seals.authorisation)
            session,
            self._audit,
            licence_type=entry.code,
            departments=issuers(entry),
            actor=actor,
        )
        return entry

    def update(
        self,
        session: Session,
        *,
        actor: str,
        code: str,
        changes: dict[str, Any],
        department_code: str | None,
    ) -> LicenceType:
        """Replace the editable fields; a real change is a new version, an identical PUT is not."""
        entry = self._own(session, code, department_code)
        before = definition(entry)
        after = revised_definition(entry, changes)
        if after == before:
            return entry
        if after["holder_category"] != before["holder_category"] and self._has_licences(
            session, entry.code
        ):
            raise Conflict(
                "已有证照的类型不能改变持证主体类别 / the holder category of a type with licences "
                "cannot change; define a new type",
                field="holder_category",
            )
        for name in EDITABLE:
            setattr(entry, name, after[name])
        entry.holder_id_type = after["holder_id_type"]
        entry.version += 1
        entry.updated_at = self._clock.now()
        session.add(entry)
        session.flush()
        self._record_version(session, entry, actor)
        self._audit.append(
            session,
            actor=actor,
            action="catalogue.update",
            object_type="licence_type",
            object_id=entry.code,
            detail={
                "version": entry.version,
                "changed": sorted(k for k in after if after[k] != before[k]),
            },
        )
        was, now = before["issuer_codes"] or [entry.authority_code], issuers(entry)
        if now != was:
            authorise_licence_seals(  # only departments new to the type
                session,
                self._audit,
                licence_type=entry.code,
                departments=now,
                actor=actor,
                already=was,
            )
        return entry

    def withdraw(
        self,
        session: Session,
        *,
        actor: str,
        code: str,
        reason: str | None,
        department_code: str | None,
    ) -> LicenceType:
        """Stop issuing a type; its licences keep their status and stay verifiable."""
        entry = self._own(session, code, department_code)
        if entry.status == TypeStatus.WITHDRAWN.value:
            raise Conflict(
                f"证照类型已停用 / licence type {code} is already withdrawn",
                extra={"current_status": entry.status},
            )
        entry.status = TypeStatus.WITHDRAWN.value
        entry.withdrawn_at = entry.updated_at = self._clock.now()
        session.add(entry)
        self._audit.append(
            session,
            actor=actor,
            action="catalogue.withdraw",
            object_type="licence_type",
            object_id=code,
            detail={"version": entry.version, "reason": reason},
        )
        return entry

    def delete(
        self, session: Session, *, actor: str, code: str, department_code: str | None
    ) -> None:
        """Only a type that never issued a licence may go; otherwise withdraw it."""
        entry = self._own(session, code, department_code)
        if self._has_licences(session, code):
            raise Conflict(
                "已有证照的类型只能停用，不能删除 / a type with licences can be withdrawn, "
                "never deleted",
                extra={"current_status": entry.status},
            )
        for version in session.exec(
            select(LicenceTypeVersion).where(LicenceTypeVersion.code == code)
        ):
            session.delete(version)
        session.flush()
        session.delete(entry)
        self._audit.append(
            session,
            actor=actor,
            action="catalogue.delete",
            object_type="licence_type",
            object_id=code,
            detail={"version": entry.version},
        )

    def get(self, session: Session, code: str) -> LicenceType:
        entry = session.get(LicenceType, code)
        if entry is None:
            raise NotFound(f"未知的证照类型 / unknown licence type {code}", field="licence_type")
        return entry

    def list(
        self,
        session: Session,
        *,
        status: str | None = None,
        authority_code: str | None = None,
        service_item: str | None = None,
    ) -> list[LicenceType]:
        query = select(LicenceType).order_by(col(LicenceType.code))
        if status:
            query = query.where(LicenceType.status == status)
        if authority_code:
            query = query.where(LicenceType.authority_code == authority_code.upper())
        entries = list(session.exec(query))
        if service_item:  # a JSON list; the catalogue is small enough to filter here
            entries = [e for e in entries if service_item in e.service_items]
        return entries

    def history(self, session: Session, code: str) -> builtins.list[LicenceTypeVersion]:
        self.get(session, code)
        return list(
            session.exec(
                select(LicenceTypeVersion)
                .where(LicenceTypeVersion.code == code)
                .order_by(col(LicenceTypeVersion.version))
            )
        )

    def version(self, session: Session, code: str, version: int) -> LicenceType:
        """The entry as it stood at ``version`` (the rules a licence was issued under)."""
        row = session.get(LicenceTypeVersion, (code, version))
        if row is None:
            raise NotFound(
                f"证照类型 {code} 没有第 {version} 版 / type {code} has no version {version}",
                field="version",
            )
        return LicenceType.model_validate(
            {**row.definition, "version": version, "status": TypeStatus.ACTIVE.value}
        )

    def check_issuer(self, entry: LicenceType, department_code: str) -> None:
        if entry.status != TypeStatus.ACTIVE.value:
            raise Conflict(
                f"证照类型已停用 / licence type {entry.code} is withdrawn",
                field="licence_type",
                extra={"current_status": entry.status},
            )
        if department_code in issuers(entry):
            return
        if entry.issuer_codes:
            raise Forbidden(
                f"该部门无权签发此类证照 / department {department_code} may not issue {entry.code}",
                extra={"issuers": issuers(entry)},
            )
        raise Forbidden(
            f"证照类型 {entry.code} 未列明签发部门，只由定义机构 {entry.authority_code} 签发 / "
            f"licence type {entry.code} lists no issuers: only its defining authority "
            f"{entry.authority_code} issues it",
            extra={"issuers": issuers(entry)},
        )

    def _own(self, session: Session, code: str, department_code: str | None) -> LicenceType:
        entry = self.get(session, code)
        if department_code is not None and entry.authority_code != department_code:
            raise Forbidden(
                "只有定义机构可以修改证照类型 / only the defining authority may change this type"
            )
        return entry

    def _record_version(self, session: Session, entry: LicenceType, actor: str) -> None:
        session.add(
            LicenceTypeVersion(
                code=entry.code,
                version=entry.version,
                definition=definition(entry),
                created_at=self._clock.now(),
                actor=actor[:128],
            )
        )

    @staticmethod
    def _has_licences(session: Session, code: str) -> bool:
        count = session.exec(
            select(func.count()).select_from(Licence).where(Licence.type_code == code)
        ).one()
        return bool(count)
