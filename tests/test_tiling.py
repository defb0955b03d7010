"""Tiled translation (i2i/tiling.py, translate --tile) and network interpolation (i2i interpolate)."""
from __future__ import annotations

import itertools
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from i2i.cli import main
from i2i.data.io import read_image, write_image
from i2i.errors import I2IError
from i2i.inference.export import interpolate_exports, load_export, write_export
from i2i.inference.tiling import (
    axis_windows,
    check_tile,
    iter_tiled_rows,
    pad_to_multiple,
    tile_starts,
    tiled_forward,
)
from i2i.inference.tiling import (
    input_tensor as _input_tensor,
)
from i2i.recipe import Recipe


# ---------------------------------------------------------------- tiny nets (recipes name them by dotted path)
class ConvStack(nn.Module):
    """``layers`` 3x3 convs (receptive-field radius = layers), optional BatchNorm: tile-local."""

    def __init__(self, in_channels: int = 3, out_channels: int = 3, width: int = 8, layers: int = 3,
                 norm: str = "none", multiple: int = 1):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        body: list[nn.Module] = []
        c = in_channels
        for i in range(layers):
            last = i == layers - 1
            body.append(nn.Conv2d(c, out_channels if last else width, 3, padding=1))
            if not last:
                body += ([nn.BatchNorm2d(width)] if norm == "batch" else []) + [nn.LeakyReLU(0.2)]
            c = width
        self.body = nn.Sequential(*body, nn.Tanh())

    @classmethod
    def size_multiple(cls, **kwargs: Any) -> int:
        return kwargs.get("multiple", 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class ConvSR(nn.Module):
    """Super-resolution x``scale``: convs at low resolution, then PixelShuffle or nearest upsampling + a conv."""

    def __init__(self, in_channels: int = 3, out_channels: int = 3, width: int = 8, scale: int = 2,
                 upsample: str = "shuffle", declare_scale: bool = True):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        if declare_scale:
            self.scale = scale
        head = [nn.Conv2d(in_channels, width, 3, padding=1), nn.LeakyReLU(0.2)]
        if upsample == "shuffle":
            tail = [nn.Conv2d(width, out_channels * scale * scale, 3, padding=1), nn.PixelShuffle(scale)]
        else:
            tail = [nn.Upsample(scale_factor=scale, mode="nearest"), nn.Conv2d(width, out_channels, 3, padding=1)]
        self.body = nn.Sequential(*head, *tail, nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def _randomise_bn(net: nn.Module) -> nn.Module:
    g = torch.Generator().manual_seed(1)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.3)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return net.eval()


def _whole(net: nn.Module, x: torch.Tensor, multiple: int = 1) -> torch.Tensor:
    xp, (h, w) = pad_to_multiple(x, multiple)
    with torch.no_grad():
        y = net(xp)
    s = y.shape[-1] // xp.shape[-1]
    return y[..., : h * s, : w * s]


# ---------------------------------------------------------------- tiled == whole image
@pytest.mark.parametrize("size", [(97, 130), (130, 61), (20, 130), (40, 40), (41, 39)])
@pytest.mark.parametrize("norm", ["none", "batch"])
def test_tiled_equals_whole_image_scale_1(size, norm):
    torch.manual_seed(0)
    net = _randomise_bn(ConvStack(layers=4, norm=norm))  # radius 4 = overlap // 4
    x = torch.rand(1, 3, *size) * 2 - 1
    for window in ("cosine", "linear"):
        y = tiled_forward(net, x, tile=40, overlap=16, batch=3, window=window)
        assert y.shape == x.shape
        torch.testing.assert_close(y, _whole(net, x), atol=1e-5, rtol=0)


@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("upsample, declare", [("shuffle", True), ("nearest", False)])
def test_tiled_equals_whole_image_super_resolution(scale, upsample, declare):
    torch.manual_seed(scale)
    net = ConvSR(scale=scale, upsample=upsample, declare_scale=declare).eval()
    x = torch.rand(3, 53, 75) * 2 - 1  # (C, H, W) in, (C, H*s, W*s) out; not divisible by the tile
    y = tiled_forward(net, x, tile=24, overlap=12, batch=2)
    assert y.shape == (3, 53 * scale, 75 * scale)
    torch.testing.assert_close(y, _whole(net, x[None])[0], atol=1e-5, rtol=0)


class Strided(nn.Module):
    """Stride-2 conv, BatchNorm (eval), conv at half resolution, nearest x2, conv: size multiple 2, radius ~6 px."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 3, 1, 1),
                                  nn.Upsample(scale_factor=2), nn.Conv2d(8, 3, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def test_strided_net_stays_exact_with_tiles_aligned_to_its_multiple():
    torch.manual_seed(0)
    net = _randomise_bn(Strided())
    x = torch.rand(1, 3, 91, 123) * 2 - 1  # padded to 92x124 like the whole image
    y = tiled_forward(net, x, tile=40, overlap=27, multiple=2)  # stride 13 -> 12: starts stay even
    torch.testing.assert_close(y, _whole(net, x, multiple=2), atol=1e-5, rtol=0)
    assert all(s % 2 == 0 for s in tile_starts(124, 40, 27, align=2))


def test_image_smaller_than_a_tile_is_padded_like_the_whole_image():
    torch.manual_seed(0)
    net = ConvStack(multiple=8).eval()
    x = torch.rand(1, 3, 21, 30) * 2 - 1
    y = tiled_forward(net, x, tile=64, overlap=16, multiple=8)
    assert y.shape == x.shape
    torch.testing.assert_close(y, _whole(net, x, multiple=8), atol=1e-6, rtol=0)


def test_translate_input_conversion_is_bit_identical_to_the_io_helpers():
    from i2i.data.io import adapt_channels, to_float, to_tensor
    rng = np.random.default_rng(0)
    u8, u16 = (rng.random((30, 20, 4)) * 255).astype(np.uint8), (rng.random((30, 20, 1)) * 65535).astype(np.uint16)
    cases = [(u8, 3), (u8[..., :3], 1), (u16, 3), (np.arange(65536, dtype=np.uint16).reshape(256, 256, 1), 1),
             ((rng.random((30, 20, 3)) * 1.4 - 0.2).astype(np.float32), 3)]
    for source, channels in cases:
        assert torch.equal(_input_tensor(source, channels), to_tensor(to_float(adapt_channels(source, channels))))


def test_rows_come_out_in_order_and_only_once():
    net = ConvSR(scale=2).eval()
    x = torch.rand(3, 100, 50)
    rows = list(iter_tiled_rows(net, x, tile=32, overlap=8, batch=1))
    starts = [r for r, _ in rows]
    assert starts == sorted(starts) and len(rows) > 2
    assert all(r + t.shape[1] == nxt for (r, t), nxt in zip(rows, starts[1:] + [200]))


def test_instance_norm_net_tiles_without_error_and_stays_close():
    """InstanceNorm is not tile-local: tiled output differs (per-tile statistics) but keeps shape and range."""
    from i2i.nets.resnet import ResnetGenerator
    torch.manual_seed(0)
    net = ResnetGenerator(base_channels=4, blocks=1, norm="instance").eval()
    x = torch.rand(1, 3, 70, 90) * 2 - 1
    y = tiled_forward(net, x, tile=32, overlap=16, multiple=4)
    assert y.shape == x.shape and torch.isfinite(y).all() and y.abs().max() <= 1


# ---------------------------------------------------------------- windows
@pytest.mark.parametrize("length, tile, overlap", [(100, 40, 12), (130, 40, 16), (41, 40, 8), (97, 32, 8),
                                                   (300, 64, 32), (64, 64, 8)])
@pytest.mark.parametrize("scale", [1, 2, 4])
@pytest.mark.parametrize("window", ["cosine", "linear"])
def test_window_weights_sum_to_one(length, tile, overlap, scale, window):
    starts, weights, total = axis_windows(length, tile, overlap, scale=scale, window=window)
    assert starts[0] == 0 and starts[-1] + min(tile, length) == length
    assert all(b - a >= 0 and a + min(tile, length) - b >= overlap for a, b in itertools.pairwise(starts))
    torch.testing.assert_close(total, torch.ones(length * scale), atol=1e-6, rtol=0)
    assert weights[0][0] == 1 and weights[-1][-1] == 1  # image borders are not down-weighted
    for a, b, w_prev, w_next in zip(starts, starts[1:], weights, weights[1:]):
        quarter = (a + min(tile, length) - b) // 4 * scale  # outputs that saw the cut edge get weight 0
        if quarter:
            assert (w_next[:quarter] == 0).all() and (w_prev[-quarter:] == 0).all()
        assert ((w_prev >= 0) & (w_prev <= 1)).all()


def test_weights_are_normalised_when_more_than_two_tiles_overlap():
    x = torch.rand(2, 77, 93)
    y = tiled_forward(nn.Identity(), x, tile=16, overlap=12, batch=5)  # stride 4: four tiles cover each pixel
    torch.testing.assert_close(y, x, atol=1e-6, rtol=0)


def test_tile_starts():
    assert tile_starts(30, 64, 8) == [0]
    assert tile_starts(100, 40, 10) == [0, 30, 60]
    assert tile_starts(101, 40, 10) == [0, 30, 60, 61]
    assert tile_starts(100, 40, 10, align=4) == [0, 28, 56, 60]
    assert tile_starts(100, 40, 38, align=4) == list(range(0, 60, 2)) + [60]  # stride 2 < align: kept


# ---------------------------------------------------------------- validation
def test_check_tile_rounds_and_refuses():
    assert check_tile(128, 32, multiple=4) == (128, None)
    tile, note = check_tile(100, 16, multiple=64)
    assert tile == 128 and "--tile 100 rounded up to 128" in note
    tile, note = check_tile(4, 2, multiple=4, min_size=8)
    assert tile == 8 and "minimum" in note
    tile, note = check_tile(30, 24, multiple=4)
    assert tile == 32 and "rounded up to 32" in note and "computed about 16 times" in note
    for args, flag in (((0, 8), "--tile"), ((-3, 8), "--tile"), ((64, 0), "--tile-overlap"),
                       ((64, 64), "--tile-overlap"), ((30, 32), "--tile-overlap")):
        with pytest.raises(I2IError, match=flag):
            check_tile(*args, multiple=4 if args == (30, 32) else 1)


def test_tiled_forward_refuses_bad_arguments():
    net, x = ConvStack().eval(), torch.rand(3, 40, 40)
    with pytest.raises(I2IError, match="overlap"):
        tiled_forward(net, x, tile=16, overlap=16)
    with pytest.raises(I2IError, match="window"):
        tiled_forward(net, x, tile=16, overlap=4, window="gauss")
    with pytest.raises(I2IError, match="one image"):
        tiled_forward(net, torch.rand(2, 3, 40, 40), tile=16, overlap=4)
    with pytest.raises(I2IError, match="scale=4"):
        tiled_forward(ConvSR(scale=2, declare_scale=False).eval(), x, tile=16, overlap=4, scale=4)
    shrink = nn.Sequential(nn.Conv2d(3, 3, 3)).eval()  # 16 -> 14: not an integer upscale
    with pytest.raises(I2IError, match="integer multiple"):
        tiled_forward(shrink, x, tile=16, overlap=4)


# ---------------------------------------------------------------- through the CLI
def run(*argv: str) -> int:
    return main(list(argv))


def make_export(folder: Path, net_cfg: dict, *, seed: int = 0, state: dict | None = None) -> Path:
    from i2i.nets import build_net
    recipe = Recipe.of({"name": "tiny", "model": {"type": "pix2pix"}, "nets": {"g": net_cfg}}, "tiny")
    torch.manual_seed(seed)
    net = build_net(recipe, "g", file="tiny")
    _randomise_bn(net)
    if state is None:
        state = net.state_dict()
        for k, v in state.items():
            if "num_batches_tracked" in k:
                v.fill_(seed + 3)
    meta = {"model": "pix2pix", "step": seed, "ema": False, "directions": {"AtoB": "g"}, "name": "tiny"}
    return write_export(recipe, {"g": state}, folder, meta)


@pytest.fixture(autouse=True)
def _trust_this_module(monkeypatch):
    """The exports below name nets defined here: let them import this module (as a user's allow-list would)."""
    monkeypatch.setenv("I2I_TRUSTED_MODULES", "tests.test_tiling")


def test_exports_naming_code_are_refused_unless_allowed(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("I2I_TRUSTED_MODULES")
    export = make_export(tmp_path / "export", STACK)
    write_image(tmp_path / "in" / "a.png", np.zeros((8, 8, 3), np.uint8))
    args = ["translate", str(export), "-i", str(tmp_path / "in"), "--device", "cpu"]
    assert main([*args, "-o", str(tmp_path / "o1")]) == 2
    err = capsys.readouterr().err
    assert "nets.g.type imports module 'tests.test_tiling'" in err and "--allow-code tests.test_tiling" in err
    assert not (tmp_path / "o1").exists()
    assert main([*args, "-o", str(tmp_path / "o2"), "--allow-code", "tests"]) == 0  # a parent package allows
    assert main([*args, "-o", str(tmp_path / "o3"), "--trust-code"]) == 0
    monkeypatch.setenv("I2I_TRUSTED_MODULES", "other, tests.test_tiling")
    assert main([*args, "-o", str(tmp_path / "o4")]) == 0
    assert (tmp_path / "o4" / "a.png").is_file()


STACK = {"type": "tests.test_tiling:ConvStack", "layers": 4, "norm": "batch", "multiple": 4}
SR2 = {"type": "tests.test_tiling:ConvSR", "scale": 2}


def _images(folder: Path) -> None:
    rng = np.random.default_rng(0)
    def smooth(h: int, w: int, c: int) -> np.ndarray:
        return np.cumsum(rng.random((h, w, c)), 1) % 1.0

    rgba = smooth(70, 93, 4)
    rgba[..., 3] = np.linspace(0, 1, 93)[None, :] * np.linspace(0.5, 1, 70)[:, None]  # a smooth alpha
    write_image(folder / "rgba.png", (rgba * 255).astype(np.uint8))
    write_image(folder / "sub" / "gray16.png", (smooth(50, 75, 1) * 65535).astype(np.uint16))
    write_image(folder / "small.jpg", (smooth(20, 24, 3) * 255).astype(np.uint8))


def _last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.mark.parametrize("cfg, scale", [(STACK, 1), (SR2, 2)])
def test_translate_with_tiles_matches_untiled(tmp_path, capsys, cfg, scale):
    export = make_export(tmp_path / "export", cfg)
    src = tmp_path / "in"
    _images(src)
    assert run("translate", str(export), "-i", str(src), "-o", str(tmp_path / "plain"), "--tile", "0",
               "--device", "cpu") == 0
    assert _last_json(capsys)["tiled"] == 0
    assert run("translate", str(export), "-i", str(src), "-o", str(tmp_path / "tiled"), "--tile", "32",
               "--tile-overlap", "16", "--batch-size", "3", "--tile-batch", "3", "--device", "cpu") == 0
    figures = _last_json(capsys)
    assert figures["images"] == 3 and figures["tiled"] == 2  # small.jpg fits in one tile: the batched path
    assert figures["tile_batch"] == 3
    assert run("translate", str(export), "-i", str(src), "-o", str(tmp_path / "one"), "--tile", "32",
               "--tile-overlap", "16", "--device", "cpu") == 0
    assert _last_json(capsys)["tile_batch"] == 1  # the CPU default: one tile per forward pass
    for rel in ("rgba.png", "sub/gray16.png"):
        one, batched = read_image(tmp_path / "one" / rel), read_image(tmp_path / "tiled" / rel)
        assert np.abs(one.astype(np.int64) - batched.astype(np.int64)).max() <= 1, rel
    for rel, shape, channels, dtype in (("rgba.png", (70, 93), 4, np.uint8), ("sub/gray16.png", (50, 75), 1,
                                        np.uint16), ("small.jpg", (20, 24), 3, np.uint8)):
        plain, tiled = read_image(tmp_path / "plain" / rel), read_image(tmp_path / "tiled" / rel)
        assert tiled.shape == (shape[0] * scale, shape[1] * scale, channels) and tiled.dtype == dtype, rel
        assert np.abs(plain.astype(np.int64) - tiled.astype(np.int64)).max() <= 1, rel
    # alpha is carried over, resized with the image for a super-resolution net
    alpha_in = read_image(src / "rgba.png")[..., 3].astype(np.float64)
    alpha_out = read_image(tmp_path / "tiled" / "rgba.png")[..., 3].astype(np.float64)
    shrunk = alpha_out.reshape(70, scale, 93, scale).mean(axis=(1, 3))
    assert np.abs(shrunk - alpha_in).max() <= 1.5


def test_translate_tiles_large_images_automatically(tmp_path, capsys, caplog, monkeypatch):
    from i2i.inference import translate
    monkeypatch.setattr(translate, "AUTO_TILE_PIXELS", 60 * 60)
    monkeypatch.setattr(translate, "AUTO_TILE", 62)  # rounded up to the net's multiple: 64
    export = make_export(tmp_path / "export", STACK)
    src = tmp_path / "in"
    _images(src)
    caplog.set_level(logging.INFO, logger="i2i")
    assert run("translate", str(export), "-i", str(src), "-o", str(tmp_path / "out"), "--device", "cpu") == 0
    assert _last_json(capsys)["tiled"] == 2
    messages = [r.getMessage() for r in caplog.records]
    assert any("rgba.png: 93x70 px is above the automatic tiling threshold" in m and "64 px tiles" in m
               for m in messages), messages
    assert not any("small.jpg" in m for m in messages)


def test_translate_rejects_bad_tile_flags(tmp_path, capsys, caplog):
    export = make_export(tmp_path / "export", STACK)
    src = tmp_path / "in"
    _images(src)
    for flags, words in ((["--tile", "32", "--tile-overlap", "32"], "--tile-overlap 32 must be smaller"),
                         (["--tile", "-4"], "--tile must be a positive"),
                         (["--tile", "32", "--tile-overlap", "0"], "--tile-overlap must be a positive"),
                         (["--tile-overlap", "600"], "automatic tile size 512")):
        assert run("translate", str(export), "-i", str(src), "-o", str(tmp_path / "o"), *flags) == 2
        err = capsys.readouterr().err
        assert err.startswith("i2i: error: ") and words in err and len(err.strip().splitlines()) == 1, err
    caplog.set_level(logging.INFO, logger="i2i")
    assert run("translate", str(export), "-i", str(src), "-o", str(tmp_path / "o"), "--tile", "30",
               "--tile-overlap", "8", "--device", "cpu") == 0
    assert any("--tile 30 rounded up to 32" in r.getMessage() for r in caplog.records)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_tiles_on_a_cuda_device_come_back_to_the_cpu():
    torch.manual_seed(0)
    net = ConvSR(scale=4).eval()
    x = torch.rand(3, 90, 70) * 2 - 1
    ref = _whole(net, x[None])[0]
    torch.cuda.reset_peak_memory_stats()
    y = tiled_forward(net.cuda(), x, tile=32, overlap=16, device="cuda", batch=2)
    assert y.device.type == "cpu" and y.shape == ref.shape
    torch.testing.assert_close(y, ref, atol=1e-4, rtol=0)  # TF32 convolutions on the device


# ---------------------------------------------------------------- interpolate
def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "g.safetensors"))


def test_interpolate_blends_floats_and_keeps_integer_buffers_of_a(tmp_path, capsys):
    a = make_export(tmp_path / "a", STACK, seed=1)
    b = make_export(tmp_path / "b", STACK, seed=2)
    wa, wb = _weights(a), _weights(b)
    assert run("interpolate", str(a), str(b), "--alpha", "0", "--output", str(tmp_path / "c0")) == 0
    assert _last_json(capsys)["alpha"] == 0.0
    w0 = _weights(tmp_path / "c0")
    assert all(torch.equal(w0[k], wa[k]) for k in wa)
    interpolate_exports(a, b, 1.0, tmp_path / "c1")
    w1 = _weights(tmp_path / "c1")
    assert all(torch.equal(w1[k], wb[k] if wa[k].is_floating_point() else wa[k]) for k in wa)
    interpolate_exports(a, b, 0.5, tmp_path / "half")
    half = _weights(tmp_path / "half")
    ints = [k for k in wa if not wa[k].is_floating_point()]
    assert ints and all(torch.equal(half[k], wa[k]) and not torch.equal(wa[k], wb[k]) for k in ints)
    for k in wa:
        if wa[k].is_floating_point():
            torch.testing.assert_close(half[k], (wa[k] + wb[k]) / 2)
    meta = json.loads((tmp_path / "half" / "meta.json").read_text())
    assert meta["interpolated"] == {"a": str(a), "b": str(b), "alpha": 0.5, "a_step": 1, "b_step": 2}
    assert meta["directions"] == {"AtoB": "g"} and meta["files"] == {"g": "g.safetensors"}
    loaded = load_export(tmp_path / "half")  # a complete export: it loads and translates
    assert loaded.nets["g"](torch.zeros(1, 3, 8, 8)).shape == (1, 3, 8, 8)


def test_interpolate_refuses_mismatches_bad_alpha_and_overwriting_inputs(tmp_path, capsys):
    a = make_export(tmp_path / "run_a" / "export", STACK, seed=1)
    b = make_export(tmp_path / "b", STACK, seed=2)
    wide = make_export(tmp_path / "wide", {**STACK, "width": 16})
    sr = make_export(tmp_path / "sr", {**SR2, "in_channels": 3})
    before = _weights(a)
    state = dict(before, **{"body.0.weight": torch.zeros(8, 3, 5, 5)})
    odd = make_export(tmp_path / "odd", STACK, state=state)
    cases = [
        ((str(a), str(wide), "--alpha", "0.5"), "recipe nets.g.width: 8 in A, 16 in B"),
        ((str(a), str(sr), "--alpha", "0.5"), "recipe nets.g"),
        ((str(a), str(odd), "--alpha", "0.5"), "key 'body.0.weight' is (8, 3, 3, 3) torch.float32 in A, (8, 3, 5, 5)"),
        ((str(a), str(b), "--alpha", "1.5"), "--alpha must be between 0 and 1"),
        ((str(a), str(b), "--alpha", "nan"), "--alpha must be between 0 and 1"),
    ]
    for argv, words in cases:
        assert run("interpolate", *argv, "--output", str(tmp_path / "out")) == 2
        err = capsys.readouterr().err
        assert words in err and len(err.strip().splitlines()) == 1, err
    for out in (a, b, tmp_path / "run_a", tmp_path):  # an input, or a folder that holds one
        assert run("interpolate", str(tmp_path / "run_a"), str(b), "--alpha", "0.5", "--output", str(out)) == 2
        assert "overlaps the input export" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    assert all(torch.equal(v, before[k]) for k, v in _weights(a).items())  # inputs untouched
    assert run("interpolate", str(tmp_path / "run_a"), str(b), "--alpha", "0.25", "-o", str(tmp_path / "ok")) == 0


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
def test_tiles_cut_from_the_file_dtype_equal_tiles_of_the_float_image(dtype):
    """translate tiles large images from their file's dtype (no full-size float copy): same output, bit for bit,
    including the padding to the net's multiple."""
    from i2i.inference.tiling import ImageSource, unit_float
    rng = np.random.default_rng(0)
    if dtype == "float32":
        arr = rng.random((50, 70, 3), dtype=np.float32)
    else:
        arr = rng.integers(0, np.iinfo(dtype).max + 1, (50, 70, 3)).astype(dtype)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 3, padding=1))
    lazy = tiled_forward(net, ImageSource(arr), tile=24, overlap=8, multiple=8)
    dense = tiled_forward(net, unit_float(arr), tile=24, overlap=8, multiple=8)
    assert lazy.shape == dense.shape == (2, 50, 70)
    assert torch.equal(lazy, dense)


def test_cpu_image_batch_follows_the_work_per_pass(tmp_path, monkeypatch):
    """On the CPU, translate batches images only while a pass stays small: a big net goes one image at a time."""
    from i2i.inference import translate
    export = load_export(make_export(tmp_path / "export", STACK), allow_code=["tests"])
    src = tmp_path / "in"
    for i in range(5):
        write_image(src / f"{i}.png", np.full((24, 32, 3), 40 * i, np.uint8))
    sizes: list[int] = []
    export.nets["g"].register_forward_hook(lambda m, inputs, out: sizes.append(inputs[0].shape[0]))
    runs = {}
    for name, limit, batch in (("big", 1.0, None), ("small", 1e15, None), ("explicit", 1.0, 2)):
        monkeypatch.setattr(translate, "CPU_PASS_FLOPS", limit)
        sizes.clear()
        result = translate.translate_folder(export, src, tmp_path / name, batch_size=batch, device="cpu")
        assert result["images"] == 5
        runs[name] = list(sizes)
    assert runs["big"] == [1] + [1] * 5  # the FLOP count's pass, then one image per pass
    assert runs["small"] == [1, 4, 1]
    assert runs["explicit"] == [2, 2, 1]  # --batch-size wins, and no FLOP count is needed
    for name in ("small", "explicit"):
        for i in range(5):
            one, other = read_image(tmp_path / "big" / f"{i}.png"), read_image(tmp_path / name / f"{i}.png")
            assert np.abs(one.astype(np.int64) - other.astype(np.int64)).max() <= 1


@pytest.mark.parametrize("value", [0, -1, 2.0, True, "4"])
def test_translate_counts_must_be_positive_integers(value):
    from i2i.errors import I2IError, check_count
    with pytest.raises(I2IError, match=r"--tile-batch must be a positive integer, got "):
        check_count("--tile-batch", value)
    check_count("--tile-batch", None)  # not given: the default applies
    check_count("--tile-batch", 3)
