"""CCGAN, context-conditional GAN (Denton et al. 2016, arXiv:1611.06430): G fills a hole from the context and a
low-resolution copy of the whole image; D judges the filled image and may also classify (semi-supervised)."""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import RecipeError
from ..registry import MODELS, config_value
from .base import StepContext
from .context_encoder import ContextEncoder, hole_loss, image_of, masked_input


def lowres_copy(image: torch.Tensor, factor: int) -> torch.Tensor:
    """The whole image area-averaged by ``factor`` and brought back to full size (bilinear): what CC-GAN^2 gives G."""
    return F.interpolate(F.avg_pool2d(image, factor), size=image.shape[-2:], mode="bilinear", align_corners=False)


def ccgan_input(image: torch.Tensor, mask: torch.Tensor, factor: int | None) -> torch.Tensor:
    """G's input: the image with its hole at 0, the mask, and (``factor``) the low-resolution copy of the image."""
    parts = masked_input(image, mask)
    return torch.cat([parts, lowres_copy(image, factor)], 1) if factor else parts


@MODELS.register("ccgan")
class CCGAN(ContextEncoder):
    """Context-conditional GAN. G(masked image, mask, low-res image) fills the hole; D sees the composite (known
    pixels + G's hole) against real images. Unlike the Context Encoder, G learns from D alone; ``pixel`` (a hole
    loss) is optional. ``lowres_factor``: the low-resolution copy is the image area-averaged by this factor (4:
    128 -> 32 px, as PyTorch-GAN's ccgan); null gives the paper's CC-GAN without it. With ``losses.classify`` (the
    K+1-class ``semi_supervised`` loss) on labeled data, D's outputs are class logits (or a dict with ``class``):
    the adversarial logit is logsumexp(class logits) - fake logit, and labeled real images (label >= 0; the
    data set's ``real_labeled``/``y_labeled`` partner when it gives one) train the K classes."""

    losses_required = ("adv",)
    losses_optional = ("pixel", "classify")

    def __init__(self, nets: dict, losses: dict, lowres_factor: int | None = 4):
        super().__init__(nets, losses)
        self.g_input = self.input_builder({"lowres_factor": lowres_factor})

    @classmethod
    def input_builder(cls, config: dict) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        return functools.partial(ccgan_input, factor=config_value(cls, config, "lowres_factor"))

    def _adv(self, out: Any) -> torch.Tensor:
        """The adversarial logit of D's output: from a K+1-class D's logits when D classifies."""
        if "classify" in self.losses:
            return self.losses["classify"].adversarial_logits(out["class"] if isinstance(out, dict) else out)
        return out["adv"] if isinstance(out, dict) else out

    def g_step(self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor],
               ctx: StepContext) -> dict[str, torch.Tensor]:
        real = image_of(batch)
        with ctx.frozen("d") as (d,):
            adv, _ = self.losses["adv"].g_loss(d, out["filled"], real=real, logits=self._adv)
        logs, total = {"g/adv": adv}, adv
        if "pixel" in self.losses:
            logs["g/pixel"] = hole_loss(self.losses["pixel"], out["fake"], real, batch["mask"])
            total = total + logs["g/pixel"]
        ctx.update("g", total)
        return logs

    def d_step(self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor],
               ctx: StepContext) -> dict[str, torch.Tensor]:
        d = self.nets["d"]
        loss, real_out, _ = self.losses["adv"].d_loss(d, image_of(batch), out["filled"], logits=self._adv)
        logs = {"d/adv": loss}
        if "classify" in self.losses:
            if "real_labeled" in batch:  # a labeled partner per item (few labels): every batch trains the classes
                real_out, labels = d(batch["real_labeled"]), batch["y_labeled"]
            else:
                labels = batch["y"]
            logits = real_out["class"] if isinstance(real_out, dict) else real_out
            logs["d/classify"] = self.losses["classify"](logits, labels)
            loss = loss + logs["d/classify"]
        ctx.update("d", loss)
        return logs

    def check_data(self, dataset: Any, *, file: str) -> None:
        if "classify" in self.losses and not hasattr(dataset, "num_classes"):
            raise RecipeError("D classifies real images: losses.classify needs labeled data (data.type: labeled); "
                              "remove losses.classify to train on unlabeled images", file=file, key="losses.classify")

    @classmethod
    def validate(cls, recipe: dict, data_channels: dict[str, int], *, file: str) -> None:
        factor = config_value(cls, recipe["model"], "lowres_factor")
        if factor is not None and (not isinstance(factor, int) or isinstance(factor, bool) or factor < 1):
            raise RecipeError("must be a positive integer (the low-resolution copy is the image / factor) or null "
                              "(no low-resolution copy)", file=file, key="model.lowres_factor", value=factor)
        size = recipe["data"].get("size")
        if factor and isinstance(size, int) and size % factor:
            raise RecipeError(f"the crop size must be divisible by model.lowres_factor ({factor})", file=file,
                              key="data.size", value=size)
        super().validate(recipe, data_channels, file=file)

    @classmethod
    def input_channels(cls, image_channels: int, config: dict) -> tuple[int, str]:
        if not config_value(cls, config, "lowres_factor"):
            return super().input_channels(image_channels, config)
        return 2 * image_channels + 1, "the image, the mask (1 channel) and the image's low-resolution copy"
