"""Exact resume, for every registered model and for two processes: 2N steps straight and N steps, a stop and N more
with ``--resume latest`` leave bit-identical checkpoints (docs/architecture.md, "Determinism and exact resume").

Every registered model trains from its demo recipe (recipes/demo/*.yaml), made tiny by overrides that follow the
registries: each net takes the capacity arguments of its class's ``smoke_args``, the data set points at a tiny
fixture of its type, the schedule changes its factor inside the run, and the run is 2N steps. A registered model
without a demo recipe, or whose demo reads a data set type or starts from an export (init_from) this file has no
tiny stand-in for, fails here by name. Checkpoint files are compared after loading: tensors bit for bit, numbers
and the recipe (but its output_dir) by value; a file of an unknown kind fails the comparison.
"""
from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from safetensors.torch import load_file

from i2i.build import import_builtins
from i2i.cli import main
from i2i.recipe import load_recipe
from i2i.registry import MODELS, NETS

from .conftest import ROOT, photo_crops

import_builtins()
N = 3  # steps 0..N-1, a stop, N..2N-1: WGAN's G (n_critic 5) updates at steps 0 and 5, across the stop
DEMOS = ROOT / "recipes" / "demo"
PREFERRED = {"gan": "wgan.yaml"}  # several demos share `gan`: the one with n_critic and weight clipping
# capacity arguments taken from a net's smoke_args; structure (z_dim, classes, codes, size, scale) stays the demo's
CAPACITY = ("base_channels", "features", "growth", "blocks", "hidden", "depth", "layers", "stages", "head_channels")
# data set type -> (fixture holding tiny data of that type, keys that make the batches tiny)
DATA = {"labeled": ("labeled_root", {"batch_size": 4}),
        "paired_folder": ("paired_root", {"size": 16, "load_size": 18, "batch_size": 2}),
        "unpaired_folder": ("unpaired_root", {"size": 16, "load_size": 18, "batch_size": 1}),
        "superres_folder": ("sr_root", {"gt_size": 16, "batch_size": 2}),
        "single_folder": ("sr_root", {"size": 16, "load_size": 18, "batch_size": 2}),
        "domains": ("domains_root", {"size": 16, "load_size": 18, "batch_size": 2})}
# factors that change inside the 2N steps, so that a scheduler restored wrong changes the weights too
SCHEDULES = {"linear_decay": {"constant_steps": N - 1, "decay_steps": 2 * N},
             "multistep": {"milestones": [N - 1, N + 1]},
             "cosine_restarts": {"periods": [2 * N + 1], "restart_weights": [1.0]}}
# a random-weight VGG19 cut after its second block: the perceptual loss's path without the ImageNet file
LOSSES = {"perceptual": {"weights": None, "layer_weights": {"conv2_2": 1.0}}}
INIT_FROM = {"esrgan": "sr_pixel"}  # model.init_from: the model whose tiny demo run writes the export it starts from
MODEL_ARGS = {"pool_size": 2}  # where a demo's model has them: CycleGAN's image pools fill and draw within the run


@pytest.fixture
def labeled_root(tmp_path: Path) -> Path:
    """An MNIST-style .npz of 20 of scikit-learn's 8x8 digits, 2 per class (the data set resizes them to 32)."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    pick = np.concatenate([np.flatnonzero(digits.target == k)[:2] for k in range(10)])
    path = tmp_path / "digits.npz"
    np.savez(path, x=(digits.images[pick] * 16).clip(0, 255).astype(np.uint8), y=digits.target[pick])
    return path


@pytest.fixture
def sr_root(tmp_path: Path) -> Path:
    root = tmp_path / "hr"
    root.mkdir()
    for i, crop in enumerate(photo_crops(8, 32)):
        Image.fromarray(crop).save(root / f"{i:03d}.png")
    return root


@pytest.fixture
def domains_root(tmp_path: Path) -> Path:
    """Domain folders train/<domain>/ of 3 photo crops each, as many as the stargan demo's domains."""
    root = tmp_path / "domains"
    for k, domain in enumerate(("ihc", "photo", "retina", "space")):
        (root / "train" / domain).mkdir(parents=True)
        for i, crop in enumerate(photo_crops(3, 32, seed=k)):
            Image.fromarray(crop).save(root / "train" / domain / f"{i:03d}.png")
    return root


@functools.cache
def demo_recipes() -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    for path in sorted(DEMOS.glob("*.yaml")):
        found.setdefault(load_recipe(path)["model"]["type"], []).append(path)
    return found


def demo_for(model: str) -> Path:
    paths = demo_recipes().get(model)
    if not paths:
        pytest.fail(f"model '{model}' is registered but no recipes/demo/*.yaml trains it: add a demo recipe for it "
                    f"(this test trains every registered model from its demo)", pytrace=False)
    return next((p for p in paths if p.name == PREFERRED.get(model)), paths[0])


def tiny_overrides(model: str, request: pytest.FixtureRequest, tmp_path: Path) -> list[str]:
    """The demo of ``model`` made tiny, as KEY=VALUE overrides (values in JSON, which YAML reads)."""
    recipe = load_recipe(demo_for(model))
    over: dict[str, Any] = {}
    for name, cfg in recipe["nets"].items():
        smoke = getattr(NETS.get(cfg["type"]), "smoke_args", {})
        over |= {f"nets.{name}.{k}": smoke[k] for k in CAPACITY if k in smoke}
    data_type = recipe["data"]["type"]
    if data_type not in DATA:
        pytest.fail(f"demo of '{model}' reads data set type '{data_type}': give it a tiny fixture in DATA "
                    f"({__file__})", pytrace=False)
    fixture, keys = DATA[data_type]
    over |= {"data.root": str(request.getfixturevalue(fixture)), "data.num_workers": 0,
             **{f"data.{k}": v for k, v in keys.items()}}
    # a net that makes images of one fixed size (CoGAN's generator trunk) follows a tiny data set's size
    over |= {f"nets.{name}.size": keys["size"] for name, cfg in recipe["nets"].items()
             if "size" in keys and cfg.get("size") == recipe["data"].get("size") and "size" in cfg}
    over |= {f"schedule.{k}": v for k, v in SCHEDULES.get((recipe.get("schedule") or {}).get("type"), {}).items()}
    for name, cfg in recipe["losses"].items():
        over |= {f"losses.{name}.{k}": v for k, v in LOSSES.get(cfg["type"], {}).items()}
    over |= {f"model.{k}": v for k, v in MODEL_ARGS.items() if k in recipe["model"]}
    if recipe["model"].get("init_from"):
        if model not in INIT_FROM:
            pytest.fail(f"demo of '{model}' starts from an export (model.init_from): name the model that writes "
                        f"it in INIT_FROM ({__file__})", pytrace=False)
        stage1 = tmp_path / f"init_from_{INIT_FROM[model]}"
        train(INIT_FROM[model], tiny_overrides(INIT_FROM[model], request, tmp_path), stage1, 1)
        over["model.init_from"] = {net: str(stage1 / "export") for net in recipe["model"]["init_from"]}
    # the stop at N is neither a log step of the straight run nor off the monitor's grid: whatever the log and the
    # diversity check do at the last step of the first half must not move the training. One intra-op thread: tiny
    # nets gain nothing from two, and two spin against any other busy process (measured 10x slower)
    over |= {"eval": None, "train.log_every": 2, "train.sample_every": 2 * N, "train.sample_count": 2,
             "train.checkpoint_every": N, "train.keep_checkpoints": 2, "train.tensorboard": False,
             "train.report": False, "train.cpu_threads": 1, "monitor.every": N}
    return [f"{k}={json.dumps(v)}" for k, v in over.items()]


def train_argv(model: str, overrides: list[str], out: Path, steps: int, resume: bool = False) -> list[str]:
    return ["train", str(demo_for(model)), *overrides, f"train.output_dir={out}", f"train.max_steps={steps}",
            *(["--resume", "latest"] if resume else [])]


def train(model: str, overrides: list[str], out: Path, steps: int, resume: bool = False) -> None:
    assert main(train_argv(model, overrides, out, steps, resume)) == 0


# ------------------------------------------------------------------ bit-for-bit comparison
def checkpoint_files(folder: Path) -> dict[str, Any]:
    """Every file of a checkpoint, loaded (our own files: torch.load may unpickle here)."""
    out: dict[str, Any] = {}
    for f in sorted(folder.iterdir()):
        if f.suffix == ".safetensors":
            out[f.name] = load_file(str(f))
        elif f.suffix in (".bin", ".pkl", ".pt"):
            out[f.name] = torch.load(f, map_location="cpu", weights_only=False)
        elif f.name == "recipe.yaml":
            recipe = yaml.safe_load(f.read_text())
            recipe["train"].pop("output_dir")  # the one key two runs in two folders must differ in
            out[f.name] = recipe
        elif f.suffix == ".json":
            out[f.name] = json.loads(f.read_text())
        else:
            raise AssertionError(f"{f}: a checkpoint file this test does not know how to compare")
    return out


def _bits(t: torch.Tensor) -> torch.Tensor:
    t = t.detach().cpu().contiguous().flatten()
    return t.view(torch.uint8) if t.dtype.is_floating_point else t


def differences(a: Any, b: Any, where: str = "", count: list | None = None) -> list[str]:
    """Paths at which two nested states differ: tensors bit for bit (dtype and shape too), arrays byte for byte."""
    count = count if count is not None else [0]
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        count[0] += 1
        same = (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dtype == b.dtype
                and a.shape == b.shape and torch.equal(_bits(a), _bits(b)))
        return [] if same else [where]
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        same = (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype
                and a.shape == b.shape and a.tobytes() == b.tobytes())
        return [] if same else [where]
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{where} keys {sorted(map(str, a.keys() ^ b.keys()))}"]
        return [d for k in a for d in differences(a[k], b[k], f"{where}/{k}", count)]
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and type(a) is type(b):
        if len(a) != len(b):
            return [f"{where} length {len(a)} != {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{where}[{i}]", count)]
    return [] if type(a) is type(b) and a == b else [f"{where}: {a!r} != {b!r}"]


def assert_identical(a: Any, b: Any, what: str, allow: tuple[str, ...] = ()) -> int:
    """Asserts that no tensor, array or number differs (but those whose path ends in ``allow``); returns how many
    tensors were compared."""
    count = [0]
    diff = [d for d in differences(a, b, "", count) if not (allow and d.endswith(allow))]
    assert not diff, f"{what}: {len(diff)} entries differ, e.g. {diff[:6]}"
    assert count[0] > 10, f"{what}: only {count[0]} tensors compared"
    return count[0]


def step_dir(run: Path, step: int) -> Path:
    return run / "checkpoints" / f"step_{step:08d}"


def assert_resume_exact(straight: Path, split: Path, recipe: dict) -> int:
    a, b = checkpoint_files(step_dir(straight, 2 * N)), checkpoint_files(step_dir(split, 2 * N))
    names = set(a)
    assert {"model.safetensors", "optimizer.bin", "random_states_0.pkl", "i2i_state.pt"} <= names, sorted(names)
    groups = [k.removeprefix("scheduler_") for k in a["i2i_state.pt"] if k.startswith("scheduler_")]
    assert sorted(groups) == sorted(recipe["optim"]), groups
    if recipe.get("ema"):
        assert any(k.startswith("ema_") for k in a["i2i_state.pt"]), sorted(a["i2i_state.pt"])
    # not vacuous: the second half moved the weights
    half = checkpoint_files(step_dir(straight, N))
    nets = [k for k in a if k.startswith("model")]
    assert differences({k: half[k] for k in nets}, {k: a[k] for k in nets}), "no weight changed after step N"
    return assert_identical(a, b, f"checkpoint of step {2 * N}, {2 * N} straight vs {N} + {N} resumed")


# ------------------------------------------------------------------ one process, every model
def test_every_registered_model_has_a_demo_and_the_set_covers_the_mechanisms():
    names = MODELS.names()
    missing = [m for m in names if m not in demo_recipes()]
    assert not missing, f"registered models without a recipes/demo/*.yaml: {missing}"
    chosen = [load_recipe(demo_for(m)) for m in names]
    assert any(r["train"].get("n_critic", 1) > 1 for r in chosen), "no chosen demo has n_critic > 1"
    assert any(r["losses"]["adv"].get("weight_clip") for r in chosen if "adv" in r["losses"]), "no weight clipping"
    assert any(r.get("ema") for r in chosen), "no chosen demo has an EMA"


@pytest.mark.parametrize("model", MODELS.names())  # in the default run: every model, about 40 s on 2 cores
def test_resume_is_bit_exact(model, request, tmp_path):
    over = tiny_overrides(model, request, tmp_path)
    train(model, over, tmp_path / "straight", 2 * N)
    train(model, over, tmp_path / "split", N)
    train(model, over, tmp_path / "split", 2 * N, resume=True)
    recipe = load_recipe(demo_for(model), over)
    assert_resume_exact(tmp_path / "straight", tmp_path / "split", recipe)


# ------------------------------------------------------------------ two processes over gloo
# Runs i2i.cli.main for each job inside one `accelerate launch` and saves each rank's own state after each run
# (Accelerate's checkpoint holds the weights and optimizers of the main process only, and every rank's RNG). The
# runs share one process group: Trainer.fit ends with end_training(), which would destroy it after the first.
RANK_STATE = textwrap.dedent('''
    import json, os, sys
    import torch
    from accelerate.state import PartialState
    from i2i.cli import main
    from i2i.engine.trainer import Trainer

    destroy = PartialState.destroy_process_group
    PartialState.destroy_process_group = lambda self, group=None: None

    fit = Trainer.fit

    def fit_and_save_rank_state(self):
        result = fit(self)
        state = {f"net_{n}": getattr(net, "module", net).state_dict() for n, net in self.model.nets.items()}
        state.update({f"optimizer_{g}": o.state_dict() for g, o in self.optimizers.items()})
        state.update({k: v.state_dict() for k, v in self.extra_state.items()})
        torch.save(state, self.run_dir / f"rank_{os.environ.get('RANK', '0')}.pt")
        return result

    Trainer.fit = fit_and_save_rank_state
    for argv in json.loads(sys.argv[1]):
        code = main(argv)
        if code:
            sys.exit(code)
    destroy(PartialState())
''')


def launch_two(tmp_path: Path, jobs: list[list[str]]) -> list[dict]:
    """``accelerate launch --multi_gpu --num_processes 2`` on the CPU (gloo), as tests/test_train_e2e.py does."""
    script = tmp_path / "rank_state.py"
    script.write_text(RANK_STATE)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                           str(script), json.dumps(jobs)], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(results) == len(jobs), proc.stdout[-2000:]  # one summary per run, from rank 0
    return results


BN_STATISTICS = (".running_mean", ".running_var")


def rank_states(run: Path) -> tuple[dict, dict]:
    return tuple(torch.load(run / f"rank_{r}.pt", map_location="cpu", weights_only=False) for r in (0, 1))


@pytest.mark.slow
def test_two_processes_stay_identical_and_resume_exactly(request, tmp_path):
    models = ("pix2pix", "bicyclegan")
    runs = {m: (tmp_path / m / "straight", tmp_path / m / "split") for m in models}
    over = {m: tiny_overrides(m, request, tmp_path) for m in models}
    first = [argv for m in models for argv in (train_argv(m, over[m], runs[m][0], 2 * N),
                                              train_argv(m, over[m], runs[m][1], N))]
    # the resumes in fresh processes: nothing left in memory from the first half
    results = launch_two(tmp_path, first) + launch_two(tmp_path, [train_argv(m, over[m], runs[m][1], 2 * N, True)
                                                                   for m in models])
    steps = [2 * N, N] * len(models) + [2 * N] * len(models)
    assert [(r["processes"], r["step"]) for r in results] == [(2, s) for s in steps]
    for m in models:
        straight, split = runs[m]
        # (a) the two ranks hold the same weights, optimizer states, EMA and schedules, except batch-norm statistics:
        # each rank's own (a DDP forward starts from rank 0's, broadcast; a frozen one, G's step through D, does
        # not), and so are their EMA copies; rank 0's are the ones checkpointed and exported
        for run in (straight, split):
            assert_identical(*rank_states(run), f"{m} {run.name}: rank 0 vs rank 1", allow=BN_STATISTICS)
        # (b) each rank, straight vs resumed: rank 0 bit for bit; rank 1 restarts from rank 0's statistics
        for r, (a, b) in enumerate(zip(rank_states(straight), rank_states(split))):
            assert_identical(a, b, f"{m} rank {r}: {2 * N} straight vs {N} + {N} resumed",
                             allow=BN_STATISTICS if r else ())
        # and the checkpoint (rank 0's weights and optimizers, both ranks' RNG states), bit for bit
        assert {"random_states_0.pkl", "random_states_1.pkl"} <= {p.name for p in step_dir(straight, 2 * N).iterdir()}
        assert_resume_exact(straight, split, load_recipe(demo_for(m), over[m]))
    assert all(r["rank_param_max_diff"] == 0.0 for r in results), results  # the trainer's own checksum agrees
