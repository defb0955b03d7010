"""Translate a folder tree with an export: every image, same relative names, channels and bit depth kept."""
from __future__ import annotations

import copy
import itertools
import logging
import time
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..allocator import keep_freed_memory
from ..data.io import (
    adapt_channels,
    from_tensor,
    list_images,
    read_image,
    show_path,
    to_float,
    write_image,
)
from ..errors import DataError, I2IError, check_count
from .export import Export
from .latents import LatentPlan, WithCode, interpolation_strip
from ..precision import DTYPES, autocast, unsupported
from ..registry import NETS
from .tiling import ImageSource, check_tile, iter_tiled_rows, unit_float

log = logging.getLogger("i2i")

AUTO_TILE_PIXELS = 2048 * 2048  # larger inputs (H * W, divided by scale**2 for a net with a `scale`) are tiled
AUTO_TILE = 512  # tile side used then, rounded up to the net's size multiple
MAX_BATCH = 4  # images per forward pass unless --batch-size says otherwise
CPU_PASS_FLOPS = 50e9  # on the CPU: images per pass such that a pass is about this much work (at least 1)


def flops_per_pixel(net: torch.nn.Module, in_channels: int, multiple: int, smallest: int, device) -> float | None:
    """The net's forward FLOPs per input pixel (convolutions scale with the area), from one small pass; None when
    the count fails (a net that needs more than an image, say)."""
    from torch.utils.flop_counter import FlopCounterMode
    side = -(-max(64, multiple, smallest) // multiple) * multiple
    try:
        with FlopCounterMode(display=False) as counter, torch.inference_mode():
            net(torch.zeros(1, in_channels, side, side, device=device))
    except Exception:  # noqa: BLE001  no estimate: the fixed batch applies
        return None
    return counter.get_total_flops() / (side * side)


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


def check_folders(input_dir: Path, output_dir: Path) -> None:
    """Outputs never land inside the input tree (nor the input inside the output): no input is overwritten."""
    if not input_dir.is_dir():
        raise I2IError(f"--input {input_dir}: no such folder")
    src, dst = input_dir.resolve(), output_dir.resolve()
    if src == dst or src in dst.parents or dst in src.parents:
        raise I2IError(f"--output {output_dir} overlaps --input {input_dir}; choose an output folder outside "
                       "the input tree (translate never writes next to its inputs)")


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


def _net_class_value(export: Export, name: str, method: str, default: int) -> int:
    cfg = export.recipe["nets"][name]
    cls = NETS.get(cfg["type"])
    kwargs = {k: v for k, v in cfg.items() if k != "type"}
    return getattr(cls, method)(**kwargs) if hasattr(cls, method) else default


def size_multiple(export: Export, name: str) -> int:
    return _net_class_value(export, name, "size_multiple", 1)


def min_size(export: Export, name: str) -> int:
    return _net_class_value(export, name, "min_size", 1)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


def _input_tensor(source: np.ndarray, channels: int) -> torch.Tensor:
    """``to_tensor(to_float(adapt_channels(source, channels)))`` bit for bit, with one float copy instead of three.

    A (C, H, W) view in channels-last memory.
    """
    return unit_float(adapt_channels(source, channels))


class _Item:
    def __init__(self, path: Path, rel: Path, tensor: torch.Tensor | ImageSource, source: np.ndarray):
        self.path, self.rel, self.tensor = path, rel, tensor
        self.z: torch.Tensor | None = None  # latent code (z_dim,) of a multimodal generator
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


def translate_folder(export: Export, input_dir: str | Path, output_dir: str | Path, *, direction: str | None = None,
                     batch_size: int | None = None, device: str | torch.device = "cpu", tile: int | None = None,
                     tile_overlap: int = 32, tile_batch: int | None = None, samples: int | None = None,
                     seed: int = 0, sync_z: bool = False,
                     style_from: str | Path | None = None, interpolate: int = 0, precision: str = "fp32",
                     compile: bool = False) -> dict:
    """Translate every image under ``input_dir`` into ``output_dir``; returns figures (and failed files).

    ``batch_size``: images of equal size per forward pass. ``None``: ``MAX_BATCH``, except on the CPU, where big
    convolutions already use every core and batching them only costs memory and time (CycleGAN's generator ran
    1.29x faster one image at a time on 2 cores, pix2pix's 1.45x faster four at a time): there the batch is what
    makes about ``CPU_PASS_FLOPS`` of work, at least 1 and at most ``MAX_BATCH``.

    ``tile``: translate images larger than ``tile`` x ``tile`` input px in overlapping tiles (see i2i/tiling.py),
    ``tile_batch`` tiles per forward pass (default: 1 on the CPU, where more only cost memory; ``batch_size``
    on an accelerator). ``None``: tile automatically images above ``AUTO_TILE_PIXELS`` with ``AUTO_TILE`` px
    tiles. ``0``: never tile.

    Multimodal generators (a ``z_dim``, e.g. BicycleGAN's): ``samples`` outputs per input named
    ``<name>_sample<k>`` with z ~ N(0, I) (seeded by ``seed`` and the input's position; ``sync_z``: the same z set
    for every input), or one output ``<name>_style-<image>`` with z encoded from ``style_from`` by the export's
    encoder, and with ``interpolate`` K a strip ``<name>_interp`` of K outputs along the line between two codes.
    The codes used are written to ``latents.json`` in the output folder.

    ``precision``: ``fp32``, or ``bf16``/``fp16`` autocast (convolutions in reduced precision, outputs written from
    fp32), refused where the device lacks it (i2i/precision.py). ``compile``: run the net through
    ``torch.compile`` (seconds to compile per input size, then faster passes; see ``Compiled``).
    """
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    check_folders(input_dir, output_dir)
    check_count("--batch-size", batch_size)
    check_count("--tile-batch", tile_batch)
    device = torch.device(device)
    check_precision(precision, device)
    # 512 px tiles already fill a CPU's cores: a batch of 4 ran no faster than 1 for a 4000x3000 CycleGAN
    # translation on 2 cores (138 s vs 132 s) and peaked at 1964 MB instead of 1221 MB
    on_cpu = device.type == "cpu"
    tiles_per_pass = tile_batch or (1 if on_cpu else batch_size or MAX_BATCH)
    name, net = export.generator(direction)
    in_c, multiple = net.in_channels, size_multiple(export, name)
    smallest = min_size(export, name)
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
    net = net.to(device).eval()
    per_pixel = flops_per_pixel(net, in_c, multiple, smallest, device) if batch_size is None and on_cpu else None
    forward = Compiled(net) if compile else net  # the net's attributes are read from ``net``

    def images_per_pass(h: int, w: int) -> int:
        if batch_size is not None:
            return batch_size
        if per_pixel is None:
            return MAX_BATCH
        return max(1, min(MAX_BATCH, int(CPU_PASS_FLOPS // max(per_pixel * h * w, 1.0))))

    plan = LatentPlan.for_export(export, net, samples=samples, seed=seed, sync_z=sync_z, style_from=style_from,
                                 interpolate=interpolate, device=device)
    torch.set_flush_denormal(True)  # denormal activations are 10-100x slower on x86 CPUs
    if on_cpu:
        keep_freed_memory()  # each pass's activations reuse the last pass's memory instead of faulting it in
    net_scale = getattr(net, "scale", 1)
    auto_pixels = AUTO_TILE_PIXELS // (net_scale ** 2 if isinstance(net_scale, int) and net_scale > 0 else 1)
    unlisted: list[tuple[Path, str]] = []  # folders that could not be listed (permissions): reported as failed
    files = list_images(input_dir, errors=unlisted)
    if not files and not unlisted:
        raise I2IError(f"--input {input_dir}: no images found (looked for png, jpg, tif, bmp, webp recursively)")
    failed: list[dict] = [{"file": str(folder), "error": reason} for folder, reason in unlisted]
    written = tiled = 0
    pending: list[_Item] = []
    t0 = time.perf_counter()

    def write(item: _Item, array: np.ndarray) -> None:
        nonlocal written
        try:
            target = output_path(output_dir, item.rel)
        except DataError as exc:
            failed.append({"file": str(item.path), "error": str(exc)})
            return
        try:
            write_image(target, array)
            written += 1
            if plan is not None and item.z is not None:
                plan.record(item.rel, item.z)
        except (OSError, DataError, ValueError) as exc:
            failed.append({"file": str(item.path), "error": f"cannot write {show_path(target)}: {exc}"})

    def flush() -> None:
        if not pending:
            return
        x = torch.stack([it.tensor for it in pending]).contiguous().to(device)
        x, (h, w) = pad_to_multiple(x, multiple)
        with torch.inference_mode():
            y = forward(x) if pending[0].z is None else forward(x, torch.stack([it.z for it in pending]).to(device))
        scale_h, scale_w = y.shape[-2] // x.shape[-2], y.shape[-1] // x.shape[-1]
        y = y[..., : h * max(1, scale_h), : w * max(1, scale_w)].float().cpu()
        for item, out in zip(pending, y):
            write(item, _assemble([(0, out)], item, in_c, out.shape[-2]))
        pending.clear()

    def translate_tiled(item: _Item, side: int) -> None:
        nonlocal tiled
        h, w = item.tensor.shape[-2:]
        strips = iter_tiled_rows(forward if item.z is None else WithCode(forward, item.z), item.tensor, tile=side,
                                 overlap=tile_overlap, device=device,
                                 batch=tiles_per_pass, multiple=multiple)
        first = next(strips)
        scale = first[1].shape[-1] // w
        write(item, _assemble(itertools.chain([first], strips), item, in_c, h * scale))
        tiled += 1

    with autocast(precision, device):  # every forward pass: whole images, tiles, interpolation strips
        for index, path in enumerate(files):
            rel = path.relative_to(input_dir)
            try:
                source = read_image(path)
                h, w = source.shape[:2]
                side = None
                if tile and (h > tile or w > tile):
                    side = tile
                elif auto_tile and h * w > auto_pixels:
                    side = auto_tile
                    log.info("%s: %dx%d px is above the automatic tiling threshold (%d px of input): translating in "
                             "%d px tiles, overlap %d (--tile N to choose the size, --tile 0 to turn tiling off)", rel,
                             w, h, auto_pixels, side, tile_overlap)
                # a tiled image stays in its file's dtype and is converted tile by tile (no full-size float copy)
                tensor = ImageSource(adapt_channels(source, in_c)) if side else _input_tensor(source, in_c)
            except (DataError, ValueError, OSError, MemoryError) as exc:  # unreadable inputs: reported, not fatal
                failed.append({"file": str(path), "error": str(exc) or type(exc).__name__})
                continue
            item = _Item(path, rel, tensor, source)
            del source, tensor
            if plan is not None and plan.interpolate:
                flush()
                z_line = plan.line(index)
                try:
                    image = item.tensor if torch.is_tensor(item.tensor) else item.tensor.region(0, h, 0, w)
                    strip = interpolation_strip(forward, image, z_line, multiple=multiple, device=device)
                except (RuntimeError, MemoryError) as exc:
                    failed.append({"file": str(item.path), "error": f"interpolation strip: {exc}"})
                else:
                    strip_item = item.variant(plan.strip_name(item.rel), torch.stack([z_line[0], z_line[-1]]))
                    strip_item.alpha = None  # one alpha for K frames side by side: dropped
                    write(strip_item, _assemble([(0, strip)], strip_item, in_c, h))
            variants = [item] if plan is None else [item.variant(rel, z) for rel, z in plan.codes(index, item.rel)]
            for variant in variants:
                if side:
                    translate_tiled(variant, side)
                    continue
                if pending and (pending[0].tensor.shape != variant.tensor.shape
                                or len(pending) >= images_per_pass(*pending[0].tensor.shape[-2:])):
                    flush()
                pending.append(variant)
        flush()
    seconds = time.perf_counter() - t0
    extra = {}
    if plan is not None:
        extra = plan.summary()
        if written:
            plan.write_codes(output_dir / "latents.json")
    return {**extra, "images": written, "failed": len(failed), "failures": failed, "direction": direction or next(
        iter(export.meta["directions"])), "seconds": round(seconds, 3),
        "images_per_s": round(written / max(seconds, 1e-9), 3), "tiled": tiled,
        **({"tile_batch": tiles_per_pass} if tiled else {}), "output": str(output_dir)}
