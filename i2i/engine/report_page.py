"""The run's page: ``RUN/report.html`` and ``RUN/curves.png``, written by ``i2i report RUN`` and refreshed by the
trainer at each sample interval and at the end of a run.

The page is one HTML file that opens from disk with no server and no network: the curves are PNGs drawn with
matplotlib and embedded as data URIs, the sample grids are the run's own ``samples/step_N.png`` files, linked by
relative paths (copy the run folder, not the page alone). It shows the recipe at a glance, every scalar of
``log.jsonl`` grouped (G, D, other nets, health, eval, learning rates, images/s) with the health monitor's
warnings marked at the steps they fired, the eval figures with the best step marked, every sample grid newest
first, and the checkpoints and exports on disk. ``curves.png`` is the same curves in one image.

Everything here reads files only: the page of a finished run, a running one or a copied one is built the same way.
"""
from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import I2IError
from . import checkpoint
from .report import duration

LOG = "log.jsonl"
PAGE = "report.html"
CURVES = "curves.png"
SAMPLES = "samples"
GROUP_ORDER = ("G", "D", "Health", "Eval", "Learning rates", "Throughput")
COLUMNS = 4                      # small plots per row
PLOT_WIDTH, PLOT_HEIGHT, DPI = 13.0, 2.2, 80  # inches per row of plots; 1040 px wide
#: eval figures whose better direction is known by name (substrings); others are shown without a best mark
HIGHER_BETTER = ("psnr", "ssim", "accuracy", "coverage", "confidence", "inception_score", "precision", "recall")
LOWER_BETTER = ("frechet", "fid", "kid", "l1", "l2", "lpips", "distance", "error", "loss")
REFERENCE_PREFIXES = ("bicubic_", "real_")  # figures of a baseline or of the real data: no best step
STEP_NUMBER = re.compile(r"(\d+)")
SAMPLE_WIDTH = 600               # px a small sample grid is enlarged towards (by a whole factor, at most 4)


# ---------------------------------------------------------------- reading the run
@dataclass
class RunLog:
    """log.jsonl: scalar rows in file order (training rows and eval rows), warnings, unreadable lines."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    unreadable: int = 0


def read_log(path: Path) -> RunLog:
    """Every line of ``log.jsonl``; a line that is not a JSON object with a step (a crash mid-write) is counted,
    not fatal."""
    out = RunLog()
    if not path.is_file():
        return out
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                out.unreadable += 1
                continue
            if not isinstance(entry, dict) or not isinstance(entry.get("step"), int):
                out.unreadable += 1
            elif "warning" in entry:
                out.warnings.append(entry)
            else:
                out.rows.append(entry)
    return out


def group_of(key: str) -> str:
    """The page section of a logged scalar: G, D, another net's losses (E, Q ...), Health, Eval, Learning rates,
    Throughput."""
    if key == "images_per_s":
        return "Throughput"
    head, _, rest = key.partition("/")
    if not rest:
        return "Other"
    if head == "lr":
        return "Learning rates"
    if head == "eval":
        return "Eval"
    if head in ("health", "grad"):
        return "Health"
    if head.startswith("d"):  # d, d2, d_a, d_b, and d_<loss>/ statistics
        return "D"
    if head.startswith("g"):
        return "G"
    return head.upper()


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def curves(rows: list[dict[str, Any]]) -> dict[str, dict[str, tuple[list[int], list[float]]]]:
    """{group: {key: (steps, values)}} over every numeric figure of the rows. One point per row that has the key;
    where a resumed run logged a step again, the later line wins (the earlier one belongs to the discarded part)."""
    series: dict[str, dict[int, float]] = {}
    for row in rows:
        for key, value in row.items():
            number = _number(value)
            if key == "step" or number is None:
                continue
            series.setdefault(key, {})[row["step"]] = number
    out: dict[str, dict[str, tuple[list[int], list[float]]]] = {}
    for key in sorted(series, key=lambda k: (_group_rank(group_of(k)), k)):
        points = sorted(series[key].items())
        out.setdefault(group_of(key), {})[key] = ([s for s, _ in points], [v for _, v in points])
    return out


def _group_rank(group: str) -> tuple[int, str]:
    if group in GROUP_ORDER[:2]:
        return GROUP_ORDER.index(group), group
    if group in GROUP_ORDER:
        return GROUP_ORDER.index(group) + 10, group
    return 5, group  # other nets' losses after G and D


def direction(key: str, best: dict | None = None) -> str | None:
    """'min' or 'max' for an eval figure: ``train.keep_best``'s mode for its metric, else known by name."""
    if best and best.get("metric") == key:
        return best.get("mode")
    name = key.removeprefix("eval/")
    if not key.startswith("eval/") or name.startswith(REFERENCE_PREFIXES):
        return None
    if any(word in name for word in LOWER_BETTER):
        return "min"
    if any(word in name for word in HIGHER_BETTER):
        return "max"
    return None


def best_point(steps: list[int], values: list[float], mode: str | None) -> tuple[int, float] | None:
    # step 0 is the untrained nets' eval (the baseline), never a best checkpoint: not marked
    finite = [(s, v) for s, v in zip(steps, values) if s > 0 and math.isfinite(v)]
    if not finite or mode not in ("min", "max"):
        return None
    pick = min if mode == "min" else max
    value = pick(v for _, v in finite)
    return next((s, v) for s, v in finite if v == value)  # the first step that reached it, as keep_best keeps


def sample_grids(run_dir: Path) -> list[tuple[int, Path]]:
    """(step, path) of every sample grid, newest first."""
    folder = run_dir / SAMPLES
    found = []
    for path in folder.glob("*.png") if folder.is_dir() else ():
        match = STEP_NUMBER.search(path.stem)
        if match and path.is_file():
            found.append((int(match.group(1)), path))
    return sorted(found, key=lambda sp: (-sp[0], sp[1].name))


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def checkpoints(run_dir: Path) -> list[dict[str, Any]]:
    """The complete checkpoints on disk: step folders (oldest first), then ``best``."""
    folder = run_dir / checkpoint.CHECKPOINTS
    latest = checkpoint.latest_checkpoint(run_dir)
    out = []
    found = sorted(p for p in folder.glob("step_*") if (p / checkpoint.TRAINER_STATE).is_file())
    best = checkpoint.best_folder(run_dir)
    for path in found + ([best] if (best / checkpoint.TRAINER_STATE).is_file() else []):
        try:
            state = checkpoint.read_trainer_state(path)
        except (OSError, ValueError):
            continue
        out.append({"name": path.name, "path": path, "step": state.get("step"), "bytes": _size(path),
                    "latest": latest is not None and path == latest, "best": state.get("best")})
    return out


def exports(run_dir: Path) -> list[dict[str, Any]]:
    """Every export folder in the run folder (export/, export_best/, export_step_N/ ...) with its meta.json."""
    out = []
    for path in sorted(run_dir.glob("export*")):
        meta_file = path / "meta.json"
        if not meta_file.is_file():
            continue
        try:
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            meta = {}
        files = sorted((p.name, p.stat().st_size) for p in path.iterdir() if p.is_file())
        out.append({"name": path.name, "path": path, "meta": meta if isinstance(meta, dict) else {}, "files": files})
    return out


def read_recipe(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "recipe.yaml"
    if not path.is_file():
        return {}
    import yaml
    try:
        recipe = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return recipe if isinstance(recipe, dict) else {}


# ---------------------------------------------------------------- plots
def _matplotlib():
    try:
        import matplotlib
    except ImportError as exc:
        raise I2IError("the report's plots need matplotlib: pip install matplotlib") from exc
    from matplotlib.figure import Figure  # the object API: no pyplot state, no GUI backend, safe in any process
    return matplotlib, Figure


def plot_group(title: str, group: dict[str, tuple[list[int], list[float]]], warnings: list[dict],
               best: dict | None = None):
    """One figure: a small plot per scalar of the group, warnings as red dashed lines at their steps, the best
    step of eval figures marked with a star."""
    _, Figure = _matplotlib()
    keys = list(group)
    cols = min(COLUMNS, len(keys))
    rows = math.ceil(len(keys) / cols)
    fig = Figure(figsize=(PLOT_WIDTH, PLOT_HEIGHT * rows + 0.4), dpi=DPI)
    fig.text(0.005, 1 - 0.05 / fig.get_figheight(), title, ha="left", va="top", fontsize=11, fontweight="bold")
    warn_steps = sorted({w["step"] for w in warnings})
    for i, key in enumerate(keys):
        steps, values = group[key]
        ax = fig.add_subplot(rows, COLUMNS, i + 1)
        ax.plot(steps, values, color="#1f5fa8", linewidth=1.2, marker="." if len(steps) <= 40 else None,
                markersize=3, label=key)
        for s in warn_steps:
            ax.axvline(s, color="#c0392b", linestyle="--", linewidth=0.8, alpha=0.7)
        mark = best_point(steps, values, direction(key, best))
        if mark is not None:
            ax.plot([mark[0]], [mark[1]], marker="*", color="#e67e22", markersize=12, linestyle="none",
                    label="best")
            ax.annotate(f"best {mark[1]:.4g}\nat step {mark[0]}", mark, textcoords="offset points",
                        xytext=(6, -4), va="top", fontsize=7, color="#a04000")
        ax.set_title(key, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(True, alpha=0.3)
    fig.subplots_adjust(left=0.05, right=0.99, top=1 - 0.45 / fig.get_figheight(), bottom=0.12 / rows + 0.05,
                        hspace=0.55, wspace=0.25)
    return fig


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def stack_pngs(images: list[bytes]) -> bytes:
    """The group figures one above the other (they share a width): curves.png."""
    from PIL import Image
    opened = [Image.open(io.BytesIO(b)).convert("RGB") for b in images]
    width = max(im.width for im in opened)
    out = Image.new("RGB", (width, sum(im.height for im in opened)), "white")
    y = 0
    for im in opened:
        out.paste(im, (0, y))
        y += im.height
    buffer = io.BytesIO()
    out.save(buffer, format="PNG")
    return buffer.getvalue()


# ---------------------------------------------------------------- the page
CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1100px;padding:16px;
color:#222;background:#fafafa}
h1{font-size:22px;margin:4px 0}h2{font-size:18px;border-bottom:1px solid #ccc;margin-top:28px}
h3{font-size:15px;margin:14px 0 4px}
table{border-collapse:collapse;font-size:13px;margin:6px 0}td,th{border:1px solid #ddd;padding:3px 8px;
text-align:left;vertical-align:top}th{background:#eee}
.muted{color:#666}.warn{color:#a61b0f}.ok{color:#1e7a34}.best{background:#fff3cd}
img.plot{width:100%;max-width:1040px;border:1px solid #ddd;background:#fff}
figure.sample{margin:10px 0 18px;padding:8px;background:#fff;border:1px solid #ddd}
figure.sample img{max-width:100%;height:auto;image-rendering:pixelated}figcaption{font-size:14px;margin-bottom:6px}
pre{background:#fff;border:1px solid #ddd;padding:8px;font-size:12px;overflow:auto}
nav a{margin-right:12px}ul.curves{columns:4;font-size:12px;color:#555}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _table(header: list[str], rows: list[list[Any]], classes: list[str] | None = None) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(f"<tr class=\"{classes[i] if classes else ''}\">" + "".join(f"<td>{c}</td>" for c in row)
                   + "</tr>" for i, row in enumerate(rows))
    return f"<table><tr>{head}</tr>{body}</table>"


def _mib(n: int) -> str:
    if n < 2**10:
        return f"{n} B"
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 2**10:.0f} KiB"


def _component(cfg: Any) -> str:
    if not isinstance(cfg, dict):
        return _e(cfg)
    kind = cfg.get("type", "")
    rest = ", ".join(f"{k}={v}" for k, v in cfg.items() if k != "type")
    return f"<b>{_e(kind)}</b> <span class=muted>{_e(rest)}</span>"


def _recipe_rows(recipe: dict) -> list[list[str]]:
    rows = [["model", _component(recipe.get("model"))]]
    data = recipe.get("data") or {}
    if data:
        rows.append(["data", _component(data)])
    for section in ("nets", "losses", "optim"):
        for name, cfg in (recipe.get(section) or {}).items():
            rows.append([f"{section}.{_e(name)}", _component(cfg)])
    for section in ("schedule", "ema", "eval", "monitor"):
        if recipe.get(section) is not None:
            rows.append([section, _component(recipe[section])])
    train = recipe.get("train") or {}
    rows.append(["train", _e(", ".join(f"{k}={v}" for k, v in train.items()))])
    return rows


def _status(rows: list[dict], recipe: dict, exported: list[dict]) -> tuple[int, int | None, str]:
    last = max((r["step"] for r in rows), default=0)
    max_steps = (recipe.get("train") or {}).get("max_steps")
    main_export = next((x for x in exported if x["name"] == "export"), None)
    done = main_export is not None and isinstance(max_steps, int) and main_export["meta"].get("step") == max_steps
    if done:
        return last, max_steps, f"finished: {max_steps} steps, exported"
    if isinstance(max_steps, int) and max_steps > 0:
        return last, max_steps, f"step {last} of {max_steps} ({100 * last / max_steps:.0f}%): running or stopped"
    return last, None, f"step {last}"


def _best_record(recipe: dict, run_dir: Path) -> tuple[dict | None, dict | None]:
    """(train.keep_best of the recipe, the record of checkpoints/best)."""
    keep = (recipe.get("train") or {}).get("keep_best")
    record = checkpoint.read_best(run_dir)
    return (keep if isinstance(keep, dict) else None), record


def build_page(run_dir: Path) -> tuple[str, bytes, dict[str, Any]]:
    """(the page's HTML, curves.png, counts for the command's JSON line)."""
    run_dir = Path(run_dir)
    log = read_log(run_dir / LOG)
    recipe = read_recipe(run_dir)
    keep, record = _best_record(recipe, run_dir)
    best_cfg = keep or ({"metric": record["metric"], "mode": record["mode"]} if record else None)
    grouped = curves(log.rows)
    grids = sample_grids(run_dir)
    saved = checkpoints(run_dir)
    exported = exports(run_dir)
    last, max_steps, status = _status(log.rows, recipe, exported)
    name = recipe.get("name") or run_dir.name

    pngs, plot_html = [], []
    for group, series in grouped.items():
        png = _png(plot_group(group, series, log.warnings, best_cfg))
        pngs.append(png)
        items = "".join(f"<li data-key=\"{_e(k)}\" data-points=\"{len(s)}\">{_e(k)}: {len(s)} points, last "
                        f"{_fmt(v[-1])}</li>" for k, (s, v) in series.items())
        anchor = "g-" + re.sub(r"[^a-z0-9]+", "-", group.lower())
        data_uri = "data:image/png;base64," + base64.b64encode(png).decode()
        plot_html.append(f"<img class=plot id=\"{anchor}\" alt=\"{_e(group)} curves\" src=\"{data_uri}\">"
                         f"<ul class=curves>{items}</ul>")
    curves_png = stack_pngs(pngs) if pngs else b""

    parts = [f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>{_e(name)}: i2i run report</title>"
             f"<style>{CSS}</style></head><body>",
             f"<h1>{_e(name)}</h1><p>{_e(status)} <span class=muted>&middot; {_e(run_dir)} &middot; page written "
             f"{_e(time.strftime('%Y-%m-%d %H:%M:%S'))}</span></p>",
             "<nav><a href=#recipe>recipe</a><a href=#curves>curves</a><a href=#eval>eval</a>"
             "<a href=#warnings>warnings</a><a href=#throughput>throughput</a><a href=#samples>samples</a>"
             "<a href=#files>checkpoints and exports</a></nav>"]
    parts.append(_summary_html(log, grouped, grids, record, keep))
    parts.append("<h2 id=recipe>Recipe</h2>")
    if recipe:
        parts.append(_table(["key", "value"], _recipe_rows(recipe)))
        recipe_text = (run_dir / "recipe.yaml").read_text(encoding="utf-8", errors="replace")
        parts.append(f"<details><summary>recipe.yaml</summary><pre>{_e(recipe_text)}</pre></details>")
    else:
        parts.append("<p class=muted>no recipe.yaml in the run folder yet</p>")
    parts.append("<h2 id=curves>Curves</h2>")
    if plot_html:
        parts.append(f"<p class=muted>every scalar of {LOG}, one point per log line ({len(log.rows)} lines with "
                     f"figures); red dashed lines: health warnings; star: best eval step. The same curves are in "
                     f"<a href=\"{CURVES}\">{CURVES}</a>.</p>")
        parts.extend(plot_html)
    else:
        parts.append(f"<p class=muted>no figures logged yet ({LOG} is empty or missing)</p>")
    parts.append(_eval_html(grouped.get("Eval", {}), best_cfg, record, keep))
    parts.append(_warnings_html(log.warnings))
    parts.append(_throughput_html(grouped.get("Throughput", {}), recipe))
    parts.append(_samples_html(grids, log.warnings, run_dir))
    parts.append(_files_html(saved, exported, run_dir))
    data = {k: {"steps": s, "values": [v if math.isfinite(v) else None for v in vals]}
            for series in grouped.values() for k, (s, vals) in series.items()}
    parts.append(f"<script type=\"application/json\" id=\"curves-data\">{_json_in_html(data)}</script>")
    parts.append("</body></html>")
    counts = {"rows": len(log.rows), "curves": sum(len(s) for s in grouped.values()), "samples": len(grids),
              "warnings": len(log.warnings), "step": last, "max_steps": max_steps}
    return "\n".join(parts), curves_png, counts


def _json_in_html(data: Any) -> str:
    return json.dumps(data).replace("</", "<\\/")


def _fmt(value: float) -> str:
    return f"{value:.5g}" if math.isfinite(value) else str(value)


def _summary_html(log: RunLog, grouped: dict, grids: list, record: dict | None, keep: dict | None) -> str:
    items = [f"{len(log.rows)} log lines", f"{sum(len(s) for s in grouped.values())} curves",
             f"{len(grids)} sample grids",
             f"<span class={'warn' if log.warnings else 'ok'}>{len(log.warnings)} health warning(s)</span>"]
    if record:
        items.append(f"<span class=best>best {_e(record['metric'])} = {_fmt(record['value'])} at step "
                     f"{record['step']} ({_e(record['mode'])})</span>")
    elif keep:
        items.append(f"keep_best: {_e(keep.get('metric'))} ({_e(keep.get('mode'))}), no eval yet")
    if log.unreadable:
        items.append(f"<span class=warn>{log.unreadable} unreadable line(s) of {LOG} skipped</span>")
    return "<p>" + " &middot; ".join(items) + "</p>"


def _eval_html(series: dict, best_cfg: dict | None, record: dict | None, keep: dict | None) -> str:
    out = ["<h2 id=eval>Eval</h2>"]
    if not series:
        out.append("<p class=muted>no eval figures (the recipe's eval section logs eval/* every eval.every "
                   "steps)</p>")
        return "".join(out)
    if keep:
        out.append(f"<p>train.keep_best: <b>{_e(keep.get('metric'))}</b>, {_e(keep.get('mode'))}; kept as "
                   "checkpoints/best and export_best/.</p>")
    rows, classes = [], []
    for key, (steps, values) in series.items():
        mode = direction(key, best_cfg)
        mark = best_point(steps, values, mode)
        kept = record is not None and record.get("metric") == key
        rows.append([f"<b>{_e(key)}</b>" if kept else _e(key), _fmt(values[-1]), steps[-1],
                     {"min": "lower", "max": "higher"}.get(mode, "<span class=muted>not known</span>"),
                     f"{_fmt(mark[1])} at step {mark[0]}" if mark else "", len(steps)])
        classes.append("best" if kept else "")
    out.append(_table(["figure", "last", "at step", "better", "best", "points"], rows, classes))
    return "".join(out)


def _warnings_html(warnings: list[dict]) -> str:
    out = ["<h2 id=warnings>Health warnings</h2>"]
    if not warnings:
        out.append("<p class=ok>none: the health monitor found nothing to warn about</p>")
        return "".join(out)
    rows = [[w["step"], f"<b class=warn>{_e(w.get('warning'))}</b>", _e(w.get("message", ""))] for w in warnings]
    out.append(_table(["step", "warning", "message"], rows))
    return "".join(out)


def _throughput_html(series: dict, recipe: dict) -> str:
    out = ["<h2 id=throughput>Throughput</h2>"]
    values = [v for v in series.get("images_per_s", ([], []))[1] if math.isfinite(v)]
    if not values:
        out.append("<p class=muted>no images/s logged yet</p>")
        return "".join(out)
    batch = (recipe.get("data") or {}).get("batch_size")
    text = (f"images/s over {len(values)} log intervals: last {values[-1]:.4g}, mean {sum(values) / len(values):.4g}, "
            f"min {min(values):.4g}, max {max(values):.4g}")
    if isinstance(batch, int) and batch > 0:
        mean = sum(values) / len(values)
        text += f"; batch {batch} per process: about {batch / mean:.3g} s per step per process"
        max_steps = (recipe.get("train") or {}).get("max_steps")
        if isinstance(max_steps, int):
            text += f" ({duration(max_steps * batch / mean)} for {max_steps} steps on one process)"
    out.append(f"<p>{_e(text)}</p>")
    return "".join(out)


def _samples_html(grids: list[tuple[int, Path]], warnings: list[dict], run_dir: Path) -> str:
    out = [f"<h2 id=samples>Samples ({len(grids)}, newest first)</h2>"]
    if not grids:
        out.append("<p class=muted>no sample grids yet (samples/step_N.png, every train.sample_every steps)</p>")
        return "".join(out)
    steps_up = sorted({s for s, _ in grids})
    for step, path in grids:
        earlier = [s for s in steps_up if s < step]
        since = earlier[-1] if earlier else -1
        fired = [w for w in warnings if since < w["step"] <= step]
        note = "".join(f"<div class=warn>warning at step {w['step']}: <b>{_e(w.get('warning'))}</b></div>"
                       for w in fired)
        rel = path.relative_to(run_dir).as_posix()
        out.append(f"<figure class=sample id=\"sample-{step}\"><figcaption><b>step {step}</b> "
                   f"<span class=muted>{_e(rel)}</span>{note}</figcaption><img loading=lazy alt=\"samples at step "
                   f"{step}\" src=\"{_e(rel)}\"{_shown_width(path)}></figure>")
    return "".join(out)


def _shown_width(path: Path) -> str:
    """Small grids (64 px tiles) are shown enlarged by a whole factor, pixels kept sharp; large ones as they are."""
    from PIL import Image
    try:
        with Image.open(path) as im:
            width = im.width
    except (OSError, ValueError):
        return ""
    factor = max(1, min(4, SAMPLE_WIDTH // max(1, width)))
    return f" width=\"{width * factor}\"" if factor > 1 else ""


def _files_html(saved: list[dict], exported: list[dict], run_dir: Path) -> str:
    out = ["<h2 id=files>Checkpoints and exports</h2>"]
    if saved:
        rows, classes = [], []
        for c in saved:
            tags = (["latest"] if c["latest"] else []) + (
                [f"best: {c['best'].get('metric')} = {_fmt(c['best'].get('value'))}"] if c.get("best") else [])
            rows.append([_e(f"{checkpoint.CHECKPOINTS}/{c['name']}"), c["step"], _mib(c["bytes"]), _e(", ".join(tags))])
            classes.append("best" if c.get("best") else "")
        out.append(_table(["checkpoint", "step", "size", ""], rows, classes))
        out.append("<p class=muted>continue a run with <code>i2i train RECIPE --resume latest</code>; any checkpoint "
                   "becomes an export with <code>i2i export CHECKPOINT</code></p>")
    else:
        out.append("<p class=muted>no complete checkpoint yet</p>")
    if exported:
        rows = []
        for x in exported:
            meta = x["meta"]
            about = [f"model {meta.get('model')}", f"step {meta.get('step')}"] + (["EMA weights"] if meta.get("ema")
                                                                                   else [])
            if isinstance(meta.get("best"), dict):
                about.append(f"best {meta['best'].get('metric')} = {_fmt(meta['best'].get('value'))}")
            files = ", ".join(f"{n} ({_mib(size)})" for n, size in x["files"])
            rows.append([f"<b>{_e(x['name'])}/</b>", _e("; ".join(about)), _e(files)])
        out.append(_table(["export", "what", "files"], rows))
        out.append(f"<p class=muted>translate with <code>i2i translate {_e(run_dir)} --input DIR --output DIR</code> "
                   "(or name an export folder)</p>")
    else:
        out.append("<p class=muted>no export yet (written at the end of the run)</p>")
    return "".join(out)


def _replace(path: Path, data: bytes) -> None:
    """Write next to ``path`` and rename over it: a reader never sees half a page."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_report(run_dir: str | Path) -> dict[str, Any]:
    """Write RUN/report.html and RUN/curves.png (when anything was logged); returns what was written."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise I2IError(f"{run_dir}: no such run folder")
    if not (run_dir / LOG).is_file() and not (run_dir / "recipe.yaml").is_file():
        raise I2IError(f"{run_dir}: not a run folder (no {LOG} and no recipe.yaml); name the folder `i2i train` "
                       "wrote (train.output_dir, or runs/<recipe name>)")
    page, curves_png, counts = build_page(run_dir)
    if curves_png:
        _replace(run_dir / CURVES, curves_png)
    _replace(run_dir / PAGE, page.encode("utf-8"))
    return {"report": str(run_dir / PAGE), "curves_png": str(run_dir / CURVES) if curves_png else None, **counts}
