"""A face-like placeholder for the demo's holder photos, drawn with Pillow: a head and shoulders
in flat colours on a pale ground, varied by a seed. It is no one's likeness — demo licences
must never print a real person — and it exercises the photo path (``licences.photos``) the way
a counter's camera does, at 358×441 pixels (a 1-inch ID photo at 300 dpi).
"""

from __future__ import annotations

import base64
import hashlib
import io

from PIL import Image, ImageDraw

WIDTH, HEIGHT = 358, 441


def placeholder_face(seed: str) -> bytes:
    """A PNG placeholder portrait; the same seed gives the same picture."""
    h = hashlib.sha256(seed.encode()).digest()
    ground = (224 + h[0] % 24, 232 + h[1] % 20, 240 + h[2] % 14)
    skin = (226 - h[3] % 40, 188 - h[4] % 40, 160 - h[5] % 40)
    hair = (30 + h[6] % 50, 24 + h[7] % 30, 20 + h[8] % 30)
    coat = (40 + h[9] % 80, 60 + h[10] % 80, 90 + h[11] % 100)
    image = Image.new("RGB", (WIDTH, HEIGHT), ground)
    draw = ImageDraw.Draw(image)
    cx = WIDTH // 2
    draw.ellipse((cx - 150, 300, cx + 150, 560), fill=coat)  # shoulders
    draw.rectangle((cx - 32, 250, cx + 32, 320), fill=skin)  # neck
    draw.ellipse((cx - 92, 70, cx + 92, 290), fill=skin)  # face
    draw.chord((cx - 98, 52, cx + 98, 220), 180, 360, fill=hair)  # hair
    for dx in (-38, 38):  # eyes
        draw.ellipse((cx + dx - 11, 162, cx + dx + 11, 176), fill=(255, 255, 255))
        draw.ellipse((cx + dx - 5, 164, cx + dx + 5, 174), fill=hair)
    draw.line((cx, 180, cx - 8, 222, cx + 4, 226), fill=(170, 130, 110), width=3)  # nose
    draw.arc((cx - 34, 222, cx + 34, 262), 20, 160, fill=(150, 70, 70), width=4)  # mouth
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def placeholder_face_b64(seed: str) -> str:
    """The placeholder as an issuance request carries it (base64)."""
    return base64.b64encode(placeholder_face(seed)).decode()
