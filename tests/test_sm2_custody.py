"""Which custody holds SM2 keys: the soft store does (tests/test_sm2.py); OpenBao's transit engine
and a PKCS#11 token (SoftHSM2 2.6) have no SM2, checked against the real servers here, and the
stores refuse SM2 with a one-line bilingual error naming the custody instead of making a key that
would sign something else (an ECDSA signature on the SM2 curve is not an SM2 signature)."""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from api.ops.secrets import build_keystore
from core.errors import InvalidInput
from keys.sm2 import SM2_CUSTODIES
from keys.store import HashAlgorithm, KeyAlgorithm
from tests.conftest import make_settings
from tests.test_keystores import FLOW_TOKEN, openbao, softhsm, store_options  # noqa: F401
from tests.tools import require_module


def _store(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    return build_keystore(
        make_settings(tmp_path / "data", **store_options(kind, request, FLOW_TOKEN))
    )


def _refuses_sm2(store: Any, custody: str) -> None:
    label = f"sm2-{secrets.token_hex(4)}"
    with pytest.raises(InvalidInput) as refused:
        store.create(label, KeyAlgorithm.SM2)
    message = refused.value.message
    assert "\n" not in message and " / " in message  # one line, Chinese then English
    assert custody in message and "SM2" in message
    assert not store.exists(label)  # nothing was made
    # An SM3 digest is not signed by any key of this store.
    p256 = store.create(f"p256-{secrets.token_hex(4)}")
    with pytest.raises(InvalidInput, match=custody):
        store.sign_digest(p256, hashlib.sha256(b"x").digest(), HashAlgorithm.SM3)
    # Every store gives the SPKI of its keys (what SM2 code reads instead of public_key()).
    spki = store.public_key(p256).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert store.public_key_der(p256) == spki
    assert store.name not in SM2_CUSTODIES


@pytest.mark.openbao
def test_openbao_transit_has_no_sm2_and_the_vault_store_refuses_it(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    store = _store("vault", request, tmp_path)
    _refuses_sm2(store, "Vault/OpenBao")
    # The engine itself: asked for an "sm2" key type, it refuses (so there is nothing to map).
    server = request.getfixturevalue("openbao")
    mount = server.enable_transit(f"sm2-probe-{secrets.token_hex(4)}")
    answer = httpx.post(
        f"{server.addr}/v1/{mount}/keys/probe",
        headers={"X-Vault-Token": server.token},
        json={"type": "sm2"},
        timeout=10,
    )
    assert answer.status_code == 400, answer.text
    assert "unknown key type" in answer.text
    assert (
        httpx.get(
            f"{server.addr}/v1/{mount}/keys/probe",
            headers={"X-Vault-Token": server.token},
            timeout=10,
        ).status_code
        == 404
    )  # nothing was made


@pytest.mark.softhsm
def test_softhsm_has_no_sm2_mechanism_and_the_pkcs11_store_refuses_it(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    store = _store("pkcs11", request, tmp_path)
    _refuses_sm2(store, "PKCS#11")
    # The token's mechanism list, as the module reports it: no SM2, no SM3.
    pkcs11 = require_module("pkcs11")
    hsm = request.getfixturevalue("softhsm")
    token = pkcs11.lib(hsm.module).get_token(token_label=FLOW_TOKEN)
    mechanisms = {int(m) for m in token.slot.get_mechanisms()}
    assert int(pkcs11.Mechanism.ECDSA) in mechanisms  # the list is real
    names = {
        pkcs11.Mechanism(m).name for m in mechanisms if m in pkcs11.Mechanism._value2member_map_
    }
    assert not [n for n in names if "SM2" in n or "SM3" in n]
    # SM2 tokens put their mechanisms in the vendor range (CKM_VENDOR_DEFINED and up): none.
    assert not [m for m in mechanisms if m >= 0x80000000]
