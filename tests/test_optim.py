"""Optimizer construction: the fused Adam kernel by default, and what a recipe says wins."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from i2i.losses.latent import KLLoss
from i2i.optim import build_optimizer


def _params():
    torch.manual_seed(0)
    return list(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, 1, 3)).parameters())


@pytest.mark.parametrize("kind", ["adam", "adamw"])
def test_adam_is_fused_on_cpu_and_matches_the_loop(kind):
    cfg = {"type": kind, "lr": 1e-2, "betas": [0.5, 0.999]}
    fused_params, loop_params = _params(), _params()
    fused = build_optimizer(cfg, fused_params, key="optim.g", file=None)
    loop = build_optimizer({**cfg, "foreach": False}, loop_params, key="optim.g", file=None)
    assert fused.param_groups[0]["fused"] is True and not fused.param_groups[0]["foreach"]
    assert loop.param_groups[0]["foreach"] is False and not loop.param_groups[0]["fused"]
    for _ in range(5):
        for params, opt in ((fused_params, fused), (loop_params, loop)):
            opt.zero_grad()
            sum((p * (torch.arange(p.numel()) + 1.0).view_as(p)).sum() for p in params).backward()
            opt.step()
    for a, b, start in zip(fused_params, loop_params, _params()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
        assert not torch.equal(a, start)  # the steps moved them


def test_recipe_choice_wins_and_non_float_falls_back():
    opt = build_optimizer({"type": "adam", "lr": 1e-3, "foreach": True}, _params(), key="optim.g", file=None)
    assert opt.param_groups[0]["foreach"] is True and not opt.param_groups[0]["fused"]
    half = [nn.Parameter(torch.zeros(3, dtype=torch.float64))]
    assert build_optimizer({"type": "adam", "lr": 1e-3}, half, key="optim.g", file=None).param_groups[0]["fused"]
    rms = build_optimizer({"type": "rmsprop", "lr": 1e-3}, _params(), key="optim.g", file=None)
    assert "fused" not in rms.param_groups[0] or not rms.param_groups[0]["fused"]


def test_kl_loss_matches_the_closed_form():
    mu = torch.tensor([[0.5, -1.0], [0.0, 2.0]])
    logvar = torch.tensor([[0.0, 0.3], [-0.5, 0.1]])
    per_item = [sum(0.5 * (m ** 2 + torch.exp(v) - 1 - v) for m, v in zip(mu[i], logvar[i])) for i in range(2)]
    torch.testing.assert_close(KLLoss(weight=0.01)(mu, logvar), 0.01 * (per_item[0] + per_item[1]) / 2)
    assert float(KLLoss()(torch.zeros(3, 8), torch.zeros(3, 8))) == 0.0  # N(0, I) itself
