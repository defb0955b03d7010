"""Training-step speed: i2i's step against a plain-PyTorch step written as the reference implementation does it.

Both use the same nets (from the bundled recipes), the same batch and the same math; the baseline is measured in
the same run. The baseline reproduces the reference (junyanz/pytorch-CycleGAN-and-pix2pix) on a CPU: Adam's
per-parameter loop (torch's CPU default) and no denormal flushing. Data loading is excluded (random batches).

    python benchmarks/run.py            # 128 and 256 px, 10 timed steps, 2 repeats
    python benchmarks/run.py --quick    # 128 px only, 4 timed steps

Prints a table; the last line is JSON keyed by workload.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from i2i.build import build  # noqa: E402
from i2i.models.base import frozen_modules, set_requires_grad  # noqa: E402
from i2i.recipe import load_recipe  # noqa: E402


def parts_for(model: str, size: int):
    depth = {128: 7, 256: 8}.get(size, 7)
    overrides = [f"data.size={size}", f"data.load_size={size}", "data.root=/nonexistent", "train.tensorboard=false"]
    if model == "pix2pix":
        overrides.append(f"nets.g.depth={depth}")
    recipe = load_recipe(ROOT / "recipes" / f"{model}.yaml", overrides)
    torch.manual_seed(0)
    return recipe, build_without_data(recipe)


def build_without_data(recipe):
    import i2i.build as b
    real = b.DATASETS.build
    b.DATASETS.build = lambda *a, **k: None  # nets and losses only: the benchmark feeds random batches
    try:
        return build(recipe)
    finally:
        b.DATASETS.build = real


class Ctx:
    def __init__(self, model, optimizers):
        self.nets, self.opts, self.step = model.nets, optimizers, 0

    def update(self, group, loss):
        self.opts[group].zero_grad(set_to_none=True)
        loss.backward()
        self.opts[group].step()

    def frozen(self, *names):
        return frozen_modules(*(self.nets[n] for n in names))


def optimizers(recipe, model, foreach: bool):
    out = {}
    for group, names in model.optim_groups.items():
        cfg = recipe["optim"][group]
        params = [p for n in names for p in model.nets[n].parameters()]
        out[group] = torch.optim.Adam(params, lr=cfg["lr"], betas=tuple(cfg["betas"]), foreach=foreach)
    return out


def reference_step(model_name, model, opts, batch):
    """The reference's optimize_parameters, written out (pix2pix: D then G; CycleGAN: G then D)."""
    n, adv = model.nets, model.losses["adv"]
    if model_name == "pix2pix":
        fake_b = n["g"](batch["real_a"])
        set_requires_grad((n["d"],), True)
        opts["d"].zero_grad()
        loss_d = adv.discriminator(n["d"](torch.cat([batch["real_a"], batch["real_b"]], 1)),
                                   n["d"](torch.cat([batch["real_a"], fake_b.detach()], 1)))
        loss_d.backward()
        opts["d"].step()
        set_requires_grad((n["d"],), False)
        opts["g"].zero_grad()
        loss_g = adv.generator(n["d"](torch.cat([batch["real_a"], fake_b], 1))) + model.losses["l1"](fake_b, batch["real_b"])
        loss_g.backward()
        opts["g"].step()
        return
    a, b = batch["real_a"], batch["real_b"]
    fake_b, fake_a = n["g_ab"](a), n["g_ba"](b)
    rec_a, rec_b = n["g_ba"](fake_b), n["g_ab"](fake_a)
    set_requires_grad((n["d_a"], n["d_b"]), False)
    opts["g"].zero_grad()
    loss = (adv.generator(n["d_b"](fake_b)) + adv.generator(n["d_a"](fake_a))
            + model.losses["cycle"](rec_a, a) + model.losses["cycle"](rec_b, b)
            + model.losses["identity"](n["g_ab"](b), b) + model.losses["identity"](n["g_ba"](a), a))
    loss.backward()
    opts["g"].step()
    set_requires_grad((n["d_a"], n["d_b"]), True)
    opts["d"].zero_grad()
    fb, fa = model.pool_b.query(fake_b.detach()), model.pool_a.query(fake_a.detach())
    (adv.discriminator(n["d_b"](b), n["d_b"](fb)) + adv.discriminator(n["d_a"](a), n["d_a"](fa))).backward()
    opts["d"].step()


def timed(fn, warmup: int, steps: int, repeats: int) -> float:
    for _ in range(warmup):
        fn()
    runs = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(steps):
            fn()
        runs.append((time.perf_counter() - t) / steps)
    return statistics.median(runs)


def bench(model_name: str, size: int, warmup: int, steps: int, repeats: int) -> dict:
    recipe, parts = parts_for(model_name, size)
    model = parts.model
    for net in model.nets.values():
        net.train()
    g = torch.Generator().manual_seed(0)
    batch = {"real_a": torch.rand(1, 3, size, size, generator=g) * 2 - 1,
             "real_b": torch.rand(1, 3, size, size, generator=g) * 2 - 1}
    torch.set_flush_denormal(False)
    ref_opts = optimizers(recipe, model, foreach=False)
    baseline = timed(lambda: reference_step(model_name, model, ref_opts, batch), warmup, steps, repeats)
    set_requires_grad(tuple(model.nets.values()), True)  # the reference loop leaves some nets frozen
    torch.set_flush_denormal(True)
    ctx = Ctx(model, optimizers(recipe, model, foreach=True))
    ours = timed(lambda: model.train_step(batch, ctx), warmup, steps, repeats)
    return {"s_per_step": round(ours, 4), "steps_per_s": round(1 / ours, 3),
            "baseline_s_per_step": round(baseline, 4), "speedup_vs_baseline": round(baseline / ours, 2)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="128 px only, fewer steps")
    args = p.parse_args()
    sizes = [128] if args.quick else [128, 256]
    warmup, steps, repeats = (2, 4, 2) if args.quick else (3, 10, 2)
    results = {}
    print(f"{'workload':16s} {'i2i s/step':>11s} {'baseline s/step':>16s} {'speedup':>8s}   (torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads)")
    for size in sizes:
        for name in ("pix2pix", "cyclegan"):
            r = bench(name, size, warmup, steps, repeats)
            results[f"{name}_{size}"] = r
            print(f"{name + '_' + str(size):16s} {r['s_per_step']:11.3f} {r['baseline_s_per_step']:16.3f} "
                  f"{r['speedup_vs_baseline']:7.2f}x", flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
