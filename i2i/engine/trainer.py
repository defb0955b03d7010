"""One Trainer for every model: Accelerate setup, the step loop, logging, samples, checkpoints, export."""
from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import ProjectConfiguration, set_seed
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ..build import Parts, TrainConfig, build, build_optimizers, validate_recipe
from ..errors import I2IError, RecipeError
from ..export import write_export
from ..models.base import frozen_modules
from ..optim import build_scheduler
from ..recipe import Recipe
from ..grid import save_grid
from .sampler import StepSampler

log = logging.getLogger("i2i")
CHECKPOINTS = "checkpoints"


class TrainContext:
    """What a model sees of the trainer: ``update`` a group, run nets ``frozen``, the current ``step``."""

    def __init__(self, accelerator: Accelerator, nets: dict, optimizers: dict, groups: dict,
                 grad_clip: float | None):
        self.accelerator, self.nets, self.optimizers = accelerator, nets, optimizers
        self.groups, self.grad_clip, self.step = groups, grad_clip, 0

    def update(self, group: str, loss: torch.Tensor) -> None:
        opt = self.optimizers[group]
        opt.zero_grad(set_to_none=True)
        self.accelerator.backward(loss)
        if self.grad_clip:
            params = [p for n in self.groups[group] for p in self.nets[n].parameters()]
            self.accelerator.clip_grad_norm_(params, self.grad_clip)
        opt.step()

    @contextlib.contextmanager
    def frozen(self, *names: str):
        # unwrapped modules: a DDP wrapper would wait for gradients these nets never get
        modules = tuple(self.accelerator.unwrap_model(self.nets[n]) for n in names)
        with frozen_modules(*modules) as mods:
            yield mods


def check_precision(mixed_precision: str, allow_slow: bool, device: torch.device, file: str) -> None:
    """bf16/fp16 autocast on a CPU without the instructions is hundreds of times slower: stop, and say so."""
    if mixed_precision == "no" or device.type != "cpu" or allow_slow:
        return
    dtype = torch.bfloat16 if mixed_precision == "bf16" else torch.float16
    slowdown = cpu_slowdown(dtype)
    if slowdown <= 3.0:
        return
    raise RecipeError(f"{mixed_precision} mixed precision on this CPU ran {slowdown:.0f}x slower than fp32 in a "
                      "quick matmul probe (no hardware support); set train.mixed_precision=no (or "
                      "train.allow_slow_precision=true to insist)", file=file, key="train.mixed_precision",
                      value=mixed_precision, choices=["no"])


def cpu_slowdown(dtype: torch.dtype, n: int = 256) -> float:
    """Time of an n x n matmul in ``dtype`` over fp32 on this CPU (flags lie: some CPUs emulate bf16)."""
    def best(x: torch.Tensor) -> float:
        x @ x
        times = []
        for _ in range(3):
            t = time.perf_counter()
            x @ x
            times.append(time.perf_counter() - t)
        return min(times)
    a = torch.randn(n, n)
    return best(a.to(dtype)) / max(best(a), 1e-9)


def latest_checkpoint(run_dir: Path) -> Path | None:
    pointer = run_dir / CHECKPOINTS / "latest"
    if pointer.is_file():
        target = run_dir / CHECKPOINTS / pointer.read_text().strip()
        if (target / "trainer_state.json").is_file():
            return target
    done = sorted(p for p in (run_dir / CHECKPOINTS).glob("step_*") if (p / "trainer_state.json").is_file())
    return done[-1] if done else None


def resolve_resume(resume: str | None, run_dir: Path) -> Path | None:
    if resume is None:
        return None
    if resume in ("latest", "auto"):
        found = latest_checkpoint(run_dir)
        if found is None and resume == "latest":
            raise I2IError(f"--resume latest: no checkpoint in {run_dir / CHECKPOINTS}")
        return found
    path = Path(resume)
    if (path / CHECKPOINTS).is_dir():
        path = latest_checkpoint(path) or path
    if not (path / "trainer_state.json").is_file():
        raise I2IError(f"--resume {resume}: not a checkpoint folder (no trainer_state.json)")
    return path


class Trainer:
    """Runs one recipe: ``Trainer(recipe, resume=...).fit()``."""

    def __init__(self, recipe: Recipe, *, resume: str | None = None):
        self.recipe = recipe
        self.resume = resume

    def fit(self) -> dict[str, Any]:
        recipe = self.recipe
        validate_recipe(recipe)  # before anything heavy happens
        cfg = TrainConfig(**recipe["train"])
        # tiny gradients turn into denormal floats, which x86 CPUs process 10-100x slower (measured: a 7x7 conv
        # backward 59 ms -> 2.6 ms, InstanceNorm 56 ms -> 0.1 ms); flushing them to zero loses nothing here
        torch.set_flush_denormal(True)
        run_dir = Path(cfg.output_dir or Path("runs") / recipe["name"])
        resume_from = resolve_resume(self.resume, run_dir)
        if resume_from is None and latest_checkpoint(run_dir) is not None:
            raise I2IError(f"{run_dir} already holds checkpoints of an earlier run; continue it with "
                           f"--resume latest, or start elsewhere with train.output_dir=<folder>")

        device = _planned_device(cfg.cpu)
        check_precision(cfg.mixed_precision, cfg.allow_slow_precision, device, recipe.source)
        trackers = ["tensorboard"] if cfg.tensorboard and _has_tensorboard() else None
        accelerator = Accelerator(
            # cpu=True on a machine without an accelerator: several launched processes then join over gloo
            mixed_precision=cfg.mixed_precision, cpu=device.type == "cpu", log_with=trackers,
            project_config=ProjectConfiguration(project_dir=str(run_dir), logging_dir=str(run_dir / "logs")))
        main = accelerator.is_main_process
        if accelerator.device.type == "cpu":
            # `accelerate launch` exports OMP_NUM_THREADS=1 unless told otherwise: share the cores out instead
            torch.set_num_threads(cfg.cpu_threads or max(1, len(os.sched_getaffinity(0)) // _local_processes()))
        if main:
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "recipe.yaml").write_text(recipe.to_yaml(), encoding="utf-8")
        set_seed(recipe["seed"])
        parts = build(recipe)
        model = parts.model
        for name in model.nets_required:  # each net separately: G and D are never one Module
            model.nets[name] = accelerator.prepare(parts.nets[name])
        optimizers = {g: accelerator.prepare(o) for g, o in build_optimizers(recipe, model).items()}
        schedulers = {g: build_scheduler(recipe.get("schedule"), o.optimizer, file=recipe.source)
                      for g, o in optimizers.items()}
        emas = {}
        if parts.ema is not None:
            avg = get_ema_multi_avg_fn(parts.ema.decay)
            emas = {n: AveragedModel(accelerator.unwrap_model(model.nets[n]), multi_avg_fn=avg, use_buffers=True)
                    for n in model.export}
        for obj in (*schedulers.values(), *emas.values(), *model.state_objects().values()):
            accelerator.register_for_checkpointing(obj)
        for loss in parts.losses.values():
            loss.to(accelerator.device)

        start = 0
        if resume_from is not None:
            accelerator.load_state(str(resume_from))
            start = json.loads((resume_from / "trainer_state.json").read_text())["step"]
            log.info("resumed from %s at step %d", resume_from, start)
        ctx = TrainContext(accelerator, model.nets, optimizers, model.optim_groups, cfg.grad_clip)
        loader = self._loader(parts, accelerator, start)
        fixed = self._fixed_batch(parts, accelerator.device)
        scorer = Scorer.for_recipe(recipe, parts, accelerator) if recipe.get("eval") else None
        if trackers and main:
            accelerator.init_trackers(recipe["name"])

        images_per_step = parts.loader.batch_size * accelerator.num_processes
        sums: dict[str, torch.Tensor] = {}
        count, tick, t0, summary = 0, time.perf_counter(), time.perf_counter(), {}
        bar = tqdm(total=cfg.max_steps, initial=start, disable=not main or None, dynamic_ncols=True,
                   desc=recipe["name"])
        batches = iter(loader)
        step = start
        while step < cfg.max_steps:
            batch = {k: v.to(accelerator.device, non_blocking=True) if torch.is_tensor(v) else v
                     for k, v in next(batches).items()}
            ctx.step = step
            for net in model.nets.values():
                net.train()
            with accelerator.autocast():
                logs = model.train_step(batch, ctx)
            for s in schedulers.values():
                s.step()
            if emas and step >= parts.ema.start_step:
                for n, ema in emas.items():
                    ema.update_parameters(accelerator.unwrap_model(model.nets[n]))
            for k, v in logs.items():
                sums[k] = sums[k] + v if k in sums else v.float()
            count += 1
            step += 1
            bar.update(1)
            if step % cfg.log_every == 0 or step == cfg.max_steps:
                summary = self._log(accelerator, run_dir, step, sums, count, schedulers,
                                    images_per_step * count / (time.perf_counter() - tick), bar)
                sums, count, tick = {}, 0, time.perf_counter()
            if main and (step % cfg.sample_every == 0 or step == cfg.max_steps):
                self._sample(model, fixed, run_dir / "samples" / f"step_{step:07d}.png", accelerator)
            if scorer and main and (step % scorer.every == 0 or step == cfg.max_steps):
                summary.update(scorer.score(model, emas, run_dir, step, accelerator))
            if step % cfg.checkpoint_every == 0 or step == cfg.max_steps:
                self._checkpoint(accelerator, run_dir, step, model, cfg.keep_checkpoints, parts)
        bar.close()
        in_sync = self._ranks_in_sync(accelerator, model) if accelerator.num_processes > 1 else None
        if main:
            self._export(accelerator, run_dir, step, model, emas, parts)
        accelerator.wait_for_everyone()
        accelerator.end_training()
        elapsed = time.perf_counter() - t0
        result = {"run_dir": str(run_dir), **{k: v for k, v in summary.items() if k != "images_per_s"},
                  "step": step, "steps_run": step - start, "seconds": round(elapsed, 2),
                  "images_per_s": round(images_per_step * (step - start) / max(elapsed, 1e-9), 2),
                  "processes": accelerator.num_processes}
        if in_sync is not None:
            result["rank_param_max_diff"] = in_sync
        AcceleratorState._reset_state()  # a later fit() in this process may choose another precision
        return result

    # ------------------------------------------------------------------ pieces of fit()
    def _loader(self, parts: Parts, accelerator: Accelerator, start: int) -> DataLoader:
        lc = parts.loader
        sampler = StepSampler(len(parts.dataset), lc.batch_size, seed=self.recipe["seed"],
                              rank=accelerator.process_index, world_size=accelerator.num_processes,
                              start_step=start)
        workers = lc.num_workers
        return DataLoader(
            parts.dataset, batch_size=lc.batch_size, sampler=sampler, num_workers=workers,
            pin_memory=lc.pin_memory if lc.pin_memory is not None else accelerator.device.type == "cuda",
            persistent_workers=lc.persistent_workers and workers > 0, drop_last=True,
            prefetch_factor=lc.prefetch_factor if workers > 0 else None,
            # a private generator: creating the iterator must not draw from the global RNG (resume equality)
            generator=torch.Generator().manual_seed(self.recipe["seed"]))

    def _fixed_batch(self, parts: Parts, device: torch.device) -> dict:
        n = min(parts.train.sample_count, len(parts.dataset))
        picks = [round(i * (len(parts.dataset) - 1) / max(1, n - 1)) for i in range(n)]
        items = [parts.dataset[(i, 0)] for i in picks]
        return {k: torch.stack([it[k] for it in items]).to(device) for k in items[0] if torch.is_tensor(items[0][k])}

    def _log(self, accelerator, run_dir, step, sums, count, schedulers, images_per_s, bar) -> dict:
        keys = sorted(sums)
        values = accelerator.reduce(torch.stack([sums[k] for k in keys]) / count, reduction="mean") if keys else []
        figures = {k: round(float(v), 5) for k, v in zip(keys, list(values))}
        for group, s in schedulers.items():
            figures[f"lr/{group}"] = s.get_last_lr()[0]
        figures["images_per_s"] = round(images_per_s, 2)
        if accelerator.is_main_process:
            accelerator.log(figures, step=step)
            with open(run_dir / "log.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps({"step": step, **figures}) + "\n")
            bar.set_postfix({k: f"{v:.3g}" for k, v in figures.items() if not k.startswith("lr/")}, refresh=False)
            if not sys.stderr.isatty():
                print(f"step {step}: " + " ".join(f"{k}={v:.4g}" for k, v in figures.items()), file=sys.stderr,
                      flush=True)
        return {"step": step, **figures}

    def _sample(self, model, fixed, path: Path, accelerator) -> None:
        """Main process only, so through the unwrapped nets: a DDP forward would wait for the other ranks."""
        wrapped = model.nets
        model.nets = {k: accelerator.unwrap_model(n) for k, n in wrapped.items()}
        modes = {k: n.training for k, n in model.nets.items()}
        try:
            for n in model.nets.values():
                n.eval()
            with torch.no_grad(), accelerator.autocast():
                rows = model.visuals(fixed)
        finally:
            for k, n in model.nets.items():
                n.train(modes[k])
            model.nets = wrapped
        save_grid(rows, path)

    def _checkpoint(self, accelerator, run_dir: Path, step: int, model, keep: int, parts: Parts) -> None:
        """save_state into a temporary folder, then rename and move the ``latest`` pointer (never half-written)."""
        folder = run_dir / CHECKPOINTS
        final, tmp = folder / f"step_{step:08d}", folder / f".tmp_step_{step:08d}"
        if accelerator.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
            folder.mkdir(parents=True, exist_ok=True)
        accelerator.wait_for_everyone()
        accelerator.save_state(str(tmp))
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            (tmp / "recipe.yaml").write_text(self.recipe.to_yaml(), encoding="utf-8")
            state = {"step": step, "nets": list(model.nets_required), "export": list(model.export),
                     "export_info": model.export_info(parts.dataset)}
            (tmp / "trainer_state.json").write_text(json.dumps(state), encoding="utf-8")
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
            pointer_tmp = folder / ".latest.tmp"
            pointer_tmp.write_text(final.name)
            os.replace(pointer_tmp, folder / "latest")
            for old in sorted(p for p in folder.glob("step_*") if p.is_dir())[:-keep]:
                shutil.rmtree(old, ignore_errors=True)
        accelerator.wait_for_everyone()

    @staticmethod
    def _ranks_in_sync(accelerator, model) -> float:
        """Largest difference, over ranks, of per-net parameter checksums (0.0 when DDP kept them identical)."""
        sums = torch.stack([torch.cat([p.detach().double().flatten() for p in net.parameters()]).abs().sum()
                            for net in model.nets.values()]).to(accelerator.device)
        every = accelerator.gather(sums.unsqueeze(0)).view(accelerator.num_processes, -1)
        return float((every - every[0]).abs().max())

    def _export(self, accelerator, run_dir: Path, step: int, model, emas: dict, parts: Parts) -> None:
        sds = {}
        for name in model.export:
            if name in emas:
                sds[name] = emas[name].module.state_dict()
            else:
                sds[name] = accelerator.unwrap_model(model.nets[name]).state_dict()
        meta = {**export_meta(self.recipe, model, step, bool(emas)), **model.export_info(parts.dataset)}
        write_export(self.recipe, sds, run_dir / "export", meta)


def export_meta(recipe: Recipe, model, step: int, ema: bool) -> dict:
    return {"model": recipe["model"]["type"], "step": step, "ema": ema, "directions": dict(model.directions),
            "name": recipe["name"]}


class Scorer:
    """Classifier-based scores of a conditional generator at ``eval.every`` steps (main process only)."""

    def __init__(self, config, classifier, real: torch.Tensor, real_labels: torch.Tensor):
        self.config, self.every, self.classifier, self.real = config, config.every, classifier, real
        self.real_labels = real_labels

    @classmethod
    def for_recipe(cls, recipe: Recipe, parts: Parts, accelerator) -> "Scorer":
        from ..build import EvalConfig
        from ..data.labeled import load_labeled_arrays
        from ..export import load_export
        from ..metrics.classifier import train_classifier
        config = EvalConfig(**recipe["eval"])
        data = config.data or recipe["data"]["root"]
        channels, size = parts.dataset.channels["real"], recipe["data"].get("size", 32)
        if accelerator.is_main_process and not (Path(config.classifier) / "meta.json").is_file():
            log.info("eval: training the evaluation classifier on %s into %s", data, config.classifier)
            figures = train_classifier(data, config.classifier, channels=channels, size=size,
                                       steps=config.classifier_steps)
            log.info("eval: classifier test accuracy %.4f", figures["test_accuracy"])
        accelerator.wait_for_everyone()
        classifier = load_export(config.classifier, device=accelerator.device).nets["classifier"]
        x, y, _ = load_labeled_arrays(data, config.split, channels, size)
        return cls(config, classifier, torch.as_tensor(x[: config.real_images]), torch.as_tensor(y[: config.real_images]))

    def score(self, model, emas: dict, run_dir: Path, step: int, accelerator) -> dict:
        from ..metrics.conditional import evaluate_generator
        g = emas["g"].module if "g" in emas else accelerator.unwrap_model(model.nets["g"])
        figures = evaluate_generator(g, self.classifier, self.real, real_labels=self.real_labels,
                                     per_class=self.config.per_class, device=accelerator.device)
        logged = {f"eval/{k}": round(v, 5) for k, v in figures.items() if isinstance(v, float)}
        accelerator.log(logged, step=step)
        with open(run_dir / "log.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps({"step": step, **logged}) + "\n")
        print(f"step {step}: " + " ".join(f"{k}={v:.4g}" for k, v in logged.items()), file=sys.stderr, flush=True)
        return logged


def _planned_device(force_cpu: bool) -> torch.device:
    """The device Accelerate will pick, known before it is created (so precision can be refused first)."""
    if not force_cpu and os.environ.get("ACCELERATE_USE_CPU", "").lower() not in ("1", "true", "yes"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
    return torch.device("cpu")


def _local_processes() -> int:
    return int(os.environ.get("LOCAL_WORLD_SIZE", "1"))


def _has_tensorboard() -> bool:
    try:
        import tensorboard  # noqa: F401
        return True
    except ImportError:
        return False
