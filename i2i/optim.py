"""Optimizers and learning-rate schedules, chosen by ``type:`` in the recipe's optim: and schedule: sections."""
from __future__ import annotations

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


def build_optimizer(cfg: dict, params, *, key: str, file: str | None) -> torch.optim.Optimizer:
    cfg = dict(cfg)
    if cfg.get("type") in ("adam", "adamw") and "foreach" not in cfg and "fused" not in cfg:
        cfg["foreach"] = True  # one multi-tensor kernel instead of a Python loop per parameter
    return OPTIMIZERS.build(cfg, key=key, file=file, params=params)


def build_scheduler(cfg: dict | None, optimizer: torch.optim.Optimizer, *, file: str | None):
    rule = SCHEDULES.build(cfg or {"type": "constant"}, key="schedule", file=file)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, rule)
