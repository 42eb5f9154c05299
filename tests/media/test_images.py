"""The photo-proof pipeline on real bytes: what is refused (with which code) and what is stored."""
from __future__ import annotations

import resource
import threading
import time
import warnings
from io import BytesIO

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageOps

from app.errors import DomainError

from miniprogram_api.problems import status_of
from app.media import images
from tests.media.conftest import XMP, encode, exif_with, png_declaring, scene

MP40 = 40_000_000


def _refused(data: bytes, code: str, max_pixels: int = MP40) -> DomainError:
    """Both entry points refuse `data` with `code`; the process() error is returned."""
    with pytest.raises(DomainError) as inspected:
        images.inspect(data, max_pixels)
    assert inspected.value.code == code
    with pytest.raises(DomainError) as processed:
        images.process(data, max_pixels=max_pixels)
    assert processed.value.code == code
    return processed.value


def _opened(data: bytes) -> Image.Image:
    im = Image.open(BytesIO(data))
    im.load()
    return im


# --- accepted -------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_jpeg_png_and_webp_are_accepted_and_stored_as_clean_jpegs(photo, fmt):
    data = photo(fmt, size=(900, 600))
    assert images.sniff_format(data) == fmt
    assert images.inspect(data, MP40) == images.ImageInfo(fmt, 900, 600)

    result = images.process(data, max_pixels=MP40)

    assert result.format == fmt
    assert (result.width, result.height) == (900, 600)
    for blob in (result.image, result.thumbnail):
        assert blob.startswith(b"\xff\xd8\xff") and blob.endswith(b"\xff\xd9")
        assert _opened(blob).format == "JPEG"
    assert _opened(result.thumbnail).size == (320, 213)
    assert 0 <= result.dhash < 1 << 64


def test_mpo_jpeg_from_a_phone_is_accepted_using_its_first_frame():
    first, second = scene((640, 480), seed=1), scene((640, 480), seed=2)
    data = encode(first, "MPO", save_all=True, append_images=[second])
    assert Image.open(BytesIO(data)).n_frames == 2

    result = images.process(data, max_pixels=MP40)

    assert images.looks_alike(result.dhash, images.dhash(first))
    assert not images.looks_alike(result.dhash, images.dhash(second))


def test_progressive_and_cmyk_jpegs_are_accepted(photo):
    assert images.process(photo("JPEG", progressive=True), max_pixels=MP40).width == 800
    cmyk = encode(scene((400, 300)).convert("CMYK"), "JPEG")
    assert _opened(images.process(cmyk, max_pixels=MP40).image).mode == "RGB"


def test_transparent_png_is_composited_on_white():
    image = Image.new("RGBA", (200, 100), (255, 0, 0, 255))
    image.paste((0, 0, 0, 0), (100, 0, 200, 100))  # right half fully transparent black
    stored = _opened(images.process(encode(image, "PNG"), max_pixels=MP40).image)
    assert all(abs(c - 255) <= 3 for c in stored.getpixel((150, 50)))
    red = stored.getpixel((50, 50))
    assert red[0] > 240 and red[1] < 15 and red[2] < 15


def test_palette_png_with_transparent_index_is_composited_on_white():
    image = Image.new("P", (64, 64), 1)
    image.putpalette([0, 0, 0, 0, 128, 0] + [0] * 762)
    image.paste(0, (0, 0, 32, 64))
    data = encode(image, "PNG", transparency=0)
    stored = _opened(images.process(data, max_pixels=MP40).image)
    assert min(stored.getpixel((10, 10))) >= 250
    assert stored.getpixel((50, 10))[1] > 110


def test_sixteen_bit_grayscale_png_keeps_its_tones():
    image = Image.new("I;16", (64, 64), 32768)  # mid grey in 16 bits
    stored = _opened(images.process(encode(image, "PNG"), max_pixels=MP40).image)
    assert all(120 <= c <= 136 for c in stored.getpixel((32, 32)))


# --- refused by format: 415 -----------------------------------------------------------------

REFUSED_FORMATS = {
    "html_named_jpg": b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>",
    "svg": b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
    "tiff": encode(scene((64, 64)), "TIFF"),
    "gif": encode(scene((64, 64)), "GIF"),
    "animated_gif": encode(scene((64, 64), 1), "GIF", save_all=True,
                           append_images=[scene((64, 64), 2)], duration=100, loop=0),
    "zip": b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"\x00" * 40,
    "bmp": encode(scene((64, 64)), "BMP"),
    "empty": b"",
    "jpeg_magic_cut_short": b"\xff\xd8",
    "riff_but_not_webp": b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 32,
}


@pytest.mark.parametrize("name", sorted(REFUSED_FORMATS))
def test_anything_but_jpeg_png_or_webp_by_its_bytes_is_415(name):
    error = _refused(REFUSED_FORMATS[name], "unsupported_media_type")
    assert status_of(error) == 415 and "JPEG" in error.detail


# --- refused as invalid: 422 ----------------------------------------------------------------

def test_animated_png_is_422():
    frames = [scene((120, 90), seed) for seed in (1, 2, 3)]
    data = encode(frames[0], "PNG", save_all=True, append_images=frames[1:], duration=100)
    assert b"acTL" in data
    assert "动图" in _refused(data, "invalid_image").detail


def test_animated_webp_is_422():
    frames = [scene((120, 90), seed) for seed in (1, 2)]
    data = encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=100)
    assert b"ANIM" in data
    assert "动图" in _refused(data, "invalid_image").detail


def test_tiny_png_declaring_60000_by_60000_is_422_at_once_without_allocating():
    data = png_declaring(60000, 60000)
    assert len(data) < 1024
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()

    error = _refused(data, "invalid_image")

    assert time.perf_counter() - started < 0.5
    assert "像素" in error.detail  # refused by the size check, not by a failed decode
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    assert grown_kib < 50 * 1024


def test_webp_declaring_a_huge_canvas_is_422_before_libwebp_sees_it():
    data = encode(scene((64, 64)), "WEBP", exif=exif_with(1))  # exif forces the VP8X header
    assert data[12:16] == b"VP8X"
    huge = data[:24] + (16383 - 1).to_bytes(3, "little") * 2 + data[30:]
    assert "像素" in _refused(huge, "invalid_image").detail


def test_jpeg_declaring_a_huge_frame_is_422(photo):
    data = bytearray(photo("JPEG", size=(64, 48)))
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = (60000).to_bytes(2, "big") * 2  # height, width
    assert "像素" in _refused(bytes(data), "invalid_image").detail


@pytest.mark.parametrize("size, allowed", [((100, 100), True), ((101, 100), False),
                                           ((150, 100), False), ((300, 100), False)])
def test_pixel_limit_is_the_configured_one(photo, size, allowed):
    data = photo("PNG", size=size)
    if allowed:
        assert images.process(data, max_pixels=10_000).width == 100
    else:
        assert "像素" in _refused(data, "invalid_image", max_pixels=10_000).detail


def test_pillow_global_limit_and_warning_filters_are_left_as_they_were(photo):
    limit_before, filters_before = Image.MAX_IMAGE_PIXELS, list(warnings.filters)
    _refused(photo("PNG", size=(150, 100)), "invalid_image", max_pixels=10_000)
    images.process(photo("JPEG"), max_pixels=MP40)
    assert Image.MAX_IMAGE_PIXELS == limit_before
    assert list(warnings.filters) == filters_before


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_truncated_image_is_422(photo, fmt):
    data = photo(fmt, size=(800, 600))
    assert "损坏" in _refused(data[: len(data) // 2], "invalid_image").detail


def test_garbage_after_a_jpeg_signature_is_422():
    _refused(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8, "invalid_image")


def test_jpeg_with_thousands_of_scans_is_422_before_decoding(photo):
    data = photo("JPEG", size=(256, 256), progressive=True)
    last_sos = data.rindex(b"\xff\xda")
    repeated = data[:last_sos] + data[last_sos:-2] * 150 + b"\xff\xd9"
    assert images.process(data, max_pixels=MP40).width == 256  # an ordinary progressive JPEG
    assert "编码异常" in _refused(repeated, "invalid_image").detail


# --- what is stored ---------------------------------------------------------------------------

def test_jpeg_with_zip_appended_is_stored_only_as_the_clean_reencode(photo):
    zip_bytes = b"PK\x03\x04" + b"\x14\x00" * 20 + b"secret.txt" + b"PK\x05\x06" + b"\x00" * 18
    result = images.process(photo("JPEG") + zip_bytes, max_pixels=MP40)
    for blob in (result.image, result.thumbnail):
        assert b"PK\x03\x04" not in blob and b"secret.txt" not in blob
        assert blob.endswith(b"\xff\xd9")


def test_exif_gps_xmp_and_comment_are_gone_and_the_photo_is_upright():
    source = scene((3000, 2000), seed=5)
    source.paste((255, 0, 0), (0, 0, 300, 300))  # red block in the stored top-left corner
    data = encode(source, "JPEG", quality=90, exif=exif_with(orientation=6, gps=True), xmp=XMP,
                  comment=b"home: 3 Lane St")
    for marker in (b"Exif", b"GPS", b"http://ns.adobe.com/xap", b"home:"):
        assert marker in data  # the upload really carries them
    assert Image.open(BytesIO(data)).getexif().get_ifd(0x8825)

    result = images.process(data, max_pixels=MP40)

    for blob in (result.image, result.thumbnail):
        for marker in (b"Exif", b"GPS", b"http://ns.adobe.com/xap", b"home:", b"PhoneMaker"):
            assert marker not in blob
        stored = _opened(blob)
        assert not stored.getexif() and "icc_profile" not in stored.info
    stored = _opened(result.image)
    # orientation 6 means "turn 90 degrees clockwise to view": landscape 3000x2000 becomes portrait
    assert (result.width, result.height) == stored.size == (1365, 2048)
    assert stored.getpixel((stored.width - 20, 20))[0] > 200  # the red block is now top right
    assert stored.getpixel((20, 20))[0] < 200 or stored.getpixel((20, 20))[1] > 60
    assert max(_opened(result.thumbnail).size) == 320


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_matches_pillows_exif_transpose(orientation):
    source = Image.new("RGB", (120, 80), (0, 0, 255))
    source.paste((255, 0, 0), (0, 0, 40, 40))
    source.paste((0, 255, 0), (80, 40, 120, 80))
    data = encode(source, "JPEG", quality=95, exif=exif_with(orientation))
    expected = ImageOps.exif_transpose(_opened(data))

    stored = _opened(images.process(data, max_pixels=MP40).image)

    assert stored.size == expected.size
    for point in [(5, 5), (stored.width - 5, 5), (5, stored.height - 5),
                  (stored.width - 5, stored.height - 5)]:
        assert all(abs(a - b) < 40 for a, b in zip(stored.getpixel(point), expected.getpixel(point)))


def test_twelve_megapixel_photo_is_capped_near_2048_with_a_320_thumbnail(photo):
    result = images.process(photo("JPEG", size=(4000, 3000), quality=90), max_pixels=MP40)
    assert 2048 * images.DRAFT_TOLERANCE <= max(result.width, result.height) <= 2048
    assert result.width / result.height == pytest.approx(4 / 3, rel=0.01)
    assert max(_opened(result.thumbnail).size) == 320


def test_large_png_is_resized_to_exactly_2048(photo):
    result = images.process(photo("PNG", size=(3000, 1500), compress_level=1), max_pixels=MP40)
    assert (result.width, result.height) == (2048, 1024)


# --- likeness -------------------------------------------------------------------------------

def test_same_photo_reencoded_or_resized_looks_alike_and_another_does_not():
    original = scene((1600, 1200), seed=7)
    first = images.process(encode(original, "JPEG", quality=92), max_pixels=MP40).dhash
    variants = [
        encode(original, "JPEG", quality=40),
        encode(original.resize((800, 600)), "PNG"),
        encode(original.resize((640, 480)), "WEBP", quality=70),
        images.process(encode(original, "JPEG"), max_pixels=MP40).image,  # our own output again
    ]
    for data in variants:
        assert images.hamming(first, images.process(data, max_pixels=MP40).dhash) \
            <= images.LOOKS_ALIKE_BITS
    for seed in (8, 9, 10, 11):
        other = images.process(encode(scene((1600, 1200), seed), "JPEG"), max_pixels=MP40).dhash
        assert images.hamming(first, other) > 3 * images.LOOKS_ALIKE_BITS
        assert not images.looks_alike(first, other)


def test_hash_fits_a_signed_bigint_and_back():
    for value in (0, 1, (1 << 63) - 1, 1 << 63, (1 << 64) - 1):
        signed = images.signed64(value)
        assert -(1 << 63) <= signed < 1 << 63
        assert images.unsigned64(signed) == value
    assert images.hamming(0b1011, 0b0001) == 2


def test_upload_over_the_byte_limit_is_413():
    images.ensure_upload_size(10 * 1024 * 1024, 10 * 1024 * 1024)
    images.ensure_upload_size(None, 10)
    with pytest.raises(DomainError) as caught:
        images.ensure_upload_size(10 * 1024 * 1024 + 1, 10 * 1024 * 1024)
    assert (caught.value.code, status_of(caught.value)) == ("upload_too_large", 413)
    assert "10 MB" in caught.value.detail


# --- robustness -------------------------------------------------------------------------------

def test_threads_mixing_bombs_and_photos_each_get_their_own_answer(photo):
    good, bomb = photo("JPEG", size=(1200, 900)), png_declaring(60000, 60000)
    outcomes: list[str] = []

    def work(data: bytes) -> None:
        for _ in range(5):
            try:
                images.process(data, max_pixels=MP40)
                outcomes.append("ok")
            except DomainError as exc:
                outcomes.append(exc.code)

    threads = [threading.Thread(target=work, args=(good if i % 2 else bomb,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["invalid_image"] * 15 + ["ok"] * 15


SEEDS = {fmt: encode(scene((96, 72), 3), fmt) for fmt in ("JPEG", "PNG", "WEBP")}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fmt=st.sampled_from(sorted(SEEDS)), data=st.data())
def test_damaged_files_only_ever_raise_app_errors(fmt, data):
    blob = bytearray(SEEDS[fmt])
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(blob) - 1))
        blob[position] = data.draw(st.integers(0, 255))
    blob = blob[: data.draw(st.integers(1, len(blob)))]
    try:
        result = images.process(bytes(blob), max_pixels=MP40)
    except DomainError as exc:
        assert exc.code in {"invalid_image", "unsupported_media_type"}
    else:
        assert result.image.startswith(b"\xff\xd8") and result.image.endswith(b"\xff\xd9")
