"""The CJK font every rendered page and seal image uses.

The font comes from a PyPI package under the SIL Open Font License, so a licence renders the same
on every machine. The package ships a variable font whose default instance is Thin; static
Regular and Bold instances are made once (about ten seconds each) and cached on disk, never per
request.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

REGULAR = 400
BOLD = 700


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "elicence" / "fonts"


def _variable_font() -> Path:
    import justmytype_intl_cjk

    root = Path(justmytype_intl_cjk.__file__).parent
    matches = sorted(root.rglob("NotoSansSC*.ttf"))
    if not matches:
        raise RuntimeError("NotoSansSC font not found in justmytype-intl-cjk")
    return matches[0]


def cjk_font_path(weight: int = REGULAR, cache_dir: Path | None = None) -> Path:
    """Path of a static NotoSansSC instance at ``weight``, made on first use."""
    directory = cache_dir or default_cache_dir()
    target = directory / f"NotoSansSC-{weight}.ttf"
    if target.exists():
        return target
    from fontTools.ttLib import TTFont
    from fontTools.varLib.instancer import instantiateVariableFont

    directory.mkdir(parents=True, exist_ok=True)
    font = TTFont(str(_variable_font()))
    static = instantiateVariableFont(font, {"wght": weight}, updateFontNames=False)
    # Write beside the target and rename, so two processes never see half a font.
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".ttf.part")
    os.close(fd)
    try:
        static.save(tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target
