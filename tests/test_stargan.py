"""StarGAN: the domains data set (folders and attribute tables), group isolation, translate --to/--set from an export
alone, the measures, and (slow) that a short CPU run on the four real demo domains moves images into their targets."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from i2i.build import build
from i2i.cli import main
from i2i.data.demo import ensure_demo
from i2i.data.domains import DomainImages
from i2i.errors import DataError, RecipeError
from i2i.losses.latent import AuxClassificationLoss
from i2i.models.base import PlainContext
from i2i.recipe import load_recipe

from .conftest import ROOT

DEMO = ROOT / "recipes" / "demo" / "stargan.yaml"
DOMAINS = ["ihc", "photo", "retina", "space"]
TINY = ["data.size=16", "data.load_size=18", "data.batch_size=4", "data.num_workers=0", "eval=null",
        "nets.g.base_channels=4", "nets.g.blocks=1", "nets.d.base_channels=4", "nets.d.layers=2",
        "train.log_every=1", "train.sample_every=2", "train.sample_count=2", "train.checkpoint_every=2",
        "train.tensorboard=false", "train.report=false", "train.cpu_threads=1", "train.n_critic=1"]


@pytest.fixture(scope="session")
def domains_demo(tmp_path_factory) -> Path:
    """The four-domain demo data set as the recipe builds it (real crops of scikit-image/scikit-learn images)."""
    root = tmp_path_factory.mktemp("demo") / "domains"
    ensure_demo("domains", root)
    return root


@pytest.fixture(scope="session")
def small_domains(domains_demo, tmp_path_factory) -> Path:
    """8 training images per demo domain, and an attribute table over them: ihc, space and half (a crop of the
    photo at half resolution), which combine (ihc_half_*.png has ihc=1 and half=1; photo and retina crops have 0s)."""
    root = tmp_path_factory.mktemp("small") / "domains"
    rows = ["file,ihc,space,half"]
    for domain in DOMAINS:
        files = sorted((domains_demo / "train" / domain).glob("*.png"))
        for f in files[:6] + files[-2:]:  # the last ones are the half-resolution crops, where there are any
            (root / "train" / domain).mkdir(parents=True, exist_ok=True)
            shutil.copy(f, root / "train" / domain / f.name)
            rows.append(f"train/{domain}/{f.name},{int(domain == 'ihc')},{int(domain == 'space')},"
                        f"{int('_half' in f.name)}")
    (root / "attributes").mkdir()
    (root / "attributes" / "train.csv").write_text("\n".join(rows) + "\n")
    return root


def recipe(root: Path, out: Path, *extra: str):
    return load_recipe(DEMO, [f"data.root={root}", f"train.output_dir={out}", *TINY, *extra])


def with_table(small_domains: Path, tmp_path: Path, text: str | None = None) -> Path:
    """A copy of ``small_domains`` in the attribute-table layout: train.csv (paths relative to it) and the images."""
    root = tmp_path / "table"
    shutil.copytree(small_domains / "train", root / "train")
    (root / "train.csv").write_text(text if text is not None else (small_domains / "attributes" / "train.csv")
                                    .read_text())
    return root


def params(model, names):
    return {f"{n}.{k}": p.detach().clone() for n in names for k, p in model.nets[n].named_parameters()}


def changed(before, model, names):
    after = params(model, names)
    return {k for k in before if not torch.equal(before[k], after[k])}


def batch_of(dataset, n=4):
    items = [dataset[(i * (len(dataset) // n), i)] for i in range(n)]
    return {k: torch.stack([it[k] for it in items]) for k in items[0] if torch.is_tensor(items[0][k])}


# ------------------------------------------------------------------ data
def test_domain_folders_give_one_hot_labels(small_domains):
    ds = DomainImages(root=str(small_domains), size=16, load_size=18)
    assert ds.domain_names == DOMAINS and not ds.multi_label and len(ds) == 32
    item = ds[(0, 0)]
    assert item["real"].shape == (3, 16, 16) and item["real"].min() >= -1 and item["real"].max() <= 1
    assert item["label"].tolist() == [1.0, 0.0, 0.0, 0.0] and int(item["y"]) == 0
    assert sorted(np.bincount(ds.y).tolist()) == [8, 8, 8, 8]
    picked = DomainImages(root=str(small_domains), size=16, attributes=["space", "photo"])
    assert picked.domain_names == ["space", "photo"] and len(picked) == 16
    assert {tuple(picked[(i, 0)]["label"].tolist()) for i in range(16)} == {(1.0, 0.0), (0.0, 1.0)}
    with pytest.raises(DataError, match="valid: ihc, photo, retina, space"):
        DomainImages(root=str(small_domains), size=16, attributes=["sky", "photo"])
    with pytest.raises(DataError, match="at least 2"):
        DomainImages(root=str(small_domains), size=16, attributes=["photo"])


def test_attribute_table_gives_multi_label_vectors(small_domains, tmp_path):
    root = with_table(small_domains, tmp_path)
    ds = DomainImages(root=str(root), size=16)
    assert ds.multi_label and ds.domain_names == ["ihc", "space", "half"] and len(ds) == 32
    by_name = {Path(ds.files[i]).name: ds[(i, 0)]["label"].tolist() for i in range(len(ds))}
    assert by_name["ihc_half_039.png"] == [1.0, 0.0, 1.0] and by_name["space_000.png"] == [0.0, 1.0, 0.0]
    assert "y" not in ds[(0, 0)]
    assert ds.labels.sum(0).tolist() == [8.0, 8.0, 6.0]  # half crops: 2 each of photo, ihc, space
    assert DomainImages(root=str(root), size=16, attributes=["half", "ihc"]).labels.shape == (32, 2)


@pytest.mark.parametrize("text, message", [
    ("", "is empty"),
    ("file\n", "names no attribute"),
    ("file,a,a\nx.png,0,1\n", "appear twice"),
    ("file,smiling\n", "no rows"),
    ("file,smiling,male\ntrain/photo/x.png,1\n", "line 2: 2 fields, expected 3"),
    ("file,smiling\ntrain/photo/x.png,-1\n", "line 2, column 'smiling': value '-1'; attribute values must be 0 or 1"),
    ("file,smiling\ntrain/photo/x.png,yes\n", "must be 0 or 1"),
    ("file,a/b\nx.png,1\n", "not usable"),
    ("file,smiling\n/etc/passwd,1\n", "must be a path relative to"),
    ("file,smiling\n../x.png,1\n", "must be a path relative to"),
])
def test_bad_attribute_tables_are_errors_naming_the_file(small_domains, tmp_path, text, message):
    root = with_table(small_domains, tmp_path, text)
    with pytest.raises(DataError, match=message) as err:
        DomainImages(root=str(root), size=16)
    assert "train.csv" in str(err.value)


def test_table_errors_reach_check_and_missing_files_are_skipped_or_fatal(small_domains, tmp_path, capsys):
    root = with_table(small_domains, tmp_path)
    assert main(["check", str(DEMO), f"data.root={root}"]) == 2  # the demo's eval scores the test split: no table
    err = capsys.readouterr().err
    assert "eval.split" in err and "test.csv does not exist" in err and "scored on an attribute table" in err
    assert main(["check", str(DEMO), f"data.root={root}", "eval=null", "data.attributes=[ihc, sky]"]) == 2
    err = capsys.readouterr().err
    assert "data.root" in err and "'sky'" in err and "valid: ihc, space, half" in err
    with open(root / "train.csv", "a") as f:
        f.write("train/photo/missing.png,0,0,0\n")
    assert len(DomainImages(root=str(root), size=16)) == 32  # on_error: skip leaves it out, with a warning
    with pytest.raises(DataError, match="missing.png"):
        DomainImages(root=str(root), size=16, on_error="fail")
    with pytest.raises(RecipeError, match="data.attributes"):
        DomainImages.channels_from_config(root=str(root), size=16, attributes="ihc")


def test_domain_loss_is_cross_entropy_for_domains_and_bce_for_attributes():
    loss, logits = AuxClassificationLoss(weight=2.0), torch.tensor([[2.0, -1.0, 0.5], [0.0, 1.0, -2.0]])
    y = torch.tensor([0, 1])
    assert torch.allclose(loss(logits, y), 2 * torch.nn.functional.cross_entropy(logits, y))
    c = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, c, reduction="sum") / 2
    assert torch.allclose(loss(logits, c), 2 * bce)


# ------------------------------------------------------------------ model
@pytest.mark.parametrize("layout", ["folders", "table"])
def test_group_isolation_and_label_kinds(layout, small_domains, tmp_path):
    root = small_domains if layout == "folders" else with_table(small_domains, tmp_path)
    k = 4 if layout == "folders" else 3
    torch.manual_seed(0)
    parts = build(recipe(root, tmp_path / "run", f"nets.g.label_channels={k}", f"nets.d.num_classes={k}"))
    model, ctx = parts.model, PlainContext(parts.model)
    assert model.multi_label == (layout == "table") and len(model.domains) == k
    batch = batch_of(parts.dataset)
    out = model.generate(batch)
    assert sorted(map(tuple, out["c_trg"].tolist())) == sorted(map(tuple, out["c_org"].tolist()))  # a shuffle
    g_before, d_before = params(model, ["g"]), params(model, ["d"])
    logs = model.d_step(batch, out, ctx)
    assert not changed(g_before, model, ["g"]), "d_step changed generator weights"
    # every D weight moves but the patch head's bias, which cancels in WGAN's E[D(real)] - E[D(fake)]
    untouched = set(d_before) - changed(d_before, model, ["d"])
    assert untouched == {f"d.model.{len(model.nets['d'].model) - 1}.bias"}, untouched
    assert all(p.grad is None for p in model.nets["g"].parameters()), "D loss leaked into G"
    assert {"d/adv", "d/cls"} <= set(logs) and all(torch.isfinite(v) for v in logs.values())
    out = model.generate(batch)
    g_before, d_before = params(model, ["g"]), params(model, ["d"])
    for opt in ctx.opts.values():
        opt.zero_grad(set_to_none=True)
    logs = model.g_step(batch, out, ctx)
    assert not changed(d_before, model, ["d"]), "g_step changed discriminator weights"
    assert all(p.grad is None for p in model.nets["d"].parameters()), "G loss leaked into D"
    assert all(p.requires_grad for p in model.nets["d"].parameters()), "D left frozen"
    assert changed(g_before, model, ["g"]) == set(g_before)
    assert {"g/adv", "g/cls", "g/rec"} <= set(logs) and all(torch.isfinite(v) for v in logs.values())
    rows = model.visuals(batch)
    assert len(rows) == 1 + k and all(r.shape == batch["real"].shape for r in rows)


def test_label_count_must_match_the_data(small_domains, tmp_path, capsys):
    with pytest.raises(RecipeError, match=r"nets.g.label_channels.*4: ihc, photo, retina, space"):
        build(recipe(small_domains, tmp_path / "run", "nets.g.label_channels=3", "nets.d.num_classes=3"))
    assert main(["check", str(DEMO), "nets.d.num_classes=5"]) == 2
    assert "nets.d.num_classes" in capsys.readouterr().err


# ------------------------------------------------------------------ translate from the export alone
@pytest.fixture(scope="module")
def trained(small_domains, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("runs")
    runs = {"folders": out / "folders", "table": out / "table"}
    table = with_table(small_domains, out)
    assert main(["train", str(DEMO), f"data.root={small_domains}", f"train.output_dir={runs['folders']}", *TINY,
                 "train.max_steps=2"]) == 0
    assert main(["train", str(DEMO), f"data.root={table}", f"train.output_dir={runs['table']}", *TINY,
                 "train.max_steps=2", "nets.g.label_channels=3", "nets.d.num_classes=3"]) == 0
    inputs = out / "inputs"
    inputs.mkdir()
    for f in sorted((small_domains / "train" / "photo").glob("*.png"))[:2]:
        shutil.copy(f, inputs / f.name)
    return {**runs, "inputs": inputs}


def _last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_translate_to_domains_and_all(trained, tmp_path, capsys):
    meta = json.loads((trained["folders"] / "export" / "meta.json").read_text())
    assert meta["domains"] == DOMAINS and meta["multi_label"] is False and meta["task"] == "domain_translation"
    assert main(["translate", str(trained["folders"]), "-i", str(trained["inputs"]), "-o", str(tmp_path / "two"),
                 "--to", "space", "--to", "ihc", "--device", "cpu"]) == 0
    result = _last_json(capsys)
    assert result["images"] == 4 and result["targets"] == ["space", "ihc"]
    names = sorted(p.name for p in trained["inputs"].iterdir())
    for domain in ("space", "ihc"):
        assert sorted(p.name for p in (tmp_path / "two" / domain).iterdir()) == names
    labels = json.loads((tmp_path / "two" / "labels.json").read_text())
    assert labels["labels"][f"space/{names[0]}"] == [0.0, 0.0, 0.0, 1.0]
    from PIL import Image
    a, b = (np.asarray(Image.open(tmp_path / "two" / d / names[0])) for d in ("space", "ihc"))
    assert a.shape == (72, 72, 3) and not np.array_equal(a, b)  # the label changes the output
    assert main(["translate", str(trained["folders"]), "-i", str(trained["inputs"]), "-o", str(tmp_path / "all"),
                 "--to", "all", "--device", "cpu"]) == 0
    assert _last_json(capsys)["images"] == 8
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == sorted([*DOMAINS, "labels.json"])


@pytest.mark.parametrize("args, message", [
    (["--to", "sky"], "--to sky: unknown domain; valid: ihc, photo, retina, space, or all"),
    ([], "choose --to DOMAIN (repeatable) or --to all; domains: ihc, photo, retina, space"),
    (["--set", "ihc=1"], "--set: this export's domains are exclusive"),
    (["--to", "ihc", "--samples", "2"], "--samples: the generator of this export"),
])
def test_translate_errors_list_the_domains(trained, tmp_path, capsys, args, message):
    assert main(["translate", str(trained["folders"]), "-i", str(trained["inputs"]), "-o", str(tmp_path / "o"),
                 "--device", "cpu", *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_translate_set_edits_attributes_read_by_d(trained, tmp_path, capsys):
    run = trained["table"]
    assert json.loads((run / "export" / "meta.json").read_text())["domains"] == ["ihc", "space", "half"]
    assert main(["translate", str(run), "-i", str(trained["inputs"]), "-o", str(tmp_path / "e"), "--set", "space=1",
                 "--set", "half=0", "--to", "ihc", "--device", "cpu"]) == 0
    assert _last_json(capsys)["images"] == 4
    names = sorted(p.name for p in trained["inputs"].iterdir())
    assert sorted(p.name for p in (tmp_path / "e" / "space=1,half=0").iterdir()) == names
    labels = json.loads((tmp_path / "e" / "labels.json").read_text())
    for name in names:
        read = labels["attributes_read"][name]
        assert labels["labels"][f"space=1,half=0/{name}"] == [read[0], 1.0, 0.0]  # ihc kept as D reads it
        assert labels["labels"][f"ihc/{name}"] == [1.0, read[1], read[2]]
    for bad, message in ((["--set", "smiling=1"], "unknown attribute 'smiling'; valid: ihc, space, half"),
                         (["--set", "ihc"], "expected ATTR=0 or ATTR=1"),
                         (["--set", "ihc=1", "--set", "ihc=0"], "both 0 and 1")):
        assert main(["translate", str(run), "-i", str(trained["inputs"]), "-o", str(tmp_path / "x"),
                     "--device", "cpu", *bad]) == 2
        assert message in capsys.readouterr().err


def test_to_on_an_export_without_labels_is_an_error(tmp_path, capsys):
    from i2i.inference.labels import LabelPlan

    class Net(torch.nn.Module):
        in_channels = 3

    class Export:
        meta, path, nets, recipe = {"model": "cyclegan"}, tmp_path, {}, {"data": {}}

    with pytest.raises(Exception, match="takes no target domain"):
        LabelPlan.for_export(Export(), Net(), to=["ihc"], set_attrs=None, device="cpu")
    assert LabelPlan.for_export(Export(), Net(), to=None, set_attrs=None, device="cpu") is None


# ------------------------------------------------------------------ measures
def test_measures_have_the_keys_and_see_a_perfect_translator(small_domains):
    from i2i.evaluation.stargan_scoring import evaluate_stargan
    from i2i.nets.classifier import ImageClassifier

    images = {d: torch.full((3, 3, 16, 16), float(k) / 4) for k, d in enumerate(DOMAINS)}

    class Oracle(torch.nn.Module):  # "translates" by painting the target's constant: a perfect translator
        def forward(self, x, c):
            return (c.argmax(1).float() / 4)[:, None, None, None].expand_as(x)

    class Judge(ImageClassifier):  # classifies by the constant
        def forward(self, x):
            return -((x.mean((1, 2, 3))[:, None] - torch.arange(4) / 4) ** 2) * 1000

    judge = Judge(in_channels=3, size=16, num_classes=4, base_channels=2, feature_dim=4)
    figures = evaluate_stargan(Oracle(), DOMAINS, judge, DOMAINS, images)
    assert {"target_accuracy", "frechet_distance", "cycle_l1", "domains"} <= set(figures)
    assert figures["domains"] == DOMAINS and figures["target_accuracy"] == 1.0 and figures["cycle_l1"] < 1e-6
    assert all(figures[f"target_accuracy_to_{d}"] == 1.0 for d in DOMAINS)
    assert all(f"frechet_distance_to_{d}" in figures and f"target_accuracy_photo_to_{d}" in figures
               for d in DOMAINS if d != "photo")


# ------------------------------------------------------------------ learning (slow)
@pytest.mark.slow
def test_short_run_moves_each_domain_into_its_target(domains_demo, tmp_path):
    """200 steps on the four real demo domains at 16 px: target accuracy, judged by a domain classifier trained on
    the real images, rises well above step 0's; the untrained G's outputs all look like one domain (photo, whose
    figure cannot rise), and at least two of the other three domains are reached; the figures are printed."""
    from i2i.evaluation.classifier import train_classifier
    from i2i.evaluation.domain_scoring import domain_images
    from i2i.evaluation.stargan_scoring import evaluate_stargan
    from i2i.inference.export import load_export

    torch.set_num_threads(1)
    figures = train_classifier(str(domains_demo), tmp_path / "judge", channels=3, size=16, steps=150, batch_size=64)
    assert figures["test_accuracy"] > 0.9
    judge = load_export(tmp_path / "judge").nets["classifier"]
    images = domain_images(str(domains_demo), "test", dict.fromkeys(DOMAINS, 3), 16, 12)
    torch.manual_seed(0)
    parts = build(recipe(domains_demo, tmp_path / "run", "data.batch_size=16", "nets.g.base_channels=16",
                         "nets.g.blocks=2", "nets.d.base_channels=16"))
    before, after = scores_around_a_short_run(parts, lambda g: evaluate_stargan(g, DOMAINS, judge, DOMAINS, images),
                                              steps=200)
    per_domain = {d: (round(before[f"target_accuracy_to_{d}"], 3), round(after[f"target_accuracy_to_{d}"], 3))
                  for d in DOMAINS}
    print("target accuracy per domain (step 0, step 200):", per_domain, "cycle_l1:",
          round(before["cycle_l1"], 3), round(after["cycle_l1"], 3))
    assert after["target_accuracy"] > before["target_accuracy"] + 0.3, per_domain
    assert sum(a > b + 0.5 for b, a in per_domain.values()) >= 2, per_domain
    assert all(a > b - 0.2 for b, a in per_domain.values()), per_domain
    assert after["cycle_l1"] < before["cycle_l1"]


def scores_around_a_short_run(parts, evaluate, steps: int, batch: int = 16) -> tuple[dict, dict]:
    """``evaluate(g)`` (G in eval mode) before and after ``steps`` plain training steps of ``batch`` images (Adam 5e-4,
    the dataset in one seeded order)."""
    model, g = parts.model, parts.model.nets["g"]
    opts = {n: torch.optim.Adam(model.nets[n].parameters(), lr=5e-4, betas=(0.5, 0.999)) for n in ("g", "d")}
    ctx = PlainContext(model, opts)

    def score():
        g.eval()
        out = evaluate(g)
        g.train()
        return out

    before = score()
    order = np.random.default_rng(0).permutation(len(parts.dataset))
    for step in range(steps):
        ctx.step = step
        idx = order[(step * batch) % len(order):][:batch]
        model.train_step(batch_of_indices(parts.dataset, idx, step), ctx)
    return before, score()


def batch_of_indices(dataset, indices, seed):
    items = [dataset[(int(i), seed)] for i in indices]
    return {k: torch.stack([it[k] for it in items]) for k in items[0] if torch.is_tensor(items[0][k])}
