"""BicycleGAN's nets: the U-Net with a latent code z, the (mu, logvar) encoders and the multi-scale PatchGAN."""
from __future__ import annotations

import pytest
import timm
import torch
from safetensors.torch import save_file
from torch import nn

from i2i.errors import RecipeError
from i2i.nets import (
    ConvEncoder,
    MultiScalePatchGAN,
    PatchGAN,
    ResNetEncoder,
    TimmEncoder,
    UNetGenerator,
)
from i2i.registry import NETS

TINY = {"base_channels": 4}
TIMM = "mobilenetv3_small_050"


def _downs_in_channels(net: UNetGenerator) -> list[int]:
    return [down[0].in_channels for down in net.downs]


def _differ(a: torch.Tensor, b: torch.Tensor) -> bool:
    return (a - b).abs().max().item() > 1e-6


# ---------------------------------------------------------------- U-Net with z
def test_unet_z_input_channels() -> None:
    # chans [4, 8, 16]: down i takes chans[i - 1] (3 at i == 0)
    assert _downs_in_channels(UNetGenerator(depth=3, **TINY)) == [3, 4, 8]
    assert _downs_in_channels(UNetGenerator(depth=3, z_dim=5, **TINY)) == [8, 4, 8]
    assert _downs_in_channels(UNetGenerator(depth=3, z_dim=5, z_injection="all", **TINY)) == [8, 9, 13]
    # the decoder gets no z
    ups = [UNetGenerator(depth=3, z_dim=z, z_injection="all", **TINY).ups for z in (0, 5)]
    assert [[p.shape for p in u.parameters()] for u in ups[0]] == [[p.shape for p in u.parameters()] for u in ups[1]]
    for injection in ("input", "all"):
        net = UNetGenerator(depth=3, z_dim=5, z_injection=injection, **TINY)
        assert (net.z_dim, net.z_injection) == (5, injection)
        assert net(torch.rand(2, 3, 16, 24) * 2 - 1, torch.randn(2, 5)).shape == (2, 3, 16, 24)
        assert len(net.example_inputs()) == 1 and net(*net.example_inputs()).shape[:2] == (2, 3)


@pytest.mark.parametrize("injection", ["input", "all"])
def test_unet_output_depends_on_z(injection: str) -> None:
    torch.manual_seed(0)
    net = UNetGenerator(depth=3, z_dim=4, z_injection=injection, init_gain=0.2, **TINY).eval()
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    z1, z2 = torch.randn(2, 4), torch.randn(2, 4)
    assert _differ(net(x, z1), net(x, z2))
    assert torch.equal(net(x), net(x, torch.zeros(2, 4)))  # no z: the prior's mean
    # cut z out of the first conv: only "all" still sees it (deeper blocks)
    with torch.no_grad():
        net.downs[0][0].weight[:, 3:] = 0
    assert _differ(net(x, z1), net(x, z2)) == (injection == "all")


def test_unet_z_errors() -> None:
    net = UNetGenerator(depth=3, z_dim=4, **TINY)
    x = torch.rand(2, 3, 16, 16)
    for bad in (torch.zeros(2, 3), torch.zeros(3, 4), torch.zeros(2, 4, 1, 1), torch.zeros(4)):
        with pytest.raises(ValueError, match=r"z of shape \(2, 4\)"):
            net(x, bad)
    with pytest.raises(ValueError, match="z_dim=0"):
        UNetGenerator(depth=3, **TINY)(x, torch.zeros(2, 4))
    with pytest.raises(ValueError, match="divisible by 8"):
        net(torch.rand(2, 3, 12, 16), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="z_injection"):
        UNetGenerator(depth=3, z_dim=4, z_injection="middle", **TINY)
    with pytest.raises(ValueError, match="z_dim"):
        UNetGenerator(depth=3, z_dim=-1, **TINY)
    NETS.check({"type": "unet_generator", "z_dim": 8, "z_injection": "all"}, key="g")
    with pytest.raises(RecipeError):
        NETS.check({"type": "unet_generator", "z_dim": 8, "z_injection": "middle"}, key="g")


# the pix2pix U-Net's parameters (depth 3, 4 base channels, batch norm), as saved by checkpoints before z existed
PIX2PIX_KEYS = [
    ("downs.0.0.weight", (4, 3, 4, 4)), ("downs.0.0.bias", (4,)), ("downs.1.0.weight", (8, 4, 4, 4)),
    ("downs.1.1.weight", (8,)), ("downs.1.1.bias", (8,)), ("downs.1.1.running_mean", (8,)),
    ("downs.1.1.running_var", (8,)), ("downs.1.1.num_batches_tracked", ()), ("downs.2.0.weight", (16, 8, 4, 4)),
    ("downs.2.0.bias", (16,)), ("ups.0.1.weight", (8, 3, 4, 4)), ("ups.0.1.bias", (3,)),
    ("ups.1.1.weight", (16, 4, 4, 4)), ("ups.1.2.weight", (4,)), ("ups.1.2.bias", (4,)),
    ("ups.1.2.running_mean", (4,)), ("ups.1.2.running_var", (4,)), ("ups.1.2.num_batches_tracked", ()),
    ("ups.2.1.weight", (16, 8, 4, 4)), ("ups.2.2.weight", (8,)), ("ups.2.2.bias", (8,)),
    ("ups.2.2.running_mean", (8,)), ("ups.2.2.running_var", (8,)), ("ups.2.2.num_batches_tracked", ()),
]


def _pix2pix_forward(net: UNetGenerator, x: torch.Tensor) -> torch.Tensor:
    """The U-Net's forward before z: downs in order, then ups with the skips."""
    feats = []
    for down in net.downs:
        x = down(x)
        feats.append(x)
    for i in reversed(range(net.depth)):
        x = net.ups[i](x if i == net.depth - 1 else torch.cat([feats[i], x], 1))
    return x


def test_unet_without_z_is_pix2pix() -> None:
    torch.manual_seed(0)
    old = UNetGenerator(depth=3, **TINY)
    torch.manual_seed(0)
    new = UNetGenerator(depth=3, z_dim=0, z_injection="all", **TINY)
    assert [(k, tuple(v.shape)) for k, v in new.state_dict().items()] == PIX2PIX_KEYS
    assert all(torch.equal(v, new.state_dict()[k]) for k, v in old.state_dict().items())
    new.load_state_dict(old.state_dict())  # strict: a pix2pix checkpoint loads
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    new.eval()
    assert torch.equal(new(x), _pix2pix_forward(new, x))


# ---------------------------------------------------------------- encoders
ENCODERS = [(ResNetEncoder, {"blocks": 3}), (ResNetEncoder, {"blocks": 3, "norm": "none"}),
            (ResNetEncoder, {"blocks": 4, "norm": "batch"}), (ConvEncoder, {"layers": 3}),
            (ConvEncoder, {"layers": 2, "norm": "none"}), (TimmEncoder, {"backbone": TIMM})]


@pytest.mark.parametrize("cls,kwargs", ENCODERS)
def test_encoders_give_mu_and_logvar(cls: type, kwargs: dict) -> None:
    torch.manual_seed(0)
    extra = {} if cls is TimmEncoder else TINY
    for channels in (3, 1):
        net = cls(in_channels=channels, z_dim=5, **extra, **kwargs)
        assert (net.in_channels, net.z_dim) == (channels, 5)
        for side in (32, 64):
            x = (torch.rand(2, channels, side, side + 8) * 2 - 1).requires_grad_(True)
            mu, logvar = net(x)
            assert mu.shape == logvar.shape == (2, 5) and not torch.equal(mu, logvar)
            (mu.sum() + logvar.exp().sum()).backward()
            assert x.grad is not None and x.grad.abs().sum() > 0
            assert all(p.grad is not None for p in net.parameters())
            net.zero_grad()


def test_resnet_encoder_structure_and_min_size() -> None:
    net = ResNetEncoder(base_channels=4, blocks=5, max_mult=4)
    assert [b.body[-2].out_channels for b in net.features if hasattr(b, "body")] == [8, 12, 16, 16]
    assert net.heads.mu.in_features == 16 and ResNetEncoder.min_size() == 32 and ResNetEncoder.size_multiple() == 1
    for blocks in (2, 3):
        m = ResNetEncoder.min_size(blocks=blocks)
        assert m == 2 ** blocks
        net = ResNetEncoder(blocks=blocks, **TINY)
        mu, _ = net(torch.rand(2, 3, m, m))
        assert mu.shape == (2, 8)
        with pytest.raises(ValueError, match=f">= {m}"):
            net(torch.rand(2, 3, m - 1, m))
        assert net.example_inputs(batch=1, size=2)[0].shape == (1, 3, m, m)
    net = ConvEncoder(layers=2, **TINY)  # instance norm: the last map keeps 2x2
    assert ConvEncoder.min_size(layers=2) == 8 and net(torch.rand(2, 3, 8, 8))[0].shape == (2, 8)
    with pytest.raises(ValueError, match=">= 8"):
        net(torch.rand(2, 3, 7, 8))
    with pytest.raises(ValueError, match="in_channels=3"):
        net(torch.rand(2, 1, 8, 8))
    for bad in ({"z_dim": 0}, {"blocks": 0}, {"norm": "group"}):
        with pytest.raises(ValueError):
            ResNetEncoder(**bad)


def test_timm_encoder_loads_a_local_checkpoint(tmp_path) -> None:
    torch.manual_seed(1)
    full = timm.create_model(TIMM, pretrained=False).eval()  # a full model: the classifier is in the file
    state = full.state_dict()
    assert any(k.startswith("classifier.") for k in state)
    path = tmp_path / "weights.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    torch.manual_seed(2)
    enc = TimmEncoder(TIMM, pretrained=str(path), z_dim=3).eval()
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    cfg = timm.data.resolve_model_data_config(full)
    mean, std = torch.tensor(cfg["mean"]).view(1, 3, 1, 1), torch.tensor(cfg["std"]).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = full.forward_head(full.forward_features(((x + 1) / 2 - mean) / std), pre_logits=True)
        assert torch.allclose(enc.features(x), expected, atol=1e-5)
        random = TimmEncoder(TIMM, z_dim=3).eval()
        assert not torch.allclose(random.features(x), expected, atol=1e-3)
        gray = TimmEncoder(TIMM, in_channels=1, pretrained=str(path), z_dim=3).eval()
        assert torch.allclose(gray.features(x[:, :1]), enc.features(x[:, :1].expand(-1, 3, -1, -1)), atol=1e-6)
    assert all(p.requires_grad for p in enc.parameters())  # the encoder trains


def test_timm_encoder_file_and_config_errors(tmp_path) -> None:
    missing = tmp_path / "nowhere" / f"{TIMM}.safetensors"
    with pytest.raises(FileNotFoundError) as err:
        TimmEncoder(TIMM, pretrained=str(missing))
    assert str(missing) in str(err.value) and str(err.value).startswith("timm_encoder:")
    with pytest.raises(RecipeError) as rerr:
        NETS.check({"type": "timm_encoder", "backbone": TIMM, "pretrained": str(missing)}, key="nets.e")
    assert rerr.value.key == "nets.e.pretrained" and str(missing) in str(rerr.value)
    other = tmp_path / "other.safetensors"
    save_file(timm.create_model("resnet10t").state_dict(), str(other))
    with pytest.raises(ValueError, match=f"timm_encoder: .* does not hold weights of timm backbone '{TIMM}'"):
        TimmEncoder(TIMM, pretrained=str(other))
    with pytest.raises(RecipeError) as rerr:
        NETS.check({"type": "timm_encoder", "backbone": "resnet19"}, key="nets.e")
    assert rerr.value.key == "nets.e.backbone" and "resnet18" in rerr.value.choices
    with pytest.raises(RecipeError) as rerr:
        NETS.check({"type": "timm_encoder", "backbone": TIMM, "in_channels": 2}, key="nets.e")
    assert rerr.value.key == "nets.e.in_channels"
    with pytest.raises(ValueError):
        TimmEncoder(TIMM, in_channels=4)
    NETS.check({"type": "timm_encoder", "backbone": TIMM, "z_dim": 8}, key="nets.e")


# ---------------------------------------------------------------- multi-scale PatchGAN
def _count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_multiscale_patchgan_scales_and_sharing() -> None:
    torch.manual_seed(0)
    one = _count(PatchGAN(layers=2, **TINY))
    pool = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
    x = torch.rand(2, 3, 64, 48) * 2 - 1
    for shared in (False, True):
        d = MultiScalePatchGAN(layers=2, num_scales=3, shared=shared, **TINY).eval()
        assert _count(d) == one * (1 if shared else 3)
        out = d(x)
        assert isinstance(out, list) and [tuple(o.shape) for o in out] == [(2, 1, 14, 10), (2, 1, 6, 4), (2, 1, 2, 1)]
        with torch.no_grad():
            y = x
            for k in range(3):
                assert torch.allclose(out[k], d.nets[0 if shared else k](y), atol=1e-6)
                y = pool(y)
    d = MultiScalePatchGAN(layers=2, num_scales=2, **TINY).eval()
    assert _differ(d(x)[1], d.nets[0](pool(x)))  # unshared: the scales really have their own weights
    with pytest.raises(ValueError):
        MultiScalePatchGAN(num_scales=0)


@pytest.mark.parametrize("layers,num_scales", [(1, 1), (1, 2), (2, 2), (1, 3)])
def test_multiscale_patchgan_min_size_is_exact(layers: int, num_scales: int) -> None:
    m = MultiScalePatchGAN.min_size(layers=layers, num_scales=num_scales)
    assert m <= PatchGAN.min_size(layers=layers) * 2 ** (num_scales - 1)
    assert MultiScalePatchGAN.size_multiple() == 1
    d = MultiScalePatchGAN(layers=layers, num_scales=num_scales, **TINY).eval()
    out = d(torch.rand(2, 3, m, m))
    assert len(out) == num_scales and out[-1].shape == (2, 1, 1, 1)
    with pytest.raises(ValueError, match=f">= {m}"):
        d(torch.rand(2, 3, m - 1, m))
    # what the check guards: PatchGAN on the coarsest map of an (m - 1) image cannot give a logit map
    small = torch.rand(2, 3, m - 1, m - 1)
    for _ in range(num_scales - 1):
        small = d.downsample(small)
    with pytest.raises(RuntimeError):
        d.nets[-1](small)
    assert d.example_inputs(batch=1, size=4)[0].shape == (1, 3, m, m)
