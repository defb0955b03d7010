"""SGAN: the K+1-class loss against hand values, the labeled subset (the same for SGAN and the supervised baseline),
group isolation, `i2i classify` and `i2i eval` end to end, and (slow) learning on the digits with few labels."""
from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch

from i2i.build import build
from i2i.cli import main
from i2i.data.labeled import UNLABELED, LabeledImages, labeled_subset, load_labeled_arrays
from i2i.errors import DataError, I2IError, RecipeError
from i2i.evaluation.classification_scoring import evaluate_classifier
from i2i.inference.classify import classifier_of
from i2i.inference.export import Export, load_export
from i2i.losses import AdversarialLoss, FeatureMatchingLoss, SemiSupervisedLoss
from i2i.recipe import Recipe, load_recipe

from .conftest import ROOT, write_recipe
from .test_models import PlainContext, changed, params


@pytest.fixture(scope="module")
def few_digits(digits_root, tmp_path_factory):
    """The digits demo cut to 12 train and 4 test images per class (class folders): quick to read."""
    import shutil
    root = tmp_path_factory.mktemp("few") / "digits"
    for split, n in (("train", 12), ("test", 4)):
        for k in range(10):
            (root / split / str(k)).mkdir(parents=True)
            for path in sorted((digits_root / split / str(k)).glob("*.png"))[:n]:
                shutil.copy(path, root / split / str(k) / path.name)
    return root


def tiny_sgan(root, out, *overrides: str, steps: int = 4) -> dict:
    r = load_recipe(ROOT / "recipes" / "demo" / "sgan.yaml", [
        f"data.root={root}", "data.batch_size=8", "nets.g.base_channels=8", "nets.d.base_channels=4",
        "nets.d.feature_dim=16", f"train.output_dir={out}", f"train.max_steps={steps}", "train.log_every=2",
        f"train.sample_every={steps}", f"train.checkpoint_every={steps}", "train.tensorboard=false",
        f"eval.every={steps}", "eval.max_images=60", *overrides])
    return dict(r)


# ---------------------------------------------------------------- the K+1-class loss
L = [[2.0, -1.0, 0.5], [0.0, 0.3, -2.0]]  # two images, K = 3 class logits


def lse(xs):
    return math.log(sum(math.exp(x) for x in xs))


def test_adversarial_logit_is_log_real_over_fake():
    fixed = SemiSupervisedLoss(fake_logit="fixed").adversarial_logits(torch.tensor(L))
    assert fixed.shape == (2, 1)
    assert fixed.flatten().tolist() == pytest.approx([lse(row) for row in L], rel=1e-6)
    learned = SemiSupervisedLoss(fake_logit="learned").adversarial_logits(torch.tensor(L))  # last column is "fake"
    assert learned.flatten().tolist() == pytest.approx([lse(row[:2]) - row[2] for row in L], rel=1e-6)


def test_vanilla_on_the_gan_logit_is_salimans_unsupervised_loss():
    """-log p(real | x) = -log(Z / (Z + 1)) on real, -log p(fake | x) = -log(1 / (Z + 1)) on fake, Z = sum exp l_k;
    vanilla D averages the two terms (x0.5)."""
    cls = SemiSupervisedLoss()
    real, fake = torch.tensor(L[:1]), torch.tensor(L[1:])
    z_real, z_fake = sum(math.exp(x) for x in L[0]), sum(math.exp(x) for x in L[1])
    expected = 0.5 * (-math.log(z_real / (z_real + 1)) - math.log(1 / (z_fake + 1)))
    d = AdversarialLoss("vanilla").discriminator(cls.adversarial_logits(real), cls.adversarial_logits(fake))
    assert d.item() == pytest.approx(expected, rel=1e-6)


def test_supervised_term_uses_labeled_images_only():
    cls = SemiSupervisedLoss(weight=2.0)
    logits = torch.tensor(L, requires_grad=True)
    # image 0 labeled 0, image 1 unlabeled: CE of image 0 alone
    loss = cls(logits, torch.tensor([0, UNLABELED]))
    assert loss.item() == pytest.approx(2.0 * (lse(L[0]) - L[0][0]), rel=1e-6)
    loss.backward()
    assert logits.grad[1].abs().sum() == 0 and logits.grad[0].abs().sum() > 0
    none = cls(torch.tensor(L, requires_grad=True), torch.tensor([UNLABELED, UNLABELED]))
    assert none.item() == 0.0 and none.requires_grad
    # learned fake logit: CE over the K real classes only (the last output is left out)
    learned = SemiSupervisedLoss(fake_logit="learned")(torch.tensor(L), torch.tensor([1, 0]))
    assert learned.item() == pytest.approx(0.5 * ((lse(L[0][:2]) - L[0][1]) + (lse(L[1][:2]) - L[1][0])), rel=1e-6)


def test_feature_matching_hand_value():
    real, fake = torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([[0.0, 0.0], [2.0, 2.0]])
    # means (2, 3) and (1, 1): ((2-1)^2 + (3-1)^2) / 2
    assert FeatureMatchingLoss(weight=3.0)(real, fake).item() == pytest.approx(3.0 * 2.5)


# ---------------------------------------------------------------- the labeled subset
def test_labeled_subset_per_class_fraction_and_seed():
    labels = np.repeat(np.arange(4), [10, 20, 30, 5])
    a = labeled_subset(labels, 4, labels_per_class=3, label_seed=0)
    assert np.bincount(labels[a], minlength=4).tolist() == [3, 3, 3, 3]
    assert np.array_equal(a, labeled_subset(labels, 4, labels_per_class=3, label_seed=0))  # deterministic
    assert not np.array_equal(a, labeled_subset(labels, 4, labels_per_class=3, label_seed=1))
    f = labeled_subset(labels, 4, labeled_fraction=0.1)
    assert np.bincount(labels[f], minlength=4).tolist() == [1, 2, 3, 1]  # at least one per class
    assert labeled_subset(labels, 4) is None
    with pytest.raises(DataError, match="class 3 has 5"):
        labeled_subset(labels, 4, labels_per_class=6)
    for kwargs, key in (({"labeled_fraction": 0.1, "labels_per_class": 2}, "data.labels_per_class"),
                        ({"labeled_fraction": 0.0}, "data.labeled_fraction"),
                        ({"labels_per_class": 0}, "data.labels_per_class")):
        with pytest.raises(RecipeError, match=key):
            labeled_subset(labels, 4, **kwargs)


def test_data_set_items_hide_unlabeled_classes_and_pair_a_labeled_image(few_digits):
    ds = LabeledImages(root=str(few_digits), labels_per_class=2, label_seed=3)
    subset = set(ds.labeled_index.tolist())
    assert len(subset) == 20
    for i in range(0, len(ds), 97):
        item = ds[(i, 5)]
        assert item["y"].item() == (int(ds.labels[i]) if i in subset else UNLABELED)
        assert item["y_labeled"].item() in range(10) and item["real_labeled"].shape == item["real"].shape
        again = ds[(i, 5)]
        assert torch.equal(again["real_labeled"], item["real_labeled"])  # a pure function of (index, seed)
    # the partner is one of the subset's images (no augmentation in this data set: pixel-equal), with its label
    partner = ds[(0, 0)]
    matches = [j for j in subset if torch.equal(ds[(j, 0)]["real"], partner["real_labeled"])]
    assert matches and all(int(ds.labels[j]) == partner["y_labeled"].item() for j in matches)
    # the supervised baseline's subset: the same indices on the same split's labels
    _, y, names = load_labeled_arrays(str(few_digits), "train", 1, 32)
    assert np.array_equal(labeled_subset(y.numpy(), len(names), labels_per_class=2, label_seed=3), ds.labeled_index)


def test_models_that_need_every_label_refuse_a_subset(few_digits, tmp_path):
    r = load_recipe(ROOT / "recipes" / "demo" / "acgan.yaml", [f"data.root={few_digits}",
                                                                   "data.labels_per_class=5", "eval=null"])
    with pytest.raises(RecipeError, match="data.labels_per_class"):
        build(r)


# ---------------------------------------------------------------- the model
@pytest.mark.parametrize("objective, g_term, absent", [
    ("feature matching (recipes/sgan.yaml)", "g/fm", "g/adv"),
    ("adversarial (the digits demo)", "g/adv", None)])
def test_group_isolation_and_labeled_batches(objective, g_term, absent, few_digits, tmp_path):
    weights = ["losses.adv.weight=0.0", "losses.fm.weight=1.0"] if g_term == "g/fm" else []
    parts = build(Recipe.of(tiny_sgan(few_digits, tmp_path / "run", "eval=null", *weights), "sgan"))
    model = parts.model
    ctx = PlainContext(model, lr=0.01)
    loader = torch.utils.data.DataLoader(parts.dataset, batch_size=8, sampler=[(i, 0) for i in range(24)])
    for step, batch in enumerate(loader):
        assert "real_labeled" in batch and (batch["y_labeled"] >= 0).all()
        ctx.step = step
        before_g, before_d = params(model, ["g"]), params(model, ["d"])
        out = model.generate(batch)
        logs = model.d_step(batch, out, ctx)
        assert changed(before_d, model, ["d"]) and not changed(before_g, model, ["g"])
        before_d = params(model, ["d"])
        logs.update(model.g_step(batch, model.generate(batch), ctx))
        assert changed(before_g, model, ["g"]) and not changed(before_d, model, ["d"])
        assert {"d/adv", "d/cls", "d/labeled_acc", g_term} <= set(logs) and absent not in logs, objective


def test_d_outputs_must_match_the_classes(few_digits, tmp_path):
    r = tiny_sgan(few_digits, tmp_path / "run", "eval=null", "losses.cls.fake_logit=learned")
    with pytest.raises(RecipeError, match="nets.d.num_classes"):
        build(Recipe.of(r, "sgan"))  # learned fake logit: D needs 11 outputs
    r["nets"]["d"]["num_classes"] = 11
    build(Recipe.of(r, "sgan"))
    bad = tiny_sgan(few_digits, tmp_path / "run", "eval=null", "losses.adv.weight=0", "losses.fm.weight=0")
    bad["losses"].pop("fm")
    with pytest.raises(RecipeError, match="losses.adv.weight"):
        build(Recipe.of(bad, "sgan"))


@pytest.fixture(scope="module")
def sgan_run(few_digits, tmp_path_factory):
    """A tiny SGAN trained for 4 steps on the few digits (its run folder)."""
    work = tmp_path_factory.mktemp("sgan")
    assert main(["train", str(write_recipe(work / "r.yaml", tiny_sgan(few_digits, work / "run")))]) == 0
    return work / "run"


def test_classify_and_eval_end_to_end(few_digits, sgan_run, tmp_path, capsys):
    """A tiny SGAN's export: `i2i classify` writes one row per test image; `i2i eval`'s accuracy equals the CSV's."""
    run = sgan_run
    logged = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert any("eval/test_accuracy" in line for line in logged)
    out = tmp_path / "pred" / "classes.csv"
    assert main(["classify", str(run), "--input", str(few_digits / "test"), "--output", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    rows = list(csv.DictReader(out.open()))
    n_test = len(list((few_digits / "test").rglob("*.png")))
    assert summary["images"] == len(rows) == n_test and sum(summary["per_class"].values()) == n_test
    assert set(rows[0]) == {"file", "class", "class_index", "confidence"}
    assert all(r["class"] == str(r["class_index"]) and 0.1 <= float(r["confidence"]) <= 1 for r in rows)
    csv_accuracy = np.mean([r["file"].split("/")[0] == r["class"] for r in rows])
    assert main(["eval", str(run), "--data", str(few_digits)]) == 0
    scores = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert scores["test_images"] == n_test
    assert scores["test_accuracy"] == pytest.approx(csv_accuracy, abs=1.5 / n_test)
    # the supervised baseline's export classifies and evaluates the same way
    base = tmp_path / "base"
    assert main(["classifier", str(few_digits), "--output", str(base), "--labels-per-class", "2", "--steps", "5",
                 "--base-channels", "4", "--feature-dim", "16"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["train_images"] == 20
    assert main(["classify", str(base), "--input", str(few_digits / "test"), "--output", str(out)]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["images"] == n_test


def test_classify_refuses_bad_output_and_non_classifiers(few_digits, sgan_run, tmp_path, capsys):
    run = sgan_run
    export = load_export(run)
    with pytest.raises(I2IError, match="no classifier"):
        classifier_of(Export(export.path, export.recipe, {"model": "gan"}, {"g": export.nets["g"]}))
    assert main(["classify", str(run), "--input", str(few_digits / "test"), "--output", str(tmp_path / "x.png")]) == 2
    assert "must be a .csv" in capsys.readouterr().err
    assert main(["classify", str(run), "--input", str(tmp_path / "nowhere"), "--output", str(tmp_path / "a.csv")]) == 2
    assert "no such folder" in capsys.readouterr().err
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "broken.png").write_bytes(b"not a png")
    (tmp_path / "junk" / "ok.png").write_bytes((few_digits / "test" / "0").glob("*.png").__next__().read_bytes())
    assert main(["classify", str(run), "--input", str(tmp_path / "junk"), "--output", str(tmp_path / "a.csv")]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["images"] == 1 and summary["skipped"] == 1
    assert not (tmp_path / ".a.csv.tmp").exists()


@pytest.mark.slow
def test_sgan_learns_to_classify_digits_with_few_labels(digits_root, tmp_path, capsys):
    """5% of the labels (about 8 per class), 300 steps of the demo's nets: D's test accuracy rises far above step
    0's (the demo measured 0.10 -> 0.67 at step 250 on 2 CPU cores)."""
    run = tmp_path / "run"
    recipe = tiny_sgan(digits_root, run, "nets.g.base_channels=16", "nets.d.base_channels=8", "nets.d.feature_dim=64",
                       "data.batch_size=32", "eval.max_images=1000", "eval.every=150", "train.cpu_threads=1",
                       steps=300)
    x, y, _ = load_labeled_arrays(str(digits_root), "test", 1, 32)
    d0 = build(Recipe.of(recipe, "sgan")).nets["d"]  # the same seed: D as training starts
    step0 = evaluate_classifier(d0, x, y, 10)["test_accuracy"]
    assert main(["train", str(write_recipe(tmp_path / "r.yaml", recipe))]) == 0
    capsys.readouterr()
    scores = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    accuracy = {s["step"]: s["eval/test_accuracy"] for s in scores if "eval/test_accuracy" in s}
    assert accuracy[300] > 0.5 and accuracy[300] > step0 + 0.3, (step0, accuracy)
