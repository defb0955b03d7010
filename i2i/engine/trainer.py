"""One Trainer for every model: Accelerate setup, the step loop, logging, samples, checkpoints, export."""
from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import sys
import threading
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

from .. import precision
from ..allocator import keep_freed_memory
from ..build import (
    MonitorConfig,
    Parts,
    TrainConfig,
    build,
    build_optimizers,
    validate_recipe,
)
from ..errors import I2IError, RecipeError
from ..inference.export import write_export
from ..inference.grid import save_grid
from ..models.base import frozen_modules
from ..optim import build_scheduler
from ..recipe import Recipe
from .monitor import HealthMonitor, NonFiniteError, output_range
from .sampler import StepSampler
from ..evaluation.scoring import scorer_for

log = logging.getLogger("i2i")
CHECKPOINTS = "checkpoints"


class TrainingStopped(I2IError):
    """The run stopped on a fault (NaN/Inf) before saving anything from after it."""


class TrainingInterrupted(I2IError):
    """SIGINT/SIGTERM: the run wrote a checkpoint at the current step and stopped; exit 128 + signal."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + signum


class StopSignals:
    """Record SIGINT/SIGTERM instead of dying mid-step; a second SIGINT interrupts at once."""

    def __init__(self):
        self.received: int | None = None
        self._previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.received = signum
        print(f"\ni2i: {signal.Signals(signum).name} received: finishing this step and writing a checkpoint "
              "(SIGINT again to quit at once)", file=sys.stderr, flush=True)

    def name(self) -> str:
        return signal.Signals(self.received).name if self.received else ""

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}


class TrainContext:
    """What a model sees of the trainer: ``update`` a group, run nets ``frozen``, the current ``step``.

    Also applies the critic's weight clipping after each D update, measures gradient norms when ``measure`` is
    set, and with ``skip_nonfinite`` drops updates whose loss or gradients are NaN/Inf.
    """

    def __init__(self, accelerator: Accelerator, nets: dict, optimizers: dict, groups: dict,
                 grad_clip: float | None, *, schedule: dict | None = None, critic_groups: tuple = (),
                 constraints: tuple = (), skip_nonfinite: bool = False, inject_nan_step: int | None = None):
        self.accelerator, self.nets, self.optimizers = accelerator, nets, optimizers
        self.groups, self.grad_clip, self.step = groups, grad_clip, 0
        self.schedule = schedule or {}
        self.critic_groups, self.constraints = critic_groups, constraints
        self.skip_nonfinite, self.inject_nan_step = skip_nonfinite, inject_nan_step
        self.measure = False
        self.grad_norms: dict[str, torch.Tensor] = {}
        self.skipped = 0

    def _params(self, group: str) -> list[torch.Tensor]:
        return [p for n in self.groups[group] for p in self.nets[n].parameters()]

    def update(self, group: str | tuple[str, ...], loss: torch.Tensor) -> None:
        """One backward of ``loss``, then a step of each named group (several: a loss two nets minimise jointly,
        such as BicycleGAN's G and E, each with its own optimizer)."""
        groups = (group,) if isinstance(group, str) else tuple(group)
        if self.inject_nan_step is not None and self.step == self.inject_nan_step:
            loss = loss * float("nan")
        for g in groups:
            self.optimizers[g].zero_grad(set_to_none=True)
        self.accelerator.backward(loss)
        norms = {}
        for g in groups:
            norm = None
            if self.grad_clip:
                norm = self.accelerator.clip_grad_norm_(self._params(g), self.grad_clip)
            elif self.measure or self.skip_nonfinite:
                grads = [p.grad for p in self._params(g) if p.grad is not None]
                norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads))) if grads else None
            norms[g] = norm
        if self.skip_nonfinite and not bool(torch.isfinite(loss.detach()) & torch.stack(
                [torch.isfinite(n) for n in norms.values() if n is not None] or [torch.tensor(True)]).all()):
            for g in groups:  # a host sync per update: the price of monitor.on_nan: skip
                self.optimizers[g].zero_grad(set_to_none=True)
            self.skipped += 1
            return
        for g in groups:
            if norms[g] is not None and self.measure:
                self.grad_norms[g] = norms[g].detach()
            self.optimizers[g].step()
            if g in self.critic_groups and self.constraints:
                params = self._params(g)
                for c in self.constraints:
                    c.constrain(params)

    @contextlib.contextmanager
    def frozen(self, *names: str):
        # unwrapped modules: a DDP wrapper would wait for gradients these nets never get
        modules = tuple(self.accelerator.unwrap_model(self.nets[n]) for n in names)
        with frozen_modules(*modules) as mods:
            yield mods


def ignore_stop_signals(worker_id: int) -> None:
    """Data loader workers leave SIGINT/SIGTERM to the main process. A signal sent to the whole process group
    (Ctrl-C, `timeout`, a cluster scheduler cancelling the job) would otherwise kill the workers first, and the
    main process would die of "DataLoader worker killed" instead of finishing its step and checkpointing; the
    workers end when the main process shuts the loader down (or dies)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def speed_options(net: torch.nn.Module, cfg: TrainConfig) -> torch.nn.Module:
    """``train.channels_last`` and ``train.compile`` applied to one net (the benchmarks use this too)."""
    if cfg.channels_last:
        net = net.to(memory_format=torch.channels_last)
    if cfg.compile:
        net.compile()  # in place: parameter names, checkpoints and exports stay as without compile
    return net


def cpu_settings(cfg: TrainConfig, threads: int | None = None) -> None:
    """Training on the CPU: intra-op threads (``threads``, else ``train.cpu_threads``, else the cores shared out
    among the local processes: `accelerate launch` exports OMP_NUM_THREADS=1 unless told otherwise) and, with
    ``train.keep_freed_memory``, freed memory kept in the process (each step would otherwise fault its
    activations and gradients in afresh). The benchmarks use this too."""
    torch.set_num_threads(threads or cfg.cpu_threads or max(1, len(os.sched_getaffinity(0)) // _local_processes()))
    if cfg.keep_freed_memory:
        keep_freed_memory()


def to_device(batch: dict, device: torch.device, channels_last: bool = False) -> dict:
    out = {}
    for k, v in batch.items():
        if torch.is_tensor(v):
            v = v.to(device, non_blocking=True)
            if channels_last and v.dim() == 4:
                v = v.contiguous(memory_format=torch.channels_last)
        out[k] = v
    return out


def check_precision(mixed_precision: str, allow_slow: bool, device: torch.device, file: str) -> None:
    """bf16/fp16 autocast where the hardware lacks it is hundreds of times slower: stop, and say so. On a CPU that
    has fast bf16 and trains in fp32, say that bf16 is there to be had."""
    if device.type == "cpu" and mixed_precision in precision.FULL:
        if os.environ.get("RANK", "0") != "0":  # one hint per run, not one per process
            return
        slowdown = precision.cpu_slowdown(torch.bfloat16)
        if slowdown < precision.FAST:
            log.info("this CPU runs bf16 matmuls %.1fx faster than fp32: train.mixed_precision=bf16 may train "
                     "faster (autocast: convolutions in bf16, losses and weights in fp32)", 1 / slowdown)
        return
    reason = None if allow_slow else precision.unsupported(mixed_precision, device)
    if reason:
        raise RecipeError(f"{mixed_precision} mixed precision {reason}; set train.mixed_precision=no (or "
                          "train.allow_slow_precision=true to insist)", file=file, key="train.mixed_precision",
                          value=mixed_precision, choices=["no"])


EXTRA_STATE = "i2i_state.pt"


def load_extra_state(folder: Path, objects: dict, device: torch.device) -> None:
    """Restore schedulers, EMAs and pools with ``weights_only=True``: a checkpoint cannot run code through them."""
    path = folder / EXTRA_STATE
    if path.is_file():
        states = torch.load(path, map_location="cpu", weights_only=True)
    else:  # checkpoints written before i2i_state.pt: Accelerate's custom_checkpoint_<i>.pkl, in registration order
        states = {k: torch.load(folder / f"custom_checkpoint_{i}.pkl", map_location="cpu", weights_only=True)
                  for i, k in enumerate(objects) if (folder / f"custom_checkpoint_{i}.pkl").is_file()}
    missing = sorted(set(objects) - set(states))
    if missing:
        raise I2IError(f"{folder}: the checkpoint has no saved state for {', '.join(missing)}; it was written by a "
                       "different recipe (ema, model or schedule changed?)")
    for k, obj in objects.items():
        obj.load_state_dict(states[k])
        if hasattr(obj, "to"):
            obj.to(device)


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
            cpu_settings(cfg)
        if main:
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "recipe.yaml").write_text(recipe.to_yaml(), encoding="utf-8")
        set_seed(recipe["seed"])
        parts = build(recipe)
        model = parts.model
        for name in model.nets_required:  # each net separately: G and D are never one Module
            model.nets[name] = accelerator.prepare(speed_options(parts.nets[name], cfg))
        optimizers = {g: accelerator.prepare(o) for g, o in build_optimizers(recipe, model).items()}
        schedulers = {g: build_scheduler(recipe.get("schedule"), o.optimizer, file=recipe.source)
                      for g, o in optimizers.items()}
        emas = {}
        if parts.ema is not None:
            avg = get_ema_multi_avg_fn(parts.ema.decay)
            emas = {n: AveragedModel(accelerator.unwrap_model(model.nets[n]), multi_avg_fn=avg, use_buffers=True)
                    for n in model.export}
            for ema in emas.values():  # the copy is used for export and scoring only: no compiled forward
                ema.module._compiled_call_impl = None
        # schedulers, EMAs and image pools: saved by us as plain tensors and numbers, loaded with weights_only
        # (Accelerate would pickle them as custom objects and load them with weights_only=False)
        self._extra_state = {**{f"scheduler_{g}": s for g, s in schedulers.items()},
                             **{f"ema_{n}": e for n, e in emas.items()}, **model.state_objects()}
        for loss in parts.losses.values():
            loss.to(accelerator.device)

        start = 0
        if resume_from is not None:
            accelerator.load_state(str(resume_from))
            load_extra_state(resume_from, self._extra_state, accelerator.device)
            start = json.loads((resume_from / "trainer_state.json").read_text())["step"]
            log.info("resumed from %s at step %d", resume_from, start)
        mcfg = MonitorConfig(**(recipe.get("monitor") or {}))
        monitor = HealthMonitor(mcfg, recipe=recipe, log_every=cfg.log_every)
        ctx = TrainContext(accelerator, model.nets, optimizers, model.optim_groups, cfg.grad_clip,
                           schedule={"n_critic": cfg.n_critic, "g_steps": cfg.g_steps,
                                     "d_warmup_steps": cfg.d_warmup_steps},
                           critic_groups=model.critic_groups,
                           constraints=tuple(l for l in parts.losses.values() if getattr(l, "weight_clip", None)),
                           skip_nonfinite=mcfg.on_nan == "skip", inject_nan_step=mcfg.inject_nan_step)
        loader = self._loader(parts, accelerator, start)
        fixed = self._fixed_batch(parts, accelerator.device)
        health_batch = self._fixed_batch(parts, accelerator.device, mcfg.samples) if mcfg.enabled else None
        g_range = output_range(model.nets[model.export[0]]) if model.export else None
        scorer = scorer_for(model).for_recipe(recipe, parts, accelerator) if recipe.get("eval") else None
        if trackers and main:
            accelerator.init_trackers(recipe["name"])

        images_per_step = parts.loader.batch_size * accelerator.num_processes
        sums: dict[str, torch.Tensor] = {}
        count, tick, t0, summary = 0, time.perf_counter(), time.perf_counter(), {}
        bar = tqdm(total=cfg.max_steps, initial=start, disable=not main or None, dynamic_ncols=True,
                   desc=recipe["name"])
        batches = iter(loader)
        step = start
        signals = StopSignals()  # SIGINT/SIGTERM: finish the step, write a checkpoint, exit cleanly
        try:
            while step < cfg.max_steps:
                batch = to_device(next(batches), accelerator.device, cfg.channels_last)
                ctx.step = step
                ctx.measure = (step + 1) % cfg.log_every == 0 or step + 1 == cfg.max_steps
                monitor.observe_batch(step, batch, g_range)
                for net in model.nets.values():
                    net.train()
                for loss in parts.losses.values():
                    if hasattr(loss, "set_step"):
                        loss.set_step(step)
                with accelerator.autocast():
                    logs = model.train_step(batch, ctx)
                for name, loss in parts.losses.items():
                    if hasattr(loss, "pop_stats"):
                        prefix = "d/" if name == "adv" else f"d_{name}/"
                        logs.update({prefix + k: v for k, v in loss.pop_stats().items()})
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
                    extra = {f"grad/{g}": n for g, n in ctx.grad_norms.items()}
                    if monitor.config.on_nan == "skip":
                        extra["health/skipped_updates"] = torch.tensor(float(ctx.skipped))
                    local = {}  # main process only: merged after the cross-rank reduction
                    if health_batch is not None and main and monitor.wants_diversity(step):
                        with self._eval_nets(model, accelerator):
                            pair = model.health_samples(health_batch)
                        if pair is not None:
                            local = monitor.check_diversity(step, *pair)
                    summary = self._log(accelerator, run_dir, step, sums, count, schedulers,
                                        images_per_step * count / (time.perf_counter() - tick), bar, extra, local)
                    sums, count, tick = {}, 0, time.perf_counter()
                    ctx.grad_norms = {}
                    try:
                        monitor.check(step, summary)
                    except NonFiniteError as exc:
                        self._stop_on_fault(accelerator, run_dir, monitor, step, str(exc), bar)
                    if main:
                        self._log_warnings(run_dir, monitor.unlogged())
                if main and (step % cfg.sample_every == 0 or step == cfg.max_steps):
                    self._sample(model, fixed, run_dir / "samples" / f"step_{step:07d}.png", accelerator)
                if scorer and main and (step % scorer.every == 0 or step == cfg.max_steps):
                    summary.update(scorer.score(model, emas, run_dir, step, accelerator))
                if step % cfg.checkpoint_every == 0 or step == cfg.max_steps:
                    bad = self._nonfinite(model, sums)
                    if bad:  # never let a checkpoint of broken weights become "latest"
                        self._stop_on_fault(accelerator, run_dir, monitor, step, f"non-finite values in {bad}", bar)
                    self._safe_checkpoint(accelerator, run_dir, step, model, cfg, parts, bar)
                # one process checks its flag each step; several agree at log steps (every rank takes part)
                if (signals.received is not None if accelerator.num_processes == 1 else
                        step % cfg.log_every == 0 and self._any_rank(accelerator, signals.received is not None)):
                    self._stop_on_signal(accelerator, run_dir, step, model, cfg, parts, signals, bar)
        finally:
            signals.restore()
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
        result["warnings"] = [w["warning"] for w in monitor.warnings]
        if hasattr(parts.dataset, "skip_summary"):  # unusable image files left out (data.on_error: skip)
            result["data"] = parts.dataset.skip_summary(log_summary=main)
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
            generator=torch.Generator().manual_seed(self.recipe["seed"]),
            worker_init_fn=ignore_stop_signals if workers > 0 else None)

    def _fixed_batch(self, parts: Parts, device: torch.device, count: int | None = None) -> dict:
        n = min(count or parts.train.sample_count, len(parts.dataset))
        picks = [round(i * (len(parts.dataset) - 1) / max(1, n - 1)) for i in range(n)]
        items = [parts.dataset[(i, 0)] for i in picks]
        return {k: torch.stack([it[k] for it in items]).to(device) for k in items[0] if torch.is_tensor(items[0][k])}

    def _log(self, accelerator, run_dir, step, sums, count, schedulers, images_per_s, bar, extra=None,
             local=None) -> dict:
        means = {k: v / count for k, v in sums.items()}
        means.update({k: v.to(accelerator.device).float() for k, v in (extra or {}).items()})
        keys = sorted(means)
        values = accelerator.reduce(torch.stack([means[k] for k in keys]), reduction="mean") if keys else []
        figures = {k: round(float(v), 5) for k, v in zip(keys, list(values))}
        figures.update(local or {})
        figures = dict(sorted(figures.items()))
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

    @staticmethod
    @contextlib.contextmanager
    def _eval_nets(model, accelerator):
        """Main process only, so through the unwrapped nets (a DDP forward would wait for the other ranks);
        eval mode, no gradients, the recipe's autocast."""
        wrapped = model.nets
        model.nets = {k: accelerator.unwrap_model(n) for k, n in wrapped.items()}
        modes = {k: n.training for k, n in model.nets.items()}
        try:
            for n in model.nets.values():
                n.eval()
            with torch.no_grad(), accelerator.autocast():
                yield
        finally:
            for k, n in model.nets.items():
                n.train(modes[k])
            model.nets = wrapped

    def _sample(self, model, fixed, path: Path, accelerator) -> None:
        with self._eval_nets(model, accelerator):
            rows = model.visuals(fixed)
        save_grid(rows, path)

    @staticmethod
    def _nonfinite(model, sums: dict) -> str:
        """Names of non-finite running losses or parameters (a host sync: checkpoint time only)."""
        bad = [k for k, v in sums.items() if not bool(torch.isfinite(v).all())]
        for name, net in model.nets.items():
            if not all(bool(torch.isfinite(p).all()) for p in net.parameters()):
                bad.append(f"nets.{name} parameters")
        return ", ".join(bad)

    def _stop_on_fault(self, accelerator, run_dir: Path, monitor, step: int, detail: str, bar) -> None:
        bar.close()
        last = latest_checkpoint(run_dir)
        message = monitor.nan_message(step, detail, str(last) if last else None)
        if accelerator.is_main_process:
            monitor.warn("nonfinite", step, message, echo=False)  # the CLI prints the error itself
            self._log_warnings(run_dir, monitor.unlogged())
        accelerator.end_training()
        AcceleratorState._reset_state()
        raise TrainingStopped(message)

    def _safe_checkpoint(self, accelerator, run_dir: Path, step: int, model, cfg: TrainConfig, parts: Parts,
                         bar) -> None:
        """A checkpoint, or (disk full, permissions...) a clean stop that keeps the last good one as ``latest``."""
        try:
            self._checkpoint(accelerator, run_dir, step, model, cfg.keep_checkpoints, parts)
        except OSError as exc:
            shutil.rmtree(run_dir / CHECKPOINTS / f".tmp_step_{step:08d}", ignore_errors=True)
            bar.close()
            last = latest_checkpoint(run_dir)
            keep = f"the last good checkpoint is {last}" if last else "no earlier checkpoint exists"
            accelerator.end_training()
            AcceleratorState._reset_state()
            raise TrainingStopped(f"could not write the checkpoint of step {step} ({exc.strerror or exc}: "
                                  f"{exc.filename or run_dir}); {keep}. Free space (or fix the folder), then "
                                  "continue with --resume latest") from exc

    def _stop_on_signal(self, accelerator, run_dir, step, model, cfg, parts, signals, bar) -> None:
        name = signals.name() or "a stop signal on another process"
        if latest_checkpoint(run_dir) is None or latest_checkpoint(run_dir).name != f"step_{step:08d}":
            self._safe_checkpoint(accelerator, run_dir, step, model, cfg, parts, bar)
        bar.close()
        accelerator.end_training()
        AcceleratorState._reset_state()
        raise TrainingInterrupted(f"{name} at step {step}: checkpoint {run_dir / CHECKPOINTS / f'step_{step:08d}'} "
                                  "written; continue with --resume latest", signum=signals.received or signal.SIGTERM)

    @staticmethod
    def _any_rank(accelerator, flag: bool) -> bool:
        if accelerator.num_processes == 1:
            return flag
        return bool(accelerator.reduce(torch.tensor([float(flag)], device=accelerator.device), "sum").item() > 0)

    @staticmethod
    def _log_warnings(run_dir: Path, warnings: list[dict]) -> None:
        if warnings:
            with open(run_dir / "log.jsonl", "a", encoding="utf-8") as f:
                f.writelines(json.dumps(w) + "\n" for w in warnings)

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
            torch.save({k: v.state_dict() for k, v in self._extra_state.items()}, tmp / EXTRA_STATE)
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
