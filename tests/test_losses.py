"""Adversarial and pixel losses against hand computations."""
from __future__ import annotations

import math

import pytest
import torch

from i2i.losses import AdversarialLoss, L1Loss


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def test_vanilla_matches_hand_computation():
    loss = AdversarialLoss("vanilla")
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    # non-saturating G: -log sigmoid(f) = softplus(-f)
    assert loss.generator(fake).item() == pytest.approx((softplus(-0.5) + softplus(3.0)) / 2, rel=1e-6)
    d = 0.5 * ((softplus(-2.0) + softplus(1.0)) / 2 + (softplus(0.5) + softplus(-3.0)) / 2)
    assert loss.discriminator(real, fake).item() == pytest.approx(d, rel=1e-6)


def test_lsgan_matches_hand_computation_and_weight_scales_g_only():
    loss = AdversarialLoss("lsgan", weight=2.0)
    real, fake = torch.tensor([0.5, 1.5]), torch.tensor([0.2, -0.4])
    assert loss.generator(fake).item() == pytest.approx(2.0 * ((0.8 ** 2 + 1.4 ** 2) / 2), rel=1e-6)
    d = 0.5 * ((0.5 ** 2 + 0.5 ** 2) / 2 + (0.2 ** 2 + 0.4 ** 2) / 2)
    # the weight is G's: D has its own optimizer and an unweighted loss (as BasicSR)
    assert loss.discriminator(real, fake).item() == pytest.approx(d, rel=1e-6)


def test_label_values_and_multiscale_lists():
    loss = AdversarialLoss("lsgan", real_label=0.9, fake_label=0.1)
    a, b = torch.full((1, 1, 2, 2), 0.9), torch.full((1, 1, 4, 4), 0.1)
    assert loss.discriminator([a, a], [b, b]).item() == pytest.approx(0.0, abs=1e-7)
    assert loss.generator([b, b]).item() == pytest.approx(2 * 0.8 ** 2, rel=1e-6)


def test_generator_gradient_is_non_saturating():
    # where D confidently rejects fakes, the minimax loss log(1 - D) has a vanishing gradient; ours must not
    fake = torch.tensor([-10.0], requires_grad=True)
    AdversarialLoss("vanilla").generator(fake).backward()
    assert fake.grad.abs().item() > 0.99


def test_l1_owns_its_weight():
    a, b = torch.zeros(2, 3, 4, 4), torch.full((2, 3, 4, 4), 0.5)
    assert L1Loss(weight=10.0)(a, b).item() == pytest.approx(5.0)


def test_unknown_mode_raises():
    with pytest.raises(ValueError, match="unknown adversarial mode 'wgan_xx'; valid: .*hinge, lsgan, minimax"):
        AdversarialLoss("wgan_xx")
