"""Every adversarial mode and stabiliser against hand computations: values, gradients, penalties, statistics."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from i2i.errors import RecipeError
from i2i.losses import ADVERSARIAL_MODES, AdversarialLoss


def sp(x: float) -> float:
    return math.log1p(math.exp(x))


def mean(xs):
    return sum(xs) / len(xs)


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def log_softmax_all(xs):
    """log of the softmax over every listed output (Softmax GAN: the batch's real and fake outputs together)."""
    log_z = math.log(sum(math.exp(x) for x in xs))
    return [x - log_z for x in xs]


R, F_ = [2.0, -1.0, 0.5], [0.5, -3.0, 1.0]
mr, mf = mean(R), mean(F_)

# (mode, expected G loss, expected D loss) written out from the papers' formulas
CASES = {
    "vanilla": (mean([sp(-f) for f in F_]), 0.5 * (mean([sp(-r) for r in R]) + mean([sp(f) for f in F_]))),
    "minimax": (mean([-sp(f) for f in F_]), 0.5 * (mean([sp(-r) for r in R]) + mean([sp(f) for f in F_]))),
    "lsgan": (mean([(f - 1) ** 2 for f in F_]), 0.5 * (mean([(r - 1) ** 2 for r in R]) + mean([f ** 2 for f in F_]))),
    "wgan": (-mf, mf - mr),
    "hinge": (-mf, mean([max(0, 1 - r) for r in R]) + mean([max(0, 1 + f) for f in F_])),
    "softplus": (mean([sp(-f) for f in F_]), mean([sp(-r) for r in R]) + mean([sp(f) for f in F_])),
    "rsgan": (mean([sp(-(f - r)) for f, r in zip(F_, R)]), mean([sp(-(r - f)) for r, f in zip(R, F_)])),
    "ragan": (0.5 * (mean([sp(r - mf) for r in R]) + mean([sp(-(f - mr)) for f in F_])),
              0.5 * (mean([sp(-(r - mf)) for r in R]) + mean([sp(f - mr) for f in F_]))),
    "ralsgan": (0.5 * (mean([(f - mr - 1) ** 2 for f in F_]) + mean([(r - mf + 1) ** 2 for r in R])),
                0.5 * (mean([(r - mf - 1) ** 2 for r in R]) + mean([(f - mr + 1) ** 2 for f in F_]))),
    # BGAN: G 0.5 (log D - log(1 - D))^2 with D = sigmoid(logit); D is vanilla's
    "bgan": (mean([0.5 * (math.log(sigmoid(f)) - math.log(1 - sigmoid(f))) ** 2 for f in F_]),
             0.5 * (mean([sp(-r) for r in R]) + mean([sp(f) for f in F_]))),
    # Softmax GAN: cross-entropy of the softmax over all 6 outputs; D targets 1/3 on each real, 0 on fakes; G
    # targets 1/6 on every output
    "softmax": (-sum(lp / 6 for lp in log_softmax_all(R + F_)),
                -sum(lp / 3 for lp in log_softmax_all(R + F_)[:3])),
}


@pytest.mark.parametrize("mode", sorted(CASES))
def test_mode_values_match_hand_computation(mode):
    loss = AdversarialLoss(mode, weight=3.0)
    real, fake = torch.tensor(R), torch.tensor(F_)
    g_expected, d_expected = CASES[mode]
    assert loss.generator(fake, real).item() == pytest.approx(3.0 * g_expected, rel=1e-5)
    assert loss.discriminator(real, fake).item() == pytest.approx(d_expected, rel=1e-5)


def test_softmax_gan_counts_every_logit_of_a_patch_map():
    """A (B, 1, H, W) logit map: each patch is one sample of the softmax (|real| = B * H * W)."""
    real, fake = torch.tensor(R).view(1, 1, 1, 3), torch.tensor(F_).view(1, 1, 3, 1)
    g_expected, d_expected = CASES["softmax"]
    loss = AdversarialLoss("softmax")
    assert loss.generator(fake, real).item() == pytest.approx(g_expected, rel=1e-5)
    assert loss.discriminator(real, fake).item() == pytest.approx(d_expected, rel=1e-5)


def test_every_registered_mode_is_covered():
    assert set(ADVERSARIAL_MODES) == set(CASES) | {"wgan_gp", "wgan_div"}


BOUNDARY_SEEKING = {"bgan", "softmax"}  # G aims at D's boundary (D = 1/2, uniform softmax), not past it


def _g_grad(mode: str, real: list[float], fake: list[float]) -> float:
    fake_g = torch.tensor(fake, requires_grad=True)
    AdversarialLoss(mode).generator(fake_g, torch.tensor(real)).backward()
    return fake_g.grad.sum().item()


@pytest.mark.parametrize("mode", sorted(ADVERSARIAL_MODES))
def test_gradients_push_the_right_way(mode):
    """Where D is wrong (real logits low, fake high), D's loss falls when real logits rise or fake logits fall,
    and G's loss falls when fake logits rise (boundary-seeking modes: only while D rejects the fakes)."""
    R, F_ = [-0.5, -1.0, 0.2], [0.5, 0.8, 0.3]
    real = torch.tensor(R, requires_grad=True)
    fake = torch.tensor(F_, requires_grad=True)
    loss = AdversarialLoss(mode)
    loss.discriminator(real, fake).backward()
    assert real.grad.sum() < 0 and fake.grad.sum() > 0
    assert _g_grad(mode, [0.5, 1.0, 2.0], [-0.5, -0.8, -0.3]) < 0  # D rejects the fakes: G climbs
    if mode not in BOUNDARY_SEEKING:
        assert _g_grad(mode, R, F_) < 0


@pytest.mark.parametrize("mode", sorted(BOUNDARY_SEEKING))
def test_boundary_seeking_g_stops_at_the_boundary(mode):
    """BGAN's G is at rest where D(G(z)) = 1/2 and pulls back fakes past it; Softmax GAN's G is at rest where all
    outputs are equal and pulls back fakes above the real ones. Vanilla's G keeps pushing."""
    assert _g_grad(mode, [0.0, 0.0], [0.0, 0.0]) == pytest.approx(0.0, abs=1e-7)
    assert _g_grad(mode, [0.0, 0.0], [1.0, 2.0]) > 0
    assert _g_grad("vanilla", [0.0, 0.0], [1.0, 2.0]) < 0


def test_minimax_saturates_where_non_saturating_does_not():
    fake = torch.tensor([-10.0], requires_grad=True)
    AdversarialLoss("minimax").generator(fake).backward()
    assert fake.grad.abs().item() < 1e-3
    fake2 = torch.tensor([-10.0], requires_grad=True)
    AdversarialLoss("vanilla").generator(fake2).backward()
    assert fake2.grad.abs().item() > 0.99


def test_lsgan_abc_targets_and_label_smoothing():
    loss = AdversarialLoss("lsgan", real_label=1.0, fake_label=-1.0, g_target=0.0)
    real, fake = torch.tensor([1.0, 1.0]), torch.tensor([-1.0, -1.0])
    assert loss.discriminator(real, fake).item() == pytest.approx(0.0)
    assert loss.generator(torch.tensor([0.0])).item() == pytest.approx(0.0)
    smooth = AdversarialLoss("vanilla", label_smoothing=0.1)
    r = torch.tensor([0.3])
    expected = 0.5 * (0.9 * sp(-0.3) + 0.1 * sp(0.3) + sp(-5.0))
    assert smooth.discriminator(r, torch.tensor([-5.0])).item() == pytest.approx(expected, rel=1e-5)
    # G's target stays 1: smoothing is one-sided, D's real target only
    assert smooth.generator(r).item() == pytest.approx(sp(-0.3), rel=1e-5)


def test_relativistic_generator_needs_real_logits():
    with pytest.raises(ValueError, match="relativistic"):
        AdversarialLoss("ragan").generator(torch.tensor([0.0]))


class Linear(nn.Module):
    """D(x) = sum(w * x): its input gradient is w everywhere, so penalties have closed forms."""

    def __init__(self, w: float, n: int = 4):
        super().__init__()
        self.w = nn.Parameter(torch.full((n,), w))

    def forward(self, x):
        return (x.flatten(1) * self.w).sum(1, keepdim=True)


def test_gradient_penalty_r1_r2_closed_forms():
    real, fake = torch.randn(5, 4), torch.randn(5, 4)
    d = Linear(0.5)  # ||grad|| = sqrt(4 * 0.25) = 1
    base = AdversarialLoss("wgan", weight_clip=0)
    plain = base.d_loss(d, real, fake)[0].item()
    gp = AdversarialLoss("wgan_gp").d_loss(Linear(1.0), real, fake)[0].item()
    plain1 = base.d_loss(Linear(1.0), real, fake)[0].item()
    # ||grad|| = 2 -> (2 - 1)^2 = 1, times lambda 10
    assert gp - plain1 == pytest.approx(10.0, rel=1e-5)
    r1 = AdversarialLoss("wgan", weight_clip=0, r1=4.0).d_loss(d, real, fake)[0].item()
    assert r1 - plain == pytest.approx(0.5 * 4.0 * 1.0, rel=1e-5)
    r2 = AdversarialLoss("wgan", weight_clip=0, r2=2.0).d_loss(d, real, fake)[0].item()
    assert r2 - plain == pytest.approx(0.5 * 2.0 * 1.0, rel=1e-5)
    # WGAN-div: k/2 * E[||g_real||^p + ||g_fake||^p] with ||g|| = 2, k = 2, p = 6 -> 64 + 64
    div = AdversarialLoss("wgan_div").d_loss(Linear(1.0), real, fake)[0].item()
    assert div - plain1 == pytest.approx(0.5 * 2.0 * 128.0, rel=1e-5)


class Square(nn.Module):
    """D(x) = w/2 * sum(x^2): its input gradient at x is w * x, so the penalty depends on where it is taken."""

    def __init__(self, w: float = 1.0):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w))
        self.seen: list[torch.Tensor] = []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return 0.5 * self.w * x.flatten(1).pow(2).sum(1, keepdim=True)


def test_dragan_penalty_at_real_points_hand_value():
    """With no perturbation DRAGAN's points are the real images: lambda * mean((||x|| - 1)^2), fakes unused."""
    real = torch.tensor([[3.0, 4.0], [0.6, 0.8], [0.0, 0.5]])
    fake = torch.full((3, 2), 100.0)  # far away: would change the value if the penalty looked at fakes
    plain = AdversarialLoss("vanilla").d_loss(Square(), real, fake)[0].item()
    penalised = AdversarialLoss("vanilla", dragan=10.0, dragan_noise=0.0).d_loss(Square(), real, fake)[0].item()
    # ||x|| = 5, 1, 0.5 -> (4^2 + 0^2 + 0.5^2) / 3
    assert penalised - plain == pytest.approx(10.0 * (16 + 0 + 0.25) / 3, rel=1e-5)


def test_dragan_perturbs_real_data_within_c_std():
    """Points x + a * c * std(x) * u (u, a in [0, 1)): each within [x, x + c * std(x)) of its real image, and
    the logged penalty is mean((||grad D|| - 1)^2) at exactly those points; its gradient reaches D's weights."""
    torch.manual_seed(0)
    real, fake = torch.randn(16, 8), torch.randn(16, 8)
    d = Square(0.7)
    loss = AdversarialLoss("vanilla", dragan=10.0, dragan_noise=0.5)
    total = loss.d_loss(d, real, fake)[0]
    points = d.seen[-1]  # D's last call: the penalty's points
    shift = points - real
    assert (shift >= 0).all() and (shift < 0.5 * real.std()).all() and shift.abs().max() > 0.05
    expected = ((0.7 * points).norm(dim=1) - 1).pow(2).mean()
    assert loss.pop_stats()["dragan"].item() == pytest.approx(expected.item(), rel=1e-5)
    total.backward()
    assert d.w.grad is not None and d.w.grad.abs() > 0


@pytest.mark.parametrize("mode", sorted(ADVERSARIAL_MODES))
def test_dragan_works_with_every_mode(mode):
    loss = AdversarialLoss(mode, dragan=10.0)
    value = loss.d_loss(Square(), torch.randn(4, 3), torch.randn(4, 3))[0]
    assert torch.isfinite(value) and "dragan" in loss.pop_stats()


def test_penalties_train_d():
    """The penalty's gradient reaches D's weights (create_graph), pulling ||grad|| towards 1."""
    d = Linear(1.0)
    real, fake = torch.randn(8, 4), torch.randn(8, 4)
    loss = AdversarialLoss("wgan_gp", gradient_penalty=10.0)
    penalty_only = loss.d_loss(d, real, fake)[0] - AdversarialLoss("wgan", weight_clip=0).d_loss(d, real, fake)[0]
    penalty_only.backward()
    assert (d.w.grad > 0).all()  # shrinking w lowers ||grad|| = 2 towards 1


def test_weight_clip_default_for_wgan_and_constrain():
    assert AdversarialLoss("wgan").weight_clip == 0.01
    assert AdversarialLoss("wgan", weight_clip=0).weight_clip is None
    assert AdversarialLoss("wgan_gp").weight_clip is None
    p = torch.tensor([-1.0, 0.005, 2.0])
    AdversarialLoss("wgan").constrain([p])
    assert p.tolist() == pytest.approx([-0.01, 0.005, 0.01])


def test_instance_noise_anneals_and_reaches_d():
    loss = AdversarialLoss("vanilla", instance_noise=0.5, noise_anneal_steps=100)
    assert loss.noise_std() == 0.5
    loss.set_step(50)
    assert loss.noise_std() == pytest.approx(0.25)
    loss.set_step(200)
    assert loss.noise_std() == 0.0
    loss.set_step(0)
    seen = []
    loss.d_loss(lambda x: seen.append(x) or x.mean((1, 2, 3)), torch.zeros(2, 1, 4, 4), torch.zeros(2, 1, 4, 4))
    assert all(0.2 < float(x.std()) < 0.9 for x in seen)


def test_g_loss_calls_d_on_real_only_when_relativistic():
    calls = []

    def d(x):
        calls.append(x)
        return x.mean((1, 2, 3))
    real, fake = torch.ones(2, 1, 2, 2), torch.zeros(2, 1, 2, 2, requires_grad=True)
    AdversarialLoss("vanilla").g_loss(d, fake, real=real)
    assert len(calls) == 1
    loss, _ = AdversarialLoss("ragan").g_loss(d, fake, real=real)
    assert len(calls) == 3
    loss.backward()
    assert fake.grad is not None


def test_statistics_accuracy_and_wasserstein_estimate():
    loss = AdversarialLoss("vanilla")
    loss.d_loss(lambda x: x.flatten(1).mean(1), torch.tensor([[2.0], [3.0]]), torch.tensor([[-1.0], [1.0]]))
    stats = loss.pop_stats()
    assert stats["acc_real"].item() == 1.0 and stats["acc_fake"].item() == 0.5
    assert stats["out_real"].item() == pytest.approx(2.5) and stats["out_fake"].item() == pytest.approx(0.0)
    assert loss.pop_stats() == {}
    w = AdversarialLoss("wgan")
    w.d_loss(lambda x: x.flatten(1).mean(1), torch.tensor([[2.0], [3.0]]), torch.tensor([[-1.0], [1.0]]))
    assert w.pop_stats()["wdist"].item() == pytest.approx(2.5)


def test_multi_head_d_logits_picker():
    def d(x):
        return {"adv": x.flatten(1).mean(1), "class": x.flatten(1)}
    loss, real_out, _ = AdversarialLoss("hinge").d_loss(d, torch.ones(2, 3), -torch.ones(2, 3),
                                                              logits=lambda o: o["adv"])
    assert loss.item() == pytest.approx(0.0) and set(real_out) == {"adv", "class"}


@pytest.mark.parametrize("cfg, key", [
    ({"mode": "wgan", "label_smoothing": 0.1}, "losses.adv.label_smoothing"),
    ({"mode": "vanilla", "label_smoothing": 0.7}, "losses.adv.label_smoothing"),
    ({"mode": "vanilla", "r1": -1.0}, "losses.adv.r1"),
    ({"mode": "wgan_gp", "div_k": 2.0}, "losses.adv.div_k"),
    ({"mode": "wgan-gp"}, "losses.adv.mode"),
    ({"mode": "vanilla", "dragan": -10.0}, "losses.adv.dragan"),
    ({"mode": "softmax", "label_smoothing": 0.1}, "losses.adv.label_smoothing"),
])
def test_bad_stabiliser_config_names_the_key(cfg, key):
    with pytest.raises(RecipeError) as err:
        AdversarialLoss.check_config(cfg, key="losses.adv", file="r.yaml")
    assert key in str(err.value)
