"""What a recognised domain may speak for (``trust/federation_scope.py``): a list naming a key
of this domain or of another recognised domain, a CA, seal or TSA outside its own root, or a URL
off the origin of its trust-list URL, is refused whole, with the message that names the rule."""

from __future__ import annotations

from dataclasses import replace

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from core.errors import InvalidInput
from tests.security.federation_support import (
    ca_entry,
    certificate,
    domain,
    new_key,
    pem,
    seal_entry,
)
from trust.federation_list import CaEntry, TrustList, parse
from trust.federation_scope import (
    Material,
    chain_root,
    check_list,
    check_origins,
    entries,
    material,
    origin,
    own_root,
)
from trust.trustlist import fingerprint

NONE = Material(frozenset(), frozenset())
SPEAKS = "a domain speaks only for its own keys"
ONLY_OWN = "a domain speaks only for its own certificates"


def refusal(listed: TrustList, own: Material = NONE, others: dict[str, Material] | None = None,
            url: str | None = None, pinned_root: str | None = None) -> str:
    with pytest.raises(InvalidInput) as caught:
        check_list(listed, url or domain("b").url, pinned_root, own, others or {})
    assert caught.value.field == "trust-list"
    return caught.value.message


def test_a_list_that_keeps_every_rule_gives_its_root() -> None:
    b = domain("b")
    others = {"a": material(domain("a").body())}
    own = material(domain("z").body())
    assert check_list(b.parsed(), b.url, None, own, others) == fingerprint(b.root)
    assert check_list(b.parsed(), b.url, fingerprint(b.root), own, others) == fingerprint(b.root)


# -- keys of another recognised domain, or of this one ---------------------------------------


def other_kinds() -> list[tuple[str, str, dict[str, object]]]:
    a, b = domain("a"), domain("b")
    return [
        ("CA", "CA证书", {"cas": [*b.body()["cas"], ca_entry("a-root", a.root, b.base)]}),
        ("seal", "印章证书", {"seals": [seal_entry(b.seal), seal_entry(a.seal)]}),
        ("TSA", "时间戳服务证书", {"tsa": {"certificate": pem(a.tsa)}}),
        ("signer", "信任列表签名者证书", {}),
        ("QR key", "二维码密钥", {"qr_keys": [b.qr_entry(), a.qr_entry()]}),
    ]


@pytest.mark.parametrize("case", range(5))
def test_a_key_of_another_recognised_domain_refuses_the_list_whole(case: int) -> None:
    kind, label, changes = other_kinds()[case]
    a, b = domain("a"), domain("b")
    document = b.body(**changes)
    if kind == "signer":  # another domain's signer named in a list is a key of that domain too
        signer = frozenset(key for what, key, _ in entries(document) if what == "signer")
        others = {"a": Material(signer, frozenset())}
    else:
        others = {"a": material(a.body()), "c": material(domain("c").body())}
    message = refusal(replace(b.parsed(), document=document), others=others)
    assert message == (
        f"信任列表列出了已承认信任域 a 的{label} / the list names a {kind} of the recognised "
        f"domain a; {SPEAKS}"
    )


@pytest.mark.parametrize("case", range(5))
def test_a_key_of_this_domain_refuses_the_list_whole(case: int) -> None:
    kind, label, changes = other_kinds()[case]
    a, b = domain("a"), domain("b")
    document = b.body(**changes)
    if kind == "signer":
        signer = frozenset(key for what, key, _ in entries(document) if what == "signer")
        own = Material(signer, frozenset())
    else:
        own = material(a.body())
    message = refusal(replace(b.parsed(), document=document), own=own,
                      others={"c": material(domain("c").body())})
    assert message == (
        f"信任列表列出了本信任域的{label} / the list names a {kind} of this domain; {SPEAKS}"
    )


def test_a_qr_key_is_recognised_by_its_key_id_alone() -> None:
    a, b = domain("a"), domain("b")
    document = b.body(qr_keys=[a.qr_entry()])
    by_id = Material(frozenset(), frozenset({a.kid.hex()}))
    listed = replace(b.parsed(), document=document)
    assert refusal(listed, own=by_id) == (
        f"信任列表列出了本信任域的二维码密钥 / the list names a QR key of this domain; {SPEAKS}"
    )
    assert refusal(listed, others={"a": by_id}) == (
        "信任列表列出了已承认信任域 a 的二维码密钥 / the list names a QR key of the recognised "
        f"domain a; {SPEAKS}"
    )
    # a certificate's key never matches by key id: only QR keys carry one
    seal_only = Material(frozenset(), frozenset({a.kid.hex()}))
    assert check_list(b.parsed(), b.url, None, seal_only, {}) == fingerprint(b.root)


def test_the_first_other_domain_in_name_order_is_named() -> None:
    a, b = domain("a"), domain("b")
    theirs = material(a.body())
    listed = replace(b.parsed(), document=b.body(seals=[seal_entry(a.seal)]))
    message = refusal(listed, others={"y": theirs, "x": theirs})
    assert "recognised domain x;" in message


def test_a_cross_certificate_of_another_domains_ca_key_is_caught_by_its_key() -> None:
    a, b = domain("a"), domain("b")
    cross = certificate("b Bridge", a.ca_key.public_key(), b.root, b.root_key, ca=True)
    listed = replace(
        b.parsed(), document=b.body(cas=[*b.body()["cas"], ca_entry("bridge", cross, b.base)])
    )
    assert refusal(listed, others={"a": material(a.body())}) == (
        "信任列表列出了已承认信任域 a 的CA证书 / the list names a CA of the recognised domain a; "
        f"{SPEAKS}"
    )


def test_entries_skip_what_does_not_parse_and_give_kinds_keys_and_ids() -> None:
    b = domain("b")
    broken = b.body(
        cas=[{"certificate": "not a PEM"}, {"name": "x"}, "text", *b.body()["cas"]],
        seals=[{"certificate": 7}],
        tsa="none",
        qr_keys=[{"public_key_pem": "junk"}, {"kid": "00"}, b.qr_entry()],
    )
    found = list(entries(broken))
    assert [kind for kind, _, _ in found] == ["CA", "CA", "signer", "QR key"]
    qr = found[-1]
    assert qr[2] == b.kid.hex() and len(qr[2]) == 16 and qr[1].startswith(qr[2])
    assert all(kid is None for _, _, kid in found[:-1])
    assert list(entries({"cas": "x", "seals": None})) == []
    whole = material(b.body())
    assert len(whole.keys) == 6 and whole.kids == frozenset({b.kid.hex()})


# -- the own root ------------------------------------------------------------------------------


def test_a_ca_outside_the_root_refuses_the_list() -> None:
    b, c = domain("b"), domain("c")
    listed = parse(b.document(cas=[*b.body()["cas"], ca_entry("c", c.root, b.base)]))
    assert refusal(listed) == (
        "信任列表中的CA证书 CN=c Root 不属于该信任域的根 / the list's CA CN=c Root does not chain "
        f"to the domain's own root; {ONLY_OWN}"
    )


def test_a_seal_or_tsa_of_another_ca_refuses_the_list() -> None:
    b, c = domain("b"), domain("c")
    sealed = parse(b.document(seals=[seal_entry(b.seal), seal_entry(c.seal)]))
    assert refusal(sealed) == (
        "信任列表中的印章证书 CN=c Seal 不属于该信任域的根 / the list's seal CN=c Seal does not "
        f"chain to the domain's own root; {ONLY_OWN}"
    )
    stamped = parse(b.document(tsa={"certificate": pem(c.tsa)}))
    assert refusal(stamped) == (
        "信任列表中的时间戳服务证书 CN=c TSA 不属于该信任域的根 / the list's TSA CN=c TSA does not "
        f"chain to the domain's own root; {ONLY_OWN}"
    )
    assert own_root(parse(b.document(tsa=None)), None) == fingerprint(b.root)


def test_a_long_subject_is_cut_to_120_characters() -> None:
    b = domain("b")
    key = new_key()
    subject = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "O" * 60),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "U" * 60),
        x509.NameAttribute(NameOID.COMMON_NAME, "L" * 60),
    ])
    long = certificate("", key.public_key(), None, key, ca=True, subject=subject)
    text = subject.rfc4514_string()
    assert len(text) > 120
    listed = parse(b.document(cas=[*b.body()["cas"], ca_entry("long", long, b.base)]))
    message = refusal(listed)
    assert f"CA证书 {text[:120]} 不属于" in message and f"CA {text[:120]} does not" in message


def test_a_signer_that_chains_to_no_listed_root_refuses_the_list() -> None:
    b = domain("b")
    listed = parse(b.document(cas=[ca_entry("issuing", b.ca, b.base)]))
    assert refusal(listed) == (
        "签名者证书不链接到列表中的根CA / the signer certificate does not chain to a root of the "
        "list"
    )


def test_a_root_other_than_the_recorded_one_refuses_the_list() -> None:
    b = domain("b")
    root = fingerprint(b.root)
    assert refusal(b.parsed(), pinned_root="0" * 64) == (
        f"信任列表的根CA已变更 / the list's root {root} is not the root {'0' * 64} recorded when "
        "the domain was recognised; remove the domain and add it again"
    )


def test_chain_root_needs_a_real_self_signature_and_a_listed_root() -> None:
    b, c = domain("b"), domain("c")
    listed = b.parsed()
    assert chain_root(listed, b.seal) == b.root
    assert chain_root(listed, b.root) == b.root
    assert chain_root(listed, c.root) is None  # self-signed, but not a CA of the list
    assert chain_root(listed, c.seal) is None  # issued by no CA of the list
    # named like the root (subject == issuer), signed by another key: not self-signed
    key = new_key()
    impostor = certificate("b Root", key.public_key(), None, new_key(), ca=True)
    fake = replace(listed, cas=(CaEntry("fake", impostor, None, None),))
    assert chain_root(fake, impostor) is None
    # self-signed by its own key but with an issuer name that differs from its subject
    other = certificate("x", key.public_key(), None, key, ca=True,
                        issuer_name=x509.Name([]))
    odd = replace(listed, cas=(CaEntry("odd", other, None, None),))
    assert chain_root(odd, other) is None


def chain(depth: int) -> tuple[TrustList, x509.Certificate]:
    """A leaf ``depth`` certificates below a root, every CA listed."""
    key = new_key()
    top = certificate("r", key.public_key(), None, key, ca=True)
    cas = [CaEntry("r", top, None, None)]
    current, current_key = top, key
    for level in range(depth):
        next_key = new_key()
        current = certificate(f"c{level}", next_key.public_key(), current, current_key, ca=True)
        current_key = next_key
        cas.append(CaEntry(f"c{level}", current, None, None))
    return replace(domain("b").parsed(), cas=tuple(cas)), current


def test_chains_longer_than_eight_certificates_are_not_followed() -> None:
    listed, leaf = chain(7)
    assert chain_root(listed, leaf) == listed.cas[0].certificate
    listed, leaf = chain(8)
    assert chain_root(listed, leaf) is None


# -- origins -----------------------------------------------------------------------------------


def test_origin_is_scheme_host_and_port_with_default_ports() -> None:
    assert origin("HTTPS://B.Example/pki") == ("https", "b.example", 443)
    assert origin("http://b.example/x") == ("http", "b.example", 80)
    assert origin("https://b.example:8443/x") == ("https", "b.example", 8443)
    assert origin("ftp://b.example/x") == ("ftp", "b.example", None)
    assert origin("https://b.example:port/x") == ("https", "b.example", -1)
    assert origin("/relative") == ("", "", None)


OFF = "不在信任列表网址的源上 / the list's {0} is not on the origin (scheme, host, port) of its " \
      "trust-list URL"


def off_origin(member: str) -> str:
    return f"信任列表的 {member} " + OFF.format(member)


@pytest.mark.parametrize(
    ("changes", "member"),
    [
        ({"base_url": "https://evil.example"}, "domain.base_url"),
        ({"base_url": "http://b.example"}, "domain.base_url"),
        ({"base_url": "https://b.example:8443"}, "domain.base_url"),
        ({"base_url": ""}, "domain.base_url"),
        ({"ocsp": "https://10.0.0.1/ocsp"}, "cas[issuing].ocsp_url"),
        ({"crl": "http://b.example/crl"}, "cas[issuing].crl_url"),
    ],
)
def test_a_url_off_the_origin_refuses_the_list(changes: dict[str, str], member: str) -> None:
    b = domain("b")
    document = b.body()
    if "base_url" in changes:
        document["domain"]["base_url"] = changes["base_url"]
    if "ocsp" in changes:
        document["cas"][1]["ocsp_url"] = changes["ocsp"]
    if "crl" in changes:
        document["cas"][1]["crl_url"] = changes["crl"]
    assert refusal(parse(b.sign(document))) == off_origin(member)


def test_a_missing_base_url_is_refused_and_a_missing_ca_url_is_not_asked() -> None:
    b = domain("b")
    listed = b.parsed()
    with pytest.raises(InvalidInput) as caught:
        check_origins(replace(listed, base_url=None), b.url)  # type: ignore[arg-type]
    assert caught.value.message == off_origin("domain.base_url")
    bare = tuple(replace(ca, ocsp_url=None, crl_url="") for ca in listed.cas)
    check_origins(replace(listed, cas=bare), b.url)
    with pytest.raises(InvalidInput) as caught:
        check_origins(replace(listed, cas=(replace(listed.cas[0], ocsp_url=7),)), b.url)  # type: ignore[arg-type]
    assert caught.value.message == off_origin("cas[root].ocsp_url")


def test_same_origin_spelled_otherwise_is_accepted() -> None:
    b = domain("b")
    assert check_list(b.parsed(), "HTTPS://B.EXAMPLE:443/pki/trust-list", None, NONE, {}) == (
        fingerprint(b.root)
    )
    with pytest.raises(InvalidInput):
        check_list(b.parsed(), "https://b.example:444/pki/trust-list", None, NONE, {})


def test_a_long_member_name_is_cut_to_60_characters() -> None:
    b = domain("b")
    listed = b.parsed()
    name = "n" * 80
    ca = replace(listed.cas[0], name=name, ocsp_url="https://evil.example/ocsp")
    with pytest.raises(InvalidInput) as caught:
        check_origins(replace(listed, cas=(ca,)), b.url)
    member = f"cas[{name}].ocsp_url"[:60]
    assert caught.value.message == off_origin(member)


def test_the_rules_run_origins_then_keys_then_root() -> None:
    a, b, c = domain("a"), domain("b"), domain("c")
    document = b.body(cas=[*b.body()["cas"], ca_entry("c", c.root, b.base)],
                      seals=[seal_entry(a.seal)])
    document["domain"]["base_url"] = "https://evil.example"
    listed = replace(parse(b.sign(b.body())), document=document,
                     base_url="https://evil.example",
                     cas=(*b.parsed().cas, CaEntry("c", c.root, None, None)))
    others = {"a": material(a.body())}
    assert refusal(listed, others=others) == off_origin("domain.base_url")
    listed = replace(listed, base_url=b.base)
    assert "recognised domain a" in refusal(listed, others=others)
    assert "does not chain" in refusal(listed)
