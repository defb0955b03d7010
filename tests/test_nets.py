"""Nets: every registered net runs forward/backward; shape, norm, init and dropout contracts of the built-ins."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import i2i.nets  # noqa: F401  (registers the built-in nets)
from i2i.nets import PatchGAN, PixelDiscriminator, ResnetGenerator, UNetGenerator
from i2i.registry import NETS

TINY = {"base_channels": 4}


def _tensors(out: object) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (list, tuple)):
        return [t for o in out for t in _tensors(o)]
    return []


@pytest.mark.parametrize("name", NETS.names())
def test_registered_net_forward_backward(name: str) -> None:
    torch.manual_seed(0)
    cls = NETS.get(name)
    net = cls(**cls.smoke_args)
    outputs = _tensors(net(*net.example_inputs()))
    assert outputs and all(torch.isfinite(t).all() for t in outputs)
    sum(t.float().mean() for t in outputs).backward()
    for pname, p in net.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and torch.isfinite(p.grad).all(), pname


def test_example_inputs_fit_the_contract() -> None:
    for cls in (ResnetGenerator, UNetGenerator, PatchGAN, PixelDiscriminator):
        net = cls(**cls.smoke_args)
        (x,) = net.example_inputs(batch=3, size=5)
        kwargs = cls.smoke_args
        assert x.shape[0] == 3 and x.shape[1] == net.in_channels and x.min() >= -1 and x.max() <= 1
        assert x.shape[-1] >= cls.min_size(**kwargs) and x.shape[-1] % cls.size_multiple(**kwargs) == 0


@pytest.mark.parametrize("blocks", [0, 1, 3])
@pytest.mark.parametrize("upsample", ["transposed", "resize"])
def test_resnet_keeps_size(blocks: int, upsample: str) -> None:
    for cin, cout in [(1, 3), (3, 1), (4, 4)]:
        net = ResnetGenerator(cin, cout, blocks=blocks, upsample=upsample, **TINY)
        for h, w in [(32, 32), (36, 44)]:
            y = net(torch.rand(2, cin, h, w) * 2 - 1)
            assert y.shape == (2, cout, h, w) and y.abs().max() <= 1


def test_resnet_min_size_and_bad_size() -> None:
    assert ResnetGenerator.size_multiple() == 4 and ResnetGenerator.min_size() == 8
    assert ResnetGenerator(**TINY, blocks=1)(torch.zeros(1, 3, 8, 12)).shape == (1, 3, 8, 12)
    for kwargs in ({"blocks": 1, "norm": "none"}, {"blocks": 0, "padding": "zeros"}):
        with pytest.raises((RuntimeError, ValueError)):  # reflect padding / instance norm of a 1x1 bottleneck
            ResnetGenerator(**TINY, **kwargs)(torch.zeros(1, 3, 4, 4))
    with pytest.raises(ValueError, match="divisible by 4"):
        ResnetGenerator(**TINY)(torch.zeros(1, 3, 30, 32))


@pytest.mark.parametrize("depth", range(1, 7))
def test_unet_keeps_size(depth: int) -> None:
    m = 2 ** depth
    assert UNetGenerator.size_multiple(depth=depth) == UNetGenerator.min_size(depth=depth) == m
    for upsample in ("transposed", "resize"):
        net = UNetGenerator(2, 3, depth=depth, upsample=upsample, **TINY)
        for h, w in [(m, m), (2 * m, 3 * m)]:
            assert net(torch.rand(2, 2, h, w) * 2 - 1).shape == (2, 3, h, w)


def test_unet_non_square_and_validation() -> None:
    assert UNetGenerator(depth=5, **TINY)(torch.rand(1, 3, 64, 128)).shape == (1, 3, 64, 128)
    assert UNetGenerator.size_multiple() == 256
    with pytest.raises(ValueError, match="depth"):
        UNetGenerator(depth=0)
    with pytest.raises(ValueError, match="divisible by 8"):
        UNetGenerator(depth=3, **TINY)(torch.zeros(2, 3, 32, 36))


def test_unet_reference_channels() -> None:
    net = UNetGenerator()  # pix2pix unet_256: 64-128-256-512 then 512s, 54.4M parameters
    assert [d[0].out_channels for d in net.downs] == [64, 128, 256, 512, 512, 512, 512, 512]
    assert round(sum(p.numel() for p in net.parameters()) / 1e6, 1) == 54.4


def _patchgan_out(n: int, layers: int) -> int:
    for stride in [2] * layers + [1, 1]:  # 4x4 convs with padding 1
        n = (n + 2 - 4) // stride + 1
    return n


@pytest.mark.parametrize("layers", [1, 2, 3, 4])
def test_patchgan_output_size_and_min_size(layers: int) -> None:
    net = PatchGAN(layers=layers, **TINY)
    for h, w in [(64, 64), (50, 77), (97, 64)]:
        assert net(torch.rand(2, 3, h, w)).shape == (2, 1, _patchgan_out(h, layers), _patchgan_out(w, layers))
    m = PatchGAN.min_size(layers=layers)
    assert _patchgan_out(m, layers) >= 1 and _patchgan_out(m - 1, layers) < 1
    assert net(torch.rand(2, 3, m, m)).shape[-2:] == (1, 1)
    assert net(torch.rand(2, 3, m, m + 5)).shape[-2:] == (1, _patchgan_out(m + 5, layers))
    with pytest.raises(RuntimeError):
        net(torch.rand(2, 3, m - 1, m - 1))


def test_patchgan_sizes() -> None:
    assert PatchGAN.min_size() == 24 and PatchGAN.min_size(layers=1) == 6 and PatchGAN.size_multiple() == 1
    assert PatchGAN()(torch.zeros(1, 3, 256, 256)).shape == (1, 1, 30, 30)
    with pytest.raises(ValueError):
        PatchGAN(layers=0)


def test_patchgan_receptive_field_is_70() -> None:
    torch.manual_seed(0)
    net = PatchGAN(layers=3, norm="none", **TINY).double()
    x = torch.rand(1, 3, 128, 128, dtype=torch.float64, requires_grad=True)
    net(x)[0, 0, 7, 7].backward()
    hit = x.grad.abs().sum(1)[0] > 0
    rows, cols = hit.any(1).nonzero().flatten(), hit.any(0).nonzero().flatten()
    assert rows[-1] - rows[0] + 1 == 70 and cols[-1] - cols[0] + 1 == 70
    assert hit.sum() == 70 * 70 and rows[0] > 0 and rows[-1] < 127  # the window lies inside the image


def test_pixel_discriminator_keeps_size() -> None:
    assert PixelDiscriminator.size_multiple() == PixelDiscriminator.min_size() == 1
    net = PixelDiscriminator(in_channels=6, **TINY)
    for h, w in [(1, 1), (7, 13), (32, 32)]:
        assert net(torch.rand(2, 6, h, w)).shape == (2, 1, h, w)


ALL_NETS = [(ResnetGenerator, {"blocks": 1}), (UNetGenerator, {"depth": 3}), (PatchGAN, {"layers": 2}),
            (PixelDiscriminator, {})]


@pytest.mark.parametrize("cls,kwargs", ALL_NETS)
@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
def test_norms_and_conv_bias(cls: type, kwargs: dict, norm: str) -> None:
    net = cls(norm=norm, **TINY, **kwargs)
    kinds = {type(m) for m in net.modules()}
    assert (nn.BatchNorm2d in kinds) == (norm == "batch") and (nn.InstanceNorm2d in kinds) == (norm == "instance")
    # a conv has no bias exactly when an affine norm follows it
    leaves = [m for m in net.modules() if not list(m.children())]
    convs = 0
    for m, nxt in zip(leaves, leaves[1:] + [None]):
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            convs += 1
            assert (m.bias is None) == isinstance(nxt, nn.BatchNorm2d)
    assert convs >= 3


@pytest.mark.parametrize("cls,kwargs", ALL_NETS)
def test_inits_differ(cls: type, kwargs: dict) -> None:
    weights = {}
    for init in ("normal", "xavier", "kaiming", "orthogonal"):
        torch.manual_seed(0)
        net = cls(init=init, **TINY, **kwargs)
        weights[init] = torch.cat([p.detach().flatten() for p in net.parameters()])
        assert torch.isfinite(weights[init]).all()
    inits = list(weights)
    for i, a in enumerate(inits):
        for b in inits[i + 1:]:
            assert not torch.allclose(weights[a], weights[b]), (a, b)


def test_normal_init_std() -> None:
    torch.manual_seed(0)
    net = ResnetGenerator(base_channels=32, blocks=1, init_gain=0.05)
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and m.weight.numel() > 4000:
            assert abs(m.weight.std().item() - 0.05) < 0.005 and abs(m.weight.mean().item()) < 0.005
            if m.bias is not None:
                assert (m.bias == 0).all()


def _dropouts(net: nn.Module) -> int:
    return sum(isinstance(m, nn.Dropout) for m in net.modules())


def test_unet_dropout_count() -> None:
    assert _dropouts(UNetGenerator(**TINY)) == 3
    assert [_dropouts(UNetGenerator(depth=d, **TINY)) for d in range(1, 7)] == [0, 0, 1, 2, 3, 3]
    assert _dropouts(UNetGenerator(depth=6, dropout_blocks=1, **TINY)) == 1
    assert _dropouts(UNetGenerator(depth=6, dropout=0.0, **TINY)) == 0
    # the dropped blocks are the ones right above the bottleneck
    net = UNetGenerator(depth=6, dropout_blocks=2, **TINY)
    assert [any(isinstance(m, nn.Dropout) for m in up) for up in net.ups] == [False] * 3 + [True, True, False]


def _two_runs(net: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(1)
    a = net(x)
    torch.manual_seed(2)
    return a, net(x)


def test_unet_dropout_is_the_noise() -> None:
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    a, b = _two_runs(UNetGenerator(depth=4, **TINY).train(), x)
    assert not torch.equal(a, b)
    a, b = _two_runs(UNetGenerator(depth=4, dropout=0.0, **TINY).train(), x)
    assert torch.equal(a, b)
    a, b = _two_runs(UNetGenerator(depth=4, **TINY).eval(), x)
    assert torch.equal(a, b)


def test_constructor_annotations_drive_recipe_checks() -> None:
    from i2i.errors import RecipeError
    NETS.check({"type": "resnet_generator", "norm": "none", "upsample": "resize", "padding": "zeros"}, key="g")
    for bad in ({"norm": "group"}, {"upsample": "bilinear"}, {"padding": "circular"}, {"blocks": 1.5},
                {"init": "uniform"}, {"ngf": 64}):
        with pytest.raises(RecipeError):
            NETS.check({"type": "resnet_generator", **bad}, key="g")
    with pytest.raises(RecipeError):
        NETS.check({"type": "unet_generator", "upsample": "pixelshuffle"}, key="g")
