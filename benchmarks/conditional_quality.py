"""Quality of the conditional recipes on MNIST under a fixed CPU budget, as the built-in measure reports it.

    python benchmarks/conditional_quality.py [--data ../shared/data/mnist/mnist.npz] [--steps 1500] \
        [--models cgan,acgan,infogan]

For each recipe: train for --steps steps (nets at base_channels 32, batch 64), scoring every 500 steps with the
evaluation classifier trained once on the same data (its test accuracy is the ceiling), then `i2i eval` on the
export. Prints a table; the last line is JSON keyed by model with class_accuracy, frechet_distance and seconds.
Chance level is 0.10 class accuracy (InfoGAN: after matching code values to classes, about 0.13 for noise).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, "-m", "i2i.cli", *args], cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"i2i {' '.join(args)} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "mnist" / "mnist.npz"))
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--models", default="cgan,acgan,infogan")
    p.add_argument("--work", default=None, help="folder for runs (default: a temporary folder)")
    args = p.parse_args()
    if not Path(args.data).exists():
        print(f"skipped: {args.data} not found (pass --data)")
        print(json.dumps({}))
        return
    work = Path(args.work or tempfile.mkdtemp(prefix="i2i_cond_"))
    classifier = work / "classifier"
    t = time.perf_counter()
    clf = run(["classifier", args.data, "--output", str(classifier), "--device", "cpu"])
    print(f"classifier: test accuracy {clf['test_accuracy']:.4f} ({time.perf_counter() - t:.0f} s)")
    results = {}
    print(f"{'model':10s} {'steps':>6s} {'class_acc':>10s} {'frechet':>9s} {'train s':>8s}")
    for model in args.models.split(","):
        t = time.perf_counter()
        run(["train", f"recipes/{model}.yaml", f"data.root={args.data}", "nets.g.base_channels=32",
             "nets.d.base_channels=32", f"train.max_steps={args.steps}", f"train.output_dir={work / model}",
             f"train.checkpoint_every={args.steps}", "train.sample_every=500", f"eval.classifier={classifier}",
             "eval.every=500"])
        seconds = time.perf_counter() - t
        scores = run(["eval", str(work / model), "--data", args.data, "--classifier", str(classifier),
                      "--device", "cpu"])
        results[model] = {"steps": args.steps, "class_accuracy": round(scores["class_accuracy"], 4),
                          "frechet_distance": round(scores["frechet_distance"], 2), "train_seconds": round(seconds, 1),
                          "classifier_test_accuracy": clf["test_accuracy"]}
        r = results[model]
        print(f"{model:10s} {args.steps:6d} {r['class_accuracy']:10.3f} {r['frechet_distance']:9.2f} {seconds:8.0f}")
    print(f"runs and sample grids in {work}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
