"""SGAN, semi-supervised GAN (Odena 2016, arXiv:1606.01583; Salimans et al. 2016, arXiv:1606.03498): D is a
classifier with K + 1 outputs (K classes + generated), trained with few labels; the product is the classifier."""
from __future__ import annotations

from typing import Any

import torch

from ..errors import RecipeError
from ..registry import MODELS, NETS
from .base import StepContext
from .gan import GAN, LatentGAN, _unwrap


@MODELS.register("sgan")
class SGAN(LatentGAN):
    """Semi-supervised GAN: unconditional G(z); D classifies into the K real classes and "generated".

    D step: the adversarial loss (``losses.adv``, any mode and stabiliser) on the GAN logit of the K+1-class output
    (``losses.cls.adversarial_logits``: logsumexp of the class logits minus the fake logit) for the unlabeled real
    batch and the generated one, plus the supervised cross-entropy (``losses.cls``) on labeled images. With
    ``data.labeled_fraction`` or ``data.labels_per_class`` the labeled images come from the subset
    (``real_labeled``/``y_labeled``, one per item), else every real image's label is used.
    G step: the adversarial loss through the frozen D (skipped at ``losses.adv.weight: 0``) plus, with
    ``losses.fm``, feature matching on D's ``features()`` (Salimans et al.'s generator for semi-supervised
    learning). Exports G and D (``meta.classifier_net: d``): `i2i classify` and `i2i eval` use D.
    """

    losses_required = ("adv", "cls")
    losses_optional = ("fm",)
    export = ("g", "d")
    needs_classes = False
    scorer = "i2i.evaluation.classification_scoring:AccuracyScorer"
    classifier_net = "d"  # the product: `i2i classify`, `i2i eval` and the scorer read it
    visuals = GAN.visuals

    def d_step(self, batch: dict[str, torch.Tensor], out: dict[str, Any],
               ctx: StepContext) -> dict[str, torch.Tensor]:
        d, cls = self.nets["d"], self.losses["cls"]
        adv, real_logits, _ = self.losses["adv"].d_loss(d, batch["real"], out["fake"],
                                                        logits=cls.adversarial_logits)
        if "real_labeled" in batch:  # a labeled subset: its images come paired with each item
            logits, labels = d(batch["real_labeled"]), batch["y_labeled"]
        else:
            logits, labels = real_logits, batch["y"]
        sup = cls(logits, labels)
        ctx.update("d", adv + sup)
        k = logits.shape[1] - (cls.fake_logit == "learned")
        accuracy = (logits[:, :k].argmax(1) == labels).float().mean()
        return {"d/adv": adv, "d/cls": sup, "d/labeled_acc": accuracy}

    def g_step(self, batch: dict[str, torch.Tensor], out: dict[str, Any],
               ctx: StepContext) -> dict[str, torch.Tensor]:
        adv_loss, logs = self.losses["adv"], {}
        loss = out["fake"].new_zeros(())
        with ctx.frozen("d") as (d,):
            if adv_loss.weight:
                logs["g/adv"], _ = adv_loss.g_loss(d, out["fake"], real=batch["real"],
                                                   logits=self.losses["cls"].adversarial_logits)
                loss = loss + logs["g/adv"]
            if "fm" in self.losses:
                with torch.no_grad():
                    real_features = d.features(batch["real"])
                logs["g/fm"] = self.losses["fm"](real_features, d.features(out["fake"]))
                loss = loss + logs["g/fm"]
        ctx.update("g", loss)
        return logs

    def export_info(self, dataset: Any) -> dict:
        names = list(getattr(dataset, "class_names", []))
        return {"kind": "classifier", "task": "classification", "classifier_net": self.classifier_net,
                "class_names": names, "fake_logit": self.losses["cls"].fake_logit}

    @classmethod
    def export_contract(cls) -> dict[str, dict[str, str]]:
        return {**super().export_contract(),
                "d": {"in_channels": "`i2i classify` and `i2i eval` feed it images of that many channels",
                      "size": "`i2i classify` and `i2i eval` resize images to that size"}}

    @classmethod
    def validate(cls, recipe: dict, data_channels: dict[str, int], *, file: str) -> None:
        super().validate(recipe, data_channels, file=file)
        if cls.net_arg(recipe, "g", "num_classes"):
            raise RecipeError("SGAN's generator is unconditional (D does the classifying); leave num_classes out",
                              file=file, key="nets.g.num_classes", value=cls.net_arg(recipe, "g", "num_classes"))
        if "fm" in (recipe.get("losses") or {}) and not hasattr(NETS.get(recipe["nets"]["d"]["type"]), "features"):
            raise RecipeError("feature matching reads D's features(); this D has none (image_classifier, "
                              "dcgan_discriminator and aux_discriminator have)", file=file, key="losses.fm")
        adv = recipe["losses"]["adv"]
        if not adv.get("weight", 1.0) and "fm" not in recipe["losses"]:
            raise RecipeError("G would get no loss: with losses.adv.weight 0 add losses.fm (feature matching)",
                              file=file, key="losses.adv.weight", value=adv.get("weight"))

    def check_data(self, dataset: Any, *, file: str) -> None:
        """D's outputs: the data set's K classes (+ 1 for a learned fake logit)."""
        k = getattr(dataset, "num_classes", None)
        want = self.losses["cls"].outputs(k) if k else None
        got = getattr(_unwrap(self.nets["d"]), "num_classes", None)
        if want is not None and got != want:
            how = "K + 1 (losses.cls.fake_logit: learned)" if want != k else "K (losses.cls.fake_logit: fixed)"
            raise RecipeError(f"D needs {want} outputs, {how}, for the data set's {k} classes", file=file,
                              key="nets.d.num_classes", value=got)
