"""Photo checks and re-encoding for proofs: pure functions on bytes, no I/O, no Flask.

`sniff_format` names the format from magic bytes alone (JPEG, PNG or WebP; anything else is 415).
`inspect` proves a file decodes cleanly under a pixel limit. `process` turns an upload into the only
thing we ever store: an upright JPEG with no metadata, capped on its long side, a thumbnail, and a
dHash to spot a proof that looks like an earlier one. Every rejection leaves as a typed error
(`upload_too_large`, `unsupported_media_type`, `invalid_image`); a bomb or a corrupt file never
escapes as a crash, and nothing is decoded before its declared size has passed `max_pixels`.
"""
from __future__ import annotations

import re
import struct
import threading
import warnings
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from io import BytesIO
from typing import Iterator

from PIL import Image

from app.errors import DomainError, Invalid, TooLarge, UnsupportedType

LOOKS_ALIKE_BITS = 6  # dHash distance (of 64 bits) at or under which two photos look alike
JPEG_QUALITY = 85
# libjpeg writes at most ~10 scans; a progressive file with thousands of scans makes the decoder walk
# every coefficient thousands of times (a CPU bomb in a few KB).
MAX_JPEG_SCANS = 100
# Draft (DCT-domain) decoding may land a little under the cap: a 4000 px photo decoded at 1/2 scale
# is 2000 px, which we keep rather than decode 4x the pixels to reach exactly 2048.
DRAFT_TOLERANCE = 0.95
WHITE = (255, 255, 255)

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Inside entropy-coded data FF 00 is a stuffed byte, FF D0-D7 a restart and FF FF fill: any other
# byte after FF starts the next marker.
_NEXT_MARKER = re.compile(rb"\xff[\x01-\xcf\xd8-\xfe]")
# What Pillow raises on hostile input is an open set; these are the ones decoders are known to use.
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, IndexError, KeyError, TypeError,
                  struct.error, zlib.error, MemoryError)
_BOMB_ERRORS = (Image.DecompressionBombError, Image.DecompressionBombWarning)
# The same table as ImageOps.exif_transpose, applied by hand after the resize (fewer pixels to turn).
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90,
}
_ORIENTATION_TAG = 0x0112

_CORRUPT = "图片已损坏或不完整，无法读取"
_ANIMATED = "不支持动图，请上传一张静态照片"


@dataclass(frozen=True)
class ImageInfo:
    format: str
    width: int
    height: int


@dataclass(frozen=True)
class ProcessedPhoto:
    """What gets stored: both images are fresh JPEG encodes of the decoded pixels, nothing else."""

    image: bytes = field(repr=False)
    thumbnail: bytes = field(repr=False)
    width: int
    height: int
    dhash: int  # unsigned 64-bit; see signed64() for a BIGINT column
    format: str  # the upload's format, as sniffed


def ensure_upload_size(size: int | None, max_bytes: int) -> None:
    """413 when a body (declared or read) is over the upload limit; None means not known yet."""
    if size is not None and size > max_bytes:
        raise TooLarge("upload_too_large",
                       f"照片不能超过 {max_bytes / (1024 * 1024):g} MB")


def sniff_format(head: bytes) -> str:
    """The Pillow format name of an accepted photo, from its first 12+ bytes; else 415."""
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(_PNG_SIGNATURE):
        return "PNG"
    if len(head) >= 12 and head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "WEBP"
    raise UnsupportedType("unsupported_media_type", "只支持 JPEG、PNG 或 WebP 格式的照片")


def inspect(data: bytes, max_pixels: int) -> ImageInfo:
    """Check that `data` is one accepted, still, whole image within `max_pixels`, decoding it fully."""
    im, fmt = _open(data, max_pixels)
    with im:
        width, height = im.size
        if fmt == "JPEG":
            # 1/8-scale decoding still reads every entropy-coded byte (so truncation and broken
            # Huffman data still fail) but skips most of the IDCT: about twice as fast.
            im.draft(im.mode, (1, 1))
        _load(im)
        return ImageInfo(fmt, width, height)


def process(data: bytes, *, max_pixels: int, long_side: int = 2048,
            thumb_side: int = 320) -> ProcessedPhoto:
    """Check `data` like inspect(), then re-encode it upright, capped, stripped, with a thumbnail."""
    im, fmt = _open(data, max_pixels)
    with im:
        if fmt == "JPEG":
            _draft(im, long_side)
        _load(im)
        orientation = _orientation(im)  # after load(): a PNG's eXIf chunk may follow its pixels
        try:
            out = _flatten(_upright(_fit(_normalize_mode(im), long_side), orientation))
            thumb = out.copy()
            thumb.thumbnail((thumb_side, thumb_side), Image.Resampling.LANCZOS, reducing_gap=2.0)
            return ProcessedPhoto(image=_encode_jpeg(out), thumbnail=_encode_jpeg(thumb),
                                  width=out.width, height=out.height, dhash=dhash(thumb),
                                  format=fmt)
        except MemoryError:
            raise _invalid("图片过大，无法处理") from None


def dhash(image: Image.Image) -> int:
    """64-bit difference hash: each bit says whether a pixel is brighter than its right neighbour
    on a 9x8 grayscale copy, so it survives re-encoding and resizing but not a different scene."""
    px = image.convert("L").resize((9, 8), Image.Resampling.LANCZOS).tobytes()
    value = 0
    for row in range(8):
        for col in range(8):
            value = (value << 1) | (px[row * 9 + col] > px[row * 9 + col + 1])
    return value


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def looks_alike(a: int, b: int) -> bool:
    return hamming(a, b) <= LOOKS_ALIKE_BITS


def signed64(value: int) -> int:
    """An unsigned 64-bit hash as the signed integer a PostgreSQL BIGINT can hold."""
    return value - (1 << 64) if value >= 1 << 63 else value


def unsigned64(value: int) -> int:
    return value & 0xFFFF_FFFF_FFFF_FFFF


# --- checking -------------------------------------------------------------------------------

def _invalid(detail: str = _CORRUPT) -> DomainError:
    return Invalid("invalid_image", detail)


def _too_many_pixels(max_pixels: int) -> DomainError:
    return _invalid(f"图片像素过多（上限 {max_pixels / 10_000:g} 万像素）")


def _check_pixels(size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width < 1 or height < 1:
        raise _invalid()
    if width * height > max_pixels:
        raise _too_many_pixels(max_pixels)


_PILLOW_GLOBALS = threading.Lock()


@contextmanager
def _pillow_limits(max_pixels: int) -> Iterator[None]:
    """Pillow's own bomb guard with our limit, its warning made an error, only for this block.

    Both knobs are process-wide (Image.MAX_IMAGE_PIXELS and the warnings filters), so they are
    changed and restored under one lock, held only around Image.open(): header parsing, which is
    where Pillow applies the guard. Decoding runs outside the lock, in parallel across threads.
    Other code never sees a changed value once the block has left. Our own _check_pixels() is the
    guard that does not depend on any of this.
    """
    with _PILLOW_GLOBALS, warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = max_pixels
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _open(data: bytes, max_pixels: int) -> tuple[Image.Image, str]:
    fmt = sniff_format(data[:16])
    if fmt == "WEBP":
        # libwebp allocates the whole canvas when its decoder is created: check before Pillow can.
        size = _webp_canvas_size(data)
        if size is None:
            raise _invalid()
        _check_pixels(size, max_pixels)
    elif fmt == "JPEG" and _jpeg_scans_exceed(data, MAX_JPEG_SCANS):
        raise _invalid("图片编码异常，无法读取")
    try:
        with _pillow_limits(max_pixels):
            # formats=[...]: only the sniffed decoder may run, never TIFF, EPS, SVG-ish or others.
            im = Image.open(BytesIO(data), formats=[fmt])
    except _BOMB_ERRORS:
        raise _too_many_pixels(max_pixels) from None
    except _DECODE_ERRORS:
        raise _invalid() from None
    try:
        _check_pixels(im.size, max_pixels)
        # A JPEG with several frames is an MPO (phones add a depth map or preview): we use frame 0.
        if fmt != "JPEG" and (getattr(im, "is_animated", False) or getattr(im, "n_frames", 1) > 1):
            raise _invalid(_ANIMATED)
    except DomainError:
        im.close()
        raise
    return im, fmt


def _load(im: Image.Image) -> None:
    # load() decodes every pixel: it catches the truncated files that verify() lets through.
    try:
        im.load()
    except _BOMB_ERRORS + _DECODE_ERRORS:
        raise _invalid() from None


def _webp_canvas_size(data: bytes) -> tuple[int, int] | None:
    """The canvas a WebP declares in its first chunk (the same reading as Pillow's _get_size)."""
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack_from("<HH", data, 26)
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8X" and len(data) >= 30:
        return (int.from_bytes(data[24:27], "little") + 1,
                int.from_bytes(data[27:30], "little") + 1)
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def _jpeg_scans_exceed(data: bytes, limit: int) -> bool:
    """Walk the JPEG's markers up to its first EOI, counting SOS segments; stop early at `limit`.

    Malformed structure is not judged here (False): the decoder will reject it.
    """
    pos, scans, end = 2, 0, len(data)
    while pos + 4 <= end:
        if data[pos] != 0xFF:
            return False
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:  # EOI: anything after it (another MPO frame, junk) is not decoded
            return False
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            pos += 2
            continue
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
        if marker != 0xDA:
            continue
        scans += 1
        if scans > limit:
            return True
        found = _NEXT_MARKER.search(data, pos)  # skip the scan's entropy-coded data
        if found is None:
            return False
        pos = found.start()
    return False


# --- re-encoding ----------------------------------------------------------------------------

def _draft(im: Image.Image, long_side: int) -> None:
    """Ask libjpeg to decode at 1/2, 1/4 or 1/8 scale when that still gives about `long_side`:
    scaling in the DCT skips most of the decoding work (the pipeline's main speed-up)."""
    width, height = im.size
    factor = long_side * DRAFT_TOLERANCE / max(width, height)
    if factor < 0.5:
        im.draft("RGB", (max(1, int(width * factor)), max(1, int(height * factor))))


def _orientation(im: Image.Image) -> int:
    try:
        value = im.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:  # noqa: BLE001 - a malformed EXIF block costs the rotation, not the photo
        return 1
    return value if isinstance(value, int) and value in _TRANSPOSE else 1


def _normalize_mode(im: Image.Image) -> Image.Image:
    """L, LA, RGB or RGBA: modes that resize well (palette images only resize by nearest pixel)."""
    if im.mode in ("P", "PA") or (im.mode in ("L", "RGB") and "transparency" in im.info):
        return im.convert("RGBA")
    if im.mode in ("L", "LA", "RGB", "RGBA"):
        return im
    if im.mode.startswith("I") or im.mode == "F":
        # 16-bit grayscale: scale to 8 bits (a plain convert("L") clips everything above 255).
        return im.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    if im.mode == "1":
        return im.convert("L")
    return im.convert("RGB")  # CMYK, YCbCr, LAB


def _fit(im: Image.Image, long_side: int) -> Image.Image:
    width, height = im.size
    if max(width, height) <= long_side:
        return im
    scale = long_side / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    # reducing_gap: an integer box reduce() first, then LANCZOS over the last factor of 3 or less.
    return im.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _upright(im: Image.Image, orientation: int) -> Image.Image:
    method = _TRANSPOSE.get(orientation)
    return im.transpose(method) if method is not None else im


def _flatten(im: Image.Image) -> Image.Image:
    """RGB; transparency is composited on white (a JPEG has no alpha, and black would hide)."""
    if im.mode in ("RGBA", "LA"):
        background = Image.new("RGB", im.size, WHITE)
        background.paste(im, mask=im.getchannel("A"))
        return background
    return im if im.mode == "RGB" else im.convert("RGB")


def _encode_jpeg(im: Image.Image) -> bytes:
    # Pillow copies a source's COM comment from im.info into the output; metadata stays behind
    # only if info is empty and no exif/icc_profile/xmp argument is given.
    im.info = {}
    out = BytesIO()
    im.save(out, "JPEG", quality=JPEG_QUALITY, optimize=False, progressive=False)
    return out.getvalue()
