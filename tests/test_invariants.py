"""Invariants checked against numbers computed by hand: the EMA's rate and start, CycleGAN's cycle and identity
terms (and that they are what G minimises)."""
from __future__ import annotations

from itertools import chain

import pytest
import torch
from accelerate.state import AcceleratorState
from torch import nn

from i2i.build import build
from i2i.engine.trainer import Trainer
from i2i.models.base import PlainContext
from i2i.recipe import Recipe

from .conftest import tiny_cyclegan, tiny_pix2pix

EPS32 = torch.finfo(torch.float32).eps


def snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in chain(module.named_parameters(), module.named_buffers())}


def batch_of(dataset, n: int) -> dict[str, torch.Tensor]:
    items = [dataset[(i, i)] for i in range(n)]
    return {k: torch.stack([it[k] for it in items]) for k in items[0] if torch.is_tensor(items[0][k])}


@pytest.mark.parametrize("decay, start", [(0.75, 2), (0.9, 0)])
def test_ema_follows_the_live_weights_at_the_stated_rate(decay, start, paired_root, tmp_path):
    """No update before ``ema.start_step``; the first update starts the average at the live weights (torch's
    AveragedModel: W_0^EMA = W_0^model); every later one is ema = d * ema_prev + (1 - d) * live, for every
    floating parameter and buffer (use_buffers: batch-norm statistics are averaged too)."""
    recipe = Recipe.of({**tiny_pix2pix(paired_root, tmp_path / "run"), "ema": {"decay": decay, "start_step": start}},
                       "tiny")
    trainer = Trainer(recipe).prepare(threads=1)
    try:
        _check_ema(trainer, decay, start)
    finally:
        AcceleratorState._reset_state()  # as Trainer.fit leaves it: a later Accelerator may choose another precision


def _check_ema(trainer: Trainer, decay: float, start: int) -> None:
    assert list(trainer.emas) == ["g"]  # pix2pix exports g
    ema, live = trainer.emas["g"], trainer.accelerator.unwrap_model(trainer.model.nets["g"])
    initial = snapshot(ema.module)
    batch = batch_of(trainer.parts.dataset, 2)
    # integer buffers (num_batches_tracked) are left out: AveragedModel stores int(d * prev + (1 - d) * live) there
    floating = [k for k, v in initial.items() if v.is_floating_point()]
    assert any("running_mean" in k for k in floating)  # the buffers are part of the check
    for step in range(start + 3):
        previous = snapshot(ema.module)
        trainer.step(batch)
        now, weights = snapshot(ema.module), snapshot(live)
        if step < start:
            assert all(torch.equal(now[k], initial[k]) for k in now), f"EMA updated at step {step} < start_step"
            assert int(ema.n_averaged) == 0
            continue
        assert int(ema.n_averaged) == step - start + 1
        if step == start:
            different = [k for k in floating if not torch.equal(now[k], weights[k])]
            assert not different, f"step {step}: the first update must copy the live weights: {different[:4]}"
            continue
        moved = sum(int((previous[k] != weights[k]).sum()) for k in floating)
        assert moved > 0.5 * sum(previous[k].numel() for k in floating)  # the rate is visible in most elements
        for k in floating:
            prev, w = previous[k].double(), weights[k].double()
            expected = decay * prev + (1 - decay) * w
            # float32 rounding of the result and of the blend: a few ulps of the larger operand
            tolerance = 4 * EPS32 * torch.maximum(prev.abs(), w.abs()) + 1e-30
            error = (now[k].double() - expected).abs()
            assert bool((error <= tolerance).all()), (
                f"step {step} {k}: EMA off the rate {decay} by up to {float((error / tolerance).max()):.1f}x "
                f"the rounding tolerance")


class RecordingContext(PlainContext):
    """PlainContext that keeps each loss it is asked to minimise."""

    def __init__(self, model, **kwargs):
        super().__init__(model, **kwargs)
        self.losses: list[tuple[str | tuple, torch.Tensor]] = []

    def update(self, group, loss):
        self.losses.append((group, loss.detach()))
        super().update(group, loss)


def test_cyclegan_cycle_and_identity_terms_equal_hand_computed_values(unpaired_root, tmp_path):
    data = tiny_cyclegan(unpaired_root, tmp_path / "run")
    data["losses"]["identity"]["weight"] = 3.0  # unlike the cycle weight and its usual half: a swap shows
    recipe = Recipe.of(data, "tiny")
    torch.manual_seed(0)
    parts = build(recipe)
    model = parts.model
    batch = batch_of(parts.dataset, 2)
    before = {n: snapshot(net) for n, net in model.nets.items()}
    ctx = RecordingContext(model, lr=0.0)  # nothing moves: the nets below are the ones g_step used
    logs = model.g_step(batch, model.generate(batch), ctx)
    assert all(torch.equal(v, before[n][k]) for n, net in model.nets.items() for k, v in snapshot(net).items())

    w_cycle, w_identity = (recipe["losses"][k]["weight"] for k in ("cycle", "identity"))
    g_ab, g_ba, d_a, d_b = (model.nets[n] for n in ("g_ab", "g_ba", "d_a", "d_b"))
    a, b = batch["real_a"], batch["real_b"]

    def l1(x, y):
        return (x.double() - y.double()).abs().mean()

    with torch.no_grad():
        fake_b, fake_a = g_ab(a), g_ba(b)
        cycle = w_cycle * (l1(g_ba(fake_b), a) + l1(g_ab(fake_a), b))
        identity = w_identity * (l1(g_ab(b), b) + l1(g_ba(a), a))
        adv = ((d_b(fake_b).double() - 1) ** 2).mean() + ((d_a(fake_a).double() - 1) ** 2).mean()  # lsgan, G side
    assert set(logs) == {"g/adv", "g/cycle", "g/identity"}
    for name, value in (("g/cycle", cycle), ("g/identity", identity), ("g/adv", adv)):
        torch.testing.assert_close(logs[name].double(), value, rtol=1e-6, atol=0, msg=lambda m, n=name: f"{n}: {m}")
    # and they are what G minimises: one update of group g, with their sum
    assert [g for g, _ in ctx.losses] == ["g"]
    torch.testing.assert_close(ctx.losses[0][1].double(), adv + cycle + identity, rtol=1e-6, atol=0)
