"""The step context: all a model sees of the trainer (``update``, ``frozen``, ``step``)."""
from __future__ import annotations

import contextlib

import torch
from accelerate import Accelerator

from ..models.base import frozen_modules


class TrainContext:
    """What a model sees of the trainer: ``update`` a group, run nets ``frozen``, the current ``step``.

    Also applies the critic's weight clipping after each D update, measures gradient norms when ``measure`` is
    set, and with ``skip_nonfinite`` drops updates whose loss or gradients are NaN/Inf.
    """

    def __init__(self, accelerator: Accelerator, nets: dict, optimizers: dict, groups: dict,
                 grad_clip: float | None, *, schedule: dict | None = None, critic_groups: tuple = (),
                 constraints: tuple = (), skip_nonfinite: bool = False, inject_nan_step: int | None = None):
        self.accelerator, self.nets, self.optimizers = accelerator, nets, optimizers
        self.groups, self.grad_clip, self.step = groups, grad_clip, 0
        self.schedule = schedule or {}
        self.critic_groups, self.constraints = critic_groups, constraints
        self.skip_nonfinite, self.inject_nan_step = skip_nonfinite, inject_nan_step
        self.measure = False
        self.grad_norms: dict[str, torch.Tensor] = {}
        self.skipped = 0

    def _params(self, group: str) -> list[torch.Tensor]:
        return [p for n in self.groups[group] for p in self.nets[n].parameters()]

    def update(self, group: str | tuple[str, ...], loss: torch.Tensor) -> None:
        """One backward of ``loss``, then a step of each named group (several: a loss two nets minimise jointly,
        such as BicycleGAN's G and E, each with its own optimizer)."""
        groups = (group,) if isinstance(group, str) else tuple(group)
        if self.inject_nan_step is not None and self.step == self.inject_nan_step:
            loss = loss * float("nan")
        for g in groups:
            self.optimizers[g].zero_grad(set_to_none=True)
        self.accelerator.backward(loss)
        norms = {}
        for g in groups:
            norm = None
            if self.grad_clip:
                norm = self.accelerator.clip_grad_norm_(self._params(g), self.grad_clip)
            elif self.measure or self.skip_nonfinite:
                grads = [p.grad for p in self._params(g) if p.grad is not None]
                norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads))) if grads else None
            norms[g] = norm
        if self.skip_nonfinite and not bool(torch.isfinite(loss.detach()) & torch.stack(
                [torch.isfinite(n) for n in norms.values() if n is not None] or [torch.tensor(True)]).all()):
            for g in groups:  # a host sync per update: the price of monitor.on_nan: skip
                self.optimizers[g].zero_grad(set_to_none=True)
            self.skipped += 1
            return
        for g in groups:
            if norms[g] is not None and self.measure:
                self.grad_norms[g] = norms[g].detach()
            self.optimizers[g].step()
            if g in self.critic_groups and self.constraints:
                params = self._params(g)
                for c in self.constraints:
                    c.constrain(params)

    @contextlib.contextmanager
    def frozen(self, *names: str):
        # unwrapped modules: a DDP wrapper would wait for gradients these nets never get
        modules = tuple(self.accelerator.unwrap_model(self.nets[n]) for n in names)
        with frozen_modules(*modules) as mods:
            yield mods
