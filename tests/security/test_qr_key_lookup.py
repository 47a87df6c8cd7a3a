"""Looking up the QR key a scanned payload names (``keys.versions``, ``licences.qrkeys``): what a
flood of forged payloads may cost, and the lookup an event loop may make."""

from __future__ import annotations

import pytest

from licences.qrkeys import QrKeys
from tests.security.licences import Repository, repository


@pytest.fixture
def repo() -> Repository:
    return repository()


def test_forged_key_ids_list_the_key_store_once_a_second_not_once_each(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flood of payloads with made-up key ids must not make the store list its keys each:
    with a key service that is a network call a scan."""
    kid = repo.kid
    listed: list[str] = []
    versions = repo.store.versions
    monkeypatch.setattr(
        repo.store, "versions", lambda label: listed.append(label) or versions(label)
    )
    keys = QrKeys(repo.store)
    assert keys.public_key(kid) is not None
    assert len(listed) == 1  # the first listing
    assert [keys.public_key(bytes([n]) * 8) for n in range(50)] == [None] * 50
    assert len(listed) == 1  # listed within the second: not again
    monkeypatch.setattr("keys.versions.MISS_RELIST_SECONDS", 0.0)
    assert keys.public_key(b"\x00" * 8) is None
    assert len(listed) == 2  # past it, an unknown id lists the store again (a new key)
    assert keys.listed_key(kid) is not None and keys.listed_key(b"\x00" * 8) is None
    assert len(listed) == 2  # the listed keys alone, the store not asked
