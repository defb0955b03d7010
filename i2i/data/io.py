"""Image files <-> arrays <-> tensors, keeping channel count and bit depth (8/16-bit, float TIFF)."""
from __future__ import annotations

import contextlib
import io
import logging
import os
import stat
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import DataError

log = logging.getLogger("i2i")

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif"})
_EIGHT_BIT_ONLY = frozenset({".jpg", ".jpeg", ".bmp", ".webp", ".gif"})
_PIL_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".webp": "WEBP", ".png": "PNG", ".gif": "GIF"}
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601


def is_image(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def umask() -> int:
    """This process's umask. Read from /proc where Linux has it (nothing changes); elsewhere set to 0o077 and put
    back at once, the first time only (a thread creating a file meanwhile gets a stricter mode, never a looser)."""
    with contextlib.suppress(OSError, ValueError, IndexError), \
            open("/proc/self/status", encoding="ascii", errors="replace") as f:
        for line in f:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    global _UMASK
    if _UMASK is None:
        _UMASK = os.umask(0o077)
        os.umask(_UMASK)
    return _UMASK


_UMASK: int | None = None


def umask_mode(folder: bool = False) -> int:
    """The mode a new file (0o666) or folder (0o777) gets under the umask: what files written through a temporary
    name (``tempfile``: 0o600 and 0o700) are given before they take their place."""
    return (0o777 if folder else 0o666) & ~umask()


def show_path(path: str | Path) -> str:
    """A path as one printable line: characters that are not printable (a newline, the undecodable bytes of a
    non-UTF-8 file name, which Python keeps as lone surrogates) are shown as backslash escapes."""
    text = str(path)
    return text if text.isprintable() else "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


class UnreadableImage(DataError):
    """An image file that cannot be used: unreadable, not an image, corrupt, truncated, too large or of an
    unsupported sample format. ``path`` and ``reason`` let data sets skip it and report why."""

    def __init__(self, path: str | Path, reason: str | None = None):
        if reason is None:  # one message only: how a DataLoader worker re-raises it in the main process
            self.path, self.reason = None, str(path)
            super().__init__(str(path))
            return
        self.path, self.reason = Path(path), reason
        super().__init__(f"cannot read image {show_path(path)}: {reason}")

    def __reduce__(self):  # raised in DataLoader worker processes: must survive pickling
        return type(self), (self.path, self.reason)


def list_images(root: str | Path, errors: list[tuple[Path, str]] | None = None,
                skipped: list[tuple[Path, str]] | None = None) -> list[Path]:
    """Every image file under ``root`` (recursive, sorted); hidden files/folders and symlinked folders skipped.

    Symlinked files are listed (and followed when read: a loop or a dangling link fails then, with its reason).
    Folders that cannot be listed (permissions) are appended to ``errors`` as (path, reason) when it is given,
    else logged; they never stop the scan. When ``skipped`` is given, every file and folder left out (hidden,
    symlinked folder, no image extension) is appended to it as (path, reason), the reason starting with a short
    kind and its details in parentheses: ``hidden file (its name starts with '.')``.
    """
    found = []

    def problem(exc: OSError) -> None:
        where = Path(exc.filename) if exc.filename is not None else Path(root)
        reason = f"cannot list folder: {exc.strerror or exc}"
        if errors is not None:
            errors.append((where, reason))
        else:
            log.warning("skipping %s: %s", show_path(where), reason)

    for folder, dirs, files in os.walk(root, onerror=problem, followlinks=False):
        if skipped is not None:
            skipped += [(Path(folder) / d, "hidden folder (its name starts with '.'; not searched)") for d in dirs
                        if d.startswith(".")]
            skipped += [(Path(folder) / d, "symlinked folder (not followed; pass it as --input to read it)")
                        for d in dirs if not d.startswith(".") and os.path.islink(os.path.join(folder, d))]
            skipped += [(Path(folder) / f, _not_listed(f)) for f in files if f.startswith(".") or not is_image(f)]
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [Path(folder) / f for f in files if not f.startswith(".") and is_image(f)]
    return sorted(found)


def _not_listed(name: str) -> str:
    if name.startswith("."):
        return "hidden file (its name starts with '.')"
    kinds = ", ".join(sorted(IMAGE_EXTENSIONS))
    return f"not an image file name (extension {Path(name).suffix or 'none'!r}; images are {kinds})"


# ---------------------------------------------------------------- reading
# Decompression bombs: images above this many pixels are refused from their header, before any pixel is decoded.
# It is Pillow's own setting (89,478,485 px by default, about 9459 x 9459; 256 MiB as 8-bit RGB, 1 GiB as float);
# the environment variable I2I_MAX_PIXELS changes it (0 or "none": no limit).
if os.environ.get("I2I_MAX_PIXELS", "").strip():
    _limit = os.environ["I2I_MAX_PIXELS"].strip().lower()
    try:
        Image.MAX_IMAGE_PIXELS = None if _limit in ("0", "none") else int(_limit.replace("_", ""))
    except ValueError:
        log.warning("ignoring I2I_MAX_PIXELS=%r: expected a number of pixels (0 or none: no limit)", _limit)
MAX_FILE_BYTES = 4 * 2**30  # larger files are refused before being read into memory


def max_pixels() -> int | None:
    return Image.MAX_IMAGE_PIXELS


def _check_pixels(width: int, height: int) -> None:
    limit = max_pixels()
    if limit and width * height > limit:
        raise _BadImage(f"too large: {width}x{height} = {width * height:,} pixels, above the limit of {limit:,} "
                        "(a decompression bomb? set I2I_MAX_PIXELS to allow larger images)")


def _bomb(exc: Exception) -> str:
    return f"too large ({str(exc).rstrip('.')}; set I2I_MAX_PIXELS to allow larger images)"


def _open_regular(path: Path):
    """The file opened for reading, after checking it is a regular, non-empty file of sane size (a FIFO named
    x.png would block a plain read forever)."""
    try:
        st = path.stat()
    except OSError as exc:  # missing, dangling or looping symlink, permission denied on a folder
        raise UnreadableImage(path, exc.strerror or str(exc)) from None
    except ValueError as exc:  # a NUL in the name
        raise UnreadableImage(path, str(exc)) from None
    if not stat.S_ISREG(st.st_mode):
        raise UnreadableImage(path, "not a regular file")
    if st.st_size == 0:
        raise UnreadableImage(path, "empty file (zero bytes)")
    if st.st_size > MAX_FILE_BYTES:
        raise UnreadableImage(path, f"file of {st.st_size:,} bytes is larger than the {MAX_FILE_BYTES:,} accepted")
    try:
        return open(path, "rb")
    except OSError as exc:
        raise UnreadableImage(path, exc.strerror or str(exc)) from None


def read_image(path: str | Path, *, frames: list[int] | None = None) -> np.ndarray:
    """Decode to an HWC array in RGB order with the file's channel count and dtype (uint8, uint16, float32).

    A multi-page TIFF or an animated GIF, PNG or WebP gives its first page/frame; with ``frames`` (a list), the
    number of pages/frames in the file is appended to it (when it can be counted). Every failure raises
    ``UnreadableImage`` (a DataError) naming the file and the reason.
    """
    path = Path(path)
    with _open_regular(path) as f:
        try:
            data = f.read()
        except OSError as exc:
            raise UnreadableImage(path, exc.strerror or str(exc)) from None
    if not data:
        raise UnreadableImage(path, "empty file (zero bytes)")
    try:
        array = _decode(data, frames)
    except _BadImage as exc:
        raise UnreadableImage(path, str(exc)) from exc
    except Image.DecompressionBombError as exc:
        raise UnreadableImage(path, _bomb(exc)) from None
    except MemoryError:
        raise UnreadableImage(path, "not enough memory to decode it") from None
    except Exception as exc:  # decoders raise many types (OSError, ValueError, SyntaxError, struct.error ...)
        raise UnreadableImage(path, f"corrupt or truncated ({exc})") from exc
    try:
        return _normalise(array)
    except _BadImage as exc:
        raise UnreadableImage(path, str(exc)) from None


def probe_image(path: str | Path) -> tuple[int, int]:
    """(width, height) from the header, without decoding the pixels: the cheap check data sets run on every file.

    Finds missing, unreadable, empty, non-image and oversized files, broken headers and (for PNG, whose chunks
    carry checksums) corrupt or truncated data; truncated JPEG data is only found by decoding.
    Raises ``UnreadableImage``.
    """
    path = Path(path)
    with _open_regular(path) as f:
        try:
            return _probe(f)
        except _BadImage as exc:
            raise UnreadableImage(path, str(exc)) from None
        except Image.DecompressionBombError as exc:
            raise UnreadableImage(path, _bomb(exc)) from None
        except Exception as exc:  # noqa: BLE001  decoders raise many types, as in read_image
            raise UnreadableImage(path, f"corrupt or truncated ({exc})") from None


def _probe(f) -> tuple[int, int]:
    try:
        im = Image.open(f)
    except UnidentifiedImageError:
        f.seek(0)
        if f.read(4) in _TIFF_MAGIC:
            import tifffile
            f.seek(0)
            with tifffile.TiffFile(f) as tif:
                page = tif.pages[0]
                width, height = page.shape[page.axes.index("X")], page.shape[page.axes.index("Y")]
            _check_pixels(width, height)
            return width, height
        raise _BadImage("not an image (unknown format or corrupt header)") from None
    with im:
        _check_pixels(*im.size)
        if im.format == "PNG":
            im.verify()  # chunk checksums up to IEND: reads the file but decompresses nothing
        return im.size


class _BadImage(ValueError):
    """A decoding failure whose message already says what is wrong."""


_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def _decode(data: bytes, frames: list[int] | None = None) -> np.ndarray:
    try:
        im = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        # Pillow cannot open some TIFFs (e.g. more than 4 channels or float RGB): tifffile can.
        if data[:4] in _TIFF_MAGIC:
            return _decode_tiff(data, frames)
        raise _BadImage("not an image (unknown format or corrupt header)") from None
    with im:
        _check_pixels(*im.size)
        if frames is not None:
            with contextlib.suppress(Exception):  # a broken later page: the first one may still be fine
                frames.append(int(getattr(im, "n_frames", 1)))
                im.seek(0)
        if im.format == "PNG" and data[24] == 16 and im.mode not in _UINT16_MODES:
            return _decode_cv2(data, png_color_type=data[25])  # Pillow reduces 16-bit RGB(A)/LA to 8 bits
        if im.format == "TIFF" and _tiff_needs_full_depth(im):
            return _decode_tiff(data)
        im.load()
        if im.mode in _EIGHT_BIT_MODES:
            with contextlib.suppress(Exception):  # a broken EXIF block: the pixels are fine, keep them as stored
                im = ImageOps.exif_transpose(im)
        return _from_pil(im)


_UINT16_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
_EIGHT_BIT_MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "LAB", "HSV")


def _tiff_needs_full_depth(im: Image.Image) -> bool:
    """Would Pillow drop bits or samples (16-bit RGB, gray+alpha, extra channels)?"""
    bits = im.tag_v2.get(258, (8,))
    bits = bits if isinstance(bits, tuple) else (bits,)
    samples = im.tag_v2.get(277, 1)
    return (max(bits) > 8 and im.mode not in (*_UINT16_MODES, "F", "I")) or samples != len(im.getbands())


def _from_pil(im: Image.Image) -> np.ndarray:
    mode = im.mode
    if mode == "1":
        im = im.convert("L")
    elif mode in ("P", "PA"):
        im = im.convert("RGBA" if mode == "PA" or "transparency" in im.info else "RGB")
    elif mode == "I":
        array = np.asarray(im)
        if array.min() < 0 or array.max() > 65535:
            raise _BadImage("32-bit integer images are not supported (values outside 0..65535)")
        return array.astype(np.uint16)
    elif mode not in ("L", "LA", "RGB", "RGBA", "F", *_UINT16_MODES):
        im = im.convert("RGBA" if "A" in mode or "transparency" in im.info else "RGB")
    array = np.asarray(im)
    return array.astype(np.uint16) if im.mode in _UINT16_MODES else array  # I;16B is big-endian


def _decode_cv2(data: bytes, png_color_type: int) -> np.ndarray:
    array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if array is None:
        raise _BadImage("OpenCV cannot decode it (corrupt or truncated)")
    if array.ndim == 3 and array.shape[2] in (3, 4):
        array = cv2.cvtColor(array, cv2.COLOR_BGR2RGB if array.shape[2] == 3 else cv2.COLOR_BGRA2RGBA)
    if png_color_type == 4 and array.ndim == 3 and array.shape[2] == 4:  # OpenCV expands gray+alpha to RGBA
        array = array[..., [0, 3]]
    return array


def _decode_tiff(data: bytes, frames: list[int] | None = None) -> np.ndarray:
    import tifffile  # ships with scikit-image; only needed for unusual TIFFs

    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        if frames is not None and not frames:  # not counted by Pillow already
            with contextlib.suppress(Exception):
                frames.append(len(tif.pages))
        page = tif.pages[0]
        _check_pixels(page.shape[page.axes.index("X")], page.shape[page.axes.index("Y")])
        array, axes = page.asarray(), page.axes
    # Planar TIFFs store channels first ("SYX"): bring rows and columns to the front.
    order = [axes.index("Y"), axes.index("X")] + [i for i, a in enumerate(axes) if a not in "YX"]
    array = np.transpose(array, order)
    return array.reshape(array.shape[0], array.shape[1], -1)


def _normalise(array: np.ndarray) -> np.ndarray:
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[0] == 0 or array.shape[1] == 0:
        raise _BadImage(f"unsupported shape {array.shape}")
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    elif array.dtype.kind == "f":
        array = array.astype(np.float32, copy=False)
        if not np.isfinite(array).all():
            raise _BadImage("float samples include NaN or infinity")
    elif array.dtype.kind in "ui" and array.dtype not in (np.uint8, np.uint16):
        if array.min() < 0 or array.max() > 65535:
            raise _BadImage(f"{array.dtype} samples outside 0..65535 (unsupported)")
        array = array.astype(np.uint16)
    elif array.dtype.kind not in "ui":
        raise _BadImage(f"unsupported sample type {array.dtype}")
    return np.ascontiguousarray(array)


# ---------------------------------------------------------------- conversions
def to_float(array: np.ndarray) -> np.ndarray:
    """uint8/uint16/float -> float32 in [0, 1] (floats are clipped, not rescaled)."""
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if array.dtype == np.uint16:
        return array.astype(np.float32) / 65535.0
    if array.dtype.kind == "f":
        return np.clip(array, 0.0, 1.0).astype(np.float32, copy=False)
    raise ValueError(f"unsupported image dtype {array.dtype}")


def adapt_channels(array: np.ndarray, channels: int) -> np.ndarray:
    """Gray -> RGB by replication, RGB -> gray by BT.601 luminance, alpha dropped; other mismatches raise."""
    have = array.shape[2]
    if have in (2, 4) and channels == have - 1:
        return array[..., :channels]
    if have in (2, 4) and channels in (1, 3):  # e.g. RGBA -> gray: drop alpha first
        array, have = array[..., :-1], have - 1
    if have == channels:
        return array
    if have == 1 and channels == 3:
        return np.repeat(array, 3, axis=2)
    if have == 3 and channels == 1:
        gray = array.astype(np.float32) @ _LUMA
        if array.dtype.kind == "f":
            return gray[..., None]
        return np.clip(np.rint(gray), 0, np.iinfo(array.dtype).max).astype(array.dtype)[..., None]
    raise ValueError(f"cannot adapt an image with {array.shape[2]} channels to {channels} channels")


def to_tensor(array: np.ndarray) -> torch.Tensor:
    """HWC float in [0, 1] -> CHW float32 tensor in [-1, 1] (values outside [0, 1] are clipped)."""
    chw = np.ascontiguousarray(np.clip(array, 0.0, 1.0).transpose(2, 0, 1), dtype=np.float32)
    return torch.from_numpy(chw).mul_(2.0).sub_(1.0)


def from_tensor(tensor: torch.Tensor, dtype: type = np.uint8) -> np.ndarray:
    """CHW tensor in [-1, 1] -> HWC uint8 or uint16 array, rounded and clipped."""
    if dtype not in (np.uint8, np.uint16):
        raise ValueError(f"dtype must be numpy.uint8 or numpy.uint16, not {dtype}")
    peak = float(np.iinfo(dtype).max)
    scaled = (tensor.detach().float().cpu().clamp(-1.0, 1.0) + 1.0) * (peak / 2.0)
    return scaled.round().permute(1, 2, 0).numpy().astype(dtype)


def to_uint8(array: np.ndarray) -> np.ndarray:
    """uint16 -> uint8 as round(x / 257), the exact inverse of the x * 257 expansion of 8-bit data."""
    if array.dtype == np.uint8:
        return array
    if array.dtype != np.uint16:
        raise ValueError(f"expected uint8 or uint16, not {array.dtype}")
    return ((array.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


# ---------------------------------------------------------------- writing
def write_image(path: str | Path, array: np.ndarray) -> None:
    """Write HWC uint8/uint16 (PNG, TIFF keep 16 bits; TIFF also float32) atomically via a temp file."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in IMAGE_EXTENSIONS:
        raise DataError(f"cannot write {path}: unknown image extension (use one of {sorted(IMAGE_EXTENSIONS)})")
    array = np.asarray(array)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3:
        raise DataError(f"cannot write {path}: expected an HWC array, got shape {array.shape}")
    float_ok = ext in (".tif", ".tiff") and array.dtype == np.float32
    if array.dtype not in (np.uint8, np.uint16) and not float_ok:
        raise DataError(f"cannot write {path}: dtype {array.dtype} (expected uint8 or uint16)")
    try:
        data = _encode(array, ext, path)
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"cannot write {path}: {exc}") from exc
    path.parent.mkdir(parents=True, exist_ok=True)
    # A hidden temp file in the same folder: list_images skips it and os.replace is atomic there.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, umask_mode())  # mkstemp makes it 0o600: the file gets what the umask gives any new file
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _encode(array: np.ndarray, ext: str, path: Path) -> bytes:
    channels = array.shape[2]
    if ext in (".tif", ".tiff"):
        import tifffile

        buf = io.BytesIO()
        rgb = channels in (3, 4)
        tifffile.imwrite(buf, array if channels > 1 else array[..., 0], photometric="rgb" if rgb else "minisblack",
                         planarconfig="contig", extrasamples=[2] * (channels - 3) if rgb and channels > 3 else None,
                         compression="zlib")
        return buf.getvalue()
    if ext in _EIGHT_BIT_ONLY:
        array = to_uint8(array)
        if channels not in (1, 3) and ext in (".jpg", ".jpeg"):
            raise DataError(f"cannot write {path}: JPEG stores 1 or 3 channels, not {channels} (use .png)")
    if array.dtype == np.uint8 and channels in (1, 2, 3, 4):
        buf = io.BytesIO()
        extra = {"quality": 95} if ext in (".jpg", ".jpeg", ".webp") else {}
        Image.fromarray(array[..., 0] if channels == 1 else array).save(buf, _PIL_FORMATS[ext], **extra)
        return buf.getvalue()
    if channels not in (1, 3, 4):
        depth = "16-bit " if array.dtype == np.uint16 else ""
        raise DataError(f"cannot write {path}: {depth}{ext} cannot store {channels} channels (use .tif)")
    bgr = cv2.cvtColor(array, cv2.COLOR_RGB2BGR if channels == 3 else cv2.COLOR_RGBA2BGRA) if channels > 1 else array
    ok, encoded = cv2.imencode(ext, bgr)
    if not ok:
        raise DataError(f"cannot encode {path} with OpenCV")
    return encoded.tobytes()
