"""Photos made in memory with Pillow, and a bare Flask app for storage and signing.

Nothing here touches the database or Redis: the media modules are pure functions on bytes plus a
folder, so these tests run without the session's PostgreSQL fixtures.
"""
from __future__ import annotations

import random
import struct
import zlib
from io import BytesIO

import pytest
from flask import Flask
from PIL import Image, ImageDraw

XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-'
       b'syntax-ns#"><rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" '
       b'exif:GPSLatitude="25,6.5N" exif:GPSLongitude="118,52.1E"/></rdf:RDF></x:xmpmeta>')


def scene(size: tuple[int, int] = (800, 600), seed: int = 0) -> Image.Image:
    """A photo-like RGB picture: a tilted gradient, a few shapes and sensor-like noise.

    Different seeds give different scenes (far apart by dHash); the same seed gives the same one.
    """
    rng = random.Random(seed)
    width, height = size
    gradient = Image.linear_gradient("L").rotate(rng.uniform(0, 360)).resize(size)
    base = Image.merge("RGB", [gradient.point(lambda v, k=rng.uniform(0.3, 1.0): int(v * k))
                               for _ in range(3)])
    draw = ImageDraw.Draw(base)
    for _ in range(8):
        x0, y0 = rng.randrange(width), rng.randrange(height)
        x1, y1 = x0 + rng.randrange(width // 8, width // 2), y0 + rng.randrange(height // 8, height // 2)
        colour = tuple(rng.randrange(256) for _ in range(3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=colour)
    noise = Image.effect_noise(size, 24).convert("RGB")
    return Image.blend(base, noise, 0.08)


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    out = BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def exif_with(orientation: int | None = None, gps: bool = False) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    if orientation:
        exif[0x0112] = orientation
    if gps:
        exif.get_ifd(0x8825).update({
            1: "N", 2: (25.0, 6.0, 30.0), 3: "E", 4: (118.0, 52.0, 6.0), 18: "WGS-84",
        })
    return exif


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_declaring(width: int, height: int) -> bytes:
    """A valid-looking PNG whose IHDR declares width x height, with one tiny IDAT (far too short)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    idat = zlib.compress(b"\x00" * 512)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat)
            + png_chunk(b"IEND", b""))


@pytest.fixture
def photo():
    """photo(fmt="JPEG", size=(800, 600), seed=0, **save params) -> encoded bytes."""
    def make(fmt: str = "JPEG", size: tuple[int, int] = (800, 600), seed: int = 0, **params) -> bytes:
        return encode(scene(size, seed), fmt, **params)
    return make


@pytest.fixture
def media_app(tmp_path):
    """A bare Flask app with just the settings the media modules read."""
    application = Flask("media-tests")
    application.config.update(SECRET_KEY="test-secret-key-for-media-links-0123456789",
                              MEDIA_ROOT=str(tmp_path / "media"))
    with application.app_context():
        yield application
