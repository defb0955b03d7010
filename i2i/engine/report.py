"""What a run tells the person watching it: the progress bar's few figures, percent done and time left on log
lines, and the short summary at the end (what ran, where the export is, the command to try next)."""
from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from ..recipe import Recipe

NOT_LOSSES = ("lr", "grad", "health", "eval")  # figure groups that are not a net's losses


def duration(seconds: float) -> str:
    """'42s', '4m12s', '2h05m'."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def progress(step: int, max_steps: int, start: int, elapsed: float) -> str:
    """'500/1600 (31%, ETA 4m12s)': the time left at the pace of this process so far (steps since ``start``)."""
    text = f"{step}/{max_steps} ({100 * step / max(1, max_steps):.0f}%"
    if step < max_steps and step > start and elapsed > 0:
        text += f", ETA {duration((max_steps - step) * elapsed / (step - start))}"
    return text + ")"


def bar_figures(figures: dict[str, float], stat_keys: set[str] | frozenset = frozenset()) -> dict[str, str]:
    """The progress bar's postfix: each net group's loss total (g, d, d2, e ...) and images/s. ``stat_keys`` are
    figures that are statistics rather than losses (the adversarial loss's accuracies and mean outputs)."""
    totals: dict[str, float] = {}
    for key, value in figures.items():
        group, _, name = key.partition("/")
        if not name or key in stat_keys or group in NOT_LOSSES or "acc" in name:
            continue
        totals[group] = totals.get(group, 0.0) + value
    out = {group: f"{value:.3g}" for group, value in totals.items()}
    if "images_per_s" in figures:
        out["img/s"] = f"{figures['images_per_s']:.3g}"
    return out


def _test_images(root: Any, direction: str) -> str | None:
    """A folder of held-out input images under a data root, for the suggested translate command."""
    if not isinstance(root, str):
        return None
    side = "A" if direction == "AtoB" else "B"
    for candidate in (Path(root) / "test" / side, Path(root) / f"test{side}", Path(root) / "val" / side,
                      Path(root) / f"val{side}"):
        if candidate.is_dir():
            return str(candidate)
    return None


def end_summary(result: dict[str, Any], recipe: Recipe, model: Any) -> list[str]:
    """Lines for stderr at the end of a run: steps and time, the export, and the command to try next."""
    run = result["run_dir"]
    steps_run, step = result["steps_run"], result["step"]
    first = step - steps_run
    lines = [f"i2i: trained {recipe['name']}: steps {first} -> {step} ({steps_run} step{'s' * (steps_run != 1)}) "
             f"in {duration(result['seconds'])}, {result['images_per_s']:g} images/s"]
    export = Path(run) / "export"
    lines.append(f"i2i: export: {export} ({', '.join(f'{n}.safetensors' for n in model.export)}, recipe.yaml, "
                 "meta.json)")
    best = result.get("best")
    if best:  # train.keep_best
        lines.append(f"i2i: best: {best['metric']} = {best['value']:.4g} at step {best['step']}: "
                     f"{Path(run) / 'export_best'} (and {Path(run) / 'checkpoints' / 'best'})")
    if (Path(run) / "report.html").is_file():
        lines.append(f"i2i: report: {Path(run) / 'report.html'} (curves, samples, warnings; open it in a browser)")
    q = shlex.quote
    directions = dict(model.directions)
    if getattr(model, "try_command", None):  # a model with a command of its own (inpainting: i2i inpaint)
        root = (recipe.get("data") or {}).get("root")
        test = Path(root) / "test" if isinstance(root, str) and (Path(root) / "test").is_dir() else None
        lines.append("i2i: try: " + model.try_command.format(run=q(run), input=q(str(test)) if test else
                                                             "<folder of images>"))
    elif directions:
        for direction in directions:
            source = _test_images((recipe.get("data") or {}).get("root"), direction)
            option = f" --direction {direction}" if len(directions) > 1 else ""
            out = f"{run}/translated" + (f"_{direction}" if len(directions) > 1 else "")
            lines.append(f"i2i: try: i2i translate {q(run)} --input {q(source) if source else '<folder of images>'} "
                         f"--output {q(out)}{option}")
    elif "g" in model.export:
        lines.append(f"i2i: try: i2i sample {q(run)} --output {q(run + '/sampled')}")
    if result.get("warnings"):
        lines.append(f"i2i: {len(result['warnings'])} warning(s) during the run: see above and {run}/log.jsonl")
    return lines
