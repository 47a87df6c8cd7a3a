"""Printed by ``make run``: where to click first, and a curl line for the demo licence's PDF."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from api.container import build_services
from api.ops import demo
from api.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args()
    settings = Settings()
    if args.data_dir is not None:
        settings.data_dir = args.data_dir
    services = build_services(settings)
    base = settings.public_base_url.rstrip("/")
    licence = services.setup.first_licence(demo.MARKET["code"])
    if licence is None:
        raise SystemExit("no demo licence; run `elicence init --demo`")
    pdf = services.setup.document(licence.identifier)
    copy = settings.data_dir / "demo-licence.pdf"
    copy.write_bytes(pdf)
    credentials = json.loads((settings.data_dir / "demo-credentials.json").read_text())
    key = credentials["departments"][0]["api_key"]
    print(
        f"""
elicence 示范服务 / demo service
  API 文档 / API docs:            {base}/docs
  核验页面 / verification page:   {services.issuance.verify_url(licence.verify_code)}
  上传核验 / upload to verify:     {base}/verify
  证照PDF / licence PDF:          {base}/api/v1/licences/{licence.identifier}/pdf
      curl -H 'Authorization: Bearer {key}' -o licence.pdf \\
           {base}/api/v1/licences/{licence.identifier}/pdf
      (a copy is already at {copy})
  部门凭证 / credentials:          {settings.data_dir / "demo-credentials.json"}
  持证人登录 / holder sign-in:      {base}/me
      (开发用身份认证，仅供演示 / development identity provider at {base}/dev-idp, demo only)
""",
        flush=True,
    )
    ofd = services.ofd_desk.first() if services.ofd_desk is not None else None
    if ofd is not None:  # the national form: a type issued as PDF and OFD (api.ops.demo)
        print(
            f"  国密OFD / OFD (SM2 seal):        {base}/api/v1/licences/{ofd}/document.ofd\n"
            f"      curl -H 'Authorization: Bearer {key}' -o licence.ofd \\\n"
            f"           {base}/api/v1/licences/{ofd}/document.ofd\n",
            flush=True,
        )


if __name__ == "__main__":
    main()
