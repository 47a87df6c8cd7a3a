"""Grants end to end over real HTTP: a uvicorn server and the development identity provider on
loopback, a demo holder signed in through the whole OpenID Connect flow, a grant, the department's
pull with its API key, the holder's usage log, a withdrawal from the grants page's form, and the
next pull refused."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import closing
from datetime import timedelta

import httpx
import pytest

from core.clock import SystemClock, china_today
from tests.holder_login import CHEN, WANG, HolderSite, csrf_token, sign_in, start_site

ITEM = "000126022000-01"  # the demo physician type: category and workplace
BUSINESS = "FZ-E2E-0001"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HolderSite]:
    with start_site(tmp_path_factory.mktemp("grants-e2e") / "data") as built:
        yield built


def test_grant_pull_usage_withdraw_through_real_sign_in(site: HolderSite) -> None:
    market = site.credentials["departments"][0]
    with (
        closing(sign_in(site.base_url, CHEN)) as chen,
        httpx.Client(base_url=site.base_url, headers=site.auth(0), timeout=60) as department,
    ):
        mine = chen.get("/api/v1/holder/licences").json()["licences"]
        licence = next(item for item in mine if item["status"] == "valid")
        identifier = licence["identifier"]
        params = {"service_item": ITEM, "business_number": BUSINESS}

        # before the grant the department gets nothing, and learns what is missing
        refused = department.get(f"/api/v1/licences/{identifier}", params=params)
        assert refused.status_code == 403 and refused.json()["missing"] == "grant"

        created = chen.post(
            "/api/v1/holder/grants",
            json={
                "identifier": identifier,
                "department": market["code"],
                "service_item": ITEM,
                "business_number": BUSINESS,
                "valid_until": (china_today(SystemClock().now()) + timedelta(days=30)).isoformat(),
            },
        )
        assert created.status_code == 201, created.text
        grant = created.json()

        record = department.get(f"/api/v1/licences/{identifier}", params=params)
        assert record.status_code == 200, record.text
        assert set(record.json()["fields"]) == {"category", "workplace"}
        assert record.json()["holder"]["id"] != CHEN
        # the grant covers two fields and a masked holder: the sealed PDF is not released
        document = department.get(f"/api/v1/licences/{identifier}/pdf", params=params)
        assert document.status_code == 403 and document.json()["missing"] == "fields"

        usage = chen.get("/api/v1/holder/usage").json()["items"]
        assert [(e["kind"], e["what"], e["department"]) for e in usage] == [
            ("pull", "record", market["code"]),
        ]
        page = chen.get("/me/usage")
        assert page.status_code == 200 and market["name"] in page.text and BUSINESS in page.text

        # another holder sees none of it
        with closing(sign_in(site.base_url, WANG)) as wang:
            assert wang.get("/api/v1/holder/grants").json()["items"] == []
            assert wang.get("/api/v1/holder/usage").json()["items"] == []
            assert wang.post(f"/api/v1/holder/grants/{grant['id']}/withdraw").status_code == 404

        # withdrawn from the grants page's form, with the token the page carries
        grants_page = chen.get("/me/grants")
        assert grants_page.status_code == 200
        form_token = re.search(r'name="csrf" value="([^"]+)"', grants_page.text)
        assert form_token is not None and form_token.group(1) == csrf_token(chen)
        header = chen.headers.pop("X-CSRF-Token")
        try:
            assert chen.post(f"/me/grants/{grant['id']}/withdraw").status_code == 403
            withdrawn = chen.post(
                f"/me/grants/{grant['id']}/withdraw", data={"csrf": form_token.group(1)}
            )
        finally:
            chen.headers["X-CSRF-Token"] = header
        assert withdrawn.status_code == 200 and withdrawn.url.path == "/me/grants"
        assert 'data-status="withdrawn"' in withdrawn.text

        after = department.get(f"/api/v1/licences/{identifier}", params=params)
        assert after.status_code == 403
        assert after.headers["content-type"].startswith("application/problem+json")
        assert after.json()["missing"] == "live_grant"
        assert department.get(f"/api/v1/licences/{identifier}/pdf", params=params).status_code == 403
        assert len(chen.get("/api/v1/holder/usage").json()["items"]) == 1
