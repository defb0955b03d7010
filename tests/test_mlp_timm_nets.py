"""MLP generator / discriminator and the timm-backbone discriminator (no downloads: random init or local files)."""
from __future__ import annotations

import pytest
import timm
import torch
from safetensors.torch import save_file
from torch import nn
from torch.nn.utils import parametrize

import i2i.nets  # noqa: F401  (registers the built-in nets)
from i2i.errors import RecipeError
from i2i.losses.adversarial import AdversarialLoss
from i2i.nets import MLPDiscriminator, MLPGenerator, TimmDiscriminator
from i2i.nets.timm_disc import _source_names
from i2i.registry import MODELS, NETS

from .test_models import PlainContext, changed, params

TINY_G = {"z_dim": 8, "hidden": [16, 32]}
TINY_D = {"hidden": [16, 8]}
TIMM = {"backbone": "resnet10t", "head_channels": 4}


def _differ(a: torch.Tensor, b: torch.Tensor) -> bool:
    return (a - b).abs().max().item() > 1e-6


# ---------------------------------------------------------------- MLP nets
@pytest.mark.parametrize("label_mode", ["embedding", "onehot", "multiply", None])
@pytest.mark.parametrize("size,channels", [(28, 1), (32, 3), (7, 2)])
def test_mlp_generator_shapes_and_range(label_mode: str | None, size: int, channels: int) -> None:
    torch.manual_seed(0)
    kwargs = {"num_classes": 4, "label_mode": label_mode} if label_mode else {}
    g = MLPGenerator(out_channels=channels, size=size, **TINY_G, **kwargs)
    z, y, c = g.example_inputs(batch=3)
    assert (y is None) == (label_mode is None) and c is None
    img = g(z * 3, y)
    assert img.shape == (3, channels, size, size) and img.min() >= -1 and img.max() <= 1
    assert g.size == size and g.out_channels == channels and g.cat_codes == [] and g.cont_codes == 0


def test_mlp_generator_reference_architecture() -> None:
    g = MLPGenerator(num_classes=10, embed_dim=10, size=28)  # PyTorch-GAN's CGAN G on MNIST
    linears = [m for m in g.body if isinstance(m, nn.Linear)]
    assert [m.out_features for m in linears] == [128, 256, 512, 1024, 28 * 28]
    assert linears[0].in_features == 100 + 10 and isinstance(g.body[-1], nn.Tanh)
    norms = [m for m in g.body if isinstance(m, nn.BatchNorm1d)]
    assert [m.num_features for m in norms] == [256, 512, 1024]  # none on the first block
    # a linear has no bias exactly when a BatchNorm follows it
    leaves = list(g.body)
    for m, nxt in zip(leaves, leaves[1:] + [None]):
        if isinstance(m, nn.Linear):
            assert (m.bias is None) == isinstance(nxt, nn.BatchNorm1d)
    assert all(isinstance(m, nn.LeakyReLU) and m.negative_slope == 0.2 for m in g.body
               if isinstance(m, (nn.ReLU, nn.LeakyReLU)))
    assert not any(isinstance(m, nn.BatchNorm1d) for m in MLPGenerator(norm="none", **TINY_G).modules())
    assert MLPGenerator(label_mode="onehot", num_classes=5, **TINY_G).body[0].in_features == 8 + 5
    assert MLPGenerator(label_mode="multiply", num_classes=5, **TINY_G).body[0].in_features == 8


@pytest.mark.parametrize("label_mode", ["embedding", "onehot"])
def test_mlp_labels_change_the_generator(label_mode: str) -> None:
    torch.manual_seed(0)
    g = MLPGenerator(num_classes=4, label_mode=label_mode, **TINY_G).eval()
    z = torch.randn(1, 8).repeat(4, 1)
    img = g(z, torch.arange(4))
    assert all(_differ(img[i], img[j]) for i in range(4) for j in range(i))
    assert torch.allclose(g(z[:1], torch.tensor([2])), img[2:3], atol=1e-6)  # per-sample in eval mode
    with pytest.raises(ValueError, match="needs y"):
        g(z)
    with pytest.raises(ValueError, match="y"):
        MLPGenerator(**TINY_G)(z, torch.arange(4))  # an unconditional G refuses labels rather than ignoring them


def test_mlp_generator_codes_and_validation() -> None:
    g = MLPGenerator(cat_codes=[3, 2], cont_codes=2, **TINY_G).eval()
    assert g.code_dim == 7 and g.body[0].in_features == 8 + 7
    z, y, c = g.example_inputs(batch=2)
    assert y is None and c.shape == (2, 7) and g(z, None, c).shape == (2, 1, 32, 32)
    with pytest.raises(ValueError, match="codes c"):
        g(z)
    with pytest.raises(ValueError, match=r"\(B, 7\)"):
        g(z, None, c[:, :5])
    with pytest.raises(ValueError, match=r"z of shape \(B, 8\)"):
        g(torch.zeros(2, 9), None, c)
    for bad in ({"hidden": []}, {"hidden": [16, 0]}, {"label_mode": "film"}, {"norm": "instance"},
                {"cat_codes": [1]}, {"cont_codes": -1}, {"size": 0}, {"z_dim": 0}):
        with pytest.raises(ValueError):
            MLPGenerator(**{**TINY_G, **bad})


@pytest.mark.parametrize("conditioning", ["none", "concat", "projection"])
def test_mlp_discriminator(conditioning: str) -> None:
    torch.manual_seed(0)
    kwargs = {"num_classes": 4, "conditioning": conditioning} if conditioning != "none" else {}
    d = MLPDiscriminator(in_channels=3, size=16, **TINY_D, **kwargs).eval()
    x = (torch.rand(1, 3, 16, 16) * 2 - 1).repeat(4, 1, 1, 1)
    inputs = d.example_inputs(batch=4)
    assert inputs[0].shape == (4, 3, 16, 16) and len(inputs) == (1 if conditioning == "none" else 2)
    if conditioning == "none":
        assert d(x).shape == (4, 1)
        with pytest.raises(ValueError, match="labels"):
            d(x, torch.arange(4))
    else:
        logits = d(x, torch.arange(4))
        assert logits.shape == (4, 1) and all(_differ(logits[i], logits[j]) for i in range(4) for j in range(i))
        with pytest.raises(ValueError, match="labels"):
            d(x)
    if conditioning == "concat":  # a learned label embedding, num_classes wide by default (PyTorch-GAN's CGAN)
        assert d.body[0].in_features == 3 * 16 * 16 + 4
        assert MLPDiscriminator(size=16, embed_dim=7, **TINY_D, **kwargs).body[0].in_features == 16 * 16 + 7
    with pytest.raises(ValueError, match="16, 16"):
        d(torch.zeros(4, 3, 32, 32), *inputs[1:])
    linears = [m for m in d.modules() if isinstance(m, nn.Linear)]
    assert [m.out_features for m in linears] == [16, 8, 1]
    assert not any(isinstance(m, (nn.Sigmoid, nn.BatchNorm1d)) for m in d.modules())  # raw logits, no norm


def test_mlp_discriminator_reference_dropout_and_spectral_norm() -> None:
    d = MLPDiscriminator(size=28)
    assert [m.out_features for m in d.modules() if isinstance(m, nn.Linear)] == [512, 256, 1]
    d = MLPDiscriminator(size=16, dropout=0.5, num_classes=3, conditioning="concat", **TINY_D)
    assert sum(isinstance(m, nn.Dropout) for m in d.modules()) == 2
    x = d.example_inputs(batch=8)
    torch.manual_seed(1)
    a = d(*x)
    torch.manual_seed(2)
    assert not torch.equal(a, d(*x))
    d.eval()
    assert torch.equal(d(*x), d(*x))
    sn = MLPDiscriminator(size=16, spectral_norm=True, num_classes=3, conditioning="projection", **TINY_D)
    wrapped = [parametrize.is_parametrized(m, "weight") for m in sn.modules() if isinstance(m, nn.Linear)]
    assert wrapped and all(wrapped)
    assert torch.isfinite(sn(*sn.example_inputs())).all()
    for bad in ({"hidden": []}, {"conditioning": "concat"}, {"conditioning": "film", "num_classes": 2},
                {"dropout": 1.0}, {"size": 0}, {"embed_dim": 0}):
        with pytest.raises(ValueError):
            MLPDiscriminator(**{**TINY_D, **bad})


def test_mlp_recipe_checks() -> None:
    NETS.check({"type": "mlp_generator", "hidden": [64, 128], "size": 28, "num_classes": 10}, key="g")
    NETS.check({"type": "mlp_discriminator", "size": 28, "num_classes": 10, "conditioning": "concat"}, key="d")
    for name, bad, where in [("mlp_generator", {"hidden": []}, "g.hidden"),
                             ("mlp_generator", {"hidden": [8, -1]}, "g.hidden"),
                             ("mlp_generator", {"cat_codes": [4, 1]}, "g.cat_codes"),
                             ("mlp_generator", {"size": 0}, "g.size"),
                             ("mlp_discriminator", {"conditioning": "concat"}, "g.num_classes"),
                             ("mlp_discriminator", {"dropout": 1.5}, "g.dropout")]:
        with pytest.raises(RecipeError) as err:
            NETS.check({"type": name, **bad}, key="g")
        assert err.value.key == where
    for bad in ({"norm": "instance"}, {"label_mode": "film"}, {"hidden": 128}):
        with pytest.raises(RecipeError):
            NETS.check({"type": "mlp_generator", **bad}, key="g")
    assert MLPGenerator.min_size(size=28) == 28 and MLPDiscriminator.size_multiple() == 1


# ---------------------------------------------------------------- timm discriminator
def test_timm_discriminator_returns_a_list_of_logit_maps() -> None:
    torch.manual_seed(0)
    d = TimmDiscriminator(**TIMM)  # the last 4 feature levels by default: strides 4, 8, 16, 32
    out = d(torch.rand(2, 3, 64, 64) * 2 - 1)
    assert isinstance(out, list) and [tuple(o.shape) for o in out] == [(2, 1, 16, 16), (2, 1, 8, 8), (2, 1, 4, 4),
                                                                      (2, 1, 2, 2)]
    assert d.reductions == [4, 8, 16, 32] and len(d.heads) == 4
    d = TimmDiscriminator(out_indices=[1, 3], in_channels=1, **TIMM)
    assert [tuple(o.shape) for o in d(torch.rand(3, 1, 32, 32) * 2 - 1)] == [(3, 1, 8, 8), (3, 1, 2, 2)]
    assert [tuple(o.shape) for o in d(*d.example_inputs(batch=2, size=8))] == [(2, 1, 8, 8), (2, 1, 2, 2)]
    loss = AdversarialLoss("lsgan")  # our losses sum a list of logit maps
    assert torch.isfinite(loss.discriminator(d(torch.zeros(2, 1, 32, 32)), d(torch.ones(2, 1, 32, 32))))
    assert TimmDiscriminator.min_size() == 32 and TimmDiscriminator.size_multiple() == 1


@pytest.mark.parametrize("backbone", ["resnet10t", "tf_efficientnet_lite0"])
def test_timm_inputs_are_mapped_to_the_backbone_statistics(backbone: str) -> None:
    seen = []
    for channels in (3, 1):
        d = TimmDiscriminator(backbone, in_channels=channels, head_channels=4, out_indices=1)
        d.backbone.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
        x = torch.rand(2, channels, 32, 32) * 2 - 1
        d(x)
        cfg = timm.data.resolve_model_data_config(timm.create_model(backbone))
        mean, std = torch.tensor(cfg["mean"]).view(1, 3, 1, 1), torch.tensor(cfg["std"]).view(1, 3, 1, 1)
        assert torch.allclose(seen[-1], ((x.expand(-1, 3, -1, -1) + 1) / 2 - mean) / std, atol=1e-6)
    if backbone == "tf_efficientnet_lite0":  # mean = std = 0.5: [-1, 1] is already what it expects
        assert torch.allclose(seen[-1], x.expand(-1, 3, -1, -1), atol=1e-6)


def test_frozen_backbone_gets_no_gradient_but_passes_it_to_the_image() -> None:
    torch.manual_seed(0)
    d = TimmDiscriminator(frozen=True, **TIMM).train()
    assert d.frozen and not any(p.requires_grad for p in d.backbone.parameters())
    assert d.training and not d.backbone.training  # train() keeps the backbone in eval mode
    stats = {k: v.clone() for k, v in d.backbone.state_dict().items() if "running" in k}
    x = (torch.rand(2, 3, 32, 32) * 2 - 1).requires_grad_(True)
    sum(o.mean() for o in d(x)).backward()
    assert all(p.grad is None for p in d.backbone.parameters())
    assert all(p.grad is not None for p in d.heads.parameters())
    assert x.grad is not None and x.grad.abs().sum() > 0  # G gets gradients through the frozen backbone
    assert all(torch.equal(v, d.backbone.state_dict()[k]) for k, v in stats.items())  # BatchNorm did not drift
    trainable = {n for n, p in d.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("heads.") for n in trainable)


def test_unfrozen_backbone_trains() -> None:
    torch.manual_seed(0)
    d = TimmDiscriminator(**TIMM).train()  # no pretrained file: trainable by default
    assert not d.frozen and d.backbone.training
    stats = {k: v.clone() for k, v in d.backbone.state_dict().items() if "running_mean" in k}
    x = (torch.rand(2, 3, 32, 32) * 2 - 1).requires_grad_(True)
    sum(o.mean() for o in d(x)).backward()
    assert all(p.grad is not None for p in d.parameters()) and x.grad.abs().sum() > 0
    assert any(not torch.equal(v, d.backbone.state_dict()[k]) for k, v in stats.items())


def test_projection_conditioning() -> None:
    torch.manual_seed(0)
    d = TimmDiscriminator(num_classes=4, conditioning="projection", out_indices=2, **TIMM).eval()
    x = (torch.rand(1, 3, 32, 32) * 2 - 1).repeat(4, 1, 1, 1)
    maps = d(x, torch.arange(4))
    assert len(maps) == 2 and all(m.shape[:2] == (4, 1) for m in maps)
    assert all(_differ(maps[0][i], maps[0][j]) for i in range(4) for j in range(i))
    with pytest.raises(ValueError, match="labels"):
        d(x)
    with pytest.raises(ValueError, match="labels"):
        TimmDiscriminator(**TIMM)(x, torch.arange(4))
    with pytest.raises(ValueError, match="num_classes"):
        TimmDiscriminator(conditioning="projection", **TIMM)


def test_spectral_norm_on_the_heads_only() -> None:
    d = TimmDiscriminator(spectral_norm=True, **TIMM)
    heads = [parametrize.is_parametrized(m, "weight") for m in d.heads.modules() if isinstance(m, nn.Conv2d)]
    assert len(heads) == 8 and all(heads)
    assert not any(parametrize.is_parametrized(m) for m in d.backbone.modules())


@pytest.mark.parametrize("backbone,suffix", [("resnet10t", ".safetensors"), ("resnet10t", ".pth"),
                                             ("convnext_atto", ".safetensors")])  # convnext: 'stages.0' -> 'stages_0'
def test_pretrained_weights_from_a_local_file(backbone: str, suffix: str, tmp_path) -> None:
    torch.manual_seed(1)
    saved = timm.create_model(backbone, pretrained=False).state_dict()  # a full model, classifier included
    path = tmp_path / f"weights{suffix}"
    if suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in saved.items()}, str(path))
    else:  # a training checkpoint: wrapped and DDP-prefixed
        torch.save({"state_dict": {f"module.{k}": v for k, v in saved.items()}, "epoch": 3}, path)
    torch.manual_seed(2)
    d = TimmDiscriminator(backbone, pretrained=str(path), head_channels=4)
    loaded = d.backbone.state_dict()
    for key, value in loaded.items():
        src = next(s for s in _source_names(key) if s in saved)
        assert torch.equal(value, saved[src]), key
    assert d.frozen and not any(p.requires_grad for p in d.backbone.parameters())  # frozen by default
    assert not TimmDiscriminator(backbone, pretrained=str(path), frozen=False, head_channels=4).frozen
    random = TimmDiscriminator(backbone, head_channels=4).backbone.state_dict()
    assert any(not torch.equal(random[k], v) for k, v in loaded.items() if v.is_floating_point())


def test_pretrained_file_errors(tmp_path) -> None:
    missing = tmp_path / "nowhere" / "resnet10t.safetensors"
    with pytest.raises(FileNotFoundError) as err:
        TimmDiscriminator(pretrained=str(missing), **TIMM)
    text = str(err.value)
    assert str(missing) in text and "timm/resnet10t" in text and "download" in text
    with pytest.raises(RecipeError) as rerr:
        NETS.check({"type": "timm_discriminator", "pretrained": str(missing), **TIMM}, key="nets.d")
    assert rerr.value.key == "nets.d.pretrained" and str(missing) in str(rerr.value)
    other = tmp_path / "other.safetensors"  # weights of another architecture
    save_file(timm.create_model("mobilenetv3_small_050").state_dict(), str(other))
    with pytest.raises(ValueError, match="does not hold weights of timm backbone 'resnet10t'"):
        TimmDiscriminator(pretrained=str(other), **TIMM)
    junk = tmp_path / "junk.pth"
    torch.save({"epoch": 3, "note": "no tensors"}, junk)
    with pytest.raises(ValueError, match="holds no state dict"):
        TimmDiscriminator(pretrained=str(junk), **TIMM)


def test_bad_backbone_and_arguments() -> None:
    with pytest.raises(ValueError, match="unknown timm backbone 'resnet19'") as err:
        TimmDiscriminator("resnet19")
    assert "resnet18" in str(err.value)
    with pytest.raises(RecipeError) as rerr:
        NETS.check({"type": "timm_discriminator", "backbone": "efficientnet_b9x"}, key="nets.d")
    assert rerr.value.key == "nets.d.backbone" and "efficientnet_b1" in rerr.value.choices
    NETS.check({"type": "timm_discriminator", "backbone": "resnet18.a1_in1k", "out_indices": [2, 3, 4]}, key="d")
    with pytest.raises(RecipeError):
        NETS.check({"type": "timm_discriminator"}, key="d")  # the backbone is required
    for bad in ({"in_channels": 4}, {"out_indices": 0}, {"out_indices": []}, {"out_indices": [1, 1]},
                {"out_indices": 9}, {"out_indices": [0, 7]}, {"head_channels": 0}):
        with pytest.raises(ValueError):
            TimmDiscriminator(**{**TIMM, **bad})
    for bad, where in (({"in_channels": 2}, "d.in_channels"), ({"out_indices": 0}, "d.out_indices"),
                       ({"conditioning": "projection"}, "d.num_classes")):
        with pytest.raises(RecipeError) as rerr:
            NETS.check({"type": "timm_discriminator", **TIMM, **bad}, key="d")
        assert rerr.value.key == where


def test_cgan_step_with_mlp_generator_and_frozen_timm_discriminator(tmp_path) -> None:
    """Group isolation with these nets: D's step trains only D's heads, G's step trains G through the frozen D."""
    torch.manual_seed(0)
    path = tmp_path / "backbone.safetensors"
    save_file(timm.create_model("resnet10t").state_dict(), str(path))
    nets = {"g": MLPGenerator(num_classes=3, size=32, **TINY_G),
            "d": TimmDiscriminator(in_channels=1, pretrained=str(path), num_classes=3, conditioning="projection",
                                   out_indices=2, **TIMM)}
    model = MODELS.get("cgan")(nets, {"adv": AdversarialLoss()})
    ctx = PlainContext(model)
    batch = {"real": torch.rand(4, 1, 32, 32) * 2 - 1, "y": torch.randint(0, 3, (4,))}
    out = model.generate(batch)
    g0, d0 = params(model, ["g"]), params(model, ["d"])
    model.d_step(batch, out, ctx)
    moved = changed(d0, model, ["d"])
    assert moved and all(k.startswith("d.heads.") for k in moved) and not changed(g0, model, ["g"])
    out = model.generate(batch)
    g0, d0 = params(model, ["g"]), params(model, ["d"])
    for opt in ctx.opts.values():
        opt.zero_grad(set_to_none=True)
    model.g_step(batch, out, ctx)
    assert changed(g0, model, ["g"]) and not changed(d0, model, ["d"])
    assert all(p.grad is None for p in model.nets["d"].parameters())
    assert not any(p.requires_grad for p in model.nets["d"].backbone.parameters())  # still frozen after ctx.frozen
