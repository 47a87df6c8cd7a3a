"""Purpose-stamped copies (加注件), made by a holder signed in for real (OpenID Connect at the
development provider): rendered from the repository with the stamp on the page, sealed B-LTA by
the issuing department, verified PASSED with their purpose, FAILED once the licence is revoked,
and refused for bad purposes and for anybody but the licence's holder."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine
from sqlmodel import SQLModel, func, select

import licences.stamped_records  # noqa: F401  (the table compared below)
from api.ops import demo
from core.audit import AuditEntry
from core.db import reading
from licences.stamped_records import StampedCopy
from migrations.runner import alembic_config
from tests.conftest import fresh_schema
from tests.holder_login import CHEN, WANG, HolderSite, csrf_token, sign_in, start_site
from tests.repo_domains import BACKENDS
from tests.tools import require

PURPOSE = "医师多机构执业备案"
ITEM = "000126021000-01"  # one of the physician licence type's service items (api/ops/demo.py)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HolderSite]:
    with start_site(tmp_path_factory.mktemp("stamped") / "data") as built:
        yield built


@pytest.fixture(scope="module")
def chen(site: HolderSite) -> Iterator[httpx.Client]:
    with closing(sign_in(site.base_url, CHEN)) as client:
        yield client


def valid_licence(client: httpx.Client) -> str:
    body = client.get("/api/v1/holder/licences").json()["licences"]
    return next(item["identifier"] for item in body if item["status"] == "valid")


def verify_pdf(client: httpx.Client, data: bytes) -> dict[str, Any]:
    response = client.post(
        "/api/v1/verify", files={"file": ("copy.pdf", data, "application/pdf")}, timeout=120
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def verify_qr(client: httpx.Client, url: str) -> dict[str, Any]:
    response = client.post("/api/v1/verify", json={"qr": url})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def copies_in_db(site: HolderSite) -> int:
    with reading(site.services.engine) as session:
        return int(session.exec(select(func.count()).select_from(StampedCopy)).one())


def test_a_stamped_copy_is_sealed_and_verifies_with_its_purpose(
    site: HolderSite, chen: httpx.Client, tmp_path: Path
) -> None:
    identifier = valid_licence(chen)
    made = chen.post(
        f"/me/licences/{identifier}/stamped-copies",
        data={"csrf": csrf_token(chen), "purpose": f"  {PURPOSE} ", "service_item": ITEM},
        headers={"X-CSRF-Token": ""},  # the page's form carries the token, not the header
        follow_redirects=True,
    )
    assert made.status_code == 200, made.text[:500]
    copy_id = parse_qs(urlsplit(str(made.url)).query)["copy"][0]
    sentence = f"仅供办理{PURPOSE}（事项编码 {ITEM}）使用，他用无效"
    assert 'id="new-copy"' in made.text and sentence in made.text

    listed = chen.get(f"/api/v1/holder/licences/{identifier}/stamped-copies").json()
    copy = next(c for c in listed["stamped_copies"] if c["id"] == copy_id)
    assert (copy["purpose"], copy["service_item"], copy["stamp_text"]) == (PURPOSE, ITEM, sentence)
    data = chen.get(f"/me/stamped-copies/{copy_id}/pdf").content
    assert chen.get(copy["links"]["pdf"]).content == data
    assert hashlib.sha256(data).hexdigest() == copy["sha256"]
    licence_pdf = chen.get(f"/api/v1/holder/licences/{identifier}/pdf").content
    assert data != licence_pdf

    # poppler reads it as the department's seal, with a document timestamp after it (B-LTA)
    path = tmp_path / "copy.pdf"
    path.write_bytes(data)
    sig = subprocess.run(
        [require("pdfsig"), str(path)], capture_output=True, text=True, check=False
    ).stdout
    assert "Signature Field Name: Seal" in sig
    assert "Signature Validation: Signature is Valid." in sig
    assert f"Signer Certificate Common Name: {demo.HEALTH['name']}电子证照专用章" in sig
    assert "Signature #2" in sig  # the archive timestamp
    page = subprocess.run(
        [require("pdftotext"), str(path), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "加注件" in page and PURPOSE in page and "他用无效" in page
    assert "陈建华" in page and CHEN in page  # the licence's repository data, re-rendered

    report = verify_pdf(chen, data)
    assert report["indication"] == "PASSED", report
    assert report["licence"]["identifier"] == identifier
    assert report["licence"]["purpose"].startswith(f"加注件：{sentence}")
    assert {c["name"]: c["result"] for c in report["checks"]}["repository"] == "passed"
    scanned = verify_qr(chen, copy["verify_url"])
    assert scanned["indication"] == "PASSED"
    assert scanned["licence"]["purpose"] == report["licence"]["purpose"]
    page_html = chen.get(urlsplit(copy["verify_url"]).path).text
    assert 'id="purpose"' in page_html and f"加注件：{sentence}" in page_html
    # the licence itself is still just the licence
    plain = verify_pdf(chen, licence_pdf)
    assert plain["indication"] == "PASSED" and plain["licence"]["purpose"] is None

    with reading(site.services.engine) as session:
        row = session.get(StampedCopy, copy_id)
        assert row is not None
        assert row.requested_by == f"holder:{demo.holder_subject('111', CHEN)}"
        assert row.identifier == identifier and row.licence_version == 1
        entry = session.exec(
            select(AuditEntry).where(AuditEntry.action == "licence.stamped_copy")
        ).all()[-1]
    assert entry.object_id == identifier and entry.detail["copy"] == copy_id
    assert entry.detail["sha256"] == copy["sha256"]


def test_a_copy_follows_the_licence_into_revocation(site: HolderSite, chen: httpx.Client) -> None:
    health = site.credentials["departments"][1]
    issued = site.client.post(
        "/api/v1/licences", json=health["sample_request"], headers=site.auth(1)
    )
    assert issued.status_code == 201, issued.text
    identifier = issued.json()["identifier"]
    made = chen.post(
        f"/api/v1/holder/licences/{identifier}/stamped-copies", json={"purpose": "执业注册变更"}
    )
    assert made.status_code == 201, made.text
    copy = made.json()
    assert copy["stamp_text"] == "仅供办理执业注册变更使用，他用无效"
    data = chen.get(copy["links"]["pdf"]).content
    assert verify_pdf(chen, data)["indication"] == "PASSED"

    revoked = site.client.post(
        f"/api/v1/licences/{identifier}/revoke", json={"reason": "吊销"}, headers=site.auth(1)
    )
    assert revoked.status_code == 200, revoked.text
    for report in (verify_pdf(chen, data), verify_qr(chen, copy["verify_url"])):
        assert (report["indication"], report["sub_indication"]) == ("FAILED", "REVOKED")
        assert report["licence"]["status"] == "revoked"
        assert report["licence"]["purpose"].startswith("加注件：仅供办理执业注册变更使用")
    again = chen.post(
        f"/api/v1/holder/licences/{identifier}/stamped-copies", json={"purpose": "执业注册变更"}
    )
    assert again.status_code == 409 and again.json()["current_status"] == "revoked"


def test_the_purpose_is_checked_and_nothing_is_written(
    site: HolderSite, chen: httpx.Client
) -> None:
    identifier = valid_licence(chen)
    before = copies_in_db(site)
    url = f"/api/v1/holder/licences/{identifier}/stamped-copies"
    for body, field in (
        ({"purpose": "办理\x07事项"}, "purpose"),  # a control character
        ({"purpose": "办理\u200b事项"}, "purpose"),  # an invisible format character
        ({"purpose": "办理事项😀"}, "purpose"),  # the licence font cannot print it
        ({"purpose": "甲" * 31}, "purpose"),
        ({"purpose": "甲"}, "purpose"),
        ({"purpose": "   "}, "purpose"),  # nothing left once folded: neither is given
        ({}, "purpose"),
        ({"service_item": "000999999000-01"}, "service_item"),  # not the type's
        ({"purpose": "办理", "colour": "red"}, None),  # unknown member
    ):
        response = chen.post(url, json=body)
        assert response.status_code == 422, (body, response.text)
        if field:
            assert response.json()["field"] == field, body
    page = chen.post(
        f"/me/licences/{identifier}/stamped-copies",
        data={"csrf": csrf_token(chen), "purpose": "办理\x07事项"},
    )
    assert page.status_code == 422 and 'id="error"' in page.text
    assert "控制字符" in page.text
    no_token = chen.post(url, json={"purpose": "执业注册"}, headers={"X-CSRF-Token": ""})
    assert no_token.status_code == 403
    form_without = chen.post(
        f"/me/licences/{identifier}/stamped-copies",
        data={"purpose": "执业注册"},
        headers={"X-CSRF-Token": ""},
    )
    assert form_without.status_code == 403
    assert copies_in_db(site) == before


def test_another_holder_gets_nothing(site: HolderSite, chen: httpx.Client) -> None:
    identifier = valid_licence(chen)
    made = chen.post(
        f"/api/v1/holder/licences/{identifier}/stamped-copies", json={"service_item": ITEM}
    )
    assert made.status_code == 201
    copy = made.json()
    assert copy["stamp_text"] == f"仅供办理事项编码 {ITEM}使用，他用无效"
    with closing(sign_in(site.base_url, WANG)) as wang:
        for method, path, body in (
            ("POST", f"/api/v1/holder/licences/{identifier}/stamped-copies", {"purpose": "冒用"}),
            ("GET", f"/api/v1/holder/licences/{identifier}/stamped-copies", None),
            ("GET", f"/api/v1/holder/stamped-copies/{copy['id']}/pdf", None),
            ("GET", f"/me/stamped-copies/{copy['id']}/pdf", None),
        ):
            response = wang.request(method, path, json=body)
            assert response.status_code == 404, (path, response.status_code)
            assert not response.content.startswith(b"%PDF")
    department = httpx.get(f"{site.base_url}{copy['links']['pdf']}", headers=site.auth(1))
    assert department.status_code == 403


def test_a_tampered_copy_does_not_pass(site: HolderSite, chen: httpx.Client) -> None:
    identifier = valid_licence(chen)
    made = chen.post(
        f"/api/v1/holder/licences/{identifier}/stamped-copies", json={"purpose": "篡改测试"}
    )
    data = bytearray(chen.get(made.json()["links"]["pdf"]).content)
    position = data.index(b"/Keywords")  # inside the sealed revision, outside the signature
    data[position + 1] ^= 0x01
    report = verify_pdf(chen, bytes(data))
    assert report["indication"] != "PASSED"
    assert report["licence"] is None  # nothing of the repository is shown for a foreign file


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'm.db'}"
    base: str = request.getfixturevalue("postgres_url")
    return fresh_schema(base, "t_stamped")


def test_revision_0010_builds_the_table_the_model_describes(database_url: str) -> None:
    config = alembic_config(database_url)
    command.upgrade(config, "heads")
    engine = create_engine(database_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
        assert "stamped_copy" in conn.dialect.get_table_names(conn)
    mine = [d for d in diff if "stamped_copy" in repr(d)]
    assert mine == [], mine
    command.downgrade(config, "0010@-1")  # this branch only: the others stay
    with engine.connect() as conn:
        names = conn.dialect.get_table_names(conn)
        assert "stamped_copy" not in names and "licence" in names
    engine.dispose()
