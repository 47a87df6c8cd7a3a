"""One date rule: a licence's validity dates are dates in China (Asia/Shanghai), whatever the
server's clock zone. A licence valid until day D is valid at D 23:59 Beijing time and expired at
D+1 00:01 Beijing time (still D 16:01 in UTC), on every path that decides validity: PDF and QR
verification online, QR verification offline, presentation minting, search and the lifecycle.

The clock is pinned (one module domain, moved to each minute in turn), so these tests mean the
same at any hour and under any host time zone."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from core.clock import CHINA, FixedClock, china_today
from tests.domain import Domain, demo_domain
from tests.repo_domains import food_body, issue, new_company
from verify.offline import load_qr_keys, verify_offline

START = datetime.now(UTC).replace(microsecond=0)
LAST_DAY = china_today(START) + timedelta(days=1)  # D: the last day of the test licences
LAST_MINUTE = datetime.combine(LAST_DAY, time(23, 59), tzinfo=CHINA)  # D 15:59 UTC
FIRST_MINUTE_AFTER = datetime.combine(LAST_DAY + timedelta(days=1), time(0, 1), tzinfo=CHINA)
REASON = {"reason": "测试原因 / test reason"}


def test_the_pinned_minutes_straddle_midnight_in_china_not_in_utc() -> None:
    assert FIRST_MINUTE_AFTER - LAST_MINUTE == timedelta(minutes=2)
    assert FIRST_MINUTE_AFTER.astimezone(UTC).date() == LAST_DAY  # UTC has not turned the day
    assert china_today(LAST_MINUTE.astimezone(UTC)) == LAST_DAY
    assert china_today(FIRST_MINUTE_AFTER.astimezone(UTC)) == LAST_DAY + timedelta(days=1)


@pytest.fixture(scope="module")
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory, clock: FixedClock) -> Domain:
    return demo_domain(tmp_path_factory, "china-date", clock=clock)


def at(clock: FixedClock, moment: datetime) -> None:
    clock.advance(moment.astimezone(UTC) - clock.now())


def issue_until_last_day(
    domain: Domain, clock: FixedClock, holder: str | None = None
) -> dict[str, Any]:
    """A food business licence of department 0 whose term ends on ``LAST_DAY``."""
    at(clock, START)
    body = food_body(
        domain,
        holder={"id_type": "001", "id": holder or new_company(), "name": "测试餐饮有限公司"},
        valid_from=china_today(START).isoformat(),
        valid_until=LAST_DAY.isoformat(),
    )
    return issue(domain, body)


@pytest.fixture(scope="module")
def issued(domain: Domain, clock: FixedClock) -> dict[str, Any]:
    return issue_until_last_day(domain, clock)


def verify_qr(domain: Domain, text: str) -> dict[str, Any]:
    response = domain.client.post("/api/v1/verify", json={"qr": text})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def outcome(report: dict[str, Any]) -> tuple[str, str | None]:
    return report["indication"], report["sub_indication"]


def test_pdf_verification(domain: Domain, clock: FixedClock, issued: dict[str, Any]) -> None:
    pdf = domain.pdf(issued)
    at(clock, LAST_MINUTE)
    report = domain.verify_pdf(pdf)
    assert outcome(report) == ("PASSED", None), report
    assert report["licence"]["status"] == "valid"
    at(clock, FIRST_MINUTE_AFTER)
    report = domain.verify_pdf(pdf)
    assert outcome(report) == ("FAILED", "EXPIRED"), report
    assert report["licence"]["status"] == "expired"


def test_qr_verification_online(domain: Domain, clock: FixedClock, issued: dict[str, Any]) -> None:
    url = issued["links"]["verify"]
    at(clock, LAST_MINUTE)
    report = verify_qr(domain, url)
    assert outcome(report) == ("PASSED", None), report
    assert report["licence"]["status"] == "valid"
    at(clock, FIRST_MINUTE_AFTER)
    report = verify_qr(domain, url)
    assert outcome(report) == ("FAILED", "EXPIRED"), report
    assert report["licence"]["status"] == "expired"


def test_qr_verification_offline(
    domain: Domain, clock: FixedClock, issued: dict[str, Any], tmp_path: Path
) -> None:
    at(clock, LAST_MINUTE)  # the verifier downloads the signed trust list while online
    document = domain.client.get("/pki/trust-list").json()
    signer = x509.load_pem_x509_certificate(document["signer"]["certificate"].encode())
    path = tmp_path / "trust-list.json"
    path.write_text(json.dumps(document))
    trusted = load_qr_keys(path, signer.fingerprint(hashes.SHA256()).hex())
    url = issued["links"]["verify"]
    # Within its dates a printed licence is as good as offline can tell: revocation needs the
    # repository, so never PASSED, but not EXPIRED either.
    report = verify_offline(url, trusted, LAST_MINUTE.astimezone(UTC)).to_json()
    assert outcome(report) == ("INDETERMINATE", "TRY_LATER"), report
    assert [c["name"] for c in report["checks"] if c["result"] == "passed"][-1] == "validity"
    report = verify_offline(url, trusted, FIRST_MINUTE_AFTER.astimezone(UTC)).to_json()
    assert outcome(report) == ("FAILED", "EXPIRED"), report


def test_presentation_minting(domain: Domain, clock: FixedClock, issued: dict[str, Any]) -> None:
    path = f"/api/v1/licences/{issued['identifier']}/presentations"
    at(clock, LAST_MINUTE)
    shown = domain.client.post(path, headers=domain.auth())
    assert shown.status_code == 201, shown.text
    assert outcome(verify_qr(domain, shown.json()["qr"])) == ("PASSED", None)
    link = domain.client.post(
        f"/api/v1/licences/{issued['identifier']}/holder-links", headers=domain.auth()
    )
    assert link.status_code == 201, link.text
    secret = link.json()["url"].rsplit("/", 1)[1]
    page = domain.client.get(f"/h/present/{secret}")
    assert page.status_code == 200 and "有效 / " in page.text

    at(clock, FIRST_MINUTE_AFTER)
    refused = domain.client.post(path, headers=domain.auth())
    assert refused.status_code == 409, refused.text
    assert refused.json()["field"] == "identifier"
    assert "expired" in refused.json()["detail"]
    holder = domain.client.get(f"/h/present/{secret}/qr")
    assert holder.status_code == 409, holder.text
    page = domain.client.get(f"/h/present/{secret}")
    assert page.status_code == 200 and "已过期 / " in page.text


def search(domain: Domain, holder: str, status: str) -> list[str]:
    response = domain.client.get(
        "/api/v1/licences",
        params={"holder_id": holder, "holder_id_type": "001", "status": status},
        headers=domain.auth(),
    )
    assert response.status_code == 200, response.text
    return [(item["identifier"], item["status"]) for item in response.json()["items"]]  # type: ignore[misc]


def test_search_by_status(domain: Domain, clock: FixedClock) -> None:
    holder = new_company()
    identifier = issue_until_last_day(domain, clock, holder)["identifier"]
    at(clock, LAST_MINUTE)
    assert search(domain, holder, "valid") == [(identifier, "valid")]
    assert search(domain, holder, "expired") == []
    at(clock, FIRST_MINUTE_AFTER)
    assert search(domain, holder, "valid") == []
    assert search(domain, holder, "expired") == [(identifier, "expired")]


def act(domain: Domain, identifier: str, action: str, body: Any = None) -> Any:
    return domain.client.post(
        f"/api/v1/licences/{identifier}/{action}",
        json=REASON if body is None else body,
        headers=domain.auth(),
    )


def test_lifecycle(domain: Domain, clock: FixedClock) -> None:
    first, second, third = (issue_until_last_day(domain, clock)["identifier"] for _ in range(3))
    at(clock, LAST_MINUTE)
    suspended = act(domain, first, "suspend")
    assert suspended.status_code == 200, suspended.text
    renewed = act(domain, third, "renew", {}).json()
    record = domain.client.get(f"/api/v1/licences/{renewed['identifier']}", headers=domain.auth())
    assert record.json()["valid_from"] == LAST_DAY.isoformat()

    at(clock, FIRST_MINUTE_AFTER)
    record = domain.client.get(f"/api/v1/licences/{second}", headers=domain.auth())
    assert record.json()["status"] == "expired"
    refused = act(domain, second, "suspend")
    assert refused.status_code == 409, refused.text
    assert refused.json()["current_status"] == "expired"
    renewed = act(domain, second, "renew", {})
    assert renewed.status_code == 201, renewed.text
    record = domain.client.get(
        f"/api/v1/licences/{renewed.json()['identifier']}", headers=domain.auth()
    )
    assert record.json()["valid_from"] == (LAST_DAY + timedelta(days=1)).isoformat()
    assert record.json()["status"] == "valid"


def test_issuance_starts_today_in_china(domain: Domain, clock: FixedClock) -> None:
    at(clock, FIRST_MINUTE_AFTER)
    body = food_body(domain, valid_until=(LAST_DAY + timedelta(days=30)).isoformat())
    del body["valid_from"]
    identifier = issue(domain, body)["identifier"]
    record = domain.client.get(f"/api/v1/licences/{identifier}", headers=domain.auth()).json()
    assert record["valid_from"] == (LAST_DAY + timedelta(days=1)).isoformat()
    refused = domain.client.post(
        "/api/v1/licences",
        json=food_body(domain, valid_from=None, valid_until=LAST_DAY.isoformat()),
        headers=domain.auth(),
    )
    assert refused.status_code == 422 and refused.json()["field"] == "valid_until"


def test_china_today_refuses_a_naive_time() -> None:
    with pytest.raises(ValueError):
        china_today(datetime(2027, 1, 5, 16, 30))  # naive: refused
    assert china_today(datetime(2027, 1, 5, 16, 30, tzinfo=UTC)) == date(2027, 1, 6)
