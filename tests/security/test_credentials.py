"""Department credentials, unit by unit: API keys (seals/clients.py), access tokens
(api/edge/tokens.py), the bearer check and scopes (api/edge/auth.py) and the token endpoint
(api/http/oauth.py). Each refusal is checked with its exact message and status."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import replace
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from api.edge import errors
from api.edge.auth import DepartmentPrincipal, department, require
from api.edge.tokens import TokenClaims, TokenIssuer, looks_like_jwt
from api.http.oauth import router as token_router
from core.audit import AuditEntry, AuditLog
from core.clock import FixedClock
from core.errors import InvalidInput, NotFound, Unauthenticated
from keys.store import HashAlgorithm, KeyRef
from seals.client_desk import ClientDesk
from seals.clients import (
    DEPARTMENT_SCOPES,
    ApiClient,
    authenticate,
    create_client,
    list_clients,
    revoke_client,
    rotate_client_key,
)
from tests.security.support import NOW, MemoryKeyStore, memory_engine

DEPT = "1135010000360001XN"
OTHER = "11350100003600020R"
ISSUER = "https://licence.example.gov.cn"
BAD_KEY = "API 密钥无效 / invalid API key"
BAD_TOKEN = "访问令牌无效或已过期 / invalid or expired access token"


def audit_rows(session: Session) -> list[tuple[str, str, str, str, dict[str, Any]]]:
    return [(e.actor, e.action, e.object_type, e.object_id, e.detail)
            for e in session.exec(select(AuditEntry).order_by(col(AuditEntry.seq)))]


class World:
    def __init__(self) -> None:
        self.clock = FixedClock(NOW)
        self.engine = memory_engine()
        self.audit = AuditLog(self.clock)
        self.store = MemoryKeyStore()
        self.tokens = TokenIssuer(store=self.store, clock=self.clock, issuer=ISSUER)

    def client(self, scopes: tuple[str, ...] = ("licences:issue",), dept: str = DEPT) -> tuple[str, str]:
        with Session(self.engine) as session:
            client, key = create_client(session, self.audit, self.clock, department_code=dept,
                                        name="系统", actor="operator", scopes=scopes)
            session.commit()
            return client.id, key


@pytest.fixture
def world() -> World:
    return World()


# --- API keys -----------------------------------------------------------------------------------

def test_a_new_client_gets_a_key_shown_once_and_stored_as_its_hash(world: World) -> None:
    with Session(world.engine) as session:
        client, key = create_client(session, world.audit, world.clock, department_code=DEPT,
                                    name="系统", actor="operator")
        session.commit()
        prefix, client_id, secret = key.split("_", 2)
        assert (prefix, client_id) == ("elk", client.id)
        assert len(client.id) == 16 and int(client.id, 16) >= 0
        assert len(secret) == 43  # 32 random bytes
        stored = session.get(ApiClient, client.id)
        assert stored is not None
        assert stored.key_sha256 == hashlib.sha256(key.encode()).hexdigest()
        assert key not in json.dumps(stored.model_dump(mode="json"))
        assert (stored.department_code, stored.name, stored.scopes) == (DEPT, "系统", list(DEPARTMENT_SCOPES))
        assert stored.created_at.replace(tzinfo=NOW.tzinfo) == NOW and stored.revoked_at is None
        assert audit_rows(session) == [("operator", "client.create", "api_client", client.id,
                                        {"department": DEPT, "scopes": list(DEPARTMENT_SCOPES)})]
        assert "admin" not in DEPARTMENT_SCOPES
        assert [c.id for c in list_clients(session)] == [client.id]


@pytest.mark.parametrize(("scopes", "named"), [(("licences:issue", "root"), "['root']"), ((), "[]")])
def test_unknown_or_no_scopes_are_refused(world: World, scopes: tuple[str, ...], named: str) -> None:
    with Session(world.engine) as session, pytest.raises(InvalidInput) as refused:
        create_client(session, world.audit, world.clock, department_code=DEPT, name="x",
                      actor="operator", scopes=scopes)
    assert refused.value.message == f"未知的权限范围 / unknown scopes {named}"
    assert refused.value.field == "scopes"


def test_admin_may_be_granted_explicitly(world: World) -> None:
    _, key = world.client(("admin",))
    with Session(world.engine) as session:
        assert authenticate(session, key).scopes == ["admin"]


def test_the_right_key_authenticates(world: World) -> None:
    client_id, key = world.client()
    with Session(world.engine) as session:
        assert authenticate(session, key).id == client_id


def forged_keys(world: World) -> list[str]:
    mine_id, mine = world.client()
    other_id, other = world.client(dept=OTHER)
    secret = mine.split("_", 2)[2]
    wrong = ("A" if secret[0] != "A" else "B") + secret[1:]  # same length, one character off
    return [
        f"elk_{mine_id}_{wrong}",  # right client, wrong secret of the right length
        f"elk_{mine_id}_{other.split('_', 2)[2]}",  # right client, another client's secret
        f"elk_{other_id}_{secret}",  # another department's client with my secret
        f"elk_{mine_id}",  # no secret part
        mine[len("elk_"):],  # no prefix
        "xlk_" + mine[len("elk_"):],  # wrong prefix
        f"elk_{'0' * 16}_{secret}",  # no such client
        "",
    ]


def test_forged_keys_are_refused(world: World) -> None:
    for forged in forged_keys(world):
        with Session(world.engine) as session, pytest.raises(Unauthenticated) as refused:
            authenticate(session, forged)
        assert refused.value.message == BAD_KEY, forged


class NoDatabase:
    def get(self, *_: object) -> None:
        raise AssertionError("a malformed key must be refused before any lookup")


@pytest.mark.parametrize("key", ["elk_0123456789abcdef", "xlk_0123456789abcdef_secret", "elk_", ""])
def test_a_malformed_key_is_refused_without_a_lookup(key: str) -> None:
    with pytest.raises(Unauthenticated) as refused:
        authenticate(NoDatabase(), key)  # type: ignore[arg-type]
    assert refused.value.message == BAD_KEY


def test_a_revoked_client_is_refused_and_revoking_is_audited_once(world: World) -> None:
    client_id, key = world.client()
    with Session(world.engine) as session:
        revoked = revoke_client(session, world.audit, world.clock, client_id=client_id, actor="op")
        assert revoked.revoked_at == NOW
        world.clock.advance(timedelta(hours=1))
        again = revoke_client(session, world.audit, world.clock, client_id=client_id, actor="op")
        assert again.revoked_at == NOW
        session.commit()
    with Session(world.engine) as session:
        with pytest.raises(Unauthenticated) as refused:
            authenticate(session, key)
        assert refused.value.message == BAD_KEY
        assert audit_rows(session)[1:] == [("op", "client.revoke", "api_client", client_id,
                                            {"department": DEPT})]
        with pytest.raises(NotFound) as missing:
            revoke_client(session, world.audit, world.clock, client_id="nobody", actor="op")
        assert missing.value.message == "客户端不存在 / no API client nobody"


def test_rotating_a_key_retires_the_old_one(world: World) -> None:
    client_id, old = world.client()
    with Session(world.engine) as session:
        client, new = rotate_client_key(session, world.audit, client_id=client_id, actor="op")
        session.commit()
        assert client.id == client_id and new.startswith(f"elk_{client_id}_") and new != old
        assert len(new) == len(f"elk_{client_id}_") + 43
        assert client.key_sha256 == hashlib.sha256(new.encode()).hexdigest()
        assert audit_rows(session)[1:] == [("op", "client.rotate", "api_client", client_id,
                                            {"department": DEPT})]
    with Session(world.engine) as session:
        assert authenticate(session, new).id == client_id
        with pytest.raises(Unauthenticated):
            authenticate(session, old)
        revoke_client(session, world.audit, world.clock, client_id=client_id, actor="op")
        for gone in (client_id, "nobody"):
            with pytest.raises(NotFound) as refused:
                rotate_client_key(session, world.audit, client_id=gone, actor="op")
            assert refused.value.message == f"客户端不存在或已吊销 / no active API client {gone}"


# --- access tokens ------------------------------------------------------------------------------

def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(store: MemoryKeyStore, header: dict[str, Any], claims: dict[str, Any],
         label: str = "token-signing") -> str:
    """A token signed with the store's key: only its contents are wrong, never the signature."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    der = store.sign_digest(KeyRef(store.name, label, 1),
                            hashlib.sha256(signing_input.encode()).digest(), HashAlgorithm.SHA256)
    r, s = decode_dss_signature(der)
    return f"{signing_input}.{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


class Listener:
    def __init__(self) -> None:
        self.uses: list[tuple[KeyRef, str]] = []

    def key_used(self, ref: KeyRef, purpose: str) -> None:
        self.uses.append((ref, purpose))


def minted(world: World, scopes: tuple[str, ...] = ("licences:issue", "licences:manage")) -> str:
    world.tokens.ensure_key()
    token, lifetime = world.tokens.mint(client_id="c1", department_code=DEPT, scopes=scopes,
                                        listener=None)
    assert lifetime == 600
    return token


def test_a_minted_token_says_exactly_what_it_grants(world: World) -> None:
    ref = world.tokens.ensure_key()
    assert ref == KeyRef("memory", "token-signing", 1) and world.tokens.ensure_key() == ref
    listener = Listener()
    token, lifetime = world.tokens.mint(client_id="c1", department_code=DEPT,
                                        scopes=("licences:issue", "licences:pull"), listener=listener)
    assert lifetime == 600 and listener.uses == [(ref, "access-token")]
    header, claims, signature = token.split(".")
    assert json.loads(unb64(header)) == {"alg": "ES256", "typ": "at+jwt", "kid": "memory:token-signing:v1"}
    body = json.loads(unb64(claims))
    jti = body.pop("jti")
    assert len(jti) == 24 and int(jti, 16) >= 0
    assert body == {"iss": ISSUER, "aud": "elicence-api", "sub": "c1", "department": DEPT,
                    "scope": "licences:issue licences:pull", "iat": int(NOW.timestamp()),
                    "exp": int(NOW.timestamp()) + 600}
    assert len(unb64(signature)) == 64
    assert "=" not in token  # compact serialisation: base64url without padding
    assert world.tokens.check(token) == TokenClaims(
        client_id="c1", department_code=DEPT, scopes=("licences:issue", "licences:pull"),
        expires_at=NOW + timedelta(minutes=10))
    assert looks_like_jwt(token)


def test_no_token_before_the_token_key_exists(world: World) -> None:
    for attempt in (lambda: world.tokens.mint(client_id="c", department_code=DEPT, scopes=(),
                                              listener=None),
                    lambda: world.tokens.check(sign_fresh(world))):
        with pytest.raises(Unauthenticated) as refused:
            attempt()
        assert refused.value.message == "令牌服务未初始化 / token service not initialised; run elicence init"


def sign_fresh(world: World) -> str:
    other = MemoryKeyStore()
    other.create("token-signing")
    return sign(other, {"alg": "ES256"}, {"aud": "elicence-api", "iss": ISSUER, "exp": 2**40,
                                           "sub": "c", "department": DEPT})


def good_claims() -> dict[str, Any]:
    return {"iss": ISSUER, "aud": "elicence-api", "sub": "c1", "department": DEPT,
            "scope": "licences:issue", "exp": int(NOW.timestamp()) + 60}


def bad_tokens(world: World) -> dict[str, str]:
    token = minted(world)
    header, claims, signature = token.split(".")
    raw = unb64(signature)
    other = MemoryKeyStore()
    other.create("token-signing")
    es = {"alg": "ES256"}
    return {
        "two parts": f"{header}.{claims}",
        "four parts": f"{token}.{signature}",
        "header not base64": f"!!.{claims}.{signature}",
        "header not JSON": f"{b64(b'not json')}.{claims}.{signature}",
        "signature not base64": f"{header}.{claims}.*",
        "alg none": f"{b64(json.dumps({'alg': 'none'}).encode())}.{claims}.{signature}",
        "alg HS256": sign(world.store, {"alg": "HS256"}, good_claims()),
        "short signature": f"{header}.{claims}.{b64(raw[:63])}",
        "long signature": f"{header}.{claims}.{b64(raw + b'0')}",
        "claims changed": f"{header}.{b64(json.dumps({**json.loads(unb64(claims)), 'sub': 'c2'}).encode())}.{signature}",
        "another key": sign(other, es, good_claims()),
        "wrong audience": sign(world.store, es, {**good_claims(), "aud": "other-api"}),
        "no audience": sign(world.store, es, {k: v for k, v in good_claims().items() if k != "aud"}),
        "wrong issuer": sign(world.store, es, {**good_claims(), "iss": "https://evil.example"}),
        "expired now": sign(world.store, es, {**good_claims(), "exp": int(NOW.timestamp())}),
        "no expiry": sign(world.store, es, {k: v for k, v in good_claims().items() if k != "exp"}),
    }


def test_bad_tokens_are_refused(world: World) -> None:
    for name, token in bad_tokens(world).items():
        with pytest.raises(Unauthenticated) as refused:
            world.tokens.check(token)
        assert refused.value.message == BAD_TOKEN, name


def test_a_token_is_good_until_its_last_second(world: World) -> None:
    minted(world)
    token = sign(world.store, {"alg": "ES256"}, {**good_claims(), "exp": int(NOW.timestamp()) + 1})
    assert world.tokens.check(token).scopes == ("licences:issue",)
    assert world.tokens.check(token).scopes == ("licences:issue",)  # the key is read once
    bare = sign(world.store, {"alg": "ES256"},
                {k: v for k, v in good_claims().items() if k != "scope"})
    assert world.tokens.check(bare).scopes == ()


def test_looks_like_jwt() -> None:
    assert looks_like_jwt("eyA.b.c")
    assert not looks_like_jwt("eyA.b")
    assert not looks_like_jwt("eyA.b.c.d")
    assert not looks_like_jwt("xyA.b.c")
    assert not looks_like_jwt("elk_0123456789abcdef_secret")


# --- the bearer check, scopes and the token endpoint over HTTP ------------------------------------

def make_app(world: World) -> TestClient:
    app = FastAPI()
    errors.install(app)
    clients = ClientDesk(engine=world.engine, audit=world.audit, clock=world.clock,
                         registry=None)  # type: ignore[arg-type]  # no client is created here
    app.state.services = SimpleNamespace(tokens=world.tokens, clients=clients)
    app.include_router(token_router)

    @app.get("/issue")
    def issue(request: Request, who: DepartmentPrincipal = Depends(require("licences:issue"))) -> dict[str, Any]:
        return {"department": who.department_code, "client": who.client_id,
                "scopes": list(who.scopes), "actor": who.actor,
                "state": request.state.client_id}

    @app.get("/any")
    def anyone(who: DepartmentPrincipal = Depends(department)) -> dict[str, Any]:
        return {"client": who.client_id, "scopes": list(who.scopes)}

    world.tokens.ensure_key()
    return TestClient(app)


def test_dependencies_are_named_after_their_scope() -> None:
    assert require("licences:issue").__name__ == "require_licences_issue"
    assert require(None).__name__ == "require_any"
    principal = DepartmentPrincipal(DEPT, "c1", ("licences:pull",))
    assert principal.actor == f"department:{DEPT}/client:c1"
    assert principal.allows("licences:pull") and not principal.allows("licences:issue")
    assert DepartmentPrincipal(DEPT, "c1", ("admin",)).allows("licences:issue")


def test_an_api_key_with_the_scope_is_let_in(world: World) -> None:
    client_id, key = world.client(("licences:issue", "licences:pull"))
    http = make_app(world)
    for header in (f"Bearer {key}", f"bearer {key}", f"Bearer   {key}  "):
        response = http.get("/issue", headers={"Authorization": header})
        assert response.status_code == 200, response.text
        assert response.json() == {"department": DEPT, "client": client_id,
                                   "scopes": ["licences:issue", "licences:pull"],
                                   "actor": f"department:{DEPT}/client:{client_id}",
                                   "state": client_id}


def problem(response: Any, status: int, detail: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["detail"] == detail


def test_missing_or_malformed_credentials(world: World) -> None:
    _, key = world.client()
    http = make_app(world)
    needed = "需要部门凭证 / department credentials required (Authorization: Bearer)"
    for headers in ({}, {"Authorization": key}, {"Authorization": f"Basic {key}"},
                    {"Authorization": "Bearer "}, {"Authorization": "Bearer    "},
                    {"Authorization": f"Token {key}"}):
        response = http.get("/any", headers=headers)
        problem(response, 401, needed)
        assert response.headers["www-authenticate"] == "Bearer"
    for forged in forged_keys(world)[:-1]:
        problem(http.get("/any", headers={"Authorization": f"Bearer {forged}"}), 401, BAD_KEY)


def test_a_missing_scope_is_forbidden(world: World) -> None:
    _, key = world.client(("licences:pull",))
    http = make_app(world)
    problem(http.get("/issue", headers={"Authorization": f"Bearer {key}"}), 403,
            "凭证缺少权限范围 licences:issue / the credentials lack scope licences:issue")
    assert http.get("/any", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    _, admin = world.client(("admin",))
    assert http.get("/issue", headers={"Authorization": f"Bearer {admin}"}).status_code == 200


def token_for(http: TestClient, client_id: str, key: str, **extra: str) -> dict[str, Any]:
    response = http.post("/oauth/token", data={"grant_type": "client_credentials",
                                                "client_id": client_id, "client_secret": key, **extra})
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    return response.json()  # type: ignore[no-any-return]


def test_a_token_carries_the_granted_scopes_and_its_use_is_audited(world: World) -> None:
    client_id, key = world.client(("licences:issue", "licences:pull"))
    http = make_app(world)
    issued = token_for(http, client_id, key)
    assert {k: v for k, v in issued.items() if k != "access_token"} == {
        "token_type": "Bearer", "expires_in": 600, "scope": "licences:issue licences:pull"}
    bearer = {"Authorization": f"Bearer {issued['access_token']}"}
    assert http.get("/issue", headers=bearer).json()["scopes"] == ["licences:issue", "licences:pull"]
    narrow = token_for(http, client_id, key, scope="licences:pull")
    assert narrow["scope"] == "licences:pull"
    problem(http.get("/issue", headers={"Authorization": f"Bearer {narrow['access_token']}"}), 403,
            "凭证缺少权限范围 licences:issue / the credentials lack scope licences:issue")
    with Session(world.engine) as session:
        uses = [row for row in audit_rows(session) if row[1] == "key.sign"]
    assert uses == [(f"department:{DEPT}/client:{client_id}", "key.sign", "key",
                     "memory:token-signing:v1", {"purpose": "access-token", "version": 1})] * 2


def test_basic_credentials_at_the_token_endpoint(world: World) -> None:
    client_id, key = world.client()
    http = make_app(world)
    response = http.post("/oauth/token", data={"grant_type": "client_credentials"},
                         auth=(client_id, key))
    assert response.status_code == 200, response.text
    problem(http.post("/oauth/token", data={"grant_type": "client_credentials"},
                      headers={"Authorization": "Basic YQ"}), 401,
            "无效的Basic凭证 / malformed Basic credentials")
    not_utf8 = base64.b64encode(b"\xff:\xfe").decode()
    problem(http.post("/oauth/token", data={"grant_type": "client_credentials"},
                      headers={"Authorization": f"basic {not_utf8}"}), 401,
            "无效的Basic凭证 / malformed Basic credentials")
    # RFC 7617: the user id ends at the first colon; the password may hold more
    colon = base64.b64encode(f"{client_id}:{key}:".encode()).decode()
    problem(http.post("/oauth/token", data={"grant_type": "client_credentials"},
                      headers={"Authorization": f"Basic {colon}"}), 401, BAD_KEY)
    spaced = base64.b64encode(f"{client_id}:{key}".encode()).decode()
    response = http.post("/oauth/token", data={"grant_type": "client_credentials"},
                         headers={"Authorization": f"Basic  {spaced}"})
    assert response.status_code == 200, response.text
    # another scheme is not Basic: the form fields are used
    response = http.post("/oauth/token", headers={"Authorization": "Digest x"},
                         data={"grant_type": "client_credentials", "client_id": client_id,
                               "client_secret": key})
    assert response.status_code == 200, response.text


def test_token_endpoint_refusals(world: World) -> None:
    client_id, key = world.client(("licences:pull",))
    other_id, _ = world.client(("licences:pull",))
    http = make_app(world)
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": key}
    response = http.post("/oauth/token", data={**form, "grant_type": "password"})
    problem(response, 422, "仅支持 client_credentials / only grant_type=client_credentials")
    assert response.json()["field"] == "grant_type"
    required = "需要客户端凭证 / client_id and client_secret are required"
    problem(http.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": client_id}),
            401, required)
    problem(http.post("/oauth/token", data={"grant_type": "client_credentials", "client_secret": key}),
            401, required)
    problem(http.post("/oauth/token", data={**form, "client_id": other_id}), 401,
            "客户端凭证不匹配 / client credentials do not match")
    for forged in forged_keys(world)[:-1]:
        problem(http.post("/oauth/token", data={**form, "client_secret": forged}), 401, BAD_KEY)
    response = http.post("/oauth/token", data={**form, "scope": "licences:pull licences:issue"})
    problem(response, 422, "请求的权限范围超出授权 / requested scope exceeds the grant")
    assert response.json()["field"] == "scope"


def test_a_token_loses_what_the_client_lost(world: World) -> None:
    client_id, key = world.client(("licences:issue", "licences:pull"))
    http = make_app(world)
    bearer = {"Authorization": f"Bearer {token_for(http, client_id, key)['access_token']}"}
    with Session(world.engine) as session:
        client = session.get(ApiClient, client_id)
        assert client is not None
        client.scopes = ["licences:pull"]
        session.add(client)
        session.commit()
    assert http.get("/any", headers=bearer).json()["scopes"] == ["licences:pull"]
    with Session(world.engine) as session:
        revoke_client(session, world.audit, world.clock, client_id=client_id, actor="op")
        session.commit()
    problem(http.get("/any", headers=bearer), 401, "客户端已吊销 / this client has been revoked")
    stranger = sign(world.store, {"alg": "ES256"}, {**good_claims(), "sub": "0" * 16})
    problem(http.get("/any", headers={"Authorization": f"Bearer {stranger}"}), 401,
            "客户端已吊销 / this client has been revoked")
    problem(http.get("/any", headers={"Authorization": "Bearer eyJ.x.y"}), 401, BAD_TOKEN)


def test_claims_are_a_frozen_record() -> None:
    claims = TokenClaims("c", DEPT, ("a",), NOW)
    assert replace(claims, client_id="d").client_id == "d"
