"""Label- and code-conditioned GANs from one DCGAN-style generator: CGAN, ACGAN and InfoGAN."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import RecipeError
from ..registry import MODELS
from .base import GANModel


def sample_latent(g, n: int, device, *, y: torch.Tensor | None = None, cat_idx: list | None = None,
                  cont: torch.Tensor | None = None, generator: torch.Generator | None = None) -> dict:
    """z ~ N(0, I); labels and categorical codes uniform; continuous codes U(-1, 1). Given values are kept."""
    def randn(*shape):
        return torch.randn(*shape, generator=generator).to(device)

    def randint(k):
        return torch.randint(0, k, (n,), generator=generator).to(device)

    z = randn(n, g.z_dim)
    if g.num_classes and y is None:
        y = randint(g.num_classes)
    cats = list(cat_idx) if cat_idx is not None else [randint(k) for k in g.cat_codes]
    if cont is None and g.cont_codes:
        cont = (torch.rand(n, g.cont_codes, generator=generator) * 2 - 1).to(device)
    parts = [F.one_hot(i, k).float() for i, k in zip(cats, g.cat_codes)]
    if g.cont_codes:
        parts.append(cont)
    c = torch.cat(parts, 1) if parts else None
    return {"z": z, "y": y, "c": c, "cat_idx": cats, "cont": cont}


def codes_for_rows(g, rows: torch.Tensor, z: torch.Tensor | None = None, *, cont: torch.Tensor | None = None,
                   fixed: bool = True, generator: torch.Generator | None = None) -> dict:
    """Codes asking for class ``rows[i]`` (InfoGAN: first categorical code value) with noise ``z[i]`` (drawn if None).

    The other categorical codes and the continuous codes are 0 when ``fixed`` (grids, traversals), else drawn
    (sampling data sets, scoring). Draws come from ``generator`` only, never from the global RNG.
    """
    n, device, labelled = len(rows), rows.device, bool(g.num_classes)

    def other(k: int) -> torch.Tensor:
        return torch.zeros_like(rows) if fixed else torch.randint(0, k, (n,), generator=generator).to(device)

    cats = None
    if g.cat_codes:
        cats = [other(g.cat_codes[0]) if labelled else rows] + [other(k) for k in g.cat_codes[1:]]
    if cont is None and fixed and g.cont_codes:
        cont = torch.zeros(n, g.cont_codes, device=device)
    codes = sample_latent(g, n, device, y=rows if labelled else None, cat_idx=cats, cont=cont,
                          generator=generator if generator is not None else torch.Generator().manual_seed(0))
    if z is not None:
        codes["z"] = z
    return codes


def generate_images(g, codes: dict) -> torch.Tensor:
    return g(codes["z"], codes["y"], codes["c"])


def class_grid(g, rows: torch.Tensor, z: torch.Tensor, cont: torch.Tensor | None = None) -> list[torch.Tensor]:
    """Grid columns: column j shows every requested row (class) with the same noise z[j]."""
    return [generate_images(g, codes_for_rows(g, rows, z[j:j + 1].expand(len(rows), -1), cont=cont))
            for j in range(len(z))]


class ConditionalGAN(GANModel):
    """Shared parts: latent sampling, the class-grid visual, export info and recipe checks."""

    nets_required = ("g", "d")
    optim_groups = {"g": ("g",), "d": ("d",)}
    export = ("g",)
    order = ("d", "g")  # PyTorch-GAN's conditional GANs update G first; D first is the DCGAN/pix2pix order
    scorer = "i2i.evaluation.scoring:ClassifierScorer"

    def generate(self, batch):
        g = self.nets["g"]
        codes = sample_latent(_unwrap(g), batch["real"].shape[0], batch["real"].device)
        return {"fake": generate_images(g, codes), "codes": codes}

    @torch.no_grad()
    def visuals(self, batch):
        """One row per class (or categorical code value), one column per fixed noise vector."""
        g = self.nets["g"]
        rows = g.num_classes or (g.cat_codes[0] if g.cat_codes else 1)
        z = torch.randn(8, g.z_dim, generator=torch.Generator().manual_seed(0)).to(batch["real"].device)
        return class_grid(g, torch.arange(rows, device=z.device), z)

    @torch.no_grad()
    def health_samples(self, batch):
        """Fixed draws of z (and codes); the requested labels are the real batch's, so both sides match."""
        g, real = self.nets["g"], batch["real"]
        codes = sample_latent(_unwrap(g), real.shape[0], real.device, y=batch.get("y") if g.num_classes else None,
                              generator=torch.Generator().manual_seed(1))
        return generate_images(g, codes), real

    def export_info(self, dataset) -> dict:
        return {"kind": "conditional", "class_names": list(getattr(dataset, "class_names", []))}

    @classmethod
    def validate(cls, recipe, data_channels, *, file):
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

    needs_classes = True

    def check_data(self, dataset, *, file: str) -> None:
        """After the data set is built: its class count must match the nets'."""
        k = _unwrap(self.nets["g"]).num_classes
        if k and getattr(dataset, "num_classes", k) != k:
            raise RecipeError(f"the data set has {dataset.num_classes} classes ({', '.join(dataset.class_names[:12])})",
                              file=file, key="nets.g.num_classes", value=k)


@MODELS.register("gan")
class GAN(ConditionalGAN):
    """Unconditional GAN: G(z) against D(x). The adversarial loss's ``mode`` and stabilisers make it GAN (MLP),
    DCGAN, LSGAN, WGAN (clipping, n_critic 5, RMSprop), WGAN-GP, WGAN-div, hinge or a relativistic GAN."""

    losses_required = ("adv",)
    needs_classes = False

    def d_step(self, batch, out, ctx):
        loss, _, _ = self.losses["adv"].d_loss(self.nets["d"], batch["real"], out["fake"])
        ctx.update("d", loss)
        return {"d/adv": loss}

    def g_step(self, batch, out, ctx):
        with ctx.frozen("d") as (d,):
            adv, _ = self.losses["adv"].g_loss(d, out["fake"], real=batch["real"])
        ctx.update("g", adv)
        return {"g/adv": adv}

    @torch.no_grad()
    def visuals(self, batch):
        """An 8 x 8 grid of samples from fixed noise (rows of 8)."""
        g = self.nets["g"]
        z = torch.randn(64, g.z_dim, generator=torch.Generator().manual_seed(0)).to(batch["real"].device)
        images = generate_images(g, codes_for_rows(g, torch.zeros(64, dtype=torch.long, device=z.device), z))
        return list(images.view(8, 8, *images.shape[1:]).unbind(1))

    @classmethod
    def validate(cls, recipe, data_channels, *, file):
        super().validate(recipe, data_channels, file=file)
        for net in ("g", "d"):
            k = cls.net_arg(recipe, net, "num_classes")
            if k:
                raise RecipeError("the unconditional 'gan' model ignores labels; use model cgan or acgan for a "
                                  "class-conditioned net", file=file, key=f"nets.{net}.num_classes", value=k)


def _adv(out: dict) -> torch.Tensor:
    """The adversarial head of a D with several heads."""
    return out["adv"]


def _unwrap(net):
    return getattr(net, "module", net)


@MODELS.register("cgan")
class CGAN(ConditionalGAN):
    """Conditional GAN (Mirza & Osindero 2014): G(z, y); D(x, y) judges image-label pairs."""

    losses_required = ("adv",)

    @classmethod
    def validate(cls, recipe, data_channels, *, file):
        super().validate(recipe, data_channels, file=file)
        if cls.net_arg(recipe, "d", "conditioning") in (None, "none"):
            raise RecipeError("CGAN's D must see the label", file=file, key="nets.d.conditioning",
                              value=cls.net_arg(recipe, "d", "conditioning"), choices=["concat", "projection"])

    def d_step(self, batch, out, ctx):
        loss, _, _ = self.losses["adv"].d_loss(self.nets["d"], batch["real"], out["fake"], real_args=(batch["y"],),
                                               fake_args=(out["codes"]["y"],))
        ctx.update("d", loss)
        return {"d/adv": loss}

    def g_step(self, batch, out, ctx):
        with ctx.frozen("d") as (d,):
            adv, _ = self.losses["adv"].g_loss(d, out["fake"], fake_args=(out["codes"]["y"],), real=batch["real"],
                                               real_args=(batch["y"],))
        ctx.update("g", adv)
        return {"g/adv": adv}


@MODELS.register("acgan")
class ACGAN(ConditionalGAN):
    """Auxiliary-classifier GAN (Odena et al. 2017): D also classifies real and generated images."""

    losses_required = ("adv", "aux")

    def d_step(self, batch, out, ctx):
        y_fake = out["codes"]["y"]
        adv, real, fake = self.losses["adv"].d_loss(self.nets["d"], batch["real"], out["fake"], logits=_adv)
        aux = 0.5 * (self.losses["aux"](real["class"], batch["y"]) + self.losses["aux"](fake["class"], y_fake))
        ctx.update("d", adv + aux)
        accuracy = (torch.cat([real["class"], fake["class"]]).argmax(1) == torch.cat([batch["y"], y_fake])).float()
        return {"d/adv": adv, "d/aux": aux, "d/class_acc": accuracy.mean()}

    def g_step(self, batch, out, ctx):
        with ctx.frozen("d") as (d,):
            adv, pred = self.losses["adv"].g_loss(d, out["fake"], real=batch["real"], logits=_adv)
        aux = self.losses["aux"](pred["class"], out["codes"]["y"])
        ctx.update("g", adv + aux)
        return {"g/adv": adv, "g/aux": aux}


@MODELS.register("infogan")
class InfoGAN(ConditionalGAN):
    """InfoGAN (Chen et al. 2016): unsupervised codes c; D's Q head recovers c from G(z, c) (MI lower bound)."""

    losses_required = ("adv", "info")
    needs_classes = False

    def d_step(self, batch, out, ctx):
        adv, _, fake = self.losses["adv"].d_loss(self.nets["d"], batch["real"], out["fake"], logits=_adv)
        info = self.losses["info"](fake, out["codes"])  # Q learns to read the codes back from (detached) fakes
        ctx.update("d", adv + info)
        return {"d/adv": adv, "d/info": info}

    def g_step(self, batch, out, ctx):
        with ctx.frozen("d") as (d,):
            adv, pred = self.losses["adv"].g_loss(d, out["fake"], real=batch["real"], logits=_adv)
        info = self.losses["info"](pred, out["codes"])  # G makes the codes readable
        ctx.update("g", adv + info)
        return {"g/adv": adv, "g/info": info}

    @classmethod
    def validate(cls, recipe, data_channels, *, file):
        super().validate(recipe, data_channels, file=file)
        for arg in ("cat_codes", "cont_codes"):
            g_val, d_val = cls.net_arg(recipe, "g", arg), cls.net_arg(recipe, "d", arg)
            if (g_val or None) != (d_val or None):
                raise RecipeError(f"must equal nets.g.{arg} ({g_val}): D's Q head reads back G's codes", file=file,
                                  key=f"nets.d.{arg}", value=d_val)
        if not cls.net_arg(recipe, "g", "cat_codes") and not cls.net_arg(recipe, "g", "cont_codes"):
            raise RecipeError("InfoGAN needs latent codes: set cat_codes (e.g. [10]) and/or cont_codes",
                              file=file, key="nets.g.cat_codes")
