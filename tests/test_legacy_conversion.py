"""Converting existing licences (存量证照转换): what a hostile or careless department's file tries
first — another department's type, dates that contradict each other, an issue date in the future
in China, an unknown status or type, a wrong check digit, a changed row sent again — and then
the conversion itself: the identifier of this domain, the original number kept, searchable and
printed, the status carried over to verification and events, and a second run changing nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, func, select

from core.audit import AuditEntry
from core.clock import FixedClock, china_today
from core.db import reading
from licences.identifiers import LicenceIdentifier
from licences.legacy_records import LegacyLicence
from licences.models import Licence
from licences.status_list import listed_entries
from supervision.outbox import OutboxEvent
from tests.conftest import fresh_schema
from tests.domain import Domain, demo_domain
from tests.repo_domains import new_company
from tests.tools import require

# 23:30 UTC is 07:30 the next day in China: a date taken from UTC would be a day behind.
CLOCK = FixedClock(datetime(2026, 12, 5, 23, 30, tzinfo=UTC))
TODAY = date(2026, 12, 6)  # the China date of CLOCK, written out
ELICENCE = [sys.executable, "-c", "from api.cli.main import main; main()"]
NDJSON = {"Content-Type": "application/x-ndjson"}
UPLOAD = 128 * 1024  # the module domain's body limit for this route


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory) -> Domain:
    built = demo_domain(tmp_path_factory, "legacy", clock=CLOCK, max_upload_bytes=UPLOAD)
    assert china_today(built.services.clock.now()) == TODAY
    return built


def food(domain: Domain, number: str, **overrides: Any) -> dict[str, Any]:
    """A record of the market department's earlier system: a food business licence."""
    sample = domain.department(0)["sample_request"]
    record: dict[str, Any] = {
        "original_number": number,
        "licence_type": sample["licence_type"],
        "holder_id_type": "001",
        "holder_id": new_company(),
        "holder_name": "存量餐饮有限公司",
        "fields": sample["fields"],
        "original_issue_date": "2021-03-01",
        "valid_from": "2021-03-01",
        "valid_until": "2026-02-28" if overrides.get("status") == "expired" else "2031-02-28",
        "status": "valid",
    }
    record.update(overrides)
    return record


def convert(domain: Domain, records: list[dict[str, Any]], index: int = 0) -> dict[str, Any]:
    body = "\n".join(json.dumps(r, ensure_ascii=False) for r in records).encode()
    response = domain.client.post(
        "/api/v1/licences:convert", content=body, headers={**domain.auth(index), **NDJSON}
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def counts(domain: Domain) -> tuple[int, int]:
    with reading(domain.services.engine) as session:
        licences = session.exec(select(func.count()).select_from(Licence)).one()
        legacy = session.exec(select(func.count()).select_from(LegacyLicence)).one()
    return int(licences), int(legacy)


def passphrase(domain: Domain) -> str:
    secret = domain.settings.key_passphrase
    assert secret is not None
    return secret.get_secret_value()


def verify(domain: Domain, identifier: str) -> dict[str, Any]:
    pdf = domain.pdf({"identifier": identifier})
    return domain.verify_pdf(pdf)


# --- attacks and bad input ------------------------------------------------------------------


def test_a_department_cannot_convert_another_departments_type(domain: Domain) -> None:
    before = counts(domain)
    result = convert(domain, [food(domain, "SP-HOSTILE-1")], index=1)  # the health department
    (row,) = result["rows"]
    assert row["outcome"] == "refused"
    assert row["error"]["kind"] == "forbidden"
    assert row["error"]["field"] == "licence_type"
    assert row["identifier"] is None
    assert counts(domain) == before


BAD_ROWS: list[tuple[dict[str, Any], str, str]] = [
    ({"valid_from": "2024-01-01", "valid_until": "2023-12-31"}, "valid_until", "invalid"),
    ({"original_issue_date": "2026-12-07"}, "original_issue_date", "invalid"),  # tomorrow
    ({"status": "archived"}, "status", "invalid"),
    ({"status": "expired", "valid_until": "2030-01-01"}, "status", "invalid"),
    ({"licence_type": "11350100003600028N999"}, "licence_type", "not-found"),
    ({"holder_id": "91350100M000100Y44"}, "holder.id", "invalid"),  # wrong check character
    ({"original_issue_date": "2021-02-30"}, "original_issue_date", "invalid"),
    ({"original_number": "X" * 65}, "original_number", "invalid"),
    ({"status": "revoked", "status_reason": "原" * 257}, "status_reason", "invalid"),
    ({"holder_name": "名\u0007"}, "holder_name", "invalid"),
    ({"fields": {"premises": "只有地址"}}, "fields", "invalid"),
]


def test_each_bad_row_is_refused_naming_its_field_and_the_good_rows_go_on(domain: Domain) -> None:
    before = counts(domain)
    records = [food(domain, f"SP-BAD-{i}", **bad) for i, (bad, _, _) in enumerate(BAD_ROWS)]
    records.insert(3, food(domain, "SP-GOOD-AMID-BAD"))
    result = convert(domain, records)
    rows = list(result["rows"])
    good = rows.pop(3)
    assert good["outcome"] == "converted", good
    for row, (bad, field, kind) in zip(rows, BAD_ROWS, strict=True):
        assert row["outcome"] == "refused", (bad, row)
        assert row["error"]["kind"] == kind, (bad, row)
        assert (row["error"]["field"] or "").startswith(field), (bad, row)
        assert row["identifier"] is None
    assert [r["row"] for r in result["rows"]] == list(range(1, len(records) + 1))
    assert result["summary"] == {
        "total": len(records),
        "converted": 1,
        "unchanged": 0,
        "conflict": 0,
        "refused": len(BAD_ROWS),
    }
    assert counts(domain) == (before[0] + 1, before[1] + 1)


def test_a_line_that_is_not_json_is_refused_alone(domain: Domain) -> None:
    body = b'{"original_number": \n' + json.dumps(food(domain, "SP-AFTER-JUNK")).encode()
    response = domain.client.post(
        "/api/v1/licences:convert", content=body, headers={**domain.auth(), **NDJSON}
    )
    assert response.status_code == 200, response.text
    junk, after = response.json()["rows"]
    assert (junk["outcome"], junk["error"]["field"]) == ("refused", "row")
    assert after["outcome"] == "converted"


def test_without_the_issue_scope_or_with_another_body_type_nothing_is_read(
    domain: Domain,
) -> None:
    body = json.dumps(food(domain, "SP-NO-AUTH")).encode()
    response = domain.client.post("/api/v1/licences:convert", content=body, headers=NDJSON)
    assert response.status_code == 401
    response = domain.client.post(
        "/api/v1/licences:convert",
        content=body,
        headers={**domain.auth(), "Content-Type": "application/xml"},
    )
    assert response.status_code == 422
    assert response.json()["field"] == "content-type"


def test_a_body_over_the_limit_or_over_1000_rows_is_refused_whole(domain: Domain) -> None:
    before = counts(domain)
    line = json.dumps(food(domain, "SP-HUGE"), ensure_ascii=False).encode() + b"\n"
    huge = line * (UPLOAD // len(line) + 1)
    response = domain.client.post(
        "/api/v1/licences:convert", content=huge, headers={**domain.auth(), **NDJSON}
    )
    assert response.status_code == 413, response.text
    many = b"{}\n" * 1001
    response = domain.client.post(
        "/api/v1/licences:convert", content=many, headers={**domain.auth(), **NDJSON}
    )
    assert response.status_code == 413, response.text
    assert "1001" in response.json()["detail"]
    assert counts(domain) == before


# --- conversion -----------------------------------------------------------------------------


def test_a_converted_licence_has_our_identifier_keeps_its_number_and_prints_the_note(
    domain: Domain, tmp_path: Path
) -> None:
    result = convert(domain, [food(domain, "SP3501002021000123")])
    (row,) = result["rows"]
    assert row["outcome"] == "converted", row
    identifier = LicenceIdentifier.parse(row["identifier"])
    assert identifier.issuer_code == domain.department(0)["code"]
    pdf = domain.pdf({"identifier": row["identifier"]})
    path = tmp_path / "converted.pdf"
    path.write_bytes(pdf)
    text = subprocess.run(
        [require("pdftotext"), str(path), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "存量证照转换件" in text
    assert "converted from the department's earlier system" in text
    assert "SP3501002021000123" in text
    assert "2021年3月1日" in text  # originally issued
    assert "2026年12月6日" in text  # converted: the China date, not the UTC one
    report = verify(domain, row["identifier"])
    assert report["indication"] == "PASSED", report
    with reading(domain.services.engine) as session:
        entry = session.exec(
            select(AuditEntry)
            .where(AuditEntry.object_id == row["identifier"])
            .where(AuditEntry.action == "licence.issue")
        ).one()
    assert entry.detail["converted_from"] == "SP3501002021000123"


def test_running_the_same_file_again_changes_nothing_and_a_changed_row_is_a_conflict(
    domain: Domain,
) -> None:
    records = [food(domain, "SP-RERUN-1"), food(domain, "SP-RERUN-2")]
    first = convert(domain, records)
    assert [r["outcome"] for r in first["rows"]] == ["converted", "converted"]
    before = counts(domain)
    again = convert(domain, records)
    assert [r["outcome"] for r in again["rows"]] == ["unchanged", "unchanged"]
    assert [r["identifier"] for r in again["rows"]] == [r["identifier"] for r in first["rows"]]
    changed = dict(records[1], fields={**records[1]["fields"], "premises": "改过的地址"})
    third = convert(domain, [records[0], changed])
    assert [r["outcome"] for r in third["rows"]] == ["unchanged", "conflict"]
    conflict = third["rows"][1]
    assert conflict["error"]["field"] == "fields.premises"
    assert conflict["identifier"] == first["rows"][1]["identifier"]
    assert counts(domain) == before
    with reading(domain.services.engine) as session:
        licence = session.get(Licence, conflict["identifier"])
        assert licence is not None
        assert licence.fields["premises"] != "改过的地址"


@pytest.mark.parametrize(
    ("status", "sub_indication", "event"),
    [
        ("revoked", "REVOKED", "licence.revoked"),
        ("cancelled", "REVOKED", "licence.cancelled"),
        ("suspended", "SUSPENDED", "licence.suspended"),
        ("已吊销", "REVOKED", "licence.revoked"),
    ],
)
def test_a_converted_licence_keeps_its_status_for_verifiers_and_subscribers(
    domain: Domain, status: str, sub_indication: str, event: str
) -> None:
    (row,) = convert(domain, [food(domain, f"SP-STATUS-{status}", status=status)])["rows"]
    assert row["outcome"] == "converted", row
    report = verify(domain, row["identifier"])
    assert report["indication"] == "FAILED", report
    assert report["sub_indication"] == sub_indication, report
    with reading(domain.services.engine) as session:
        kinds = session.exec(
            select(OutboxEvent.kind)
            .where(OutboxEvent.licence == row["identifier"])
            .order_by(col(OutboxEvent.id))
        ).all()
    assert list(kinds) == ["licence.issued", event]
    with reading(domain.services.engine) as session:
        licence = session.get(Licence, row["identifier"])
        assert licence is not None and licence.status_index is not None
        listed = dict(listed_entries(session))
    # the status list's entry: 1 revoked or cancelled, 2 suspended (docs/status-list.md)
    assert int(listed[licence.status_index]) == (2 if sub_indication == "SUSPENDED" else 1)


def test_an_expired_licence_is_converted_with_its_dates_and_verifies_expired(
    domain: Domain,
) -> None:
    (row,) = convert(domain, [food(domain, "SP-EXPIRED", status="expired")])["rows"]
    assert row["outcome"] == "converted", row
    report = verify(domain, row["identifier"])
    assert (report["indication"], report["sub_indication"]) == ("FAILED", "EXPIRED"), report
    with reading(domain.services.engine) as session:
        licence = session.get(Licence, row["identifier"])
        assert licence is not None
        assert licence.valid_until == date(2026, 2, 28)
        assert licence.status == "valid"  # expiry is computed, never stored


def test_csv_with_field_columns_converts_like_ndjson(domain: Domain) -> None:
    sample = domain.department(0)["sample_request"]
    header = "original_number,licence_type,holder_id,holder_name,original_issue_date,status"
    fields = sample["fields"]
    header += "," + ",".join(f"field.{name}" for name in fields)
    line = f"SP-CSV-1,{sample['licence_type']},{new_company()},存量食品商行,2022-05-06,valid,"
    line += ",".join(fields.values())
    response = domain.client.post(
        "/api/v1/licences:convert",
        content=f"{header}\n{line}\n".encode(),
        headers={**domain.auth(), "Content-Type": "text/csv"},
    )
    assert response.status_code == 200, response.text
    (row,) = response.json()["rows"]
    assert (row["row"], row["outcome"]) == (2, "converted"), row
    with reading(domain.services.engine) as session:
        licence = session.get(Licence, row["identifier"])
        assert licence is not None
        # valid_from defaults to the original issue date; the type's 5-year term follows
        assert (licence.valid_from, licence.valid_until) == (date(2022, 5, 6), date(2027, 5, 5))


def test_search_by_original_number_finds_only_the_departments_own(domain: Domain) -> None:
    (row,) = convert(domain, [food(domain, "SP-SEARCH-77")])["rows"]
    found = domain.client.get(
        "/api/v1/licences", params={"original_number": "SP-SEARCH-77"}, headers=domain.auth()
    )
    assert found.status_code == 200, found.text
    assert [i["identifier"] for i in found.json()["items"]] == [row["identifier"]]
    other = domain.client.get(
        "/api/v1/licences", params={"original_number": "SP-SEARCH-77"}, headers=domain.auth(1)
    )
    assert other.status_code == 200, other.text
    assert other.json()["items"] == []


def test_the_cli_converts_a_file_and_a_second_run_reports_unchanged(
    domain: Domain, tmp_path: Path
) -> None:
    department = domain.department(0)["code"]
    records = [food(domain, "SP-CLI-1"), food(domain, "SP-CLI-2", status="bogus")]
    path = tmp_path / "old-system.ndjson"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n")
    command = [*ELICENCE, "import", "--legacy", str(path), "--department", department]
    data_dir = str(domain.settings.data_dir)
    command += ["--data-dir", data_dir]
    env = {**os.environ, "ELICENCE_KEY_PASSPHRASE": passphrase(domain)}
    first = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert first.returncode == 1, first.stderr  # the bogus status is refused
    reports = [json.loads(line) for line in first.stdout.splitlines()]
    assert [r["outcome"] for r in reports] == ["converted", "refused"]
    assert reports[1]["error"]["field"] == "status"
    assert "refused 1" in first.stderr
    again = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert [json.loads(line)["outcome"] for line in again.stdout.splitlines()] == [
        "unchanged",
        "refused",
    ]
    found = subprocess.run(
        [*ELICENCE, "export", "--original-number", "SP-CLI-1", "--data-dir", data_dir],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert found.returncode == 0, found.stderr
    assert reports[0]["identifier"] in found.stdout


def test_the_cli_without_a_department_refuses_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "x.ndjson"
    path.write_text("{}\n")
    done = subprocess.run(
        [*ELICENCE, "import", "--legacy", str(path), "--data-dir", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "--department" in done.stderr


def test_a_day_in_china_is_the_day_the_future_check_uses() -> None:
    """07:30 in China on 6 December is 23:30 UTC on 5 December: an issue date of the 6th is
    today, not the future."""
    from licences.legacy import check

    record = check(
        {
            "original_number": "N1",
            "licence_type": "T",
            "holder_id": "x",
            "holder_name": "y",
            "original_issue_date": "2026-12-06",
        },
        china_today(CLOCK.now()),
    )
    assert record.original_issue_date == TODAY
    assert CLOCK.now().date() == TODAY - timedelta(days=1)


@pytest.mark.postgres
def test_on_postgresql_two_runs_of_one_file_at_once_convert_each_row_once(
    postgres_url: str, tmp_path: Path
) -> None:
    """A department that starts the same file twice (two operators, a retried job) gets one
    licence per original number: the run that loses the race reports the row ``unchanged``."""
    from concurrent.futures import ThreadPoolExecutor

    from licences import legacy
    from tests.domain import build_domain, make_settings

    schema = "t_legacy"
    url = fresh_schema(postgres_url, schema)
    domain = build_domain(make_settings(tmp_path / "data", database_url=url))
    desk = domain.services.legacy
    records = [food(domain, f"SP-RACE-{n}") for n in range(4)]
    text_body = "\n".join(json.dumps(r, ensure_ascii=False) for r in records)
    department = domain.department(0)["code"]

    def run(_: int) -> list[legacy.RowReport]:
        rows = legacy.read(text_body, csv_format=False, today=desk.today())
        return list(
            desk.convert_all(rows, department_code=department, actor="test", request_id=None)
        )

    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(run, range(2))
    for a, b in zip(first, second, strict=True):
        assert {a.outcome, b.outcome} <= {legacy.Outcome.CONVERTED, legacy.Outcome.UNCHANGED}
        assert [a.outcome, b.outcome].count(legacy.Outcome.CONVERTED) == 1, (a, b)
        assert a.identifier == b.identifier
    with reading(domain.services.engine) as session:
        numbers = session.exec(
            select(LegacyLicence.original_number).order_by(col(LegacyLicence.original_number))
        ).all()
    assert list(numbers) == [f"SP-RACE-{n}" for n in range(4)]
    domain.services.close()


@pytest.mark.slow
def test_the_conversion_bench_runs_its_smoke_path() -> None:
    """``python -m bench.legacy --smoke`` goes through every measured path (no timing asserted):
    sealed conversion, the re-run, reading, and the bookkeeping of rows converted before."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.legacy", "--smoke"],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert (figures["rows"], figures["sealed_rows"]) == (200, 3)
    assert figures["bookkeeping_rows_per_s"] > 0 and figures["peak_mib"] > 0
