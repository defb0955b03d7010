"""StarGAN (Choi et al. 2018, arXiv:1711.09020): one generator translates between many domains, told the target."""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ..errors import RecipeError
from ..registry import MODELS
from .base import GANModel, StepContext
from .gan import _adv, _unwrap


@MODELS.register("stargan")
class StarGAN(GANModel):
    """G(x, c) with the target label c tiled over the image; D has a patch critic head and a domain head.

    Each step the target labels are the batch's own labels shuffled (the reference's ``randperm``). D minimises its
    adversarial loss (WGAN-GP in the paper) plus the domain loss on real images with their labels; G minimises its
    adversarial loss, the domain loss on G(x, c_trg) against c_trg, and the reconstruction L1 of
    G(G(x, c_trg), c_org) against x. Domain loss: cross-entropy for domain folders, binary cross-entropy per
    attribute for an attribute table (``losses.cls`` is ``aux_classification``, which picks by the target's kind).
    The export carries the domain names, and D, whose domain head reads an input's attributes for ``--set``.
    """

    nets_required = ("g", "d")
    losses_required = ("adv", "cls", "rec")
    optim_groups = {"g": ("g",), "d": ("d",)}
    export = ("g", "d")
    order = ("d", "g")
    directions = {"translate": "g"}
    scorer = "i2i.evaluation.stargan_scoring:StarGANScorer"

    def __init__(self, nets: dict, losses: dict):
        super().__init__(nets, losses)
        self.domains: list[str] = []
        self.multi_label = False

    def labels(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The batch's labels (B, K) as floats: an attribute/one-hot ``label``, or one-hot of class indices ``y``."""
        if "label" in batch:
            return batch["label"].float()
        return F.one_hot(batch["y"], _unwrap(self.nets["g"]).label_channels).float()

    def target(self, c: torch.Tensor) -> torch.Tensor:
        """What the domain loss compares with: attribute vectors, or domain indices (cross-entropy)."""
        return c if self.multi_label else c.argmax(1)

    def generate(self, batch: dict[str, torch.Tensor]) -> dict[str, Any]:
        c_org = self.labels(batch)
        c_trg = c_org[torch.randperm(len(c_org)).to(c_org.device)]
        return {"fake": self.nets["g"](batch["real"], c_trg), "c_org": c_org, "c_trg": c_trg}

    def d_step(self, batch: dict[str, torch.Tensor], out: dict[str, Any], ctx: StepContext) -> dict[str, torch.Tensor]:
        adv, real_out, _ = self.losses["adv"].d_loss(self.nets["d"], batch["real"], out["fake"], logits=_adv)
        cls = self.losses["cls"](real_out["class"], self.target(out["c_org"]))
        ctx.update("d", adv + cls)
        return {"d/adv": adv, "d/cls": cls, "d/cls_acc": self.accuracy(real_out["class"], out["c_org"])}

    def g_step(self, batch: dict[str, torch.Tensor], out: dict[str, Any], ctx: StepContext) -> dict[str, torch.Tensor]:
        with ctx.frozen("d") as (d,):
            adv, fake_out = self.losses["adv"].g_loss(d, out["fake"], real=batch["real"], logits=_adv)
        cls = self.losses["cls"](fake_out["class"], self.target(out["c_trg"]))
        rec = self.losses["rec"](self.nets["g"](out["fake"], out["c_org"]), batch["real"])
        ctx.update("g", adv + cls + rec)
        return {"g/adv": adv, "g/cls": cls, "g/rec": rec, "g/cls_acc": self.accuracy(fake_out["class"], out["c_trg"])}

    def accuracy(self, logits: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        hit = (logits > 0).float() == c if self.multi_label else logits.argmax(1) == c.argmax(1)
        return hit.float().mean().detach()

    def edits(self, c_org: torch.Tensor) -> list[torch.Tensor]:
        """One target per domain (one-hot), or per attribute (that attribute flipped), as the paper's figures."""
        k = c_org.shape[1]
        if not self.multi_label:
            return [F.one_hot(torch.full_like(c_org[:, 0], i, dtype=torch.long), k).float() for i in range(k)]
        return [torch.where(torch.arange(k, device=c_org.device) == i, 1 - c_org, c_org) for i in range(k)]

    @torch.no_grad()
    def visuals(self, batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """Row 0: the inputs; then one row per target domain (or attribute flipped)."""
        g, real = self.nets["g"], batch["real"]
        return [real, *(g(real, c) for c in self.edits(self.labels(batch)))]

    @torch.no_grad()
    def health_samples(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.nets["g"](batch["real"], self.labels(batch).roll(1, 0)), batch["real"]

    def check_data(self, dataset: Any, *, file: str) -> None:
        names = getattr(dataset, "domain_names", None) or getattr(dataset, "class_names", None)
        if not names:
            raise RecipeError("stargan needs a data set of domains: type domains (a folder per domain, or an "
                              "attribute table) or labeled", file=file, key="data.type")
        for net, arg, got in (("g", "label_channels", _unwrap(self.nets["g"]).label_channels),
                              ("d", "num_classes", _unwrap(self.nets["d"]).num_classes)):
            if got != len(names):
                raise RecipeError(f"must equal the number of domains the data has ({len(names)}: "
                                  f"{', '.join(names)})", file=file, key=f"nets.{net}.{arg}", value=got)
        self.domains, self.multi_label = list(names), bool(getattr(dataset, "multi_label", False))

    def export_info(self, dataset: Any) -> dict:
        return {"task": "domain_translation", "domains": list(self.domains), "multi_label": self.multi_label}

    @classmethod
    def export_contract(cls) -> dict[str, dict[str, str]]:
        return {"g": {"in_channels": "`i2i translate` feeds it images of that many channels",
                      "label_channels": "`i2i translate --to/--set` gives it a target label of that size"},
                "d": {"num_classes": "`i2i translate --set` reads an input's attributes with its domain head"}}

    @classmethod
    def validate(cls, recipe: dict, data_channels: dict[str, int], *, file: str) -> None:
        c = data_channels["real"]
        for net, arg in (("g", "in_channels"), ("g", "out_channels"), ("d", "in_channels")):
            cls.check_channels(recipe, net, arg, c, f"data gives images with {c} channel(s)", file=file)
        k_g, k_d = cls.net_arg(recipe, "g", "label_channels"), cls.net_arg(recipe, "d", "num_classes")
        if k_g != k_d:
            raise RecipeError(f"must equal nets.g.label_channels ({k_g}): D classifies the domains G is told",
                              file=file, key="nets.d.num_classes", value=k_d)
        for net in cls.nets_required:
            cls.check_size(recipe, net, recipe["data"].get("size"), file=file)
