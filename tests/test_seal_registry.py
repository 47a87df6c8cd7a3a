"""Issue 7, the seals registry: departments, seals as records, authorisation, lifecycle,
uploaded images, the seal's appearance on the page, and what verification says about it.

One demo domain for the module. Department 0 (market) creates a business seal and uploads an
image; department 1 (health) takes its demo seal through every lifecycle step. Each step is
checked through the API, and where a certificate changes, through CRL/OCSP-facing rows and the
trust list too.
"""

from __future__ import annotations

import html
import io
import json
import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pikepdf
import pytest
from PIL import Image, ImageDraw
from sqlmodel import select

from core.audit import AuditEntry
from core.db import transaction
from seals.models import Seal
from tests.domain import Domain, demo_domain
from tests.tools import require

MANAGE = "/api/v1/seals"
CLI = [sys.executable, "-c", "from api.cli.main import main; main()"]


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory) -> Domain:
    return demo_domain(tmp_path_factory, "registry")


def seals_of(domain: Domain, index: int) -> list[dict[str, Any]]:
    response = domain.client.get(MANAGE, headers=domain.auth(index))
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def demo_seal(domain: Domain, index: int) -> dict[str, Any]:
    return next(s for s in seals_of(domain, index) if s["seal_type"] == "02")


def post(domain: Domain, path: str, index: int, **kwargs: Any) -> Any:
    return domain.client.post(path, headers=domain.auth(index), **kwargs)


def try_issue(domain: Domain, index: int) -> Any:
    body = domain.department(index)["sample_request"]
    return domain.client.post("/api/v1/licences", json=body, headers=domain.auth(index))


def actions(domain: Domain, seal_code: str) -> list[str]:
    with transaction(domain.services.engine) as session:
        rows = session.exec(
            select(AuditEntry.action).where(
                AuditEntry.object_type == "seal", AuditEntry.object_id == seal_code
            )
        ).all()
    return list(rows)


# --- departments ---------------------------------------------------------------------------


def test_department_public_information(domain: Domain) -> None:
    code = domain.department(0)["code"]
    response = domain.client.get(f"/api/v1/departments/{code}")  # no credentials needed
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["name"] == domain.department(0)["name"]
    assert body["division_code"] == "350100" and body["level"] == "municipal"
    assert body["parent_code"] is None
    assert [s["seal_type_label"] for s in body["seals"]] == ["电子证照专用章"]
    assert "key_ref" not in body["seals"][0] and "image_png" not in body["seals"][0]
    assert domain.client.get("/api/v1/departments/91350100M000100Y43").status_code == 404


def test_department_codes_are_checked(domain: Domain) -> None:
    from core.errors import Conflict, InvalidInput, NotFound

    add = domain.services.seals.add_department
    with transaction(domain.services.engine) as session:
        kwargs = {"actor": "t", "name": "示范区分局", "level": "county"}
        with pytest.raises(InvalidInput) as bad_division:
            add(session, code="11350102MB0000001A", division_code="35010", **kwargs)
        assert bad_division.value.field == "division_code"
        with pytest.raises(InvalidInput) as bad_code:
            add(session, code="1135010I", division_code="350102", **kwargs)
        assert bad_code.value.field == "code"
        with pytest.raises(NotFound):
            add(
                session,
                code="11350102MB0000001A",
                division_code="350102",
                parent_code="11350100MB0000009X",
                **kwargs,
            )
        with pytest.raises(Conflict):
            add(
                session,
                code=domain.department(0)["code"],
                division_code="350100",
                **kwargs,
            )


# --- seals: create, read, authorise ---------------------------------------------------------


def test_demo_seal_is_authorised_for_its_departments_types(domain: Domain) -> None:
    seal = demo_seal(domain, 0)
    own = domain.department(0)["sample_request"]["licence_type"]
    # the demo department's types: its sample type and a second one with a page layout (…002)
    assert seal["licence_types"] == [own, own[:-3] + "002"]
    assert seal["seal_type_label"] == "电子证照专用章" and seal["status_label"] == "有效"
    assert seal["width_mm"] == 42.0 and seal["key_ref"].endswith(":v1")
    other = domain.client.get(f"{MANAGE}/{seal['code']}", headers=domain.auth(1))
    assert other.status_code == 403


def test_create_a_business_seal_authorised_for_a_type(domain: Domain) -> None:
    own_type = domain.department(0)["sample_request"]["licence_type"]
    response = post(
        domain,
        MANAGE,
        0,
        json={"seal_type": "03", "name": "行政审批业务专用章", "licence_types": [own_type]},
    )
    assert response.status_code == 201, response.text
    seal = response.json()
    assert seal["code"].startswith("35010003") and len(seal["code"]) == 14
    assert seal["seal_type_label"] == "业务专用章" and seal["licence_types"] == [own_type]
    assert len(seal["certificates"]) == 1 and seal["certificates"][0]["status"] == "good"
    assert {"seal.create", "seal.authorise"} <= set(actions(domain, seal["code"]))
    trust_list = domain.client.get("/pki/trust-list").json()
    assert seal["code"] in {s["seal"] for s in trust_list["seals"]}
    # a type the department may not issue is refused; a credential without the scope too
    foreign = domain.department(1)["sample_request"]["licence_type"]
    refused = post(domain, MANAGE, 0, json={"seal_type": "03", "licence_types": [foreign]})
    assert refused.status_code == 403, refused.text
    assert post(domain, MANAGE, 0, json={"seal_type": "07"}).status_code == 422


def test_issuing_needs_a_seal_authorised_for_the_type(domain: Domain) -> None:
    seal = demo_seal(domain, 1)
    type_code = domain.department(1)["sample_request"]["licence_type"]
    path = f"{MANAGE}/{seal['code']}/authorisations/{type_code}"
    withdrawn = domain.client.delete(path, headers=domain.auth(1))
    assert withdrawn.status_code == 200
    kept = withdrawn.json()["licence_types"]
    assert type_code not in kept and kept == [type_code[:-3] + "002"]  # its other demo type
    refused = try_issue(domain, 1)
    assert refused.status_code == 403, refused.text
    assert "未获授权" in refused.text or "authorised" in refused.text
    restored = domain.client.put(path, headers=domain.auth(1))
    assert restored.status_code == 200
    assert restored.json()["licence_types"] == [type_code, *kept]
    assert try_issue(domain, 1).status_code == 201
    assert {"seal.authorise", "seal.deauthorise"} <= set(actions(domain, seal["code"]))
    # another department cannot touch the seal's authorisations
    assert domain.client.delete(path, headers=domain.auth(0)).status_code == 403


# --- lifecycle ----------------------------------------------------------------------------


def test_suspend_refuses_issuance_and_resume_restores_it(domain: Domain) -> None:
    seal = demo_seal(domain, 1)
    suspended = post(domain, f"{MANAGE}/{seal['code']}/suspend", 1)
    assert suspended.status_code == 200, suspended.text
    assert suspended.json()["status"] == "suspended"
    assert {c["status"] for c in suspended.json()["certificates"]} == {"hold"}
    refused = try_issue(domain, 1)
    assert refused.status_code == 403 and "已暂停" in refused.text and "suspended" in refused.text
    assert post(domain, f"{MANAGE}/{seal['code']}/suspend", 1).status_code == 409
    assert post(domain, f"{MANAGE}/{seal['code']}/renew", 1).status_code == 409
    resumed = post(domain, f"{MANAGE}/{seal['code']}/resume", 1)
    assert resumed.status_code == 200 and resumed.json()["status"] == "active"
    assert try_issue(domain, 1).status_code == 201
    assert {"seal.suspend", "seal.resume"} <= set(actions(domain, seal["code"]))


def test_expired_seal_is_refused_until_renewed(domain: Domain) -> None:
    seal = demo_seal(domain, 1)
    before = try_issue(domain, 1).json()
    with transaction(domain.services.engine) as session:
        row = session.get(Seal, seal["code"])
        assert row is not None
        row.valid_until = domain.services.clock.now() - timedelta(days=1)
        session.add(row)
    refused = try_issue(domain, 1)
    assert refused.status_code == 403 and "已过有效期" in refused.text and "expired" in refused.text

    renewed = post(domain, f"{MANAGE}/{seal['code']}/renew", 1)
    assert renewed.status_code == 200, renewed.text
    body = renewed.json()
    assert body["certificate_serial"] != seal["certificate_serial"]
    assert body["key_ref"].endswith(":v2") and body["valid_until"] > seal["valid_from"]
    assert {c["serial"]: c["status"] for c in body["certificates"]} == {
        seal["certificate_serial"]: "good",
        body["certificate_serial"]: "good",
    }
    assert "seal.renew" in actions(domain, seal["code"])
    listed = domain.client.get("/pki/trust-list").json()["seals"]
    assert body["certificate_serial"] in {s["serial"] for s in listed}

    after = domain.issue(1)
    report = domain.verify_pdf(domain.pdf(after, 1))
    assert report["indication"] == "PASSED", report
    assert report["seal"]["certificate_serial"] == body["certificate_serial"]
    old = domain.verify_pdf(domain.pdf(before, 1))  # sealed with the old certificate
    assert old["indication"] == "PASSED", old


def test_revoked_seal_is_refused_and_stays_revoked(domain: Domain) -> None:
    # department 1's seal, after the renewal above: revoke every certificate of it
    seal = demo_seal(domain, 1)
    revoked = post(domain, f"{MANAGE}/{seal['code']}/revoke", 1, json={"reason": "superseded"})
    assert revoked.status_code == 200, revoked.text
    assert {c["status"] for c in revoked.json()["certificates"]} == {"revoked"}
    refused = try_issue(domain, 1)
    assert refused.status_code == 403 and "已吊销" in refused.text and "revoked" in refused.text
    for step in ("suspend", "resume", "renew"):
        assert post(domain, f"{MANAGE}/{seal['code']}/{step}", 1).status_code == 409, step
    assert "seal.revoke" in actions(domain, seal["code"])
    public = domain.client.get(f"/api/v1/departments/{domain.department(1)['code']}").json()
    assert public["seals"][0]["status_label"] == "已吊销"


# --- uploaded image -----------------------------------------------------------------------


def _png(size: int = 400, *, transparent: bool = True) -> bytes:
    image = Image.new("RGBA", (size, size), (255, 255, 255, 0 if transparent else 255))
    ImageDraw.Draw(image).ellipse((8, 8, size - 8, size - 8), outline=(215, 0, 15, 255), width=12)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def test_uploaded_seal_image(domain: Domain) -> None:
    code = demo_seal(domain, 0)["code"]
    path = f"{MANAGE}/{code}/image"

    def put(data: bytes, content_type: str = "image/png") -> Any:
        headers = {**domain.auth(0), "Content-Type": content_type}
        return domain.client.put(path, content=data, headers=headers)

    assert put(b"GIF89a" + b"\0" * 100).status_code == 422
    assert put(_png(transparent=False)).json()["field"] == "image"
    assert put(_png(), "image/jpeg").status_code == 422
    assert put(b"\x89PNG\r\n\x1a\n" + b"\0" * 2_000_001).status_code == 413
    other = domain.client.put(
        path, content=_png(), headers={**domain.auth(1), "Content-Type": "image/png"}
    )
    assert other.status_code == 403
    uploaded = put(_png())
    assert uploaded.status_code == 200, uploaded.text
    with transaction(domain.services.engine) as session:
        row = session.get(Seal, code)
        assert row is not None and row.image_png == _png()
    assert "seal.image" in actions(domain, code)


# --- appearance and verification ----------------------------------------------------------


def _words(pdf: Path, height: float) -> list[tuple[str, tuple[float, float, float, float]]]:
    out = subprocess.run(
        [require("pdftotext"), "-bbox", str(pdf), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    pattern = r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">(.*?)</word>'
    return [
        (html.unescape(t), (float(a), height - float(d), float(c), height - float(b)))
        for a, b, c, d, t in re.findall(pattern, out)
    ]


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_seal_appears_over_the_issuer_clear_of_qr_and_text(domain: Domain, tmp_path: Path) -> None:
    import zxingcpp

    pdftoppm = require("pdftoppm")
    issued = domain.issue(0)
    pdf = tmp_path / "licence.pdf"
    pdf.write_bytes(domain.pdf(issued, 0))
    with pikepdf.open(pdf) as doc:
        page = doc.pages[0]
        height = float(page.mediabox[3])
        (widget,) = [  # the seal's widget; document timestamps have an empty one
            a
            for a in page.get("/Annots", [])
            if a.get("/FT") == "/Sig" and float(a.Rect[2]) > float(a.Rect[0])
        ]
        seal = tuple(float(v) for v in widget.Rect)
    subprocess.run(
        [
            pdftoppm,
            "-r",
            "150",
            "-png",
            "-f",
            "1",
            "-l",
            "1",
            "-singlefile",
            str(pdf),
            str(tmp_path / "p"),
        ],
        check=True,
    )
    image = Image.open(tmp_path / "p.png").convert("RGB")
    scale = 150 / 72
    px = (
        round(seal[0] * scale),
        round((height - seal[3]) * scale),
        round(seal[2] * scale),
        round((height - seal[1]) * scale),
    )
    area = image.crop(px).tobytes()
    red = sum(
        1
        for i in range(0, len(area), 3)
        if area[i] > 150 and area[i + 1] < 90 and area[i + 2] < 100  # ≈ #D7000F
    )
    assert red > 500, f"only {red} seal-red pixels in the seal's area"
    codes = [c for c in zxingcpp.read_barcodes(image) if c.format == zxingcpp.BarcodeFormat.QRCode]
    assert [c.text for c in codes] == [issued["links"]["verify"]]
    p = codes[0].position
    xs = [p.top_left.x, p.top_right.x, p.bottom_left.x, p.bottom_right.x]
    ys = [p.top_left.y, p.top_right.y, p.bottom_left.y, p.bottom_right.y]
    qr = (min(xs) / scale, height - max(ys) / scale, max(xs) / scale, height - min(ys) / scale)
    assert not _overlap(seal, qr)
    issuer = domain.department(0)["name"]
    allowed = {issuer, "发证机关", "发证日期", "/", "Issuing", "authority", "Date", "of", "issue"}
    under = {t for t, box in _words(pdf, height) if _overlap(box, seal)}
    assert issuer in under, under
    assert {t for t in under if not re.fullmatch(r"\d{4}年\d{1,2}月\d{1,2}日", t)} <= allowed, under


def test_report_names_the_seal(domain: Domain) -> None:
    issued = domain.issue(0)
    report = domain.verify_pdf(domain.pdf(issued, 0))
    assert report["indication"] == "PASSED", report
    seal = report["seal"]
    assert seal["seal_code"] == issued.get("seal", seal["seal_code"])
    assert seal["seal_type"] in {"02", "03"} and seal["seal_type_label"] in {
        "电子证照专用章",
        "业务专用章",
    }
    assert seal["department"] == domain.department(0)["name"]
    assert seal["department_code"] == domain.department(0)["code"]


# --- CLI ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_departments_and_seals(domain: Domain) -> None:
    settings = domain.settings
    env = {
        **os.environ,
        "ELICENCE_KEY_PASSPHRASE": settings.key_passphrase.get_secret_value()
        if hasattr(settings.key_passphrase, "get_secret_value")
        else str(settings.key_passphrase),
        "ELICENCE_PUBLIC_BASE_URL": settings.public_base_url,
    }

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, *args, "--data-dir", str(settings.data_dir)],
            capture_output=True,
            text=True,
            env=env,
            cwd=Path(__file__).resolve().parent.parent,
            check=False,
            timeout=300,
        )

    parent = domain.department(0)["code"]
    added = cli(
        "departments", "add", "11350102MB0000001A", "--name", "示范市鼓楼区市场监督管理局",
        "--division", "350102", "--level", "county", "--parent", parent,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    listed = cli("departments", "list")
    assert '"parent_code": "' + parent + '"' in listed.stdout
    bad = cli("departments", "add", "11350102MB0000002A", "--name", "x", "--division", "3501",
              "--level", "county")  # fmt: skip
    assert bad.returncode != 0 and "division_code" in bad.stderr
    created = cli("seals", "create", "--department", "11350102MB0000001A", "--type", "01")
    assert created.returncode == 0, created.stderr
    assert '"seal_type_label": "公章"' in created.stdout
    code = re.search(r'"seal": "(\d+)"', created.stdout).group(1)  # type: ignore[union-attr]
    assert code.startswith("35010201")
    for step in ("suspend", "resume", "renew", "show"):
        result = cli("seals", step, code)
        assert result.returncode == 0, (step, result.stderr)
    assert '"key_ref": ' in result.stdout and ":v2" in result.stdout
    assert code in cli("seals", "list", "--department", "11350102MB0000001A").stdout
    revoked = cli("seals", "revoke", code, "--reason", "cessationOfOperation")
    assert revoked.returncode == 0, revoked.stderr
    assert cli("seals", "renew", code).returncode != 0


# --- migration ----------------------------------------------------------------------------


def test_0007_backfills_authorisations_for_existing_licence_seals(tmp_path: Path) -> None:
    from alembic import command
    from sqlalchemy import create_engine, text

    from migrations.runner import alembic_config

    url = f"sqlite:///{tmp_path / 'm.db'}"
    config = alembic_config(url)
    command.upgrade(config, "0001")
    engine = create_engine(url)
    dept, other = "1135010000360001XN", "11350100003600028N"
    with engine.begin() as conn:
        for code in (dept, other):
            conn.execute(
                text("INSERT INTO department VALUES (:c, '部门', '350100', 'municipal')"),
                {"c": code},
            )
        for code, kind in (("35010002000001", "02"), ("35010003000001", "03")):
            conn.execute(
                text(
                    "INSERT INTO seal (code, department_code, seal_type, name, "
                    "certificate_serial, key_ref, status, valid_from, valid_until, width_mm, "
                    "image_png) VALUES (:c, :d, :k, '章', '01', 'soft:x:v1', 'active', "
                    "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 42.0, x'00')"
                ),
                {"c": code, "d": dept, "k": kind},
            )
        for suffix, issuers in (("001", [dept]), ("002", [other]), ("003", [])):
            conn.execute(
                text(
                    "INSERT INTO licence_type (code, name, authority_code, authority_name, "
                    "authority_level, holder_category, holder_id_type, validity_years, "
                    "field_schema, issuer_codes, version, status) VALUES (:code, '证', :a, "
                    "'机构', 'municipal', 'legal_person', '001', NULL, '{}', :issuers, 1, "
                    "'active')"
                ),
                {"code": dept + suffix, "a": dept, "issuers": json.dumps(issuers)},
            )
    command.upgrade(config, "heads")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT seal_code, licence_type_code FROM seal_authorisation"))
        assert sorted(tuple(r) for r in rows) == [
            ("35010002000001", dept + "001"),
            ("35010002000001", dept + "003"),
        ]
        assert conn.execute(text("SELECT parent_code FROM department")).all() == [(None,), (None,)]
    engine.dispose()


def test_a_new_type_is_authorised_for_its_issuers_licence_seals(domain: Domain) -> None:
    from api.ops import demo
    from licences.models import LicenceType

    market = domain.department(0)["code"]
    entry = {**demo.FOOD_LICENCE, "code": market + "077", "name": "小餐饮登记证"}
    with transaction(domain.services.engine) as session:
        domain.services.catalogue.add(
            session, actor="test", entry=LicenceType(holder_id_type="", **entry)
        )
    by_type = {s["seal_type"]: s["licence_types"] for s in seals_of(domain, 0)}
    assert market + "077" in by_type["02"]  # the licence seal, as before types were authorised
    assert market + "077" not in by_type["03"]  # a business seal is authorised explicitly
    assert try_issue(domain, 0).status_code == 201


def test_a_sealing_reads_the_seal_certificate_row_once_and_seals_with_that_row(
    domain: Domain,
) -> None:
    """The row checked ``good`` is the row whose certificate goes into the seal: one read, so
    nothing can change between the check and the certificate the seal is made with."""
    from cryptography.hazmat.primitives import serialization

    from core.db import reading
    from tests.sql_trace import statements
    from trust.authority import load_pem
    from trust.models import CertificateRecord

    department = domain.department(0)
    engine = domain.services.engine
    with statements(engine) as seen, reading(engine) as session:
        context = domain.services.seals.seal_for_issuance(
            session, department["code"], department["sample_request"]["licence_type"]
        )
    serial = context.seal.certificate_serial
    certificate_reads = [
        s for s, p in seen if re.search(r"\bFROM certificate\b(?!_)", s) and serial in p
    ]
    assert len(certificate_reads) == 1, certificate_reads
    with reading(engine) as session:
        row = session.get(CertificateRecord, context.seal.certificate_serial)
        assert row is not None and row.status == "good"
    assert context.certificate_der == load_pem(row).public_bytes(serialization.Encoding.DER)
