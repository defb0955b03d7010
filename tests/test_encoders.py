"""The encoder GANs (AAE, BiGAN/ALI, VAE-GAN): group isolation, each net's own objective, `i2i encode`, reconstruction
through `i2i translate`, sampling, the encoder measures, and (slow) learning on real digits."""
from __future__ import annotations

import functools
import json

import numpy as np
import pytest
import torch
from PIL import Image

from i2i.build import build
from i2i.cli import main
from i2i.data.labeled import load_labeled_arrays
from i2i.errors import RecipeError
from i2i.evaluation.encoder_scoring import evaluate_encoder, linear_probe, probe_subset
from i2i.inference.export import load_export
from i2i.models.base import PlainContext
from i2i.recipe import load_recipe

from .conftest import ROOT, write_recipe
from .test_models import changed, params

MODELS = ("aae", "bigan", "vaegan")
TINY = {"aae": ["nets.g.hidden=[32, 32]", "nets.e.hidden=[32, 32]", "nets.d.hidden=[16]"],
        "bigan": ["nets.g.base_channels=8", "nets.e.base_channels=8", "nets.d.base_channels=8", "nets.d.hidden=16"],
        "vaegan": ["nets.g.base_channels=8", "nets.e.base_channels=8", "nets.d.base_channels=8"]}


def tiny(model: str, root, out, *extra: str, steps: int = 4) -> dict:
    recipe = load_recipe(ROOT / "recipes" / "demo" / f"{model}.yaml", [
        f"data.root={root}", "data.batch_size=8", *TINY[model], f"train.output_dir={out}", f"train.max_steps={steps}",
        "train.log_every=2", f"train.sample_every={steps}", f"train.checkpoint_every={steps}",
        "train.tensorboard=false", "train.cpu_threads=1", "eval=null", *extra])
    return dict(recipe)


@pytest.fixture(scope="module")
def small_digits(tmp_path_factory):
    """An MNIST-style .npz of scikit-learn's 8x8 digits (resized to 32 px by the data set): 200 train, 100 test."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    x = (digits.images * 16).clip(0, 255).astype(np.uint8)
    path = tmp_path_factory.mktemp("digits") / "digits.npz"
    np.savez(path, x_train=x[:200], y_train=digits.target[:200], x_test=x[200:300], y_test=digits.target[200:300])
    return path


def batch_of(parts, n: int = 8) -> dict[str, torch.Tensor]:
    items = [parts.dataset[(i, i)] for i in range(n)]
    return {k: torch.stack([it[k] for it in items]) for k in items[0] if torch.is_tensor(items[0][k])}


def built(model: str, root, tmp_path, *extra: str):
    torch.manual_seed(0)
    return build(load_recipe(write_recipe(tmp_path / f"{model}.yaml", tiny(model, root, tmp_path / "run", *extra))))


@pytest.mark.parametrize("model", MODELS)
def test_group_isolation(model, small_digits, tmp_path):
    parts = built(model, small_digits, tmp_path)
    m, ctx = parts.model, PlainContext(parts.model)
    assert set(m.optim_groups["g"]) == {"g", "e"} and m.optim_groups["d"] == ("d",)
    gen, disc, batch = ["g", "e"], ["d"], batch_of(parts)

    out = m.generate(batch)
    g_before, d_before = params(m, gen), params(m, disc)
    m.d_step(batch, out, ctx)
    assert not changed(g_before, m, gen), "d_step changed G or E"
    assert changed(d_before, m, disc) == set(d_before), "d_step left some D weights untouched"
    assert all(p.grad is None for n in gen for p in m.nets[n].parameters()), "D loss leaked into G or E"

    out = m.generate(batch)
    g_before, d_before = params(m, gen), params(m, disc)
    for opt in ctx.opts.values():
        opt.zero_grad(set_to_none=True)
    logs = m.g_step(batch, out, ctx)
    assert not changed(d_before, m, disc), "g_step changed D"
    assert all(p.grad is None for p in m.nets["d"].parameters()), "G loss leaked into D"
    assert all(p.requires_grad for n in ("g", "e", "d") for p in m.nets[n].parameters()), "a net left frozen"
    for n in gen:  # both G and E learn in the G step
        moved = changed({k: v for k, v in g_before.items() if k.startswith(f"{n}.")}, m, [n])
        assert len(moved) > 0.9 * sum(k.startswith(f"{n}.") for k in g_before), f"{n} barely moved"
    assert all(torch.isfinite(v) for v in logs.values())


def _grads(model, name: str) -> float:
    return sum(float(p.grad.abs().sum()) for p in model.nets[name].parameters() if p.grad is not None)


def test_vaegan_each_net_minimises_its_own_objective(small_digits, tmp_path):
    """Larsen et al.: E gets KL + feature reconstruction only, G gamma * feature + adversarial only."""
    parts = built("vaegan", small_digits, tmp_path)
    m, batch = parts.model, batch_of(parts)

    class Recorder(PlainContext):  # backward without stepping: the gradients are what we look at
        def update(self, group, loss):
            for p in (p for n in m.nets.values() for p in n.parameters()):
                p.grad = None
            loss.backward()

    ctx = Recorder(m)
    m.losses["kl"].weight, m.losses["feature"].weight = 0.0, 0.0  # E's terms off: the rest must not reach E
    m.g_step(batch, m.generate(batch), ctx)
    assert _grads(m, "e") == 0 and _grads(m, "g") > 0
    m.losses["kl"].weight, m.losses["feature"].weight = 1.0, 1.0
    m.losses["adv"].weight, m.gamma = 0.0, 0.0  # G's terms off: E's terms must not reach G
    m.g_step(batch, m.generate(batch), ctx)
    assert _grads(m, "g") == 0 and _grads(m, "e") > 0


def test_bigan_generator_loss_swaps_the_pairs(small_digits, tmp_path):
    """G and E minimise (BCE(D(G(z), z), 1) + BCE(D(x, E(x)), 0)) / 2: BiGAN's non-saturating objective (halved as
    the vanilla D objective it swaps), by hand."""
    parts = built("bigan", small_digits, tmp_path)
    m, batch = parts.model, batch_of(parts)
    seen = {}

    class Recorder(PlainContext):
        def update(self, group, loss):
            seen["loss"] = float(loss.detach())

    out = m.generate(batch)
    for net in m.nets.values():
        net.eval()  # dropout off: D gives the same logits twice
    m.g_step(batch, out, Recorder(m))
    d = m.nets["d"]
    with torch.no_grad():
        fake, real = d(out["fake"], out["z"]), d(batch["real"], out["z_enc"])
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    expected = 0.5 * (bce(fake, torch.ones_like(fake)) + bce(real, torch.zeros_like(real)))
    assert seen["loss"] == pytest.approx(float(expected), rel=1e-5)


@pytest.mark.parametrize("key, value, message", [
    ("nets.e.z_dim", 3, "must equal nets.g.z_dim"), ("nets.d.z_dim", 3, "D judges codes"),
    ("nets.e.size", 16, "must equal data.size"), ("nets.e.variational", False, "variance head")])
def test_recipe_errors_name_the_key(key, value, message, small_digits, tmp_path):
    model = "vaegan" if key in ("nets.e.variational", "nets.e.size") else "aae"
    if key == "nets.e.size":
        value = 16
    with pytest.raises(RecipeError, match=message) as err:
        built(model, small_digits, tmp_path, f"{key}={value}")
    assert key in str(err.value)


def test_linear_probe_separates_what_is_separable():
    rng = np.random.default_rng(0)
    y = np.arange(200) % 4
    codes = rng.normal(size=(200, 6)) * 0.1 + np.eye(6)[y] * 3
    assert linear_probe(codes[:100], y[:100], codes[100:], y[100:]) == 1.0
    noise = rng.normal(size=(200, 6))
    assert linear_probe(noise[:100], y[:100], noise[100:], y[100:]) < 0.5


@pytest.fixture(scope="module")
def aae_run(small_digits, tmp_path_factory):
    """A tiny AAE trained by `i2i train` for 4 steps: an export a user would have."""
    tmp = tmp_path_factory.mktemp("aae")
    assert main(["train", str(write_recipe(tmp / "r.yaml", tiny("aae", small_digits, tmp / "run")))]) == 0
    return tmp / "run"


def test_encode_writes_one_code_per_file(aae_run, digits_root, tmp_path, capsys):
    src = tmp_path / "in"
    files = sorted((digits_root / "test").rglob("*.png"))[:5]
    for i, f in enumerate(files):
        (src / f"d{i % 2}").mkdir(parents=True, exist_ok=True)
        Image.open(f).resize((28, 28)).save(src / f"d{i % 2}" / f.name)  # another size: resized for E
    capsys.readouterr()
    assert main(["encode", str(aae_run), "--input", str(src), "--output", str(tmp_path / "codes.npz")]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    codes = np.load(tmp_path / "codes.npz")
    expected = {p.relative_to(src).as_posix() for p in src.rglob("*.png")}
    assert set(codes.files) == expected and result["images"] == 5 and result["z_dim"] == 10
    assert all(codes[k].shape == (10,) and np.isfinite(codes[k]).all() for k in codes.files)
    assert len({codes[k].tobytes() for k in codes.files}) == 5  # different images, different codes
    # the strip: A | 6 decoded codes | B, one row
    a, b = files[0], files[1]
    assert main(["encode", str(aae_run), "--interpolate", str(a), str(b), "--steps", "6",
                 "--output", str(tmp_path / "strip.png")]) == 0
    strip = Image.open(tmp_path / "strip.png")
    assert strip.size == (8 * 34 + 2, 34 + 2)  # 8 tiles of 32 px with make_grid's 2 px padding


def test_translate_reconstructs_at_the_input_size(aae_run, digits_root, tmp_path, capsys):
    """`i2i translate` runs the `reconstruct` direction, G(E(x)): E takes 32 px, so a 28 px input is resized to it
    and the reconstruction back to 28 px, under the input's name."""
    src = tmp_path / "in"
    src.mkdir()
    files = sorted((digits_root / "test").rglob("*.png"))[:3]
    for f in files:
        Image.open(f).resize((28, 28)).save(src / f.name)
    capsys.readouterr()
    assert main(["translate", str(aae_run), "--input", str(src), "--output", str(tmp_path / "out")]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["images"] == 3 and result["direction"] == "reconstruct"
    export = load_export(aae_run)
    e, g = export.nets["e"], export.nets["g"]
    resize = functools.partial(torch.nn.functional.interpolate, mode="bilinear", antialias=True, align_corners=False)
    for f in files:
        real = np.asarray(Image.open(src / f.name), dtype=np.float32)
        rec = np.asarray(Image.open(tmp_path / "out" / f.name), dtype=np.float32)
        assert rec.shape == real.shape == (28, 28)
        with torch.no_grad():
            x = torch.from_numpy(real / 127.5 - 1)[None, None]
            expected = resize(g(e(resize(x, size=(32, 32)))[0], None, None), size=(28, 28))
        expected = ((expected[0, 0].clamp(-1, 1) + 1) * 127.5).numpy()
        assert np.abs(rec - expected).max() <= 1.01  # G(E(x)) at the input's size, up to rounding
        assert np.abs(rec - real).mean() > 1  # not the input passed through


def test_encode_refuses_what_it_cannot_do(aae_run, digits_root, tmp_path, capsys):
    assert main(["encode", str(aae_run), "--input", str(digits_root / "test"), "--output",
                 str(tmp_path / "codes.txt")]) == 2
    assert ".npz" in capsys.readouterr().err
    assert main(["encode", str(aae_run), "--input", str(digits_root / "test"), "--output",
                 str(aae_run / "export" / "codes.npz")]) == 2
    assert "inside the export" in capsys.readouterr().err
    assert not (aae_run / "export" / "codes.npz").exists()


def test_sample_draws_from_the_decoder(aae_run, tmp_path, capsys):
    assert main(["sample", str(aae_run), "--output", str(tmp_path / "s"), "--columns", "4", "--per-class", "2"]) == 0
    assert (tmp_path / "s" / "grid.png").is_file() and len(list((tmp_path / "s").rglob("0*.png"))) == 2


def test_evaluate_encoder_on_real_digits(aae_run, small_digits):
    export = load_export(aae_run)
    x, y, _ = load_labeled_arrays(str(small_digits), "train", 1, 32)
    xt, yt, _ = load_labeled_arrays(str(small_digits), "test", 1, 32)
    figures = evaluate_encoder(export.nets["e"], export.nets["g"], *probe_subset(x, y, 150), xt, yt)
    assert 0 < figures["reconstruction_l1"] < 1 and 0 < figures["reconstruction_mse"] < 1
    assert 0.1 < figures["probe_accuracy"] <= 1 and figures["probe_train_images"] == 150


# capacity and steps for a CPU minute: recon L1 fell 0.45 -> 0.15 (AAE, 150 steps), 0.19 (BiGAN, 200, base 16), 0.26
# (VAE-GAN, 150, base 16; with base 8 only 0.37 at 150 steps, hence 300) in measured runs
LEARN = {"aae": (150, ["nets.g.hidden=[128, 128]", "nets.e.hidden=[128, 128]", "nets.d.hidden=[64, 32]"]),
         "bigan": (200, ["nets.g.base_channels=8", "nets.e.base_channels=8", "nets.d.base_channels=8",
                         "nets.d.hidden=64"]),
         "vaegan": (300, ["nets.g.base_channels=8", "nets.e.base_channels=8", "nets.d.base_channels=8"])}


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_learns_to_reconstruct_real_digits(model, digits_root, tmp_path):
    """On scikit-learn's digits, E and G learn: the test split's reconstruction error G(E(x)) falls well below its
    step-0 value (G's output near 0 at init), and the linear probe on E's codes stays informative."""
    steps, capacity = LEARN[model]
    torch.manual_seed(0)
    recipe = load_recipe(ROOT / "recipes" / "demo" / f"{model}.yaml",
                         [f"data.root={digits_root}", "eval=null", "data.batch_size=32", *capacity])
    parts = build(recipe)
    m = parts.model
    opts = {g: torch.optim.Adam([p for n in names for p in m.nets[n].parameters()], lr=2e-4, betas=(0.5, 0.999))
            for g, names in m.optim_groups.items()}
    ctx = PlainContext(m, opts)
    x, y, _ = load_labeled_arrays(str(digits_root), "train", 1, 32)
    xt, yt, _ = load_labeled_arrays(str(digits_root), "test", 1, 32)
    probe = probe_subset(x, y, 500)
    before = evaluate_encoder(m.nets["e"], m.nets["g"], *probe, xt, yt)
    gen = torch.Generator().manual_seed(0)
    for step in range(steps):
        idx = torch.randint(0, len(x), (32,), generator=gen)
        ctx.step = step
        m.train_step({"real": x[idx], "y": y[idx]}, ctx)
    after = evaluate_encoder(m.nets["e"], m.nets["g"], *probe, xt, yt)
    assert after["reconstruction_l1"] < 0.7 * before["reconstruction_l1"], (before, after)
    assert after["probe_accuracy"] > 0.5, after  # 10 classes: chance is 0.1
