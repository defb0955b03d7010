"""DCGAN generator / discriminators, the ACGAN-InfoGAN auxiliary D and the evaluation classifier."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

import i2i.nets  # noqa: F401  (registers the built-in nets)
from i2i.errors import RecipeError
from i2i.nets import AuxDiscriminator, DCGANDiscriminator, DCGANGenerator, ImageClassifier
from i2i.registry import NETS

TINY = {"base_channels": 4}


def _differ(a: torch.Tensor, b: torch.Tensor) -> bool:
    return (a - b).abs().max().item() > 1e-6


@pytest.mark.parametrize("size", [28, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes(size: int, channels: int) -> None:
    torch.manual_seed(0)
    for upsample in ("transposed", "resize"):
        g = DCGANGenerator(z_dim=8, num_classes=3, out_channels=channels, size=size, upsample=upsample, **TINY)
        img = g(torch.randn(2, 8) * 3, torch.tensor([0, 2]))
        assert img.shape == (2, channels, size, size) and img.min() >= -1 and img.max() <= 1
    x = torch.rand(2, channels, size, size) * 2 - 1
    assert DCGANDiscriminator(in_channels=channels, size=size, **TINY)(x).shape == (2, 1)
    out = AuxDiscriminator(in_channels=channels, size=size, num_classes=5, **TINY)(x)
    assert out["adv"].shape == (2, 1) and out["class"].shape == (2, 5)


def test_other_sizes_and_unsupported_sizes() -> None:
    for size in (16, 56, 112):
        assert DCGANGenerator(z_dim=8, size=size, **TINY)(torch.randn(2, 8)).shape[-1] == size
        assert DCGANDiscriminator(size=size, **TINY)(torch.zeros(2, 1, size, size)).shape == (2, 1)
    for cls in (DCGANGenerator, DCGANDiscriminator, AuxDiscriminator):
        for size in (30, 24, 14, 8):
            with pytest.raises(ValueError, match="28, 32"):
                cls(size=size, **TINY)
        with pytest.raises(RecipeError) as err:
            NETS.check({"type": cls.registered_name, "size": 30}, key="nets.g")
        assert err.value.key == "nets.g.size" and "32" in err.value.choices
        NETS.check({"type": cls.registered_name, "size": 28}, key="nets.g")
        assert cls.size_multiple() == 1 and cls.min_size() == 32 and cls.min_size(size=64) == 64


def test_recipe_checks_of_codes_and_conditioning() -> None:
    for name in ("dcgan_generator", "aux_discriminator"):
        with pytest.raises(RecipeError) as err:
            NETS.check({"type": name, "cat_codes": [10, 1]}, key="g")
        assert err.value.key == "g.cat_codes"
    with pytest.raises(RecipeError, match="cont_codes"):
        NETS.check({"type": "aux_discriminator", "cont_logvar": True}, key="d")
    with pytest.raises(RecipeError) as err:
        NETS.check({"type": "dcgan_discriminator", "conditioning": "concat"}, key="d")
    assert err.value.key == "d.num_classes"
    with pytest.raises(RecipeError):
        NETS.check({"type": "dcgan_generator", "label_mode": "film"}, key="g")
    with pytest.raises(ValueError):
        DCGANGenerator(cat_codes=[1])
    with pytest.raises(ValueError):
        DCGANDiscriminator(conditioning="projection")


@pytest.mark.parametrize("label_mode", ["embedding", "onehot"])
def test_labels_change_the_generator(label_mode: str) -> None:
    torch.manual_seed(0)
    g = DCGANGenerator(z_dim=8, num_classes=4, label_mode=label_mode, **TINY).eval()
    z = torch.randn(1, 8).repeat(4, 1)
    img = g(z, torch.arange(4))
    assert all(_differ(img[i], img[j]) for i in range(4) for j in range(i))
    assert torch.allclose(g(z[:1], torch.tensor([2])), img[2:3], atol=1e-6)  # per-sample in eval mode
    with pytest.raises(ValueError, match="needs y"):
        g(z)


def test_codes_change_the_generator() -> None:
    torch.manual_seed(0)
    g = DCGANGenerator(z_dim=8, cat_codes=[3, 2], cont_codes=2, **TINY).eval()
    assert g.code_dim == 7 and g.cat_codes == [3, 2] and g.num_classes == 0
    z = torch.randn(1, 8).repeat(2, 1)
    base = torch.cat([F.one_hot(torch.tensor([0, 0]), 3), F.one_hot(torch.tensor([1, 1]), 2),
                      torch.zeros(2, 2)], 1).float()
    for change in (lambda c: c[1, :3].copy_(torch.tensor([0.0, 1, 0])),   # first categorical code
                   lambda c: c[1, 3:5].copy_(torch.tensor([1.0, 0])),     # second categorical code
                   lambda c: c[1, 6].fill_(1.0)):                         # a continuous code
        c = base.clone()
        change(c)
        img = g(z, None, c)
        assert _differ(img[0], img[1])
    with pytest.raises(ValueError, match="codes c"):
        g(z)
    with pytest.raises(ValueError, match=r"\(B, 7\)"):
        g(z, None, base[:, :5])
    with pytest.raises(ValueError, match="y"):
        g(z, torch.tensor([0, 1]), base)  # an unconditional G refuses labels rather than ignoring them


def test_dcgan_reference_architecture() -> None:
    g, d = DCGANGenerator(size=64, out_channels=3), DCGANDiscriminator(in_channels=3, size=64)
    assert g.project.out_features == 512 * 4 * 4  # ngf * 8 at 4x4, as in the DCGAN reference
    ups = [m for m in g.body if isinstance(m, nn.ConvTranspose2d)]
    assert [m.out_channels for m in ups] == [256, 128, 64, 3] and isinstance(g.body[-1], nn.Tanh)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in g.modules()) == 4  # all but the output layer
    convs = [m for m in d.trunk if isinstance(m, nn.Conv2d)]
    assert [m.out_channels for m in convs] == [64, 128, 256, 512] and d.linear.in_features == 512 * 4 * 4
    assert not isinstance(d.trunk[1], nn.BatchNorm2d) and sum(isinstance(m, nn.BatchNorm2d) for m in d.modules()) == 3
    assert DCGANGenerator(size=28).project.out_features == 128 * 7 * 7
    big = [m.weight for m in g.modules() if isinstance(m, nn.ConvTranspose2d) and m.weight.numel() > 10000]
    assert all(abs(w.std().item() - 0.02) < 0.002 for w in big)


@pytest.mark.parametrize("conditioning", ["concat", "projection"])
def test_conditioned_discriminator_uses_the_label(conditioning: str) -> None:
    torch.manual_seed(0)
    d = DCGANDiscriminator(num_classes=4, conditioning=conditioning, **TINY).eval()
    if conditioning == "concat":
        assert d.trunk[0].in_channels == 1 + 4
    x = (torch.rand(1, 1, 32, 32) * 2 - 1).repeat(4, 1, 1, 1)
    logits = d(x, torch.arange(4))
    assert logits.shape == (4, 1) and all(_differ(logits[i], logits[j]) for i in range(4) for j in range(i))
    with pytest.raises(ValueError, match="labels"):
        d(x)
    with pytest.raises(ValueError, match="labels"):
        DCGANDiscriminator(**TINY)(x, torch.arange(4))
    with pytest.raises(ValueError, match="32x32"):
        d(torch.zeros(4, 1, 28, 28), torch.arange(4))


@pytest.mark.parametrize("kwargs,keys", [
    ({}, {"adv"}),
    ({"num_classes": 10}, {"adv", "class"}),                                          # ACGAN
    ({"cat_codes": [10], "cont_codes": 2}, {"adv", "cat", "cont_mu"}),                # InfoGAN
    ({"num_classes": 3, "cat_codes": [10, 4], "cont_codes": 3, "cont_logvar": True},
     {"adv", "class", "cat", "cont_mu", "cont_logvar"}),
])
def test_aux_discriminator_heads(kwargs: dict, keys: set) -> None:
    d = AuxDiscriminator(**TINY, **kwargs)
    out = d(torch.rand(3, 1, 32, 32) * 2 - 1)
    assert set(out) == keys and out["adv"].shape == (3, 1)
    if "class" in keys:
        assert out["class"].shape == (3, kwargs["num_classes"])
    if "cat" in keys:
        assert isinstance(out["cat"], list) and [t.shape for t in out["cat"]] == [(3, k) for k in kwargs["cat_codes"]]
    for name in ("cont_mu", "cont_logvar"):
        if name in keys:
            assert out[name].shape == (3, kwargs["cont_codes"])
    # raw logits: no softmax / sigmoid anywhere (PyTorch-GAN issues #141, #150)
    assert not any(isinstance(m, (nn.Softmax, nn.LogSoftmax, nn.Sigmoid, nn.Softmin)) for m in d.modules())
    if "class" in keys:
        assert not torch.allclose(out["class"].exp().sum(1), torch.ones(3))


@pytest.mark.parametrize("cls,kwargs", [(DCGANDiscriminator, {"num_classes": 3, "conditioning": "projection"}),
                                        (AuxDiscriminator, {"num_classes": 3, "cat_codes": [3], "cont_codes": 1})])
def test_spectral_norm(cls: type, kwargs: dict) -> None:
    def wrapped(net: nn.Module) -> list[bool]:
        return [parametrize.is_parametrized(m, "weight") for m in net.modules()
                if isinstance(m, (nn.Conv2d, nn.Linear))]
    plain, sn = cls(**TINY, **kwargs), cls(spectral_norm=True, norm="none", **TINY, **kwargs)
    assert wrapped(plain) and not any(wrapped(plain))
    assert all(wrapped(sn)) and len(wrapped(sn)) == len(wrapped(plain))
    out = sn(*sn.example_inputs())
    assert torch.isfinite(out if isinstance(out, torch.Tensor) else out["adv"]).all()


def test_classifier_shapes() -> None:
    net = ImageClassifier(in_channels=3, num_classes=7, **TINY, feature_dim=16)
    for size in (8, 28, 32, 50):
        x = torch.rand(2, 3, size, size) * 2 - 1
        assert net(x).shape == (2, 7) and net.features(x).shape == (2, 16)
    assert ImageClassifier.min_size() == 8 and ImageClassifier.size_multiple() == 1
    with pytest.raises(ValueError, match=">= 8"):
        net(torch.zeros(2, 3, 7, 32))
    (x,) = net.example_inputs(batch=3, size=4)
    assert x.shape == (3, 3, 8, 8)


def test_classifier_can_overfit_a_batch() -> None:
    torch.manual_seed(0)
    net = ImageClassifier(num_classes=10, base_channels=8, feature_dim=32)
    x, y = torch.rand(16, 1, 28, 28) * 2 - 1, torch.randint(0, 10, (16,))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(100):
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
    with torch.no_grad():
        assert (net.eval()(x).argmax(1) == y).all()


def test_registered_with_smoke_args() -> None:
    names = {"dcgan_generator", "dcgan_discriminator", "aux_discriminator", "image_classifier"}
    assert names <= set(NETS.names())
    for name in names:
        cls = NETS.get(name)
        NETS.check({"type": name, **cls.smoke_args}, key="n")
        net = cls(**cls.smoke_args)
        assert net(*net.example_inputs(batch=2)) is not None


def test_discriminator_dropout_is_active_only_in_training():
    from i2i.nets.dcgan import AuxDiscriminator, DCGANDiscriminator
    for net in (AuxDiscriminator(base_channels=4, num_classes=3, dropout=0.5),
                DCGANDiscriminator(base_channels=4, num_classes=3, conditioning="concat", dropout=0.5)):
        assert sum(isinstance(m, torch.nn.Dropout2d) for m in net.modules()) == 3
        x = net.example_inputs(4)
        first = net(*x)
        first = first["adv"] if isinstance(first, dict) else first
        second = net(*x)
        second = second["adv"] if isinstance(second, dict) else second
        assert not torch.equal(first, second)
        net.eval()
        a, b = net(*x), net(*x)
        a, b = (a["adv"], b["adv"]) if isinstance(a, dict) else (a, b)
        assert torch.equal(a, b)


def test_multiply_label_mode_ties_the_label_to_z():
    from i2i.nets.dcgan import DCGANGenerator
    g = DCGANGenerator(z_dim=8, num_classes=3, label_mode="multiply", base_channels=8).eval()
    z = torch.randn(2, 8)
    a, b = g(z, torch.tensor([0, 0])), g(z, torch.tensor([1, 1]))
    assert not torch.allclose(a, b)  # the label matters
    zero = torch.zeros(2, 8)
    assert torch.allclose(g(zero, torch.tensor([0, 0])), g(zero, torch.tensor([2, 2])))  # only through z
    assert g.project.in_features == 8  # nothing concatenated
