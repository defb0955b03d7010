"""`i2i inpaint`: fill the holes of every image under --input with an inpainting export (context_encoder, ccgan).

The known pixels are kept exactly: each output is ``mask * generated + (1 - mask) * input`` computed in the written
bit depth (8-bit, 16-bit, or float for float TIFFs), so outside the hole every value, alpha included, is the
input's. Lossy inputs (JPEG, WebP) are written as PNG for that reason. Masks: ``center`` (the central square of half
the shorter side), ``random`` (1 to 3 random blocks per image, seeded by --seed and the image's position) or a folder
of mask images matched by relative path without extension (white = hole). Images larger than the tile are filled
in overlapping tiles (i2i/inference/tiling.py): a hole is then filled from the context inside its tiles.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..data.io import adapt_channels, read_image, show_path, write_image
from ..data.masks import MaskSource, center_mask, match_mask_files, read_mask
from ..errors import DataError, I2IError
from ..models.context_encoder import INPAINT_TASK
from ..registry import MODELS, net_size_rules
from .export import Export
from .tiling import input_tensor, pad_to_multiple, tiled_forward
from .translate import (
    AUTO_TILE,
    AUTO_TILE_PIXELS,
    _list_inputs,
    _speed_up_torch,
    check_folders,
    check_tile,
    output_path,
)

log = logging.getLogger("i2i")

MASK_KINDS = ("center", "random")
RANDOM_MASK = {"type": "blocks", "count": [1, 3], "size": [0.15, 0.5]}  # --masks random
LOSSY = (".jpg", ".jpeg", ".webp")  # written as .png: re-encoding would change the known pixels


class Filler(nn.Module):
    """G behind its input builder: (B, C + 1, H, W) = image in [-1, 1] and mask (1 = hole) -> G's (B, C, H, W)."""

    def __init__(self, g: nn.Module, build: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]):
        super().__init__()
        self.g, self.build = g, build

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        image, mask = x[:, :-1], (x[:, -1:] >= 0.5).to(x.dtype)
        return self.g(self.build(image, mask))


def export_filler(export: Export) -> tuple[Filler, int, int]:
    """(the export's Filler, the image channels G fills, G's size multiple); I2IError for other exports."""
    model = export.meta.get("model")
    if export.meta.get("task") != INPAINT_TASK or "g" not in export.nets:
        raise I2IError(f"{export.path}: not an inpainting export (model '{model}'); `i2i inpaint` fills holes with "
                       "a context_encoder or ccgan export")
    from .. import models  # noqa: F401  (registers the built-in models)
    model_cls = MODELS.get(model)
    g = export.nets["g"]
    return (Filler(g, model_cls.input_builder(export.recipe["model"])).eval(), g.out_channels,
            net_size_rules(export.recipe["nets"]["g"])[0])


def make_mask(kind: str, height: int, width: int, index: int, seed: int) -> np.ndarray:
    """A generated (H, W) mask: ``center`` or ``random`` (seeded by ``seed`` and the image's position)."""
    if kind == "center":
        return center_mask(height, width, 0.5)
    return MaskSource.from_config(RANDOM_MASK).generate(height, width, np.random.default_rng([seed, index]))


def fill_image(filler: Filler, image: torch.Tensor, mask: np.ndarray, *, multiple: int, tile: int | None,
               overlap: int, device: torch.device | str) -> torch.Tensor:
    """G's output (C, H, W) on the CPU for one image (C, H, W) in [-1, 1] and its mask; tiled when ``tile``."""
    x = torch.cat([image, torch.from_numpy(mask)[None].to(image.dtype)])
    if tile:
        return tiled_forward(filler, x, tile=tile, overlap=overlap, device=device, multiple=multiple)
    padded, (h, w) = pad_to_multiple(x[None], multiple)
    with torch.inference_mode():
        return filler(padded.to(device))[0, :, :h, :w].float().cpu()


def composite_array(source: np.ndarray, generated: torch.Tensor, mask: np.ndarray) -> np.ndarray:
    """``mask * generated + (1 - mask) * source`` in the source's dtype and channel layout (alpha kept): outside the
    hole the result is ``source`` bit for bit."""
    colour = source.shape[2] - (1 if source.shape[2] in (2, 4) else 0)
    gen = ((generated.clamp(-1, 1) + 1) / 2).permute(1, 2, 0).numpy().astype(np.float32)
    if gen.shape[2] != colour:
        gen = adapt_channels(gen, colour)
    if source.dtype == np.uint8 or source.dtype == np.uint16:
        gen = np.rint(gen * np.iinfo(source.dtype).max).astype(source.dtype)
    else:
        gen = gen.astype(source.dtype)
    out = source.copy()
    hole = mask >= 0.5
    out[..., :colour][hole] = gen[hole]
    return out


def _tile_side(tile: int | None, overlap: int, multiple: int, h: int, w: int) -> int | None:
    if tile == 0:
        return None
    if tile:
        return tile if h > tile or w > tile else None
    return max(AUTO_TILE, multiple) if h * w > AUTO_TILE_PIXELS else None


def inpaint_folder(export: Export, input_dir: str | Path, output_dir: str | Path, *, masks: str = "center",
                   seed: int = 0, device: str | torch.device = "cpu", tile: int | None = None,
                   tile_overlap: int = 32) -> dict:
    """Fill every image under ``input_dir`` (or the one image it names) into ``output_dir`` with its relative name
    (lossy formats as .png); ``masks``: center, random or a folder of masks. Returns figures and failures; every
    argument problem (not an inpainting export, a --masks that is no kind and no folder, images without a mask) is
    an I2IError before anything is written."""
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    filler, _, multiple = export_filler(export)
    in_c = export.nets["g"].out_channels
    check_folders(input_dir, output_dir, export.path)
    mask_dir = None
    if masks not in MASK_KINDS:
        mask_dir = Path(masks)
        if not mask_dir.is_dir():
            raise I2IError(f"--masks {show_path(masks)}: not {' or '.join(MASK_KINDS)}, and no such folder of mask "
                           "images (white = hole, matched to the inputs by relative path without extension)")
        check_folders(mask_dir, output_dir, export.path)
    if tile:
        tile, note = check_tile(tile, tile_overlap, multiple=multiple)
        if note:
            log.info("%s", note)
    files, failed, skipped = _list_inputs(input_dir)
    mask_files: list[Path | None] = [None] * len(files)
    if mask_dir is not None:
        root = input_dir if input_dir.is_dir() else input_dir.parent
        try:
            mask_files = list(match_mask_files([p for p, _ in files], root, mask_dir))
        except DataError as exc:
            raise I2IError(str(exc)) from None
    device = torch.device(device)
    filler = filler.to(device)
    _speed_up_torch(device.type == "cpu")
    written, tiled, holes, t0 = 0, 0, [], time.perf_counter()
    for index, ((path, rel), mask_path) in enumerate(zip(files, mask_files)):
        try:
            source = read_image(path)
            h, w = source.shape[:2]
            mask = read_mask(mask_path, (h, w), image=path) if mask_path else make_mask(masks, h, w, index, seed)
            side = _tile_side(tile, tile_overlap, multiple, h, w)
            generated = fill_image(filler, input_tensor(source, in_c), mask, multiple=multiple, tile=side,
                                   overlap=tile_overlap, device=device)
            out = composite_array(source, generated, mask)
            target = output_path(output_dir, rel.with_suffix(".png") if rel.suffix.lower() in LOSSY else rel)
            write_image(target, out)
        except (DataError, ValueError, OSError, MemoryError) as exc:  # reported, the other images go on
            failed.append({"file": str(path), "error": str(exc) or type(exc).__name__})
            continue
        written, tiled, holes = written + 1, tiled + bool(side), holes + [float(mask.mean())]
    seconds = time.perf_counter() - t0
    return {"images": written, "failed": len(failed), "failures": failed, "skipped": len(skipped), "skips": skipped,
            "masks": masks if mask_dir is None else str(mask_dir), "hole_fraction": round(float(np.mean(holes)), 4)
            if holes else None, "tiled": tiled, "seconds": round(seconds, 3), "output": str(output_dir)}
