"""Which grant lets a department pull a licence: the one live grant naming the department, the
licence, the service item and the business number; or the refusal that says which of these is
missing (``PullRefused``), so the department can tell the holder what to grant."""

from __future__ import annotations

from datetime import date

from sqlmodel import Session, select

from core.errors import Forbidden
from licences.grants import GrantStatus, LicenceGrant, grant_status
from licences.models import Licence


class PullRefused(Forbidden):
    """No live grant matches the pull; ``missing`` names what is missing, so the department
    knows what to ask the holder for."""

    def __init__(self, message: str, missing: str, **extra: str) -> None:
        super().__init__(message, extra={"missing": missing, **extra})
        self.missing = missing


def live_grant(
    session: Session,
    *,
    licence: Licence,
    department_code: str,
    service_item: str | None,
    business_number: str | None,
    today: date,
) -> LicenceGrant:
    """The live grant letting ``department_code`` pull ``licence`` for this service item and
    business number, or :class:`PullRefused` saying which of them has no grant. The rows are
    locked (PostgreSQL), so a withdrawal and a pull of the same grant serialise."""
    _check_named(service_item, business_number)
    grants = list(
        session.exec(
            select(LicenceGrant)
            .where(
                LicenceGrant.identifier == licence.identifier,
                LicenceGrant.department_code == department_code,
            )
            .with_for_update()
        )
    )
    matching = _matching(grants, department_code, service_item, business_number)
    return _live(matching, today)


def _check_named(service_item: str | None, business_number: str | None) -> None:
    """A granted pull names both the service item and the business number."""
    absent = [
        name
        for name, value in (("service_item", service_item), ("business_number", business_number))
        if not value
    ]
    if absent:
        raise PullRefused(
            f"调取他部门证照须给出事项编码和办件编号 / a granted pull names the service item and "
            f"business number: {', '.join(absent)} missing",
            missing=absent[0],
        )


def _matching(
    grants: list[LicenceGrant],
    department_code: str,
    service_item: str | None,
    business_number: str | None,
) -> list[LicenceGrant]:
    """The department's grants of the licence for this service item and business number, live
    or not; refused naming the first of department, item and number no grant covers."""
    if not grants:
        raise PullRefused(
            f"持证人未授权部门 {department_code} 使用此证照 / the holder has not granted "
            f"department {department_code} this licence",
            missing="grant",
        )
    for_item = [g for g in grants if g.service_item == service_item]
    if not for_item:
        raise PullRefused(
            f"授权不含事项 {service_item} / no grant covers service item {service_item}",
            missing="service_item",
        )
    matching = [g for g in for_item if g.business_number == business_number]
    if not matching:
        raise PullRefused(
            f"授权不含办件 {business_number} / no grant covers business number {business_number}",
            missing="business_number",
        )
    return matching


def _live(matching: list[LicenceGrant], today: date) -> LicenceGrant:
    """The live grant among ``matching``; else refused as expired, or else as withdrawn."""
    statuses = {grant_status(g, today): g for g in matching}
    if GrantStatus.ACTIVE in statuses:
        return statuses[GrantStatus.ACTIVE]
    if GrantStatus.EXPIRED in statuses:
        end = statuses[GrantStatus.EXPIRED].valid_until
        raise PullRefused(
            f"授权已于 {end} 到期 / the grant ended on {end}",
            missing="live_grant",
            grant_status=GrantStatus.EXPIRED.value,
        )
    raise PullRefused(
        "持证人已撤回授权 / the holder withdrew the grant",
        missing="live_grant",
        grant_status=GrantStatus.WITHDRAWN.value,
    )
