"""The classic GAN family from one model and one adversarial loss: recipes, update schedules, constraints."""
from __future__ import annotations

import json

import pytest
import torch
from torch.nn.utils import parametrize

from i2i.build import build
from i2i.cli import main
from i2i.models.base import step_plan
from i2i.recipe import Recipe, load_recipe

from .conftest import ROOT, write_recipe
from .test_models import PlainContext, changed, params

UNCONDITIONAL = ["gan", "dcgan", "lsgan", "wgan", "wgan_gp", "wgan_div", "ragan", "hinge", "bgan", "softmax_gan",
                 "dragan"]


def tiny(name: str, root, out, **train) -> dict:
    small = ["nets.g.hidden=[32, 64]", "nets.d.hidden=[32]"] if name == "gan" else \
        ["nets.g.base_channels=8", "nets.d.base_channels=8"]
    r = load_recipe(ROOT / "recipes" / f"{name}.yaml", [
        f"data.root={root}", "data.batch_size=8", *small, f"train.output_dir={out}", "train.max_steps=4",
        "train.log_every=2", "train.sample_every=4", "train.checkpoint_every=4", "train.tensorboard=false",
        "eval=null"])
    r["train"].update(train)
    r["name"] = name
    return dict(r)


def test_step_plan():
    order, critics = ("d", "g"), ("d",)
    assert step_plan(order, critics, 0) == ["d", "g"]
    assert [step_plan(order, critics, s, n_critic=5) for s in range(6)] == \
        [["d", "g"], ["d"], ["d"], ["d"], ["d"], ["d", "g"]]
    assert step_plan(order, critics, 3, g_steps=2) == ["d", "g", "g"]
    assert step_plan(order, critics, 1, d_warmup_steps=2) == ["d"]
    assert step_plan(order, critics, 2, d_warmup_steps=2, n_critic=2) == ["d", "g"]
    assert step_plan(("g", "d"), critics, 0, g_steps=2) == ["g", "g", "d"]


@pytest.mark.parametrize("name", UNCONDITIONAL)
def test_recipe_trains_exports_and_samples(name, digits_root, tmp_path, capsys):
    run = tmp_path / "run"
    path = write_recipe(tmp_path / "r.yaml", tiny(name, digits_root, run))
    assert main(["train", str(path)]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["step"] == 4 and result["warnings"] == []
    if name.startswith("wgan"):
        assert "d/wdist" in result
    assert main(["sample", str(run / "export"), "--output", str(tmp_path / "s"), "--columns", "4",
                 "--per-class", "3"]) == 0
    sampled = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert sampled["images"] == 3 and (tmp_path / "s" / "grid.png").is_file()
    assert len(list((tmp_path / "s" / "samples").glob("*.png"))) == 3


@pytest.mark.parametrize("name", ["dcgan", "wgan_gp", "ragan"])
def test_group_isolation_and_n_critic(name, digits_root, tmp_path):
    recipe = Recipe.of(tiny(name, digits_root, tmp_path / "run"), name)
    parts = build(recipe)
    model = parts.model
    ctx = PlainContext(model, lr=0.01)
    ctx.schedule = {"n_critic": 3}
    loader = torch.utils.data.DataLoader(parts.dataset, batch_size=8,
                                         sampler=[(i, 0) for i in range(48)])
    batches = iter(loader)
    for step in range(4):
        ctx.step = step
        before_g, before_d = params(model, ["g"]), params(model, ["d"])
        model.train_step(next(batches), ctx)
        g_changed, d_changed = changed(before_g, model, ["g"]), changed(before_d, model, ["d"])
        assert d_changed, step
        assert bool(g_changed) == (step % 3 == 0), step


def test_wgan_critic_weights_stay_clipped(digits_root, tmp_path, capsys):
    run = tmp_path / "run"
    path = write_recipe(tmp_path / "r.yaml", tiny("wgan", digits_root, run, max_steps=6, checkpoint_every=6))
    assert main(["train", str(path)]) == 0
    capsys.readouterr()
    from safetensors.torch import load_file
    d_state = load_file(str(next((run / "checkpoints" / "step_00000006").glob("model_1.safetensors"))))
    weights = [v for k, v in d_state.items() if k.endswith("weight") and v.dim() > 1]
    assert weights and all(float(w.abs().max()) <= 0.01 + 1e-7 for w in weights)


def test_spectral_norm_on_any_net(digits_root, tmp_path):
    r = tiny("hinge", digits_root, tmp_path / "run")
    parts = build(Recipe.of(r, "hinge"))
    convs = [m for m in parts.nets["d"].modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert convs and all(parametrize.is_parametrized(m, "weight") for m in convs)
    # a net with no spectral_norm argument of its own gets it from the trainer's builder
    r2 = tiny("dcgan", digits_root, tmp_path / "run2")
    r2["nets"]["g"]["spectral_norm"] = True
    g = build(Recipe.of(r2, "dcgan")).nets["g"]
    assert any(parametrize.is_parametrized(m, "weight") for m in g.modules()
               if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)))


def test_unconditional_model_refuses_labels(digits_root, tmp_path):
    from i2i.errors import RecipeError
    r = tiny("dcgan", digits_root, tmp_path / "run")
    r["nets"]["g"]["num_classes"] = 10
    with pytest.raises(RecipeError, match="nets.g.num_classes"):
        build(Recipe.of(r, "dcgan"))
