"""Another domain's licence-status answer (``trust/federation_status.py``): asked with a fresh
nonce at the domain's own base URL, believed only when signed by the pinned signer with the
status ``typ``, naming that domain, answering exactly the question, and produced just now."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

import httpx
import pytest

from core.errors import InvalidInput, Unavailable
from tests.security.federation_support import Network, domain, iso, status_body
from tests.security.support import NOW
from trust.federation_http import Peers
from trust.federation_jws import STATUS_TYPE
from trust.federation_status import (
    MAX_STATUS_BYTES,
    SKEW,
    StatusRefused,
    check_answer,
    query_status,
)
from trust.trustlist import MEDIA_TYPE

KEY = "ab" * 32


def answer(nonce: str = "n1", key: str = KEY, **changes: Any) -> dict[str, Any]:
    b = domain("b")
    return b.sign(status_body(b, key, nonce, **changes), STATUS_TYPE)


def refused(document: Any, key: str = KEY, nonce: str = "n1", now: Any = NOW) -> str:
    with pytest.raises(StatusRefused) as caught:
        check_answer(document, domain("b").parsed(), key, nonce, now)
    assert caught.value.field == "licence-status"
    return caught.value.message


def test_a_genuine_answer_is_believed() -> None:
    b = domain("b")
    checked = check_answer(answer(), b.parsed(), KEY, "n1", NOW)
    assert checked.found is True
    assert checked.produced_at == NOW
    assert checked.licence is not None and checked.licence["status"] == "valid"
    assert checked.seal is not None and checked.seal["seal_code"] == "S1"
    assert checked.document["query"] == KEY


def test_an_answer_not_signed_by_the_pinned_signer_is_refused() -> None:
    a = domain("a")
    unsigned = "证照状态应答签名无效或非该域签发 / the status answer is not signed by the domain's " \
        "pinned trust-list signer"
    by_a = a.sign(status_body(domain("b"), KEY, "n1"), STATUS_TYPE)
    assert refused(by_a) == unsigned
    as_list = domain("b").sign(status_body(domain("b"), KEY, "n1"), MEDIA_TYPE)
    assert refused(as_list) == unsigned
    altered = {**answer(), "found": False}
    assert refused(altered) == unsigned
    assert refused(None) == unsigned


def test_an_answer_about_something_else_is_refused() -> None:
    assert refused(answer(format="elicence-licence-status/2")) == (
        "证照状态格式不符 / format 'elicence-licence-status/2'"
    )
    other = "证照状态应答来自另一信任域 / the status answer names another domain"
    assert refused(answer(domain={"name": "a"})) == other
    assert refused(answer(domain=None)) == other
    question = "证照状态应答不是对本次询问的回答 / the answer is not to this question"
    assert refused(answer(key="cd" * 32)) == question
    assert refused(answer(nonce="n2")) == question
    assert refused(answer(), key="cd" * 32) == question
    assert refused(answer(), nonce="n2") == question


def test_only_an_answer_produced_within_five_minutes_is_current() -> None:
    assert SKEW == timedelta(minutes=5)
    late = "证照状态应答时间不符 / the status answer was not produced just now"
    b = domain("b")
    for moment in (NOW - SKEW, NOW + SKEW):
        checked = check_answer(answer(produced_at=iso(moment)), b.parsed(), KEY, "n1", NOW)
        assert checked.produced_at == moment
    for moment in (NOW - SKEW - timedelta(seconds=1), NOW + SKEW + timedelta(seconds=1)):
        assert refused(answer(produced_at=iso(moment))) == late
    with pytest.raises(InvalidInput) as caught:
        check_answer(answer(produced_at=None), b.parsed(), KEY, "n1", NOW)
    assert caught.value.message == (
        "信任列表缺少 produced_at / the trust list has no valid produced_at"
    )


def test_found_needs_licence_and_seal_and_not_found_carries_none() -> None:
    b = domain("b")
    incomplete = "证照状态应答不完整 / the status answer has no licence or seal"
    assert refused(answer(licence=None)) == incomplete
    assert refused(answer(seal="S1")) == incomplete
    assert refused(answer(licence=[1])) == incomplete
    missing = check_answer(answer(found=False), b.parsed(), KEY, "n1", NOW)
    assert (missing.found, missing.licence, missing.seal) == (False, None, None)
    truthy = check_answer(answer(found="true"), b.parsed(), KEY, "n1", NOW)
    assert (truthy.found, truthy.licence, truthy.seal) == (False, None, None)
    assert refused(answer(domain="b")) == (
        "证照状态应答格式错误 / the status answer is malformed"
    )


# -- asking --------------------------------------------------------------------------------


def public(host: str, port: int) -> list[str]:
    return ["93.184.216.34"]


def ask(network: Network, key: str = KEY) -> Any:
    b = domain("b")
    return query_status(b.parsed(), key, NOW, Peers(resolve=public, transport=network.transport()))


def test_the_question_goes_to_the_domains_base_url_with_a_fresh_nonce() -> None:
    network = Network().add(domain("b"))
    first = ask(network)
    second = ask(network, "LIC/1 2")
    assert first.found is True and second.document["query"] == "LIC/1 2"
    urls = [request.url for request in network.requests]
    assert [u.host for u in urls] == ["b.example", "b.example"]
    assert urls[0].raw_path.decode().startswith(f"/pki/licence-status/{KEY}?nonce=")
    assert urls[1].raw_path.decode().startswith("/pki/licence-status/LIC%2F1%202?nonce=")
    nonces = [u.params["nonce"] for u in urls]
    assert len(nonces[0]) == 32 and int(nonces[0], 16) >= 0 and nonces[0] != nonces[1]
    assert network.requests[0].headers["Accept"] == "application/json"


def test_an_answer_to_another_nonce_or_from_another_host_is_refused() -> None:
    network = Network().add(domain("b"))
    network.status["b.example"] = lambda p, q, n: p.sign(status_body(p, q, "replayed"),
                                                         STATUS_TYPE)
    with pytest.raises(StatusRefused):
        ask(network)
    network = Network().add(domain("b"))
    b = domain("b")
    elsewhere = replace(b.parsed(), base_url="https://a.example")
    network.add(domain("a"))
    with pytest.raises(StatusRefused):  # a answers, but cannot sign as b
        query_status(elsewhere, KEY, NOW, Peers(resolve=public, transport=network.transport()))


def padded(size: int) -> Any:
    def make(pki: Any, query: str, nonce: str) -> httpx.Response:
        pad = ""
        for _ in range(3):
            body = json.dumps(pki.sign(status_body(pki, query, nonce, pad=pad), STATUS_TYPE))
            pad += "x" * (size - len(body.encode()))
        return httpx.Response(200, content=body.encode())
    return make


def test_answers_are_read_up_to_64_kib() -> None:
    assert MAX_STATUS_BYTES == 65536
    network = Network().add(domain("b"))
    network.status["b.example"] = padded(65536)
    assert ask(network).found is True
    network.status["b.example"] = padded(65537)
    with pytest.raises(Unavailable) as caught:
        ask(network)
    assert caught.value.message.startswith("无法获取证照状态 / cannot fetch the licence status ")
    assert caught.value.message.endswith(": larger than 65536 bytes")


def test_an_answer_that_is_not_json_is_named_for_the_status_service() -> None:
    network = Network().add(domain("b"))
    network.status["b.example"] = lambda p, q, n: httpx.Response(200, content=b"<html>")
    with pytest.raises(InvalidInput) as caught:
        ask(network)
    assert caught.value.message == "证照状态不是JSON / the licence status is not JSON"
    assert caught.value.field == "licence-status"
