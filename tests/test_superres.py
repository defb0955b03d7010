"""Super-resolution: RRDBNet and the two SR discriminators, the VGG19 perceptual loss, the SR data set, PSNR/SSIM."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from skimage import data as skdata
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from torch import nn

from i2i.data.superres import SuperResFolder, bicubic_downscale, dihedral, load_sr_pairs
from i2i.errors import DataError, RecipeError
from i2i.evaluation.sr import bicubic_upscale, evaluate_sr, psnr, rgb_to_y, ssim
from i2i.losses.perceptual import VGG19_FILE, PerceptualLoss, vgg19_layer_indices
from i2i.nets.rrdb import RRDBNet
from i2i.nets.sr_discriminators import UNetDiscriminatorSN, VGGDiscriminator
from i2i.registry import DATASETS, LOSSES, NETS

TINY_G = {"features": 8, "blocks": 1, "growth": 4}


def photo(h: int, w: int, seed: int = 0, step: int = 2) -> np.ndarray:
    """A uint8 RGB crop of a scikit-image sample photo (every ``step``-th pixel: detail at test size)."""
    rng = np.random.default_rng(seed)
    p = (skdata.astronaut(), skdata.coffee(), skdata.chelsea())[seed % 3]
    y, x = rng.integers(0, p.shape[0] - h * step), rng.integers(0, p.shape[1] - w * step)
    return np.ascontiguousarray(p[y:y + h * step:step, x:x + w * step:step])


def box_down(image: np.ndarray, s: int) -> np.ndarray:
    """Block mean over s x s: local to each block, so a crop misaligned by one pixel cannot pass."""
    h, w = image.shape[0] // s * s, image.shape[1] // s * s
    return image[:h, :w].reshape(h // s, s, w // s, s, -1).mean((1, 3))


def to01(t: torch.Tensor) -> np.ndarray:
    return ((t + 1) / 2).permute(1, 2, 0).numpy()


# ---------------------------------------------------------------- nets
@pytest.mark.parametrize("scale", [1, 2, 4, 8])
def test_rrdb_output_shapes(scale: int) -> None:
    net = RRDBNet(in_channels=3, out_channels=3, scale=scale, **TINY_G)
    assert net.scale == scale
    m = RRDBNet.size_multiple(scale=scale)
    assert m == {1: 4, 2: 2, 4: 1, 8: 1}[scale] and RRDBNet.min_size(scale=scale) == m
    for h, w in [(8, 8), (8, 12), (12, 4)]:
        assert net(torch.rand(2, 3, h, w) * 2 - 1).shape == (2, 3, h * scale, w * scale)
    (x,) = net.example_inputs()
    assert x.shape[-1] % m == 0 and x.min() >= -1 and x.max() <= 1


def test_rrdb_channels_sizes_and_validation() -> None:
    assert RRDBNet(1, 3, scale=2, **TINY_G)(torch.zeros(1, 1, 6, 10)).shape == (1, 3, 12, 20)
    assert RRDBNet.size_multiple() == 1  # default scale 4
    with pytest.raises(ValueError, match="divisible by 4"):
        RRDBNet(scale=1, **TINY_G)(torch.zeros(1, 3, 8, 10))
    for bad in (3, 16, True):
        with pytest.raises(ValueError):
            RRDBNet(scale=bad, **TINY_G)
    NETS.check({"type": "rrdb_net", "scale": 8}, key="nets.g")
    with pytest.raises(RecipeError, match="nets.g.scale") as info:
        NETS.check({"type": "rrdb_net", "scale": 3}, key="nets.g")
    assert info.value.choices == ["1", "2", "4", "8"]


def test_rrdb_reference_architecture() -> None:
    torch.manual_seed(0)
    net = RRDBNet()  # ESRGAN x4: 64 features, 23 RRDBs, growth 32 -> 16,697,987 parameters
    assert sum(p.numel() for p in net.parameters()) == 16_697_987
    kinds = {type(m) for m in net.modules()}
    assert not kinds & {nn.BatchNorm2d, nn.InstanceNorm2d, nn.Tanh, nn.Sigmoid}  # no norm, not bounded
    assert all(m.negative_slope == 0.2 for m in net.modules() if isinstance(m, nn.LeakyReLU))
    conv = net.body[0].blocks[0].convs[0]  # body convs: kaiming-normal x 0.1
    expected = 0.1 * (2 / (conv.in_channels * 9)) ** 0.5
    assert abs(conv.weight.std().item() / expected - 1) < 0.1 and (conv.bias == 0).all()
    assert net.conv_first.weight.std().item() > 3 * expected  # stem and tail keep PyTorch's init


@pytest.mark.parametrize("size", [32, 48, 96, 128])
def test_vgg_discriminator_any_size(size: int) -> None:
    net = VGGDiscriminator(base_channels=4)
    assert net(torch.rand(2, 3, size, size + 8) * 2 - 1).shape == (2, 1)


def test_vgg_discriminator_layout_and_min_size() -> None:
    net = VGGDiscriminator()
    convs = [m for m in net.features if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 256, 256, 512, 512, 512, 512]
    assert [c.stride[0] for c in convs] == [1, 2] * 5 and [c.kernel_size[0] for c in convs] == [3, 4] * 5
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net.modules()) == 9  # not after the first conv
    assert net.features(torch.zeros(1, 3, 128, 128)).shape[-2:] == (4, 4)  # BasicSR's 128 px layout
    assert net.head[1].in_features == 512 * 16 and net.head[1].out_features == 100
    assert VGGDiscriminator.min_size() == 32 and VGGDiscriminator.min_size(norm="instance") == 64
    assert VGGDiscriminator.min_size(stages=3) == 8
    small = VGGDiscriminator(base_channels=4, norm="none")
    assert small(torch.zeros(1, 3, 32, 32)).shape == (1, 1)
    with pytest.raises(RuntimeError):
        small(torch.zeros(1, 3, 31, 31))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in small.modules())


def test_unet_discriminator_sn_shape() -> None:
    net = UNetDiscriminatorSN(base_channels=4)
    for h, w in [(8, 8), (32, 48), (64, 24)]:
        assert net(torch.rand(2, 3, h, w) * 2 - 1).shape == (2, 1, h, w)
    assert sum(hasattr(m, "parametrizations") for m in net.modules()) == 8  # spectral norm on the inner convs
    assert UNetDiscriminatorSN.size_multiple() == UNetDiscriminatorSN.min_size() == 8
    with pytest.raises(ValueError, match="divisible by 8"):
        net(torch.zeros(1, 3, 36, 32))
    assert sum(p.numel() for p in UNetDiscriminatorSN().parameters()) == 4_376_897  # Real-ESRGAN's


# ---------------------------------------------------------------- perceptual loss
@pytest.fixture(scope="module")
def reference_vgg() -> nn.Sequential:
    """torchvision's own builder of ``vgg19().features`` (without allocating the 100M-parameter classifier)."""
    torch.manual_seed(0)
    return torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["E"]).eval()


def _imagenet(x: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    return ((x + 1) / 2 - mean) / std


def test_layer_names_follow_the_architecture(reference_vgg: nn.Sequential) -> None:
    names = vgg19_layer_indices()
    assert len([n for n in names if n.startswith("conv")]) == 16 and names["conv5_4"] == 34
    for name, i in names.items():
        kind = {"conv": nn.Conv2d, "relu": nn.ReLU, "pool": nn.MaxPool2d}[name[:4]]
        assert isinstance(reference_vgg[i], kind), name


@pytest.mark.parametrize("layer", ["conv3_4", "relu3_4", "conv2_1", "relu5_4"])
def test_perceptual_features_match_torchvision(reference_vgg: nn.Sequential, layer: str) -> None:
    loss = PerceptualLoss(layer_weights={layer: 1.0}, weights=None)
    assert len(loss.vgg) == vgg19_layer_indices()[layer] + 1  # truncated after the deepest requested layer
    reference_vgg.load_state_dict(loss.vgg.state_dict(), strict=False)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        expected = reference_vgg[: vgg19_layer_indices()[layer] + 1](_imagenet(x))
        got = loss.features(x)[layer]
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    assert (got.min() < 0) == layer.startswith("conv")  # before the ReLU really is before it


def test_perceptual_conv_and_relu_of_one_layer_together() -> None:
    loss = PerceptualLoss(layer_weights={"conv2_2": 1.0, "relu2_2": 1.0}, weights=None)
    f = loss.features(torch.rand(1, 3, 16, 16) * 2 - 1)
    torch.testing.assert_close(f["relu2_2"], f["conv2_2"].clamp(min=0))  # no in-place ReLU ate the conv output


@pytest.mark.parametrize("criterion", ["l1", "l2"])
def test_perceptual_criterion_values(criterion: str) -> None:
    lw = {"relu1_2": 0.5, "conv3_1": 2.0}
    loss = PerceptualLoss(layer_weights=lw, criterion=criterion, weight=3.0, weights=None)
    x, y = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 3, 16, 16) * 2 - 1
    fx, fy = loss.features(x), loss.features(y)
    dist = (lambda a, b: (a - b).abs().mean()) if criterion == "l1" else (lambda a, b: ((a - b) ** 2).mean())
    expected = 3.0 * sum(w * dist(fx[n], fy[n]) for n, w in lw.items())
    torch.testing.assert_close(loss(x, y), expected)
    assert loss(x, x).item() == 0.0


def test_perceptual_gray_is_repeated_to_rgb() -> None:
    loss = PerceptualLoss(layer_weights={"relu2_1": 1.0}, weights=None)
    g, h = torch.rand(2, 1, 16, 16) * 2 - 1, torch.rand(2, 1, 16, 16) * 2 - 1
    torch.testing.assert_close(loss(g, h), loss(g.repeat(1, 3, 1, 1), h.repeat(1, 3, 1, 1)))
    with pytest.raises(ValueError, match="1- or 3-channel"):
        loss(torch.zeros(1, 4, 16, 16), torch.zeros(1, 4, 16, 16))


def test_perceptual_gradient_reaches_input_not_vgg() -> None:
    loss = PerceptualLoss(layer_weights={"conv4_4": 1.0}, weights=None)
    loss.train()
    assert not loss.vgg.training and not any(p.requires_grad for p in loss.parameters())
    x = (torch.rand(2, 3, 16, 16) * 2 - 1).requires_grad_()
    y = (torch.rand(2, 3, 16, 16) * 2 - 1).requires_grad_()
    loss(x, y).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert y.grad is None  # the target is a constant
    assert all(p.grad is None for p in loss.vgg.parameters())
    assert list(loss.state_dict()) == [k for k in loss.state_dict() if k.startswith("vgg.")]  # no stray state


def _features_file(path: Path, layers: int, prefix: str) -> dict:
    torch.manual_seed(1)
    feats = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["E"])[:layers]
    state = {prefix + k: v for k, v in feats.state_dict().items()}
    if prefix:
        state["classifier.0.bias"] = torch.zeros(3)  # a whole-vgg19 state_dict has more than features
    torch.save(state, path)
    return feats.state_dict()


@pytest.mark.parametrize("prefix", ["features.", ""])
def test_perceptual_loads_a_local_weights_file(tmp_path: Path, prefix: str) -> None:
    want = _features_file(tmp_path / "vgg.pth", 9, prefix)
    loss = PerceptualLoss(layer_weights={"relu2_2": 1.0}, weights=str(tmp_path / "vgg.pth"))
    for k, v in loss.vgg.state_dict().items():
        assert torch.equal(v, want[k])
    with pytest.raises(RecipeError, match="lacks"):  # too few layers for conv5_4
        PerceptualLoss(weights=str(tmp_path / "vgg.pth"))
    with pytest.raises(RecipeError, match="not found"):
        PerceptualLoss(weights=str(tmp_path / "nope.pth"))


def test_perceptual_imagenet_weights_come_from_the_hub_cache(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    expected_path = tmp_path / "hub" / "checkpoints" / VGG19_FILE
    with pytest.raises(RecipeError) as info:
        PerceptualLoss(layer_weights={"relu1_1": 1.0})
    text = str(info.value)
    assert str(expected_path) in text and VGG19_FILE in text
    assert "python -c \"import torchvision; torchvision.models.vgg19(weights='IMAGENET1K_V1')\"" in text
    assert "weights: /path/to/" in text
    with pytest.raises(RecipeError) as info:  # at recipe validation, before anything is built
        LOSSES.check({"type": "perceptual", "weight": 1.0}, key="losses.perceptual", file="r.yaml")
    assert info.value.key == "losses.perceptual.weights" and "r.yaml" in str(info.value)
    expected_path.parent.mkdir(parents=True)
    want = _features_file(expected_path, 2, "features.")
    loss = PerceptualLoss(layer_weights={"relu1_1": 1.0})
    assert torch.equal(loss.vgg[0].weight, want["0.weight"])
    LOSSES.check({"type": "perceptual", "layer_weights": {"relu1_1": 1.0}}, key="losses.p")


def test_perceptual_recipe_checks_and_random_weights_warning(caplog) -> None:
    with pytest.raises(RecipeError, match="unknown VGG19 layer") as info:
        LOSSES.check({"type": "perceptual", "layer_weights": {"conv5_5": 1.0}, "weights": None}, key="losses.p")
    assert "conv5_4" in info.value.choices and info.value.key == "losses.p.layer_weights.conv5_5"
    with pytest.raises(RecipeError):
        LOSSES.check({"type": "perceptual", "criterion": "l3", "weights": None}, key="losses.p")
    with caplog.at_level(logging.WARNING):
        PerceptualLoss(layer_weights={"relu1_1": 1.0}, weights=None)
    assert any(r.levelno == logging.WARNING and "NOT a real perceptual loss" in r.message for r in caplog.records)


# ---------------------------------------------------------------- data set
def _save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(np.rint(array), 0, 255).astype(np.uint8)).save(path)


HR_SHAPES = [(42, 50), (36, 36), (48, 44)]  # not all multiples of the scale


@pytest.fixture
def hr_root(tmp_path: Path) -> Path:
    for i, (h, w) in enumerate(HR_SHAPES):
        _save(tmp_path / "hr" / f"{i:03d}.png", photo(h, w, seed=i))
    return tmp_path / "hr"


def _find_window(image: np.ndarray, crop: np.ndarray) -> tuple[int, int, int] | None:
    """(dihedral code, y, x) where ``crop`` is a transformed window of ``image``, else None."""
    size = crop.shape[0]
    for code in range(8):
        for y in range(image.shape[0] - size + 1):
            for x in range(image.shape[1] - size + 1):
                if np.abs(dihedral(image[y:y + size, x:x + size], code) - crop).max() < 1e-5:
                    return code, y, x
    return None


@pytest.mark.parametrize("augment", [False, True])
def test_on_the_fly_lr_is_the_bicubic_downscale_of_the_hr_crop(hr_root: Path, augment: bool) -> None:
    ds = SuperResFolder(root=str(hr_root), scale=4, gt_size=24, augment=augment)
    assert ds.mode == "hr_only" and len(ds) == 3
    codes = set()
    for i in range(len(ds)):
        for seed in range(4):
            s = ds[(i, seed)]
            assert s["real_a"].shape == (3, 6, 6) and s["real_b"].shape == (3, 24, 24)
            assert s["path_a"] == s["path_b"] == str(hr_root / f"{i:03d}.png")
            hr, lr = to01(s["real_b"]), to01(s["real_a"])
            np.testing.assert_allclose(lr, bicubic_downscale(hr, 4), atol=1e-5)
            found = _find_window(np.asarray(Image.open(s["path_b"])) / 255.0, hr)
            assert found is not None and (augment or found[0] == 0)
            codes.add(found[0])
    assert (len(codes) > 2) == augment
    a, b = ds[(1, 7)], ds[(1, 7)]
    assert torch.equal(a["real_a"], b["real_a"]) and torch.equal(a["real_b"], b["real_b"])


def test_on_the_fly_bicubic_is_close_to_pillow(hr_root: Path) -> None:
    ds = SuperResFolder(root=str(hr_root), scale=2, crop=False, augment=False)
    s = ds[0]
    assert s["real_b"].shape == (3, 42, 50) and s["real_a"].shape == (3, 21, 25)
    hr = np.asarray(Image.open(hr_root / "000.png"))
    pil = np.asarray(Image.fromarray(hr).resize((25, 21), Image.BICUBIC)).astype(np.float64)
    diff = np.abs(to01(s["real_a"]) * 255 - pil)
    assert diff.mean() < 0.6 and diff.max() < 4  # same filter; Pillow rounds to 8 bits between passes


def _paired_folders(tmp_path: Path, scale: int) -> tuple[Path, Path]:
    for i, (h, w) in enumerate(HR_SHAPES):
        hr = photo(h, w, seed=i).astype(np.float64)
        _save(tmp_path / "HR" / f"{i:03d}.png", hr)
        name = f"{i:03d}x{scale}.png" if i == 1 else f"{i:03d}.png"  # DIV2K names its LR files 0001x4.png
        _save(tmp_path / "LR" / name, box_down(hr, scale))
    return tmp_path / "HR", tmp_path / "LR"


def _suffix_folder(tmp_path: Path, scale: int) -> Path:
    root = tmp_path / f"image_SRF_{scale}"
    for i, (h, w) in enumerate(HR_SHAPES):
        hr = photo(h, w, seed=i).astype(np.float64)
        _save(root / f"img_{i + 1:03d}_SRF_{scale}_HR.png", hr)
        _save(root / f"img_{i + 1:03d}_SRF_{scale}_LR.png", box_down(hr, scale))
    return root


def _check_aligned(ds: SuperResFolder, scale: int, lr_side: int | None) -> None:
    for i in range(len(ds)):
        for seed in range(5):
            s = ds[(i, seed)]
            lr, hr = to01(s["real_a"]), to01(s["real_b"])
            if lr_side is not None:
                assert lr.shape[:2] == (lr_side, lr_side)
            assert hr.shape[:2] == (lr.shape[0] * scale, lr.shape[1] * scale)
            # LR files are block means of HR rounded to 8 bits: a one-pixel misalignment is far off
            assert np.abs(box_down(hr, scale) - lr).max() <= 0.5 / 255 + 1e-6, (i, seed)


@pytest.mark.parametrize("augment", [False, True])
def test_paired_folders_crops_are_aligned(tmp_path: Path, augment: bool) -> None:
    hr_dir, lr_dir = _paired_folders(tmp_path, 2)
    ds = SuperResFolder(root=str(hr_dir), lr_root=str(lr_dir), scale=2, gt_size=16, augment=augment)
    assert ds.mode == "folders" and [p[0].name for p in ds.pairs] == ["000.png", "001x2.png", "002.png"]
    _check_aligned(ds, 2, 8)


@pytest.mark.parametrize("augment", [False, True])
def test_suffix_named_pairs_are_aligned(tmp_path: Path, augment: bool) -> None:
    root = _suffix_folder(tmp_path, 4)
    ds = SuperResFolder(root=str(root), scale=4, gt_size=16, augment=augment)
    assert ds.mode == "suffix" and len(ds) == 3
    s = ds[0]
    assert s["path_a"].endswith("img_001_SRF_4_LR.png") and s["path_b"].endswith("img_001_SRF_4_HR.png")
    _check_aligned(ds, 4, 4)


def test_eval_mode_is_whole_images_and_deterministic(tmp_path: Path) -> None:
    root = _suffix_folder(tmp_path, 4)
    ds = SuperResFolder(root=str(root), scale=4, crop=False, augment=False)
    for i, (h, w) in enumerate(HR_SHAPES):
        a, b = ds[(i, 0)], ds[(i, 123)]
        assert a["real_b"].shape == (3, h // 4 * 4, w // 4 * 4) and a["real_a"].shape == (3, h // 4, w // 4)
        assert torch.equal(a["real_a"], b["real_a"]) and torch.equal(a["real_b"], b["real_b"])
    _check_aligned(ds, 4, None)
    pairs = load_sr_pairs(str(root), scale=4)
    assert len(pairs) == 3 and pairs[0][0].dtype == np.uint8
    assert pairs[0][0].shape == (10, 12, 3) and pairs[0][1].shape == (40, 48, 3)
    np.testing.assert_array_equal(pairs[0][0], np.asarray(Image.open(root / "img_001_SRF_4_LR.png")))


def test_channels_and_degradations(hr_root: Path) -> None:
    gray = SuperResFolder(root=str(hr_root), scale=2, gt_size=16, channels=1)
    s = gray[0]
    assert s["real_a"].shape == (1, 8, 8) and s["real_b"].shape == (1, 16, 16)
    clean = SuperResFolder(root=str(hr_root), scale=2, gt_size=16)
    noisy = SuperResFolder(root=str(hr_root), scale=2, gt_size=16, degradations=[
        {"type": "GaussianBlur", "p": 1.0}, {"type": "GaussNoise", "std_range": [0.05, 0.1], "p": 1.0},
        {"type": "ImageCompression", "quality_range": [30, 60], "p": 1.0}])
    a, b = clean[(2, 5)], noisy[(2, 5)]
    assert torch.equal(a["real_b"], b["real_b"])  # HR untouched, same crop
    assert not torch.allclose(a["real_a"], b["real_a"]) and b["real_a"].abs().max() <= 1
    assert torch.equal(noisy[(2, 5)]["real_a"], b["real_a"])  # seeded per sample


def test_size_and_pairing_errors(tmp_path: Path, hr_root: Path) -> None:
    with pytest.raises(DataError, match="001.png") as info:
        SuperResFolder(root=str(hr_root), scale=4, gt_size=40)  # 36x36 is too small
    assert "000.png" not in str(info.value)
    SuperResFolder(root=str(hr_root), scale=4, gt_size=40, crop=False)  # whole images: no crop size needed
    root = _suffix_folder(tmp_path, 4)
    with pytest.raises(DataError, match="LR image"):  # LR crop 10 px > 9x9 LR
        SuperResFolder(root=str(root), scale=4, gt_size=40)
    _save(root / "img_009_SRF_4_HR.png", photo(16, 16))
    with pytest.raises(DataError, match="img_009_SRF_4_HR.png"):
        SuperResFolder(root=str(root), scale=4, gt_size=16)
    (root / "img_009_SRF_4_HR.png").unlink()
    _save(root / "stray.png", photo(16, 16))
    with pytest.raises(DataError, match="stray.png"):
        SuperResFolder(root=str(root), scale=4, gt_size=16)
    (root / "stray.png").unlink()
    ds = SuperResFolder(root=str(root), scale=2, gt_size=16)  # LR files made for x4
    with pytest.raises(DataError, match="with scale 2 the HR image must be 18x18"):
        ds[1]


def test_recipe_checks() -> None:
    assert SuperResFolder.channels_from_config(root="x", channels=1) == {"real_a": 1, "real_b": 1}
    DATASETS.check({"type": "superres_folder", "root": "x", "scale": 2, "gt_size": 96}, key="data")
    bad = [({"gt_size": 30}, "data.gt_size"), ({"scale": 0}, "data.scale"), ({"gt_size": -4}, "data.gt_size"),
           ({"degradations": [{"type": "HorizontalFlip"}]}, "data.degradations[0]"),
           ({"degradations": [{"type": "Blurr"}]}, "data.degradations[0]"), ({"size": 32}, "data.size")]
    for cfg, key in bad:
        with pytest.raises(RecipeError) as info:
            DATASETS.check({"type": "superres_folder", "root": "x", "scale": 4, **cfg}, key="data")
        assert info.value.key == key, cfg
    with pytest.raises(RecipeError, match="use 28 or 32"):
        SuperResFolder.channels_from_config(root="x", gt_size=30)
    SuperResFolder.channels_from_config(root="x", gt_size=30, crop=False)


# ---------------------------------------------------------------- metrics
def _noisy_pair(h: int = 40, w: int = 48, sigma: float = 8.0) -> tuple[np.ndarray, np.ndarray]:
    a = photo(h, w, seed=3).astype(np.float64)
    b = np.clip(np.rint(a + np.random.default_rng(0).normal(0, sigma, a.shape)), 0, 255)
    return a, b


def test_psnr_and_ssim_match_skimage() -> None:
    a, b = _noisy_pair()
    opts = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False, "data_range": 255}
    assert psnr(a, b) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=255), rel=1e-12)
    assert ssim(a, b) == pytest.approx(structural_similarity(a, b, channel_axis=2, **opts), rel=1e-9)
    c = 3
    ac, bc = a[c:-c, c:-c], b[c:-c, c:-c]
    assert psnr(a, b, crop_border=c) == pytest.approx(peak_signal_noise_ratio(ac, bc, data_range=255), rel=1e-12)
    assert ssim(a, b, crop_border=c) == pytest.approx(structural_similarity(ac, bc, channel_axis=2, **opts), rel=1e-9)
    ya, yb = rgb_to_y(ac), rgb_to_y(bc)
    assert psnr(a, b, crop_border=c, y_channel=True) == pytest.approx(peak_signal_noise_ratio(ya, yb, data_range=255))
    assert ssim(a, b, crop_border=c, y_channel=True) == pytest.approx(structural_similarity(ya, yb, **opts), rel=1e-9)
    assert ssim(a[..., 0], b[..., 0]) == pytest.approx(structural_similarity(a[..., 0], b[..., 0], **opts), rel=1e-9)


def test_identical_images_and_bad_input() -> None:
    a, _ = _noisy_pair()
    assert psnr(a, a) == float("inf") and psnr(a, a.copy(), y_channel=True) == float("inf")
    assert ssim(a, a) == pytest.approx(1.0, abs=1e-12) and ssim(a, a, y_channel=True) == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(ValueError, match="shape"):
        psnr(a, a[:-1])
    with pytest.raises(ValueError, match="11x11"):
        ssim(a[:12, :12], a[:12, :12], crop_border=1)


def test_rgb_to_y_is_matlab_rgb2ycbcr() -> None:
    a, _ = _noisy_pair()
    np.testing.assert_allclose(rgb_to_y(a), rgb2ycbcr(a / 255.0)[..., 0], atol=1e-9)
    assert rgb_to_y(np.full((1, 1, 3), 255.0))[0, 0] == pytest.approx(235.0, abs=1e-3)
    assert rgb_to_y(np.zeros((1, 1, 3)))[0, 0] == 16.0
    np.testing.assert_allclose(rgb_to_y(a[..., :1]), rgb_to_y(np.repeat(a[..., :1], 3, axis=2)))


def test_bicubic_upscale() -> None:
    lr = photo(12, 10, seed=1)
    up = bicubic_upscale(lr, 3)
    assert up.shape == (36, 30, 3) and up.min() >= 0 and up.max() <= 255
    pil = np.asarray(Image.fromarray(lr).resize((30, 36), Image.BICUBIC)).astype(np.float64)
    assert np.abs(up - pil).mean() < 1.0
    assert bicubic_upscale(lr[..., 0], 2).shape == (24, 20, 1)


class _BicubicNet(nn.Module):
    """A 'net' that is bicubic upscaling on [-1, 1] tensors: it must score exactly like the bicubic baseline."""

    in_channels = out_channels = 3

    def __init__(self, scale: int):
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.interpolate(x, scale_factor=self.scale, mode="bicubic", antialias=True)


def test_evaluate_sr_against_bicubic() -> None:
    pairs = []
    for i, (h, w) in enumerate([(48, 40), (32, 36), (45, 43)]):  # the last HR is trimmed to 44x40
        hr = photo(h, w, seed=i)
        pairs.append((np.clip(np.rint(box_down(hr.astype(np.float64), 4)), 0, 255).astype(np.uint8), hr))
    pairs.append((pairs[0][0][..., :1].copy(), pairs[0][1][..., :1].copy()))  # grayscale, as Set14's img_003
    out = evaluate_sr(_BicubicNet(4), pairs, scale=4)
    assert out["images"] == 4
    for key in ("psnr", "ssim", "psnr_y", "ssim_y"):
        assert out[key] == pytest.approx(out[f"bicubic_{key}"], abs=0.02), key
    assert 15 < out["psnr_y"] < 45 and 0 < out["ssim_y"] < 1
    torch.manual_seed(0)
    net = RRDBNet(scale=2, **TINY_G).train()
    lr = photo(13, 11, seed=2)  # odd LR sides: padded to the x2 net's multiple, output cropped back
    out = evaluate_sr(net, [(lr, photo(26, 22, seed=2))], scale=2, crop_border=0)
    assert net.training and all(np.isfinite(v) for v in out.values())
    with pytest.raises(ValueError, match="x4"):
        evaluate_sr(net, pairs[:1], scale=4)
