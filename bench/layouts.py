"""What page templates and holder photos cost: ``python -m bench.layouts [--repeat N]``.

Each figure is the median of ``--repeat`` runs (default 10) of the real function:

* ``photo_ms``: ``licences.photos.decode_photo`` of the demo's 358×441 placeholder (PNG) and of
  a 1500×2000 photo-like JPEG — the checks, the decode and the re-encoding;
* ``page_ms`` and ``page_bytes``: ``licences.layout_page.render_layout`` of the demo health
  certificate's A5 template without a photo, with the placeholder and with the large photo;
* ``specimen_ms``: ``licences.specimen.Specimens.pdf`` the first time and once cached.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from PIL import Image, ImageFilter

from api.ops import demo
from api.ops.demo_faces import placeholder_face_b64
from core.fonts import BOLD, REGULAR, cjk_font_path
from licences.catalogue_rules import field_layout, normalise
from licences.layout import parse_layout
from licences.layout_page import render_layout
from licences.models import LicenceType
from licences.photos import decode_photo
from licences.render import LicenceView
from licences.specimen import Specimens


def _median_ms(work: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 2)


def _large_photo() -> str:
    noise = Image.effect_noise((1500, 2000), 30).convert("RGB").filter(ImageFilter.GaussianBlur(3))
    out = io.BytesIO()
    noise.save(out, format="JPEG", quality=85)
    return base64.b64encode(out.getvalue()).decode()


def run(repeat: int) -> dict[str, Any]:
    regular, bold = cjk_font_path(REGULAR), cjk_font_path(BOLD)
    entry = normalise(LicenceType(holder_id_type="", **demo.HEALTH_CERTIFICATE))
    sample = next(s for s in demo.SAMPLE_LICENCES if s["licence_type"] == entry.code)
    properties = entry.field_schema["properties"]
    layout = parse_layout(entry.layout, properties)
    view = LicenceView(
        title=entry.name, title_en=entry.name_en, identifier=f"{entry.code}-BENCH-001",
        holder_label="持证人", holder_name=sample["holder"]["name"], holder_id=sample["holder"]["id"],
        fields=field_layout(entry, sample["fields"]), field_names=tuple(sample["fields"]),
        issuer_name=demo.HEALTH["name"], issue_date="2026年12月7日", valid_from="2026年12月7日",
        valid_until="2027年12月6日", verify_url="HTTPS://LICENCE.EXAMPLE.GOV.CN/V/" + "A" * 300,
        version="001",
    )  # fmt: skip
    texts = {"placeholder": placeholder_face_b64(sample["photo"]), "1500x2000": _large_photo()}
    photos = {name: decode_photo(text).jpeg for name, text in texts.items()}
    render_layout(
        view, layout, regular_font=regular, bold_font=bold
    )  # fonts registered outside the timing
    pages: dict[str, bytes | None] = {"none": None, **photos}
    specimens = Specimens(regular_font=regular, bold_font=bold)
    start = time.perf_counter()
    specimens.pdf(entry)
    first = round((time.perf_counter() - start) * 1000, 2)
    return {
        "photo_ms": {n: _median_ms(partial(decode_photo, t), repeat) for n, t in texts.items()},
        "page_ms": {
            n: _median_ms(
                partial(render_layout, view, layout, photo=p, regular_font=regular, bold_font=bold),
                repeat,
            )
            for n, p in pages.items()
        },
        "page_bytes": {
            n: len(render_layout(view, layout, photo=p, regular_font=regular, bold_font=bold).pdf)
            for n, p in pages.items()
        },
        "specimen_ms": {"first": first, "cached": _median_ms(lambda: specimens.pdf(entry), repeat)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=10)
    print(json.dumps(run(parser.parse_args().repeat), indent=2))


if __name__ == "__main__":
    main()
