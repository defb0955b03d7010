"""train.keep_best: checkpoints/best (never pruned by rotation) and export_best/ follow the best eval figure,
a resumed run keeps the best so far, and the recipe key is checked before anything runs."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from i2i.build import validate_recipe
from i2i.cli import main
from i2i.engine.checkpoint import export_checkpoint
from i2i.errors import RecipeError
from i2i.evaluation.paired_scoring import PairedScorer
from i2i.evaluation.scoring import write_scores
from i2i.recipe import load_recipe

from .conftest import tiny_pix2pix, write_recipe

METRIC = "eval/reconstruction_l1"
EVAL = {"every": 2, "split": "train", "max_images": 2, "samples": 2, "feature_weights": None}


def keep_best_recipe(root: Path, out: Path, *, mode: str = "min", **train) -> dict:
    recipe = tiny_pix2pix(root, out, **{"max_steps": 8, "checkpoint_every": 2, "keep_checkpoints": 1,
                                        "report": False, **train})
    recipe["train"]["keep_best"] = {"metric": METRIC, "mode": mode}
    recipe["eval"] = dict(EVAL)
    return recipe


def scripted(monkeypatch, values: dict[int, float]) -> None:
    """The scorer logs these values of the metric at these steps (through the real write_scores), so the test
    decides where the metric peaks; everything else (checkpoints, exports, resume) is the real trainer."""
    def score(self, model, emas, run_dir, step, accelerator):
        if step not in values:
            return {}  # the eval of the untrained nets at step 0, when the test does not script it
        logged = {METRIC: values[step]}
        write_scores(run_dir, step, logged, accelerator)
        return logged
    monkeypatch.setattr(PairedScorer, "score", score)


def last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def output(capsys) -> tuple[dict, str]:
    """The command's last JSON line and its stderr."""
    captured = capsys.readouterr()
    return json.loads(captured.out.strip().splitlines()[-1]), captured.err


def tensors(folder: Path) -> dict[str, torch.Tensor]:
    return {f"{f.stem}.{k}": v for f in sorted(folder.glob("*.safetensors")) for k, v in load_file(str(f)).items()}


def meta(folder: Path) -> dict:
    return json.loads((folder / "meta.json").read_text())


def test_metric_peaking_early_keeps_that_step(paired_root, tmp_path, capsys, monkeypatch):
    # step 0 is the eval of the untrained nets, before the first step: logged, never a best checkpoint
    scripted(monkeypatch, {0: 0.10, 2: 0.30, 4: 0.50, 6: 0.40, 8: 0.60})
    run_dir = tmp_path / "run"
    recipe = write_recipe(tmp_path / "r.yaml", keep_best_recipe(paired_root, run_dir))
    assert main(["train", str(recipe)]) == 0
    result, err = output(capsys)
    rows = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert [(r["step"], r[METRIC]) for r in rows if METRIC in r][:2] == [(0, 0.10), (2, 0.30)]
    assert result["best"] == {"metric": METRIC, "mode": "min", "value": 0.30, "step": 2}
    assert "i2i: best: eval/reconstruction_l1 = 0.3 at step 2" in err and "export_best" in err  # the summary
    # rotation kept one step checkpoint; best is not one of them and survives
    checkpoints = run_dir / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir() if not p.name.startswith(".")) == \
        ["best", "latest", "step_00000008"]
    assert json.loads((checkpoints / "best" / "trainer_state.json").read_text())["step"] == 2
    assert meta(run_dir / "export_best")["step"] == 2 and meta(run_dir / "export")["step"] == 8
    assert meta(run_dir / "export_best")["best"] == result["best"]
    best, last = tensors(run_dir / "export_best"), tensors(run_dir / "export")
    assert best.keys() == last.keys()
    assert any(not torch.equal(best[k], last[k]) for k in best), "export_best/ should hold step 2's weights"
    # export_best/ is the best checkpoint's weights: the same as an export made from checkpoints/best
    again = tensors(export_checkpoint(checkpoints / "best", tmp_path / "from_best"))
    assert all(torch.equal(best[k], again[k]) for k in best)


@pytest.mark.slow
def test_max_mode_and_a_later_best_replace_the_earlier(paired_root, tmp_path, capsys, monkeypatch):
    scripted(monkeypatch, {2: 0.1, 4: 0.3, 6: 0.2, 8: 0.25})
    run_dir = tmp_path / "run"
    recipe = write_recipe(tmp_path / "r.yaml", keep_best_recipe(paired_root, run_dir, mode="max"))
    assert main(["train", str(recipe)]) == 0
    assert last_json(capsys)["best"]["step"] == 4
    assert meta(run_dir / "export_best")["step"] == 4
    assert not (run_dir / "checkpoints" / ".old_best").exists() and not (run_dir / "checkpoints" / ".tmp_best").exists()


@pytest.mark.parametrize("later, best_step", [(0.40, 2), pytest.param(0.10, 6, marks=pytest.mark.slow)])
def test_resume_keeps_the_best_so_far(paired_root, tmp_path, capsys, monkeypatch, later, best_step):
    scripted(monkeypatch, {2: 0.30, 4: 0.50, 6: later, 8: 0.60})
    run_dir = tmp_path / "run"
    recipe = write_recipe(tmp_path / "r.yaml", keep_best_recipe(paired_root, run_dir, max_steps=4))
    assert main(["train", str(recipe)]) == 0
    assert last_json(capsys)["best"]["step"] == 2
    assert main(["train", str(recipe), "train.max_steps=8", "--resume", "latest"]) == 0
    result = last_json(capsys)
    # 0.40 at step 6 is worse than step 2's 0.30, which the resumed run must remember; 0.10 is better
    assert result["best"]["step"] == best_step
    assert meta(run_dir / "export_best")["step"] == best_step
    assert json.loads((run_dir / "checkpoints" / "best" / "trainer_state.json").read_text())["step"] == best_step


@pytest.mark.slow
def test_changed_metric_on_resume_starts_a_new_best(paired_root, tmp_path, capsys, monkeypatch):
    scripted(monkeypatch, {2: 0.30, 4: 0.50, 6: 0.40, 8: 0.60})
    run_dir = tmp_path / "run"
    recipe = write_recipe(tmp_path / "r.yaml", keep_best_recipe(paired_root, run_dir, max_steps=4))
    assert main(["train", str(recipe)]) == 0
    capsys.readouterr()
    assert main(["train", str(recipe), "train.max_steps=8", "train.keep_best.mode=max", "--resume", "latest"]) == 0
    assert last_json(capsys)["best"] == {"metric": METRIC, "mode": "max", "value": 0.60, "step": 8}


def test_a_metric_the_eval_does_not_log_stops_with_a_checkpoint(paired_root, tmp_path, capsys, monkeypatch):
    scripted(monkeypatch, {2: 0.30, 4: 0.50})
    run_dir = tmp_path / "run"
    data = keep_best_recipe(paired_root, run_dir, checkpoint_every=4)  # no checkpoint of its own at step 2
    data["train"]["keep_best"]["metric"] = "eval/diversity_typo"
    recipe = write_recipe(tmp_path / "r.yaml", data)
    assert main(["train", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert "train.keep_best.metric" in err and "eval/diversity_typo" in err and METRIC in err
    assert (run_dir / "checkpoints" / "latest").read_text() == "step_00000002"  # nothing trained is lost


@pytest.mark.slow
def test_real_scorer_best_is_the_logged_best(paired_root, tmp_path, capsys):
    """No scripting: the real paired scorer's figure; export_best/ is at the step whose logged value is lowest."""
    run_dir = tmp_path / "run"
    recipe = write_recipe(tmp_path / "r.yaml", keep_best_recipe(paired_root, run_dir))
    assert main(["train", str(recipe)]) == 0
    best = last_json(capsys)["best"]
    logged = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    evals = [(e["step"], e[METRIC]) for e in logged if METRIC in e]
    assert [s for s, _ in evals] == [0, 2, 4, 6, 8]  # step 0: the untrained nets, never a best checkpoint
    evals = evals[1:]
    lowest = min(v for _, v in evals)
    assert best["value"] == lowest and best["step"] == next(s for s, v in evals if v == lowest)
    assert meta(run_dir / "export_best")["step"] == best["step"]


# ---------------------------------------------------------------- the recipe key
def check(tmp_path: Path, paired_root: Path, keep_best, *, with_eval: bool = True) -> None:
    data = keep_best_recipe(paired_root, tmp_path / "run")
    data["train"]["keep_best"] = keep_best
    if not with_eval:
        del data["eval"]
    validate_recipe(load_recipe(str(write_recipe(tmp_path / "r.yaml", data))))


@pytest.mark.parametrize("keep_best, key, words", [
    ({"metric": METRIC, "mode": "lowest"}, "train.keep_best.mode", "valid: max, min"),
    ({"metric": METRIC}, "train.keep_best.mode", "valid: max, min"),
    ({"metric": "reconstruction_l1", "mode": "min"}, "train.keep_best.metric", "eval/<name>"),
    ({"metric": "g/l1", "mode": "min"}, "train.keep_best.metric", "eval/<name>"),
    ({"metric": METRIC, "mode": "min", "patience": 3}, "train.keep_best.patience", "valid: metric, mode"),
    ("eval/reconstruction_l1", "train.keep_best", "expected dict"),
])
def test_bad_keep_best_is_refused_naming_the_key(tmp_path, paired_root, keep_best, key, words):
    with pytest.raises(RecipeError) as info:
        check(tmp_path, paired_root, keep_best)
    assert info.value.key == key and words in str(info.value) and "r.yaml" in str(info.value)


def test_keep_best_without_an_eval_section_is_refused(tmp_path, paired_root):
    with pytest.raises(RecipeError, match="no eval section") as info:
        check(tmp_path, paired_root, {"metric": METRIC, "mode": "min"}, with_eval=False)
    assert info.value.key == "train.keep_best.metric"


def test_a_scorer_that_names_its_figures_checks_the_metric(tmp_path, paired_root, monkeypatch):
    monkeypatch.setattr(PairedScorer, "metric_names", staticmethod(lambda cfg, recipe: ["diversity",
                                                                                        "reconstruction_l1"]),
                        raising=False)
    check(tmp_path, paired_root, {"metric": METRIC, "mode": "min"})
    with pytest.raises(RecipeError) as info:
        check(tmp_path, paired_root, {"metric": "eval/psnr", "mode": "max"})
    assert info.value.key == "train.keep_best.metric" and "eval/diversity" in str(info.value)


def test_keep_best_may_change_on_resume():
    from i2i.engine.checkpoint import resumable
    assert resumable("train.keep_best") and resumable("train.keep_best.metric") and resumable("train.trackers")


@pytest.mark.slow
def test_two_processes_agree_on_the_best(paired_root, tmp_path):
    """accelerate launch with 2 CPU processes over gloo: rank 0 scores, both write checkpoints/best, no hang."""
    import os
    import subprocess
    import sys

    from .conftest import ROOT
    recipe = write_recipe(tmp_path / "r.yaml", keep_best_recipe(paired_root, tmp_path / "run", mode="max"))
    proc = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                           str(ROOT / "train.py"), str(recipe)], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads([line for line in proc.stdout.splitlines() if line.startswith("{")][-1])
    assert result["processes"] == 2 and result["rank_param_max_diff"] == 0.0
    logged = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    evals = [(e["step"], e[METRIC]) for e in logged if METRIC in e and e["step"] > 0]  # not the untrained nets
    highest = max(v for _, v in evals)
    assert result["best"]["step"] == next(s for s, v in evals if v == highest)
    assert meta(tmp_path / "run" / "export_best")["step"] == result["best"]["step"]


def test_the_eval_before_the_first_step_changes_nothing_trained(paired_root, tmp_path, monkeypatch, capsys):
    """A fresh run evaluates its untrained nets once (step 0, the curves' baseline) with the random states put back
    afterwards: the trained weights are those of the same run without an eval section."""
    import random

    import numpy as np
    real, steps = PairedScorer.score, []

    def greedy(self, model, emas, run_dir, step, accelerator):  # the real scorer, plus every random source drawn
        steps.append(step)
        torch.rand(7), np.random.rand(7), random.random()
        return real(self, model, emas, run_dir, step, accelerator)
    monkeypatch.setattr(PairedScorer, "score", greedy)
    runs = {}
    for name, evaluated in (("with_eval", True), ("without", False)):
        recipe = tiny_pix2pix(paired_root, tmp_path / name, max_steps=4)
        if evaluated:
            recipe["eval"] = {**EVAL, "every": 100}  # step 0 and the last step only
        assert main(["train", str(write_recipe(tmp_path / f"{name}.yaml", recipe))]) == 0, capsys.readouterr().err
        runs[name] = tensors(tmp_path / name / "export")
    assert steps == [0, 4]
    rows = [json.loads(line) for line in (tmp_path / "with_eval" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "eval/reconstruction_l1" in r] == [0, 4]
    assert runs["with_eval"].keys() == runs["without"].keys()
    assert all(torch.equal(runs["with_eval"][k], runs["without"][k]) for k in runs["without"])
