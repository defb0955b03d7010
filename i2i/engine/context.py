"""The step context: all a model sees of the trainer (``update``, ``frozen``, ``step``)."""
from __future__ import annotations

import contextlib

import torch
from accelerate import Accelerator
from accelerate.optimizer import AcceleratedOptimizer

from ..models.base import frozen_modules


def raw_optimizer(opt: torch.optim.Optimizer) -> torch.optim.Optimizer:
    """The torch optimizer inside Accelerate's wrapper (the object the loss scaler keys its state by)."""
    while isinstance(opt, AcceleratedOptimizer):
        opt = opt.optimizer
    return opt


class TrainContext:
    """What a model sees of the trainer: ``update`` a group, run nets ``frozen``, the current ``step``.

    Also applies the critic's weight clipping after each D update, measures gradient norms when ``measure`` is
    set, and with ``skip_nonfinite`` drops updates whose loss or gradients are NaN/Inf.

    With a loss ``scaler`` (fp16: ``accelerator.scaler``) the context owns the scaling, as PyTorch's AMP recipe for
    several models, losses and optimizers has it: each loss is scaled before its backward, each stepped group's
    optimizer is unscaled before its gradients are clipped or measured and stepped through ``scaler.step`` (which
    skips it on inf/NaN gradients), and ``end_step`` (the trainer calls it once per training step) updates the
    scale once, after every group has stepped. Accelerate's ``AcceleratedOptimizer.step`` would update the shared
    scaler after each optimizer, and its ``clip_grad_norm_`` unscales every optimizer, so neither is used then.
    """

    def __init__(self, accelerator: Accelerator, nets: dict, optimizers: dict, groups: dict,
                 grad_clip: float | None, *, scaler: torch.amp.GradScaler | None = None,
                 schedule: dict | None = None, critic_groups: tuple = (), constraints: tuple = (),
                 skip_nonfinite: bool = False, inject_nan_step: int | None = None):
        self.accelerator, self.nets, self.optimizers = accelerator, nets, optimizers
        self.groups, self.grad_clip, self.step = groups, grad_clip, 0
        self.scaler = scaler if scaler is not None and scaler.is_enabled() else None
        self.schedule = schedule or {}
        self.critic_groups, self.constraints = critic_groups, constraints
        self.skip_nonfinite, self.inject_nan_step = skip_nonfinite, inject_nan_step
        self.measure = False
        self.grad_norms: dict[str, torch.Tensor] = {}
        self.skipped = 0
        self._unscaled: set[str] = set()  # groups unscaled since the scaler's last update

    def _params(self, group: str) -> list[torch.Tensor]:
        return [p for n in self.groups[group] for p in self.nets[n].parameters()]

    def update(self, group: str | tuple[str, ...], loss: torch.Tensor) -> None:
        """One backward of ``loss``, then a step of each named group (several: a loss two nets minimise jointly,
        such as BicycleGAN's G and E, each with its own optimizer)."""
        groups = (group,) if isinstance(group, str) else tuple(group)
        if self.inject_nan_step is not None and self.step == self.inject_nan_step:
            loss = loss * float("nan")
        scaler = self.scaler
        if scaler is not None and self._unscaled.intersection(groups):
            self.end_step()  # a group steps twice in one training step (train.g_steps > 1): close the round first
        for g in groups:
            self.optimizers[g].zero_grad(set_to_none=True)
        if scaler is None:
            self.accelerator.backward(loss)
        else:
            scaler.scale(loss).backward()
            for g in groups:  # true gradients before they are clipped, measured or checked
                if any(p.grad is not None for p in self._params(g)):  # no gradient: nothing to unscale or step
                    scaler.unscale_(raw_optimizer(self.optimizers[g]))
                    self._unscaled.add(g)
        norms = {}
        for g in groups:
            norm = None
            if self.grad_clip:
                # Accelerate's clip_grad_norm_ would unscale every optimizer (again): with a scaler, torch's own
                norm = (self.accelerator.clip_grad_norm_(self._params(g), self.grad_clip) if scaler is None else
                        torch.nn.utils.clip_grad_norm_(self._params(g), self.grad_clip))
            elif self.measure or self.skip_nonfinite:
                grads = [p.grad for p in self._params(g) if p.grad is not None]
                norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads))) if grads else None
            norms[g] = norm
        if self.skip_nonfinite and not bool(torch.isfinite(loss.detach()) & torch.stack(
                [torch.isfinite(n) for n in norms.values() if n is not None] or [torch.tensor(True)]).all()):
            for g in groups:  # a host sync per update: the price of monitor.on_nan: skip
                self.optimizers[g].zero_grad(set_to_none=True)
            self.skipped += 1
            return  # with a scaler, the inf checks of unscale_ still reach end_step: the scale backs off
        for g in groups:
            if scaler is None:
                self.optimizers[g].step()
            elif not self._scaled_step(g):
                continue  # the scaler skipped it (inf/NaN gradients): weights, norms and constraints stay as they were
            if norms[g] is not None and self.measure:
                self.grad_norms[g] = norms[g].detach()
            if g in self.critic_groups and self.constraints:
                params = self._params(g)
                for c in self.constraints:
                    c.constrain(params)

    def _scaled_step(self, group: str) -> bool:
        """``scaler.step`` on the raw optimizer (never ``AcceleratedOptimizer.step``, which would also update the
        scale); False when the scaler skipped the step for inf/NaN gradients."""
        if group not in self._unscaled:  # no gradients reached the group: its optimizer.step would do nothing
            return True
        opt = self.optimizers[group]
        raw = raw_optimizer(opt)
        # the inf check that unscale_ recorded, read as scaler.step reads it (this sync is the one step makes)
        skipped = bool(sum(v.item() for v in self.scaler._found_inf_per_device(raw).values()))
        self.scaler.step(raw)
        if isinstance(opt, AcceleratedOptimizer):
            opt._is_overflow = skipped  # keeps Accelerate's step_was_skipped true to what happened
        return not skipped

    def end_step(self) -> None:
        """The loss scaler's update: once per training step, after every group has stepped (the trainer calls it;
        a no-op without a scaler or when nothing was unscaled since the last update)."""
        if self.scaler is not None and self._unscaled:
            self.scaler.update()
            self._unscaled.clear()

    @contextlib.contextmanager
    def frozen(self, *names: str):
        # unwrapped modules: a DDP wrapper would wait for gradients these nets never get
        modules = tuple(self.accelerator.unwrap_model(self.nets[n]) for n in names)
        with frozen_modules(*modules) as mods:
            yield mods
