"""The operator's catalogue, batch, export and import commands.

They run in this process through ``api.cli.main`` (the entry point, with its one-line errors
and exit codes) to save an interpreter start per command; ``test_cli`` covers real processes.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.repo_domains import new_company
from tests.test_cli import run as run_process

pytestmark = pytest.mark.slow  # each command is a process of its own

MARKET = "1135010000360001XN"
FOOD = MARKET + "001"


def run(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    from api.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    argv = ["elicence", *args, "--data-dir", str(data_dir)]
    with (
        pytest.MonkeyPatch.context() as patch,
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        patch.setattr(sys, "argv", argv)
        patch.setenv("ELICENCE_KEY_PASSPHRASE", "cli-test")
        patch.setenv("ELICENCE_PUBLIC_BASE_URL", "https://licence.example.gov.cn")
        try:
            main()
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli-repo") / "var"
    result = run_process(path, "init", "--demo")
    assert result.returncode == 0, result.stderr
    return path


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("elicence:"), stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_catalogue_list_show_add_withdraw(data_dir: Path, tmp_path: Path) -> None:
    listed = run(data_dir, "catalogue", "list")
    assert listed.returncode == 0, listed.stderr
    assert f"{FOOD}\tv1\tactive\t食品经营许可证" in listed.stdout
    shown = json.loads(run(data_dir, "catalogue", "show", FOOD).stdout)
    assert shown["validity_rule"] == "fixed" and shown["versions"] == [1]

    definition = {
        "code": MARKET + "201",
        "name": "户外广告登记证",
        "authority_code": MARKET,
        "authority_name": "示范市市场监督管理局",
        "authority_level": "municipal",
        "holder_category": "legal_person",
        "validity_years": 2,
        "service_items": ["000125007000"],
        "field_schema": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"site": {"type": "string", "title": "设置地点", "maxLength": 64}},
        },
    }
    file = tmp_path / "type.json"
    file.write_text(json.dumps(definition, ensure_ascii=False), encoding="utf-8")
    added = run(data_dir, "catalogue", "add", "--file", str(file))
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["issuing_level"] == "municipal"

    file.write_text(json.dumps({**definition, "code": MARKET[:-1] + "M202"}), encoding="utf-8")
    bad = run(data_dir, "catalogue", "add", "--file", str(file))
    assert bad.returncode == 1
    line = one_error_line(bad.stderr)
    assert line.endswith("[code]") and "GB 32100" in line

    withdrawn = run(data_dir, "catalogue", "withdraw", MARKET + "201", "--reason", "试点结束")
    assert json.loads(withdrawn.stdout)["status"] == "withdrawn"


def test_cli_refuses_a_bad_id_naming_field_and_rule(data_dir: Path, tmp_path: Path) -> None:
    result = run(
        data_dir, "issue", "--type", FOOD, "--holder-id", "91350100M000100Y44",
        "--holder-name", "某公司", "--field", "premises=x", "--field", "business_form=x",
        "--field", "scope=x", "--out", str(tmp_path / "x.pdf"),
    )  # fmt: skip
    line = one_error_line(result.stderr)
    assert result.returncode == 1 and "[holder.id]" in line and "GB 32100" in line


def test_batch_csv_issues_good_rows_and_summarises_failures(data_dir: Path, tmp_path: Path) -> None:
    good = [new_company(), new_company()]
    rows = [
        [FOOD, good[0], "批量甲有限公司", "一号", "餐饮服务", "热食类"],
        [FOOD, "91350100M000100Y44", "坏代码有限公司", "二号", "餐饮服务", "热食类"],
        [FOOD, good[1], "批量乙有限公司", "三号", "餐饮服务", "热食类"],
        [FOOD, new_company(), "缺字段有限公司", "", "餐饮服务", "热食类"],
    ]
    file = tmp_path / "batch.csv"
    with file.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["licence_type", "holder_id", "holder_name", "field.premises",
                         "field.business_form", "field.scope"])  # fmt: skip
        writer.writerows(rows)
    first = run(data_dir, "issue", "--batch", str(file))
    assert first.returncode == 1, first.stderr
    report = json.loads(first.stdout)
    assert [r["ok"] for r in report["rows"]] == [True, False, True, False]
    assert [r["line"] for r in report["rows"]] == [2, 3, 4, 5]
    assert report["rows"][1]["field"] == "holder.id"
    assert report["summary"]["issued"] == 2 and report["summary"]["failed"] == 2
    assert "holder.id (invalid)" in first.stderr and "fields (invalid)" in first.stderr

    again = json.loads(run(data_dir, "issue", "--batch", str(file)).stdout)
    assert again["summary"]["issued"] == 0 and again["summary"]["replayed"] == 2
    assert [r.get("identifier") for r in again["rows"]] == [
        r.get("identifier") for r in report["rows"]
    ]

    exported = tmp_path / "export.json"
    result = run(
        data_dir, "export", "--department", MARKET, "--holder-id", good[0], "--out", str(exported)
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(exported.read_text(encoding="utf-8"))
    (record,) = document["证照"]
    assert record["持证主体代码"] == good[0] and record["持证主体"] == "批量甲有限公司"
    single = json.loads(run(data_dir, "export", record["证照标识"]).stdout)
    assert single["证照标识"] == record["证照标识"]

    imported = run(data_dir, "import", str(exported))
    assert imported.returncode == 0, imported.stderr
    (row,) = json.loads(imported.stdout)["rows"]
    assert row["ok"] and row["identifier"] != record["证照标识"] and not row["replayed"]
    replayed = json.loads(run(data_dir, "import", str(exported)).stdout)["rows"][0]
    assert replayed["replayed"] and replayed["identifier"] == row["identifier"]
