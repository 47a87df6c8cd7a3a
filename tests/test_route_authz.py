"""Walks every route of the OpenAPI document: with no credentials, with credentials lacking the
scope, and with another department's credentials. A new route without a check fails here.

A route counts as checked only when the request reached it — the router matched that route for
that method, so its handler ran (its dependencies, the credential checks among them): a 404 or
405 given by routing alone, because a path was filled in wrongly, checks nothing. Every non-public
route must be checked, and no request may end in a server error."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from httpx import Response

from api.edge.holder_session import COOKIE, HolderPrincipal
from api.http.schemas_catalogue import LicenceTypeUpdate
from core.db import reading, transaction
from seals.clients import create_client
from seals.models import Seal
from tests.domain import Domain, demo_domain

# Routes anyone may call: verification, published PKI material, the public catalogue, counts.
PUBLIC = {
    ("POST", "/oauth/token"),
    ("GET", "/api/v1/catalogue/licence-types"),
    ("GET", "/api/v1/catalogue/licence-types/{code}"),
    ("GET", "/api/v1/catalogue/licence-types/{code}/versions"),
    ("GET", "/api/v1/catalogue/licence-types/{code}/specimen"),  # a watermarked, unsealed page
    ("POST", "/api/v1/verify"),
    ("GET", "/v/{code}"),
    ("GET", "/verify"),
    ("POST", "/verify"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/api/v1/statistics/{department_code}"),
    ("GET", "/statistics/{department_code}"),
    ("GET", "/api/v1/departments/{code}"),
}
PUBLIC_PREFIXES = ("/pki/",)
PULL_WRITES = ("/api/v1/presentations:redeem",)  # writes whose scope is licences:pull
# A subscription of department 0 at a public address, so routes under it reach a real row.
SUBSCRIPTION_BODY = {"url": "https://93.184.216.34/events", "topics": ["issued"]}
METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory) -> Domain:
    return demo_domain(tmp_path_factory, "authz")


@pytest.fixture(scope="module")
def objects(domain: Domain) -> dict[str, str]:
    issued = domain.issue(0)
    with reading(domain.services.engine) as session:
        seal = session.get(Seal, _seal_code(domain))
        assert seal is not None
    sample = domain.department(0)["sample_request"]
    subscription = domain.client.post("/api/v1/subscriptions", json=SUBSCRIPTION_BODY, headers=domain.auth(0))
    assert subscription.status_code == 201, subscription.text
    return {
        "identifier": issued["identifier"],
        "subscription_id": subscription.json()["id"],
        "seal": seal.code,
        "type": sample["licence_type"],
        "id_type": sample["holder"]["id_type"],
        "holder_id": sample["holder"]["id"],
        "department_code": domain.department(0)["code"],
    }


def _seal_code(domain: Domain) -> str:
    from sqlmodel import select

    with reading(domain.services.engine) as session:
        seal = session.exec(select(Seal).where(Seal.department_code == domain.department(0)["code"])).first()
        assert seal is not None
        return seal.code


class Walker:
    """The application behind a recorder of the route each request reached."""

    def __init__(self, app: Any, cookies: dict[str, str] | None = None) -> None:
        self.app = app
        self.reached: APIRoute | None = None
        self.client = TestClient(self, raise_server_exceptions=False)
        for name, value in (cookies or {}).items():
            self.client.cookies.set(name, value)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            if scope["type"] == "http":
                route = scope.get("route")
                self.reached = route if isinstance(route, APIRoute) else None

    def request(self, method: str, path: str, url: str, **kwargs: Any) -> tuple[Response, bool]:
        """The response, and whether the handler of (``method``, ``path``) ran for it."""
        self.reached = None
        response = self.client.request(method, url, **kwargs)
        assert response.status_code < 500, (method, path, response.status_code, response.text[:300])
        route = self.reached
        return response, route is not None and route.path == path and method in route.methods


@pytest.fixture(scope="module")
def walker(domain: Domain) -> Walker:
    return Walker(domain.client.app)


def routes(domain: Domain) -> list[tuple[str, str]]:
    found = []
    for path, item in domain.client.app.openapi()["paths"].items():  # type: ignore[attr-defined]
        for method in METHODS:
            if method in item:
                found.append((method.upper(), path))
    return found


def is_public(method: str, path: str) -> bool:
    return (method, path) in PUBLIC or path.startswith(PUBLIC_PREFIXES)


def fill(path: str, objects: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "code":
            return objects["seal"] if "/seals/" in path else objects["type"]
        return objects.get(name, "X")

    return re.sub(r"\{([^}:]+)(?::[^}]*)?\}", value, path)


def body_for(domain: Domain, method: str, path: str, objects: dict[str, str]) -> Any:
    if method in ("GET", "DELETE"):
        return None
    if path == "/api/v1/subscriptions":
        return SUBSCRIPTION_BODY
    if path == "/api/v1/objections/{objection_id}/amend":
        return {"value": "x"}
    if path.endswith("/amend"):
        return {"fields": {}, "reason": "x"}
    if "/seals/" in path and path.endswith("/revoke"):
        return {"reason": "keyCompromise"}
    if path.startswith("/api/v1/holders/"):
        return {"name": "另一名称"}
    if path.endswith("/holder-links"):
        return {}
    if path == "/api/v1/catalogue/licence-types/{code}" and method == "PUT":
        current = domain.client.get(fill(path, objects)).json()
        return {k: v for k, v in current.items() if k in LicenceTypeUpdate.model_fields}
    return {"reason": "x"}


# Well-formed credentials that are nobody's: the edge lets them through (it only refuses writes
# with no credential at all, before reading their body), so the route's own check must refuse.
FORGED_KEY = {"Authorization": "Bearer elk_0123456789abcdef_" + "A" * 43}
FORGED_SESSION = "forged.session"


def test_every_non_public_route_needs_credentials(
    domain: Domain, walker: Walker, objects: dict[str, str]
) -> None:
    walked = [(m, p) for m, p in routes(domain) if not is_public(m, p)]
    forged_holder = Walker(domain.client.app, {COOKIE: FORGED_SESSION})
    checked = []
    for method, path in walked:
        url, body = fill(path, objects), body_for(domain, method, path, objects)
        # no credential at all: refused, at the edge or by the route
        response, _ = walker.request(method, path, url, json=body)
        assert response.status_code == 401, (method, path, response.status_code, response.text[:200])
        assert response.headers["content-type"].startswith("application/problem+json")
        # a credential of the right form that is nobody's: refused by the route itself
        if is_holder(path):
            response, ran = forged_holder.request(method, path, url, json=body)
        else:
            response, ran = walker.request(method, path, url, json=body, headers=FORGED_KEY)
        assert response.status_code == 401, (method, path, response.status_code, response.text[:200])
        assert response.headers["content-type"].startswith("application/problem+json")
        if ran:
            checked.append((method, path))
    assert checked == walked
    assert len(checked) >= 20


def test_every_write_route_checks_its_scope(
    domain: Domain, walker: Walker, objects: dict[str, str]
) -> None:
    services = domain.services
    with transaction(services.engine) as session:
        _, key = create_client(session, services.audit, services.clock, department_code=objects["department_code"],
                               name="pull-only", actor="test", scopes=("licences:pull",))
        _, issue_only = create_client(session, services.audit, services.clock, department_code=objects["department_code"],
                                      name="issue-only", actor="test", scopes=("licences:issue",))
    headers = {"Authorization": f"Bearer {key}"}
    # A write that needs the pull scope itself (a holder's use authorisation code redeemed) is
    # tried with a client that lacks it.
    lacking = {path: {"Authorization": f"Bearer {issue_only}"} for path in PULL_WRITES}
    # (the holder's own writes take a session, not a key: see the holder tests below)
    walked = [(m, p) for m, p in routes(domain)
              if not is_public(m, p) and m != "GET" and not is_holder(p)]
    checked = []
    for method, path in walked:
        response, ran = walker.request(method, path, fill(path, objects),
                                       json=body_for(domain, method, path, objects),
                                       headers=lacking.get(path, headers))
        assert response.status_code == 403, (method, path, response.status_code, response.text[:200])
        if ran:
            checked.append((method, path))
    assert checked == walked
    assert len(checked) >= 15


def test_another_departments_objects_are_out_of_reach(
    domain: Domain, walker: Walker, objects: dict[str, str]
) -> None:
    other = domain.auth(1)
    walked = [(m, p) for m, p in routes(domain)
              if not is_public(m, p) and "{" in p and not is_holder(p)]
    checked = []
    for method, path in walked:
        response, ran = walker.request(method, path, fill(path, objects),
                                       json=body_for(domain, method, path, objects), headers=other)
        assert response.status_code in (403, 404), (method, path, response.status_code, response.text[:200])
        if ran:
            checked.append((method, path))
    assert checked == walked
    assert len(checked) >= 15
    # and nothing they tried changed the licence
    mine = domain.client.get(f"/api/v1/licences/{objects['identifier']}", headers=domain.auth(0)).json()
    assert mine["status"] == "valid"


def test_public_list_names_only_real_routes(domain: Domain) -> None:
    present = set(routes(domain))
    stale = {r for r in PUBLIC if r not in present and r != ("GET", "/api/v1/departments/{code}")}
    assert stale == set()


# Holder routes: the credential is the signed-in holder's session cookie (api/edge/holder_session.py),
# and every state-changing call must carry the session's CSRF token as well.
HOLDER_PREFIXES = ("/api/v1/holder/",)


def is_holder(path: str) -> bool:
    return path.startswith(HOLDER_PREFIXES)


def holder_walker(domain: Domain, id_type: str, id_number: str, subject: str) -> tuple[Walker, str]:
    principal = HolderPrincipal(id_type=id_type, id_number=id_number, name="持证人", subject=subject,
                                issuer="https://idp.example.gov.cn")
    sessions = domain.services.holder_sessions
    value = sessions.seal(principal, domain.services.clock.now())
    _, csrf = sessions.open(value, domain.services.clock.now())
    return Walker(domain.client.app, {COOKIE: value}), csrf


def holder_client(domain: Domain, id_type: str, id_number: str, subject: str) -> tuple[TestClient, str]:
    walker, csrf = holder_walker(domain, id_type, id_number, subject)
    return walker.client, csrf


@pytest.fixture(scope="module")
def holder_objects(domain: Domain, objects: dict[str, str]) -> dict[str, str]:
    """A live grant by the holder of the licence in ``objects``."""
    from datetime import timedelta

    from core.clock import china_today

    sample = domain.department(0)["sample_request"]
    client, csrf = holder_client(domain, sample["holder"]["id_type"], sample["holder"]["id"], "authz-holder")
    entry = domain.client.get(f"/api/v1/catalogue/licence-types/{objects['type']}").json()
    response = client.post("/api/v1/holder/grants", headers={"X-CSRF-Token": csrf}, json={
        "identifier": objects["identifier"], "department": domain.department(1)["code"],
        "service_item": sorted(entry["service_item_fields"])[0], "business_number": "AUTHZ-1",
        "valid_until": (china_today(domain.services.clock.now()) + timedelta(days=2)).isoformat()})
    assert response.status_code == 201, response.text
    return {**objects, "grant_id": response.json()["id"]}


def test_holder_routes_take_only_the_holders_session(
    domain: Domain, walker: Walker, holder_objects: dict[str, str]
) -> None:
    sample = domain.department(0)["sample_request"]
    holder, csrf = holder_walker(domain, sample["holder"]["id_type"], sample["holder"]["id"], "authz-holder")
    walked = [(m, p) for m, p in routes(domain) if is_holder(p)]
    checked = []
    for method, path in walked:
        url = fill(path, holder_objects)
        body = body_for(domain, method, path, holder_objects)
        # a department's credentials never act for a holder (writes are refused at the edge)
        response, _ = walker.request(method, path, url, json=body, headers=domain.auth(0))
        assert response.status_code == 403, (method, path, response.status_code, response.text[:200])
        reached = []
        if method == "GET":  # the session is accepted (objects not filled in may be 404/422)
            response, ran = holder.request(method, path, url)
            assert response.status_code not in (401, 403), (method, path)
            reached.append(ran)
        else:
            for headers in ({}, {"X-CSRF-Token": csrf + "x"}):
                response, ran = holder.request(method, path, url, json=body, headers=headers)
                assert response.status_code == 403, (method, path, response.status_code, response.text[:200])
                assert response.headers["content-type"].startswith("application/problem+json")
                reached.append(ran)
        if all(reached):
            checked.append((method, path))
    assert checked == walked
    assert len(checked) >= 4
    grants = holder.client.get("/api/v1/holder/grants").json()["items"]
    assert [(g["id"], g["status"]) for g in grants] == [(holder_objects["grant_id"], "active")]


def test_another_holders_objects_are_out_of_reach(domain: Domain, holder_objects: dict[str, str]) -> None:
    stranger, csrf = holder_walker(domain, "111", "350103199007150024", "authz-stranger")
    walked = [(m, p) for m, p in routes(domain) if is_holder(p) and "{" in p]
    checked, unfilled = [], []
    for method, path in walked:
        response, ran = stranger.request(method, path, fill(path, holder_objects),
                                         headers={"X-CSRF-Token": csrf},
                                         json=body_for(domain, method, path, holder_objects))
        if response.status_code == 422:  # a body this walker cannot fill: ownership was not tried
            assert not path.endswith("/withdraw"), (method, path, response.text[:200])
            unfilled.append((method, path))
            continue
        assert response.status_code in (403, 404), (method, path, response.status_code, response.text[:200])
        if ran:
            checked.append((method, path))
    assert sorted(checked + unfilled) == sorted(walked) and len(checked) >= 1
    sample = domain.department(0)["sample_request"]
    owner, _ = holder_client(domain, sample["holder"]["id_type"], sample["holder"]["id"], "authz-holder")
    assert owner.get("/api/v1/holder/grants").json()["items"][0]["status"] == "active"


# Supervision offices: a client holding ``supervise`` (and, by rule, nothing else) reads the
# supervision routes and nothing of the departments' API — not even a read — and writes nothing.
SUPERVISION_PREFIX = "/api/v1/supervision/"
# An office may subscribe to its own alert events (supervision.subscriptions): its own rows,
# nothing of a department's.
OWN_SUBSCRIPTIONS = "/api/v1/subscriptions"


def is_supervision(path: str) -> bool:
    return path.startswith(SUPERVISION_PREFIX)


def test_a_supervision_client_is_refused_everywhere_but_supervision(
    domain: Domain, walker: Walker, objects: dict[str, str]
) -> None:
    office = domain.credentials["supervision_offices"][0]
    headers = {"Authorization": f"Bearer {office['api_key']}"}
    walked = [(m, p) for m, p in routes(domain)
              if not is_public(m, p) and not is_supervision(p) and not p.startswith(OWN_SUBSCRIPTIONS)]
    checked = []
    for method, path in walked:
        response, ran = walker.request(method, path, fill(path, objects),
                                       json=body_for(domain, method, path, objects), headers=headers)
        assert response.status_code == 403, (method, path, response.status_code, response.text[:200])
        assert response.headers["content-type"].startswith("application/problem+json")
        if ran or is_holder(path):  # holder routes refuse a Bearer credential at the edge
            checked.append((method, path))
    assert checked == walked
    assert len([m for m, _ in checked if m != "GET"]) >= 15
    # ...and it reaches every supervision route, while a department's credentials do not.
    supervision = [(m, p) for m, p in routes(domain) if is_supervision(p)]
    assert ("GET", "/api/v1/supervision/figures") in supervision
    assert ("GET", "/api/v1/supervision/audit") in supervision
    for method, path in supervision:
        url, body = fill(path, objects), body_for(domain, method, path, objects)
        response, ran = walker.request(method, path, url, json={"comment": "x"} if body else None,
                                       headers=headers)
        assert ran and response.status_code not in (401, 403), (method, path, response.text[:200])
        response, _ = walker.request(method, path, url, json=body, headers=domain.auth(0))
        assert response.status_code == 403, (method, path, response.status_code)
    # Nothing it tried changed the licence.
    mine = domain.client.get(f"/api/v1/licences/{objects['identifier']}", headers=domain.auth(0)).json()
    assert mine["status"] == "valid"
