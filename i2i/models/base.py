"""The model contract: one GAN algorithm's update order, written out; no devices, AMP, DDP or checkpoints."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, ClassVar, Protocol

import torch
from torch import nn

from ..errors import RecipeError
from ..registry import NETS, config_value, net_size_rules


class StepContext(Protocol):
    """What the trainer hands a model each step (a 15-line plain-torch version drives unit tests)."""

    step: int

    def update(self, group: str | tuple[str, ...], loss: torch.Tensor) -> None:
        """zero_grad, backward, clip, optimizer step for one optimizer group (or several, one backward)."""

    def frozen(self, *names: str) -> contextlib.AbstractContextManager[tuple[nn.Module, ...]]:
        """No gradients for these nets inside the block; yields the unwrapped modules."""


class PlainContext:
    """``StepContext`` in plain torch (no Accelerate): zero_grad, backward, step. Unit tests and the GPU benchmark
    drive models with it; ``optimizers`` maps group -> optimizer (default: SGD at ``lr`` for each group)."""

    def __init__(self, model: GANModel, optimizers: dict[str, torch.optim.Optimizer] | None = None, *,
                 lr: float = 0.05):
        self.nets, self.step = model.nets, 0
        self.opts = optimizers or {g: torch.optim.SGD([p for n in names for p in model.nets[n].parameters()], lr=lr)
                                   for g, names in model.optim_groups.items()}

    def update(self, group: str | tuple[str, ...], loss: torch.Tensor) -> None:
        groups = (group,) if isinstance(group, str) else group
        for g in groups:
            self.opts[g].zero_grad(set_to_none=True)
        loss.backward()
        for g in groups:
            self.opts[g].step()

    def frozen(self, *names: str) -> contextlib.AbstractContextManager[tuple[nn.Module, ...]]:
        return frozen_modules(*(self.nets[n] for n in names))


class GANModel:
    """Base of every model: names its nets, optimizer groups, exported nets and the group order per step."""

    nets_required: ClassVar[tuple[str, ...]] = ()
    nets_optional: ClassVar[tuple[str, ...]] = ()  # an optimizer group whose nets are absent is dropped
    losses_required: ClassVar[tuple[str, ...]] = ()
    losses_optional: ClassVar[tuple[str, ...]] = ()
    optim_groups: ClassVar[dict[str, tuple[str, ...]]] = {}
    export: ClassVar[tuple[str, ...]] = ()
    order: ClassVar[tuple[str, ...]] = ("d", "g")
    critic_groups: ClassVar[tuple[str, ...]] = ("d",)  # discriminator groups: n_critic, warm-up, weight clipping
    # translate direction -> the exported generator, or a tuple of exported nets applied in sequence (an encoder
    # then a decoder; see i2i/inference/export.py: Chain)
    directions: ClassVar[dict[str, str | tuple[str, ...]]] = {}
    # what the health monitor advises when G collapses; None: the adversarial family's advice (losses.adv...)
    collapse_remedies: ClassVar[str | None] = None

    def __init__(self, nets: dict[str, nn.Module], losses: dict[str, nn.Module]):
        self.nets = nets
        self.losses = losses
        self.optim_groups = self.groups_for(nets)

    @classmethod
    def groups_for(cls, net_names) -> dict[str, tuple[str, ...]]:
        """The optimizer groups of a recipe with these nets: those whose nets are all there."""
        return {g: names for g, names in cls.optim_groups.items() if all(n in net_names for n in names)}

    # -- one training step
    def generate(self, batch: dict[str, torch.Tensor]) -> dict[str, Any]:
        """The generators' outputs for this batch (tensors; latent models add their codes), shared by the steps."""
        raise NotImplementedError

    def train_step(self, batch: dict[str, torch.Tensor], ctx: StepContext) -> dict[str, torch.Tensor]:
        order = tuple(g for g in self.order if g in self.optim_groups)
        plan = step_plan(order, self.critic_groups, ctx.step, **getattr(ctx, "schedule", {}))
        # a step that trains no generator group needs no graph through the generators
        trains_g = any(g not in self.critic_groups for g in plan)
        with contextlib.nullcontext() if trains_g else torch.no_grad():
            out = self.generate(batch)
        logs: dict[str, torch.Tensor] = {}
        seen: set[str] = set()
        for group in plan:
            if group in seen:  # a repeated G step (g_steps > 1) draws a fresh generator output
                out = self.generate(batch)
            seen.add(group)
            logs.update(getattr(self, f"{group}_step")(batch, out, ctx))
        return {k: v.detach() for k, v in logs.items()}

    @torch.no_grad()
    def visuals(self, batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """Rows of the sample grid (each (B, C, H, W) in [-1, 1]) for a fixed batch, nets in eval mode."""
        raise NotImplementedError

    @torch.no_grad()
    def health_samples(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(generated, real) images of the same kind for a fixed batch, for the monitor's diversity check."""
        return None

    def export_info(self, dataset: Any) -> dict:
        """Extra metadata for the export (e.g. class names), taken from the built data set."""
        return {}

    def check_data(self, dataset: Any, *, file: str) -> None:
        """Checks that need the built data set (e.g. its class count); raise RecipeError."""

    def state_objects(self) -> dict[str, Any]:
        """Stateful helpers (image pools...) to checkpoint with the run; each has state_dict/load_state_dict."""
        return {}

    # -- recipe checks, before anything is built
    @classmethod
    def validate(cls, recipe: dict, data_channels: dict[str, int], *, file: str) -> None:
        """Cross-field checks (channels, sizes) for this model's recipe; raise RecipeError."""

    @classmethod
    def export_contract(cls) -> dict[str, dict[str, str]]:
        """The attributes each exported net must have (net name -> {attribute: what reads it}), because the
        commands that run an export alone read them; validation builds the net on the meta device and checks
        each is a positive integer. A translating generator (``directions``; the first net of a chain) needs
        ``in_channels``."""
        firsts = (t if isinstance(t, str) else t[0] for t in cls.directions.values())
        return {name: {"in_channels": "`i2i translate` and tiling feed it images of that many channels"}
                for name in firsts}

    @staticmethod
    def net_arg(recipe: dict, name: str, arg: str) -> Any:
        cfg = recipe["nets"][name]
        return config_value(NETS.get(cfg["type"]), cfg, arg)

    @classmethod
    def check_channels(cls, recipe: dict, net: str, arg: str, expected: int, why: str, *, file: str) -> None:
        got = cls.net_arg(recipe, net, arg)
        if got is not None and got != expected:
            raise RecipeError(f"must be {expected}: {why}", file=file, key=f"nets.{net}.{arg}", value=got)

    @classmethod
    def check_size(cls, recipe: dict, net: str, size: int | None, *, file: str) -> None:
        """The crop size must suit the net: a multiple of its size_multiple and at least its min_size."""
        if size is None:
            return
        cfg = recipe["nets"][net]
        multiple, minimum = net_size_rules(cfg)
        if size % multiple:
            lower, upper = size - size % multiple, size - size % multiple + multiple
            sizes = f"{lower} or {upper}" if lower else f"{upper}"
            raise RecipeError(f"crop size must be divisible by {multiple} for nets.{net} "
                              f"({cfg['type']}); use {sizes}, or change the net",
                              file=file, key="data.size", value=size)
        if size < minimum:
            raise RecipeError(f"crop size is below the smallest input nets.{net} ({cfg['type']}) accepts "
                              f"({minimum})", file=file, key="data.size", value=size)


def step_plan(order: tuple[str, ...], critic_groups: tuple[str, ...], step: int, *, n_critic: int = 1,
              g_steps: int = 1, d_warmup_steps: int = 0) -> list[str]:
    """Which groups update at ``step``, in order: D groups every step; the others every ``n_critic``-th step
    (``g_steps`` times each) once the first ``d_warmup_steps`` steps, which train D alone, are over."""
    if step < d_warmup_steps:
        return [g for g in order if g in critic_groups]
    g_turn = (step - d_warmup_steps) % n_critic == 0
    plan: list[str] = []
    for g in order:
        if g in critic_groups:
            plan.append(g)
        elif g_turn:
            plan += [g] * g_steps
    return plan


def set_requires_grad(nets: tuple[nn.Module, ...], flag: bool) -> None:
    for net in nets:
        for p in net.parameters():
            p.requires_grad_(flag)


@contextlib.contextmanager
def frozen_modules(*modules: nn.Module) -> Iterator[tuple[nn.Module, ...]]:
    """Freeze parameters inside the block, restoring each one's previous flag afterwards."""
    saved = [[p.requires_grad for p in m.parameters()] for m in modules]
    set_requires_grad(modules, False)
    try:
        yield modules
    finally:
        for m, flags in zip(modules, saved):
            for p, f in zip(m.parameters(), flags):
                p.requires_grad_(f)
