"""Context Encoder (Pathak et al. 2016, arXiv:1604.07379): an encoder-decoder fills a hole from its context."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ..errors import RecipeError
from ..registry import MODELS
from .base import GANModel, StepContext

INPAINT_TASK = "inpainting"  # export meta "task": `i2i inpaint` fills holes with it, `i2i eval` scores the holes


def image_of(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The batch's image: ``real`` (labeled data sets) or ``real_a`` (folder data sets)."""
    return batch["real"] if "real" in batch else batch["real_a"]


def masked_input(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """G's input: the image with its hole set to 0 (mid-grey in [-1, 1]) and the mask (1 = hole) as one more channel."""
    return torch.cat([image * (1 - mask), mask], 1)


def composite(fake: torch.Tensor, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The filled image: G's pixels in the hole, the known pixels everywhere else."""
    return mask * fake + (1 - mask) * image


def hole_loss(loss: Callable, fake: torch.Tensor, real: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """A per-pixel mean loss (l1, mse) over the hole only: the masked loss divided by the hole's fraction."""
    return loss(fake * mask, real * mask) / mask.mean().clamp(min=1e-8)


@MODELS.register("context_encoder")
class ContextEncoder(GANModel):
    """Inpainting: G(masked image, mask) = fake; the reconstruction loss (``pixel``: l2 in the paper, weight 0.999)
    counts the hole only, and D (``adv``, weight 0.001) judges the composite (known pixels + G's hole) against the
    real image. The batch needs ``mask`` (1, H, W) from ``data.mask`` (i2i/data/masks.py). Order: G, then D on the
    same (detached) fill, as in the reference implementations."""

    nets_required = ("g", "d")
    losses_required = ("adv", "pixel")
    optim_groups = {"g": ("g",), "d": ("d",)}
    export = ("g",)
    order = ("g", "d")
    scorer = "i2i.evaluation.inpaint_scoring:InpaintScorer"
    try_command = "i2i inpaint {run} --input {input} --masks center --output {run}/filled"  # end-of-run hint

    def __init__(self, nets: dict, losses: dict):
        super().__init__(nets, losses)
        self.g_input = self.input_builder({})

    @classmethod
    def input_builder(cls, config: dict) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """(image, mask) -> G's input, from the recipe's ``model:`` section; `i2i inpaint` uses it from an export."""
        return masked_input

    def fill(self, image: torch.Tensor, mask: torch.Tensor, g: torch.nn.Module | None = None) -> torch.Tensor:
        """G's raw output for images with holes (the composite is the caller's)."""
        return (self.nets["g"] if g is None else g)(self.g_input(image, mask))

    def generate(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        real, mask = image_of(batch), batch["mask"]
        fake = self.fill(real, mask)
        return {"fake": fake, "filled": composite(fake, real, mask)}

    def g_step(self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor],
               ctx: StepContext) -> dict[str, torch.Tensor]:
        real = image_of(batch)
        with ctx.frozen("d") as (d,):
            adv, _ = self.losses["adv"].g_loss(d, out["filled"], real=real)
        pixel = hole_loss(self.losses["pixel"], out["fake"], real, batch["mask"])
        ctx.update("g", adv + pixel)
        return {"g/adv": adv, "g/pixel": pixel}

    def d_step(self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor],
               ctx: StepContext) -> dict[str, torch.Tensor]:
        loss, _, _ = self.losses["adv"].d_loss(self.nets["d"], image_of(batch), out["filled"])
        ctx.update("d", loss)
        return {"d/adv": loss}

    @torch.no_grad()
    def visuals(self, batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """Rows: the input with its hole (shown white), the filled image, the real image."""
        real, mask = image_of(batch), batch["mask"]
        shown = real * (1 - mask) + mask
        return [shown, composite(self.fill(real, mask), real, mask), real]

    @torch.no_grad()
    def health_samples(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        real, mask = image_of(batch), batch["mask"]
        return composite(self.fill(real, mask), real, mask), real

    def export_info(self, dataset: Any) -> dict:
        return {"task": INPAINT_TASK}

    @classmethod
    def export_contract(cls) -> dict[str, dict[str, str]]:
        return {"g": {"in_channels": "`i2i inpaint` builds G's input (image, mask ...) of that many channels",
                      "out_channels": "`i2i inpaint` composites G's output into the image"}}

    @classmethod
    def validate(cls, recipe: dict, data_channels: dict[str, int], *, file: str) -> None:
        if recipe["data"].get("mask") is None:
            raise RecipeError(f"model '{recipe['model']['type']}' fills holes: the data needs masks, e.g. data.mask: "
                              "{type: blocks} (random blocks), {type: center, size: 0.5}, {type: strokes} or {type: "
                              "files, folder: DIR}", file=file, key="data.mask")
        c = data_channels.get("real", data_channels.get("real_a"))
        if c is None:
            raise RecipeError(f"model '{recipe['model']['type']}' reads single images (real_a or real); data set "
                              f"gives {', '.join(data_channels)}", file=file, key="data.type",
                              value=recipe["data"].get("type"), choices=("labeled", "single_folder"))
        g_in, parts = cls.input_channels(c, recipe["model"])
        cls.check_channels(recipe, "g", "in_channels", g_in, f"G reads {parts}, {c} channel(s) per image", file=file)
        cls.check_channels(recipe, "g", "out_channels", c, f"the images have {c} channel(s)", file=file)
        cls.check_channels(recipe, "d", "in_channels", c, f"D judges images of {c} channel(s)", file=file)
        size = recipe["data"].get("size")
        cls.check_size(recipe, "g", size, file=file)
        cls.check_size(recipe, "d", size, file=file)

    @classmethod
    def input_channels(cls, image_channels: int, config: dict) -> tuple[int, str]:
        """G's input channels for images of ``image_channels`` (``config``: the recipe's ``model:``), and what they
        are."""
        return image_channels + 1, "the image and the mask (1 channel)"
