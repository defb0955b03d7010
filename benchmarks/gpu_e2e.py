"""The GPU check in one call: CUDA test paths, every demo recipe in every precision, the whole trainer against
its bare step, and compile modes for batch 1.

    python benchmarks/gpu_e2e.py --out results.json            # at most --budget (480 s) plus a minute
    python benchmarks/gpu_e2e.py --out r.json --phases trainer  # one phase: tests, demos, trainer, compile

Phases (each writes its figures into ``--out`` as soon as it ends, so a run cut short keeps what it measured):

- ``tests``: the test suite's CUDA paths (tests that skip without CUDA), run with pytest.
- ``demos``: every ``recipes/demo/*.yaml`` trained ``--demo-steps`` steps in fp32, bf16 and fp16 through
  ``accelerate launch`` (several at once), eval off; a run passes when it exits 0 and every logged loss is finite.
- ``trainer``: CycleGAN and pix2pix at their reference settings (256 px, batch 1) and at batch 8, on generated
  286 px JPEG folders: images/s of the whole trainer (``accelerate launch train.py``, from log.jsonl after the
  first interval: data loading, logging, samples and the health monitor included) against ``Trainer.step`` on a
  fixed device batch (the bare step, the same code without the loop) and against the reference-style step of
  ``benchmarks/reference.py`` on the same nets; the loop's overhead is 1 - trainer / bare. Also the bare step in
  bf16 + channels_last at the largest batch, as a fraction of the bf16 peak.
- ``loop`` (not in the default set): pix2pix at batch 8 with more loader workers.
- ``compile``: batch-1 CycleGAN bare step with ``torch.compile`` modes (default, reduce-overhead = CUDA graphs,
  max-autotune-no-cudagraphs) against eager.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

PEAK_BF16 = {"H200": 989.0, "H100": 989.0, "A100": 312.0}


class Results:
    """Figures by phase, rewritten to disk after every addition."""

    def __init__(self, path: Path):
        self.path, self.data = path, {"device": None, "phases": {}}

    def put(self, phase: str, key: str, value) -> None:
        self.data["phases"].setdefault(phase, {})[key] = value
        self.path.write_text(json.dumps(self.data, indent=1, default=str))
        print(f"[{phase}] {key}: {json.dumps(value, default=str)[:300]}", flush=True)


# ---------------------------------------------------------------------------------------------------- tests
def phase_tests(res: Results) -> None:
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                           "tests/test_tiling.py::test_tiles_on_a_cuda_device_come_back_to_the_cpu",
                           *([str(p) for p in [ROOT / "tests" / "test_mixed_precision.py"] if p.exists()])],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    tail = proc.stdout.strip().splitlines()[-3:]
    res.put("tests", "pytest", {"rc": proc.returncode, "tail": tail, "seconds": round(time.perf_counter() - t, 1)})


# ---------------------------------------------------------------------------------------------------- demos
def demo_command(recipe: Path, precision: str, steps: int, out: Path) -> list[str]:
    overrides = [f"train.max_steps={steps}", f"train.log_every={max(1, steps // 4)}", f"train.sample_every={steps}",
                 f"train.checkpoint_every={steps}", f"train.mixed_precision={precision}", f"train.output_dir={out}",
                 "train.tensorboard=false", "eval=null"]
    text = recipe.read_text()
    if "init_from" in text:
        overrides.append("model.init_from=null")  # ESRGAN stage 2 without stage 1's export: still a full step
    if "perceptual" in text:
        overrides.append("losses.perceptual.weights=null")  # untrained VGG19: no weights file needed there
    return [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1", "--num_machines", "1",
            "--mixed_precision", precision, "--dynamo_backend", "no", "train.py", str(recipe), *overrides]


def finite_log(run: Path) -> tuple[bool, int]:
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.startswith("{")]
    rows = [r for r in rows if "step" in r and "warning" not in r]
    ok = all(math.isfinite(v) for r in rows for k, v in r.items() if isinstance(v, (int, float)))
    return ok, len(rows)


def phase_demos(res: Results, steps: int, parallel: int, work: Path, deadline: float,
                names: list[str] | None = None) -> None:
    from i2i.data.demo import ensure_demo
    from i2i.recipe import load_recipe
    recipes = sorted(r for r in (ROOT / "recipes" / "demo").glob("*.yaml") if not names or r.stem in names)
    for r in recipes:  # build each demo data set once, before the runs race for it
        data = load_recipe(r)["data"]
        if data.get("demo"):
            ensure_demo(data["demo"], data["root"])
    jobs = [(r, p) for p in ("no", "bf16", "fp16") for r in recipes]  # "no": fp32
    running: list[tuple[Path, str, Path, subprocess.Popen, float]] = []
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    while jobs or running:
        if jobs and time.time() > deadline:  # out of time: say what did not run
            res.put("demos", "not_run", [f"{r.stem}/{p}" for r, p in jobs])
            jobs = []
        while jobs and len(running) < parallel:
            recipe, precision = jobs.pop(0)
            out = work / f"{recipe.stem}_{precision}"
            with open(work / f"{recipe.stem}_{precision}.log", "w") as log:  # the child keeps its own copy
                proc = subprocess.Popen(demo_command(recipe, precision, steps, out), cwd=ROOT, env=env, stdout=log,
                                        stderr=subprocess.STDOUT)
            running.append((recipe, precision, out, proc, time.perf_counter()))
        time.sleep(0.5)
        for item in list(running):
            recipe, precision, out, proc, t0 = item
            if proc.poll() is None:
                continue
            running.remove(item)
            finite, rows = finite_log(out) if (out / "log.jsonl").is_file() else (False, 0)
            entry = {"rc": proc.returncode, "finite": finite, "log_rows": rows,
                     "seconds": round(time.perf_counter() - t0, 1)}
            if proc.returncode != 0:
                entry["tail"] = (work / f"{recipe.stem}_{precision}.log").read_text().strip().splitlines()[-4:]
            res.put("demos", f"{recipe.stem}/{precision}", entry)


# ---------------------------------------------------------------------------------------------------- trainer
def make_folders(root: Path, n: int = 64, side: int = 286) -> None:
    """JPEG photo crops at 286 px: paired (train/A, train/B) and unpaired (trainA, trainB) layouts."""
    import cv2
    from PIL import Image
    from skimage import data as sk
    photos = [sk.astronaut(), sk.coffee(), sk.chelsea(), sk.rocket()]
    rng = np.random.default_rng(0)
    for i in range(n):
        p = photos[i % len(photos)]
        s = int(rng.integers(min(p.shape[:2]) // 2, min(p.shape[:2])))
        y, x = rng.integers(0, p.shape[0] - s + 1), rng.integers(0, p.shape[1] - s + 1)
        rgb = cv2.resize(np.ascontiguousarray(p[y:y + s, x:x + s]), (side, side), interpolation=cv2.INTER_AREA)
        for folder, img in (("paired/train/A", rgb[..., ::-1]), ("paired/train/B", rgb),
                            ("unpaired/trainA", rgb), ("unpaired/trainB", rgb[..., ::-1])):
            (root / folder).mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.ascontiguousarray(img)).save(root / folder / f"{i:03d}.jpg", quality=92)


def model_overrides(model: str, data: Path, batch: int) -> list[str]:
    root = data / ("paired" if model == "pix2pix" else "unpaired")
    extra = ["data.layout=folders"] if model == "pix2pix" else []
    workers = min(6, os.cpu_count() or 1)
    return [f"data.root={root}", f"data.batch_size={batch}", f"data.num_workers={workers}", "eval=null", *extra]


def whole_trainer(model: str, batch: int, steps: int, data: Path, work: Path, precision: str = "no",
                  extra: tuple[str, ...] = ()) -> dict:
    out = work / f"trainer_{model}_b{batch}_{precision}{'_'.join(('', *extra)).replace('=', '-')}"
    log_every = max(10, steps // 6)
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1", "--num_machines", "1",
           "--mixed_precision", precision, "--dynamo_backend", "no", "train.py", f"recipes/{model}.yaml",
           *model_overrides(model, data, batch), f"train.max_steps={steps}", f"train.log_every={log_every}",
           f"train.sample_every={steps // 2}", f"train.checkpoint_every={steps}", f"train.output_dir={out}",
           f"train.mixed_precision={precision}", "train.tensorboard=false", *extra]
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        return {"rc": proc.returncode, "tail": proc.stderr.strip().splitlines()[-5:]}
    rows = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    speeds = [r["images_per_s"] for r in rows if "images_per_s" in r][1:]  # the first interval holds warm-up
    return {"images_per_s": float(np.median(speeds)), "intervals": speeds, "wall_s": round(wall, 1)}


def bare_steps(model: str, batch: int, steps: int, data: Path, precision: str = "no",
               channels_last: bool = False) -> dict:
    """Trainer.step on one fixed device batch, and the reference-style step on the same nets."""
    from common import random_batch
    from reference import reference_optimizers, reference_step

    from i2i.engine.trainer import Trainer
    from i2i.recipe import load_recipe
    recipe = load_recipe(ROOT / "recipes" / f"{model}.yaml",
                         [*model_overrides(model, data, batch), f"train.mixed_precision={precision}",
                          f"train.channels_last={str(channels_last).lower()}", "train.tensorboard=false"])
    trainer = Trainer(recipe).prepare()
    dev = trainer.accelerator.device
    batch_data = {k: v.to(dev) for k, v in random_batch(model, trainer.parts, batch, 256).items()}

    def timed(fn, n):
        for _ in range(5):
            fn()
        torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(n):
            fn()
        torch.cuda.synchronize()
        return (time.perf_counter() - t) / n

    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter:
        trainer.step(batch_data)
    flops = counter.get_total_flops()
    s = timed(lambda: trainer.step(batch_data), steps)
    out = {"images_per_s": batch / s, "flops_per_step": flops, "tflops_per_s": flops / s / 1e12,
           "peak_mem_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2)}
    if precision == "no":
        model_obj = trainer.model
        nets = {k: trainer.accelerator.unwrap_model(n) for k, n in model_obj.nets.items()}
        model_obj.nets.update(nets)
        opts = reference_optimizers(recipe, model_obj)
        ref = timed(lambda: reference_step(model, model_obj, opts, batch_data), steps)
        out["reference_images_per_s"] = batch / ref
    from accelerate.state import AcceleratorState
    trainer.accelerator.end_training()
    AcceleratorState._reset_state()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    return out


def phase_trainer(res: Results, data: Path, work: Path, peak: float) -> None:
    plan = {("cyclegan", 1): (240, 60), ("pix2pix", 1): (480, 120), ("cyclegan", 8): (60, 20),
            ("pix2pix", 8): (120, 40)}
    for (model, batch), (loop_steps, bare_n) in plan.items():
        bare = bare_steps(model, batch, bare_n, data)
        whole = whole_trainer(model, batch, loop_steps, data, work)
        entry = {"bare": bare, "trainer": whole}
        if "images_per_s" in whole:
            entry["loop_overhead"] = round(1 - whole["images_per_s"] / bare["images_per_s"], 4)
        if "reference_images_per_s" in bare:
            entry["bare_vs_reference"] = round(bare["images_per_s"] / bare["reference_images_per_s"], 3)
        res.put("trainer", f"{model}_256_b{batch}_fp32", entry)
    for batch in (16, 32):
        try:
            bare = bare_steps("cyclegan", batch, 10, data, precision="bf16", channels_last=True)
        except torch.OutOfMemoryError as exc:
            res.put("trainer", f"cyclegan_256_b{batch}_bf16_cl", {"error": str(exc)[:200]})
            break
        bare["fraction_of_bf16_peak"] = round(bare["tflops_per_s"] / peak, 4)
        res.put("trainer", f"cyclegan_256_b{batch}_bf16_cl", bare)


def phase_loop(res: Results, data: Path, work: Path) -> None:
    """pix2pix at batch 8 with twice the loader workers: is the batch-8 loop bound by data loading?"""
    workers = min(12, os.cpu_count() or 1)
    res.put("loop", f"pix2pix_256_b8_fp32_workers{workers}",
            whole_trainer("pix2pix", 8, 120, data, work, extra=(f"data.num_workers={workers}",)))


# ---------------------------------------------------------------------------------------------------- compile
def phase_compile(res: Results, data: Path, deadline: float, modes: list[str]) -> None:
    """Batch-1 CycleGAN: each net compiled with a torch.compile mode, then Trainer.step timed."""
    from common import random_batch

    from i2i.engine.trainer import Trainer
    from i2i.recipe import load_recipe
    for mode in modes:
        if time.time() > deadline:
            res.put("compile", f"cyclegan_256_b1_{mode}", "not run: out of time")
            continue
        recipe = load_recipe(ROOT / "recipes" / "cyclegan.yaml",
                             [*model_overrides("cyclegan", data, 1), "train.tensorboard=false"])
        trainer = Trainer(recipe).prepare()
        if mode != "eager":
            for net in trainer.model.nets.values():
                trainer.accelerator.unwrap_model(net).compile(mode=mode)
        batch = {k: v.cuda() for k, v in random_batch("cyclegan", trainer.parts, 1, 256).items()}
        t = time.perf_counter()
        try:
            for _ in range(8):
                trainer.step(batch)
            torch.cuda.synchronize()
            warm = time.perf_counter() - t
            t = time.perf_counter()
            for _ in range(60):
                trainer.step(batch)
            torch.cuda.synchronize()
            res.put("compile", f"cyclegan_256_b1_{mode}", {"images_per_s": 60 / (time.perf_counter() - t),
                                                          "warmup_s": round(warm, 1)})
        except Exception as exc:  # noqa: BLE001  a mode that fails here is a finding, not a crash
            res.put("compile", f"cyclegan_256_b1_{mode}", {"error": f"{type(exc).__name__}: {str(exc)[:300]}"})
        from accelerate.state import AcceleratorState
        trainer.accelerator.end_training()
        AcceleratorState._reset_state()
        torch._dynamo.reset()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="gpu_e2e.json")
    p.add_argument("--phases", nargs="+", default=["tests", "trainer", "demos", "compile"],
                   choices=["tests", "trainer", "demos", "loop", "compile"])
    p.add_argument("--compile-modes", nargs="+", default=["eager", "reduce-overhead", "default",
                                                          "max-autotune-no-cudagraphs"])
    p.add_argument("--demo-steps", type=int, default=100)
    p.add_argument("--parallel", type=int, default=12, help="demo runs at once")
    p.add_argument("--demos", nargs="+", help="only these demo recipes (file stems); default: every one")
    p.add_argument("--budget", type=float, default=480, help="seconds: later demo runs and compile modes are "
                                                              "skipped (and listed) once this is spent")
    args = p.parse_args()
    if not torch.cuda.is_available():
        sys.exit("benchmarks/gpu_e2e.py needs a CUDA GPU")
    os.chdir(ROOT)
    res = Results(Path(args.out))
    deadline = time.time() + args.budget
    name = torch.cuda.get_device_name()
    peak = next((v for k, v in PEAK_BF16.items() if k in name), float("nan"))
    res.data["device"] = {"name": name, "torch": torch.__version__, "bf16_peak_tflops": peak}
    work = Path(tempfile.mkdtemp(prefix="i2i_gpu_"))
    data = work / "data"
    make_folders(data)
    phases = {"tests": lambda: phase_tests(res), "trainer": lambda: phase_trainer(res, data, work, peak),
              "demos": lambda: phase_demos(res, args.demo_steps, args.parallel, work / "demos", deadline - 60,
                                                 args.demos),
              "loop": lambda: phase_loop(res, data, work),
              "compile": lambda: phase_compile(res, data, deadline - 45, args.compile_modes)}
    (work / "demos").mkdir()
    for phase in args.phases:
        t = time.perf_counter()
        try:
            phases[phase]()
        except Exception as exc:  # noqa: BLE001  keep the other phases' figures
            res.put(phase, "error", f"{type(exc).__name__}: {exc}")
        res.put(phase, "seconds", round(time.perf_counter() - t, 1))


if __name__ == "__main__":
    main()
