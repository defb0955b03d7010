"""GAN (Goodfellow et al. 2014, arXiv:1406.2661): G(z) against D(x), and the base of the z-driven GANs."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..codes import class_grid, codes_for_rows, generate_images, sample_latent
from ..errors import RecipeError
from ..registry import MODELS
from .base import GANModel, StepContext


def _adv(out: dict) -> torch.Tensor:
    """The adversarial head of a D with several heads."""
    return out["adv"]


def _unwrap(net: nn.Module) -> nn.Module:
    return getattr(net, "module", net)


class LatentGAN(GANModel):
    """Shared parts of the GANs whose G draws from noise z (and labels or codes): latent sampling, the class-grid
    visual, export info and recipe checks. CGAN, ACGAN and InfoGAN subclass it; so does the unconditional GAN."""

    nets_required = ("g", "d")
    optim_groups = {"g": ("g",), "d": ("d",)}
    export = ("g",)
    order = ("d", "g")  # PyTorch-GAN's conditional GANs update G first; D first is the DCGAN/pix2pix order
    scorer = "i2i.evaluation.conditional_scoring:ClassifierScorer"

    def generate(self, batch: dict[str, torch.Tensor]) -> dict[str, Any]:
        g = self.nets["g"]
        codes = sample_latent(_unwrap(g), batch["real"].shape[0], batch["real"].device)
        return {"fake": generate_images(g, codes), "codes": codes}

    @torch.no_grad()
    def visuals(self, batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """One row per class (or categorical code value), one column per fixed noise vector."""
        g = self.nets["g"]
        rows = g.num_classes or (g.cat_codes[0] if g.cat_codes else 1)
        z = torch.randn(8, g.z_dim, generator=torch.Generator().manual_seed(0)).to(batch["real"].device)
        return class_grid(g, torch.arange(rows, device=z.device), z)

    @torch.no_grad()
    def health_samples(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Fixed draws of z (and codes); the requested labels are the real batch's, so both sides match."""
        g, real = self.nets["g"], batch["real"]
        codes = sample_latent(_unwrap(g), real.shape[0], real.device, y=batch.get("y") if g.num_classes else None,
                              generator=torch.Generator().manual_seed(1))
        return generate_images(g, codes), real

    def export_info(self, dataset: Any) -> dict:
        return {"kind": "conditional", "class_names": list(getattr(dataset, "class_names", []))}

    @classmethod
    def export_contract(cls) -> dict[str, dict[str, str]]:
        return {"g": {"z_dim": "training, `i2i sample` and `i2i eval` draw noise of that size",
                      "out_channels": "`i2i eval` compares its samples with real images of that many channels",
                      "size": "`i2i eval` compares its samples with real images of that size"}}

    @classmethod
    def validate(cls, recipe: dict, data_channels: dict[str, int], *, file: str) -> None:
        c = data_channels["real"]
        cls.check_channels(recipe, "g", "out_channels", c, f"data gives images with {c} channel(s)", file=file)
        cls.check_channels(recipe, "d", "in_channels", c, f"data gives images with {c} channel(s)", file=file)
        size = recipe["data"].get("size", 32)
        for net in ("g", "d"):
            got = cls.net_arg(recipe, net, "size")
            if got is not None and got != size:
                raise RecipeError(f"must equal data.size ({size})", file=file, key=f"nets.{net}.size", value=got)
        k_g, k_d = cls.net_arg(recipe, "g", "num_classes"), cls.net_arg(recipe, "d", "num_classes")
        for net, k in (("g", k_g), ("d", k_d)):
            if cls.needs_classes and not k:
                raise RecipeError(f"{recipe['model']['type']} needs a class-conditioned {net}: set num_classes",
                                  file=file, key=f"nets.{net}.num_classes", value=k)
        if cls.needs_classes and k_g != k_d:
            raise RecipeError(f"must equal nets.g.num_classes ({k_g})", file=file, key="nets.d.num_classes", value=k_d)
        for key in ("labeled_fraction", "labels_per_class"):
            if cls.needs_classes and recipe["data"].get(key) is not None:
                raise RecipeError(f"{recipe['model']['type']} trains on every image's label; a labeled subset is for "
                                  "semi-supervised models (sgan)", file=file, key=f"data.{key}",
                                  value=recipe["data"][key])

    needs_classes = True

    def check_data(self, dataset: Any, *, file: str) -> None:
        """After the data set is built: its class count must match the nets'."""
        k = _unwrap(self.nets["g"]).num_classes
        if k and getattr(dataset, "num_classes", k) != k:
            raise RecipeError(f"the data set has {dataset.num_classes} classes ({', '.join(dataset.class_names[:12])})",
                              file=file, key="nets.g.num_classes", value=k)


@MODELS.register("gan")
class GAN(LatentGAN):
    """Unconditional GAN: G(z) against D(x). The adversarial loss's ``mode`` and stabilisers make it GAN (MLP),
    DCGAN, LSGAN, WGAN (clipping, n_critic 5, RMSprop), WGAN-GP, WGAN-div, hinge or a relativistic GAN."""

    losses_required = ("adv",)
    needs_classes = False

    def d_step(self, batch: dict[str, torch.Tensor], out: dict[str, Any],
               ctx: StepContext) -> dict[str, torch.Tensor]:
        loss, _, _ = self.losses["adv"].d_loss(self.nets["d"], batch["real"], out["fake"])
        ctx.update("d", loss)
        return {"d/adv": loss}

    def g_step(self, batch: dict[str, torch.Tensor], out: dict[str, Any],
               ctx: StepContext) -> dict[str, torch.Tensor]:
        with ctx.frozen("d") as (d,):
            adv, _ = self.losses["adv"].g_loss(d, out["fake"], real=batch["real"])
        ctx.update("g", adv)
        return {"g/adv": adv}

    @torch.no_grad()
    def visuals(self, batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """An 8 x 8 grid of samples from fixed noise (rows of 8)."""
        g = self.nets["g"]
        z = torch.randn(64, g.z_dim, generator=torch.Generator().manual_seed(0)).to(batch["real"].device)
        images = generate_images(g, codes_for_rows(g, torch.zeros(64, dtype=torch.long, device=z.device), z))
        return list(images.view(8, 8, *images.shape[1:]).unbind(1))

    @classmethod
    def validate(cls, recipe: dict, data_channels: dict[str, int], *, file: str) -> None:
        super().validate(recipe, data_channels, file=file)
        for net in ("g", "d"):
            k = cls.net_arg(recipe, net, "num_classes")
            if k:
                raise RecipeError("the unconditional 'gan' model ignores labels; use model cgan or acgan for a "
                                  "class-conditioned net", file=file, key=f"nets.{net}.num_classes", value=k)
