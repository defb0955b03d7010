"""The edges a user hits while training: a full disk, a resume with a changed recipe, a run folder that cannot be
made, absurd loader workers, a plug-in generator that translate cannot use, data in the wrong layout, a mistyped
demo root; and what a run tells its user (progress, ETA, the end-of-run summary, a JSON line on interrupt)."""
from __future__ import annotations

import errno
import json
import logging
import signal
from pathlib import Path

import pytest
import torch
import yaml
from safetensors import SafetensorError
from torch import nn

from i2i.cli import main

from .conftest import tiny_pix2pix, write_recipe


def train(recipe: Path, *args: str) -> int:
    return main(["train", str(recipe), *args])


def last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def clean_error(err: str) -> None:
    """One clear message: no traceback, no 'internal error'."""
    assert "Traceback" not in err and "internal error" not in err, err
    assert "i2i: error:" in err, err


def checkpoint_names(run: Path) -> list[str]:
    return sorted(p.name for p in (run / "checkpoints").iterdir())


# ---------------------------------------------------------------- 1. a full disk
DISK_FULL = 'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space left on device" })'


@pytest.mark.parametrize("fault", ["safetensors", "torch_save"])
def test_a_full_disk_while_checkpointing_stops_cleanly(fault, paired_root, tmp_path, monkeypatch, capsys):
    """safetensors and torch.save report a full disk as SafetensorError / RuntimeError, not OSError: the partial
    folder is still removed, ``latest`` stays, and the run stops with a message naming the disk."""
    from accelerate import Accelerator
    real_save_state, real_torch_save = Accelerator.save_state, torch.save
    calls = []

    def save_state(self, output_dir=None, **kwargs):
        calls.append(output_dir)
        if len(calls) == 2:  # the second checkpoint: half written, then the disk is full
            (Path(output_dir)).mkdir(parents=True, exist_ok=True)
            (Path(output_dir) / "model.safetensors").write_bytes(b"\0" * 1000)
            raise SafetensorError(DISK_FULL)
        return real_save_state(self, output_dir, **kwargs)

    def torch_save(obj, f, *args, **kwargs):
        if str(f).endswith("i2i_state.pt") and "step_00000004" in str(f):
            Path(f).write_bytes(b"\0" * 1000)
            raise RuntimeError("[enforce fail at inline_container.cc:626] . PytorchStreamWriter failed writing file "
                               "data/0: file write failed")
        return real_torch_save(obj, f, *args, **kwargs)

    if fault == "safetensors":
        monkeypatch.setattr(Accelerator, "save_state", save_state)
    else:
        monkeypatch.setattr(torch, "save", torch_save)
    run = tmp_path / "run"
    recipe = write_recipe(tmp_path / "r.yaml", tiny_pix2pix(paired_root, run, max_steps=4, checkpoint_every=2))
    code = train(recipe)
    err = capsys.readouterr().err
    assert code == 2, err
    clean_error(err)
    assert "could not write the checkpoint of step 4" in err and "disk mounted at" in err
    assert ("No space left on device" if fault == "safetensors" else "file write failed") in err
    assert "the last good checkpoint is" in err and "step_00000002" in err and "--resume latest" in err
    assert checkpoint_names(run) == ["latest", "step_00000002"]  # no .tmp_step_00000004 left behind
    assert (run / "checkpoints" / "latest").read_text() == "step_00000002"


def test_a_full_disk_while_writing_a_sample_stops_cleanly(paired_root, tmp_path, monkeypatch, capsys):
    """A resume on a full disk used to die with a traceback writing the sample PNG."""
    import i2i.engine.trainer as trainer

    def save_grid(rows, path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    run = tmp_path / "run"
    recipe = write_recipe(tmp_path / "r.yaml", tiny_pix2pix(paired_root, run, max_steps=4, checkpoint_every=2))
    monkeypatch.setattr(trainer, "save_grid", save_grid)
    code = train(recipe)
    err = capsys.readouterr().err
    assert code == 2, err
    clean_error(err)
    assert "could not write the sample step_00000002.png (No space left on device" in err and "disk mounted at" in err
    assert "no earlier checkpoint exists" in err


def test_a_log_file_that_cannot_be_written_stops_cleanly(paired_root, tmp_path, capsys):
    run = tmp_path / "run"
    (run / "log.jsonl").mkdir(parents=True)  # in the way of the log file
    recipe = write_recipe(tmp_path / "r.yaml", tiny_pix2pix(paired_root, run))
    code = train(recipe)
    err = capsys.readouterr().err
    assert code == 2, err
    clean_error(err)
    assert f"could not write {run / 'log.jsonl'}" in err


# ---------------------------------------------------------------- 2. resume with a changed recipe
def constant_lr(root: Path, run: Path, **train_keys) -> dict:
    r = tiny_pix2pix(root, run, **train_keys)
    r["schedule"] = {"type": "constant"}
    return r


def test_resume_applies_a_changed_learning_rate(paired_root, tmp_path, capsys, caplog):
    run = tmp_path / "run"
    recipe = write_recipe(tmp_path / "r.yaml", constant_lr(paired_root, run))
    assert train(recipe) == 0
    capsys.readouterr()
    with caplog.at_level(logging.INFO, logger="i2i"):
        assert train(recipe, "train.max_steps=6", "optim.g.lr=0.1", "--resume", "latest") == 0
    last = json.loads((run / "log.jsonl").read_text().splitlines()[-1])
    assert last["step"] == 6 and last["lr/g"] == pytest.approx(0.1) and last["lr/d"] == pytest.approx(2e-4)
    assert "optim.g.lr: 0.0002 -> 0.1" in caplog.text and "train.max_steps: 4 -> 6" in caplog.text
    # what the optimizer really used, as saved in the checkpoint, and what the recipes on disk say
    state = torch.load(run / "checkpoints" / "step_00000006" / "optimizer.bin", weights_only=True)
    assert state["param_groups"][0]["lr"] == pytest.approx(0.1)
    for saved in (run / "recipe.yaml", run / "checkpoints" / "step_00000006" / "recipe.yaml",
                  run / "export" / "recipe.yaml"):
        assert yaml.safe_load(saved.read_text())["optim"]["g"]["lr"] == 0.1, saved


def test_resume_refuses_an_architecture_change_before_writing(paired_root, tmp_path, capsys):
    run = tmp_path / "run"
    recipe = write_recipe(tmp_path / "r.yaml", constant_lr(paired_root, run))
    assert train(recipe) == 0
    capsys.readouterr()
    before = (run / "recipe.yaml").read_bytes()
    code = train(recipe, "nets.g.base_channels=16", "optim.g.betas=[0.9, 0.99]", "--resume", "latest")
    err = capsys.readouterr().err
    assert code == 2, err
    clean_error(err)
    assert len(err) < 2000 and "nets.g.base_channels: 8 -> 16" in err and "optim.g.betas" in err
    assert "cannot change on resume" in err and "optim.*.lr" in err  # names what can
    assert (run / "recipe.yaml").read_bytes() == before
    assert checkpoint_names(run) == ["latest", "step_00000002", "step_00000004"]
    # a default written out is no change
    assert train(recipe, "train.max_steps=6", "nets.g.z_dim=0", "train.compile=false", "--resume", "latest") == 0


def test_overrides_may_follow_an_option(paired_root, tmp_path, capsys):
    """`i2i train r.yaml --resume latest optim.g.lr=0.1`, as people type it: argparse alone refused the override."""
    recipe = write_recipe(tmp_path / "r.yaml", tiny_pix2pix(paired_root, tmp_path / "run"))
    assert main(["check", str(recipe), "--print", "optim.g.lr=0.1"]) == 0
    assert yaml.safe_load(capsys.readouterr().out.split("\n{")[0])["optim"]["g"]["lr"] == 0.1
    with pytest.raises(SystemExit):  # what is not an override is still refused
        main(["check", str(recipe), "--print", "stray"])


# ---------------------------------------------------------------- 5. a run folder that cannot be made
@pytest.mark.parametrize("under", [False, True])
def test_an_output_dir_that_is_a_file(under, paired_root, tmp_path, capsys):
    blocker = tmp_path / "taken"
    blocker.write_text("not a folder")
    out = blocker / "run" if under else blocker
    recipe = write_recipe(tmp_path / "r.yaml", tiny_pix2pix(paired_root, out))
    for command in ("check", "train"):
        code = main([command, str(recipe)])
        err = capsys.readouterr().err
        assert code == 2, (command, err)
        clean_error(err)
        assert "key 'train.output_dir'" in err and ("lies under" if under else "is a file") in err


# ---------------------------------------------------------------- 6. loader workers
def test_absurd_num_workers_is_refused_by_check(paired_root, tmp_path, capsys):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_pix2pix(paired_root, tmp_path / "run"))
    assert main(["check", str(recipe), "data.num_workers=100000"]) == 2
    err = capsys.readouterr().err
    clean_error(err)
    assert "key 'data.num_workers'" in err and "CPU core" in err


# ---------------------------------------------------------------- 8. the exported net's contract
class NoChannelsNet(nn.Module):
    """A plug-in generator that trains fine but does not say how many channels it takes."""

    def __init__(self, in_channels: int = 1, out_channels: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)

    def forward(self, x):
        return torch.tanh(self.conv(x))


def test_an_exported_generator_without_in_channels_is_refused(paired_root, tmp_path, capsys):
    r = tiny_pix2pix(paired_root, tmp_path / "run")
    r["nets"]["g"] = {"type": "tests.test_training_edges:NoChannelsNet", "in_channels": 1, "out_channels": 3}
    recipe = write_recipe(tmp_path / "r.yaml", r)
    for command in ("check", "train"):
        code = main([command, str(recipe)])
        err = capsys.readouterr().err
        assert code == 2, (command, err)
        clean_error(err)
        assert "key 'nets.g'" in err and "'in_channels'" in err and "i2i translate" in err
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- 12. check is the whole (cheap) check
def test_check_validates_the_data_layout_and_train_writes_nothing(paired_root, tmp_path, capsys):
    run = tmp_path / "run"
    recipe = write_recipe(tmp_path / "r.yaml", tiny_pix2pix(paired_root, run))
    assert main(["check", str(recipe)]) == 0
    (tmp_path / "empty").mkdir()
    for wrong in (["data.split=val"], [f"data.root={paired_root / 'train'}"], [f"data.root={tmp_path / 'empty'}"],
                  ["data.layout=aligned", f"data.root={tmp_path / 'empty'}"]):
        for command in ("check", "train"):
            code = main([command, str(recipe), *wrong])
            err = capsys.readouterr().err
            assert code == 2, (command, wrong, err)
            clean_error(err)
            assert "key 'data.root'" in err, err
            assert not (run / "recipe.yaml").exists()


def test_a_mistyped_demo_root_is_not_filled_with_demo_data(paired_root, tmp_path, capsys, monkeypatch):
    r = tiny_pix2pix(paired_root, tmp_path / "run")
    r["data"]["demo"] = "colorize"
    typo = tmp_path / "data" / "demo" / "colorise"
    recipe = write_recipe(tmp_path / "r.yaml", r)
    for command in ("check", "train"):
        code = main([command, str(recipe), f"data.root={typo}"])
        err = capsys.readouterr().err
        assert code == 2, (command, err)
        clean_error(err)
        assert "key 'data.root'" in err and "data/demo/colorize" in err and "python -m i2i.data.demo" in err
    assert not typo.exists() and not (tmp_path / "run").exists()
    # at its own place the demo passes check (it is built on first use by train; check builds nothing)
    own = tmp_path / "data" / "demo" / "colorize"
    assert main(["check", str(recipe), f"data.root={own}"]) == 0
    assert not own.exists()


# ---------------------------------------------------------------- what a run tells its user
def test_progress_lines_summary_and_sample_names(paired_root, tmp_path, capsys):
    run = tmp_path / "run"
    recipe = write_recipe(tmp_path / "r.yaml", tiny_pix2pix(paired_root, run))
    assert train(recipe) == 0
    out, err = capsys.readouterr()
    result = last_json(out)
    assert result["step"] == 4
    assert "step 2/4 (50%, ETA " in err and "step 4/4 (100%): " in err  # stderr is not a terminal here
    summary = err[err.index("i2i: trained tiny_pix2pix"):]
    assert "steps 0 -> 4 (4 steps)" in summary and f"export: {run / 'export'}" in summary
    assert f"i2i: try: i2i translate {run} --input <folder of images> --output {run}/translated" in summary
    # samples are named with the checkpoints' 8 digits
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step_00000002.png", "step_00000004.png"]


def test_bar_shows_loss_totals_and_speed():
    from i2i.engine.report import bar_figures
    figures = {"d/acc_fake": 0.5, "d/acc_real": 0.5, "d/adv": 0.75, "d/out_fake": 0.1, "g/adv": 1.0, "g/l1": 20.0,
               "grad/g": 3.0, "lr/g": 2e-4, "images_per_s": 12.345}
    assert bar_figures(figures, {"d/acc_fake", "d/acc_real", "d/out_fake"}) == {"d": "0.75", "g": "21",
                                                                              "img/s": "12.3"}


def test_sigint_ends_with_a_json_line(paired_root, tmp_path, monkeypatch, capsys):
    import i2i.engine.trainer as trainer

    class SignalAfterOneStep:
        received = signal.SIGINT

        def name(self):
            return "SIGINT"

        def restore(self):
            pass

    monkeypatch.setattr(trainer, "StopSignals", SignalAfterOneStep)
    run = tmp_path / "run"
    recipe = write_recipe(tmp_path / "r.yaml", tiny_pix2pix(paired_root, run, max_steps=10))
    assert train(recipe) == 130
    out, err = capsys.readouterr()
    result = last_json(out)
    assert result["interrupted"] == "SIGINT" and result["step"] == 1 and result["steps_run"] == 1
    assert result["checkpoint"] == str(run / "checkpoints" / "step_00000001") and "--resume latest" in err


def test_the_bf16_hint_is_given_once_per_run_folder(paired_root, tmp_path, monkeypatch, caplog):
    import i2i.precision as precision
    monkeypatch.setattr(precision, "cpu_slowdown", lambda dtype: 0.5)  # a CPU with fast bf16
    run = tmp_path / "run"
    recipe = write_recipe(tmp_path / "r.yaml", tiny_pix2pix(paired_root, run))
    with caplog.at_level(logging.INFO, logger="i2i"):
        assert train(recipe) == 0
        assert caplog.text.count("bf16 matmuls 2.0x faster") == 1
        caplog.clear()
        assert train(recipe, "train.max_steps=6", "--resume", "latest") == 0
        assert "bf16 matmuls" not in caplog.text
