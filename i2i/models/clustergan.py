"""ClusterGAN (Mukherjee et al. 2018, arXiv:1809.03627): z = (z_n ~ N(0, sigma^2 I), one-hot z_c); an encoder E
trained with G maps images back to (z_n, z_c logits), so E's cluster head clusters real data."""
from __future__ import annotations

from typing import Any

import torch

from ..errors import RecipeError
from ..registry import MODELS
from .base import StepContext
from .gan import GAN, LatentGAN, _unwrap


@MODELS.register("clustergan")
class ClusterGAN(GAN):
    """ClusterGAN: G(z_n, z_c) against D; G and E minimise adv + beta_n |z_n - E_n(G(z))|^2 + beta_c CE(z_c, E_c(G(z))).

    sigma is G's ``z_std`` (every sampler draws z ~ N(0, I) and G scales it); z_c is G's one categorical code
    (``cat_codes: [K]``); beta_n and beta_c are the weights of ``losses.latent`` and ``losses.cluster``.
    """

    nets_required = ("g", "d", "e")
    losses_required = ("adv", "latent", "cluster")
    optim_groups = {"g": ("g", "e"), "d": ("d",)}  # one optimizer over G and E, as the reference
    export = ("g", "e")
    visuals = LatentGAN.visuals  # one row per cluster, the same z_n down each column

    def g_step(self, batch: dict[str, torch.Tensor], out: dict[str, Any],
               ctx: StepContext) -> dict[str, torch.Tensor]:
        with ctx.frozen("d") as (d,):
            adv, _ = self.losses["adv"].g_loss(d, out["fake"], real=batch["real"])
        codes = out["codes"]
        z_n, logits = self.nets["e"](out["fake"])
        latent = self.losses["latent"](z_n, _unwrap(self.nets["g"]).z_std * codes["z"])  # E recovers sigma * z
        cluster = self.losses["cluster"](logits, codes["cat_idx"][0])
        ctx.update("g", adv + latent + cluster)
        return {"g/adv": adv, "g/latent": latent, "g/cluster": cluster}

    @torch.no_grad()
    def cluster(self, images: torch.Tensor) -> torch.Tensor:
        """E's cluster logits (B, K) for images in [-1, 1] (E in eval mode): the scorer's cluster_accuracy."""
        e = _unwrap(self.nets["e"])
        mode = e.training
        e.eval()
        logits = torch.cat([e(chunk)[1].float() for chunk in images.split(256)])
        e.train(mode)
        return logits

    def export_info(self, dataset: Any) -> dict:
        return {**super().export_info(dataset), "clusters": _unwrap(self.nets["e"]).clusters}

    @classmethod
    def export_contract(cls) -> dict[str, dict[str, str]]:
        return {**super().export_contract(),
                "e": {"in_channels": "`i2i cluster` feeds it images of that many channels",
                      "size": "`i2i cluster` resizes images to that size",
                      "clusters": "`i2i cluster` writes one grid per cluster"}}

    @classmethod
    def validate(cls, recipe: dict, data_channels: dict[str, int], *, file: str) -> None:
        super().validate(recipe, data_channels, file=file)
        cat = cls.net_arg(recipe, "g", "cat_codes") or []
        if len(cat) != 1 or cls.net_arg(recipe, "g", "cont_codes"):
            raise RecipeError("ClusterGAN's G takes one categorical code z_c (e.g. cat_codes: [10]) and no "
                              "continuous codes", file=file, key="nets.g.cat_codes", value=cat)
        if cls.net_arg(recipe, "e", "clusters") is None:
            raise RecipeError("ClusterGAN needs an encoder to (z_n, cluster logits): use type: cluster_encoder",
                              file=file, key="nets.e.type", value=recipe["nets"]["e"]["type"])
        c, size = data_channels["real"], recipe["data"].get("size", 32)
        for arg, want, why in (("clusters", cat[0], f"must equal nets.g.cat_codes[0] ({cat[0]})"),
                               ("z_dim", cls.net_arg(recipe, "g", "z_dim"), "must equal nets.g.z_dim"),
                               ("in_channels", c, f"data gives images with {c} channel(s)"),
                               ("size", size, "must equal data.size")):
            got = cls.net_arg(recipe, "e", arg)
            if got != want:
                raise RecipeError(f"{why} ({want})" if arg in ("z_dim", "size") else why, file=file,
                                  key=f"nets.e.{arg}", value=got)
