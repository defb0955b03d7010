"""Translate a folder tree with an export: every image, same relative names, channels and bit depth kept."""
from __future__ import annotations

import collections
import contextlib
import copy
import itertools
import logging
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from ..allocator import keep_freed_memory
from ..data.io import (
    IMAGE_EXTENSIONS,
    adapt_channels,
    from_tensor,
    is_image,
    list_images,
    read_image,
    show_path,
    to_float,
    write_image,
)
from ..errors import DataError, I2IError, check_count
from ..precision import DTYPES, autocast, unsupported
from ..registry import net_size_rules
from .export import Export
from .labels import LabelPlan
from .latents import LatentPlan, WithCode, interpolation_strip
from .tiling import ImageSource, check_tile, input_tensor, iter_tiled_rows, pad_to_multiple

log = logging.getLogger("i2i")

AUTO_TILE_PIXELS = 2048 * 2048  # larger inputs (H * W, divided by scale**2 for a net with a `scale`) are tiled
AUTO_TILE = 512  # tile side used then, rounded up to the net's size multiple
MAX_BATCH = 4  # images per forward pass unless --batch-size says otherwise
CPU_PASS_FLOPS = 50e9  # on the CPU: images per pass such that a pass is about this much work (at least 1)
PROGRESS_MIN_INPUTS = 20  # a non-terminal stderr gets progress lines for more inputs than this
PROGRESS_SECONDS = 60.0  # ... at every tenth of the inputs, and at least this often


def flops_per_pixel(net: torch.nn.Module, in_channels: int, multiple: int, smallest: int, device) -> float | None:
    """The net's forward FLOPs per input pixel (convolutions scale with the area), from one small pass; None when
    the count fails (a net that needs more than an image, say)."""
    from torch.utils.flop_counter import FlopCounterMode
    side = -(-max(64, multiple, smallest) // multiple) * multiple
    label = int(getattr(net, "label_channels", 0) or 0)  # a label-conditioned net gets a (zero) target label
    try:
        with FlopCounterMode(display=False) as counter, torch.inference_mode():
            net(torch.zeros(1, in_channels, side, side, device=device),
                *((torch.zeros(1, label, device=device),) if label else ()))
    except Exception:  # noqa: BLE001  no estimate: the fixed batch applies
        return None
    return counter.get_total_flops() / (side * side)


def fixed_side(net: nn.Module) -> int | None:
    """The one input side a net takes (a ``fixed_size`` net: the DCGAN and MLP nets, the autoencoders'
    encoders), or None for a net of any size."""
    size = getattr(net, "size", None)
    return size if getattr(net, "fixed_size", False) and isinstance(size, int) else None


class FixedSize(nn.Module):
    """Runs a net of one input side on any image: the input is resized to ``side`` x ``side`` (bilinear,
    antialiased) and the output back to the input's size (times the net's own scale)."""

    def __init__(self, net: nn.Module, side: int):
        super().__init__()
        self.net, self.side, self.in_channels = net, side, getattr(net, "in_channels", None)

    @staticmethod
    def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        if tuple(x.shape[-2:]) == size:
            return x
        return nn.functional.interpolate(x.float(), size=size, mode="bilinear", antialias=True,
                                         align_corners=False).to(x.dtype)

    def forward(self, x: torch.Tensor, *args: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        y = self.net(self._resize(x, (self.side, self.side)), *args)
        return self._resize(y, (h * y.shape[-2] // self.side, w * y.shape[-1] // self.side))


class Compiled(nn.Module):
    """``torch.compile(net)`` for translate. Each new input size compiles once (seconds to a minute on a CPU;
    after a second size, shapes become dynamic), so it pays off for many images of one size or for tiles.
    A machine where the compiler cannot run (no C++ compiler for the CPU backend) gets an error naming --compile."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.compiled = torch.compile(net)

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        try:
            return self.compiled(*args)
        except torch._dynamo.exc.TorchDynamoException as exc:
            reason = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
            raise I2IError(f"--compile: torch.compile failed on this machine ({reason.strip()}); translate "
                           "without --compile") from None


def check_precision(precision: str, device: torch.device) -> None:
    """--precision names fp32 or a reduced precision that this device runs fast."""
    if precision not in ("fp32", *DTYPES):
        raise I2IError(f"--precision {precision!r}: choose fp32, {' or '.join(DTYPES)}")
    reason = unsupported(precision, device)
    if reason:
        raise I2IError(f"--precision {precision}: {precision} {reason}; use --precision fp32")


def check_folders(input_dir: Path, output_dir: Path, export_dir: Path | None = None) -> None:
    """--input is a folder or one image; --output is a folder (or will be one) that never overlaps the input tree
    (no input is overwritten) and lies outside the export ``export_dir``. Raises I2IError (exit 2) before anything
    is written."""
    single = input_dir.is_file()
    if not single and not input_dir.is_dir():
        what = "not a regular file or folder" if input_dir.exists() else "no such file or folder"
        raise I2IError(f"--input {show_path(input_dir)}: {what}")
    if single and not is_image(input_dir):
        raise I2IError(f"--input {show_path(input_dir)}: not an image file name (extension "
                       f"{input_dir.suffix or 'none'!r}; images are {', '.join(sorted(IMAGE_EXTENSIONS))})")
    for existing in (output_dir, *output_dir.absolute().parents):
        if existing.exists() or existing.is_symlink():
            if not existing.is_dir():
                what = "it is" if existing == output_dir else f"{show_path(existing)}, in its path, is"
                raise I2IError(f"--output {show_path(output_dir)} must be a folder (made if missing), but {what} a "
                               "file; choose a folder")
            break
    src, dst = input_dir.resolve(), output_dir.resolve()
    if single:
        # one image: refused only where its output (--output/<name>) would replace the image itself
        if dst / input_dir.name in (src, input_dir.absolute()) or dst == input_dir.absolute().parent.resolve():
            raise I2IError(f"--output {show_path(output_dir)} is the folder of --input {show_path(input_dir)}: the "
                           "output would replace the image; choose another output folder")
    elif src == dst or src in dst.parents or dst in src.parents:
        raise I2IError(f"--output {output_dir} overlaps --input {input_dir}; choose an output folder outside "
                       "the input tree (translate never writes next to its inputs)")
    if export_dir is not None:
        exp = Path(export_dir).resolve()
        if dst == exp or exp in dst.parents:
            raise I2IError(f"--output {show_path(output_dir)} is inside the export {show_path(export_dir)}; choose an "
                           "output folder outside it (translate never writes into an export)")


def output_path(output_dir: Path, rel: Path) -> Path:
    """Where the translation of the input at ``rel`` (relative to --input) goes: always inside ``output_dir``.

    A relative path that is absolute or climbs with '..', or a folder inside the output tree that is a symlink
    leading elsewhere (into the inputs, say), is refused with DataError: translate never writes outside --output.
    """
    if rel.is_absolute() or not rel.parts or any(part in ("", ".", "..") for part in rel.parts):
        raise DataError(f"refusing to write {show_path(rel)}: not a plain relative path inside --output")
    target = output_dir / rel
    root = output_dir.resolve()
    parent = target.parent.resolve()  # follows any symlinked folder already inside the output tree
    if parent != root and root not in parent.parents:
        raise DataError(f"refusing to write {show_path(target)}: its folder resolves to {show_path(parent)}, "
                        f"outside --output {show_path(root)}")
    return target


def size_multiple(export: Export, name: str) -> int:
    """The size multiple of net ``name`` of the export (its inputs are padded to it)."""
    return net_size_rules(export.recipe["nets"][name])[0]


def min_size(export: Export, name: str) -> int:
    """The smallest input side net ``name`` of the export accepts."""
    return net_size_rules(export.recipe["nets"][name])[1]


class _Item:
    def __init__(self, path: Path, rel: Path, tensor: torch.Tensor | ImageSource, source: np.ndarray):
        self.path, self.rel, self.tensor = path, rel, tensor
        self.z: torch.Tensor | None = None  # latent code (z_dim,) of a multimodal generator, or a target label
        self.channels, self.dtype = source.shape[2], source.dtype
        self.alpha = source[..., -1:].copy() if source.shape[2] in (2, 4) else None  # not a view: frees source

    def variant(self, rel: Path, z: torch.Tensor) -> _Item:
        """The same input (shared tensor) under another output name, with latent code ``z``."""
        other = copy.copy(self)
        other.rel, other.z = rel, z
        return other


def _encode(y: torch.Tensor, item: _Item, in_channels: int, alpha: np.ndarray | None) -> np.ndarray:
    """(C, h, w) net output in [-1, 1] -> HWC array in the input's dtype and channel layout, alpha re-attached.

    Gray stays gray where the net maps a space onto itself. Works on whole images and on row strips alike.
    """
    arr = to_float(from_tensor(y, dtype=np.uint16))
    colour = item.channels - (1 if item.alpha is not None else 0)
    if arr.shape[2] == in_channels and colour != arr.shape[2] and colour in (1, 3):
        arr = adapt_channels(arr, colour)
    if alpha is not None:
        arr = np.concatenate([arr, to_float(alpha)], axis=2)
    dtype = np.uint16 if item.dtype != np.uint8 else np.uint8
    return (np.clip(arr, 0, 1) * np.iinfo(dtype).max + 0.5).astype(dtype)


def _alpha_at(item: _Item, height: int, width: int) -> np.ndarray | None:
    """The input's alpha at the output size (resized with the image for super-resolution nets)."""
    alpha = item.alpha
    if alpha is None or alpha.shape[:2] == (height, width):
        return alpha
    resized = cv2.resize(np.ascontiguousarray(alpha[..., 0]), (width, height), interpolation=cv2.INTER_LINEAR)
    return resized.reshape(height, width, 1)


def _assemble(strips: Iterable[tuple[int, torch.Tensor]], item: _Item, in_channels: int, height: int) -> np.ndarray:
    """Fill the output array strip by strip: the float output never exists at full size in tiled mode."""
    out = alpha = None
    for row, y in strips:
        if out is None:
            alpha = _alpha_at(item, height, y.shape[-1])
        rows = _encode(y, item, in_channels, None if alpha is None else alpha[row: row + y.shape[-2]])
        if out is None:
            out = np.empty((height, rows.shape[1], rows.shape[2]), rows.dtype)
        out[row: row + rows.shape[0]] = rows
    assert out is not None
    return out


def _check_arguments(input_dir: Path, output_dir: Path, batch_size: int | None, tile_batch: int | None,
                     device: str | torch.device, precision: str, export_dir: Path | None = None) -> torch.device:
    """The folders, counts and precision are usable; returns the device."""
    check_folders(input_dir, output_dir, export_dir)
    check_count("--batch-size", batch_size)
    check_count("--tile-batch", tile_batch)
    device = torch.device(device)
    check_precision(precision, device)
    return device


def _tile_sides(tile: int | None, tile_overlap: int, multiple: int, smallest: int) -> tuple[int | None, int | None]:
    """(``tile`` checked and rounded up for the net, the automatic tile side or None when ``tile`` is given)."""
    if tile is not None and tile < 0:
        raise I2IError(f"--tile must be a positive number of pixels (0 turns tiling off), got {tile}")
    if tile:
        tile, note = check_tile(tile, tile_overlap, multiple=multiple, min_size=smallest)
        if note:
            log.info("%s", note)
    auto_tile = None
    if tile is None:
        auto_tile = max(-(-AUTO_TILE // multiple) * multiple, -(-smallest // multiple) * multiple)
        if isinstance(tile_overlap, int) and not isinstance(tile_overlap, bool) and tile_overlap >= auto_tile:
            raise I2IError(f"--tile-overlap {tile_overlap} must be smaller than the automatic tile size {auto_tile}; "
                           "pass a larger --tile with it")
        auto_tile, _ = check_tile(auto_tile, tile_overlap, multiple=multiple, min_size=smallest)
    return tile, auto_tile


def _auto_tile_pixels(net: nn.Module) -> int:
    """Input pixels above which an image is tiled automatically: ``AUTO_TILE_PIXELS`` of output for a net with a
    ``scale``."""
    net_scale = getattr(net, "scale", 1)
    return AUTO_TILE_PIXELS // (net_scale ** 2 if isinstance(net_scale, int) and net_scale > 0 else 1)


def _speed_up_torch(on_cpu: bool) -> None:
    torch.set_flush_denormal(True)  # denormal activations are 10-100x slower on x86 CPUs
    if on_cpu:
        keep_freed_memory()  # each pass's activations reuse the last pass's memory instead of faulting it in


def _list_inputs(input_dir: Path) -> tuple[list[tuple[Path, Path]], list[dict], list[dict]]:
    """(the inputs as (path, path relative to --input), a failure entry per folder that could not be listed (e.g.
    permissions), a skip entry per file or folder left out on purpose (hidden, not an image, symlinked folder)).
    ``input_dir`` may be one image: its output is named after it."""
    if input_dir.is_file():
        return [(input_dir, Path(input_dir.name))], [], []
    unlisted: list[tuple[Path, str]] = []
    skipped: list[tuple[Path, str]] = []
    files = list_images(input_dir, errors=unlisted, skipped=skipped)
    skips = [{"file": show_path(path), "reason": reason} for path, reason in sorted(skipped)]
    if not files and not unlisted:
        kinds = collections.Counter(_skip_kind(s["reason"]) for s in skips)
        left_out = f"; left out: {', '.join(f'{n} {kind}' for kind, n in kinds.items())}" if kinds else ""
        raise I2IError(f"--input {input_dir}: no images found (looked for {', '.join(sorted(IMAGE_EXTENSIONS))} "
                       f"recursively{left_out})")
    return ([(path, path.relative_to(input_dir)) for path in files],
            [{"file": str(folder), "error": reason} for folder, reason in unlisted], skips)


def _skip_kind(reason: str) -> str:
    """'hidden file' of 'hidden file (its name starts with '.')': the part before the details."""
    return reason.split(" (", 1)[0]


class _Progress:
    """Translate's progress on stderr: a tqdm bar with its ETA where stderr is a terminal; elsewhere (a log file,
    a pipe), for more than ``PROGRESS_MIN_INPUTS`` inputs, one line at every tenth and at least every
    ``PROGRESS_SECONDS``."""

    def __init__(self, total: int, enabled: bool, stream=None):
        self.stream = stream or sys.stderr
        try:
            tty = bool(self.stream.isatty())
        except (AttributeError, ValueError):  # a replaced or closed stream
            tty = False
        self.total, self.done, self.bar = total, 0, None
        self.lines = enabled and not tty and total > PROGRESS_MIN_INPUTS
        if enabled and tty and total > 1:
            from tqdm import tqdm
            self.bar = tqdm(total=total, file=self.stream, unit="image", desc="i2i: translate", dynamic_ncols=True)
        self.t0 = self.last = time.perf_counter()
        self.tenths = 0

    def redirect_logs(self):
        """Inside it, log lines are printed above the bar instead of through it."""
        if self.bar is None:
            return contextlib.nullcontext()
        from tqdm.contrib.logging import logging_redirect_tqdm
        return logging_redirect_tqdm()

    def step(self) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
            return
        if not self.lines:
            return
        now, tenths = time.perf_counter(), self.done * 10 // self.total
        if tenths > self.tenths or now - self.last >= PROGRESS_SECONDS:
            self.tenths, self.last = tenths, now
            rate = self.done / max(now - self.t0, 1e-9)
            eta = (self.total - self.done) / rate if rate > 0 else 0.0
            print(f"i2i: translate: {self.done}/{self.total} inputs ({100 * self.done // self.total}%), "
                  f"{rate:.2f}/s, ETA {_duration(eta)}", file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m{rest % 60:02d}s" if hours else f"{rest // 60}m{rest % 60:02d}s"


@dataclass
class _Run:
    """One ``translate_folder`` call: the prepared net, how inputs are batched and tiled, and what came out."""

    output_dir: Path
    device: torch.device
    net: nn.Module  # its attributes (in_channels, scale, z_dim) are read here, never from ``forward``
    forward: nn.Module  # the net, or ``Compiled(net)``
    in_c: int  # the net's input channels: inputs are adapted to them
    multiple: int  # the net's size multiple: every input is padded to it
    tile: int | None  # --tile after check_tile; 0 or None: only automatic tiling, if any
    auto_tile: int | None  # tile side for images above ``auto_pixels``; None when --tile was given
    tile_overlap: int
    tiles_per_pass: int
    batch_size: int | None  # --batch-size; None: chosen per image size (``images_per_pass``)
    per_pixel: float | None  # forward FLOPs per input pixel (CPU without --batch-size), else None
    plan: LatentPlan | LabelPlan | None = None  # latent codes of a multimodal generator, or target labels
    failed: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)  # left out on purpose, with the reason: said and counted
    written: int = 0
    tiled: int = 0
    pending: list[_Item] = field(default_factory=list)  # whole images of one size waiting for a forward pass

    def __post_init__(self) -> None:
        self.auto_pixels = _auto_tile_pixels(self.net)

    def images_per_pass(self, h: int, w: int) -> int:
        if self.batch_size is not None:
            return self.batch_size
        if self.per_pixel is None:
            return MAX_BATCH
        return max(1, min(MAX_BATCH, int(CPU_PASS_FLOPS // max(self.per_pixel * h * w, 1.0))))

    def tile_side(self, rel: Path, h: int, w: int) -> int | None:
        """The tile side an h x w input is translated with; None: whole."""
        if self.tile and (h > self.tile or w > self.tile):
            return self.tile
        if self.auto_tile and h * w > self.auto_pixels:
            log.info("%s: %dx%d px is above the automatic tiling threshold (%d px of input): translating in "
                     "%d px tiles, overlap %d (--tile N to choose the size, --tile 0 to turn tiling off)", rel,
                     w, h, self.auto_pixels, self.auto_tile, self.tile_overlap)
            return self.auto_tile
        return None

    def read_item(self, path: Path, rel: Path) -> tuple[_Item | None, int | None]:
        """(the input at ``path``, its tile side or None); (None, None) and a failure entry when it cannot be read."""
        frames: list[int] = []
        try:
            source = read_image(path, frames=frames)
            side = self.tile_side(rel, *source.shape[:2])
            # a tiled image stays in its file's dtype and is converted tile by tile (no full-size float copy)
            tensor = ImageSource(adapt_channels(source, self.in_c)) if side else input_tensor(source, self.in_c)
        except (DataError, ValueError, OSError, MemoryError) as exc:  # unreadable inputs: reported, not fatal
            self.failed.append({"file": str(path), "error": str(exc) or type(exc).__name__})
            return None, None
        if frames and frames[0] > 1:
            what = "pages" if path.suffix.lower() in (".tif", ".tiff") else "frames"
            rest = f"{what[:-1]} 2 was" if frames[0] == 2 else f"{what} 2-{frames[0]} were"
            self.skipped.append({"file": show_path(path), "reason": f"{what} after the first not translated (it has "
                                 f"{frames[0]} {what}; translate reads the first only: {rest} left out)"})
        return _Item(path, rel, tensor, source), side

    def variants(self, item: _Item, index: int) -> list[_Item]:
        """The outputs to make of input number ``index``: the item itself, or one per latent code or label."""
        if self.plan is None:
            return [item]
        return [item.variant(rel, z) for rel, z in self.plan.codes(index, item.rel, item.tensor)]

    def write(self, item: _Item, array: np.ndarray) -> None:
        try:
            target = output_path(self.output_dir, item.rel)
        except DataError as exc:
            self.failed.append({"file": str(item.path), "error": str(exc)})
            return
        try:
            write_image(target, array)
            self.written += 1
            if self.plan is not None and item.z is not None:
                self.plan.record(item.rel, item.z)
        except (OSError, DataError, ValueError) as exc:
            self.failed.append({"file": str(item.path), "error": f"cannot write {show_path(target)}: {exc}"})

    def queue(self, item: _Item) -> None:
        """Add a whole image to the pending batch, translating the batch first when it is full or of another size."""
        pending = self.pending
        if pending and (pending[0].tensor.shape != item.tensor.shape
                        or len(pending) >= self.images_per_pass(*pending[0].tensor.shape[-2:])):
            self.flush()
        pending.append(item)

    def flush(self) -> None:
        """Translate the pending batch in one forward pass and write its outputs."""
        pending = self.pending
        if not pending:
            return
        x = torch.stack([it.tensor for it in pending]).contiguous().to(self.device)
        x, (h, w) = pad_to_multiple(x, self.multiple)
        with torch.inference_mode():
            y = self.forward(x) if pending[0].z is None else \
                self.forward(x, torch.stack([it.z for it in pending]).to(self.device))
        scale_h, scale_w = y.shape[-2] // x.shape[-2], y.shape[-1] // x.shape[-1]
        y = y[..., : h * max(1, scale_h), : w * max(1, scale_w)].float().cpu()
        for item, out in zip(pending, y):
            self.write(item, _assemble([(0, out)], item, self.in_c, out.shape[-2]))
        pending.clear()

    def translate_tiled(self, item: _Item, side: int) -> None:
        h, w = item.tensor.shape[-2:]
        net = self.forward if item.z is None else WithCode(self.forward, item.z)
        strips = iter_tiled_rows(net, item.tensor, tile=side, overlap=self.tile_overlap, device=self.device,
                                 batch=self.tiles_per_pass, multiple=self.multiple)
        first = next(strips)
        scale = first[1].shape[-1] // w
        self.write(item, _assemble(itertools.chain([first], strips), item, self.in_c, h * scale))
        self.tiled += 1

    def interpolation_strip(self, item: _Item, index: int) -> None:
        """Write ``<name>_interp``: the outputs along the line between the input's first two codes, side by side."""
        assert self.plan is not None
        self.flush()
        z_line = self.plan.line(index)
        h, w = item.tensor.shape[-2:]
        try:
            image = item.tensor if torch.is_tensor(item.tensor) else item.tensor.region(0, h, 0, w)
            strip = interpolation_strip(self.forward, image, z_line, multiple=self.multiple, device=self.device)
        except (RuntimeError, MemoryError) as exc:
            self.failed.append({"file": str(item.path), "error": f"interpolation strip: {exc}"})
        else:
            strip_item = item.variant(self.plan.strip_name(item.rel), torch.stack([z_line[0], z_line[-1]]))
            strip_item.alpha = None  # one alpha for K frames side by side: dropped
            self.write(strip_item, _assemble([(0, strip)], strip_item, self.in_c, h))

    def summary(self, export: Export, direction: str | None, seconds: float) -> dict:
        """``translate_folder``'s figures; writes latents.json (labels.json) beside the outputs for a multimodal
        (label-conditioned) generator."""
        extra = {}
        if self.plan is not None:
            extra = self.plan.summary()
            if self.written:
                self.plan.write_codes(self.output_dir / self.plan.codes_file)
        kinds = collections.Counter(_skip_kind(s["reason"]) for s in self.skipped)
        return {**extra, "images": self.written, "failed": len(self.failed), "failures": self.failed,
                "skipped": len(self.skipped), "skipped_reasons": dict(sorted(kinds.items())), "skips": self.skipped,
                "direction": direction or next(iter(export.meta["directions"])), "seconds": round(seconds, 3),
                "images_per_s": round(self.written / max(seconds, 1e-9), 3), "tiled": self.tiled,
                **({"tile_batch": self.tiles_per_pass} if self.tiled else {}), "output": str(self.output_dir)}


def translate_folder(export: Export, input_dir: str | Path, output_dir: str | Path, *, direction: str | None = None,
                     batch_size: int | None = None, device: str | torch.device = "cpu", tile: int | None = None,
                     tile_overlap: int = 32, tile_batch: int | None = None, samples: int | None = None,
                     seed: int = 0, sync_z: bool = False,
                     style_from: str | Path | None = None, interpolate: int = 0, precision: str = "fp32",
                     compile: bool = False, progress: bool = False, to: list[str] | None = None,
                     set_attrs: list[str] | None = None) -> dict:
    """Translate every image under ``input_dir`` (or the one image ``input_dir`` names) into ``output_dir``; returns
    figures, failed files (``failures``) and what was left out on purpose (``skips``: hidden files, files without
    an image extension, symlinked folders, pages of a multi-page TIFF after the first; counted in ``skipped`` and
    ``skipped_reasons``). ``progress``: show progress on stderr (see ``_Progress``).

    ``batch_size``: images of equal size per forward pass. ``None``: ``MAX_BATCH``, except on the CPU, where big
    convolutions already use every core, so batching them costs memory and can cost time, while small ones still
    gain from it (measured in benchmarks/README.md): there the batch is what makes about ``CPU_PASS_FLOPS`` of
    work, at least 1 and at most ``MAX_BATCH``.

    ``tile``: translate images larger than ``tile`` x ``tile`` input px in overlapping tiles (see
    i2i/inference/tiling.py), ``tile_batch`` tiles per forward pass (default: 1 on the CPU, where more only cost
    memory; ``batch_size`` on an accelerator). ``None``: tile automatically images above ``AUTO_TILE_PIXELS`` with
    ``AUTO_TILE`` px tiles. ``0``: never tile.

    Multimodal generators (a ``z_dim``, e.g. BicycleGAN's): ``samples`` outputs per input named
    ``<name>_sample<k>`` with z ~ N(0, I) (seeded by ``seed`` and the input's position; ``sync_z``: the same z set
    for every input), or one output ``<name>_style-<image>`` with z encoded from ``style_from`` by the export's
    encoder, and with ``interpolate`` K a strip ``<name>_interp`` of K outputs along the line between two codes.
    The codes used are written to ``latents.json`` in the output folder.

    Label-conditioned generators (a ``label_channels``, e.g. StarGAN's): ``to`` names target domains (``all``: every
    one), each written to ``<output>/<domain>/<name>``; ``set_attrs`` (``ATTR=0|1``) edits attributes of a
    multi-label export, one output in ``<output>/ATTR=1,.../`` (see i2i/inference/labels.py). The labels used are
    written to ``labels.json``.

    ``precision``: ``fp32``, or ``bf16``/``fp16`` autocast (convolutions in reduced precision, outputs written from
    fp32), refused where the device lacks it (i2i/precision.py). ``compile``: run the net through
    ``torch.compile`` (seconds to compile per input size, then faster passes; see ``Compiled``).
    """
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    device = _check_arguments(input_dir, output_dir, batch_size, tile_batch, device, precision, export.path)
    on_cpu = device.type == "cpu"
    # on the CPU, 512 px tiles already fill the cores: more tiles per pass cost memory, not time (benchmarks/README.md)
    tiles_per_pass = tile_batch or (1 if on_cpu else batch_size or MAX_BATCH)

    name, net = export.generator(direction)
    in_c, (multiple, smallest) = net.in_channels, net_size_rules(export.recipe["nets"][name])
    side = fixed_side(export.nets[name])
    if side:  # a net of one input size: every image is resized to it and back, whole (never tiled)
        net, multiple, smallest, tile = FixedSize(net, side), 1, 1, 0
    tile, auto_tile = _tile_sides(tile, tile_overlap, multiple, smallest)
    net = net.to(device).eval()
    per_pixel = flops_per_pixel(net, in_c, multiple, smallest, device) if batch_size is None and on_cpu else None
    run = _Run(output_dir, device, net, Compiled(net) if compile else net, in_c, multiple, tile, auto_tile,
               tile_overlap, tiles_per_pass, batch_size, per_pixel)
    latents = LatentPlan.for_export(export, net, samples=samples, seed=seed, sync_z=sync_z, style_from=style_from,
                                    interpolate=interpolate, device=device)
    run.plan = LabelPlan.for_export(export, net, to=to, set_attrs=set_attrs, device=device) or latents
    _speed_up_torch(on_cpu)

    files, run.failed, run.skipped = _list_inputs(input_dir)
    t0 = time.perf_counter()
    shown = _Progress(len(files), progress)
    try:
        with shown.redirect_logs(), autocast(precision, device):  # every pass: images, tiles, interpolation strips
            for index, (path, rel) in enumerate(files):
                item, side = run.read_item(path, rel)
                if item is not None:
                    if run.plan is not None and run.plan.interpolate:
                        run.interpolation_strip(item, index)
                    for variant in run.variants(item, index):
                        if side:
                            run.translate_tiled(variant, side)
                        else:
                            run.queue(variant)
                shown.step()
            run.flush()
    finally:
        shown.close()
    return run.summary(export, direction, time.perf_counter() - t0)
