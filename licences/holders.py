"""Holders captured once (一次采集、反复利用): a person or an organisation is one row, found by
ID type and number, and every licence points to it.

A company's registered name changes in one place, here, and later issuances use it; licences
already sealed keep the name printed on them until they are amended (a new, re-sealed version).
Only a department that has issued to the holder may change the name, and every change is
audited with the old and new name.
"""

from __future__ import annotations

from sqlmodel import Session, select

from core.audit import AuditLog
from core.errors import Forbidden, InvalidInput, NotFound
from licences.identifiers import validate_holder_id
from licences.masking import mask_name
from licences.models import Holder, Licence

PERSON_ID_TYPE = "111"  # 居民身份证

MAX_NAME = 128


def check_name(name: str, *, field: str = "holder.name") -> str:
    """A holder's name as it will be printed and stored: trimmed, bounded, no control characters."""
    text = name.strip() if isinstance(name, str) else ""
    if not text or len(text) > MAX_NAME or any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise InvalidInput(
            f"持证主体名称应为 1-{MAX_NAME} 个字符且不含控制字符 / the holder's name is 1-{MAX_NAME} "
            "characters without control characters",
            field=field,
        )
    return text


def update_route(id_type: str, id_number: str) -> str:
    """Where a department corrects a holder's name; quoted in the conflict an issuance raises."""
    return f"PATCH /api/v1/holders/{id_type}/{id_number}"


def find(session: Session, id_type: str, id_number: str) -> Holder | None:
    return session.exec(
        select(Holder).where(Holder.id_type == id_type, Holder.id_number == id_number)
    ).first()


class Holders:
    def __init__(self, audit: AuditLog) -> None:
        self._audit = audit

    def get(
        self, session: Session, id_type: str, id_number: str, *, department_code: str | None
    ) -> Holder:
        number = validate_holder_id(id_type, id_number)
        holder = find(session, id_type, number)
        if holder is None:
            raise NotFound("证照库中没有该持证主体 / no such holder in the repository", field="id")
        if department_code is not None and not self._has_issued(session, holder, department_code):
            raise Forbidden(
                "只有向该持证主体发过证的部门可以查看或更新 / only a department that issued to this "
                "holder may read or update it"
            )
        return holder

    def rename(
        self,
        session: Session,
        *,
        id_type: str,
        id_number: str,
        name: str,
        department_code: str | None,
        actor: str,
        request_id: str | None = None,
    ) -> Holder:
        new_name = check_name(name, field="name")
        holder = self.get(session, id_type, id_number, department_code=department_code)
        if holder.name == new_name:
            return holder
        old_name = holder.name
        is_person = holder.id_type == PERSON_ID_TYPE
        holder.name = new_name
        session.add(holder)
        session.flush()
        self._audit.append(
            session,
            actor=actor,
            action="holder.rename",
            object_type="holder",
            # The audit names the holder by row, not by ID number; a person's names are masked
            # (organisations' names are public register data).
            object_id=f"holder:{holder.id}",
            request_id=request_id,
            detail={
                "from": mask_name(old_name, is_person),
                "to": mask_name(new_name, is_person),
            },
        )
        return holder

    @staticmethod
    def _has_issued(session: Session, holder: Holder, department_code: str) -> bool:
        return (
            session.exec(
                select(Licence.identifier).where(
                    Licence.holder_id == holder.id, Licence.issuer_code == department_code
                )
            ).first()
            is not None
        )
