"""Super-resolution scores: PSNR/SSIM (RGB and Y) of the generator and of bicubic upscaling from the same LR inputs.

Used two ways:
- during training, the recipe's ``eval:`` section of an ``sr_pixel``/``esrgan`` recipe (``SRScorer``, named by the
  models' ``scorer`` attribute): every ``every`` steps on the main process, with the EMA generator when there is
  one, on the first ``max_images`` images of ``data``;
- ``i2i eval EXPORT --data DIR`` for a super-resolution export (``evaluate_export``).

``data`` is a folder of HR images (LR made from each by the training bicubic, rounded to 8 bits), a folder of
Set5/Set14-style ``*_HR``/``*_LR`` pairs, or (with ``lr_data``) an HR folder beside an LR folder. Given LR files,
the model and bicubic both start from those same files.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..arguments import check_arguments
from ..errors import DataError, RecipeError
from ..registry import DATASETS, config_value
from .scoring import write_scores

FIGURES = ("psnr", "ssim", "psnr_y", "ssim_y")


@dataclass
class SREvalConfig:
    """The recipe's ``eval:`` section for super-resolution models."""

    data: str | None = None          # HR images, or *_HR/*_LR pairs (Set5/Set14); default with demo: data/demo/<demo>
    lr_data: str | None = None       # a folder of LR images matching data's HR images by name
    scale: int | None = None         # default: data.scale (must equal it and the generator's)
    every: int = 1000
    max_images: int | None = 5       # the first N images (sorted by name); null: all
    crop_border: int | None = None   # pixels dropped on every side before scoring; default: scale
    demo: str | None = None          # build this demo data set (i2i.data.demo) at data on first use


def _data_scale(recipe: dict) -> Any:
    data = recipe.get("data") or {}
    try:
        return config_value(DATASETS.get(data.get("type")), data, "scale")
    except RecipeError:
        return None


def eval_folder(config: SREvalConfig) -> str:
    return config.data if config.data is not None else f"data/demo/{config.demo}"


def load_eval_pairs(data: str, scale: int, *, lr_data: str | None = None, channels: int = 3,
                    max_images: int | None = None, demo: str | None = None) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, LR uint8 HWC, HR uint8 HWC) for whole images, sorted by name: LR files when given, else bicubic."""
    from ..data.io import from_tensor
    from ..data.superres import SuperResFolder
    ds = SuperResFolder(root=data, lr_root=lr_data, scale=scale, crop=False, augment=False, channels=channels,
                        demo=demo)
    out = []
    for i in range(len(ds) if max_images is None else min(max_images, len(ds))):
        sample = ds[i]
        name = Path(sample["path_b"]).stem
        name = name.removesuffix("_HR")
        out.append((name, from_tensor(sample["real_a"]), from_tensor(sample["real_b"])))
    return out


def lr_source(data: str, lr_data: str | None) -> str:
    """'files' when the LR inputs are given files, 'bicubic' when they are made from HR."""
    if lr_data is not None:
        return "files"
    from ..data.io import list_images
    return "files" if any(p.stem.endswith("_LR") for p in list_images(Path(data))) else "bicubic"


def score_pairs(net: torch.nn.Module, pairs: list[tuple[str, np.ndarray, np.ndarray]], scale: int, device: Any,
                crop_border: int | None = None) -> tuple[dict[str, float | int], list[dict[str, Any]]]:
    """Mean figures (``evaluate_sr``'s keys) and one row of figures per image."""
    from .sr import evaluate_sr
    rows = []
    for name, lr, hr in pairs:
        figures = evaluate_sr(net, [(lr, hr)], scale, device, crop_border=crop_border)
        rows.append({"image": name, **{k: v for k, v in figures.items() if k != "images"}})
    if not rows:
        raise DataError("no images to score")
    keys = [k for k in rows[0] if k != "image"]
    mean: dict[str, float | int] = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    mean["images"] = len(rows)
    return mean, rows


class SRScorer:
    """PSNR/SSIM of the (EMA) generator against bicubic on a few held-out images, every ``eval.every`` steps."""

    def __init__(self, config: SREvalConfig, pairs: list, scale: int):
        self.config, self.every, self.pairs, self.scale = config, config.every, pairs, scale

    @staticmethod
    def check_config(cfg: dict, recipe: dict, *, file: str) -> None:
        if not isinstance(cfg, dict):
            raise RecipeError("eval must be a mapping such as {data: data/Set5/image_SRF_4, every: 1000} or null",
                              file=file, key="eval", value=cfg)
        check_arguments(SREvalConfig, cfg, key="eval", file=file)
        ev = SREvalConfig(**cfg)
        for name in ("every", "max_images", "scale"):
            value = getattr(ev, name)
            if isinstance(value, int) and value <= 0:
                raise RecipeError("must be positive", file=file, key=f"eval.{name}", value=value)
        if isinstance(ev.crop_border, int) and ev.crop_border < 0:
            raise RecipeError("must be >= 0", file=file, key="eval.crop_border", value=ev.crop_border)
        if ev.data is None and ev.demo is None:
            raise RecipeError("eval needs data: a folder of HR images or of *_HR/*_LR pairs (e.g. Set5's "
                              "image_SRF_4)", file=file, key="eval.data")
        if ev.demo is not None:
            from ..data.demo import DEMOS
            if ev.demo not in DEMOS:
                raise RecipeError("unknown demo data set", file=file, key="eval.demo", value=ev.demo, choices=DEMOS)
        data_scale = _data_scale(recipe)
        if ev.scale is not None and isinstance(data_scale, int) and ev.scale != data_scale:
            raise RecipeError(f"the model is trained for x{data_scale} (data.scale); evaluate it at that scale",
                              file=file, key="eval.scale", value=ev.scale)

    @classmethod
    def for_recipe(cls, recipe, parts, accelerator) -> SRScorer:
        config = SREvalConfig(**recipe["eval"])
        scale = config.scale or int(getattr(parts.dataset, "scale", _data_scale(recipe)))
        channels = getattr(parts.dataset, "channels", {}).get("real_a", 3)
        pairs = []
        if accelerator.is_main_process:  # only the main process scores
            pairs = load_eval_pairs(eval_folder(config), scale, lr_data=config.lr_data, channels=channels,
                                    max_images=config.max_images, demo=config.demo)
        return cls(config, pairs, scale)

    def score(self, model, emas: dict, run_dir: Path, step: int, accelerator) -> dict:
        g = emas["g"].module if "g" in emas else accelerator.unwrap_model(model.nets["g"])
        figures, _ = score_pairs(g, self.pairs, self.scale, accelerator.device, self.config.crop_border)
        logged = {f"eval/{k}": round(v, 5) for k, v in figures.items() if isinstance(v, float)}
        write_scores(run_dir, step, logged, accelerator)
        return logged


def evaluate_export(export: Any, data: str, *, lr_data: str | None = None, scale: int | None = None,
                    crop_border: int | None = None, max_images: int | None = None,
                    device: Any = "cpu") -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``i2i eval`` of a super-resolution export: (summary figures, per-image rows)."""
    from ..errors import I2IError
    _, g = export.generator()
    g_scale = int(getattr(g, "scale", export.meta.get("scale", 1)))
    if scale is not None and scale != g_scale:
        raise I2IError(f"{export.path}: the generator upscales x{g_scale}; --scale {scale} does not match")
    if not Path(data).is_dir():
        raise I2IError(f"--data {data}: no such folder (HR images, or *_HR/*_LR pairs such as Set5's image_SRF_4)")
    if lr_data is not None and not Path(lr_data).is_dir():
        raise I2IError(f"--lr-data {lr_data}: no such folder")
    pairs = load_eval_pairs(data, g_scale, lr_data=lr_data, channels=getattr(g, "in_channels", 3),
                            max_images=max_images)
    mean, rows = score_pairs(g, pairs, g_scale, device, crop_border)
    summary = {"export": str(export.path), "data": str(data), "lr": lr_source(data, lr_data), "scale": g_scale,
               "crop_border": g_scale if crop_border is None else crop_border, **mean}
    return summary, rows


def format_table(rows: list[dict[str, Any]], mean: dict[str, Any]) -> str:
    """A small text table: one line per image and the mean, model vs bicubic."""
    cols = [("psnr_y", "PSNR-Y", 2), ("ssim_y", "SSIM-Y", 4), ("bicubic_psnr_y", "bic PSNR-Y", 2),
            ("bicubic_ssim_y", "bic SSIM-Y", 4), ("psnr", "PSNR", 2), ("bicubic_psnr", "bic PSNR", 2)]
    width = max(12, *(len(r["image"]) for r in rows))
    lines = [f"{'image':<{width}}" + "".join(f"{title:>12}" for _, title, _ in cols)]
    for r in [*rows, {"image": f"mean ({len(rows)})", **mean}]:
        lines.append(f"{r['image']:<{width}}" + "".join(f"{r[k]:>12.{d}f}" for k, _, d in cols))
    return "\n".join(lines)
