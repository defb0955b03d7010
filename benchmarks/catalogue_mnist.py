"""The catalogue's unconditional generators on MNIST under one fixed CPU budget each, DCGAN as the baseline.

    python benchmarks/catalogue_mnist.py --seconds 600 [--recipes began,ebgan,clustergan,aae,bigan,vaegan] \
        [--baseline dcgan] [--data ../shared/data/mnist/mnist.npz] [--threads 2] [--work DIR] [--set KEY=VALUE ...]

For each recipe (a bundled recipe's name or a path; the baseline first): `i2i train` on --data with the recipe's
own settings runs for --seconds of wall time (start-up included), then gets SIGINT, finishes its step and writes a
checkpoint. The same scorer the recipe's `eval:` names (trained once here: the evaluation classifier, on --data)
then scores the weights of step 0 (the same seed builds them) and of the checkpoint, with the same sample seeds:
Frechet distance in the classifier's feature space, mode coverage (classes found among the samples, of 10, and
KL(class histogram || uniform): mode collapse shows as few classes and a high KL), and the model's own measures
(BEGAN's M, EBGAN's energies, ClusterGAN's cluster_accuracy, an encoder's reconstruction error...). Prints a
table; the last line is JSON keyed by recipe. The runs stay in --work; each recipe's sample grid at step 0
and at the end is <recipe>_scores/samples_step_N.png.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = {"frechet_distance", "mode_coverage", "mode_kl", "confidence", "class_coverage", "class_entropy",
          "diversity", "real_diversity", "samples", "class_accuracy"}


def i2i(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "i2i.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          **kwargs)


def recipe_path(name: str) -> Path:
    path = Path(name)
    return path if path.suffix in (".yaml", ".yml") else ROOT / "recipes" / f"{name}.yaml"


def train_for(recipe: Path, overrides: list[str], seconds: float, log: Path) -> dict:
    """`i2i train` stopped by SIGINT after ``seconds`` of wall time; its JSON line (step, checkpoint...)."""
    with open(log, "w", encoding="utf-8") as err:
        proc = subprocess.Popen([sys.executable, "-m", "i2i.cli", "train", str(recipe), *overrides], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=err, text=True)
        try:
            proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate()
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if not lines:
        raise SystemExit(f"i2i train {recipe} ended with code {proc.returncode} and no result; see {log}")
    return json.loads(lines[-1])


def score(recipe_file: Path, overrides: list[str], checkpoint: Path | None, scratch: Path) -> dict:
    """The recipe's scorer on step-0 weights (``checkpoint`` None) or on a checkpoint's nets and model state."""
    import numpy as np
    import torch
    from accelerate import Accelerator
    from safetensors.torch import load_file

    from i2i.build import build
    from i2i.engine import checkpoint as ckpt
    from i2i.recipe import load_recipe
    recipe = load_recipe(recipe_file, overrides)
    torch.manual_seed(recipe["seed"])  # as the trainer's set_seed: the same seed gives the run's step-0 weights
    np.random.seed(recipe["seed"])
    parts = build(recipe)
    if checkpoint is not None:
        state = ckpt.read_trainer_state(checkpoint)
        for i, name in enumerate(state["nets"]):
            weights = load_file(str(checkpoint / ("model.safetensors" if i == 0 else f"model_{i}.safetensors")))
            parts.nets[name].load_state_dict({k.removeprefix("module."): v for k, v in weights.items()})
        if recipe.get("ema") is not None:  # the export (and the scorer) use the averaged generators
            saved = torch.load(checkpoint / ckpt.EXTRA_STATE, map_location="cpu", weights_only=True)
            for name in state["export"]:
                parts.nets[name].load_state_dict({k.removeprefix("module."): v for k, v in saved[f"ema_{name}"].items()
                                                  if k.startswith("module.")})
        if parts.model.state_objects():
            ckpt.load_extra_state(checkpoint, parts.model.state_objects(), torch.device("cpu"))
    scratch.mkdir(parents=True, exist_ok=True)
    accelerator = Accelerator(cpu=True)
    scorer = parts.scorer.for_recipe(recipe, parts, accelerator)
    step = ckpt.read_trainer_state(checkpoint)["step"] if checkpoint is not None else 0
    figures = scorer.score(parts.model, {}, scratch, step, accelerator)
    from i2i.inference.grid import save_grid
    items = [parts.dataset[(i, 0)] for i in range(8)]  # the model's own sample grid, as the trainer draws it
    batch = {k: torch.stack([it[k] for it in items]) for k in items[0] if torch.is_tensor(items[0][k])}
    for net in parts.nets.values():
        net.eval()
    save_grid(parts.model.visuals(batch), scratch / f"samples_step_{step:08d}.png")
    return {k.removeprefix("eval/"): v for k, v in figures.items()}


def own(figures: dict) -> dict:
    return {k: v for k, v in figures.items() if k not in SHARED and isinstance(v, (int, float))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "mnist" / "mnist.npz"))
    p.add_argument("--seconds", type=float, default=600, help="wall seconds of training per recipe (default 600)")
    p.add_argument("--recipes", default="began,ebgan,clustergan", help="comma-separated names or paths")
    p.add_argument("--baseline", default="dcgan", help="trained first at the same budget ('' for none)")
    p.add_argument("--threads", type=int, default=None, help="train.cpu_threads and the scoring's threads")
    p.add_argument("--per-class", type=int, default=100, help="samples scored per class (10 classes)")
    p.add_argument("--real-images", type=int, default=2000, help="real test images the samples are compared with")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="an override for every recipe (e.g. nets.g.base_channels=32)")
    p.add_argument("--classifier-steps", type=int, default=600, help="training steps of the evaluation classifier")
    p.add_argument("--work", default=None, help="folder for runs (default: a temporary folder); an evaluation "
                                                "classifier already in <work>/classifier is reused")
    args = p.parse_args()
    if not Path(args.data).exists():
        print(f"skipped: {args.data} not found (pass --data)")
        print(json.dumps({}))
        return
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    work = Path(args.work or tempfile.mkdtemp(prefix="i2i_catalogue_")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    classifier = work / "classifier"
    if not (classifier / "meta.json").is_file():
        t = time.perf_counter()
        out = i2i(["classifier", args.data, "--output", str(classifier), "--device", "cpu", "--steps",
                   str(args.classifier_steps)])
        if out.returncode:
            raise SystemExit(f"i2i classifier failed:\n{out.stderr[-2000:]}")
        print(f"classifier: {json.loads(out.stdout.splitlines()[-1])['test_accuracy']:.4f} test accuracy "
              f"({time.perf_counter() - t:.0f} s)", file=sys.stderr)
    names = list(dict.fromkeys([n for n in [args.baseline, *args.recipes.split(",")] if n]))
    results: dict = {}
    for name in names:
        recipe = recipe_path(name)
        tag = recipe.stem
        run = work / tag
        evaluation = {"classifier": str(classifier), "every": 10 ** 9, "per_class": args.per_class,
                      "real_images": args.real_images}
        overrides = [f"data.root={args.data}", f"eval={json.dumps(evaluation)}", *args.sets]
        train_overrides = [*overrides, f"train.output_dir={run}", f"train.max_steps={10 ** 9}",
                           f"train.checkpoint_every={10 ** 9}", "train.sample_every=500", "train.tensorboard=false",
                           *([f"train.cpu_threads={args.threads}"] if args.threads else [])]
        print(f"{tag}: scoring step 0, then training for {args.seconds:.0f} s", file=sys.stderr)
        before = score(recipe, train_overrides, None, work / f"{tag}_scores")
        if run.exists() and any(run.iterdir()):
            raise SystemExit(f"{run} is not empty: pass another --work")
        # no eval while training: this script scores step 0 and the end itself, outside the budget
        trained = train_for(recipe, [*train_overrides, "eval=null"], args.seconds, work / f"{tag}.log")
        last = Path(trained["checkpoint"]) if trained.get("checkpoint") else None
        after = score(recipe, train_overrides, last, work / f"{tag}_scores") if last else before
        results[tag] = {"steps": trained.get("step", 0), "seconds": trained.get("seconds"),
                        "step0": before, "end": after}
        print(f"{tag}: {results[tag]['steps']} steps; FD {before['frechet_distance']:.2f} -> "
              f"{after['frechet_distance']:.2f}", file=sys.stderr)
    print(f"\nMNIST, {args.seconds:.0f} s of training each (start-up included), scored at step 0 -> the end; "
          f"classes found of 10; KL of the class histogram from uniform (0 = even, 2.30 = one class)")
    print(f"{'recipe':12s} {'steps':>6s} {'FD':>15s} {'classes':>8s} {'KL':>11s}  own measures")
    for tag, r in results.items():
        b, a = r["step0"], r["end"]
        owns = ", ".join(f"{k} {own(b).get(k, float('nan')):.3g} -> {v:.3g}" for k, v in own(a).items()) or "-"
        print(f"{tag:12s} {r['steps']:6d} {b['frechet_distance']:6.2f} -> {a['frechet_distance']:6.2f} "
              f"{b['mode_coverage']:2.0f} -> {a['mode_coverage']:2.0f} {b['mode_kl']:4.2f} -> {a['mode_kl']:4.2f}  "
              f"{owns}")
    print(f"runs, logs and sample grids in {work}")
    print(json.dumps(results))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
