"""SGAN against the supervised baseline with few labels: MNIST test accuracy at 100 and 1000 labels, same run.

    python benchmarks/sgan_labels.py [--data ../shared/data/mnist/mnist.npz] [--labels 100,1000] \
        [--sgan-steps 6000] [--classifier-steps 2000] [--device auto] [--work DIR]

For each label count n (n / 10 per class, picked by data.label_seed 0, so both sides see the same images):
- SGAN: `i2i train recipes/sgan.yaml data.labels_per_class=n/10` (D = image_classifier; every other training image
  unlabeled), then `i2i eval` on the export (D's accuracy on the whole test split);
- supervised: `i2i classifier --labels-per-class n/10` (the same net, D's base_channels/feature_dim/dropout,
  trained on the n labeled images alone, with its random-shift augmentation), scored on the same test split.
Prints a table with each side's wall and CPU time (user + system of the child process: every thread counted) and a
last JSON line. Smaller --sgan-steps / --classifier-steps give a reduced budget; the figures say which was used.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def run(args: list[str]) -> tuple[dict, float, float]:
    """i2i ARGS in a child process: (its last JSON line, wall seconds, CPU seconds)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "i2i.cli", *args], cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if out.returncode != 0:
        raise SystemExit(f"i2i {' '.join(args)} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1]), wall, cpu


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "mnist" / "mnist.npz"))
    p.add_argument("--labels", default="100,1000", help="labeled images in all (divisible by the 10 classes)")
    p.add_argument("--sgan-steps", type=int, default=6000, help="SGAN training steps (batch 64)")
    p.add_argument("--classifier-steps", type=int, default=2000, help="supervised baseline steps (batch 128)")
    p.add_argument("--eval-every", type=int, default=None, help="SGAN's eval interval (default: --sgan-steps)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda ... (SGAN trains where accelerate puts it)")
    p.add_argument("--work", default=None, help="folder for the runs (default: a temporary folder)")
    p.add_argument("overrides", nargs="*", help="extra recipe overrides for SGAN (key=value)")
    args = p.parse_args()
    if not Path(args.data).exists():
        print(f"skipped: {args.data} not found (pass --data)")
        print(json.dumps({}))
        return
    work = Path(args.work or tempfile.mkdtemp(prefix="i2i_sgan_"))
    # the baseline is SGAN's D: the recipe's net, with the overrides' nets.d.base_channels / feature_dim
    d_net = yaml.safe_load((ROOT / "recipes" / "sgan.yaml").read_text())["nets"]["d"]
    for o in args.overrides:
        key, _, value = o.partition("=")
        if key.startswith("nets.d."):
            d_net[key[len("nets.d."):]] = yaml.safe_load(value)
    if d_net.get("type") != "image_classifier" or d_net.get("dropout", 0.25) != 0.25:
        raise SystemExit(f"SGAN's D ({d_net}) is not what `i2i classifier` trains (image_classifier, dropout 0.25)")
    net_args = ["--base-channels", str(d_net.get("base_channels", 32)), "--feature-dim",
                str(d_net.get("feature_dim", 128))]
    if args.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # the trainer follows accelerate; hide GPUs for a CPU figure
    results = {}
    print(f"{'labels':>6s} {'method':>10s} {'steps':>6s} {'test_acc':>9s} {'wall s':>8s} {'cpu s':>8s}", flush=True)
    for n in (int(v) for v in args.labels.split(",")):
        per_class = n // 10
        run_dir = work / f"sgan_{n}"
        every = args.eval_every or args.sgan_steps
        _, wall, cpu = run(["train", "recipes/sgan.yaml", f"data.root={args.data}",
                            f"data.labels_per_class={per_class}", f"train.max_steps={args.sgan_steps}",
                            f"train.output_dir={run_dir}",
                            f"train.checkpoint_every={args.sgan_steps}", f"train.sample_every={args.sgan_steps}",
                            "train.log_every=500", f"eval.every={every}", *args.overrides])
        scores, _, _ = run(["eval", str(run_dir), "--data", args.data, "--device",
                            "cpu" if args.device == "cpu" else "auto"])
        sgan = {"steps": args.sgan_steps, "test_accuracy": round(scores["test_accuracy"], 4),
                "wall_seconds": round(wall, 1), "cpu_seconds": round(cpu, 1)}
        base_dir = work / f"supervised_{n}"
        clf, wall, cpu = run(["classifier", args.data, "--output", str(base_dir), "--labels-per-class",
                              str(per_class), "--steps", str(args.classifier_steps), "--device", args.device,
                              *net_args])
        supervised = {"steps": args.classifier_steps, "train_images": clf["train_images"],
                      "test_accuracy": round(clf["test_accuracy"], 4), "wall_seconds": round(wall, 1),
                      "cpu_seconds": round(cpu, 1)}
        results[str(n)] = {"sgan": sgan, "supervised": supervised}
        for name, r in (("sgan", sgan), ("supervised", supervised)):
            print(f"{n:6d} {name:>10s} {r['steps']:6d} {r['test_accuracy']:9.4f} {r['wall_seconds']:8.1f} "
                  f"{r['cpu_seconds']:8.1f}", flush=True)
    print(f"runs in {work}")
    print(json.dumps({"data": args.data, "device": args.device, **results}))


if __name__ == "__main__":
    main()
