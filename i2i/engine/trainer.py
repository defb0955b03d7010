"""One Trainer for every model: Accelerate setup, the step loop, logging, samples, checkpoints, export."""
from __future__ import annotations

import contextlib
import json
import logging
import math
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import ProjectConfiguration, set_seed
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ..build import Parts, build, build_optimizers, check_run_paths, validate_recipe
from ..errors import I2IError, RecipeError
from ..inference.export import write_export
from ..inference.grid import save_grid
from ..optim import build_scheduler
from ..recipe import Recipe
from ..recipe.schema import check_trackers
from . import checkpoint
from . import trackers as tracking
from .context import TrainContext
from .hardware import check_precision, cpu_settings, planned_device, speed_options, to_device
from .monitor import HealthMonitor, NonFiniteError, output_range
from .report import bar_figures, end_summary, progress
from .report_page import write_report
from .sampler import StepSampler
from .stops import (
    StopSignals,
    TrainingInterrupted,
    TrainingStopped,
    ignore_stop_signals,
    is_write_failure,
    write_failure_message,
)

log = logging.getLogger("i2i")
BF16_HINT_MARKER = ".i2i_bf16_hint"  # in the run folder: the bf16 hint was given there once
REPORT_SHARE = 0.05  # report.html refreshes at sample intervals take at most about this share of the run's time
REPORT_MIN_INTERVAL = 10.0  # ... and come at most this often (seconds): the page is read by people


class Trainer:
    """Runs one recipe: ``Trainer(recipe, resume=...).fit()``.

    The recipe is validated once, here. ``prepare()`` sets up Accelerate and builds and prepares every part without
    writing a file; ``step(batch)`` is one training step, the one ``fit`` runs (the benchmarks time it too).
    """

    def __init__(self, recipe: Recipe, *, resume: str | None = None):
        self.recipe, self.resume = recipe, resume
        self.resolved = validate_recipe(recipe)  # before anything heavy happens
        self.cfg = self.resolved.train
        self.run_dir = Path(self.cfg.output_dir or Path("runs") / recipe["name"])
        self.step_index = 0
        self.stat_keys: set[str] = set()  # figures that are statistics, not losses (the losses' pop_stats)
        self.summary_lines: list[str] = []  # the end-of-run summary for people; the CLI prints it on stderr
        self.best: dict | None = None  # train.keep_best: {metric, mode, value, step} of checkpoints/best
        self._report_done, self._report_cost, self._quiet = 0.0, 0.0, set()  # page refreshes; warnings given once

    # ------------------------------------------------------------------ set-up
    def _accelerate(self, *, trackers: list[str] | None = None, threads: int | None = None) -> None:
        cfg = self.cfg
        # tiny gradients turn into denormal floats, which x86 CPUs process 10-100x slower; flushing them to zero
        # loses nothing here (docs/architecture.md, "CPU performance note")
        torch.set_flush_denormal(True)
        device = planned_device(cfg.cpu)
        marker = self.run_dir / BF16_HINT_MARKER
        self.bf16_hinted = check_precision(cfg.mixed_precision, cfg.allow_slow_precision, device, self.recipe.source,
                                           hint=not marker.exists())
        self.accelerator = Accelerator(
            # cpu=True on a machine without an accelerator: several launched processes then join over gloo
            mixed_precision=cfg.mixed_precision, cpu=device.type == "cpu", log_with=trackers,
            project_config=ProjectConfiguration(project_dir=str(self.run_dir),
                                                logging_dir=str(self.run_dir / "logs")))
        if self.accelerator.device.type == "cpu":
            cpu_settings(cfg, threads)

    def _build(self, parts: Parts | None = None) -> None:
        """Seed, build (unless ``parts`` are given), prepare each net and optimizer, schedulers, EMA, context."""
        recipe, cfg, accelerator = self.recipe, self.cfg, self.accelerator
        set_seed(recipe["seed"])
        self.parts = parts or build(recipe, self.resolved)
        self.model = model = self.parts.model
        # each net separately (G and D are never one Module), the optional ones the recipe has too (BicycleGAN's d2:
        # else never checkpointed, DDP-synced or moved); this order numbers the checkpoint's model_<i> files
        self.net_order = (*model.nets_required, *(n for n in model.nets_optional if n in model.nets))
        for name in self.net_order:
            model.nets[name] = accelerator.prepare(speed_options(self.parts.nets[name], cfg))
        self.optimizers = {g: accelerator.prepare(o) for g, o in build_optimizers(recipe, model).items()}
        self.schedulers = {g: build_scheduler(recipe.get("schedule"), o.optimizer, file=recipe.source)
                           for g, o in self.optimizers.items()}
        self.emas = {}
        if self.parts.ema is not None:
            avg = get_ema_multi_avg_fn(self.parts.ema.decay)
            self.emas = {n: AveragedModel(accelerator.unwrap_model(model.nets[n]), multi_avg_fn=avg,
                                          use_buffers=True) for n in model.export}
            for ema in self.emas.values():  # the copy is used for export and scoring only: no compiled forward
                ema.module._compiled_call_impl = None
        # schedulers, EMAs and image pools: saved by us as plain tensors and numbers, loaded with weights_only
        # (Accelerate would pickle them as custom objects and load them with weights_only=False)
        self.extra_state = {**{f"scheduler_{g}": s for g, s in self.schedulers.items()},
                            **{f"ema_{n}": e for n, e in self.emas.items()}, **model.state_objects()}
        for loss in self.parts.losses.values():
            loss.to(accelerator.device)
        mcfg = self.resolved.monitor
        self.monitor = HealthMonitor(mcfg, recipe=recipe, log_every=cfg.log_every)
        self.ctx = TrainContext(
            accelerator, model.nets, self.optimizers, model.optim_groups, cfg.grad_clip, scaler=accelerator.scaler,
            schedule={"n_critic": cfg.n_critic, "g_steps": cfg.g_steps, "d_warmup_steps": cfg.d_warmup_steps},
            critic_groups=model.critic_groups,
            constraints=tuple(loss for loss in self.parts.losses.values() if getattr(loss, "weight_clip", None)),
            skip_nonfinite=mcfg.on_nan == "skip", inject_nan_step=mcfg.inject_nan_step)
        self.g_range = output_range(model.nets[model.export[0]]) if model.export else None

    def prepare(self, parts: Parts | None = None, *, threads: int | None = None) -> Trainer:
        """Accelerate, seed and every part, ready for ``step``; writes nothing (the benchmarks start here)."""
        self._accelerate(threads=threads)
        self._build(parts)
        return self

    def _resume_from(self, folder: Path, changes: dict | None = None) -> None:
        """Load a checkpoint, then apply the recipe keys that changed since it (``checkpoint.RESUMABLE_KEYS``;
        the learning rates are the ones its optimizer and scheduler state would otherwise bring back)."""
        self.accelerator.load_state(str(folder))
        checkpoint.load_extra_state(folder, self.extra_state, self.accelerator.device)
        self.step_index = checkpoint.read_trainer_state(folder)["step"]
        log.info("resumed from %s at step %d", folder, self.step_index)
        for key, (_, new) in (changes or {}).items():
            group = key.split(".")[1] if key.startswith("optim.") and key.endswith(".lr") else None
            if group in self.optimizers and isinstance(new, (int, float)):
                checkpoint.set_learning_rate(self.optimizers[group], self.schedulers[group], float(new))
        if changes:
            log.info("resume: the recipe changed since the checkpoint; applied: %s",
                     checkpoint.describe_changes(changes))

    # ------------------------------------------------------------------ one step
    def step(self, batch: dict) -> dict[str, torch.Tensor]:
        """One training step on a batch from the loader: the model's update, the losses' statistics, the
        schedulers and the EMA. Returns the step's figures as (device) tensors; advances ``step_index``."""
        step, cfg, model, losses = self.step_index, self.cfg, self.model, self.parts.losses
        batch = to_device(batch, self.accelerator.device, cfg.channels_last)
        self.ctx.step = step
        self.ctx.measure = (step + 1) % cfg.log_every == 0 or step + 1 == cfg.max_steps
        self.monitor.observe_batch(step, batch, self.g_range)
        for net in model.nets.values():
            net.train()
        for loss in losses.values():
            if hasattr(loss, "set_step"):
                loss.set_step(step)
        with self.accelerator.autocast():
            logs = model.train_step(batch, self.ctx)
        self.ctx.end_step()  # fp16: the loss scaler's one update per step, after every group has stepped
        for name, loss in losses.items():
            if hasattr(loss, "pop_stats"):
                prefix = "d/" if name == "adv" else f"d_{name}/"
                stats = {prefix + k: v for k, v in loss.pop_stats().items()}
                self.stat_keys.update(stats)
                logs.update(stats)
        for s in self.schedulers.values():
            s.step()
        if self.emas and step >= self.parts.ema.start_step:
            for n, ema in self.emas.items():
                ema.update_parameters(self.accelerator.unwrap_model(model.nets[n]))
        self.step_index = step + 1
        return logs

    # ------------------------------------------------------------------ the run
    def fit(self) -> dict[str, Any]:
        cfg, run_dir = self.cfg, self.run_dir
        check_run_paths(self.recipe)  # the run folder can be made there; the data is there, in its layout
        resume_from = checkpoint.resolve_resume(self.resume, run_dir)
        if resume_from is None and checkpoint.latest_checkpoint(run_dir) is not None:
            raise I2IError(f"{run_dir} already holds checkpoints of an earlier run; continue it with "
                           f"--resume latest, or start elsewhere with train.output_dir=<folder>")
        # a resumed recipe may change only what can change (checkpoint.RESUMABLE_KEYS): refused before any write
        changes = checkpoint.resume_changes(resume_from, self.recipe) if resume_from is not None else {}
        wanted = tracking.available(check_trackers(cfg, self.recipe.source), explicit=cfg.trackers is not None)
        trackers = list(wanted) or None
        self._accelerate(trackers=trackers)
        accelerator = self.accelerator
        main = accelerator.is_main_process
        self._build()  # the data set is read (and checked) before the run folder gets its recipe.yaml
        if main:
            with self._writing(str(run_dir / "recipe.yaml")):
                run_dir.mkdir(parents=True, exist_ok=True)
                (run_dir / "recipe.yaml").write_text(self.recipe.to_yaml(), encoding="utf-8")
                if self.bf16_hinted:  # the hint is given once per run folder, not on every resume
                    (run_dir / BF16_HINT_MARKER).write_text("the bf16 hint was logged for this run folder\n")
        if resume_from is not None:
            self._resume_from(resume_from, changes)
            self.best = self._best_so_far()
        start = self.step_index
        loader = self._loader(start)
        fixed = self._fixed_batch(cfg.sample_count)
        mcfg = self.resolved.monitor
        health_batch = self._fixed_batch(mcfg.samples) if mcfg.enabled else None
        scorer = self.parts.scorer.for_recipe(self.recipe, self.parts, accelerator) if self.parts.scorer else None
        if trackers and main:
            try:
                accelerator.init_trackers(self.recipe["name"], config=tracking.flat_config(self.recipe),
                                          init_kwargs=tracking.init_kwargs(wanted, run_dir))
            except Exception as exc:  # noqa: BLE001  the tracker's own settings (a server, a store, a login)
                self._close()
                raise tracking.start_error(list(wanted), exc, self.recipe.source) from exc
        batches = iter(loader)
        if scorer and start == 0 and main:
            self._score_untrained(scorer, run_dir)

        images_per_step = self.parts.loader.batch_size * accelerator.num_processes
        sums: dict[str, torch.Tensor] = {}
        count, tick, t0, summary = 0, time.perf_counter(), time.perf_counter(), {}
        self._start, self._t0, self._images_per_step = start, t0, images_per_step  # ETA, interrupt figures
        self._report_done = t0
        self.bar = tqdm(total=cfg.max_steps, initial=start, disable=not main or None, dynamic_ncols=True,
                        desc=self.recipe["name"])
        signals = StopSignals()  # SIGINT/SIGTERM: finish the step, write a checkpoint, exit cleanly
        try:
            while self.step_index < cfg.max_steps:
                for k, v in self.step(next(batches)).items():
                    sums[k] = sums[k] + v if k in sums else v.float()
                count += 1
                step = self.step_index
                self.bar.update(1)
                if step % cfg.log_every == 0 or step == cfg.max_steps:
                    summary = self._log(sums, count, images_per_step * count / (time.perf_counter() - tick),
                                        health_batch)
                    sums, count, tick = {}, 0, time.perf_counter()
                if main and (step % cfg.sample_every == 0 or step == cfg.max_steps):
                    self._sample(fixed, run_dir / "samples" / f"step_{step:08d}.png")  # as checkpoints' step_N
                if scorer and (step % scorer.every == 0 or step == cfg.max_steps):
                    scores = scorer.score(self.model, self.emas, run_dir, step, accelerator) if main else {}
                    summary.update(scores)
                    if cfg.keep_best:  # every rank: a better figure means a checkpoint (checkpoints/best)
                        self._keep_best(scores, step)
                if step % cfg.checkpoint_every == 0 or step == cfg.max_steps:
                    bad = self._nonfinite(sums)
                    if bad:  # never let a checkpoint of broken weights become "latest"
                        self._stop_on_fault(f"non-finite values in {bad}")
                    self._safe_checkpoint()
                if main and step % cfg.sample_every == 0 and step != cfg.max_steps:
                    self._refresh_report()  # after the step's eval and checkpoint, so the page shows them
                # one process checks its flag each step; several agree at log steps (every rank takes part)
                if (signals.received is not None if accelerator.num_processes == 1 else
                        step % cfg.log_every == 0 and self._any_rank(signals.received is not None)):
                    self._stop_on_signal(signals)
        finally:
            signals.restore()
        self.bar.close()
        return self._finish(summary, start, images_per_step, time.perf_counter() - t0)

    def _score_untrained(self, scorer, run_dir: Path) -> None:
        """The eval once before the first step, so that every eval curve starts at the untrained nets' figure (the
        baseline a run is judged against). The random states are put back: evaluating changes nothing trained."""
        states = (random.getstate(), np.random.get_state())
        devices = [self.accelerator.device] if self.accelerator.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            scorer.score(self.model, self.emas, run_dir, 0, self.accelerator)
        random.setstate(states[0])
        np.random.set_state(states[1])

    def _finish(self, summary: dict, start: int, images_per_step: int, elapsed: float) -> dict[str, Any]:
        """Export, close Accelerate, and the run's figures (the CLI prints them as one JSON line)."""
        accelerator, step = self.accelerator, self.step_index
        in_sync = self._ranks_in_sync() if accelerator.num_processes > 1 else None
        if accelerator.is_main_process:
            with self._writing(f"the export {self.run_dir / 'export'}", self.run_dir / "export"):
                self._export()
        accelerator.wait_for_everyone()
        accelerator.end_training()
        result = {"run_dir": str(self.run_dir), **{k: v for k, v in summary.items() if k != "images_per_s"},
                  "step": step, "steps_run": step - start, "seconds": round(elapsed, 2),
                  "images_per_s": round(images_per_step * (step - start) / max(elapsed, 1e-9), 2),
                  "processes": accelerator.num_processes}
        if in_sync is not None:
            result["rank_param_max_diff"] = in_sync
        if self.cfg.keep_best and accelerator.is_main_process:
            result["best"] = self.best
        result["warnings"] = [w["warning"] for w in self.monitor.warnings]
        if hasattr(self.parts.dataset, "skip_summary"):  # unusable image files left out (data.on_error: skip)
            result["data"] = self.parts.dataset.skip_summary(log_summary=accelerator.is_main_process)
        if accelerator.is_main_process:
            self._refresh_report(final=True)
            self.summary_lines = end_summary(result, self.recipe, self.model)
        AcceleratorState._reset_state()  # a later fit() in this process may choose another precision
        return result

    # ------------------------------------------------------------------ pieces of fit()
    def _loader(self, start: int) -> DataLoader:
        lc, accelerator, dataset = self.parts.loader, self.accelerator, self.parts.dataset
        sampler = StepSampler(len(dataset), lc.batch_size, seed=self.recipe["seed"],
                              rank=accelerator.process_index, world_size=accelerator.num_processes,
                              start_step=start)
        workers = lc.num_workers
        return DataLoader(
            dataset, batch_size=lc.batch_size, sampler=sampler, num_workers=workers,
            pin_memory=lc.pin_memory if lc.pin_memory is not None else accelerator.device.type == "cuda",
            persistent_workers=lc.persistent_workers and workers > 0, drop_last=True,
            prefetch_factor=lc.prefetch_factor if workers > 0 else None,
            # a private generator: creating the iterator must not draw from the global RNG (resume equality)
            generator=torch.Generator().manual_seed(self.recipe["seed"]),
            worker_init_fn=ignore_stop_signals if workers > 0 else None)

    def _fixed_batch(self, count: int) -> dict:
        dataset = self.parts.dataset
        n = min(count, len(dataset))
        picks = [round(i * (len(dataset) - 1) / max(1, n - 1)) for i in range(n)]
        items = [dataset[(i, 0)] for i in picks]
        return {k: torch.stack([it[k] for it in items]).to(self.accelerator.device)
                for k in items[0] if torch.is_tensor(items[0][k])}

    def _log(self, sums: dict, count: int, images_per_s: float, health_batch: dict | None) -> dict:
        """Means over the interval, reduced over ranks, plus gradient norms, health figures and learning rates:
        to the trackers, log.jsonl and the progress bar; then the monitor's verdicts."""
        accelerator, step, ctx = self.accelerator, self.step_index, self.ctx
        extra = {f"grad/{g}": n for g, n in ctx.grad_norms.items()}
        if self.monitor.config.on_nan == "skip":
            extra["health/skipped_updates"] = torch.tensor(float(ctx.skipped))
        local = {}  # main process only: merged after the cross-rank reduction
        if health_batch is not None and accelerator.is_main_process and self.monitor.wants_diversity(step):
            with self._eval_nets():
                pair = self.model.health_samples(health_batch)
            if pair is not None:
                local = self.monitor.check_diversity(step, *pair)
        means = {k: v / count for k, v in sums.items()}
        means.update({k: v.to(accelerator.device).float() for k, v in extra.items()})
        keys = sorted(means)
        values = accelerator.reduce(torch.stack([means[k] for k in keys]), reduction="mean") if keys else []
        figures = {k: round(float(v), 5) for k, v in zip(keys, list(values))}
        figures.update(local)
        figures = dict(sorted(figures.items()))
        for group, s in self.schedulers.items():
            figures[f"lr/{group}"] = s.get_last_lr()[0]
        figures["images_per_s"] = round(images_per_s, 2)
        if accelerator.is_main_process:
            accelerator.log(figures, step=step)
            self._append_log([{"step": step, **figures}])
            self.bar.set_postfix(bar_figures(figures, self.stat_keys), refresh=False)
            if not sys.stderr.isatty():  # a log file: percent done and time left on each line, instead of the bar
                where = progress(step, self.cfg.max_steps, self._start, time.perf_counter() - self._t0)
                print(f"step {where}: " + " ".join(f"{k}={v:.4g}" for k, v in figures.items()), file=sys.stderr,
                      flush=True)
        ctx.grad_norms = {}
        summary = {"step": step, **figures}
        try:
            self.monitor.check(step, summary)
        except NonFiniteError as exc:
            self._stop_on_fault(str(exc))
        if accelerator.is_main_process:
            self._log_warnings(self.monitor.unlogged())
        return summary

    @contextlib.contextmanager
    def _eval_nets(self):
        """Main process only, so through the unwrapped nets (a DDP forward would wait for the other ranks);
        eval mode, no gradients, the recipe's autocast."""
        model, accelerator = self.model, self.accelerator
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

    def _sample(self, fixed: dict, path: Path) -> None:
        with self._eval_nets():
            rows = self.model.visuals(fixed)
        with self._writing(f"the sample {path.name}", path):
            save_grid(rows, path)
        if self.accelerator.trackers:  # the grid to the trackers that take images (train.trackers)
            try:
                tracking.log_grid(self.accelerator, path, self.step_index)
            except Exception as exc:  # noqa: BLE001  a tracker's trouble (its service, its version) ends no run
                self._warn_once("tracker_images", "the sample grid did not reach a tracker: %s", exc)

    def _warn_once(self, kind: str, message: str, *args: Any) -> None:
        if kind not in self._quiet:
            self._quiet.add(kind)
            log.warning(message, *args)

    def _refresh_report(self, *, final: bool = False) -> None:
        """report.html and curves.png (``train.report``): at the end always; at sample intervals only while the
        refreshes take at most REPORT_SHARE of the time since the last one (drawing takes a second or two), and
        REPORT_MIN_INTERVAL seconds after the run started or the page was last written."""
        if not self.cfg.report:
            return
        began = time.perf_counter()
        wait = max(REPORT_MIN_INTERVAL, self._report_cost * (1 / REPORT_SHARE - 1))
        if not final and began - self._report_done < wait:
            return
        try:
            write_report(self.run_dir)
        except Exception as exc:  # noqa: BLE001  the page is a view of files on disk: no reason to stop training
            self._warn_once("report", "report.html not refreshed: %s", exc)
        self._report_done = time.perf_counter()
        self._report_cost = self._report_done - began

    # ------------------------------------------------------------------ train.keep_best
    def _best_so_far(self) -> dict | None:
        """On resume: the record of checkpoints/best, if it was kept for the metric and mode the recipe names."""
        keep, record = self.cfg.keep_best, checkpoint.read_best(self.run_dir)
        if not keep or record is None:
            return None
        if (record["metric"], record["mode"]) != (keep["metric"], keep["mode"]):
            log.info("train.keep_best is now %s (%s); checkpoints/best was kept for %s (%s): the next eval starts a "
                     "new best", keep["metric"], keep["mode"], record["metric"], record["mode"])
            return None
        log.info("keep_best: the best so far is %s = %g at step %d (checkpoints/best)", record["metric"],
                 record["value"], record["step"])
        return record

    def _keep_best(self, scores: dict, step: int) -> None:
        """After an eval: when ``train.keep_best``'s figure beat the best so far, write checkpoints/best (every
        rank) and export_best/ (main). The main process decides; the other ranks learn it in one reduction."""
        metric, mode = self.cfg.keep_best["metric"], self.cfg.keep_best["mode"]
        main = self.accelerator.is_main_process
        value = scores.get(metric)
        missing = main and (isinstance(value, bool) or not isinstance(value, (int, float)))
        if self._any_rank(missing):
            last = checkpoint.latest_checkpoint(self.run_dir)
            if last is None or last.name != checkpoint.step_folder(self.run_dir, step).name:
                self._safe_checkpoint()  # nothing trained is lost: fix the recipe and --resume latest
            self._close()
            raise RecipeError(
                f"the eval at step {step} logged no {metric}, so the best checkpoint cannot be chosen; the eval "
                f"logged {', '.join(sorted(scores)) or 'nothing'}. The checkpoint of step {step} is written: set "
                "train.keep_best.metric to one of those and continue with --resume latest",
                file=self.recipe.source, key="train.keep_best.metric", value=metric)
        better = main and math.isfinite(value) and (
            self.best is None or (value < self.best["value"] if mode == "min" else value > self.best["value"]))
        if not self._any_rank(better):
            return
        record = {"metric": metric, "mode": mode, "value": float(value) if main else None, "step": step}
        with self._writing(f"the best checkpoint (step {step})", checkpoint.best_folder(self.run_dir)):
            checkpoint.save_best(self.accelerator, self.run_dir, step, recipe=self.recipe,
                                 extra_state=self.extra_state, trainer_state={**self._trainer_state(),
                                                                              "best": record})
        if main:
            with self._writing(f"the export {self.run_dir / 'export_best'}", self.run_dir / "export_best"):
                self._export(self.run_dir / "export_best", best=record)
            log.info("keep_best: %s = %g at step %d, the best so far: checkpoints/best and export_best/", metric,
                     value, step)
        self.best = record

    @contextlib.contextmanager
    def _writing(self, what: str, where: Path | None = None):
        """A failed write inside the block (a full disk, permissions, however the library reports it) stops the
        run cleanly, naming the file and the disk, and keeps the last good checkpoint as ``latest``."""
        try:
            yield
        except Exception as exc:  # noqa: BLE001  only write failures are handled; anything else goes on up
            if not is_write_failure(exc):
                raise
            last = checkpoint.latest_checkpoint(self.run_dir)
            keep = f"the last good checkpoint is {last}" if last else "no earlier checkpoint exists"
            self._close()
            raise TrainingStopped(f"{write_failure_message(what, exc, where or self.run_dir)}; {keep}. Free space "
                                  "(or fix the folder), then continue with --resume latest") from exc

    def _append_log(self, entries: list[dict]) -> None:
        path = self.run_dir / "log.jsonl"
        with self._writing(str(path), path), open(path, "a", encoding="utf-8") as f:
            f.writelines(json.dumps(e) + "\n" for e in entries)

    def _nonfinite(self, sums: dict) -> str:
        """Names of non-finite running losses or parameters (a host sync: checkpoint time only)."""
        bad = [k for k, v in sums.items() if not bool(torch.isfinite(v).all())]
        for name, net in self.model.nets.items():
            if not all(bool(torch.isfinite(p).all()) for p in net.parameters()):
                bad.append(f"nets.{name} parameters")
        return ", ".join(bad)

    def _close(self) -> None:
        if getattr(self, "bar", None) is not None:
            self.bar.close()
        self.accelerator.end_training()
        AcceleratorState._reset_state()

    def _stop_on_fault(self, detail: str) -> None:
        last = checkpoint.latest_checkpoint(self.run_dir)
        message = self.monitor.nan_message(self.step_index, detail, str(last) if last else None)
        if self.accelerator.is_main_process:
            self.monitor.warn("nonfinite", self.step_index, message, echo=False)  # the CLI prints the error itself
            self._log_warnings(self.monitor.unlogged())
            self._refresh_report(final=True)  # the page shows the curves up to the fault, and the warning
        self._close()
        raise TrainingStopped(message)

    def _safe_checkpoint(self) -> None:
        """A checkpoint, or (disk full, permissions...) a clean stop that keeps the last good one as ``latest``."""
        step = self.step_index
        # save_checkpoint removes its partial folder on any failure; a write failure then stops the run cleanly
        with self._writing(f"the checkpoint of step {step}", self.run_dir / checkpoint.CHECKPOINTS):
            checkpoint.save_checkpoint(
                self.accelerator, self.run_dir, step, recipe=self.recipe, extra_state=self.extra_state,
                keep=self.cfg.keep_checkpoints, trainer_state=self._trainer_state())

    def _trainer_state(self) -> dict:
        model = self.model
        return {"nets": list(self.net_order), "export": list(model.export),
                "export_info": model.export_info(self.parts.dataset)}

    def _stop_on_signal(self, signals: StopSignals) -> None:
        name = signals.name() or "a stop signal on another process"
        folder = checkpoint.step_folder(self.run_dir, self.step_index)
        last = checkpoint.latest_checkpoint(self.run_dir)
        if last is None or last.name != folder.name:
            self._safe_checkpoint()
        if self.accelerator.is_main_process:
            self._refresh_report(final=True)
        self._close()
        elapsed, steps = time.perf_counter() - self._t0, self.step_index - self._start
        result = {"run_dir": str(self.run_dir), "interrupted": name, "step": self.step_index, "steps_run": steps,
                  "seconds": round(elapsed, 2),
                  "images_per_s": round(self._images_per_step * steps / max(elapsed, 1e-9), 2),
                  "checkpoint": str(folder), "resume": "--resume latest",
                  "warnings": [w["warning"] for w in self.monitor.warnings]}
        raise TrainingInterrupted(f"{name} at step {self.step_index}: checkpoint {folder} written; continue with "
                                  "--resume latest", signum=signals.received or signal.SIGTERM, result=result)

    def _any_rank(self, flag: bool) -> bool:
        accelerator = self.accelerator
        if accelerator.num_processes == 1:
            return flag
        return bool(accelerator.reduce(torch.tensor([float(flag)], device=accelerator.device), "sum").item() > 0)

    def _log_warnings(self, warnings: list[dict]) -> None:
        if warnings:
            self._append_log(warnings)

    def _ranks_in_sync(self) -> float:
        """Largest difference, over ranks, of per-net parameter checksums (0.0 when DDP kept them identical)."""
        accelerator = self.accelerator
        sums = torch.stack([torch.cat([p.detach().double().flatten() for p in net.parameters()]).abs().sum()
                            for net in self.model.nets.values()]).to(accelerator.device)
        every = accelerator.gather(sums.unsqueeze(0)).view(accelerator.num_processes, -1)
        return float((every - every[0]).abs().max())

    def _export(self, folder: Path | None = None, **extra_meta: Any) -> None:
        model, emas = self.model, self.emas
        sds = {name: emas[name].module.state_dict() if name in emas
               else self.accelerator.unwrap_model(model.nets[name]).state_dict() for name in model.export}
        meta = {**checkpoint.export_meta(self.recipe, model.directions, self.step_index, bool(emas)),
                **model.export_info(self.parts.dataset), **extra_meta}
        write_export(self.recipe, sds, folder or self.run_dir / "export", meta)
