"""The seal image on PostgreSQL's QR hot path: read once per process and row version.

The record query carries the seal row's version (``tableoid``:``xmin``) instead of its ~72 KB
image. A department that replaces its seal image must not leave a process answering with the
old bytes, and two schemas (two domains in one process) must not share an entry because their
seals bear the same code.
"""

from __future__ import annotations

from base64 import b64decode
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import text

from core.db import reading
from licences.models import Licence
from licences.repository import full_record
from tests.conftest import fresh_schema, make_settings
from tests.domain import Domain, build_domain
from tests.layout_support import encoded

pytestmark = pytest.mark.postgres


def _domain(postgres_url: str, tmp: pytest.TempPathFactory, schema: str) -> Domain:
    data_dir: Path = tmp.mktemp(schema) / "data"
    return build_domain(make_settings(data_dir, database_url=fresh_schema(postgres_url, schema)))


@pytest.fixture(scope="module")
def two(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Domain, Domain]:
    return (
        _domain(postgres_url, tmp_path_factory, "t_seal_image_a"),
        _domain(postgres_url, tmp_path_factory, "t_seal_image_b"),
    )


def _seal_image(domain: Domain, identifier: str) -> tuple[bytes, bytes]:
    """(the image in the hot path's record, the image the ORM loads now)."""
    from verify.record_read import record_by_identifier

    with reading(domain.services.engine) as session:
        got = record_by_identifier(session, identifier)
        licence = session.get(Licence, identifier)
        assert got is not None and licence is not None
        return got.seal.image_png, full_record(session, licence).seal.image_png


def test_a_replaced_seal_image_is_read_anew(two: tuple[Domain, Domain]) -> None:
    domain = two[0]
    issued = domain.issue(0)
    identifier = issued["identifier"]
    first, orm = _seal_image(domain, identifier)
    assert first == orm and first.startswith(b"\x89PNG")
    replacement = b64decode(encoded(Image.new("RGBA", (200, 200), (200, 0, 0, 255)), "PNG"))
    with domain.services.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE seal SET image_png = :img WHERE code = (SELECT seal_code FROM licence"
                " WHERE identifier = :i)"
            ),
            {"img": replacement, "i": identifier},
        )
    now, orm = _seal_image(domain, identifier)
    assert now == orm == replacement  # not the bytes cached under the old version
    answer = domain.client.post("/api/v1/verify", json={"qr": issued["links"]["verify"]}).json()
    assert answer["indication"] == "PASSED", answer


def test_two_schemas_with_the_same_seal_code_keep_their_own_images(
    two: tuple[Domain, Domain],
) -> None:
    a, b = two
    la, lb = a.issue(0)["identifier"], b.issue(0)["identifier"]
    mark = b64decode(encoded(Image.new("RGBA", (180, 180), (0, 0, 200, 255)), "PNG"))
    with b.services.engine.begin() as conn:
        codes = conn.execute(text("SELECT seal_code FROM licence WHERE identifier = :i"), {"i": lb})
        code_b = codes.scalar_one()
        conn.execute(
            text("UPDATE seal SET image_png = :img WHERE code = :c"), {"img": mark, "c": code_b}
        )
    with a.services.engine.connect() as conn:
        code_a = conn.execute(
            text("SELECT seal_code FROM licence WHERE identifier = :i"), {"i": la}
        ).scalar_one()
    assert code_a == code_b  # the demo domains name their seals alike: the attack's premise
    got_a, orm_a = _seal_image(a, la)
    got_b, orm_b = _seal_image(b, lb)
    assert got_a == orm_a != mark
    assert got_b == orm_b == mark
