"""End to end, as a user runs it: train -> checkpoint -> resume -> export -> translate, on CPU."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from i2i.cli import main
from i2i.data.io import read_image

from .conftest import ROOT, tiny_cyclegan, tiny_pix2pix, write_recipe


def run(*argv: str) -> int:
    return main(list(argv))


def last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def weights(folder: Path) -> dict[str, torch.Tensor]:
    out = {}
    for f in sorted(folder.glob("*.safetensors")):
        out.update({f"{f.stem}.{k}": v for k, v in load_file(str(f)).items()})
    return out


@pytest.mark.parametrize("make, root_fixture", [(tiny_pix2pix, "paired_root"), (tiny_cyclegan, "unpaired_root")])
def test_train_resume_export_translate(make, root_fixture, request, tmp_path, capsys):
    root = request.getfixturevalue(root_fixture)
    run_dir = tmp_path / "run"
    recipe = write_recipe(tmp_path / "r.yaml", make(root, run_dir))
    assert run("train", str(recipe)) == 0
    result = last_json(capsys)
    assert result["step"] == 4 and all(np.isfinite(v) for k, v in result.items() if "/" in k)
    assert (run_dir / "recipe.yaml").is_file() and (run_dir / "export" / "meta.json").is_file()
    assert sorted(p.name for p in (run_dir / "samples").iterdir()) == ["step_00000002.png", "step_00000004.png"]
    logged = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in logged] == [2, 4] and "images_per_s" in logged[0]
    # a second plain run must not clobber the first
    assert run("train", str(recipe)) == 2
    assert "--resume latest" in capsys.readouterr().err
    # resume continues from step 4; keep_checkpoints=2 prunes the oldest
    assert run("train", str(recipe), "train.max_steps=6", "--resume", "latest") == 0
    assert last_json(capsys)["step"] == 6
    assert sorted(p.name for p in (run_dir / "checkpoints").glob("step_*")) == ["step_00000004", "step_00000006"]
    assert (run_dir / "checkpoints" / "latest").read_text() == "step_00000006"
    # an export made later from the final checkpoint equals the export written at the end of training
    assert run("export", str(run_dir), "--output", str(tmp_path / "exp6")) == 0
    a, b = weights(run_dir / "export"), weights(tmp_path / "exp6")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    meta = json.loads((run_dir / "export" / "meta.json").read_text())
    assert meta["step"] == 6 and meta["model"] == make(root, run_dir)["model"]["type"]
    # translate a tree of odd-sized, grayscale and 16-bit images from the export alone
    src = tmp_path / "in"
    (src / "nested").mkdir(parents=True)
    rgb = (np.random.default_rng(0).random((37, 45, 3)) * 255).astype(np.uint8)
    from i2i.data.io import write_image
    write_image(src / "a.png", rgb)
    write_image(src / "nested" / "gray16.png", (np.random.default_rng(1).random((20, 52, 1)) * 65535).astype(np.uint16))
    write_image(src / "nested" / "photo.jpg", rgb)
    out = tmp_path / "out"
    assert run("translate", str(run_dir), "--input", str(src), "--output", str(out), "--device", "cpu") == 0
    figures = last_json(capsys)
    assert figures["images"] == 3 and figures["failed"] == 0
    for rel, shape, dtype in (("a.png", (37, 45), np.uint8), ("nested/gray16.png", (20, 52), np.uint16),
                              ("nested/photo.jpg", (37, 45), np.uint8)):
        got = read_image(out / rel)
        assert got.shape[:2] == shape and got.dtype == dtype, rel
    assert read_image(out / "nested" / "gray16.png").shape[2] in (1, 3)
    # never into the input tree
    assert run("translate", str(run_dir), "--input", str(src), "--output", str(src / "x")) == 2


def _final_state(run_dir: Path) -> dict[str, torch.Tensor]:
    latest = run_dir / "checkpoints" / (run_dir / "checkpoints" / "latest").read_text()
    return weights(latest) | {f"export.{k}": v for k, v in weights(run_dir / "export").items()}


@pytest.mark.parametrize("make, root_fixture", [(tiny_pix2pix, "paired_root"), (tiny_cyclegan, "unpaired_root")])
def test_resume_equals_uninterrupted(make, root_fixture, request, tmp_path, capsys):
    """N steps + resume + N steps gives bit-identical weights to 2N straight steps (data, dropout, pools, EMA)."""
    root = request.getfixturevalue(root_fixture)
    straight = write_recipe(tmp_path / "a.yaml", make(root, tmp_path / "a", max_steps=6, checkpoint_every=3))
    split = write_recipe(tmp_path / "b.yaml", make(root, tmp_path / "b", max_steps=3, checkpoint_every=3))
    assert run("train", str(straight)) == 0
    assert run("train", str(split)) == 0
    assert run("train", str(split), "train.max_steps=6", "--resume", "latest") == 0
    a, b = _final_state(tmp_path / "a"), _final_state(tmp_path / "b")
    assert a.keys() == b.keys() and len(a) > 10
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, different[:5]


def test_two_identical_runs_give_identical_losses(paired_root, tmp_path, capsys):
    for name in ("x", "y"):
        recipe = write_recipe(tmp_path / f"{name}.yaml", tiny_pix2pix(paired_root, tmp_path / name))
        assert run("train", str(recipe)) == 0
    x, y = ((tmp_path / n / "log.jsonl").read_text() for n in ("x", "y"))
    def strip(text):
        return [{k: v for k, v in json.loads(line).items() if k != "images_per_s"} for line in text.splitlines()]
    assert strip(x) == strip(y)


def test_bf16_on_a_cpu_without_it_is_refused(paired_root, tmp_path, capsys, monkeypatch):
    import i2i.precision as precision
    monkeypatch.setattr(precision, "cpu_slowdown", lambda dtype: 400.0)  # as measured on CPUs that emulate bf16
    recipe = write_recipe(tmp_path / "r.yaml", tiny_pix2pix(paired_root, tmp_path / "run", mixed_precision="bf16"))
    assert run("train", str(recipe)) == 2
    err = capsys.readouterr().err
    assert "key 'train.mixed_precision'" in err and "400x slower" in err
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_cpu_slowdown_probe_measures():
    from i2i.precision import cpu_slowdown
    assert 0 < cpu_slowdown(torch.float32) < 5


@pytest.mark.slow
def test_two_processes_keep_identical_parameters(paired_root, tmp_path):
    """accelerate launch --multi_gpu --num_processes 2 on a CPU machine: two processes over gloo."""
    recipe = write_recipe(tmp_path / "r.yaml", tiny_pix2pix(paired_root, tmp_path / "run", max_steps=4))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                           str(ROOT / "train.py"), str(recipe)], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stdout.strip().splitlines() if line.startswith("{")]
    assert len(lines) == 1  # one summary, from rank 0
    result = json.loads(lines[0])
    assert result["processes"] == 2 and result["rank_param_max_diff"] == 0.0
    assert (tmp_path / "run" / "export" / "g.safetensors").is_file()
