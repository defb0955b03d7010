"""Training health: notice the classic GAN failures while a run trains, and say what to do in plain words.

The monitor reads figures the trainer already has at each log interval (losses, D's accuracy and mean outputs
recorded by the adversarial loss, gradient norms per optimizer group), checks the first batches' value range,
and every ``every`` steps measures the diversity of a fixed batch of generated samples against real ones. It
never syncs the device per step: everything is read at log time.
"""
from __future__ import annotations

import math
import sys
from typing import Any

import torch
import torch.nn.functional as F

from ..recipe import MonitorConfig


class NonFiniteError(RuntimeError):
    """A loss, statistic or gradient became NaN/Inf; the run stops before saving anything from after the fault."""


def image_keys(batch: dict) -> list[str]:
    # "mask": data.mask's hole masks are {0, 1} by definition, not images in [-1, 1]
    return [k for k, v in batch.items() if torch.is_tensor(v) and v.dim() == 4 and v.is_floating_point()
            and k != "mask"]


@torch.no_grad()
def pairwise_diversity(x: torch.Tensor, side: int = 32) -> float:
    """Mean RMS distance between distinct images of a batch (after average-pooling to at most ``side`` px)."""
    x = x.detach().float()
    if x.shape[-1] > side:
        x = F.adaptive_avg_pool2d(x, side)
    flat = x.flatten(1)
    n = flat.shape[0]
    if n < 2:
        return 0.0
    d = torch.cdist(flat, flat) / math.sqrt(flat.shape[1])
    return float(d.sum() / (n * (n - 1)))


class HealthMonitor:
    """Collects verdicts; ``warnings`` lists every warning given (also written to log.jsonl by the trainer)."""

    def __init__(self, config: MonitorConfig, *, recipe: dict, log_every: int):
        self.config, self.recipe = config, recipe
        self.every = config.every or log_every
        self.warnings: list[dict[str, Any]] = []
        self._given: set[str] = set()
        self._batches_seen = 0
        self._ranges: dict[str, list[float]] = {}
        self._d_win_run: list[tuple[int, float]] = []
        self._collapse_run: list[float] = []
        self.real_diversity: float | None = None
        self._logged = 0
        mode = str(((recipe.get("losses") or {}).get("adv") or {}).get("mode", ""))
        # critics and relativistic Ds are meant to rank real above fake; G keeps its gradient even so
        self.critic = mode.startswith("wgan") or mode in ("rsgan", "ragan", "ralsgan")

    def unlogged(self) -> list[dict[str, Any]]:
        """Warnings given since the last call (the trainer writes them to log.jsonl)."""
        new, self._logged = self.warnings[self._logged:], len(self.warnings)
        return new

    def warn(self, kind: str, step: int, message: str, *, once: bool = True, echo: bool = True) -> None:
        if once and kind in self._given:
            return
        self._given.add(kind)
        self.warnings.append({"step": step, "warning": kind, "message": message})
        # straight to stderr, beside the step lines: a warning must be seen whatever logging is configured
        if echo:
            print(f"i2i: warning at step {step}: {message}", file=sys.stderr, flush=True)

    # ------------------------------------------------------------------ data range, first batches
    @torch.no_grad()
    def observe_batch(self, step: int, batch: dict, output_range: tuple[float, float] | None) -> None:
        if not self.config.enabled or self._batches_seen >= self.config.data_batches:
            return
        self._batches_seen += 1
        for k in image_keys(batch):
            lo, hi = float(batch[k].min()), float(batch[k].max())
            seen = self._ranges.setdefault(k, [lo, hi])
            seen[0], seen[1] = min(seen[0], lo), max(seen[1], hi)
        if self._batches_seen == self.config.data_batches or self._batches_seen == 1:
            self._check_range(step, output_range)

    def _check_range(self, step: int, output_range: tuple[float, float] | None) -> None:
        if output_range is None:
            return
        g_lo, g_hi = output_range
        span = g_hi - g_lo
        for k, (lo, hi) in self._ranges.items():
            if hi > g_hi + 0.05 * span or lo < g_lo - 0.05 * span:
                guess = " (looks like 8-bit [0, 255])" if hi > 2 and hi <= 255.5 else ""
                self.warn("data_range", step,
                          f"the data's '{k}' images span [{lo:.3g}, {hi:.3g}]{guess}, but the generator's output "
                          f"layer produces [{g_lo:g}, {g_hi:g}]: D can tell real from fake by value range alone and G "
                          f"can never match. Scale the images to [{g_lo:g}, {g_hi:g}] in the data set (the built-in "
                          "folder data sets do this; a custom data set must map x -> x / 127.5 - 1 for 8-bit data).")
            elif self._batches_seen >= self.config.data_batches and g_lo < 0 and lo >= 0 and hi <= g_hi:
                self.warn("data_range", step,
                          f"the data's '{k}' images span only [{lo:.3g}, {hi:.3g}] over the first "
                          f"{self._batches_seen} batches while the generator's output layer produces "
                          f"[{g_lo:g}, {g_hi:g}]: the images look like [0, 1] data. Map them with x * 2 - 1.")

    # ------------------------------------------------------------------ log interval
    def check(self, step: int, figures: dict[str, float]) -> None:
        """Verdicts from the figures averaged over the last log interval."""
        bad = sorted(k for k, v in figures.items() if isinstance(v, float) and not math.isfinite(v))
        if bad:
            raise NonFiniteError(f"non-finite values in {', '.join(bad)}")
        if not self.config.enabled or step < self.config.warmup_steps:
            return
        acc_r, acc_f, g_adv = figures.get("d/acc_real"), figures.get("d/acc_fake"), figures.get("g/adv")
        if acc_r is None or acc_f is None or self.critic:
            return  # see self.critic: a WGAN critic's signal is d/wdist, a relativistic D's its loss
        if min(acc_r, acc_f) >= self.config.d_win_accuracy:
            self._d_win_run.append((step, g_adv if g_adv is not None else float("nan")))
        else:
            self._d_win_run = []
            self._given.discard("d_wins")
        run = self._d_win_run
        if len(run) >= self.config.d_win_checks:
            first, last = run[-self.config.d_win_checks][1], run[-1][1]
            climbing = not (math.isfinite(first) and math.isfinite(last)) or last > first
            if climbing:
                self.warn("d_wins", step,
                          f"the discriminator separates real from fake almost perfectly (accuracy real "
                          f"{acc_r:.2f}, fake {acc_f:.2f}) for {len(run)} log intervals while G's adversarial "
                          f"loss climbs ({first:.3g} -> {last:.3g}): G is getting no useful gradient. "
                          + self.d_remedies())

    def d_remedies(self) -> str:
        adv = (self.recipe.get("losses") or {}).get("adv", {})
        d_lr = ((self.recipe.get("optim") or {}).get("d") or {}).get("lr")
        remedies = ["one-sided label smoothing (losses.adv.label_smoothing: 0.1)",
                    "instance noise (losses.adv.instance_noise: 0.1, noise_anneal_steps: <steps>)",
                    "more G steps per D step (train.g_steps: 2)",
                    f"a lower D learning rate (optim.d.lr: {d_lr / 4:g})" if isinstance(d_lr, (int, float))
                    else "a lower D learning rate (optim.d.lr)",
                    "spectral norm on D (nets.d.spectral_norm: true)",
                    "a gradient penalty (losses.adv.r1: 10, or mode: wgan_gp)"]
        if adv.get("label_smoothing"):
            remedies.pop(0)
        return "Remedies in the recipe: " + "; ".join(remedies) + "."

    # ------------------------------------------------------------------ diversity
    def wants_diversity(self, step: int) -> bool:
        return self.config.enabled and step % self.every == 0

    def check_diversity(self, step: int, fake: torch.Tensor, real: torch.Tensor) -> dict[str, float]:
        fake_div = pairwise_diversity(fake)
        if self.real_diversity is None:
            self.real_diversity = pairwise_diversity(real)
        ratio = fake_div / max(self.real_diversity, 1e-8)
        out = {"health/diversity": round(fake_div, 5), "health/real_diversity": round(self.real_diversity, 5),
               "health/diversity_ratio": round(ratio, 4)}
        if step < self.config.warmup_steps:
            return out
        if ratio < self.config.collapse_ratio:
            self._collapse_run.append(ratio)
        else:
            self._collapse_run = []
            self._given.discard("collapse")
        run = self._collapse_run[-self.config.collapse_checks:]
        # low and not recovering: a young G climbing out of its near-constant start is not a collapse
        if len(run) >= self.config.collapse_checks and run[-1] <= 1.1 * run[0] + 1e-3:
            self.warn("collapse", step,
                      f"mode collapse: generated samples of the fixed batch differ {ratio:.0%} as much as real "
                      f"images do (diversity {fake_div:.3g} vs real {self.real_diversity:.3g}) for "
                      f"{len(self._collapse_run)} checks. " + self.collapse_remedies())
        return out

    def collapse_remedies(self) -> str:
        """The model's own advice (``collapse_remedies`` on its class: BEGAN's has no adversarial loss to change),
        else the adversarial family's."""
        from ..errors import RecipeError
        from ..registry import MODELS
        try:
            own = getattr(MODELS.get((self.recipe.get("model") or {}).get("type")), "collapse_remedies", None)
        except RecipeError:  # no or an unknown model type (the recipe check reports it): the family's advice
            own = None
        return own or ("Remedies: a lower G or D learning rate, a gradient penalty (losses.adv.r1: 10 or mode: "
                       "wgan_gp), spectral norm on D (nets.d.spectral_norm: true), minibatch-diverse modes such as "
                       "hinge or ragan, or resume from an earlier checkpoint.")

    def nan_message(self, step: int, detail: str, last_good: str | None) -> str:
        keep = (f"the last good checkpoint is {last_good} (resume with --resume {last_good})" if last_good
                else "no checkpoint was written before the fault")
        return (f"training stopped at step {step}: {detail}. Nothing from after the fault was saved; {keep}. "
                "Remedies: a lower learning rate (optim.*.lr), gradient clipping (train.grad_clip: 1.0), "
                "a gradient penalty (losses.adv.r1: 10), mixed_precision: no, or monitor.on_nan: skip to drop "
                "non-finite updates.")


def output_range(g: torch.nn.Module) -> tuple[float, float] | None:
    """The value range of a generator's output layer: its ``output_range`` attribute, else its last Tanh/Sigmoid."""
    g = getattr(g, "module", g)
    declared = getattr(g, "output_range", None)
    if declared is not None:
        return tuple(declared) if declared else None
    last = None
    for m in g.modules():
        if isinstance(m, (torch.nn.Tanh, torch.nn.Sigmoid, torch.nn.Hardtanh)):
            last = m
    if isinstance(last, torch.nn.Sigmoid):
        return (0.0, 1.0)
    if last is not None:
        return (-1.0, 1.0)
    return None
