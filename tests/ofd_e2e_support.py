"""A licence type switched to issue PDF and OFD through the catalogue API, a licence issued, both
documents downloaded, the SM2 root taken from the published trust list, and answers from
``POST /api/v1/verify`` — what the end-to-end OFD tests share."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.domain import Domain

OFD_MEDIA_TYPE = "application/ofd"
# LicenceTypeUpdate's fields: what a PUT of a type carries (its read-only fields are left out).
UPDATE_FIELDS = (
    "name",
    "name_en",
    "authority_name",
    "authority_level",
    "holder_category",
    "validity_rule",
    "validity_years",
    "issuing_level",
    "service_items",
    "service_item_fields",
    "field_schema",
    "issuer_codes",
    "layout",
    "document_formats",
)


@dataclass(frozen=True)
class Issued:
    answer: dict[str, Any]  # the 201 body
    pdf: bytes
    ofd: bytes

    @property
    def identifier(self) -> str:
        return str(self.answer["identifier"])


def set_formats(domain: Domain, code: str, formats: str) -> dict[str, Any]:
    """PUT the type with ``document_formats`` changed, as its defining department."""
    current = domain.client.get(f"/api/v1/catalogue/licence-types/{code}")
    assert current.status_code == 200, current.text
    body = {k: v for k, v in current.json().items() if k in UPDATE_FIELDS}
    body["document_formats"] = formats
    last = None
    for index, _ in enumerate(domain.credentials["departments"]):
        last = domain.client.put(
            f"/api/v1/catalogue/licence-types/{code}", json=body, headers=domain.auth(index)
        )
        if last.status_code == 200:
            assert last.json()["document_formats"] == formats
            return last.json()  # type: ignore[no-any-return]
    raise AssertionError(f"no demo department may change {code}: {last and last.text}")


def issue_both(domain: Domain, index: int = 0) -> Issued:
    code = domain.department(index)["sample_request"]["licence_type"]
    set_formats(domain, code, "both")
    answer = domain.issue(index)
    assert set(answer["documents"]) == {"pdf", "ofd"}, answer
    ofd = domain.client.get(
        f"/api/v1/licences/{answer['identifier']}/document.ofd", headers=domain.auth(index)
    )
    assert ofd.status_code == 200, ofd.text
    assert ofd.headers["content-type"].startswith(OFD_MEDIA_TYPE)
    return Issued(answer, domain.pdf(answer, index), ofd.content)


def verify(domain: Domain, data: bytes, name: str, media_type: str) -> dict[str, Any]:
    response = domain.client.post("/api/v1/verify", files={"file": (name, data, media_type)})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def verify_ofd(domain: Domain, data: bytes) -> dict[str, Any]:
    return verify(domain, data, "licence.ofd", OFD_MEDIA_TYPE)


def verify_page(domain: Domain, data: bytes) -> tuple[str, str]:
    """The clerk's /verify page given the OFD: the verdict it shows (its status element)."""
    page = domain.client.post("/verify", files={"file": ("licence.ofd", data, OFD_MEDIA_TYPE)})
    assert page.status_code == 200, page.text
    match = re.search(r'data-indication="([A-Z_]*)" data-sub-indication="([A-Z_]*)"', page.text)
    assert match, "the page shows no verdict"
    return match.group(1), match.group(2)


def sm2_root_pem(domain: Domain, path: Path) -> Path:
    """The SM2 root as a relying party gets it: from the published trust list."""
    listing = domain.client.get("/pki/trust-list")
    assert listing.status_code == 200, listing.text
    found = [
        ca["certificate"]
        for ca in _find_key(listing.json(), "sm2")["cas"]
        if ca["name"] == "sm2-root"
    ]
    assert len(found) == 1, found
    path.write_text(found[0])
    return path


def tsa_pems(domain: Domain, directory: Path) -> tuple[Path, Path]:
    """(the ECDSA root, the TSA's certificate) from the published trust list: what a relying
    party checks our timestamp tokens with."""
    listing = domain.client.get("/pki/trust-list").json()
    (root,) = [ca["certificate"] for ca in listing["cas"] if ca["name"] == "root"]
    (directory / "ecdsa-root.pem").write_text(root)
    (directory / "tsa.pem").write_text(listing["tsa"]["certificate"])
    return directory / "ecdsa-root.pem", directory / "tsa.pem"


def _find_key(tree: Any, key: str) -> Any:
    if isinstance(tree, dict):
        if key in tree:
            return tree[key]
        for value in tree.values():
            hit = _find_key(value, key)
            if hit is not None:
                return hit
    return None


def custom_data(ofd_xml: bytes, name: str) -> str:
    """A CustomData value of OFD.xml's DocInfo, by regex (no product XML code)."""
    match = re.search(
        rf"<ofd:CustomData\s+Name=\"{re.escape(name)}\"\s*>([^<]*)</ofd:CustomData>",
        ofd_xml.decode(),
    )
    assert match, f"OFD.xml has no CustomData {name}"
    return match.group(1).strip()


def pdf_qr_texts(pdf: bytes, directory: Path) -> list[str]:
    """The QR codes on the PDF's first page, rendered by poppler and read by zxing-cpp."""
    import subprocess

    from PIL import Image

    from tests.tools import require, require_module

    zxingcpp = require_module("zxingcpp")
    source = directory / "licence.pdf"
    source.write_bytes(pdf)
    subprocess.run(
        [require("pdftoppm"), "-r", "150", "-png", "-f", "1", "-l", "1", source, directory / "p"],
        check=True,
        timeout=60,
    )
    (page,) = sorted(directory.glob("p*.png"))
    return [
        b.text
        for b in zxingcpp.read_barcodes(Image.open(page))
        if b.format == zxingcpp.BarcodeFormat.QRCode
    ]
