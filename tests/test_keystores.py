"""The three key stores behind one protocol, each against the real thing: encrypted files, an
OpenBao dev server's transit engine, and a SoftHSM2 token.

For each store: keys sign prehashed digests that verify, rotate into new versions while the old
ones keep signing and verifying, and refuse to be exported; then a whole trust domain runs on
it: init (demo) -> issue -> verify -> rotate the department's seal key -> issue -> both verify.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from sqlmodel import select
from typer.testing import CliRunner

from api.cli.main import app as cli_app
from api.ops.secrets import build_keystore
from bench.custody_backends import (
    Missing,
    OpenBao,
    SoftHsm,
    free_port,
    init_softhsm,
    start_openbao,
)
from core.audit import AuditEntry, verify_chain
from core.db import reading
from core.errors import Conflict, NotFound, Unavailable
from keys.signing import private_key_for
from keys.soft import SoftKeyStore
from keys.store import HashAlgorithm, KeyAlgorithm, KeyRef, KeyStore
from tests.conftest import make_settings
from tests.domain import build_domain
from tests.tools import requiring

STORES = [
    "soft",
    pytest.param("vault", marks=pytest.mark.openbao),
    pytest.param("pkcs11", marks=pytest.mark.softhsm),
]
UNIT_TOKEN = "elicence-unit"
FLOW_TOKEN = "elicence-flow"
# DER markers of unencrypted private keys: PKCS#8 (version 0 then the EC or RSA algorithm
# identifier) and SEC1 ECPrivateKey for P-256.
PRIVATE_KEY_MARKERS = (
    b"PRIVATE KEY",
    bytes.fromhex("020100301306072a8648ce3d0201"),
    bytes.fromhex("020100300d06092a864886f70d010101"),
    bytes.fromhex("30770201010420"),
)


def _backend(start: Callable[[], Any]) -> Any:
    """Start a back end; a missing tool skips the test, or fails it in strict mode (CI)."""
    with requiring("the key store back end", Missing):
        return start()


@pytest.fixture(scope="session")
def openbao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBao]:
    server: OpenBao = _backend(lambda: start_openbao(tmp_path_factory.mktemp("openbao")))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsm]:
    previous = os.environ.get("SOFTHSM2_CONF")
    hsm: SoftHsm = _backend(
        lambda: init_softhsm(tmp_path_factory.mktemp("softhsm"), [UNIT_TOKEN, FLOW_TOKEN])
    )
    yield hsm
    if previous is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = previous


def store_options(kind: str, request: pytest.FixtureRequest, token: str) -> dict[str, Any]:
    """Settings for one store kind; vault gets a transit mount of its own."""
    if kind == "vault":
        server: OpenBao = request.getfixturevalue("openbao")
        mount = server.enable_transit(f"elicence-{secrets.token_hex(4)}")
        return {
            "keystore": "vault",
            "vault_addr": server.addr,
            "vault_token": server.token,
            "vault_mount": mount,
        }
    if kind == "pkcs11":
        hsm: SoftHsm = request.getfixturevalue("softhsm")
        return {
            "keystore": "pkcs11",
            "pkcs11_module": hsm.module,
            "pkcs11_token_label": token,
            "pkcs11_pin": hsm.pin,
        }
    return {"keystore": "soft"}


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> KeyStore:
    if request.param == "soft":
        return SoftKeyStore(tmp_path / "keys", b"unit passphrase")
    options = store_options(request.param, request, UNIT_TOKEN)
    return build_keystore(make_settings(tmp_path / "data", **options))


def label() -> str:
    # The unit token and each server live for the whole run: labels never repeat.
    return f"k-{secrets.token_hex(4)}"


def verifies(public: Any, signature: bytes, digest: bytes) -> bool:
    prehashed = utils.Prehashed(hashes.SHA256())
    try:
        if isinstance(public, ec.EllipticCurvePublicKey):
            public.verify(signature, digest, ec.ECDSA(prehashed))
        else:
            assert isinstance(public, rsa.RSAPublicKey)
            public.verify(signature, digest, padding.PKCS1v15(), prehashed)
    except InvalidSignature:
        return False
    return True


# -- the protocol, per store -------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", [KeyAlgorithm.EC_P256, KeyAlgorithm.RSA_3072])
def test_sign_rotate_and_keep_old_versions(store: KeyStore, algorithm: KeyAlgorithm) -> None:
    name = label()
    v1 = store.create(name, algorithm)
    assert v1 == KeyRef(store.name, name, 1)
    assert store.algorithm(v1) is algorithm
    digest = hashlib.sha256(b"licence").digest()
    assert verifies(
        store.public_key(v1), store.sign_digest(v1, digest, HashAlgorithm.SHA256), digest
    )

    v2 = store.rotate(name)
    assert v2 == KeyRef(store.name, name, 2)
    assert store.versions(name) == [v1, v2]
    assert store.algorithm(v2) is algorithm
    old, new = store.public_key(v1), store.public_key(v2)
    assert old.public_bytes(*_spki()) != new.public_bytes(*_spki())
    # The store signs with the version the reference names, never silently with the newest.
    by_v1 = store.sign_digest(v1, digest, HashAlgorithm.SHA256)
    by_v2 = store.sign_digest(v2, digest, HashAlgorithm.SHA256)
    assert verifies(old, by_v1, digest) and not verifies(new, by_v1, digest)
    assert verifies(new, by_v2, digest) and not verifies(old, by_v2, digest)
    listed = {info.ref: info.algorithm for info in store.list()}
    assert listed[v1] is algorithm and listed[v2] is algorithm


def _spki() -> tuple[Any, Any]:
    from cryptography.hazmat.primitives import serialization

    return serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo


def test_labels_are_unique_and_unknown_keys_refused(store: KeyStore) -> None:
    name = label()
    store.create(name)
    assert store.exists(name)
    with pytest.raises(Conflict):
        store.create(name)
    missing = label()
    assert not store.exists(missing)
    assert store.versions(missing) == []
    with pytest.raises(NotFound):
        store.rotate(missing)
    with pytest.raises(ValueError, match="label"):
        store.create("bad.label")


def test_private_key_adapter_signs_and_never_exports(store: KeyStore) -> None:
    ref = store.create(label())
    uses: list[tuple[KeyRef, str]] = []

    class Listener:
        def key_used(self, used: KeyRef, purpose: str) -> None:
            uses.append((used, purpose))

    key = private_key_for(store, ref, "test", Listener())
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    signature = key.sign(b"data", ec.ECDSA(hashes.SHA256()))
    key.public_key().verify(signature, b"data", ec.ECDSA(hashes.SHA256()))
    assert uses == [(ref, "test")]
    with pytest.raises(TypeError):
        key.private_numbers()


# -- custody properties -----------------------------------------------------------------------


def test_transit_keys_are_not_exportable(openbao: OpenBao, tmp_path: Path) -> None:
    from hvac import exceptions as vault_errors

    from keys.vault import VaultKeyStore

    mount = openbao.enable_transit(f"elicence-{secrets.token_hex(4)}")
    store = VaultKeyStore(addr=openbao.addr, token=openbao.token, mount=mount)
    name = label()
    store.create(name)
    store.rotate(name)
    client = openbao.client()
    config = client.secrets.transit.read_key(name=name, mount_point=mount)["data"]
    assert config["exportable"] is False
    assert config["allow_plaintext_backup"] is False
    assert config["type"] == "ecdsa-p256"
    with pytest.raises(vault_errors.VaultError):
        client.secrets.transit.export_key(name=name, key_type="signing-key", mount_point=mount)
    with pytest.raises(vault_errors.VaultError):
        client.secrets.transit.backup_key(name=name, mount_point=mount)


def test_pkcs11_keys_are_sensitive_and_never_extractable(softhsm: SoftHsm) -> None:
    import pkcs11
    from pkcs11 import Attribute, ObjectClass

    from keys.pkcs11 import Pkcs11KeyStore

    store = Pkcs11KeyStore(module=softhsm.module, token_label=UNIT_TOKEN, pin=softhsm.pin)
    name = label()
    store.create(name)
    store.rotate(name)
    token = pkcs11.lib(softhsm.module).get_token(token_label=UNIT_TOKEN)
    # The store's session logged this process in; a second session shares that login.
    with token.open() as session:
        for version in (1, 2):
            key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=f"{name}.v{version}")
            assert key[Attribute.SENSITIVE] is True
            assert key[Attribute.EXTRACTABLE] is False
            assert key[Attribute.NEVER_EXTRACTABLE] is True
            assert key[Attribute.TOKEN] is True
            with pytest.raises(pkcs11.exceptions.AttributeSensitive):
                key[Attribute.VALUE]


def test_pkcs11_refuses_a_wrong_pin_and_an_unknown_token(softhsm: SoftHsm) -> None:
    from keys.pkcs11 import Pkcs11KeyStore

    wrong_pin = Pkcs11KeyStore(module=softhsm.module, token_label=UNIT_TOKEN, pin="000000")
    with pytest.raises(Unavailable, match="PIN"):
        wrong_pin.list()
    nowhere = Pkcs11KeyStore(module=softhsm.module, token_label="no-such-token", pin="1")
    with pytest.raises(Unavailable, match="no-such-token"):
        nowhere.list()


def test_unreachable_vault_is_unavailable_with_a_bilingual_message() -> None:
    from keys.vault import VaultKeyStore

    store = VaultKeyStore(addr=f"http://127.0.0.1:{free_port()}", token="t", mount="transit")
    with pytest.raises(Unavailable) as caught:
        store.list()
    message = caught.value.message
    assert message.startswith("无法连接密钥服务") and "cannot be reached" in message
    with pytest.raises(Unavailable):
        store.sign_digest(KeyRef("vault", "k", 1), bytes(32), HashAlgorithm.SHA256)


def test_token_file_must_be_owner_only(tmp_path: Path) -> None:
    token_file = tmp_path / "vault-token"
    token_file.write_text("root\n")
    token_file.chmod(0o644)
    settings = make_settings(
        tmp_path / "data",
        keystore="vault",
        vault_addr="http://127.0.0.1:1",
        vault_token_file=token_file,
    )
    with pytest.raises(Unavailable, match="chmod 600"):
        build_keystore(settings)
    token_file.chmod(0o600)
    assert build_keystore(settings).name == "vault"


# -- a whole trust domain on each store --------------------------------------------------------


def cli_env(options: dict[str, Any], settings: Any) -> dict[str, str]:
    env = {f"ELICENCE_{name.upper()}": str(value) for name, value in options.items()}
    env["ELICENCE_KEY_PASSPHRASE"] = settings.key_passphrase.get_secret_value()
    return env


def private_key_hits(data_dir: Path) -> list[str]:
    hits = []
    for path in sorted(p for p in data_dir.rglob("*") if p.is_file()):
        content = path.read_bytes()
        hits += [f"{path.name}: {marker!r}" for marker in PRIVATE_KEY_MARKERS if marker in content]
    return hits


@pytest.mark.parametrize("kind", STORES)
def test_domain_issues_rotates_and_keeps_verifying(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    options = store_options(kind, request, FLOW_TOKEN)
    if kind == "vault":  # the token from an owner-only file, as a Vault Agent sink leaves it
        token_file = tmp_path / "vault-token"
        token_file.write_text(options.pop("vault_token"))
        token_file.chmod(0o600)
        options["vault_token_file"] = token_file
    data_dir = tmp_path / "data"
    settings = make_settings(data_dir, **options)
    domain = build_domain(settings)
    first = domain.issue()
    first_pdf = domain.pdf(first)
    assert domain.verify_pdf(first_pdf)["indication"] == "PASSED"

    runner = CliRunner()
    env = cli_env(options, settings)
    department = domain.department()["code"]
    result = runner.invoke(
        cli_app,
        ["keys", "rotate", "--department", department, "--data-dir", str(data_dir)],
        env=env,
    )
    assert result.exit_code == 0, result.output
    (rotated,) = json.loads(result.stdout)["rotated"]
    assert rotated["key"].startswith(f"{kind}:seal-") and rotated["key"].endswith(":v2")
    assert rotated["previous"]["key"].endswith(":v1")

    second = domain.issue()
    second_pdf = domain.pdf(second)
    reports = [domain.verify_pdf(first_pdf), domain.verify_pdf(second_pdf)]
    assert [r["indication"] for r in reports] == ["PASSED", "PASSED"], reports
    assert reports[0]["seal"]["certificate_serial"] == rotated["previous"]["certificate"]
    assert reports[1]["seal"]["certificate_serial"] == rotated["certificate"]
    assert domain.client.get("/readyz").json()["checks"]["keystore"] == "ok"

    listing = runner.invoke(cli_app, ["keys", "list", "--data-dir", str(data_dir)], env=env)
    assert listing.exit_code == 0, listing.output
    assert f"{rotated['key']}" in listing.stdout and "current" in listing.stdout

    with reading(domain.services.engine) as session:
        entries = session.exec(select(AuditEntry)).all()
        assert verify_chain(session).intact
    actions = {(e.action, e.object_id) for e in entries}
    assert ("key.rotate", rotated["key"]) in actions
    assert ("seal.rotate", rotated["seal"]) in actions
    assert any(
        e.action == "key.sign" and e.object_id == rotated["key"] and e.detail["purpose"] == "seal"
        for e in entries
    )

    if kind == "soft":  # encrypted files, by design
        assert all(b"ENCRYPTED PRIVATE KEY" in p.read_bytes() for p in data_dir.glob("keys/*.p8"))
    else:
        assert not (data_dir / "keys").exists()
        assert private_key_hits(data_dir) == []


def _outcome_counts(domain: Any) -> tuple[int, int, int]:
    from licences.models import Licence, LicenceDocument

    with reading(domain.services.engine) as session:
        return (
            len(session.exec(select(Licence)).all()),
            len(session.exec(select(LicenceDocument)).all()),
            len(session.exec(select(AuditEntry).where(AuditEntry.action == "licence.issue")).all()),
        )


@pytest.mark.openbao
def test_sealed_or_unreachable_vault_answers_503_and_writes_nothing(tmp_path: Path) -> None:
    server: OpenBao = _backend(lambda: start_openbao(tmp_path / "bao"))
    try:
        mount = server.enable_transit("elicence")
        settings = make_settings(
            tmp_path / "data",
            keystore="vault",
            vault_addr=server.addr,
            vault_token=server.token,
            vault_mount=mount,
        )
        domain = build_domain(settings)
        domain.issue()  # the store now holds the seal key's type and public key in memory
        before = _outcome_counts(domain)
        server.client().sys.seal()
        for outage, phrase in (("sealed", "is sealed"), ("down", "cannot be reached")):
            if outage == "down":
                server.stop()
            body = domain.department()["sample_request"]
            response = domain.client.post("/api/v1/licences", json=body, headers=domain.auth())
            assert response.status_code == 503, (outage, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
            detail = response.json()["detail"]
            assert phrase in detail and detail[0] > "\u2e80", detail  # Chinese first
            assert _outcome_counts(domain) == before, outage
            ready = domain.client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["keystore"] == "unavailable"
    finally:
        server.stop()
