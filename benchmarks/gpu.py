"""GPU training speed: fp32 vs bf16 vs bf16 + channels_last + compile, with model FLOP utilisation.

Runs the models' own ``train_step`` (the trainer's code path: the same speed options, ``speed_options`` from
the trainer, and bf16 autocast as Accelerate applies it) on random batches at the bundled recipes' reference
configurations (CycleGAN and pix2pix at 256 px). FLOPs per step come from ``torch.utils.flop_counter``; model
FLOP utilisation (MFU) is achieved FLOP/s over the GPU's dense bf16 peak (``--peak-tflops``, default by name:
H100 SXM 989, H200 989, A100 312).

    python benchmarks/gpu.py                    # batch 1 (the reference's) and batch 8
    python benchmarks/gpu.py --batch 1 --steps 50

Prints a table; the last line is JSON keyed by workload and configuration.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import parts_for  # noqa: E402

from i2i.build import build_optimizers  # noqa: E402
from i2i.engine.hardware import speed_options  # noqa: E402
from i2i.models.base import PlainContext  # noqa: E402
from i2i.recipe import TrainConfig  # noqa: E402

CONFIGS = {"fp32": dict(bf16=False, channels_last=False, compile=False),
           "bf16": dict(bf16=True, channels_last=False, compile=False),
           "bf16_cl": dict(bf16=True, channels_last=True, compile=False),
           "bf16_cl_compile": dict(bf16=True, channels_last=True, compile=True)}


def peak_tflops(name: str) -> float:
    for key, value in (("H200", 989.0), ("H100", 989.0), ("A100", 312.0), ("L40", 362.0), ("4090", 165.0)):
        if key in name:
            return value
    return float("nan")


def bench(model_name: str, size: int, batch: int, config: dict, warmup: int, steps: int) -> dict:
    recipe, parts = parts_for(model_name, size)
    model = parts.model
    cfg = TrainConfig(channels_last=config["channels_last"], compile=config["compile"])
    for name in list(model.nets):
        model.nets[name] = speed_options(model.nets[name].cuda().train(), cfg)
    for loss in model.losses.values():
        loss.cuda()
    ctx = PlainContext(model, build_optimizers(recipe, model))
    g = torch.Generator(device="cuda").manual_seed(0)
    fmt = torch.channels_last if config["channels_last"] else torch.contiguous_format
    data = {k: (torch.rand(batch, 3, size, size, generator=g, device="cuda") * 2 - 1).contiguous(memory_format=fmt)
            for k in ("real_a", "real_b")}

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=config["bf16"]):
            model.train_step(data, ctx)

    compile_start = time.perf_counter()
    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    warm_s = time.perf_counter() - compile_start
    flops = None
    if not config["compile"]:
        with FlopCounterMode(display=False) as counter:
            step()
        flops = counter.get_total_flops()
    torch.cuda.reset_peak_memory_stats()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    s_per_step = (time.perf_counter() - t) / steps
    return {"s_per_step": s_per_step, "images_per_s": batch / s_per_step, "flops_per_step": flops,
            "peak_mem_gb": torch.cuda.max_memory_allocated() / 2**30, "warmup_s": warm_s}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--models", nargs="+", default=["cyclegan", "pix2pix"])
    p.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    p.add_argument("--peak-tflops", type=float, default=None)
    args = p.parse_args()
    if not torch.cuda.is_available():
        sys.exit("benchmarks/gpu.py needs a CUDA GPU")
    torch.backends.cudnn.benchmark = True
    name = torch.cuda.get_device_name()
    peak = args.peak_tflops or peak_tflops(name)
    print(f"{name}, torch {torch.__version__}, bf16 dense peak {peak:g} TFLOP/s")
    print(f"{'workload':22s} {'config':16s} {'img/s':>8s} {'ms/step':>8s} {'TFLOP/s':>8s} {'MFU':>6s} "
          f"{'mem GB':>7s} {'vs fp32':>8s}")
    results: dict = {}
    for model_name in args.models:
        for batch in args.batch:
            workload = f"{model_name}_256_b{batch}"
            flops = None
            for config in args.configs:
                r = bench(model_name, 256, batch, CONFIGS[config], args.warmup, args.steps)
                flops = r["flops_per_step"] or flops  # the same math whatever the options
                tflops = flops / r["s_per_step"] / 1e12 if flops else float("nan")
                r.update(flops_per_step=flops, tflops_per_s=tflops, mfu=tflops / peak)
                base = results.get(workload, {}).get("fp32")
                r["speedup_vs_fp32"] = base["s_per_step"] / r["s_per_step"] if base else 1.0
                results.setdefault(workload, {})[config] = {k: (round(v, 4) if isinstance(v, float) else v)
                                                            for k, v in r.items()}
                print(f"{workload:22s} {config:16s} {r['images_per_s']:8.1f} {1000 * r['s_per_step']:8.1f} "
                      f"{tflops:8.1f} {r['mfu']:6.1%} {r['peak_mem_gb']:7.2f} {r['speedup_vs_fp32']:7.2f}x",
                      flush=True)
    print(json.dumps({"device": name, "peak_tflops": peak, "results": results}))


if __name__ == "__main__":
    main()
