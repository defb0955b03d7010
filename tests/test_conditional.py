"""CGAN, ACGAN, InfoGAN: losses, measures, group isolation, and train -> export -> sample -> eval on the digits demo."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from i2i.build import build
from i2i.cli import main
from i2i.evaluation import frechet_distance, matched_accuracy
from i2i.losses import AuxClassificationLoss, MutualInformationLoss
from i2i.recipe import Recipe, load_recipe

from .conftest import ROOT, write_recipe
from .test_models import PlainContext, changed, params


def test_aux_classification_is_cross_entropy_on_logits():
    logits, y = torch.tensor([[2.0, 0.0, -1.0]]), torch.tensor([0])
    expected = -torch.log_softmax(logits, 1)[0, 0]
    assert AuxClassificationLoss(weight=2.0)(logits, y).item() == pytest.approx(2 * expected.item(), rel=1e-6)


def test_mutual_information_loss_parts():
    q = {"cat": [torch.tensor([[0.0, 3.0]])], "cont_mu": torch.tensor([[0.5, -0.5]])}
    codes = {"z": torch.zeros(1, 2), "cat_idx": [torch.tensor([1])], "cont": torch.tensor([[1.0, 0.0]])}
    ce = -torch.log_softmax(torch.tensor([0.0, 3.0]), 0)[1].item()
    loss = MutualInformationLoss(cat_weight=1.0, cont_weight=0.1)(q, codes)
    assert loss.item() == pytest.approx(ce + 0.1 * 0.25, rel=1e-5)


def test_within_class_diversity_sees_collapse():
    from i2i.evaluation.conditional import within_class_diversity
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    collapsed = torch.zeros(6, 1, 4, 4)
    varied = torch.randn(6, 1, 4, 4)
    assert within_class_diversity(collapsed, labels) == 0.0
    assert within_class_diversity(varied, labels) > 0.5


def test_frechet_distance_and_matching():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4000, 3))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(a, a + 2.0) == pytest.approx(12.0, rel=0.02)  # ||mu||^2 = 3 * 2^2, same covariance
    codes = np.array([0, 0, 1, 1, 2, 2])
    acc, mapping = matched_accuracy(codes, np.array([2, 2, 0, 0, 1, 0]), 3, 3)
    assert acc == pytest.approx(5 / 6) and mapping == [2, 0, 1]


def tiny(model: str, root, out, **train) -> dict:
    r = load_recipe(ROOT / "recipes" / f"{model}.yaml", [
        f"data.root={root}", "data.batch_size=8", "nets.g.base_channels=8", "nets.d.base_channels=8",
        f"train.output_dir={out}", "train.max_steps=4", "train.log_every=2", "train.sample_every=4",
        "train.checkpoint_every=4", "train.tensorboard=false", f"eval.classifier={out}_classifier",
        "eval.every=4", "eval.per_class=4", "eval.classifier_steps=20", "eval.real_images=64"])
    r["train"].update(train)
    r["name"] = model
    return dict(r)


@pytest.mark.parametrize("model", ["cgan", "acgan", "infogan"])
def test_group_isolation(model, digits_root, tmp_path):
    recipe = Recipe.of(tiny(model, digits_root, tmp_path / "run"), model)
    torch.manual_seed(0)
    parts = build(recipe)
    m, ctx = parts.model, PlainContext(parts.model)
    items = [parts.dataset[(i, i)] for i in range(4)]
    batch = {"real": torch.stack([it["real"] for it in items]), "y": torch.stack([it["y"] for it in items])}
    out = m.generate(batch)
    g0, d0 = params(m, ["g"]), params(m, ["d"])
    m.d_step(batch, out, ctx)
    assert not changed(g0, m, ["g"]) and changed(d0, m, ["d"])
    assert all(p.grad is None for p in m.nets["g"].parameters())
    out = m.generate(batch)
    g0, d0 = params(m, ["g"]), params(m, ["d"])
    for opt in ctx.opts.values():
        opt.zero_grad(set_to_none=True)
    m.g_step(batch, out, ctx)
    assert not changed(d0, m, ["d"]) and changed(g0, m, ["g"])
    assert all(p.grad is None for p in m.nets["d"].parameters())


def test_class_count_mismatch_is_a_recipe_error(digits_root, tmp_path):
    from i2i.errors import RecipeError
    recipe = tiny("acgan", digits_root, tmp_path / "run")
    recipe["nets"]["g"]["num_classes"] = 7
    with pytest.raises(RecipeError, match="nets.d.num_classes"):
        build(Recipe.of(recipe, "x"))
    recipe["nets"]["d"]["num_classes"] = 7
    with pytest.raises(RecipeError, match="the data set has 10 classes"):
        build(Recipe.of(recipe, "x"))


@pytest.mark.parametrize("model", ["cgan", "acgan", "infogan"])
def test_train_export_sample_eval(model, digits_root, tmp_path, capsys):
    out = tmp_path / "run"
    path = write_recipe(tmp_path / f"{model}.yaml", tiny(model, digits_root, out))
    assert main(["train", str(path)]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert "eval/class_accuracy" in result and "eval/frechet_distance" in result
    meta = json.loads((out / "export" / "meta.json").read_text())
    assert meta["class_names"] == [str(i) for i in range(10)]
    samples = tmp_path / "samples"
    assert main(["sample", str(out), "--output", str(samples), "--per-class", "3", "--classes", "2,7",
                 "--seed", "5", "--device", "cpu"]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["images"] == 6 and (samples / "grid.png").is_file()
    assert sorted(p.name for p in (samples / "2").iterdir()) == ["000000.png", "000001.png", "000002.png"]
    assert Image.open(samples / "7" / "000000.png").size == (32, 32)
    if model == "infogan":
        assert (samples / "traverse_cont0.png").is_file() and (samples / "traverse_cont1.png").is_file()
    # same seed, same images
    again = tmp_path / "again"
    assert main(["sample", str(out), "--output", str(again), "--per-class", "3", "--classes", "2,7", "--seed", "5",
                 "--device", "cpu"]) == 0
    capsys.readouterr()
    assert np.array_equal(np.asarray(Image.open(samples / "2" / "000001.png")),
                          np.asarray(Image.open(again / "2" / "000001.png")))
    assert main(["eval", str(out), "--data", str(digits_root), "--per-class", "5", "--device", "cpu"]) == 0
    scores = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert 0.0 <= scores["class_accuracy"] <= 1.0 and scores["frechet_distance"] >= 0
    assert scores["diversity"] >= 0 and scores["real_diversity"] > 0.1  # real digits of one class differ


@pytest.mark.slow
def test_acgan_learns_classes_on_digits(digits_root, tmp_path, capsys):
    """A short CPU run: generated digits are recognised as the requested class far above chance (10%)."""
    recipe = tiny("acgan", digits_root, tmp_path / "run", max_steps=400, log_every=100, sample_every=400,
                  checkpoint_every=400)
    recipe["data"]["batch_size"] = 64
    recipe["nets"]["g"]["base_channels"] = recipe["nets"]["d"]["base_channels"] = 32
    recipe["eval"].update(every=400, per_class=40, classifier_steps=300, real_images=500)
    assert main(["train", str(write_recipe(tmp_path / "acgan.yaml", recipe))]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    print("acgan class accuracy after 400 steps:", result["eval/class_accuracy"])
    assert result["eval/class_accuracy"] > 0.3
