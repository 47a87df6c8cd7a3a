"""Holders captured once (一次采集、反复利用): a person or an organisation is one row, found by
ID type and number, and every licence points to it.

Two names, kept apart so that no department's write changes what another department's licences
show:

* the **registered name** (``Holder.name``): what a new issuance is checked against (409 when
  it differs). It is corrected in one place, and only by the operator (CLI) or by a department
  client holding ``holders:correct:<holder category>`` for every category the holder's licences
  belong to — the registry that is authoritative for that kind of holder. Anyone else is
  refused (403, ``missing_scope``) with nothing changed; refusals and corrections are audited,
  the names masked for a person.
* the **name a licence was issued under** (``Licence.holder_name``): printed on its PDF and shown
  by every reader (record, verification page and report, pulls, exports, stamped copies). A
  correction never rewrites it; the issuing department's own renewal or amendment, a new sealed
  version, takes the registered name as it then is.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlmodel import Session, select

from core.audit import AuditLog
from core.errors import Conflict, Forbidden, InvalidInput, NotFound
from licences.id_documents import is_person_id_type, validate_holder_id
from licences.masking import mask_name
from licences.models import Holder, HolderCategory, Licence, LicenceType

CORRECT_SCOPE = "holders:correct:"  # + the holder category, e.g. holders:correct:natural_person

MAX_NAME = 128

# Whether the caller holds a scope; None is the operator, who acts for the whole domain.
ScopeCheck = Callable[[str], bool] | None


def check_name(name: str, *, field: str = "holder.name") -> str:
    """A holder's name as it will be printed and stored: trimmed, bounded, no control characters.
    Any script is accepted: a foreign holder's passport name in Latin letters ("JOHN SMITH") and
    a name with a middle dot ("买买提·艾力") are names as the documents print them."""
    text = name.strip() if isinstance(name, str) else ""
    if not text or len(text) > MAX_NAME or any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise InvalidInput(
            f"持证主体名称应为 1-{MAX_NAME} 个字符且不含控制字符 / the holder's name is 1-{MAX_NAME} "
            "characters without control characters",
            field=field,
        )
    return text


def update_route(id_type: str, id_number: str) -> str:
    """Where a holder's registered name is corrected; quoted in the conflict an issuance raises."""
    return f"PATCH /api/v1/holders/{id_type}/{id_number}"


def correct_scope(category: str) -> str:
    return f"{CORRECT_SCOPE}{category}"


def find(session: Session, id_type: str, id_number: str) -> Holder | None:
    return session.exec(
        select(Holder).where(Holder.id_type == id_type, Holder.id_number == id_number)
    ).first()


def name_conflict(known: Holder, category: str) -> Conflict:
    """The 409 of an issuance under a name other than the registered one."""
    route = update_route(known.id_type, known.id_number)
    scope = correct_scope(category)
    return Conflict(
        "持证主体名称与证照库登记名称不一致；如已更名，须由运营方或持有 "
        f"{scope} 权限范围的部门通过 {route} 更正 / the holder's name differs from the "
        "repository's registered name; if it changed, the operator or a department holding "
        f"scope {scope} corrects it with {route}",
        field="holder.name",
        extra={"registered_name": known.name, "correct_scope": scope},
    )


def categories_of(session: Session, holder: Holder) -> set[str]:
    """The holder categories of the types of every licence issued to the holder."""
    found = set(
        session.exec(
            select(LicenceType.holder_category)
            .join(Licence, Licence.type_code == LicenceType.code)  # type: ignore[arg-type]
            .where(Licence.holder_id == holder.id)
            .distinct()
        ).all()
    )
    if is_person_id_type(holder.id_type):
        found.add(HolderCategory.NATURAL_PERSON.value)
    return found


class CorrectionRefused(Forbidden):
    """The caller may not correct this holder's registered name; ``missing_scope`` names the
    scope it lacks. ``holder_id`` is the row (for the audit only; never answered)."""

    def __init__(self, scope: str, holder_id: int | None) -> None:
        super().__init__(
            f"更正持证主体登记名称须由运营方或持有 {scope} 权限范围的部门进行 / correcting a "
            f"holder's registered name needs the operator or scope {scope}",
            extra={"missing_scope": scope},
        )
        self.scope = scope
        self.holder_id = holder_id


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
                "只有向该持证主体发过证的部门可以查看 / only a department that issued to this "
                "holder may read it"
            )
        return holder

    def rename(
        self,
        session: Session,
        *,
        id_type: str,
        id_number: str,
        name: str,
        allows: ScopeCheck,
        actor: str,
        request_id: str | None = None,
    ) -> Holder:
        """Correct the registered name. ``allows`` tells whether the caller holds a scope (None
        for the operator). The scope is checked before the holder is looked up, so a caller
        without it learns nothing, not even whether the holder exists."""
        new_name = check_name(name, field="name")
        number = validate_holder_id(id_type, id_number)
        holder = find(session, id_type, number)
        if allows is not None:
            self._check_scope(session, id_type, holder, allows)
        if holder is None:
            raise NotFound("证照库中没有该持证主体 / no such holder in the repository", field="id")
        if holder.name == new_name:
            return holder
        old_name = holder.name
        is_person = is_person_id_type(holder.id_type)
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

    def refused(
        self,
        session: Session,
        refusal: CorrectionRefused,
        *,
        actor: str,
        request_id: str | None = None,
    ) -> None:
        """Audit a refused correction (in a transaction of its own: the refused one is rolled
        back)."""
        self._audit.append(
            session,
            actor=actor,
            action="holder.rename",
            object_type="holder",
            object_id=f"holder:{refusal.holder_id if refusal.holder_id is not None else '-'}",
            request_id=request_id,
            outcome="refused",
            detail={"missing_scope": refusal.scope},
        )

    @staticmethod
    def _check_scope(
        session: Session, id_type: str, holder: Holder | None, allows: Callable[[str], bool]
    ) -> None:
        if holder is not None:
            needed = sorted(categories_of(session, holder))
        elif is_person_id_type(id_type):
            needed = [HolderCategory.NATURAL_PERSON.value]
        else:  # unknown organisation: refused like a known one, so its absence is not revealed
            needed = [HolderCategory.LEGAL_PERSON.value]
        for category in needed:
            if not allows(correct_scope(category)):
                raise CorrectionRefused(
                    correct_scope(category), holder.id if holder is not None else None
                )

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
