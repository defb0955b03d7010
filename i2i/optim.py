"""Optimizers and learning-rate schedules, chosen by ``type:`` in the recipe's optim: and schedule: sections."""
from __future__ import annotations

import math

import torch

from .errors import RecipeError
from .registry import Registry

OPTIMIZERS = Registry("optimizer")
SCHEDULES = Registry("schedule")

for _name, _cls in (("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW),
                    ("rmsprop", torch.optim.RMSprop), ("sgd", torch.optim.SGD)):
    OPTIMIZERS._classes[_name] = _cls


@SCHEDULES.register("constant")
class Constant:
    """The learning rate stays at its initial value."""

    def __init__(self) -> None:
        pass

    def __call__(self, step: int) -> float:
        return 1.0


@SCHEDULES.register("linear_decay")
class LinearDecay:
    """pix2pix/CycleGAN: constant for ``constant_steps``, then linear to zero over ``decay_steps``."""

    def __init__(self, constant_steps: int, decay_steps: int):
        self.constant_steps, self.decay_steps = constant_steps, decay_steps

    @classmethod
    def check_config(cls, cfg: dict, *, key: str, file: str | None) -> None:
        for name in ("constant_steps", "decay_steps"):
            if isinstance(cfg.get(name), int) and cfg[name] < 0:
                raise RecipeError("must be >= 0", file=file, key=f"{key}.{name}", value=cfg[name])

    def __call__(self, step: int) -> float:
        if step < self.constant_steps:
            return 1.0
        return max(0.0, 1.0 - (step - self.constant_steps) / max(1, self.decay_steps))


def _check_steps(values, *, key: str, file: str | None, what: str) -> None:
    if not isinstance(values, list) or not values or not all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values):
        raise RecipeError(f"{what} must be a non-empty list of positive step counts", file=file, key=key,
                          value=values)


@SCHEDULES.register("multistep")
class MultiStep:
    """ESRGAN stage 2: the rate is multiplied by ``gamma`` at each of ``milestones`` (steps), e.g. halved at
    50k/100k/200k/300k. Factor ``gamma ** (number of milestones <= step)``."""

    def __init__(self, milestones: list[int], gamma: float = 0.5):
        self.milestones, self.gamma = sorted(milestones), gamma

    @classmethod
    def check_config(cls, cfg: dict, *, key: str, file: str | None) -> None:
        if "milestones" in cfg:
            _check_steps(cfg["milestones"], key=f"{key}.milestones", file=file, what="milestones")
            if list(cfg["milestones"]) != sorted(set(cfg["milestones"])):
                raise RecipeError("milestones must be increasing", file=file, key=f"{key}.milestones",
                                  value=cfg["milestones"])
        gamma = cfg.get("gamma", 0.5)
        if isinstance(gamma, (int, float)) and not isinstance(gamma, bool) and not 0 < gamma <= 1:
            raise RecipeError("gamma must be in (0, 1] (0.5 halves the rate)", file=file, key=f"{key}.gamma",
                              value=gamma)

    def __call__(self, step: int) -> float:
        return self.gamma ** sum(step >= m for m in self.milestones)


@SCHEDULES.register("cosine_restarts")
class CosineRestarts:
    """ESRGAN stage 1 (SGDR, Loshchilov & Hutter 2017, as BasicSR's CosineAnnealingRestartLR): consecutive
    cosine cycles of ``periods`` steps; cycle i starts at ``restart_weights[i]`` x the base rate and falls to
    ``min_factor`` x the base rate (BasicSR's eta_min 1e-7 at lr 2e-4 is min_factor 0.0005). After the last
    cycle the rate stays at ``min_factor``."""

    def __init__(self, periods: list[int], restart_weights: list[float] | None = None, min_factor: float = 0.0):
        self.periods = list(periods)
        self.weights = [1.0] * len(periods) if restart_weights is None else list(restart_weights)
        self.min_factor = min_factor

    @classmethod
    def check_config(cls, cfg: dict, *, key: str, file: str | None) -> None:
        periods = cfg.get("periods")
        if periods is not None:
            _check_steps(periods, key=f"{key}.periods", file=file, what="periods")
        weights = cfg.get("restart_weights")
        if weights is not None:
            if not isinstance(weights, list) or not all(
                    isinstance(w, (int, float)) and not isinstance(w, bool) and 0 < w <= 1 for w in weights):
                raise RecipeError("restart_weights must be a list of numbers in (0, 1]", file=file,
                                  key=f"{key}.restart_weights", value=weights)
            if isinstance(periods, list) and len(weights) != len(periods):
                raise RecipeError(f"restart_weights needs one weight per period ({len(periods)})", file=file,
                                  key=f"{key}.restart_weights", value=weights)
        low = cfg.get("min_factor", 0.0)
        if isinstance(low, (int, float)) and not isinstance(low, bool) and not 0 <= low < 1:
            raise RecipeError("min_factor (the lowest rate, as a fraction of optim.*.lr) must be in [0, 1)",
                              file=file, key=f"{key}.min_factor", value=low)

    def __call__(self, step: int) -> float:
        start = 0
        for period, weight in zip(self.periods, self.weights):
            if step < start + period:
                cos = 0.5 * (1.0 + math.cos(math.pi * (step - start) / period))
                return self.min_factor + weight * (1.0 - self.min_factor) * cos
            start += period
        return self.min_factor


FUSED_DEVICES = ("cpu", "cuda")


def build_optimizer(cfg: dict, params, *, key: str, file: str | None) -> torch.optim.Optimizer:
    """Adam/AdamW default to the fused kernel where torch has one for every parameter (floating point, on the CPU
    or CUDA): one pass over each tensor instead of a Python loop per parameter (per-parameter Adam was ~17% of a
    pix2pix step on 2 CPU cores) or several multi-tensor passes (foreach, the fallback). An explicit ``foreach``
    or ``fused`` in the recipe wins."""
    cfg = dict(cfg)
    params = list(params)
    if cfg.get("type") in ("adam", "adamw") and "foreach" not in cfg and "fused" not in cfg:
        tensors = [p for item in params for p in (item["params"] if isinstance(item, dict) else [item])]
        fusable = bool(tensors) and all(torch.is_floating_point(p) and p.device.type in FUSED_DEVICES
                                        for p in tensors)
        cfg["fused" if fusable else "foreach"] = True
    return OPTIMIZERS.build(cfg, key=key, file=file, params=params)


def build_scheduler(cfg: dict | None, optimizer: torch.optim.Optimizer, *, file: str | None):
    rule = SCHEDULES.build(cfg or {"type": "constant"}, key="schedule", file=file)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, rule)
