"""BicycleGAN: update groups and the latent-loss rule, recipe checks, multimodal translate and eval."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from i2i.build import build, validate_recipe
from i2i.cli import main
from i2i.errors import RecipeError
from i2i.recipe import Recipe, load_recipe

from .conftest import ROOT, tiny_bicyclegan, tiny_pix2pix, write_recipe
from .test_models import PlainContext, batch_of, changed, params

NETS = ("g", "e", "d", "d2")


def built(paired_root, tmp_path, **kwargs):
    torch.manual_seed(0)
    return build(Recipe.of(tiny_bicyclegan(paired_root, tmp_path / "run", **kwargs), "tiny"))


def test_each_step_updates_only_its_groups(paired_root, tmp_path):
    parts = built(paired_root, tmp_path)
    model, ctx = parts.model, PlainContext(parts.model)
    assert model.optim_groups == {"g": ("g",), "e": ("e",), "d": ("d",), "d2": ("d2",)}
    batch = batch_of(parts, 4)
    for step, moved in (("g_step", {"g", "e"}), ("d_step", {"d"}), ("d2_step", {"d2"})):
        before = params(model, NETS)
        out = model.generate(batch)
        getattr(model, step)(batch, out, ctx)
        touched = {k.split(".")[0] for k in changed(before, model, NETS)}
        assert touched == moved, step


def _only(parts, keep: str):
    for name, loss in parts.losses.items():
        if name != keep:
            loss.weight = 0.0


def test_latent_loss_updates_g_only_and_kl_e_only(paired_root, tmp_path):
    parts = built(paired_root, tmp_path)
    _only(parts, "latent")  # |E(G(A, z)) - z| alone: G learns, E is frozen for this term
    model, ctx = parts.model, PlainContext(parts.model)
    batch = batch_of(parts, 4)
    before = params(model, NETS)
    logs = model.g_step(batch, model.generate(batch), ctx)
    assert float(logs["g/latent"].detach()) > 0
    assert {k.split(".")[0] for k in changed(before, model, NETS)} == {"g"}

    parts = built(paired_root, tmp_path)
    _only(parts, "kl")  # KL depends on E's codes only
    model, ctx = parts.model, PlainContext(parts.model)
    before = params(model, NETS)
    model.g_step(batch, model.generate(batch), ctx)
    assert {k.split(".")[0] for k in changed(before, model, NETS)} == {"e"}

    parts = built(paired_root, tmp_path)
    _only(parts, "l1")  # reconstruction with the encoded z: both G and E learn
    model, ctx = parts.model, PlainContext(parts.model)
    before = params(model, NETS)
    model.g_step(batch, model.generate(batch), ctx)
    assert {k.split(".")[0] for k in changed(before, model, NETS)} == {"g", "e"}


def test_latent_term_leaves_e_gradient_untouched(paired_root, tmp_path):
    """E's gradient from the full G step equals its gradient without the latent term (the reference's intent)."""
    grads = []
    for latent_weight in (0.5, 0.0):
        parts = built(paired_root, tmp_path)
        parts.losses["latent"].weight = latent_weight
        model = parts.model
        torch.manual_seed(1)
        out = model.generate(batch_of(parts, 4))

        class Grab(PlainContext):
            def update(self, group, loss):
                loss.backward()
                grads.append({n: p.grad.clone() for n, p in self.nets["e"].named_parameters()})

        model.g_step(None, out, Grab(model))
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name])


def test_batch_is_split_in_halves(paired_root, tmp_path):
    parts = built(paired_root, tmp_path, batch_size=6)
    out = parts.model.generate(batch_of(parts, 6))
    assert out["fake_enc"].shape[0] == out["fake_random"].shape[0] == out["b_random"].shape[0] == 3
    assert out["mu"].shape == out["z_random"].shape == (3, 4)
    with pytest.raises(RecipeError, match="even"):
        parts.model.generate(batch_of(parts, 3))


def test_shared_discriminator(paired_root, tmp_path):
    parts = built(paired_root, tmp_path, shared_d=True)
    model = parts.model
    assert "d2" not in model.optim_groups and "d2" not in model.nets
    ctx = PlainContext(model)
    before = params(model, ("g", "e", "d"))
    logs = model.train_step(batch_of(parts, 4), ctx)
    assert {"d/adv", "d/adv2", "g/adv2"} <= set(logs)
    assert {k.split(".")[0] for k in changed(before, model, ("g", "e", "d"))} == {"g", "e", "d"}


@pytest.mark.parametrize("change, key", [
    ({"data": {"batch_size": 3}}, "data.batch_size"),
    ({"data": {"batch_size": 1}}, "data.batch_size"),
    ({"nets": {"e": {"z_dim": 5}}}, "nets.e.z_dim"),
    ({"nets": {"g": {"z_dim": 0}}}, "nets.g.z_dim"),
    ({"nets": {"d2": {"in_channels": 4}}}, "nets.d2.in_channels"),
    ({"nets": {"e": {"in_channels": 1}}}, "nets.e.in_channels"),
    ({"model": {"conditional_d": True}}, "nets.d.in_channels"),
])
def test_recipe_checks_name_the_key(change, key, paired_root, tmp_path):
    recipe = tiny_bicyclegan(paired_root, tmp_path / "run")
    for section, values in change.items():
        for k, v in values.items():
            if isinstance(v, dict):
                recipe[section][k].update(v)
            else:
                recipe[section][k] = v
    with pytest.raises(RecipeError) as err:
        validate_recipe(Recipe.of(recipe, "tiny"))
    assert err.value.key == key


def test_bundled_recipes_validate():
    for name in ("bicyclegan", "demo/bicyclegan"):
        recipe = load_recipe(ROOT / "recipes" / f"{name}.yaml")
        validate_recipe(recipe)
        g, e = recipe["nets"]["g"], recipe["nets"]["e"]
        assert g["z_dim"] == e["z_dim"] == 8 and g["z_injection"] == "all"
        assert recipe["data"]["batch_size"] % 2 == 0
    ref = load_recipe(ROOT / "recipes" / "bicyclegan.yaml")
    assert (ref["losses"]["l1"]["weight"], ref["losses"]["kl"]["weight"], ref["losses"]["latent"]["weight"]) == \
        (10.0, 0.01, 0.5)
    assert ref["losses"]["adv"]["mode"] == "lsgan" and ref["data"]["batch_size"] == 2


@pytest.fixture
def trained(paired_root, tmp_path_factory, capsys):
    tmp = tmp_path_factory.mktemp("bicycle")
    run = tmp / "run"
    recipe = tiny_bicyclegan(paired_root, run)
    recipe["eval"] = {"every": 4, "max_images": 4, "samples": 3, "data": str(paired_root), "split": "train",
                      "feature_weights": None}
    assert main(["train", str(write_recipe(tmp / "r.yaml", recipe))]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    return run, result


def test_trains_logs_scores_and_exports_g_and_e(trained):
    run, result = trained
    assert result["step"] == 4
    assert {"eval/diversity", "eval/reconstruction_l1", "eval/reconstruction_l1_random",
            "eval/diversity_features"} <= set(result)
    assert (run / "export" / "g.safetensors").is_file() and (run / "export" / "e.safetensors").is_file()
    meta = json.loads((run / "export" / "meta.json").read_text())
    assert meta["task"] == "paired_translation" and meta["z_dim"] == 4
    logged = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert any("g/latent" in row and "e/kl" in row and "d2/adv" in row for row in logged)


def _inputs(tmp_path, paired_root, n=3):
    folder = tmp_path / "in"
    folder.mkdir()
    for p in sorted((paired_root / "train" / "A").glob("*.png"))[:n]:
        (folder / p.name).write_bytes(p.read_bytes())
    return folder


def test_translate_samples_are_named_distinct_and_reproducible(trained, paired_root, tmp_path, capsys):
    run, _ = trained
    folder = _inputs(tmp_path, paired_root)
    for out in ("o1", "o2"):
        assert main(["translate", str(run), "-i", str(folder), "-o", str(tmp_path / out), "--samples", "3",
                     "--seed", "7"]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["images"] == 9 and figures["samples_per_input"] == 3
    names = sorted(p.name for p in (tmp_path / "o1").glob("*.png"))
    assert names == sorted(f"{p.stem}_sample{k}.png" for p in folder.glob("*.png") for k in range(3))
    first = sorted(folder.glob("*.png"))[0].stem
    outs = [np.asarray(Image.open(tmp_path / "o1" / f"{first}_sample{k}.png"), dtype=np.int16) for k in range(3)]
    assert outs[0].shape == (32, 32, 3)
    assert all(np.abs(outs[i] - outs[j]).mean() > 0 for i, j in ((0, 1), (0, 2), (1, 2)))
    for name in names:  # same seed, same outputs
        assert (tmp_path / "o1" / name).read_bytes() == (tmp_path / "o2" / name).read_bytes()
    codes = json.loads((tmp_path / "o1" / "latents.json").read_text())["codes"]
    assert len(codes) == 9 and len(codes[f"{first}_sample0.png"]) == 4
    stems = sorted(p.stem for p in folder.glob("*.png"))
    assert codes[f"{stems[0]}_sample0.png"] != codes[f"{stems[1]}_sample0.png"]  # each input its own codes


def test_translate_sync_z_style_and_interpolation(trained, paired_root, tmp_path, capsys):
    run, _ = trained
    folder = _inputs(tmp_path, paired_root)
    stems = sorted(p.stem for p in folder.glob("*.png"))
    assert main(["translate", str(run), "-i", str(folder), "-o", str(tmp_path / "sync"), "--samples", "2",
                 "--sync-z", "--interpolate", "4"]) == 0
    codes = json.loads((tmp_path / "sync" / "latents.json").read_text())["codes"]
    assert codes[f"{stems[0]}_sample1.png"] == codes[f"{stems[1]}_sample1.png"]
    strip = np.asarray(Image.open(tmp_path / "sync" / f"{stems[0]}_interp.png"))
    assert strip.shape == (32, 4 * 32, 3)
    s0 = np.asarray(Image.open(tmp_path / "sync" / f"{stems[0]}_sample0.png"), dtype=np.int16)
    s1 = np.asarray(Image.open(tmp_path / "sync" / f"{stems[0]}_sample1.png"), dtype=np.int16)
    assert np.abs(strip[:, :32].astype(np.int16) - s0).max() <= 1  # the strip runs from sample0 ...
    assert np.abs(strip[:, -32:].astype(np.int16) - s1).max() <= 1  # ... to sample1
    style = sorted((paired_root / "train" / "B").glob("*.png"))[5]
    capsys.readouterr()
    assert main(["translate", str(run), "-i", str(folder), "-o", str(tmp_path / "style"), "--style-from",
                 str(style)]) == 0
    assert sorted(p.name for p in (tmp_path / "style").glob("*.png")) == \
        [f"{s}_style-{style.stem}.png" for s in stems]


def test_eval_json(trained, paired_root, capsys):
    run, _ = trained
    capsys.readouterr()
    assert main(["eval", str(run), "--data", str(paired_root), "--split", "train", "--samples", "3",
                 "--max-images", "4"]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["images"] == 4 and figures["samples"] == 3
    assert figures["diversity"] > 0 and figures["diversity_features"] > 0
    assert 0 < figures["reconstruction_l1"] < 1 and "reconstruction_l1_random" in figures


def test_multimodal_options_refused_for_pix2pix(paired_root, tmp_path, capsys):
    run = tmp_path / "p2p"
    assert main(["train", str(write_recipe(tmp_path / "p.yaml", tiny_pix2pix(paired_root, run, max_steps=2)))]) == 0
    capsys.readouterr()
    folder = _inputs(tmp_path, paired_root, 1)
    assert main(["translate", str(run), "-i", str(folder), "-o", str(tmp_path / "o"), "--samples", "3"]) == 2
    err = capsys.readouterr().err
    assert "--samples" in err and "takes no latent code" in err and "pix2pix" in err
    assert not (tmp_path / "o").exists()


def test_learns_diverse_outputs_and_encoded_style_beats_random(paired_root, tmp_path, capsys):
    """After a short run on real photo crops (gray -> colour): samples of one input differ, and the code E gives
    the real B rebuilds it better than a random code, i.e. z carries the colours the gray input leaves open."""
    run = tmp_path / "run"
    recipe = tiny_bicyclegan(paired_root, run, max_steps=300, log_every=100, sample_every=300,
                             checkpoint_every=300, cpu_threads=1)
    recipe["nets"]["e"]["base_channels"] = 16
    recipe["eval"] = {"every": 300, "max_images": 10, "samples": 5, "data": str(paired_root), "split": "train",
                      "feature_weights": None}
    assert main(["train", str(write_recipe(tmp_path / "r.yaml", recipe))]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["eval/diversity"] > 0.02  # mean |difference| between samples, [0, 1] scale
    assert result["eval/reconstruction_l1"] < 0.9 * result["eval/reconstruction_l1_random"]


def test_translate_tiles_large_inputs_with_each_samples_code(trained, tmp_path, capsys):
    run, _ = trained
    folder = tmp_path / "big"
    folder.mkdir()
    from .conftest import photo_crops
    Image.fromarray(photo_crops(1, 96)[0][:64]).convert("L").save(folder / "wide.png")
    capsys.readouterr()
    assert main(["translate", str(run), "-i", str(folder), "-o", str(tmp_path / "o"), "--samples", "2",
                 "--tile", "32", "--tile-overlap", "8"]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["tiled"] == 2 and figures["images"] == 2
    outs = [np.asarray(Image.open(tmp_path / "o" / f"wide_sample{k}.png"), dtype=np.int16) for k in range(2)]
    assert outs[0].shape == (64, 96, 3) and np.abs(outs[0] - outs[1]).mean() > 0
