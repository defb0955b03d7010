"""Translate a folder tree with an export: every image, same relative names, channels and bit depth kept."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .data.io import adapt_channels, from_tensor, list_images, read_image, to_float, to_tensor, write_image
from .errors import DataError, I2IError
from .export import Export
from .registry import NETS


def check_folders(input_dir: Path, output_dir: Path) -> None:
    """Outputs never land inside the input tree (nor the input inside the output): no input is overwritten."""
    if not input_dir.is_dir():
        raise I2IError(f"--input {input_dir}: no such folder")
    src, dst = input_dir.resolve(), output_dir.resolve()
    if src == dst or src in dst.parents or dst in src.parents:
        raise I2IError(f"--output {output_dir} overlaps --input {input_dir}; choose an output folder outside "
                       "the input tree (translate never writes next to its inputs)")


def size_multiple(export: Export, name: str) -> int:
    cfg = export.recipe["nets"][name]
    cls = NETS.get(cfg["type"])
    kwargs = {k: v for k, v in cfg.items() if k != "type"}
    return cls.size_multiple(**kwargs) if hasattr(cls, "size_multiple") else 1


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


class _Item:
    def __init__(self, path: Path, rel: Path, tensor: torch.Tensor, source: np.ndarray):
        self.path, self.rel, self.tensor = path, rel, tensor
        self.channels, self.dtype = source.shape[2], source.dtype
        self.alpha = source[..., -1:] if source.shape[2] in (2, 4) else None


def _restore(y: np.ndarray, item: _Item, in_channels: int) -> np.ndarray:
    """Give the output the input's channel layout where the net maps a space onto itself (gray stays gray)."""
    colour = item.channels - (1 if item.alpha is not None else 0)
    if y.shape[2] == in_channels and colour != y.shape[2] and colour in (1, 3):
        y = adapt_channels(y, colour)
    if item.alpha is not None and y.shape[:2] == item.alpha.shape[:2]:
        y = np.concatenate([y, to_float(item.alpha)], axis=2)
    return y


def translate_folder(export: Export, input_dir: str | Path, output_dir: str | Path, *, direction: str | None = None,
                     batch_size: int = 4, device: str | torch.device = "cpu") -> dict:
    """Translate every image under ``input_dir`` into ``output_dir``; returns figures (and failed files)."""
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    check_folders(input_dir, output_dir)
    name, net = export.generator(direction)
    net = net.to(device).eval()
    torch.set_flush_denormal(True)  # denormal activations are 10-100x slower on x86 CPUs
    in_c, multiple = net.in_channels, size_multiple(export, name)
    files = list_images(input_dir)
    if not files:
        raise I2IError(f"--input {input_dir}: no images found (looked for png, jpg, tif, bmp, webp recursively)")
    failed: list[dict] = []
    written = 0
    pending: list[_Item] = []
    t0 = time.perf_counter()

    def flush() -> None:
        nonlocal written
        if not pending:
            return
        x = torch.stack([it.tensor for it in pending]).to(device)
        x, (h, w) = pad_to_multiple(x, multiple)
        with torch.inference_mode():
            y = net(x)
        scale_h, scale_w = y.shape[-2] // x.shape[-2], y.shape[-1] // x.shape[-1]
        y = y[..., : h * max(1, scale_h), : w * max(1, scale_w)].float().cpu()
        for item, out in zip(pending, y):
            arr = _restore(to_float(from_tensor(out, dtype=np.uint16)), item, in_c)
            dtype = np.uint16 if item.dtype != np.uint8 else np.uint8
            target = output_dir / item.rel
            try:
                write_image(target, (np.clip(arr, 0, 1) * np.iinfo(dtype).max + 0.5).astype(dtype))
                written += 1
            except (OSError, DataError, ValueError) as exc:
                failed.append({"file": str(item.path), "error": f"cannot write {target}: {exc}"})
        pending.clear()

    for path in files:
        try:
            source = read_image(path)
            tensor = to_tensor(to_float(adapt_channels(source, in_c)))
        except (DataError, ValueError, OSError) as exc:
            failed.append({"file": str(path), "error": str(exc)})
            continue
        item = _Item(path, path.relative_to(input_dir), tensor, source)
        if pending and (pending[0].tensor.shape != tensor.shape or len(pending) >= batch_size):
            flush()
        pending.append(item)
    flush()
    seconds = time.perf_counter() - t0
    return {"images": written, "failed": len(failed), "failures": failed, "direction": direction or next(
        iter(export.meta["directions"])), "seconds": round(seconds, 3),
        "images_per_s": round(written / max(seconds, 1e-9), 3), "output": str(output_dir)}
