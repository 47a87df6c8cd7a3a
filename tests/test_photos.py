"""The holder's photo (持证人照片): every hostile upload is refused with a 422 naming the problem
before anything is signed; a good one is re-encoded without metadata, printed in its slot,
stored once, and bound into the record digest the QR code carries, so a photo swapped in the
database fails verification (HASH_FAILURE) while licences without photos keep their digests.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from PIL import Image
from sqlalchemy import create_engine, text
from sqlmodel import Session, SQLModel, select

from core.errors import InvalidInput
from licences.models import LicencePhoto
from licences.payload import decode, record_digest
from licences.photos import MAX_BYTES, decode_photo
from migrations.runner import alembic_config
from tests.domain import Domain, demo_domain
from tests.layout_support import define, encoded, face, issue


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory) -> Domain:
    return demo_domain(tmp_path_factory, "photos")


@pytest.fixture(scope="module")
def type_code(domain: Domain) -> str:
    response = define(domain, "301")
    assert response.status_code == 201, response.text
    return str(response.json()["code"])


def _png_bomb() -> str:
    """A 20000×20000 greyscale PNG: a few hundred KiB that would decode to 400 MB."""
    import struct
    import zlib

    width = height = 20000
    raw = zlib.compress(b"\x00" * (width + 1) * height, 9)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")
    return base64.b64encode(png).decode()


def _animated_png() -> str:
    frames = [Image.new("RGB", (300, 400), c) for c in ("white", "black")]
    out = io.BytesIO()
    frames[0].save(out, format="PNG", save_all=True, append_images=frames[1:])
    return base64.b64encode(out.getvalue()).decode()


def _truncated_jpeg() -> str:
    whole = base64.b64decode(encoded(Image.effect_noise((400, 500), 60).convert("RGB"), "JPEG"))
    return base64.b64encode(whole[: len(whole) // 2]).decode()


HOSTILE = [
    (_png_bomb(), "decompression bomb"),
    (encoded(Image.new("CMYK", (300, 400), (0, 50, 100, 0)), "JPEG"), "colour mode CMYK"),
    (_animated_png(), "animated"),
    (_truncated_jpeg(), "truncated or corrupt"),
    (encoded(Image.new("RGB", (150, 200), "white"), "PNG"), "smaller than 200×250"),
    (encoded(Image.new("RGB", (2400, 2400), "white"), "PNG"), "larger than 2000×2000"),
    (encoded(Image.new("RGB", (300, 400), "white"), "GIF"), "not a JPEG or PNG"),
    (base64.b64encode(b"%PDF-1.7\n" + b"x" * 1000).decode(), "not a JPEG or PNG"),
    ("not base64 at all!", "not base64"),
    (base64.b64encode(b"\xff\xd8" + b"\0" * (MAX_BYTES + 1)).decode(), "larger than 512 KiB"),
]


@pytest.mark.parametrize(("photo", "problem"), HOSTILE)
def test_a_hostile_photo_is_refused_naming_the_problem(photo: str, problem: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        decode_photo(photo)
    assert refused.value.field == "photo" and problem in str(refused.value)


@pytest.mark.parametrize(("photo", "problem"), HOSTILE[:5])
def test_the_api_refuses_it_with_422_and_writes_nothing(
    domain: Domain, type_code: str, photo: str, problem: str
) -> None:
    before = _count(domain)
    response = issue(domain, type_code, photo)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "photo" and problem in response.json()["detail"]
    assert _count(domain) == before


def _count(domain: Domain) -> tuple[int, int]:
    with domain.services.engine.connect() as conn:
        licences = conn.execute(text("SELECT count(*) FROM licence")).scalar_one()
        photos = conn.execute(text("SELECT count(*) FROM licence_photo")).scalar_one()
    return int(licences), int(photos)


def test_a_photo_for_a_type_without_a_photo_slot_is_refused(domain: Domain) -> None:
    body = dict(domain.department(0)["sample_request"], photo=face())
    response = domain.client.post("/api/v1/licences", json=body, headers=domain.auth(0))
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "photo" and "no photo slot" in response.json()["detail"]


def test_metadata_is_stripped_by_re_encoding() -> None:
    image = Image.effect_noise((300, 400), 40).convert("RGB")
    exif = Image.Exif()
    exif[0x010F] = "SpyCam Inc."  # Make
    exif[0x010E] = "home 26.0745N 119.2965E"  # ImageDescription: where the holder lives
    sent = encoded(image, "JPEG", exif=exif.tobytes(), comment=b"secret", icc_profile=b"\0" * 128)
    assert b"SpyCam" in base64.b64decode(sent)
    photo = decode_photo(sent)
    assert b"SpyCam" not in photo.jpeg and b"secret" not in photo.jpeg and b"26.07" not in photo.jpeg
    with Image.open(io.BytesIO(photo.jpeg)) as kept:
        assert not kept.getexif() and "icc_profile" not in kept.info and "comment" not in kept.info
        assert kept.size == (300, 400)


def test_a_transparent_png_prints_on_white() -> None:
    photo = decode_photo(encoded(Image.new("RGBA", (300, 400), (255, 0, 0, 0)), "PNG"))
    with Image.open(io.BytesIO(photo.jpeg)) as kept:
        assert kept.mode == "RGB" and min(kept.getpixel((150, 200))) > 245  # type: ignore[arg-type]


def test_a_photo_is_stored_once_digested_and_its_swap_fails_verification(
    domain: Domain, type_code: str
) -> None:
    response = issue(domain, type_code, face())
    assert response.status_code == 201, response.text
    issued = response.json()
    url = issued["links"]["verify"]
    expected = decode_photo(face())
    with Session(domain.services.engine) as session:
        [row] = session.exec(
            select(LicencePhoto).where(LicencePhoto.identifier == issued["identifier"])
        ).all()
    assert row.image == expected.jpeg and row.media_type == "image/jpeg"
    assert (row.width, row.height) == (358, 441)
    # the audit entry of the issuance names the photo's digest
    with domain.services.engine.connect() as conn:
        detail = conn.execute(
            text("SELECT detail FROM audit_entry WHERE action = 'licence.issue' AND object_id = :i"),
            {"i": issued["identifier"]},
        ).scalar_one()
    detail = json.loads(detail) if isinstance(detail, str) else detail
    assert detail["photo_sha256"] == hashlib.sha256(expected.jpeg).hexdigest()
    assert _verify(domain, url) == ("PASSED", None)
    # someone with database access swaps in another face
    other = decode_photo(encoded(Image.new("RGB", (358, 441), "grey"), "PNG")).jpeg
    with domain.services.engine.begin() as conn:
        conn.execute(
            text("UPDATE licence_photo SET image = :img WHERE identifier = :i"),
            {"img": other, "i": issued["identifier"]},
        )
    assert _verify(domain, url) == ("FAILED", "HASH_FAILURE")
    with domain.services.engine.begin() as conn:  # deleting it is no way out either
        conn.execute(text("DELETE FROM licence_photo WHERE identifier = :i"),
                     {"i": issued["identifier"]})  # fmt: skip
    assert _verify(domain, url) == ("FAILED", "HASH_FAILURE")


def _verify(domain: Domain, url: str) -> tuple[str, str | None]:
    report = domain.client.post("/api/v1/verify", json={"qr": url}).json()
    return report["indication"], report.get("sub_indication")


def test_a_licence_without_a_photo_keeps_the_digest_it_always_had(domain: Domain) -> None:
    """The canonical record before photos existed, written out here: the printed digest of a
    licence without a photo is exactly that."""
    issued = domain.issue(0)
    claims = decode(issued["links"]["verify"].rsplit("/", 1)[1]).claims
    body = dict(domain.department(0)["sample_request"])
    canonical = json.dumps(
        ["elicence-record-1", issued["identifier"], body["licence_type"],
         domain.department(0)["code"], body["holder"]["id_type"], body["holder"]["id"],
         body["fields"], body["valid_from"], _valid_until(domain, issued)],
        sort_keys=True, ensure_ascii=False, separators=(",", ":"),
    )  # fmt: skip
    assert claims.record_digest == hashlib.sha256(canonical.encode()).digest()[:16]
    with_photo = record_digest(
        identifier=issued["identifier"], type_code=body["licence_type"],
        issuer_code=domain.department(0)["code"], holder_id_type="001",
        holder_id=body["holder"]["id"], fields=body["fields"],
        valid_from=date.fromisoformat(body["valid_from"]), valid_until=None,
        photo_sha256="0" * 64,
    )  # fmt: skip
    assert with_photo != claims.record_digest


def _valid_until(domain: Domain, issued: dict[str, Any]) -> str | None:
    record = domain.client.get(
        f"/api/v1/licences/{issued['identifier']}", headers=domain.auth(0)
    ).json()
    return record["valid_until"]  # type: ignore[no-any-return]


def _revision_0023_diff(url: str) -> list[Any]:
    command.upgrade(alembic_config(url), "heads")
    engine = create_engine(url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    engine.dispose()
    return [d for d in diff if "licence_photo" in repr(d) or "'layout'" in repr(d)]


def test_revision_0023_matches_the_models(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    assert _revision_0023_diff(url) == []
    engine = create_engine(url)
    with engine.connect() as conn:
        columns = {r[1] for r in conn.execute(text("PRAGMA table_info(licence_photo)"))}
    assert columns == {"identifier", "media_type", "width", "height", "image"}
    engine.dispose()


@pytest.mark.postgres
def test_revision_0023_matches_the_models_on_postgresql(postgres_url: str) -> None:
    from urllib.parse import quote

    schema = "t_photos"
    admin = create_engine(postgres_url)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = f"{postgres_url}?options={quote(f'-csearch_path={schema}')}"
        assert _revision_0023_diff(url) == []
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
