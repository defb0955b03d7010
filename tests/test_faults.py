"""Faults during training: SIGINT/SIGTERM, kill -9 while a checkpoint is written, disk full. No data is lost and
resuming gives the same weights as an uninterrupted run."""
from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from i2i.cli import main
from i2i.models.pix2pix import Pix2Pix

from .conftest import ROOT, tiny_pix2pix, write_recipe

STEPS = 16


class SlowState:
    """A checkpointed helper whose save takes a while: a window to kill the process mid-checkpoint."""

    def state_dict(self):
        if os.environ.get("I2I_TEST_SLOW_SAVE"):
            time.sleep(float(os.environ["I2I_TEST_SLOW_SAVE"]))
        return {"x": 1}

    def load_state_dict(self, state):
        pass


class SlowSavePix2Pix(Pix2Pix):
    def state_objects(self):
        return {"slow": SlowState()}


def recipe(root: Path, out: Path, **train) -> dict:
    r = tiny_pix2pix(root, out, **{"max_steps": STEPS, "log_every": 1, "sample_every": 10**6,
                                   "checkpoint_every": 10**6, "keep_checkpoints": 3, **train})
    r["schedule"] = {"type": "constant"}
    r["model"] = {"type": "tests.test_faults:SlowSavePix2Pix"}
    return r


def export_weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "export" / "g.safetensors"))


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def spawn(path: Path, *args: str, env: dict | None = None, new_group: bool = False) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "i2i.cli", "train", str(path), *args], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=new_group)


def logged_steps(run: Path) -> int:
    log = run / "log.jsonl"
    if not log.is_file():
        return 0
    steps = [json.loads(line).get("step", 0) for line in log.read_text().splitlines() if line.strip()]
    return max(steps, default=0)


def wait_for(cond, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    end = time.time() + timeout
    while not cond():
        if proc.poll() is not None:
            raise AssertionError(f"process ended early: {proc.communicate()}")
        if time.time() > end:
            proc.kill()
            raise AssertionError("timed out")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, request):
    root = request.getfixturevalue("paired_root_module")
    tmp = tmp_path_factory.mktemp("plain")
    path = write_recipe(tmp / "r.yaml", recipe(root, tmp / "run"))
    proc = spawn(path)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    return export_weights(tmp / "run")


@pytest.fixture(scope="module")
def paired_root_module(tmp_path_factory):
    from PIL import Image

    from .conftest import photo_crops
    root = tmp_path_factory.mktemp("paired")
    for i, rgb in enumerate(photo_crops(6, 40)):
        for side, img in (("A", Image.fromarray(rgb).convert("L")), ("B", Image.fromarray(rgb))):
            (root / "train" / side).mkdir(parents=True, exist_ok=True)
            img.save(root / "train" / side / f"{i:03d}.png")
    return root


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_writes_a_checkpoint_and_resume_matches(sig, paired_root_module, uninterrupted, tmp_path):
    run = tmp_path / "run"
    path = write_recipe(tmp_path / "r.yaml", recipe(paired_root_module, run))
    proc = spawn(path)
    wait_for(lambda: logged_steps(run) >= 3, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 128 + sig, err
    latest = run / "checkpoints" / (run / "checkpoints" / "latest").read_text()
    stopped = json.loads((latest / "trainer_state.json").read_text())["step"]
    assert 3 <= stopped < STEPS and f"{signal.Signals(sig).name} at step {stopped}" in err and "--resume latest" in err
    proc = spawn(path, "--resume", "latest")
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert same(export_weights(run), uninterrupted)


def test_sigterm_to_the_process_group_with_loader_workers(paired_root_module, uninterrupted, tmp_path):
    """A scheduler cancelling a job (or `timeout`) signals every process, data loader workers included: the run
    still finishes its step, checkpoints and exits 143, and the resumed run matches an uninterrupted one."""
    run = tmp_path / "run"
    r = recipe(paired_root_module, run)
    r["data"]["num_workers"] = 1
    path = write_recipe(tmp_path / "r.yaml", r)
    proc = spawn(path, new_group=True)
    wait_for(lambda: logged_steps(run) >= 3, proc)
    os.killpg(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "DataLoader worker" not in err and "--resume latest" in err
    proc = spawn(path, "--resume", "latest")
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert same(export_weights(run), uninterrupted)


def test_kill_9_while_checkpointing_keeps_latest_on_a_good_checkpoint(paired_root_module, uninterrupted, tmp_path):
    run = tmp_path / "run"
    path = write_recipe(tmp_path / "r.yaml", recipe(paired_root_module, run, checkpoint_every=4))
    proc = spawn(path, env={"I2I_TEST_SLOW_SAVE": "2"})
    tmp_ckpt = run / "checkpoints" / ".tmp_step_00000008"
    wait_for(tmp_ckpt.exists, proc, timeout=300)
    proc.kill()  # SIGKILL in the middle of writing step 8
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert (run / "checkpoints" / "latest").read_text() == "step_00000004"
    assert not (run / "checkpoints" / "step_00000008").exists()
    proc = spawn(path, "--resume", "latest")
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert same(export_weights(run), uninterrupted)
    assert not tmp_ckpt.exists()  # the next save of step 8 replaced the broken temporary folder


def test_disk_full_while_checkpointing_stops_cleanly(paired_root_module, tmp_path, monkeypatch, capsys):
    from accelerate import Accelerator
    real_save = Accelerator.save_state
    calls = []

    def save_state(self, output_dir=None, **kwargs):
        calls.append(output_dir)
        if len(calls) == 2:  # the second checkpoint: half written, then the disk is full
            Path(output_dir).mkdir(parents=True, exist_ok=True)
            (Path(output_dir) / "model.safetensors").write_bytes(b"\0" * 100)
            raise OSError(errno.ENOSPC, "No space left on device", str(output_dir))
        return real_save(self, output_dir, **kwargs)

    monkeypatch.setattr(Accelerator, "save_state", save_state)
    run = tmp_path / "run"
    r = recipe(paired_root_module, run, max_steps=8, checkpoint_every=4)
    r["model"] = {"type": "pix2pix"}
    path = write_recipe(tmp_path / "r.yaml", r)
    assert main(["train", str(path)]) == 2
    err = capsys.readouterr().err
    assert "could not write the checkpoint of step 8 (No space left on device" in err
    assert "the last good checkpoint is" in err and "step_00000004" in err
    assert (run / "checkpoints" / "latest").read_text() == "step_00000004"
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["latest", "step_00000004"]
    monkeypatch.setattr(Accelerator, "save_state", real_save)
    assert main(["train", str(path), "--resume", "latest"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["step"] == 8
