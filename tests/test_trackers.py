"""train.trackers: Accelerate's trackers by name, each only where installed (a message names the missing ones and
the command that installs them), the recipe as their configuration, the sample grids to those that take images."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from i2i.build import validate_recipe
from i2i.cli import main
from i2i.engine import trackers as tracking
from i2i.errors import RecipeError
from i2i.recipe import TrainConfig, load_recipe
from i2i.recipe.schema import TRACKERS, check_trackers

from .conftest import tiny_pix2pix, write_recipe


def test_names_are_accelerates():
    from accelerate.utils import LoggerType
    assert set(TRACKERS) == {str(t.value) for t in LoggerType} - {"all"}


@pytest.mark.parametrize("train, wanted", [
    ({}, {"tensorboard": {}}),
    ({"tensorboard": False}, {}),
    ({"trackers": []}, {}),
    ({"trackers": ["wandb", "mlflow", "wandb"]}, {"wandb": {}, "mlflow": {}}),
    ({"trackers": {"wandb": {"project": "x", "mode": "offline"}, "tensorboard": None}},
     {"wandb": {"project": "x", "mode": "offline"}, "tensorboard": {}}),
])
def test_wanted_trackers(train, wanted):
    assert check_trackers(TrainConfig(**train), "r.yaml") == wanted


def recipe_with(tmp_path: Path, paired_root: Path, **train) -> Path:
    return write_recipe(tmp_path / "r.yaml", tiny_pix2pix(paired_root, tmp_path / "run", **train))


@pytest.mark.parametrize("train, key, words", [
    ({"trackers": ["tensorbord"]}, "train.trackers", "did you mean 'tensorboard'"),
    ({"trackers": {"wandb": "offline"}}, "train.trackers", "expected"),
    ({"trackers": ["tensorboard"], "tensorboard": False}, "train.tensorboard", "drop one"),
    ({"trackers": "wandb"}, "train.trackers", "expected"),
])
def test_bad_trackers_are_refused_naming_the_key(tmp_path, paired_root, train, key, words):
    with pytest.raises(RecipeError) as info:
        validate_recipe(load_recipe(str(recipe_with(tmp_path, paired_root, **train))))
    assert info.value.key == key and words in str(info.value) and "r.yaml" in str(info.value)


def test_a_missing_tracker_is_named_and_the_run_goes_on(paired_root, tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(tracking, "installed", lambda name: False)  # as on a machine without wandb and mlflow
    recipe = recipe_with(tmp_path, paired_root, trackers=["wandb", "mlflow"], tensorboard=True)
    with caplog.at_level(logging.WARNING, logger="i2i"):
        assert main(["train", str(recipe)]) == 0
    messages = [r.getMessage() for r in caplog.records]
    assert any("wandb is not installed" in m and "pip install wandb" in m for m in messages)
    assert any("pip install mlflow" in m for m in messages)
    assert (tmp_path / "run" / "log.jsonl").is_file() and not (tmp_path / "run" / "logs").exists()


def test_the_default_tensorboard_missing_is_quiet(caplog, monkeypatch):
    monkeypatch.setattr(tracking, "installed", lambda name: False)
    with caplog.at_level(logging.WARNING, logger="i2i"):
        assert tracking.available({"tensorboard": {}}, explicit=False) == {}
    assert not caplog.records


class FakeTracker:
    def __init__(self, name: str, images: bool = True):
        self.name, self.calls = name, []
        if images:
            self.log_images = lambda values, step=None, **kwargs: self.calls.append((values, step, kwargs))


def test_sample_grids_go_to_trackers_that_take_images(tmp_path):
    grid = np.random.default_rng(0).integers(0, 255, (24, 40, 3), dtype=np.uint8)
    Image.fromarray(grid).save(tmp_path / "step_00000004.png")
    trackers = [FakeTracker("tensorboard"), FakeTracker("wandb"), FakeTracker("clearml"),
                FakeTracker("dvclive", images=False)]
    accelerator = type("A", (), {"trackers": trackers})()
    assert tracking.log_grid(accelerator, tmp_path / "step_00000004.png", 4) == ["tensorboard", "wandb", "clearml"]
    (tb_values, tb_step, tb_kwargs), = trackers[0].calls
    assert tb_step == 4 and tb_kwargs == {"dataformats": "NHWC"} and np.array_equal(tb_values["samples"][0], grid)
    assert np.array_equal(trackers[1].calls[0][0]["samples"][0], grid)  # a list of HWC images
    assert np.array_equal(trackers[2].calls[0][0]["samples"], grid)     # one HWC image


def test_config_is_flat_and_storable():
    flat = tracking.flat_config({"name": "x", "train": {"max_steps": 5, "keep_best": None, "trackers": ["a"]},
                                 "optim": {"g": {"lr": 1e-4, "betas": [0.5, 0.999]}}, "ema": {}})
    assert flat == {"name": "x", "train.max_steps": 5, "train.keep_best": "None", "train.trackers": "['a']",
                    "optim.g.lr": 1e-4, "optim.g.betas": "[0.5, 0.999]", "ema": "{}"}


def test_tensorboard_gets_scalars_images_and_the_recipe(paired_root, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    recipe = recipe_with(tmp_path, paired_root, trackers=["tensorboard"], tensorboard=True)
    assert main(["train", str(recipe)]) == 0
    logs = tmp_path / "run" / "logs" / "tiny_pix2pix"
    events = EventAccumulator(str(logs), size_guidance={"images": 0, "scalars": 0}).Reload()
    assert [e.step for e in events.Scalars("g/l1")] == [2, 4]
    images = events.Images("samples")
    assert [e.step for e in images] == [2, 4]
    grid = Image.open(tmp_path / "run" / "samples" / "step_00000004.png")
    assert (images[-1].width, images[-1].height) == grid.size
    assert list(logs.glob("*/hparams.yml"))  # the recipe as the run's configuration


@pytest.mark.filterwarnings("ignore:`log_with=")  # mlflow is only pretended to be installed
def test_a_tracker_that_does_not_start_is_a_clear_error(paired_root, tmp_path, capsys, monkeypatch):
    from accelerate import Accelerator

    def refuse(self, *args, **kwargs):
        raise RuntimeError("could not reach the tracking server at http://localhost:5000")
    monkeypatch.setattr(tracking, "installed", lambda name: True)
    monkeypatch.setattr(Accelerator, "init_trackers", refuse)
    recipe = recipe_with(tmp_path, paired_root, trackers=["mlflow"])
    assert main(["train", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert "key 'train.trackers': a tracker did not start: RuntimeError: could not reach the tracking server" in err
    assert not (tmp_path / "run" / "checkpoints").exists()  # stopped before training
