"""fp16 loss scaling in every update layout: the step context owns the GradScaler (PyTorch's AMP recipe for several
models, losses and optimizers: scale each loss, unscale an optimizer before clipping its gradients, ``scaler.step``
each optimizer, ``scaler.update`` once per iteration). Driven on the CPU with CPU autocast and a CPU GradScaler;
Accelerate's own fp16 code (its backward, clip_grad_norm_, unscale_gradients and AcceleratedOptimizer) runs as it
does on CUDA, so a context that fell back on it would fail here."""
from __future__ import annotations

from collections import Counter

import pytest
import torch
from accelerate import Accelerator
from accelerate.optimizer import AcceleratedOptimizer
from accelerate.state import AcceleratorState
from accelerate.utils import DistributedType

from i2i.build import build, build_optimizers
from i2i.engine.context import TrainContext, raw_optimizer
from i2i.recipe import Recipe

from .conftest import tiny_bicyclegan, tiny_pix2pix
from .test_classic_gans import tiny
from .test_models import batch_of, changed, params

INIT_SCALE = 8.0  # small enough that no fp16 gradient of these tiny nets overflows by itself


class CountingScaler(torch.amp.GradScaler):
    """A CPU GradScaler that doubles the scale after every good iteration; counts its updates and records the
    optimizers it steps (it decides itself whether a step runs: fused Adam is always called and skips inside)."""

    def __init__(self):
        super().__init__("cpu", init_scale=INIT_SCALE, growth_interval=1)
        self.updates, self.stepped = 0, []

    def update(self, new_scale=None):
        self.updates += 1
        super().update(new_scale)

    def step(self, optimizer, *args, **kwargs):
        self.stepped.append(optimizer)
        return super().step(optimizer, *args, **kwargs)


class Fp16Accelerator:
    """Accelerate's own fp16 methods as they run on CUDA (``backward`` scales the loss; ``clip_grad_norm_`` unscales
    every prepared optimizer through ``scaler``), on the CPU. The step context must not need them."""

    distributed_type = DistributedType.NO
    native_amp, mixed_precision, gradient_accumulation_steps = True, "fp16", 1
    backward = Accelerator.backward
    clip_grad_norm_ = Accelerator.clip_grad_norm_
    unscale_gradients = Accelerator.unscale_gradients
    _clip_grad_norm_dtensor_aware = Accelerator._clip_grad_norm_dtensor_aware

    def __init__(self, scaler: torch.amp.GradScaler, optimizers):
        self.scaler, self._optimizers = scaler, list(optimizers)

    @staticmethod
    def unwrap_model(module):
        return module


@pytest.fixture(autouse=True)
def accelerate_state():
    """AcceleratedOptimizer reads Accelerate's process state: a CPU one, cleared afterwards as the trainer does."""
    Accelerator(cpu=True)
    yield
    AcceleratorState._reset_state()


class Rig:
    """A model, its optimizers wrapped as ``accelerator.prepare`` wraps them for fp16 on CUDA, and the context."""

    def __init__(self, recipe: dict, *, grad_clip: float | None = None, batch: int = 2, **schedule):
        torch.manual_seed(0)
        recipe = Recipe.of(recipe, "tiny")
        self.parts = parts = build(recipe)
        self.model = model = parts.model
        self.scaler = CountingScaler()
        self.optimizers = {g: AcceleratedOptimizer(o, device_placement=False, scaler=self.scaler)
                           for g, o in build_optimizers(recipe, model).items()}
        self.group_of = {id(raw_optimizer(o)): g for g, o in self.optimizers.items()}
        self.stepped: Counter = Counter()  # groups whose optimizer went through scaler.step in the last step
        self.constrained = 0
        constraints = tuple(loss for loss in parts.losses.values() if getattr(loss, "weight_clip", None))
        for c in constraints:
            constrain = c.constrain

            def counted(params, constrain=constrain):
                self.constrained += 1
                constrain(params)
            c.constrain = counted
        self.ctx = TrainContext(
            Fp16Accelerator(self.scaler, self.optimizers.values()), model.nets, self.optimizers, model.optim_groups,
            grad_clip, scaler=self.scaler, schedule={"n_critic": 1, "g_steps": 1, "d_warmup_steps": 0, **schedule},
            critic_groups=model.critic_groups, constraints=constraints)
        self.ctx.measure = True
        self.batch = batch_of(parts, batch)

    def step(self, step: int, *, inf_in: str | None = None) -> set[str]:
        """One training step as ``Trainer.step`` runs it (autocast, train_step, one ``end_step``); ``inf_in``: a
        net whose gradients become inf in every backward that reaches it. Returns the nets whose weights moved."""
        nets = list(self.model.nets)
        before = params(self.model, nets)
        hook = None
        if inf_in:
            hook = next(self.model.nets[inf_in].parameters()).register_hook(lambda g: torch.full_like(g, float("inf")))
        self.ctx.step = step
        self.scaler.stepped.clear()
        try:
            with torch.autocast("cpu", dtype=torch.float16):
                self.model.train_step(self.batch, self.ctx)
            self.ctx.end_step()
        finally:
            if hook is not None:
                hook.remove()
        self.stepped = Counter(self.group_of[id(o)] for o in self.scaler.stepped)
        return {k.split(".")[0] for k in changed(before, self.model, nets)}

    def check_clipped(self, groups) -> None:
        """Each stepped group's gradients (left in place after its step) are the true ones clipped to grad_clip:
        unscaled before clipping, and the measured norm is the true norm."""
        clip = self.ctx.grad_clip
        for g in groups:
            grads = [p.grad for n in self.model.optim_groups[g] for p in self.model.nets[n].parameters()
                     if p.grad is not None]
            post = float(torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads))))
            measured = float(self.ctx.grad_norms[g])
            assert post <= clip * 1.001, (g, post)
            assert post == pytest.approx(min(clip, measured), rel=1e-3), (g, post, measured)


def layout(name: str, request, tmp_path, grad_clip) -> tuple[Rig, list[set[str]]]:
    """(rig, the groups each step updates): pix2pix's D then G; BicycleGAN's G+E from one loss, then D and D2;
    the WGAN critic's loop (train.n_critic: 3, weight clipping)."""
    out = tmp_path / "run"
    if name == "sequential":
        return Rig(tiny_pix2pix(request.getfixturevalue("paired_root"), out), grad_clip=grad_clip), [{"d", "g"}] * 3
    if name == "joint":
        return (Rig(tiny_bicyclegan(request.getfixturevalue("paired_root"), out), grad_clip=grad_clip, batch=4),
                [{"g", "e", "d", "d2"}] * 3)
    r = tiny("wgan", request.getfixturevalue("digits_root"), out)
    return Rig(r, grad_clip=grad_clip, batch=4, n_critic=3), [{"d", "g"}, {"d"}, {"d"}, {"d", "g"}]


@pytest.mark.parametrize("grad_clip", [None, 0.05], ids=["noclip", "clip"])
@pytest.mark.parametrize("name", ["sequential", "joint", "n_critic"])
def test_every_group_steps_and_the_scale_updates_once_per_step(name, grad_clip, request, tmp_path):
    rig, plans = layout(name, request, tmp_path, grad_clip)
    for step, plan in enumerate(plans):
        scale, updates = rig.scaler.get_scale(), rig.scaler.updates
        moved = rig.step(step)
        assert rig.scaler.updates == updates + 1, f"step {step}: {rig.scaler.updates - updates} scaler updates"
        assert rig.scaler.get_scale() == scale * 2, f"step {step}: scale {scale} -> {rig.scaler.get_scale()}"
        assert rig.stepped == Counter(plan), f"step {step}: stepped {dict(rig.stepped)}, planned {plan}"
        assert moved == plan, f"step {step}: weights of {moved} moved, planned {plan}"
        assert all(not opt.step_was_skipped for opt in rig.optimizers.values())
        if grad_clip:
            rig.check_clipped(plan)


@pytest.mark.parametrize("grad_clip", [None, 0.05], ids=["noclip", "clip"])
@pytest.mark.parametrize("name, bad, plan", [("sequential", "d", {"d", "g"}), ("joint", "e", {"g", "e", "d", "d2"}),
                                             ("n_critic", "d", {"d", "g"})])
def test_inf_gradients_skip_that_step_and_halve_the_scale_once(name, bad, plan, grad_clip, request, tmp_path):
    rig, _ = layout(name, request, tmp_path, grad_clip)
    rig.step(0)
    scale = rig.scaler.get_scale()
    moved = rig.step(3 if name == "n_critic" else 1, inf_in=bad)  # n_critic: a step where G updates too
    assert rig.scaler.updates == 2 and rig.scaler.get_scale() == scale / 2
    assert rig.stepped == Counter(plan), dict(rig.stepped)  # every group to scaler.step, which skips the bad one
    assert moved == plan - {bad}, moved
    assert rig.optimizers[bad].step_was_skipped
    # the next good step grows the scale again, every group steps
    moved = rig.step(4 if name == "n_critic" else 2)
    assert rig.scaler.updates == 3 and rig.scaler.get_scale() == scale
    assert bad in moved and not rig.optimizers[bad].step_was_skipped


def test_critic_weight_clipping_waits_for_a_step_that_ran(request, tmp_path):
    rig, _ = layout("n_critic", request, tmp_path, None)
    d = rig.model.nets["d"]
    assert max(float(p.detach().abs().max()) for p in d.parameters()) > 0.01  # clipping would move these
    moved = rig.step(0, inf_in="d")
    assert moved == {"g"} and rig.constrained == 0, "the skipped critic step was weight-clipped"
    moved = rig.step(1)
    assert moved == {"d"} and rig.constrained == 1
    assert max(float(p.detach().abs().max()) for p in d.parameters()) <= 0.01 + 1e-7


def test_a_group_stepping_twice_closes_the_scalers_round_first(paired_root, tmp_path):
    """train.g_steps: 2 steps G twice in one training step; GradScaler allows one step per optimizer between
    updates, so the second G update updates the scale first (two updates in that step, never an error)."""
    rig = Rig(tiny_pix2pix(paired_root, tmp_path / "run"), grad_clip=0.05, g_steps=2)
    moved = rig.step(0)
    assert rig.stepped == Counter({"d": 1, "g": 2}) and moved == {"d", "g"}
    assert rig.scaler.updates == 2 and rig.scaler.get_scale() == INIT_SCALE * 4
    rig.check_clipped(["g"])


class RecordingAccelerator:
    def __init__(self):
        self.calls: list[str] = []

    def backward(self, loss):
        self.calls.append("backward")
        loss.backward()

    def clip_grad_norm_(self, parameters, max_norm):
        self.calls.append("clip")
        return torch.nn.utils.clip_grad_norm_(parameters, max_norm)

    @staticmethod
    def unwrap_model(module):
        return module


@pytest.mark.parametrize("scaler", [None, "disabled"])
def test_without_a_scaler_accelerate_does_backward_and_clipping(scaler, paired_root, tmp_path):
    recipe = Recipe.of(tiny_pix2pix(paired_root, tmp_path / "run"), "tiny")
    parts = build(recipe)
    model, accelerator = parts.model, RecordingAccelerator()
    scaler = torch.amp.GradScaler("cpu", enabled=False) if scaler else None
    ctx = TrainContext(accelerator, model.nets, build_optimizers(recipe, model), model.optim_groups, 1.0,
                       scaler=scaler)
    assert ctx.scaler is None
    model.train_step(batch_of(parts), ctx)
    ctx.end_step()
    assert accelerator.calls == ["backward", "clip", "backward", "clip"]


def test_trainer_step_updates_the_scale_once(paired_root, tmp_path):
    """The trainer's wiring: Trainer.step ends each step with the context's one scaler update (here fp32 on the CPU,
    with a CPU scaler handed to its context; on CUDA fp16 the context gets accelerator.scaler)."""
    from i2i.engine.trainer import Trainer
    threads = torch.get_num_threads()
    try:
        trainer = Trainer(Recipe.of(tiny_pix2pix(paired_root, tmp_path / "run", grad_clip=0.05), "tiny"))
        trainer.prepare(threads=threads)
        assert trainer.ctx.scaler is None  # Accelerate makes no scaler on the CPU
        trainer.ctx.scaler = scaler = CountingScaler()
        batches = iter(trainer._loader(0))
        for k in range(3):
            trainer.step(next(batches))
            assert scaler.updates == k + 1 and scaler.get_scale() == INIT_SCALE * 2 ** (k + 1)
    finally:
        torch.set_num_threads(threads)
