"""Super-resolution (Wang et al. 2018, ESRGAN, arXiv:1809.00219), in its two stages.

- ``sr_pixel``: the PSNR-oriented stage 1. G alone (no discriminator, no D optimizer group), trained with a pixel
  loss (L1) and optionally a perceptual loss.
- ``esrgan``: stage 2. The same G, usually started from a stage-1 export (``model.init_from: {g: ...}``), and a
  discriminator. G minimises pixel + perceptual + relativistic-average GAN loss (RaGAN: G's loss also needs D on
  the real HR image, detached); D minimises the RaGAN loss on real and detached SR images. G updates first, then
  D on the same SR batch, as in the reference implementations.

Batches come from a super-resolution data set (``superres_folder``): ``real_a`` is the LR image, ``real_b`` the
HR image, both in [-1, 1]. Two registered models rather than one with optional parts: the trainer builds nets,
optimizer groups and the update order from the model's declared names, so each stage's recipe is checked
strictly (a stray ``nets.d`` in stage 1, or a missing ``losses.adv`` in stage 2, is an error, not a silent mode).
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ..errors import RecipeError
from ..recipe import MAX_BATCH_BYTES
from ..registry import DATASETS, MODELS, config_value, net_size_rules
from .base import GANModel, StepContext

SR_TASK = "super_resolution"  # export meta "task": `i2i eval` scores such exports by PSNR/SSIM


@MODELS.register("sr_pixel")
class SRPixel(GANModel):
    """Super-resolution by pixel (and optional perceptual) loss alone: ESRGAN's PSNR-oriented stage 1."""

    nets_required = ("g",)
    losses_required = ("pixel",)
    losses_optional = ("perceptual",)
    optim_groups = {"g": ("g",)}
    export = ("g",)
    order = ("g",)
    critic_groups = ()
    directions = {"AtoB": "g"}
    scorer = "i2i.evaluation.sr_scoring:SRScorer"
    task = SR_TASK

    def generate(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"fake_b": self.nets["g"](batch["real_a"])}

    def content_losses(self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Pixel loss, and the perceptual loss when the recipe has one (both weighted by their own weight)."""
        fake, hr = out["fake_b"], batch["real_b"]
        logs = {"g/pixel": self.losses["pixel"](fake, hr)}
        if "perceptual" in self.losses:
            logs["g/perceptual"] = self.losses["perceptual"](fake, hr)
        return logs

    def g_step(self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor],
               ctx: StepContext) -> dict[str, torch.Tensor]:
        logs = self.content_losses(batch, out)
        ctx.update("g", sum(logs.values()))
        return logs

    @torch.no_grad()
    def visuals(self, batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """Columns: LR (nearest upscaling, the input's own pixels), bicubic upscaling, SR output, HR."""
        lr, hr = batch["real_a"], batch["real_b"]
        size = hr.shape[-2:]
        return [F.interpolate(lr, size=size, mode="nearest"),
                F.interpolate(lr, size=size, mode="bicubic", align_corners=False).clamp(-1, 1),
                self.nets["g"](lr).clamp(-1, 1), hr]

    @torch.no_grad()
    def health_samples(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.nets["g"](batch["real_a"]), batch["real_b"]

    def export_info(self, dataset: Any) -> dict:
        g = getattr(self.nets["g"], "module", self.nets["g"])
        return {"task": SR_TASK, "scale": int(getattr(g, "scale", getattr(dataset, "scale", 1)))}

    # ------------------------------------------------------------------ recipe checks
    @classmethod
    def validate(cls, recipe: dict, data_channels: dict[str, int], *, file: str) -> None:
        data = recipe["data"]
        data_cls = DATASETS.get(data["type"])
        scale = config_value(data_cls, data, "scale")
        if scale is None or "real_a" not in data_channels or "real_b" not in data_channels:
            raise RecipeError(f"model '{recipe['model']['type']}' trains on (LR, HR) pairs with a scale: use a "
                              "super-resolution data set such as superres_folder", file=file, key="data.type",
                              value=data["type"])
        g_scale = cls.net_arg(recipe, "g", "scale")
        if g_scale is None:
            raise RecipeError("the generator must be a super-resolution net with a scale argument (rrdb_net)",
                              file=file, key="nets.g.type", value=recipe["nets"]["g"]["type"])
        if g_scale != scale:
            raise RecipeError(f"the generator upscales x{g_scale} but the data pairs are x{scale} (data.scale); "
                              "make them equal", file=file, key="nets.g.scale", value=g_scale)
        a, b = data_channels["real_a"], data_channels["real_b"]
        cls.check_channels(recipe, "g", "in_channels", a, f"the LR images (real_a) have {a} channel(s)", file=file)
        cls.check_channels(recipe, "g", "out_channels", b, f"the HR images (real_b) have {b} channel(s)", file=file)
        if "perceptual" in (recipe.get("losses") or {}) and b not in (1, 3):
            raise RecipeError(f"the perceptual loss compares VGG19 features of 1- or 3-channel images; the HR "
                              f"images have {b} channels", file=file, key="losses.perceptual", value=b)
        crop, gt = config_value(data_cls, data, "crop"), config_value(data_cls, data, "gt_size")
        if crop is not False:
            cls.check_batch_memory(data, gt, scale, a, b, file=file)
        if crop is False:
            batch = data.get("batch_size", 1)
            if batch != 1:
                raise RecipeError("whole images (crop: false) differ in size and cannot be batched; train on "
                                  "crops (crop: true with gt_size) or use batch_size 1", file=file, key="data.crop",
                                  value=crop)
            return
        if not isinstance(gt, int) or not isinstance(scale, int) or scale < 1 or gt % scale:
            return  # the data set's own check reports it
        lr_side = gt // scale
        multiple, minimum = net_size_rules(recipe["nets"]["g"])
        if lr_side % multiple or lr_side < minimum:
            need = max(minimum, multiple)
            raise RecipeError(f"the LR crop (gt_size / scale = {lr_side} px) must be a multiple of {multiple} and at "
                              f"least {need} px for nets.g ({recipe['nets']['g']['type']}, scale {g_scale})",
                              file=file, key="data.gt_size", value=gt)
        cls.check_discriminator(recipe, b, gt, file=file)

    @staticmethod
    def check_batch_memory(data: dict, gt: Any, scale: Any, lr_channels: int, hr_channels: int, *, file: str) -> None:
        """Refuse crops and batches whose float32 images alone cannot fit in memory (as build does for ``size``)."""
        batch = data.get("batch_size", 1)
        if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (gt, scale, batch)):
            return  # the data set's and the loader's own checks report these
        one = 4 * (gt * gt * hr_channels + (gt // scale) ** 2 * lr_channels)
        if one * 8 > MAX_BATCH_BYTES:
            raise RecipeError(f"one {gt} x {gt} px HR crop and its LR crop take {one / 2**30:,.1f} GiB as float32, "
                              "and the nets' activations need many times more", file=file, key="data.gt_size",
                              value=gt)
        if batch * one > MAX_BATCH_BYTES:
            raise RecipeError(f"one batch ({batch} HR crops of {gt} x {gt} px and their LR crops) takes "
                              f"{batch * one / 2**30:,.1f} GiB as float32 (limit {MAX_BATCH_BYTES / 2**30:.1f} GiB), "
                              "and the nets' activations need many times more", file=file, key="data.batch_size",
                              value=batch)

    @classmethod
    def check_discriminator(cls, recipe: dict, channels: int, gt: int, *, file: str) -> None:
        """Stage 1 has no discriminator."""


@MODELS.register("esrgan")
class ESRGAN(SRPixel):
    """ESRGAN stage 2: pixel + perceptual + RaGAN for G (D frozen), RaGAN for D on real and detached SR images."""

    nets_required = ("g", "d")
    losses_required = ("pixel", "adv")
    losses_optional = ("perceptual",)
    optim_groups = {"g": ("g",), "d": ("d",)}
    order = ("g", "d")  # BasicSR's ESRGANModel: G's update first, then D's on the same (detached) SR batch
    critic_groups = ("d",)

    def g_step(self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor],
               ctx: StepContext) -> dict[str, torch.Tensor]:
        logs = self.content_losses(batch, out)
        with ctx.frozen("d") as (d,):
            # relativistic modes call D on the real HR images too (under no_grad): G is judged against them
            logs["g/adv"], _ = self.losses["adv"].g_loss(d, out["fake_b"], real=batch["real_b"])
        ctx.update("g", sum(logs.values()))
        return logs

    def d_step(self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor],
               ctx: StepContext) -> dict[str, torch.Tensor]:
        loss, _, _ = self.losses["adv"].d_loss(self.nets["d"], batch["real_b"], out["fake_b"])
        ctx.update("d", loss)
        return {"d/adv": loss}

    @classmethod
    def check_discriminator(cls, recipe: dict, channels: int, gt: int, *, file: str) -> None:
        cls.check_channels(recipe, "d", "in_channels", channels,
                           f"D judges HR-sized images of {channels} channel(s)", file=file)
        multiple, minimum = net_size_rules(recipe["nets"]["d"])
        if gt % multiple or gt < minimum:
            raise RecipeError(f"nets.d ({recipe['nets']['d']['type']}) needs inputs that are a multiple of "
                              f"{multiple} and at least {minimum} px, and it judges the HR crop (gt_size); change "
                              "gt_size or the discriminator", file=file, key="data.gt_size", value=gt)
