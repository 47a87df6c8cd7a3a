"""The seals registry's edge-facing services, on the paths the API tests do not walk: the
operator's authorisation and image commands (no department given: the seal's own department is
the one checked), and key custody (what uses each key version, rotation and its refusal).

Each call opens and closes its own transaction, so every assertion reads what was committed.
"""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageDraw

from core.errors import Forbidden, NotFound
from tests.conftest import make_settings
from tests.domain import Domain, build_domain

OPERATOR = "operator:test"


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory) -> Domain:
    return build_domain(make_settings(tmp_path_factory.mktemp("desk") / "data"))


def _licence_seal(domain: Domain, index: int) -> str:
    code = domain.department(index)["code"]
    return next(s.code for s in domain.services.seal_desk.seals(code) if s.seal_type == "02")


def _png() -> bytes:
    image = Image.new("RGBA", (400, 400), (255, 255, 255, 0))
    ImageDraw.Draw(image).ellipse((8, 8, 392, 392), outline=(215, 0, 15, 255), width=12)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def test_operator_authorisations_follow_the_seals_own_department(domain: Domain) -> None:
    desk = domain.services.seal_desk
    seal = _licence_seal(domain, 0)
    own = domain.department(0)["sample_request"]["licence_type"]
    foreign = domain.department(1)["sample_request"]["licence_type"]
    with pytest.raises(Forbidden):
        desk.authorise(seal, foreign, actor=OPERATOR)
    assert own not in desk.deauthorise(seal, own, actor=OPERATOR).licence_types
    assert own in desk.authorise(seal, own, actor=OPERATOR).licence_types
    # the demo department defines a second type, with a page layout of its own (…002)
    assert desk.seal(seal).licence_types == (own, own[:-3] + "002")
    with pytest.raises(Forbidden):
        desk.seal(seal, domain.department(1)["code"])


def test_operator_image_comes_back_loaded(domain: Domain) -> None:
    seal = _licence_seal(domain, 0)
    row = domain.services.seal_desk.replace_image(seal, _png(), actor=OPERATOR)
    assert row.code == seal and row.image_png == _png()


def test_key_uses_and_rotation(domain: Domain) -> None:
    custody = domain.services.key_custody
    department = domain.department(1)["code"]
    seal = _licence_seal(domain, 1)
    with pytest.raises(NotFound) as refused:
        custody.rotate(department, actor=OPERATOR, seal="no-such-seal")
    assert refused.value.field == "seal"
    (rotation,) = custody.rotate(department, actor=OPERATOR, seal=seal)
    assert rotation.seal == seal and rotation.previous_key != rotation.key
    assert rotation.previous_certificate != rotation.certificate
    uses = {use.key: use for use in custody.uses()}
    assert uses[rotation.key].seal == seal
    assert uses[rotation.previous_key].seal is None
    assert uses[rotation.previous_key].certificate == f"seal {seal}"
    assert domain.services.seal_desk.seal(seal).key_ref == rotation.key
