"""BEGAN, EBGAN, ClusterGAN and the mode-coverage measure: hand-computed loss terms, group isolation, k_t as
training state, `i2i cluster`, and (slow) a short CPU run on the digits demo that beats step 0 on each model's
own measure."""
from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch

from i2i.build import build
from i2i.cli import main
from i2i.evaluation.coverage import cluster_accuracy, mode_coverage, model_measures, scalar_figures
from i2i.models.began import Equilibrium, convergence, equilibrium_step, reconstruction_error
from i2i.models.ebgan import energy, margin_loss, pull_away
from i2i.recipe import Recipe, load_recipe

from .conftest import ROOT, write_recipe
from .test_models import PlainContext, changed, params

MODELS = ["began", "ebgan", "clustergan"]


def tiny(model: str, root, out, **train) -> dict:
    """The reference recipe on the digits demo with tiny nets and no eval."""
    over = [f"data.root={root}", "data.batch_size=8", "nets.g.base_channels=8", "nets.d.base_channels=8",
            f"train.output_dir={out}", "train.max_steps=4", "train.log_every=2", "train.sample_every=4",
            "train.checkpoint_every=2", "train.tensorboard=false", "eval=null"]
    if model == "clustergan":
        over += ["nets.e.base_channels=8", "nets.e.hidden=16", "train.n_critic=1"]
    r = load_recipe(ROOT / "recipes" / f"{model}.yaml", over)
    r["train"].update(train)
    r["name"] = model
    return dict(r)


# ------------------------------------------------------------------ hand-computed terms
def test_began_equilibrium_and_convergence_by_hand():
    k = equilibrium_step(torch.tensor(0.5), torch.tensor(0.4), torch.tensor(0.1), gamma=0.5, lambda_k=0.001)
    assert k.item() == pytest.approx(0.5 + 0.001 * (0.5 * 0.4 - 0.1))  # 0.5001
    k = equilibrium_step(torch.tensor(0.5), torch.tensor(0.1), torch.tensor(0.4), gamma=0.5, lambda_k=0.001)
    assert k.item() == pytest.approx(0.5 - 0.001 * 0.35)
    # clipping to [0, 1]
    assert equilibrium_step(torch.tensor(0.9999), torch.tensor(2.0), torch.tensor(0.0), 0.5, 0.01).item() == 1.0
    assert equilibrium_step(torch.tensor(0.0001), torch.tensor(0.0), torch.tensor(1.0), 0.5, 0.01).item() == 0.0
    # M = L(x) + |gamma L(x) - L(G(z))|
    assert convergence(torch.tensor(0.4), torch.tensor(0.1), 0.5).item() == pytest.approx(0.4 + 0.1)
    assert convergence(torch.tensor(0.4), torch.tensor(0.5), 0.5).item() == pytest.approx(0.4 + 0.3)


def test_autoencoder_discriminator_stages():
    """`stages` sets how many strided convs the encoder has (default: down to 4x4); the decoder mirrors them."""
    from torch import nn

    from i2i.nets.autoencoder import AutoencoderDiscriminator
    x = torch.rand(3, 1, 32, 32) * 2 - 1
    for stages, strided, code_map in ((None, 3, (32, 4, 4)), (1, 1, (8, 16, 16)), (2, 2, (16, 8, 8))):
        net = AutoencoderDiscriminator(1, 32, base_channels=8, embed_dim=16, stages=stages)
        rec, h = net(x)
        assert rec.shape == x.shape and h.shape == (3, 16)
        assert sum(isinstance(m, nn.Conv2d) and m.stride == (2, 2) for m in net.encoder.modules()) == strided
        assert net.shape == code_map and net.project.out_features == math.prod(code_map)
    for bad in (0, 4, 1.5):
        with pytest.raises(ValueError, match=r"stages must be an integer in 1\.\.3 at size 32"):
            AutoencoderDiscriminator(1, 32, base_channels=8, embed_dim=16, stages=bad)


def test_reconstruction_error_and_energy_by_hand():
    x = torch.tensor([[[[0.5, -0.5]]], [[[1.0, 0.0]]]])  # (2, 1, 1, 2)
    h = torch.ones(2, 3)

    def d(v):  # a "D" that reconstructs v + [0.1, -0.3] per pixel pair
        return v + torch.tensor([0.1, -0.3]), h

    assert reconstruction_error(d, x).item() == pytest.approx((0.1 + 0.3) / 2)
    e, emb = energy(d, x)
    assert e.tolist() == pytest.approx([(0.01 + 0.09) / 2] * 2) and emb is h


def test_ebgan_margin_by_hand():
    real, fake = torch.tensor([0.1, 0.3]), torch.tensor([0.5, 1.5])
    # D(x) mean 0.2; max(0, 1 - 0.5) = 0.5 and max(0, 1 - 1.5) = 0 per image, mean 0.25
    assert margin_loss(real, fake, 1.0).item() == pytest.approx(0.45)
    assert margin_loss(real, fake, 2.0).item() == pytest.approx(0.2 + (1.5 + 0.5) / 2)
    assert margin_loss(real, fake, 0.0).item() == pytest.approx(0.2)  # no margin: D ignores the fakes


def test_pull_away_by_hand():
    h = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    # cos^2: (1,2) 0, (1,3) 1/2, (2,3) 1/2; twice over ordered pairs / (3 * 2)
    assert pull_away(h).item() == pytest.approx(2 * (0 + 0.5 + 0.5) / 6)
    assert pull_away(5 * h).item() == pytest.approx(pull_away(h).item())  # cosines: scale-free
    assert pull_away(torch.tensor([[1.0, 2.0], [2.0, 4.0]])).item() == pytest.approx(1.0)  # parallel: worst
    assert pull_away(torch.tensor([[1.0, 0.0], [0.0, -3.0]])).item() == pytest.approx(0.0)  # orthogonal: best


def test_mode_coverage_against_a_hand_made_histogram():
    predicted = np.array([0] * 50 + [1] * 30 + [2] * 19 + [3] * 1)
    cov = mode_coverage(predicted, 10)
    assert cov["histogram"] == [50, 30, 19, 1, 0, 0, 0, 0, 0, 0]
    assert cov["classes_found"] == 4 and cov["classes"] == 10  # 1 of 100 is a tenth of a fair share: counted
    p = np.array([0.5, 0.3, 0.19, 0.01])
    assert cov["kl_uniform"] == pytest.approx(float((p * np.log(p * 10)).sum()), rel=1e-9)
    assert cov["kl_uniform"] == pytest.approx(1.2332, abs=1e-4)
    assert mode_coverage(np.array([0] * 99 + [1]), 10)["classes_found"] == 2
    assert mode_coverage(np.array([0] * 200 + [1]), 10)["classes_found"] == 1  # a stray sample is no mode
    uniform = mode_coverage(np.arange(1000) % 10, 10)
    assert uniform["classes_found"] == 10 and uniform["kl_uniform"] == pytest.approx(0.0, abs=1e-12)
    collapsed = mode_coverage(np.full(500, 7), 10)
    assert collapsed["classes_found"] == 1 and collapsed["kl_uniform"] == pytest.approx(math.log(10))
    assert scalar_figures({"frechet_distance": 3.0, "mode_coverage": cov}) == {
        "frechet_distance": 3.0, "mode_coverage": 4.0, "mode_kl": pytest.approx(1.2332, abs=1e-4)}


def test_cluster_accuracy_matches_clusters_to_classes():
    labels = np.array([0, 0, 1, 1, 2, 2, 2])
    out = cluster_accuracy(np.array([2, 2, 0, 0, 1, 1, 0]), labels, 3, 3)
    assert out["cluster_accuracy"] == pytest.approx(6 / 7) and out["cluster_to_class"] == [1, 2, 0]


def test_equilibrium_state_round_trip():
    state = Equilibrium(0.0)
    state.k = torch.tensor(0.25)
    other = Equilibrium(0.9)
    other.load_state_dict(state.state_dict())
    assert other.k.item() == 0.25 and other.to("cpu") is other


# ------------------------------------------------------------------ models
@pytest.mark.parametrize("model", MODELS)
def test_group_isolation(model, digits_root, tmp_path):
    parts = build(Recipe.of(tiny(model, digits_root, tmp_path / "run"), model))
    m = parts.model
    ctx = PlainContext(m, lr=0.01)
    g_names = list(m.optim_groups["g"])  # ClusterGAN: G and E
    assert g_names == (["g", "e"] if model == "clustergan" else ["g"])
    batch = next(iter(torch.utils.data.DataLoader(parts.dataset, batch_size=8, sampler=[(i, 0) for i in range(8)])))
    out = m.generate(batch)
    g_before, d_before = params(m, g_names), params(m, ["d"])
    logs = m.d_step(batch, out, ctx)
    assert not changed(g_before, m, g_names), "d_step changed G (or E)"
    # every D weight moves (a Wasserstein critic's last bias cancels out of its loss: ClusterGAN's WGAN-GP)
    assert len(changed(d_before, m, ["d"])) >= len(d_before) - (model == "clustergan"), "d_step left D weights"
    assert all(p.grad is None for n in g_names for p in m.nets[n].parameters()), "D loss leaked into G"
    assert all(torch.isfinite(v) for v in logs.values())
    out = m.generate(batch)
    g_before, d_before = params(m, g_names), params(m, ["d"])
    for opt in ctx.opts.values():
        opt.zero_grad(set_to_none=True)
    logs = m.g_step(batch, out, ctx)
    assert not changed(d_before, m, ["d"]), "g_step changed D"
    assert all(p.grad is None for p in m.nets["d"].parameters()), "G loss leaked into D"
    assert all(p.requires_grad for p in m.nets["d"].parameters()), "D left frozen"
    for name in g_names:
        before = {k: v for k, v in g_before.items() if k.startswith(f"{name}.")}
        assert len(changed(before, m, [name])) > 0.9 * len(before), f"g_step left {name} mostly untouched"
    assert all(torch.isfinite(v) for v in logs.values())


def test_began_d_step_updates_k_from_the_step_losses(digits_root, tmp_path):
    r = tiny("began", digits_root, tmp_path / "run")
    r["model"]["gamma"] = 0.7  # not 1 (the recipe's), so that a k_t or M update that drops gamma fails
    parts = build(Recipe.of(r, "began"))
    m = parts.model
    ctx = PlainContext(m, lr=0.01)
    batch = next(iter(torch.utils.data.DataLoader(parts.dataset, batch_size=8, sampler=[(i, 0) for i in range(8)])))
    m.equilibrium.k = torch.tensor(0.3)
    with torch.no_grad():
        out = m.generate(batch)
        real, fake = reconstruction_error(m.nets["d"], batch["real"]), reconstruction_error(m.nets["d"], out["fake"])
    logs = m.d_step(batch, out, ctx)
    assert logs["d/real"].item() == pytest.approx(real.item(), rel=1e-5)  # measured with D before its update
    assert logs["d/fake"].item() == pytest.approx(fake.item(), rel=1e-5)
    assert logs["began/k"].item() == pytest.approx(0.3)  # k_t used in this step's L_D
    assert m.equilibrium.k.item() == pytest.approx(0.3 + 0.001 * (0.7 * real.item() - fake.item()), rel=1e-5)
    assert logs["began/M"].item() == pytest.approx(real.item() + abs(0.7 * real.item() - fake.item()), rel=1e-5)


def test_began_k_is_checkpointed_and_restored(digits_root, tmp_path, capsys):
    run = tmp_path / "run"
    path = write_recipe(tmp_path / "began.yaml", tiny("began", digits_root, run, max_steps=2))
    assert main(["train", str(path)]) == 0
    capsys.readouterr()
    saved = torch.load(run / "checkpoints" / "step_00000002" / "i2i_state.pt", weights_only=True)
    k2 = saved["began_k"]["k"].item()
    assert 0 < k2 < 0.01  # two updates of lambda_k 0.001 from k_0 = 0, L(x) > L(G(z)) at the start
    # the resumed run starts from the saved k_t (not k_0) and moves on from it
    assert main(["train", str(path), "train.max_steps=4", "--resume", "latest"]) == 0
    capsys.readouterr()
    logged = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    k_logged = [r["began/k"] for r in logged if r.get("step") == 4 and "began/k" in r]
    assert k_logged and k_logged[0] > k2  # steps 3-4 use k_2, k_3 > 0: a restart from k_0 would log less


def test_recipes_refuse_what_the_models_cannot_use(digits_root, tmp_path):
    from i2i.errors import RecipeError
    r = tiny("began", digits_root, tmp_path / "run")
    r["nets"]["d"] = {"type": "dcgan_discriminator", "in_channels": 1, "size": 32, "base_channels": 8}
    with pytest.raises(RecipeError, match="nets.d.type"):
        build(Recipe.of(r, "began"))
    r = tiny("began", digits_root, tmp_path / "run")
    r["model"]["gamma"] = 1.5
    with pytest.raises(RecipeError, match="model.gamma"):
        build(Recipe.of(r, "began"))
    r = tiny("clustergan", digits_root, tmp_path / "run")
    r["nets"]["e"]["clusters"] = 7
    with pytest.raises(RecipeError, match="nets.e.clusters"):
        build(Recipe.of(r, "clustergan"))
    r = tiny("clustergan", digits_root, tmp_path / "run")
    r["nets"]["g"]["cat_codes"] = []
    with pytest.raises(RecipeError, match="nets.g.cat_codes"):
        build(Recipe.of(r, "clustergan"))


def test_model_measures(digits_root, tmp_path):
    real = torch.rand(12, 1, 32, 32) * 2 - 1
    labels = torch.arange(12) % 3
    r = tiny("began", digits_root, tmp_path / "a")
    r["model"]["gamma"] = 0.5
    began = build(Recipe.of(r, "began")).model
    figures = model_measures(began, real, labels, "cpu")
    assert figures["began_M"] == pytest.approx(figures["began_real"] + abs(0.5 * figures["began_real"]
                                                                          - figures["began_fake"]))
    cg = build(Recipe.of(tiny("clustergan", digits_root, tmp_path / "b"), "clustergan")).model
    figures = model_measures(cg, real, labels, "cpu")
    assert 1 / 3 <= figures["cluster_accuracy"] <= 1 and len(figures["cluster_to_class"]) == 10
    state = torch.get_rng_state()
    model_measures(began, real, labels, "cpu")
    assert torch.equal(state, torch.get_rng_state()), "scoring drew from the global RNG"


def test_unconditional_eval_reports_mode_coverage(digits_root, tmp_path):
    from i2i.evaluation.conditional import evaluate_generator
    from i2i.nets import DCGANGenerator, ImageClassifier
    torch.manual_seed(0)
    g = DCGANGenerator(z_dim=8, base_channels=8)
    classifier = ImageClassifier(**ImageClassifier.smoke_args)
    out = evaluate_generator(g, classifier, torch.rand(20, 1, 32, 32) * 2 - 1, per_class=3)
    cov = out["mode_coverage"]
    assert sum(cov["histogram"]) == out["samples"] == 3 * classifier.num_classes
    assert 1 <= cov["classes_found"] <= classifier.num_classes and cov["kl_uniform"] >= 0


def test_cluster_command(digits_root, tmp_path, capsys):
    run = tmp_path / "run"
    path = write_recipe(tmp_path / "cg.yaml", tiny("clustergan", digits_root, run, max_steps=2))
    assert main(["train", str(path)]) == 0
    capsys.readouterr()
    images = digits_root / "test"
    n = sum(1 for p in images.rglob("*.png"))
    assert main(["cluster", str(run), "--input", str(images), "--output", str(tmp_path / "c"), "--device",
                 "cpu", "--per-grid", "16"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["images"] == n and sum(result["counts"]) == n and result["clusters"] == 10
    with open(tmp_path / "c" / "clusters.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == n and all(0 <= int(r["cluster"]) < 10 and 0 < float(r["confidence"]) <= 1 for r in rows)
    assert {r["file"] for r in rows} == {str(p.relative_to(images)) for p in images.rglob("*.png")}
    grids = sorted((tmp_path / "c").glob("cluster_*.png"))
    assert len(grids) == result["grids"] == sum(1 for c in result["counts"] if c)
    # the default output lies beside the export; an output inside the input is refused before anything is written
    assert main(["cluster", str(run), "--input", str(images), "--output", str(images / "out"), "--device",
                 "cpu"]) == 2
    assert not (images / "out").exists()
    # an export without a cluster encoder says what runs it
    from types import SimpleNamespace

    from i2i.errors import I2IError
    from i2i.inference.cluster import cluster_folder
    no_encoder = SimpleNamespace(nets={"g": None}, path=tmp_path / "x", meta={"model": "began"})
    with pytest.raises(I2IError, match="ClusterGAN"):
        cluster_folder(no_encoder, images, tmp_path / "d")


# ------------------------------------------------------------------ learning (slow)
@pytest.fixture(scope="module")
def digits_classifier(digits_root, tmp_path_factory):
    from i2i.evaluation.classifier import train_classifier
    out = tmp_path_factory.mktemp("clf") / "classifier"
    train_classifier(str(digits_root), out, steps=300)
    return out


def _scores(parts, classifier_dir, real, labels) -> dict:
    from i2i.evaluation.conditional import evaluate_generator
    from i2i.inference.export import load_export
    classifier = load_export(classifier_dir).nets["classifier"]
    figures = evaluate_generator(parts.nets["g"], classifier, real, per_class=30)
    figures.update(model_measures(parts.model, real, labels, "cpu"))
    return scalar_figures(figures)


# per model: steps, the nets cut to 16 channels, further overrides. BEGAN keeps the recipe's D (at 16 channels G
# stays collapsed for longer) and a k_t twice as fast as its demo's.
SHORT_RUNS = {"began": (1000, ("g",), ["model.lambda_k=0.02"]), "ebgan": (300, ("g", "d"), []),
              "clustergan": (400, ("g", "d", "e"), [])}


@pytest.mark.slow
@pytest.mark.parametrize("model, measure, better", [("began", "frechet_distance", "lower"),
                                                    ("ebgan", "frechet_distance", "lower"),
                                                    ("clustergan", "cluster_accuracy", "higher")])
def test_learns_on_digits(model, measure, better, digits_root, digits_classifier, tmp_path, capsys):
    """A short CPU run on the digits demo beats step 0 on the model's own measure."""
    from i2i.data.labeled import load_labeled_arrays
    steps, small, extra = SHORT_RUNS[model]
    r = dict(load_recipe(ROOT / "recipes" / "demo" / f"{model}.yaml", [  # the demo, smaller and shorter
        f"data.root={digits_root}", "data.batch_size=32", *(f"nets.{n}.base_channels=16" for n in small), *extra,
        f"train.output_dir={tmp_path / 'run'}", f"train.max_steps={steps}", "train.log_every=100",
        f"train.sample_every={steps}", f"train.checkpoint_every={steps}", "train.tensorboard=false"]))
    r["eval"] = {"classifier": str(digits_classifier), "every": steps, "per_class": 30, "real_images": 360}
    r["name"] = model
    path = write_recipe(tmp_path / f"{model}.yaml", r)
    real, labels, _ = load_labeled_arrays(str(digits_root), "test", 1, 32)
    real, labels = real[:360], labels[:360]
    torch.manual_seed(r["seed"])
    before = _scores(build(Recipe.of(r, str(path))), digits_classifier, real, labels)  # the run's step-0 weights
    assert main(["train", str(path)]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    after = {k.removeprefix("eval/"): v for k, v in result.items() if k.startswith("eval/")}
    print(f"{model} step 0 -> {steps}: {measure} {before[measure]:.4f} -> {after[measure]:.4f}, frechet "
          f"{before['frechet_distance']:.2f} -> {after['frechet_distance']:.2f}, classes found "
          f"{before['mode_coverage']:.0f} -> {after['mode_coverage']:.0f}")
    # measured (digits, 2 cores): began (1000 steps) FD 796 -> 65, classes 1 -> 9, M 1.81 -> 0.12 (G collapses
    # first and comes out of it from step ~800); ebgan (300) FD 744 -> 626; clustergan (400) cluster_accuracy
    # 0.230 -> 0.309, FD 742 -> 177, classes 1 -> 3
    if better == "lower":
        assert after[measure] < {"began": 0.5, "ebgan": 0.9}[model] * before[measure]
    else:
        assert after[measure] > before[measure] + 0.05
    if model == "began":  # out of the collapse, and its own measure agrees
        assert after["mode_coverage"] >= 5 and after["began_M"] < 0.5 * before["began_M"]
