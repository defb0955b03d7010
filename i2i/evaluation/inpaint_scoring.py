"""Inpainting scores: PSNR, SSIM and L1 inside the hole on held-out images, beside OpenCV's classical inpainting.

Used two ways:
- during training, the recipe's ``eval:`` section of a ``context_encoder``/``ccgan`` recipe (``InpaintScorer``, named
  by the models' ``scorer``): every ``every`` steps on the main process, with the EMA generator when there is one,
  on the first ``max_images`` images of ``data`` (its ``split`` folder when it has one), resized to ``size``, with
  the holes of ``mask`` (default: the centre square of half the side); the first scoring also logs the generator
  as the run started (``eval/start_*``: step 0 of a fresh run) and OpenCV's Telea inpainting (``eval/telea_*``);
- ``i2i eval EXPORT`` for an inpainting export (``evaluate_export``), with Telea and Navier-Stokes beside it.

The figures are computed on 8-bit images, the composite (known pixels + the fill) against the original:
``hole_psnr`` = 10 log10(255^2 / MSE over the hole's pixels and channels), ``hole_l1`` = mean absolute error over
the hole in [0, 1] units, ``hole_ssim`` = the SSIM map (Gaussian window 11, sigma 1.5, per channel) averaged over
the hole's pixels; each is averaged over the images.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from ..arguments import check_arguments
from ..errors import I2IError, RecipeError
from .scoring import write_scores

FIGURES = ("hole_psnr", "hole_ssim", "hole_l1")
CENTER = {"type": "center", "size": 0.5}


@dataclass
class InpaintEvalConfig:
    """The recipe's ``eval:`` section for inpainting models."""

    every: int = 500
    data: str | None = None        # held-out images (default: data.root); their <split>/ folder when it exists
    split: str = "test"
    demo: str | None = None        # build this demo data set (i2i.data.demo) at data on first use
    size: int | None = None        # images resized to size x size (default: data.size)
    mask: dict | None = None       # holes (i2i/data/masks.py); default: the centre square of half the side
    max_images: int | None = 24    # the first N images by name; null: all
    seed: int = 0                  # random masks: image i gets the mask drawn for (i, seed)


def load_eval_images(data: str, split: str, channels: int, size: int, mask: dict | None, max_images: int | None,
                     seed: int = 0, demo: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(images (N, C, size, size) in [-1, 1], masks (N, 1, size, size)): whole images resized, no augmentation."""
    from ..data.folders import SingleFolder
    ds = SingleFolder(root=data, split=split, channels=channels, size=size, flip=False, mask=mask or CENTER,
                      demo=demo)
    items = [ds[(i, seed)] for i in range(len(ds) if max_images is None else min(max_images, len(ds)))]
    return torch.stack([it["real_a"] for it in items]), torch.stack([it["mask"] for it in items])


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] -> (N, H, W, C) uint8, rounded."""
    return ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().permute(0, 2, 3, 1).numpy() \
        .astype(np.uint8)


def _ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pixel SSIM (H, W) of two uint8 HWC images, averaged over channels (Wang et al. 2004 constants)."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    x, y = a.astype(np.float64), b.astype(np.float64)

    def blur(z: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(z, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    ssim = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return ssim.reshape(*a.shape[:2], -1).mean(axis=2)


def hole_figures(filled: np.ndarray, real: np.ndarray, masks: np.ndarray) -> dict[str, float]:
    """Mean ``hole_psnr`` (dB), ``hole_ssim`` and ``hole_l1`` over images: (N, H, W, C) uint8 each, masks (N, H, W)."""
    psnr, ssim, l1 = [], [], []
    for f, r, m in zip(filled, real, masks):
        hole = m >= 0.5
        if not hole.any():
            continue
        diff = f.astype(np.float64)[hole] - r.astype(np.float64)[hole]
        mse = float(np.mean(diff ** 2))
        psnr.append(10 * np.log10(255.0 ** 2 / mse) if mse > 0 else 100.0)
        l1.append(float(np.mean(np.abs(diff))) / 255.0)
        ssim.append(float(_ssim_map(f, r)[hole].mean()))
    if not psnr:
        raise I2IError("no image has a hole to score (every mask is empty)")
    return {"hole_psnr": float(np.mean(psnr)), "hole_ssim": float(np.mean(ssim)), "hole_l1": float(np.mean(l1)),
            "images": len(psnr)}


def opencv_fill(real: np.ndarray, masks: np.ndarray, method: str = "telea", radius: int = 3) -> np.ndarray:
    """OpenCV's classical inpainting (``telea``: Telea 2004; ``ns``: Navier-Stokes, Bertalmio et al. 2001) of
    (N, H, W, C) uint8 images with 1 or 3 channels; known pixels kept."""
    flag = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}[method]
    out = []
    for image, m in zip(real, masks):
        hole = (m >= 0.5).astype(np.uint8)
        filled = cv2.inpaint(np.ascontiguousarray(image), hole, radius, flag)
        out.append(filled.reshape(image.shape))
    return np.stack(out)


@torch.no_grad()
def fill_batch(fill, images: torch.Tensor, masks: torch.Tensor, device: Any, batch: int = 8) -> np.ndarray:
    """Composites (N, H, W, C) uint8 of ``fill(image, mask) -> G's output``, in batches on ``device``."""
    out = []
    for i in range(0, len(images), batch):
        x, m = images[i:i + batch].to(device), masks[i:i + batch].to(device)
        out.append(to_uint8(m * fill(x, m) + (1 - m) * x))
    return np.concatenate(out)


def score_generator(fill, g: torch.nn.Module, images: torch.Tensor, masks: torch.Tensor, device: Any) -> dict:
    """``hole_figures`` of a generator (put in eval mode for the pass, then back)."""
    was = g.training
    g.eval()
    try:
        filled = fill_batch(fill, images, masks, device)
    finally:
        g.train(was)
    return hole_figures(filled, to_uint8(images), masks[:, 0].numpy())


class InpaintScorer:
    """Hole PSNR/SSIM/L1 of the (EMA) generator on held-out images every ``eval.every`` steps."""

    def __init__(self, config: InpaintEvalConfig, images: torch.Tensor, masks: torch.Tensor, start: dict):
        self.config, self.every, self.images, self.masks, self.start = config, config.every, images, masks, start

    @staticmethod
    def check_config(cfg: dict, recipe: dict, *, file: str) -> None:
        if not isinstance(cfg, dict):
            raise RecipeError("eval must be a mapping such as {data: data/photos, split: test, every: 500} or null",
                              file=file, key="eval", value=cfg)
        check_arguments(InpaintEvalConfig, cfg, key="eval", file=file)
        ev = InpaintEvalConfig(**cfg)
        for name in ("every", "max_images", "size"):
            value = getattr(ev, name)
            if value is not None and (not isinstance(value, int) or value <= 0):
                raise RecipeError("must be a positive integer", file=file, key=f"eval.{name}", value=value)
        from ..data.demo import DEMOS
        from ..data.masks import MaskSource
        if ev.demo is not None and ev.demo not in DEMOS:
            raise RecipeError("unknown demo data set", file=file, key="eval.demo", value=ev.demo, choices=DEMOS)
        try:
            MaskSource.from_config(ev.mask, key="eval.mask")
        except RecipeError as exc:
            raise exc.in_file(file) from None

    @staticmethod
    def metric_names(cfg: dict, recipe: dict) -> list[str]:
        """The figures logged every ``every`` steps (``train.keep_best`` may name one: eval/hole_psnr, max)."""
        return list(FIGURES)

    @classmethod
    def for_recipe(cls, recipe, parts, accelerator) -> InpaintScorer:
        config = InpaintEvalConfig(**recipe["eval"])
        images = masks = torch.empty(0)
        start: dict = {}
        if accelerator.is_main_process:  # only the main process scores
            data = recipe["data"]
            channels = next(iter(parts.dataset.channels.values()))
            images, masks = load_eval_images(config.data or data["root"], config.split, channels,
                                             config.size or data.get("size") or 256, config.mask, config.max_images,
                                             config.seed, config.demo)
            model = parts.model
            g = accelerator.unwrap_model(model.nets["g"])
            start = {f"eval/start_{k}": v for k, v in score_generator(
                lambda x, m: model.fill(x, m, g), g, images, masks, accelerator.device).items() if k != "images"}
            if images.shape[1] in (1, 3):
                real = to_uint8(images)
                telea = hole_figures(opencv_fill(real, masks[:, 0].numpy()), real, masks[:, 0].numpy())
                start.update({f"eval/telea_{k}": v for k, v in telea.items() if k != "images"})
        return cls(config, images, masks, start)

    def score(self, model, emas: dict, run_dir: Path, step: int, accelerator) -> dict:
        g = emas["g"].module if "g" in emas else accelerator.unwrap_model(model.nets["g"])
        figures = score_generator(lambda x, m: model.fill(x, m, g), g, self.images, self.masks, accelerator.device)
        logged = {f"eval/{k}": round(v, 5) for k, v in figures.items() if k != "images"}
        if self.start:  # once: where the run started, and the classical baseline on the same holes
            logged.update({k: round(v, 5) for k, v in self.start.items()})
            self.start = {}
        write_scores(run_dir, step, logged, accelerator)
        return logged


def evaluate_export(export, *, data: str | None = None, split: str = "test", mask: str | None = None,
                    max_images: int | None = None, seed: int = 0, device: Any = "cpu") -> dict:
    """``i2i eval`` of an inpainting export: hole figures of the export and of OpenCV's Telea and Navier-Stokes on the
    same images and holes (``mask``: a kind, center/blocks/strokes; default the recipe's eval.mask, else center)."""
    from ..errors import check_count
    from ..inference.inpaint import export_filler
    check_count("--max-images", max_images)
    filler, channels, _ = export_filler(export)
    ev = export.recipe.get("eval") or {}
    data = data or ev.get("data") or export.recipe["data"].get("root")
    if not data or not Path(data).is_dir():
        raise I2IError(f"--data {data}: no such folder of held-out images (give --data DIR)")
    mask_cfg = {"type": mask} if mask else ev.get("mask") or CENTER
    size = ev.get("size") or export.recipe["data"].get("size") or 256
    images, masks = load_eval_images(data, split, channels, size, mask_cfg,
                                     max_images if max_images is not None else ev.get("max_images"), seed)
    figures = score_generator(lambda x, m: filler.g(filler.build(x, m)), filler.g, images, masks, device)
    out = {"export": str(export.path), "model": export.meta.get("model"), "data": str(data), "split": split,
           "size": size, "mask": mask_cfg, **figures}
    if channels in (1, 3):
        real, holes = to_uint8(images), masks[:, 0].numpy()
        for method in ("telea", "ns"):
            found = hole_figures(opencv_fill(real, holes, method), real, holes)
            out.update({f"opencv_{method}_{k}": v for k, v in found.items() if k != "images"})
    return out
