"""ESRGAN: the PSNR stage (sr_pixel) and the GAN stage (esrgan), init_from, the SR scorer and `i2i eval` for SR.

Tiny nets and images made here from scikit-image's sample photos; nothing is downloaded and no shared data is read.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from i2i.build import build, validate_recipe
from i2i.cli import main
from i2i.data.demo import ensure_demo
from i2i.data.io import list_images
from i2i.errors import RecipeError
from i2i.evaluation.sr_scoring import SRScorer, load_eval_pairs, score_pairs
from i2i.inference.export import mismatch
from i2i.init_from import apply_init_from
from i2i.optim import SCHEDULES, CosineRestarts, MultiStep, build_scheduler
from i2i.recipe import Recipe, load_recipe

from .conftest import ROOT, photo_crops, write_recipe
from .test_models import PlainContext, batch_of, changed, params

G = {"type": "rrdb_net", "in_channels": 3, "out_channels": 3, "features": 8, "blocks": 1, "growth": 4, "scale": 4}
D = {"type": "vgg_discriminator", "in_channels": 3, "base_channels": 4, "stages": 3, "norm": "batch"}


def tiny_sr(root: Path, out: Path, **train) -> dict:
    """Stage 1 (sr_pixel): tiny RRDBNet x4 on 16 px HR crops."""
    return {
        "name": "tiny_sr", "seed": 0,
        "data": {"type": "superres_folder", "root": str(root), "scale": 4, "gt_size": 16, "batch_size": 2,
                 "num_workers": 0},
        "model": {"type": "sr_pixel"},
        "nets": {"g": dict(G)},
        "losses": {"pixel": {"type": "l1", "weight": 1.0}},
        "optim": {"g": {"type": "adam", "lr": 2.0e-4, "betas": [0.9, 0.99]}},
        "ema": {"decay": 0.9},
        "train": {"max_steps": 4, "log_every": 2, "sample_every": 4, "checkpoint_every": 4, "keep_checkpoints": 2,
                  "output_dir": str(out), "tensorboard": False, **train},
    }


def tiny_esrgan(root: Path, out: Path, init_from: str | None = None, perceptual: bool = True, **train) -> dict:
    """Stage 2 (esrgan): + VGG-style D, RaGAN and (random-VGG, test-only) perceptual loss."""
    r = tiny_sr(root, out, **train)
    r["name"] = "tiny_esrgan"
    r["model"] = {"type": "esrgan", **({"init_from": {"g": init_from}} if init_from else {})}
    r["nets"]["d"] = dict(D)
    r["losses"] = {"pixel": {"type": "l1", "weight": 0.01},
                   "adv": {"type": "adversarial", "mode": "ragan", "weight": 0.005}}
    if perceptual:
        r["losses"]["perceptual"] = {"type": "perceptual", "layer_weights": {"conv5_4": 1.0}, "weight": 1.0,
                                     "weights": None}  # random VGG: tests only
    r["optim"]["d"] = {"type": "adam", "lr": 1.0e-4, "betas": [0.9, 0.99]}
    return r


def _save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(array)).save(path)


@pytest.fixture
def hr_root(tmp_path: Path) -> Path:
    root = tmp_path / "hr"
    for i, crop in enumerate(photo_crops(8, 32)):
        _save(root / f"{i:03d}.png", crop)
    return root


@pytest.fixture
def pairs_root(tmp_path: Path) -> Path:
    """Set5-style *_HR / *_LR pairs (LR by Pillow's bicubic, as benchmark files are made)."""
    root = tmp_path / "val"
    for i, crop in enumerate(photo_crops(3, 32, seed=7)):
        _save(root / f"img_{i + 1:03d}_SRF_4_HR.png", crop)
        _save(root / f"img_{i + 1:03d}_SRF_4_LR.png", np.asarray(Image.fromarray(crop).resize((8, 8), Image.BICUBIC)))
    return root


def recipe_of(data: dict, name: str = "tiny.yaml") -> Recipe:
    return Recipe.of(data, name)


# ---------------------------------------------------------------- the two models
def test_esrgan_group_isolation(hr_root, tmp_path):
    torch.manual_seed(0)
    parts = build(recipe_of(tiny_esrgan(hr_root, tmp_path / "run")))
    model, ctx = parts.model, PlainContext(parts.model)
    assert model.optim_groups == {"g": ("g",), "d": ("d",)} and model.order == ("g", "d")
    batch = batch_of(parts)
    out = model.generate(batch)
    g_before, d_before = params(model, ["g"]), params(model, ["d"])
    logs = model.d_step(batch, out, ctx)
    assert set(logs) == {"d/adv"}
    assert not changed(g_before, model, ["g"]), "d_step changed G"
    # every D weight moves but the last bias: a relativistic loss sees only differences of logits
    assert changed(d_before, model, ["d"]) == set(d_before) - {"d.head.3.bias"}, "d_step left D weights untouched"
    assert all(p.grad is None for p in model.nets["g"].parameters()), "D loss leaked into G"

    out = model.generate(batch)
    g_before, d_before = params(model, ["g"]), params(model, ["d"])
    for opt in ctx.opts.values():
        opt.zero_grad(set_to_none=True)
    logs = model.g_step(batch, out, ctx)
    assert set(logs) == {"g/pixel", "g/perceptual", "g/adv"}
    assert not changed(d_before, model, ["d"]), "g_step changed D"
    assert all(p.grad is None for p in model.nets["d"].parameters()), "G loss leaked into D"
    assert all(p.requires_grad for p in model.nets["d"].parameters()), "D left frozen"
    assert len(changed(g_before, model, ["g"])) > 0.9 * len(g_before)
    assert not any(p.requires_grad for p in parts.losses["perceptual"].parameters())  # the VGG never trains


def test_psnr_stage_has_no_discriminator(hr_root, tmp_path):
    torch.manual_seed(0)
    parts = build(recipe_of(tiny_sr(hr_root, tmp_path / "run")))
    model = parts.model
    assert set(model.nets) == {"g"} and model.optim_groups == {"g": ("g",)} and model.order == ("g",)
    assert model.critic_groups == () and not hasattr(model, "d_step")
    g_before = params(model, ["g"])
    logs = model.train_step(batch_of(parts), PlainContext(model))
    assert set(logs) == {"g/pixel"} and all(torch.isfinite(v) and not v.requires_grad for v in logs.values())
    assert len(changed(g_before, model, ["g"])) > 0.9 * len(g_before)
    rows = model.visuals(batch_of(parts))  # LR (nearest) | bicubic | SR | HR, all at HR size
    assert len(rows) == 4 and all(r.shape == (2, 3, 16, 16) for r in rows)
    assert model.export_info(parts.dataset) == {"task": "super_resolution", "scale": 4}
    # strict: stage 1 has no D and no adversarial loss; stage 2 needs both
    bad = tiny_sr(hr_root, tmp_path / "run")
    bad["nets"]["d"] = dict(D)
    with pytest.raises(RecipeError, match="has no net") as info:
        validate_recipe(recipe_of(bad))
    assert info.value.key == "nets.d"
    bad = tiny_sr(hr_root, tmp_path / "run")
    bad["losses"]["adv"] = {"type": "adversarial", "mode": "ragan"}
    with pytest.raises(RecipeError) as info:
        validate_recipe(recipe_of(bad))
    assert info.value.key == "losses.adv"
    bad = tiny_esrgan(hr_root, tmp_path / "run")
    del bad["losses"]["adv"]
    with pytest.raises(RecipeError, match="needs losses.adv"):
        validate_recipe(recipe_of(bad))


class SpyD(torch.nn.Module):
    """Records what D is called on."""

    def __init__(self, d):
        super().__init__()
        self.d, self.calls = d, []

    def forward(self, x):
        self.calls.append(x.detach().clone())
        return self.d(x)


def test_ragan_generator_loss_uses_d_on_the_real_hr(hr_root, tmp_path):
    torch.manual_seed(0)
    r = tiny_esrgan(hr_root, tmp_path / "run", perceptual=False)
    r["losses"]["adv"]["weight"] = 1.0
    r["losses"]["pixel"]["weight"] = 0.0
    parts = build(recipe_of(r))
    model = parts.model
    model.nets["d"] = spy = SpyD(model.nets["d"]).eval()  # eval: BatchNorm uses running stats, D is a function
    batch = batch_of(parts)
    out = model.generate(batch)
    fake = out["fake_b"].detach().clone()
    logs = model.g_step(batch, out, PlainContext(model, lr=0.0))
    assert len(spy.calls) == 2
    assert any(torch.equal(c, batch["real_b"]) for c in spy.calls), "G's RaGAN loss never looked at real HR"
    assert any(torch.equal(c, fake) for c in spy.calls)
    with torch.no_grad():
        real_l, fake_l = spy.d(batch["real_b"]), spy.d(fake)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    expected = 0.5 * (bce(real_l - fake_l.mean(), torch.zeros_like(real_l))
                      + bce(fake_l - real_l.mean(), torch.ones_like(fake_l)))
    torch.testing.assert_close(logs["g/adv"], expected)
    # a different real batch changes G's loss for the same fakes: the loss is relative to real
    batch2 = dict(batch, real_b=batch["real_b"].flip(-1))
    logs2 = model.g_step(batch2, {"fake_b": fake.requires_grad_(True)}, PlainContext(model, lr=0.0))
    assert not torch.isclose(logs2["g/adv"], logs["g/adv"])
    # D's step sees the real HR and the detached SR batch
    spy.calls.clear()
    model.d_step(batch, {"fake_b": fake}, PlainContext(model, lr=0.0))
    assert torch.equal(spy.calls[0], batch["real_b"]) and torch.equal(spy.calls[1], fake)


@pytest.mark.parametrize("change, key, text", [
    ({"nets.g.scale": 2}, "nets.g.scale", "x2 but the data pairs are x4"),
    ({"nets.g.in_channels": 1}, "nets.g.in_channels", "must be 3"),
    ({"nets.d.in_channels": 6}, "nets.d.in_channels", "must be 3"),
    ({"data.gt_size": 18}, "data.gt_size", "divisible by scale"),
    ({"nets.d.stages": 5}, "data.gt_size", "at least 32 px"),
    ({"data.crop": False}, "data.crop", "cannot be batched"),
    ({"data.batch_size": 1000000}, "data.batch_size", "GiB"),
    ({"data.gt_size": 100000}, "data.gt_size", "GiB"),
    ({"data.type": "paired_folder", "data.size": 16}, "data.type", "super-resolution data set"),
    ({"nets.g": {"type": "unet_generator", "in_channels": 3, "out_channels": 3, "depth": 2}}, "nets.g.type",
     "scale argument"),
])
def test_strict_recipe_checks(hr_root, tmp_path, change, key, text):
    r = tiny_esrgan(hr_root, tmp_path / "run")
    for dotted, value in change.items():
        node = r
        *path, last = dotted.split(".")
        for p in path:
            node = node[p]
        node[last] = value
    if r["data"]["type"] == "paired_folder":
        r["data"] = {"type": "paired_folder", "root": str(hr_root), "size": 16, "batch_size": 2}
    with pytest.raises(RecipeError) as info:
        validate_recipe(recipe_of(r))
    assert info.value.key == key and text in str(info.value), str(info.value)


def test_scale_2_lr_crop_must_suit_the_unshuffle(hr_root, tmp_path):
    r = tiny_sr(hr_root, tmp_path / "run")
    r["nets"]["g"]["scale"] = 2
    r["data"].update(scale=2, gt_size=18)  # LR crop 9 px, but a x2 RRDBNet unshuffles by 2
    with pytest.raises(RecipeError, match="multiple of 2") as info:
        validate_recipe(recipe_of(r))
    assert info.value.key == "data.gt_size"
    r["data"]["gt_size"] = 20
    validate_recipe(recipe_of(r))


# ---------------------------------------------------------------- init_from
def _stage1_export(hr_root: Path, tmp_path: Path) -> Path:
    path = write_recipe(tmp_path / "stage1.yaml", tiny_sr(hr_root, tmp_path / "stage1", max_steps=2,
                                                          checkpoint_every=2, sample_every=2))
    assert main(["train", str(path)]) == 0
    return tmp_path / "stage1" / "export"


def test_init_from_checks_and_loads_strictly(hr_root, tmp_path):
    export = _stage1_export(hr_root, tmp_path)
    good = tiny_esrgan(hr_root, tmp_path / "run2", init_from=str(tmp_path / "stage1"))  # a run folder works too
    torch.manual_seed(123)
    parts = build(recipe_of(good))
    want = load_file(str(export / "g.safetensors"))
    got = parts.nets["g"].state_dict()
    assert set(got) == set(want) and all(torch.equal(got[k], want[k]) for k in want)
    # a different architecture: named key, first mismatching tensor, both shapes
    wide = tiny_esrgan(hr_root, tmp_path / "run2", init_from=str(export))
    wide["nets"]["g"]["features"] = 12
    with pytest.raises(RecipeError) as info:
        validate_recipe(recipe_of(wide, "stage2.yaml"))
    text = str(info.value)
    assert info.value.key == "model.init_from.g" and "stage2.yaml" in text
    assert "tensor 'conv_first.weight' is (8, 3, 3, 3) in the export but (12, 3, 3, 3) in nets.g" in text
    deeper = tiny_esrgan(hr_root, tmp_path / "run2", init_from=str(export))
    deeper["nets"]["g"]["blocks"] = 2
    with pytest.raises(RecipeError, match="tensor 'body.1.blocks.0.convs.0.weight' .* is not in the export"):
        validate_recipe(recipe_of(deeper))
    # the load itself checks too (a net built outside validation)
    from i2i.nets.rrdb import RRDBNet
    with pytest.raises(RecipeError, match="conv_first.weight"):
        apply_init_from(good, {"g": RRDBNet(features=12, blocks=1, growth=4)}, file="x.yaml")
    # a net the export does not have, a net the recipe does not have, a folder that is no export
    for spec, key, text in (({"d": str(export)}, "model.init_from.d", "has no net 'd'"),
                            ({"g2": str(export)}, "model.init_from.g2", "no net of this name"),
                            ({"g": str(tmp_path / "nowhere")}, "model.init_from.g", "no such folder"),
                            ({"g": str(hr_root)}, "model.init_from.g", "not an export"),
                            ({"g": 5}, "model.init_from.g", "path of an export"),
                            ("runs/x/export", "model.init_from", "maps net names")):
        r = tiny_esrgan(hr_root, tmp_path / "run2")
        r["model"]["init_from"] = spec
        with pytest.raises(RecipeError, match=text) as info:
            validate_recipe(recipe_of(r))
        assert info.value.key == key
    r = tiny_esrgan(hr_root, tmp_path / "run2")
    r["model"]["init_fro"] = {"g": str(export)}
    with pytest.raises(RecipeError, match="init_from"):  # a typo is caught, and the real key suggested
        validate_recipe(recipe_of(r))
    assert mismatch({"a": (1,)}, {"a": (1,), "b": (2,)}, "g") == "the export has tensor 'b' (2,), which nets.g lacks"


# ---------------------------------------------------------------- two stages end to end, through the CLI
def _last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


@pytest.mark.slow
def test_two_stage_run_eval_and_translate(hr_root, pairs_root, tmp_path, capsys):
    export1 = _stage1_export(hr_root, tmp_path)
    capsys.readouterr()
    meta = json.loads((export1 / "meta.json").read_text())
    assert meta["model"] == "sr_pixel" and meta["task"] == "super_resolution" and meta["scale"] == 4
    assert sorted(meta["files"]) == ["g"]  # no discriminator in stage 1

    stage2 = tiny_esrgan(hr_root, tmp_path / "stage2", init_from=str(export1), max_steps=4, checkpoint_every=2,
                         sample_every=2)
    stage2["eval"] = {"data": str(pairs_root), "every": 2, "max_images": 2}
    path2 = write_recipe(tmp_path / "stage2.yaml", stage2)
    assert main(["train", str(path2)]) == 0
    result = _last_json(capsys.readouterr().out)
    for k in ("eval/psnr_y", "eval/ssim_y", "eval/bicubic_psnr_y", "eval/bicubic_ssim_y", "g/adv", "d/adv",
              "g/perceptual", "g/pixel"):
        assert k in result and math.isfinite(result[k]), k
    run2 = tmp_path / "stage2"
    logged = [json.loads(line) for line in (run2 / "log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in logged if "eval/psnr_y" in e] == [0, 2, 4]  # 0: the init_from weights, untrained here
    meta2 = json.loads((run2 / "export" / "meta.json").read_text())
    assert meta2["model"] == "esrgan" and sorted(meta2["files"]) == ["g"] and meta2["ema"] is True
    assert (run2 / "samples" / "step_00000004.png").is_file()

    # resuming must continue from the checkpoint, not re-apply init_from: 2 + 2 steps == 4 steps
    stage2b = dict(stage2, train=dict(stage2["train"], output_dir=str(tmp_path / "stage2b"), max_steps=2))
    stage2b["eval"] = None
    path2b = write_recipe(tmp_path / "stage2b.yaml", stage2b)
    assert main(["train", str(path2b)]) == 0
    assert main(["train", str(path2b), "train.max_steps=4", "--resume", "latest"]) == 0
    straight, resumed = load_file(str(run2 / "export" / "g.safetensors")), \
        load_file(str(tmp_path / "stage2b" / "export" / "g.safetensors"))
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    capsys.readouterr()

    # `i2i eval` on LR files (Set5 layout): model and bicubic from the same LR files
    assert main(["eval", str(run2), "--data", str(pairs_root)]) == 0
    text = capsys.readouterr().out
    figures = _last_json(text)
    for k in ("psnr_y", "ssim_y", "bicubic_psnr_y", "bicubic_ssim_y", "psnr", "ssim", "bicubic_psnr",
              "bicubic_ssim"):
        assert math.isfinite(figures[k]), k
    assert figures["images"] == 3 and figures["scale"] == 4 and figures["lr"] == "files"
    assert "img_001_SRF_4" in text and "mean (3)" in text  # the table, one line per image
    pairs = load_eval_pairs(str(pairs_root), 4)
    bicubic_only = score_pairs(torch.nn.Upsample(scale_factor=4, mode="nearest"), pairs, 4, "cpu")[0]
    assert figures["bicubic_psnr_y"] == pytest.approx(bicubic_only["bicubic_psnr_y"])  # baseline independent of G
    # an HR-only folder: LR made by the training bicubic
    assert main(["eval", str(run2), "--data", str(hr_root), "--max-images", "2"]) == 0
    figures = _last_json(capsys.readouterr().out)
    assert figures["images"] == 2 and figures["lr"] == "bicubic"
    assert main(["eval", str(run2), "--data", str(pairs_root), "--scale", "2"]) == 2
    assert "upscales x4" in capsys.readouterr().err

    # `i2i translate` of a small LR folder: x4 outputs
    lr_dir = tmp_path / "lr_in"
    for i, crop in enumerate(photo_crops(2, 12, seed=3)):
        _save(lr_dir / f"{i}.png", crop[:, :10])
    assert main(["translate", str(run2), "--input", str(lr_dir), "--output", str(tmp_path / "sr_out")]) == 0
    outs = sorted(list_images(tmp_path / "sr_out"))
    assert len(outs) == 2 and all(Image.open(p).size == (40, 48) for p in outs)
    # stage 1 and stage 2 blend (ESRGAN's network interpolation): init_from does not make them differ
    assert main(["interpolate", str(export1), str(run2), "--alpha", "0.8", "-o", str(tmp_path / "blend")]) == 0


# ---------------------------------------------------------------- scorer, schedules, demo data, recipes
def test_eval_pairs_from_lr_files_or_bicubic(pairs_root, tmp_path):
    from i2i.evaluation.sr_scoring import format_table, lr_source
    for p in list_images(pairs_root):  # the same pairs as an HR folder beside an LR folder
        side = "HR" if p.stem.endswith("_HR") else "LR"
        _save(tmp_path / side / f"{p.stem[:-3]}.png", np.asarray(Image.open(p)))
    given = load_eval_pairs(str(pairs_root), 4)
    folders = load_eval_pairs(str(tmp_path / "HR"), 4, lr_data=str(tmp_path / "LR"), max_images=2)
    made = load_eval_pairs(str(tmp_path / "HR"), 4)
    assert [n for n, _, _ in given] == [n for n, _, _ in made] == ["img_001_SRF_4", "img_002_SRF_4", "img_003_SRF_4"]
    assert len(folders) == 2 and all(np.array_equal(a[1], b[1]) for a, b in zip(given, folders))  # the LR files
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(given, made))  # bicubic LR differs from Pillow's
    assert lr_source(str(pairs_root), None) == "files" and lr_source(str(tmp_path / "HR"), None) == "bicubic"
    assert lr_source(str(tmp_path / "HR"), str(tmp_path / "LR")) == "files"
    net = torch.nn.Upsample(scale_factor=4, mode="nearest")
    mean, rows = score_pairs(net, given, 4, "cpu")
    assert mean["images"] == 3 and len(rows) == 3
    assert mean["bicubic_psnr_y"] > mean["psnr_y"]  # nearest upscaling loses to bicubic
    assert mean["psnr_y"] == pytest.approx(np.mean([r["psnr_y"] for r in rows]))
    table = format_table(rows, mean).splitlines()
    assert len(table) == 5 and table[0].split()[:3] == ["image", "PSNR-Y", "SSIM-Y"]


def test_sr_scorer_checks(hr_root, tmp_path):
    r = tiny_sr(hr_root, tmp_path / "run")
    for cfg, key, text in (({"every": 5}, "eval.data", "needs data"),
                           ({"data": "x", "scale": 2}, "eval.scale", "x4"),
                           ({"data": "x", "every": 0}, "eval.every", "positive"),
                           ({"data": "x", "crop_border": -1}, "eval.crop_border", ">= 0"),
                           ({"data": "x", "demo": "nope"}, "eval.demo", "unknown demo"),
                           ({"data": "x", "classifier": "y"}, "eval.classifier", "unknown argument")):
        with pytest.raises(RecipeError, match=text) as info:
            validate_recipe(recipe_of(dict(r, eval=cfg)))
        assert info.value.key == key, cfg
    SRScorer.check_config({"demo": "sr_val"}, r, file="x")


def test_schedules():
    ms = MultiStep(milestones=[3, 6], gamma=0.5)
    assert [ms(s) for s in (0, 2, 3, 5, 6, 100)] == [1, 1, 0.5, 0.5, 0.25, 0.25]
    cr = CosineRestarts(periods=[4, 4], restart_weights=[1.0, 0.5], min_factor=0.1)
    assert cr(0) == pytest.approx(1.0) and cr(2) == pytest.approx(0.55) and cr(4) == pytest.approx(0.55)
    assert cr(6) == pytest.approx(0.1 + 0.5 * 0.9 * 0.5) and cr(8) == pytest.approx(0.1) and cr(99) == 0.1
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=2e-4)
    sched = build_scheduler({"type": "multistep", "milestones": [2]}, opt, file=None)
    lrs = []
    for _ in range(4):
        lrs.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([2e-4, 2e-4, 1e-4, 1e-4])
    for cfg, key in (({"type": "multistep", "milestones": [5, 3]}, "schedule.milestones"),
                     ({"type": "multistep", "milestones": [-1]}, "schedule.milestones"),
                     ({"type": "multistep", "milestones": [5], "gamma": 2.0}, "schedule.gamma"),
                     ({"type": "cosine_restarts", "periods": [5, 5], "restart_weights": [1.0]},
                      "schedule.restart_weights"),
                     ({"type": "cosine_restarts", "periods": []}, "schedule.periods"),
                     ({"type": "cosine_restarts", "periods": [5], "min_factor": 1.0}, "schedule.min_factor")):
        with pytest.raises(RecipeError) as info:
            SCHEDULES.check(cfg, key="schedule")
        assert info.value.key == key, cfg


def test_sr_demo_data(tmp_path):
    ensure_demo("sr", tmp_path / "sr")
    ensure_demo("sr_val", tmp_path / "sr_val")
    train, val = list_images(tmp_path / "sr"), list_images(tmp_path / "sr_val")
    assert len(train) == 200 and len(val) == 12
    assert {Image.open(p).size for p in train} == {(96, 96)} and {Image.open(p).size for p in val} == {(128, 128)}
    def photos(files):
        return {p.stem.split("_")[0] if p.parent.name == "sr" else p.stem.split("_")[1] for p in files}
    assert not photos(train) & photos(val)  # validation photos are never trained on
    assert [p.stem for p in sorted(val)[:4]] == ["00_coffee", "00_flower", "01_coffee_half", "01_flower_half"]


def test_bundled_recipes(tmp_path, monkeypatch):
    for name in ("esrgan_psnr.yaml", "demo/esrgan_psnr.yaml"):
        validate_recipe(load_recipe(ROOT / "recipes" / name))
    stage1 = load_recipe(ROOT / "recipes" / "esrgan_psnr.yaml")
    assert stage1["nets"]["g"] == {**G, "features": 64, "blocks": 23, "growth": 32, "init_scale": 0.1}
    assert stage1["schedule"]["periods"] == [250000] * 4 and stage1["train"]["max_steps"] == 1_000_000
    # stage 2 needs the stage-1 export and the VGG19 weights: without them the check says so, naming the key
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    for name in ("esrgan.yaml", "demo/esrgan.yaml"):
        with pytest.raises(RecipeError) as info:
            validate_recipe(load_recipe(ROOT / "recipes" / name))
        assert info.value.key == "model.init_from.g" and "no such folder" in str(info.value)
        export = tmp_path / name / "export"
        export.mkdir(parents=True)
        with pytest.raises(RecipeError) as info:
            validate_recipe(load_recipe(ROOT / "recipes" / name, [f"model.init_from.g={export.parent}"]))
        assert info.value.key == "model.init_from.g" and "not an export" in str(info.value)
        with pytest.raises(RecipeError) as info:
            validate_recipe(load_recipe(ROOT / "recipes" / name, ["model.init_from=null"]))
        assert info.value.key == "losses.perceptual.weights" and "vgg19-dcbb9e9d.pth" in str(info.value)
        validate_recipe(load_recipe(ROOT / "recipes" / name, ["model.init_from=null",
                                                              "losses.perceptual.weights=null"]))
    stage2 = load_recipe(ROOT / "recipes" / "esrgan.yaml")
    assert stage2["losses"]["perceptual"]["layer_weights"] == {"conv5_4": 1.0}
    assert stage2["losses"]["adv"] == {"type": "adversarial", "mode": "ragan", "weight": 0.005}
    assert stage2["schedule"] == {"type": "multistep", "milestones": [50000, 100000, 200000, 300000], "gamma": 0.5}


# ---------------------------------------------------------------- learning
def _half_res_crops(photo: np.ndarray, count: int, size: int, rng: np.random.Generator) -> list[np.ndarray]:
    import cv2
    half = cv2.resize(photo, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    ys, xs = rng.integers(0, half.shape[0] - size + 1, count), rng.integers(0, half.shape[1] - size + 1, count)
    return [np.ascontiguousarray(half[y:y + size, x:x + size]) for y, x in zip(ys, xs)]


@pytest.mark.slow
def test_psnr_stage_beats_bicubic_on_held_out_photos(tmp_path, capsys):
    """A short CPU run of the PSNR stage (tiny RRDBNet x4, 600 steps) beats bicubic PSNR-Y on crops of a photo
    it never saw, scored by `i2i eval` from the same LR inputs."""
    from skimage import data as skdata
    rng = np.random.default_rng(0)
    for name, photo in (("astronaut", skdata.astronaut()), ("chelsea", skdata.chelsea()),
                        ("rocket", skdata.rocket()), ("motorcycle", skdata.stereo_motorcycle()[0])):
        for k, crop in enumerate(_half_res_crops(photo, 12, 64, rng)):
            _save(tmp_path / "train" / f"{name}_{k:02d}.png", crop)
    for k, crop in enumerate(_half_res_crops(skdata.coffee(), 5, 96, rng)):  # held out
        _save(tmp_path / "val" / f"coffee_{k}.png", crop)
    recipe = tiny_sr(tmp_path / "train", tmp_path / "run", max_steps=600, log_every=100, sample_every=600,
                     checkpoint_every=600)
    recipe["nets"]["g"].update(features=16, blocks=1, growth=8)
    recipe["data"].update(gt_size=32, batch_size=16, cache=True)
    recipe["optim"]["g"]["lr"] = 2.0e-3
    recipe["schedule"] = {"type": "cosine_restarts", "periods": [600], "min_factor": 0.01}
    recipe["ema"] = None
    path = write_recipe(tmp_path / "learn.yaml", recipe)
    assert main(["train", str(path)]) == 0
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "run"), "--data", str(tmp_path / "val")]) == 0
    figures = _last_json(capsys.readouterr().out)
    print(f"held-out PSNR-Y: model {figures['psnr_y']:.3f} dB, bicubic {figures['bicubic_psnr_y']:.3f} dB")
    assert figures["images"] == 5 and figures["lr"] == "bicubic"
    assert figures["psnr_y"] > figures["bicubic_psnr_y"] + 0.15
    assert figures["ssim_y"] > figures["bicubic_ssim_y"]
