"""Adversarial losses behind one interface, with the field's stabilisers as options.

Two levels:
- ``generator(fake_logits, real_logits=None)`` and ``discriminator(real_logits, fake_logits)``: the objective of
  the chosen ``mode`` on logits (a multi-scale D's list of logit maps is summed over scales);
- ``g_loss(d, fake, real=...)`` and ``d_loss(d, real, fake)``: call D on images and add what needs D itself or
  the inputs: gradient penalties (WGAN-GP interpolates, DRAGAN, WGAN-div, R1, R2), instance noise, one-sided label
  smoothing, and the health statistics the trainer's monitor reads (D's accuracy and mean outputs, the WGAN
  critic's distance estimate). Models use this level so that every model gets every mode and stabiliser.

``weight`` scales the generator's adversarial term only; D has its own optimizer and its loss is unweighted
(as in BasicSR). Penalties carry their own coefficients.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import RecipeError
from ..registry import LOSSES

Logits = torch.Tensor | Sequence[torch.Tensor]


def _each(logits: Logits) -> list[torch.Tensor]:
    """A multi-scale D returns one logit map per scale; every loss sums over them."""
    return list(logits) if isinstance(logits, (list, tuple)) else [logits]


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


class AdversarialMode:
    """One GAN objective on a single logit map. ``real_label``/``fake_label``/``g_target`` are its targets."""

    targets = False         # uses real/fake targets (label smoothing applies)
    relativistic = False    # G's loss needs D's output on real images too
    distance = False        # -(D loss) estimates a distance worth logging (WGAN critics)

    def __init__(self, real_label: float = 1.0, fake_label: float = 0.0, g_target: float | None = None):
        self.real_label, self.fake_label = real_label, fake_label
        self.g_target = real_label if g_target is None else g_target

    def generator(self, fake: torch.Tensor, real: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def discriminator(self, real: torch.Tensor, fake: torch.Tensor, real_label: float) -> torch.Tensor:
        raise NotImplementedError

    def threshold(self) -> float:
        """D output above which an image counts as judged real (for the accuracy statistic)."""
        return 0.0


class Vanilla(AdversarialMode):
    """Goodfellow et al. 2014, BCE with logits; G uses the non-saturating form -log D(G(z))."""

    targets = True

    def generator(self, fake, real):
        return _bce(fake, self.g_target)

    def discriminator(self, real, fake, real_label):
        return 0.5 * (_bce(real, real_label) + _bce(fake, self.fake_label))


class Minimax(Vanilla):
    """The original minimax G objective log(1 - D(G(z))): saturates when D rejects fakes (kept for study)."""

    def generator(self, fake, real):
        return -F.softplus(fake).mean()  # log(1 - sigmoid(f)) = -softplus(f)


class LSGAN(AdversarialMode):
    """Mao et al. 2017: D pulls real to b (real_label) and fake to a (fake_label); G pulls fake to c (g_target)."""

    targets = True

    def generator(self, fake, real):
        return F.mse_loss(fake, torch.full_like(fake, self.g_target))

    def discriminator(self, real, fake, real_label):
        return 0.5 * (F.mse_loss(real, torch.full_like(real, real_label))
                      + F.mse_loss(fake, torch.full_like(fake, self.fake_label)))

    def threshold(self):
        return 0.5 * (self.real_label + self.fake_label)


class WGAN(AdversarialMode):
    """Arjovsky et al. 2017: critic maximises E[D(x)] - E[D(G(z))]; needs a Lipschitz constraint (clip or GP)."""

    distance = True

    def generator(self, fake, real):
        return -fake.mean()

    def discriminator(self, real, fake, real_label):
        return fake.mean() - real.mean()


class Hinge(AdversarialMode):
    """Lim & Ye 2017 / SAGAN: D: E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]; G: -E[D(G(z))]."""

    def generator(self, fake, real):
        return -fake.mean()

    def discriminator(self, real, fake, real_label):
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


class Softplus(AdversarialMode):
    """The non-saturating logistic loss written with softplus (StyleGAN's form; vanilla without the 0.5)."""

    def generator(self, fake, real):
        return F.softplus(-fake).mean()

    def discriminator(self, real, fake, real_label):
        return F.softplus(-real).mean() + F.softplus(fake).mean()


class RSGAN(AdversarialMode):
    """Relativistic standard GAN (Jolicoeur-Martineau 2018): D judges whether real is more real than fake."""

    targets = relativistic = True

    def generator(self, fake, real):
        return _bce(fake - real, self.g_target)

    def discriminator(self, real, fake, real_label):
        return _bce(real - fake, real_label)


class RaGAN(AdversarialMode):
    """Relativistic average GAN (ESRGAN's choice): each side compared with the other side's mean; both terms x0.5."""

    targets = relativistic = True

    def generator(self, fake, real):
        return 0.5 * (_bce(real - fake.mean(), self.fake_label) + _bce(fake - real.mean(), self.g_target))

    def discriminator(self, real, fake, real_label):
        return 0.5 * (_bce(real - fake.mean(), real_label) + _bce(fake - real.mean(), self.fake_label))


class RaLSGAN(AdversarialMode):
    """Relativistic average LSGAN: (D(x) - E D(G(z)) - 1)^2 + (D(G(z)) - E D(x) + 1)^2, both terms x0.5."""

    relativistic = True

    def generator(self, fake, real):
        return 0.5 * (((fake - real.mean() - 1) ** 2).mean() + ((real - fake.mean() + 1) ** 2).mean())

    def discriminator(self, real, fake, real_label):
        return 0.5 * (((real - fake.mean() - 1) ** 2).mean() + ((fake - real.mean() + 1) ** 2).mean())


class BGAN(Vanilla):
    """Boundary-seeking GAN (Hjelm et al. 2017, arXiv:1702.08431): vanilla D; G minimises
    0.5 * (log D(G(z)) - log(1 - D(G(z))))^2, pulling its samples onto D's decision boundary D = 1/2, where
    D(x) / (1 - D(x)) estimates p_data / p_g. With D = sigmoid(logit) the bracket is the logit itself."""

    def generator(self, fake, real):
        return 0.5 * (F.logsigmoid(fake) - F.logsigmoid(-fake)).pow(2).mean()


class SoftmaxGAN(AdversarialMode):
    """Softmax GAN (Lin 2017, arXiv:1704.06191): one softmax over every D output of the batch, real and fake.
    D's cross-entropy targets are 1/|real| on each real output and 0 on fakes; G's are the uniform
    1/(|real| + |fake|) on all of them (G's loss needs D's outputs on real images). A logit counts as one sample,
    so a PatchGAN map contributes each patch. Shift-invariant: only differences of logits matter."""

    relativistic = True  # G's loss needs D's output on real images

    @staticmethod
    def _log_softmax(real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logp = torch.log_softmax(torch.cat([real.flatten(), fake.flatten()]), 0)
        return logp[: real.numel()], logp[real.numel():]

    def generator(self, fake, real):
        logp_real, logp_fake = self._log_softmax(real, fake)
        return -torch.cat([logp_real, logp_fake]).mean()

    def discriminator(self, real, fake, real_label):
        logp_real, _ = self._log_softmax(real, fake)
        return -logp_real.mean()


ADVERSARIAL_MODES: dict[str, Callable[..., AdversarialMode]] = {
    "vanilla": Vanilla, "minimax": Minimax, "lsgan": LSGAN, "wgan": WGAN, "wgan_gp": WGAN, "wgan_div": WGAN,
    "hinge": Hinge, "softplus": Softplus, "rsgan": RSGAN, "ragan": RaGAN, "ralsgan": RaLSGAN, "bgan": BGAN,
    "softmax": SoftmaxGAN,
}
# defaults that make a named mode what its paper means by it
MODE_DEFAULTS: dict[str, dict[str, float]] = {
    "wgan": {"weight_clip": 0.01},
    "wgan_gp": {"gradient_penalty": 10.0},
    "wgan_div": {"div_k": 2.0, "div_p": 6.0},
}


def _input_grads(outputs: Logits, inputs: torch.Tensor) -> torch.Tensor:
    """d(sum of D's logits)/d(inputs), kept in the graph so the penalty trains D."""
    total = sum(o.sum() for o in _each(outputs))
    (grad,) = torch.autograd.grad(total, inputs, create_graph=True)
    return grad.flatten(1)


def _interpolates(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """WGAN-GP's points: eps * real + (1 - eps) * fake, eps ~ U[0, 1) per image."""
    eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
    return eps * real + (1 - eps) * fake


@LOSSES.register("adversarial")
class AdversarialLoss(nn.Module):
    """GAN objective with a pluggable ``mode`` and stabilisers; logits (B, 1, ...) or a list of them -> scalar.

    mode: vanilla | minimax | lsgan | wgan | wgan_gp | wgan_div | hinge | softplus | rsgan | ragan | ralsgan |
    bgan | softmax.
    Stabilisers: gradient_penalty (lambda on WGAN-GP interpolates), dragan (lambda of DRAGAN's penalty
    E(||grad D(x_hat)|| - 1)^2 at points x_hat = x + a * dragan_noise * std(x) * u near the real data, u ~ U[0,1)
    per pixel and a ~ U[0,1) per image: Kodali et al. 2017, lambda 10, noise 0.5), r1 / r2 (gamma/2 E||grad D||^2
    on real / fake), weight_clip (critic weights clamped after each D step), label_smoothing (one-sided: D's real
    target 1 - s), instance_noise (std of Gaussian noise added to D's inputs, annealed linearly to 0 over
    noise_anneal_steps; 0 steps keeps it constant).
    """

    def __init__(self, mode: str = "vanilla", weight: float = 1.0, real_label: float = 1.0,
                 fake_label: float = 0.0, g_target: float | None = None, label_smoothing: float = 0.0,
                 gradient_penalty: float | None = None, r1: float = 0.0, r2: float = 0.0,
                 weight_clip: float | None = None, div_k: float | None = None, div_p: float | None = None,
                 instance_noise: float = 0.0, noise_anneal_steps: int = 0, dragan: float = 0.0,
                 dragan_noise: float = 0.5):
        super().__init__()
        if mode not in ADVERSARIAL_MODES:
            raise ValueError(f"unknown adversarial mode '{mode}'; valid: {', '.join(sorted(ADVERSARIAL_MODES))}")
        defaults = MODE_DEFAULTS.get(mode, {})
        self.mode_name, self.weight = mode, weight
        self.mode = ADVERSARIAL_MODES[mode](real_label, fake_label, g_target)
        self.label_smoothing = label_smoothing
        self.gradient_penalty = defaults.get("gradient_penalty", 0.0) if gradient_penalty is None else gradient_penalty
        self.r1, self.r2 = r1, r2
        self.weight_clip = defaults.get("weight_clip") if weight_clip is None else (weight_clip or None)
        self.div_k = defaults.get("div_k", 0.0) if div_k is None else div_k
        self.div_p = defaults.get("div_p", 6.0) if div_p is None else div_p
        self.instance_noise, self.noise_anneal_steps = instance_noise, noise_anneal_steps
        self.dragan, self.dragan_noise = dragan, dragan_noise
        self.step = 0
        self._stats: list[dict[str, torch.Tensor]] = []

    @classmethod
    def check_config(cls, cfg: dict, *, key: str, file: str | None) -> None:
        mode = cfg.get("mode", "vanilla")
        if mode not in ADVERSARIAL_MODES:
            raise RecipeError("unknown adversarial mode", file=file, key=f"{key}.mode", value=mode,
                              choices=ADVERSARIAL_MODES)
        smoothing = cfg.get("label_smoothing", 0.0)
        if smoothing and not ADVERSARIAL_MODES[mode].targets:
            with_targets = [m for m, c in ADVERSARIAL_MODES.items() if c.targets]
            raise RecipeError(f"label smoothing changes D's real target, and mode '{mode}' has none",
                              file=file, key=f"{key}.label_smoothing", value=smoothing, choices=with_targets)
        if not 0 <= smoothing < 0.5:
            raise RecipeError("one-sided label smoothing must be in [0, 0.5) (0.1 is usual)", file=file,
                              key=f"{key}.label_smoothing", value=smoothing)
        for name in ("gradient_penalty", "r1", "r2", "weight_clip", "div_k", "instance_noise", "noise_anneal_steps",
                     "dragan", "dragan_noise"):
            value = cfg.get(name)
            if isinstance(value, (int, float)) and value < 0:
                raise RecipeError("must be >= 0", file=file, key=f"{key}.{name}", value=value)
        if cfg.get("div_k") and mode != "wgan_div":
            raise RecipeError("div_k/div_p are the WGAN-div penalty's; use mode: wgan_div", file=file,
                              key=f"{key}.div_k", value=cfg["div_k"])

    # ---------------------------------------------------------------- logits level
    def generator(self, fake: Logits, real: Logits | None = None) -> torch.Tensor:
        """G's loss on D's logits for generated images (``real``: D's logits for real images, relativistic modes)."""
        if self.mode.relativistic and real is None:
            raise ValueError(f"mode '{self.mode_name}' is relativistic: G's loss needs D's logits on real images")
        reals = _each(real) if real is not None else [None] * len(_each(fake))
        return self.weight * sum(self.mode.generator(f, r) for f, r in zip(_each(fake), reals))

    def discriminator(self, real: Logits, fake: Logits) -> torch.Tensor:
        """D's loss on its logits for real and (detached) generated images (no penalties at this level)."""
        real_label = self.mode.real_label - self.label_smoothing
        return sum(self.mode.discriminator(r, f, real_label) for r, f in zip(_each(real), _each(fake)))

    # ---------------------------------------------------------------- images level
    def set_step(self, step: int) -> None:
        """The trainer's step, for annealed instance noise."""
        self.step = step

    def noise_std(self) -> float:
        if not self.instance_noise:
            return 0.0
        if not self.noise_anneal_steps:
            return self.instance_noise
        return self.instance_noise * max(0.0, 1.0 - self.step / self.noise_anneal_steps)

    def _noisy(self, x: torch.Tensor) -> torch.Tensor:
        std = self.noise_std() if self.training else 0.0
        return x + std * torch.randn_like(x) if std > 0 else x

    def d_loss(self, d: Callable, real: torch.Tensor, fake: torch.Tensor, *, real_args: tuple = (),
               fake_args: tuple = (), logits: Callable[[Any], Logits] | None = None) -> tuple[torch.Tensor, Any, Any]:
        """D's full loss: call ``d(real, *real_args)`` and ``d(fake.detach(), *fake_args)``, add penalties.

        ``logits`` picks the adversarial logits out of D's output (e.g. ``lambda out: out["adv"]`` for a D with
        several heads). Returns (loss, D's output on real, D's output on fake).
        """
        pick = logits or (lambda out: out)
        real_in, fake_in = self._noisy(real.detach()), self._noisy(fake.detach())
        div = self.mode_name == "wgan_div" and self.div_k > 0
        if self.r1 > 0 or div:
            real_in = real_in.detach().requires_grad_(True)
        if self.r2 > 0 or div:
            fake_in = fake_in.detach().requires_grad_(True)
        real_out, fake_out = d(real_in, *real_args), d(fake_in, *fake_args)
        real_logits, fake_logits = pick(real_out), pick(fake_out)
        loss = self.discriminator(real_logits, fake_logits)
        stats: dict[str, torch.Tensor] = {}
        if self.r1 > 0 or div:
            real_grad = _input_grads(real_logits, real_in)
        if self.r2 > 0 or div:
            fake_grad = _input_grads(fake_logits, fake_in)
        if self.r1 > 0:
            stats["r1"] = real_grad.pow(2).sum(1).mean()
            loss = loss + 0.5 * self.r1 * stats["r1"]
        if self.r2 > 0:
            stats["r2"] = fake_grad.pow(2).sum(1).mean()
            loss = loss + 0.5 * self.r2 * stats["r2"]
        if div:  # Wu et al. 2018: k/2 E[||grad||^p] over real and fake samples
            p = self.div_p
            penalty = (real_grad.pow(2).sum(1) ** (p / 2) + fake_grad.pow(2).sum(1) ** (p / 2)).mean()
            stats["div"] = penalty
            loss = loss + 0.5 * self.div_k * penalty
        # Penalties E(||grad D(x_hat)|| - 1)^2, each at its own points x_hat: (stat name, lambda, points)
        for name, lam, points in (("gp", self.gradient_penalty, _interpolates),
                                  ("dragan", self.dragan, self._perturbed_real)):
            if lam > 0:
                x_hat = points(real.detach(), fake.detach()).requires_grad_(True)
                grad = _input_grads(pick(d(x_hat, *real_args)), x_hat)
                stats[name] = ((grad.norm(2, dim=1) - 1) ** 2).mean()
                loss = loss + lam * stats[name]
        self._record(real_logits, fake_logits, stats)
        return loss, real_out, fake_out

    def _perturbed_real(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """DRAGAN's points (the reference implementation): x + a * (x_p - x), x_p = x + c * std(x) * u, with u ~
        U[0, 1) per pixel, a ~ U[0, 1) per image and std over the whole batch; the fakes are not used."""
        u = torch.rand_like(real)
        a = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
        return real + a * self.dragan_noise * real.std() * u

    def g_loss(self, d: Callable, fake: torch.Tensor, *, real: torch.Tensor | None = None, fake_args: tuple = (),
               real_args: tuple = (), logits: Callable[[Any], Logits] | None = None) -> tuple[torch.Tensor, Any]:
        """G's adversarial loss for ``fake`` (D is called on ``real`` too in relativistic modes; no grad there).

        Returns (loss, D's output on fake).
        """
        pick = logits or (lambda out: out)
        fake_out = d(fake, *fake_args)
        real_logits = None
        if self.mode.relativistic:
            if real is None:
                raise ValueError(f"mode '{self.mode_name}' is relativistic: pass real= to g_loss")
            with torch.no_grad():
                real_logits = [r.detach() for r in _each(pick(d(real, *real_args)))]
        return self.generator(pick(fake_out), real_logits), fake_out

    def constrain(self, params: list[torch.Tensor]) -> None:
        """The WGAN critic's Lipschitz constraint by weight clipping, after each D step."""
        if self.weight_clip:
            with torch.no_grad():
                for p in params:
                    p.clamp_(-self.weight_clip, self.weight_clip)

    # ---------------------------------------------------------------- health statistics
    @torch.no_grad()
    def _record(self, real: Logits, fake: Logits, extra: dict[str, torch.Tensor]) -> None:
        r = torch.cat([t.detach().float().flatten() for t in _each(real)])
        f = torch.cat([t.detach().float().flatten() for t in _each(fake)])
        if self.mode.relativistic or self.mode_name.startswith("wgan"):
            real_ok, fake_ok = (r > f.mean()).float().mean(), (f < r.mean()).float().mean()
        else:
            t = self.mode.threshold()
            real_ok, fake_ok = (r > t).float().mean(), (f <= t).float().mean()
        stats = {"acc_real": real_ok, "acc_fake": fake_ok, "out_real": r.mean(), "out_fake": f.mean(),
                 **{k: v.detach() for k, v in extra.items()}}
        if self.mode.distance:
            stats["wdist"] = r.mean() - f.mean()
        self._stats.append(stats)

    def pop_stats(self) -> dict[str, torch.Tensor]:
        """Mean of the statistics recorded since the last call (tensors: no host sync)."""
        if not self._stats:
            return {}
        keys = self._stats[0].keys()
        out = {k: torch.stack([s[k] for s in self._stats if k in s]).mean() for k in keys}
        self._stats = []
        return out
