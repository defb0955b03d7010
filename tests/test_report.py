"""The run's page (``i2i report RUN``, refreshed by the trainer): its structure, checked as a browser would load it
from disk: every image it references exists, every curve has a point per log line, warnings and the best eval
step appear, samples are listed newest first, nothing is fetched from a network."""
from __future__ import annotations

import base64
import io
import json
import math
import re
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

import i2i.engine.trainer as trainer_module
from i2i.cli import main
from i2i.engine import report_page

from .conftest import tiny_pix2pix, write_recipe

METRIC = "eval/reconstruction_l1"


class Page(HTMLParser):
    """The page's image sources, links, text and the curves' data block."""

    def __init__(self, text: str):
        super().__init__()
        self.images, self.links, self.text, self.data, self._in_data = [], [], [], None, False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs["src"])
        if tag in ("a", "link", "script") and (attrs.get("href") or attrs.get("src")):
            self.links.append(attrs.get("href") or attrs.get("src"))
        self._in_data = tag == "script" and attrs.get("id") == "curves-data"

    def handle_endtag(self, tag):
        self._in_data = False

    def handle_data(self, data):
        if self._in_data:
            self.data = json.loads(data)
        else:
            self.text.append(data)


def load_page(run_dir: Path) -> Page:
    return Page((run_dir / "report.html").read_text(encoding="utf-8"))


def log_lines(run_dir: Path) -> tuple[list[dict], list[dict]]:
    entries = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines() if line.strip()]
    return [e for e in entries if "warning" not in e], [e for e in entries if "warning" in e]


def check_structure(run_dir: Path) -> Page:
    """What every page must satisfy: images exist (files) or decode (embedded plots), no network, one curve point
    per log line with the figure, every warning shown, every sample grid shown newest first."""
    page = load_page(run_dir)
    for src in page.images:
        if src.startswith("data:"):
            assert src.startswith("data:image/png;base64,")
            Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).verify()
        else:
            assert not re.match(r"^[a-z]+://", src) and (run_dir / src).is_file(), src
    assert not any(re.match(r"^(https?:)?//", link) for link in page.links)
    rows, warnings = log_lines(run_dir)
    keys = {k for r in rows for k, v in r.items() if k != "step" and isinstance(v, (int, float))}
    assert set(page.data) == keys
    for key in keys:
        with_key = [r["step"] for r in rows if key in r]
        assert page.data[key]["steps"] == with_key, key  # as many points as lines, in step order
    text = " ".join(page.text)
    for w in warnings:
        assert w["warning"] in text and w["message"][:60] in text
    grids = sorted((run_dir / "samples").glob("step_*.png"), reverse=True)
    shown = [src for src in page.images if src.startswith("samples/")]
    assert shown == [f"samples/{p.name}" for p in grids]
    return page


def test_trained_run_page(paired_root, tmp_path, capsys):
    run_dir = tmp_path / "run"
    recipe = tiny_pix2pix(paired_root, run_dir, max_steps=8, log_every=2, sample_every=4, checkpoint_every=4,
                          report=True)
    recipe["eval"] = {"every": 4, "split": "train", "max_images": 2, "samples": 2, "feature_weights": None}
    recipe["train"]["keep_best"] = {"metric": METRIC, "mode": "min"}
    recipe["monitor"] = {"warmup_steps": 0, "collapse_checks": 1, "collapse_ratio": 1.0}  # G's samples are alike
    assert main(["train", str(write_recipe(tmp_path / "r.yaml", recipe))]) == 0
    err = capsys.readouterr().err
    assert f"i2i: report: {run_dir / 'report.html'}" in err
    page = check_structure(run_dir)
    rows, warnings = log_lines(run_dir)
    assert warnings and warnings[0]["warning"] == "collapse"
    assert (run_dir / "curves.png").is_file() and Image.open(run_dir / "curves.png").width > 500
    text = " ".join(page.text)
    best = json.loads((run_dir / "export_best" / "meta.json").read_text())["best"]
    assert f"best {METRIC} = {best['value']:.5g} at step {best['step']}" in text
    for name in ("export/", "export_best/", "checkpoints/best", "checkpoints/step_00000008", "unet_generator",
                 "images/s over 4 log intervals", "finished: 8 steps"):
        assert name in text, name
    # `i2i report` rebuilds the same page from the files alone
    (run_dir / "report.html").unlink()
    assert main(["report", str(run_dir)]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["rows"] == len(rows) and out["warnings"] == len(warnings) and out["samples"] == 2
    check_structure(run_dir)


def test_plotted_lines_have_a_point_per_log_line(tmp_path):
    rows = [{"step": s, "g/l1": 1.0 / s, "d/adv": 0.5, "lr/g": 1e-4, "images_per_s": 10.0 + s} for s in (2, 4, 6)]
    rows.append({"step": 6, METRIC: 0.3})
    grouped = report_page.curves(rows)
    assert list(grouped) == ["G", "D", "Eval", "Learning rates", "Throughput"]
    for group, series in grouped.items():
        fig = report_page.plot_group(group, series, [{"step": 4, "warning": "d_wins"}],
                                     {"metric": METRIC, "mode": "min"})
        for ax, (key, (steps, values)) in zip(fig.axes, series.items()):
            curve = ax.lines[0]
            assert ax.get_title() == key and list(curve.get_xdata()) == steps == [r["step"] for r in rows if key in r]
            assert list(curve.get_ydata()) == values
            assert any(list(line.get_xdata()) == [4, 4] for line in ax.lines[1:])  # the warning's line
        if group == "Eval":
            assert any(line.get_marker() == "*" for line in fig.axes[0].lines)  # the best step


def test_resumed_and_damaged_logs(tmp_path):
    """A resumed run logs some steps again (the later line wins); a line cut by a crash is skipped and counted;
    a non-finite figure stays a point; a warning is shown at its step and under the sample grid it preceded."""
    run = tmp_path / "run"
    (run / "samples").mkdir(parents=True)
    for step in (4, 8):
        Image.new("RGB", (16, 8), "gray").save(run / "samples" / f"step_{step:08d}.png")
    lines = [{"step": 2, "g/l1": 3.0}, {"step": 4, "g/l1": 2.0}, {"step": 6, "g/l1": 9.0},
             {"step": 6, "warning": "d_wins", "message": "D wins: lower its learning rate"},
             {"step": 6, "g/l1": 1.5}, {"step": 8, "g/l1": float("nan")}]
    text = "\n".join(json.dumps(x) for x in lines) + '\n{"step": 10, "g/l'
    (run / "log.jsonl").write_text(text)
    (run / "recipe.yaml").write_text("name: synthetic\ntrain: {max_steps: 10}\n")
    result = report_page.write_report(run)
    assert result["rows"] == 5 and result["warnings"] == 1 and result["samples"] == 2
    page = load_page(run)
    assert page.data["g/l1"]["steps"] == [2, 4, 6, 8] and page.data["g/l1"]["values"][:3] == [3.0, 2.0, 1.5]
    assert page.data["g/l1"]["values"][3] is None  # NaN: a gap in the curve, JSON null in the data
    body = " ".join(page.text)
    assert "1 unreadable line(s)" in body and "step 8 of 10 (80%)" in body
    html = (run / "report.html").read_text()
    step8 = html.index('id="sample-8"')
    assert html.index("warning at step 6", step8) < html.index('id="sample-4"')  # under step 8's grid
    assert math.isnan(report_page.curves([{"step": 1, "x/y": float("nan")}])["X"]["x/y"][1][0])


def test_trainer_refreshes_the_page_at_sample_intervals_and_at_the_end(paired_root, tmp_path, monkeypatch):
    seen = []

    def recording(run_dir):
        result = report_page.write_report(run_dir)
        seen.append((result["step"], result["samples"]))
        return result
    monkeypatch.setattr(trainer_module, "write_report", recording)
    monkeypatch.setattr(trainer_module, "REPORT_SHARE", 1.0)  # never skip a refresh for its cost ...
    monkeypatch.setattr(trainer_module, "REPORT_MIN_INTERVAL", 0.0)  # ... nor for coming soon after the last
    recipe = tiny_pix2pix(paired_root, tmp_path / "run", max_steps=6, sample_every=2, checkpoint_every=6,
                          report=True)
    assert main(["train", str(write_recipe(tmp_path / "r.yaml", recipe))]) == 0
    assert seen == [(2, 1), (4, 2), (6, 3)]  # each page held that step's log line and sample grid


def test_refreshes_cost_at_most_a_share_of_the_time(paired_root, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(trainer_module, "write_report", lambda run_dir: calls.append(run_dir))
    trainer = trainer_module.Trainer.__new__(trainer_module.Trainer)
    trainer.cfg, trainer.run_dir = type("C", (), {"report": True})(), tmp_path
    trainer._report_done, trainer._report_cost, trainer._quiet = time.perf_counter(), 0.0, set()
    trainer._refresh_report()
    assert not calls  # the run started less than REPORT_MIN_INTERVAL ago
    trainer._report_done -= trainer_module.REPORT_MIN_INTERVAL
    trainer._refresh_report()
    assert len(calls) == 1
    trainer._report_done -= trainer_module.REPORT_MIN_INTERVAL
    trainer._report_cost = 3600.0  # as if the last page took an hour: interval refreshes wait, the last one not
    trainer._refresh_report()
    assert len(calls) == 1
    trainer._refresh_report(final=True)
    assert len(calls) == 2


def test_report_off_and_bad_folders(paired_root, tmp_path, capsys):
    run_dir = tmp_path / "run"
    recipe = tiny_pix2pix(paired_root, run_dir, report=False)
    assert main(["train", str(write_recipe(tmp_path / "r.yaml", recipe))]) == 0
    assert not (run_dir / "report.html").exists() and not (run_dir / "curves.png").exists()
    capsys.readouterr()
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "no such run folder" in capsys.readouterr().err
    assert main(["report", str(paired_root)]) == 2
    assert "not a run folder" in capsys.readouterr().err


@pytest.mark.parametrize("key, group", [("g/l1", "G"), ("d/acc_real", "D"), ("d2/adv", "D"), ("d_a/adv", "D"),
                                        ("e/kl", "E"), ("grad/g", "Health"), ("health/diversity_ratio", "Health"),
                                        ("eval/psnr_y", "Eval"), ("lr/d", "Learning rates"),
                                        ("images_per_s", "Throughput")])
def test_groups(key, group):
    assert report_page.group_of(key) == group


def test_best_direction_by_name_or_keep_best():
    assert report_page.direction("eval/frechet_distance") == "min"
    assert report_page.direction("eval/psnr_y") == "max"
    assert report_page.direction("eval/bicubic_psnr") is None  # the baseline's figure has no best step
    assert report_page.direction("eval/diversity") is None
    assert report_page.direction("eval/diversity", {"metric": "eval/diversity", "mode": "max"}) == "max"
    assert report_page.best_point([2, 4, 6], [0.5, 0.2, 0.2], "min") == (4, 0.2)
    assert report_page.best_point([0, 2, 4], [0.1, 0.5, 0.2], "min") == (4, 0.2)  # step 0: the untrained baseline
