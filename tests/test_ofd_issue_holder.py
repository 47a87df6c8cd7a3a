"""A holder downloads their licence's OFD where they download its PDF: the JSON API and the
licence page. Another holder, or nobody signed in, gets nothing of it — exactly what they get
for the PDF. The demo's operator certificate (郑雅琴) is issued as PDF and OFD (api.ops.demo)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from typing import Any

import httpx
import pytest

from api.ops.demo import OPERATOR_CERTIFICATE
from core.db import reading
from licences.models import LicenceOfd
from tests.holder_login import CHEN, HolderSite, sign_in, start_site

ZHENG = "350105198811230023"  # 郑雅琴, holder of the demo operator certificate


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HolderSite]:
    with start_site(tmp_path_factory.mktemp("ofd-holder") / "data") as built:
        yield built


@pytest.fixture(scope="module")
def licence(site: HolderSite) -> dict[str, Any]:
    with closing(sign_in(site.base_url, ZHENG)) as client:
        listed = client.get("/api/v1/holder/licences").json()["licences"]
    return next(x for x in listed if x["type_code"] == OPERATOR_CERTIFICATE["code"])


def stored(site: HolderSite, identifier: str) -> bytes:
    with reading(site.services.engine) as session:
        row = session.get(LicenceOfd, identifier)
        assert row is not None
        return row.ofd


@pytest.mark.slow
def test_another_holder_or_nobody_gets_no_ofd_as_they_get_no_pdf(
    site: HolderSite, licence: dict[str, Any]
) -> None:
    identifier = licence["identifier"]
    with closing(sign_in(site.base_url, CHEN)) as other:
        for base in (f"/api/v1/holder/licences/{identifier}", f"/me/licences/{identifier}"):
            ofd, pdf = other.get(f"{base}/document.ofd"), other.get(f"{base}/pdf")
            assert ofd.status_code == pdf.status_code == 404, base
            assert not ofd.content.startswith(b"PK")
    with httpx.Client(base_url=site.base_url) as nobody:
        api = nobody.get(f"/api/v1/holder/licences/{identifier}/document.ofd")
        page = nobody.get(f"/me/licences/{identifier}/document.ofd")
    assert api.status_code == 401 and page.status_code == 401
    assert not api.content.startswith(b"PK") and not page.content.startswith(b"PK")


@pytest.mark.slow
def test_the_holder_downloads_the_ofd_beside_the_pdf(
    site: HolderSite, licence: dict[str, Any]
) -> None:
    identifier = licence["identifier"]
    expected = stored(site, identifier)
    with closing(sign_in(site.base_url, ZHENG)) as client:
        for url in (
            f"/api/v1/holder/licences/{identifier}/document.ofd",
            f"/me/licences/{identifier}/document.ofd",
        ):
            response = client.get(url)
            assert response.status_code == 200, url
            assert response.headers["content-type"] == "application/ofd"
            assert response.headers["cache-control"] == "no-store"
            assert response.content == expected
        page = client.get(f"/me/licences/{identifier}").text
    assert f'href="/me/licences/{identifier}/document.ofd" id="download-ofd"' in page
    assert f'href="/me/licences/{identifier}/pdf" id="download"' in page


@pytest.mark.slow
def test_a_pdf_only_licences_page_offers_no_ofd(site: HolderSite) -> None:
    with closing(sign_in(site.base_url, CHEN)) as client:
        listed = client.get("/api/v1/holder/licences").json()["licences"]
        identifier = listed[0]["identifier"]
        page = client.get(f"/me/licences/{identifier}").text
        assert client.get(f"/api/v1/holder/licences/{identifier}/document.ofd").status_code == 404
    assert 'id="download-ofd"' not in page and 'id="download"' in page
