"""Department routes: issue (one or a batch), find, read and download licences.

Lifecycle changes are in ``api.http.lifecycle``, the exchange format in ``api.http.exchange``, the
catalogue in ``api.http.catalogue``.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from pydantic import ValidationError

from api.edge.auth import DepartmentPrincipal, department, require
from api.edge.errors import STATUS, TITLES
from api.edge.state import services_of
from api.http.schemas import IssueBody, IssuedOut, LicenceOut, Links
from api.http.schemas_licences import BatchBody, BatchOut, ItemError, ItemOut, SearchOut
from core.errors import ElicenceError, Forbidden, InvalidInput, NotFound
from licences import batch
from licences.issuance import IssuedLicence, IssueRequest
from licences.models import Holder, Licence, LicenceStatus
from licences.ofd_desk import OfdDesk
from licences.ofd_issue import MEDIA_TYPE as OFD_MEDIA_TYPE
from licences.pulls import Pulled, PullRequest
from licences.repository import china_today, effective_status
from licences.search import DEFAULT_LIMIT, MAX_LIMIT, LicenceQuery

router = APIRouter(prefix="/api/v1")
Principal = Annotated[DepartmentPrincipal, Depends(department)]
Issuer = Annotated[DepartmentPrincipal, Depends(require("licences:issue"))]
IdempotencyKey = Annotated[
    str | None,
    Header(max_length=128, description="同一键同一请求体只生效一次 / makes a retry safe"),
]


def links(request: Request, licence: Licence, documents: tuple[str, ...] = ()) -> Links:
    services = services_of(request)
    base = services.settings.public_base_url.rstrip("/")
    return Links(
        pdf=f"{base}/api/v1/licences/{licence.identifier}/pdf",
        verify=services.issuance.verify_url(licence.verify_code),
        ofd=f"{base}/api/v1/licences/{licence.identifier}/document.ofd"
        if "ofd" in documents
        else None,
    )


def ofd_desk(request: Request) -> OfdDesk:
    desk = services_of(request).ofd_desk
    if desk is None:  # a graph built without one keeps no OFD documents
        raise NotFound("本服务不提供 OFD 文件 / this service keeps no OFD documents")
    return desk


def documents(request: Request, licence: Licence, formats: tuple[str, ...]) -> dict[str, str]:
    """The URL of each sealed document stored for ``licence``."""
    urls = links(request, licence, formats)
    found = {"pdf": urls.pdf, "ofd": urls.ofd}
    return {f: url for f in formats if (url := found.get(f))}


def licence_out(request: Request, licence: Licence, holder: Holder) -> LicenceOut:
    status = effective_status(licence, china_today(services_of(request).clock.now()))
    return LicenceOut(
        identifier=licence.identifier,
        version=licence.version,
        licence_type=licence.type_code,
        issuer=licence.issuer_code,
        holder={  # named as the licence was issued, whatever the registered name is now
            "id_type": holder.id_type,
            "id": holder.id_number,
            "name": licence.holder_name or holder.name,
        },
        fields=licence.fields,
        valid_from=licence.valid_from,
        valid_until=licence.valid_until,
        status=status.value,
        status_label=status.label,
        status_reason=licence.status_reason,
        status_changed_at=licence.status_changed_at.isoformat()
        if licence.status_changed_at
        else None,
        issued_at=licence.issued_at.isoformat(),
        sha256=licence.sha256,
        seal=licence.seal_code,
        links=links(request, licence),
        type_version=licence.type_version,
        previous=licence.previous,
        superseded_by=licence.superseded_by,
    )


def issued_out(request: Request, response: Response, result: IssuedLicence) -> IssuedOut:
    """The answer to a write that produced a licence: 201 and its Location, or 200 and
    ``Idempotent-Replayed`` when an Idempotency-Key replayed the first result."""
    licence = result.licence
    if result.replayed:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = f"/api/v1/licences/{licence.identifier}"
    return IssuedOut(
        identifier=licence.identifier,
        version=licence.version,
        # The row in hand: just written, or read again by the replay (no third read).
        status=effective_status(licence, china_today(services_of(request).clock.now())).value,
        sha256=licence.sha256,
        links=links(request, licence, result.documents),
        previous=licence.previous,
        documents=documents(request, licence, result.documents),
    )


def issue_request(
    body: IssueBody, principal: DepartmentPrincipal, request: Request, key: str | None, scope: str
) -> IssueRequest:
    return IssueRequest(
        department_code=principal.department_code,
        licence_type=body.licence_type,
        holder_id_type=body.holder.id_type,
        holder_id=body.holder.id,
        holder_name=body.holder.name,
        fields=body.fields,
        valid_from=body.valid_from,
        valid_until=body.valid_until,
        idempotency_key=key,
        actor=principal.actor,
        request_id=request.state.request_id,
        scope=scope,
        photo=body.photo,
    )


@router.post("/licences", status_code=201, response_model=IssuedOut)
def issue(
    body: IssueBody,
    request: Request,
    response: Response,
    principal: Issuer,
    idempotency_key: IdempotencyKey = None,
) -> IssuedOut:
    """签发证照 / issue a licence."""
    services = services_of(request)
    result = services.issuance.issue(
        issue_request(body, principal, request, idempotency_key, "issue")
    )
    return issued_out(request, response, result)


@router.post("/licences:batch", response_model=BatchOut)
def issue_batch(
    body: BatchBody,
    request: Request,
    principal: Issuer,
    idempotency_key: IdempotencyKey = None,
) -> BatchOut:
    """批量签发，逐项返回结果 / issue up to 1,000 licences, one result per item.

    Each item is checked and issued on its own: a bad item is reported and writes nothing, the
    good ones are issued. With an Idempotency-Key, item *i* is keyed by (key, ``batch#i``), so
    retrying the same batch replays what was issued and issues only the rest.
    """
    services = services_of(request)
    items: list[batch.Item] = []
    for index, raw in enumerate(body.items):
        try:
            parsed = IssueBody.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or None
            items.append(InvalidInput(f"请求无效 / {where}: {first['msg']}", field=where))
            continue
        items.append(issue_request(parsed, principal, request, idempotency_key, f"batch#{index}"))
    results = batch.issue_all(services.issuance.issue, items)
    return BatchOut(
        results=[item_out(request, result) for result in results],
        summary=batch.summary(results),
    )


def item_out(request: Request, result: batch.ItemResult) -> ItemOut:
    if result.error is not None:
        status = STATUS[result.error.kind]
        return ItemOut(
            index=result.index,
            status=status,
            error=error_out(result.error),
        )
    assert result.issued is not None
    licence = result.issued.licence
    return ItemOut(
        index=result.index,
        status=200 if result.issued.replayed else 201,
        identifier=licence.identifier,
        version=licence.version,
        sha256=licence.sha256,
        links=links(request, licence, result.issued.documents),
        replayed=result.issued.replayed,
    )


def error_out(error: ElicenceError) -> ItemError:
    status = STATUS[error.kind]
    return ItemError(
        status=status, title=TITLES.get(status, ""), detail=error.message, field=error.field
    )


def licence_query(
    principal: Principal,
    holder_id: Annotated[str | None, Query(max_length=32, description="持证主体代码")] = None,
    holder_id_type: Annotated[str | None, Query(pattern=r"^\d{3}$")] = None,
    licence_type: Annotated[
        str | None, Query(alias="type", max_length=21, description="证照类型代码")
    ] = None,
    status: Annotated[
        str | None, Query(max_length=16, description=", ".join(s.value for s in LicenceStatus))
    ] = None,
    issued_from: Annotated[date | None, Query(description="发证日期起（含）")] = None,
    issued_to: Annotated[date | None, Query(description="发证日期止（含）")] = None,
    original_number: Annotated[
        str | None, Query(max_length=64, description="原证照编号（存量证照转换）")
    ] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> LicenceQuery:
    """The search filters, shared by search and export; always scoped to the caller's
    department."""
    return LicenceQuery(
        issuer_code=principal.department_code,
        holder_id=holder_id,
        holder_id_type=holder_id_type,
        type_code=licence_type,
        status=status,
        issued_from=issued_from,
        issued_to=issued_to,
        original_number=original_number,
        cursor=cursor,
        limit=limit,
    )


Filters = Annotated[LicenceQuery, Depends(licence_query)]


@router.get("/licences", response_model=SearchOut)
def find(request: Request, query: Filters) -> SearchOut:
    """查询本部门签发的证照 / find the licences this department issued, newest first."""
    page = services_of(request).licence_desk.find(query)
    return SearchOut(
        items=[licence_out(request, licence, holder) for licence, holder in page.items],
        next_cursor=page.next_cursor,
    )


ServiceItem = Annotated[
    str | None,
    Query(
        pattern=r"^[0-9A-Za-z-]{1,64}$",
        description="事项编码：持证人授权他部门调取时必填 / service item of the holder's grant "
        "(a department other than the issuer)",
    ),
]
BusinessNumber = Annotated[
    str | None,
    Query(
        pattern=r"^[0-9A-Za-z-]{1,64}$",
        description="办件编号：授权所针对的办件 / business number of the holder's grant",
    ),
]


def pull(
    request: Request,
    principal: DepartmentPrincipal,
    identifier: str,
    what: str,
    service_item: str | None,
    business_number: str | None,
) -> Pulled:
    """A department other than the issuer reads the licence under the holder's grant
    (``licences.pulls``): scope ``licences:pull``, and a live grant for it, the service item and
    the business number; every pull and every refusal is audited."""
    if not principal.allows("licences:pull"):
        raise Forbidden(
            "只有发证部门或获授权方可以访问；调取须有 licences:pull 权限范围 / only the issuing "
            "department or a granted party may read it; a pull needs scope licences:pull"
        )
    return services_of(request).licence_desk.pull(
        PullRequest(
            identifier=identifier,
            department_code=principal.department_code,
            client_id=principal.client_id,
            actor=principal.actor,
            service_item=service_item,
            business_number=business_number,
            what=what,
            request_id=request.state.request_id,
        )
    )


@router.get("/licences/{identifier}", response_model=LicenceOut)
def read(
    identifier: str,
    request: Request,
    principal: Principal,
    service_item: ServiceItem = None,
    business_number: BusinessNumber = None,
) -> LicenceOut:
    """证照数据：发证部门得全部；获持证人授权的部门只得该事项所需字段，持证人信息脱敏 / the
    record: whole for the issuing department; for a department the holder granted it, only the
    fields the service item needs, with the holder masked."""
    found = services_of(request).licence_desk.record(identifier, principal.department_code)
    if found.record is not None:
        return licence_out(request, found.licence, found.record.holder)
    pulled = pull(
        request, principal, found.licence.identifier, "record", service_item, business_number
    )
    out = licence_out(request, pulled.record.licence, pulled.record.holder)
    query = urlencode({"service_item": service_item, "business_number": business_number})
    return out.model_copy(
        update={
            "holder": pulled.holder,
            "fields": pulled.fields,
            "status_reason": None,
            "links": Links(pdf=f"{out.links.pdf}?{query}", verify=out.links.verify),
        }
    )


@router.get(
    "/licences/{identifier}/pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
)
def pdf(
    identifier: str,
    request: Request,
    principal: Principal,
    service_item: ServiceItem = None,
    business_number: BusinessNumber = None,
) -> Response:
    """盖章的证照文件（发证部门，或获持证人授权的部门）/ the sealed PDF, for the issuing
    department or a department the holder granted it."""
    found = services_of(request).licence_desk.download(identifier, principal.department_code)
    licence, data = found.licence, found.pdf
    if data is None:
        data = pull(
            request, principal, licence.identifier, "pdf", service_item, business_number
        ).pdf
        assert data is not None
    return Response(
        data,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{licence.serial}-{licence.version:03d}.pdf"',
            "X-Content-SHA256": licence.sha256,
        },
    )


@router.get(
    "/licences/{identifier}/document.ofd",
    response_class=Response,
    responses={200: {"content": {OFD_MEDIA_TYPE: {}}}},
)
def ofd(
    identifier: str,
    request: Request,
    principal: Principal,
    service_item: ServiceItem = None,
    business_number: BusinessNumber = None,
) -> Response:
    """盖国密签章的 OFD 证照文件（发证部门，或获持证人授权的部门，同 PDF）/ the OFD sealed with
    a GB/T 38540 SM2 seal, for the issuing department or a department the holder granted it —
    as for the PDF."""
    found = ofd_desk(request).for_department(
        identifier,
        principal.department_code,
        lambda known: pull(request, principal, known, "ofd", service_item, business_number),
    )
    return Response(
        found.ofd,
        media_type=OFD_MEDIA_TYPE,
        headers={
            "Content-Disposition": f'attachment; filename="{found.name}.ofd"',
            "X-Content-SHA256": found.sha256,
        },
    )
