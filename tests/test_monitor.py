"""The training health monitor: each warning provoked on purpose (and silence on healthy figures)."""
from __future__ import annotations

import json
import math

import pytest
import torch

from i2i.cli import main
from i2i.data.labeled import LabeledImages
from i2i.engine.monitor import (
    HealthMonitor,
    MonitorConfig,
    NonFiniteError,
    output_range,
    pairwise_diversity,
)
from i2i.nets import DCGANGenerator, ResnetGenerator

from .conftest import write_recipe
from .test_conditional import tiny

RECIPE = {"losses": {"adv": {"type": "adversarial", "mode": "vanilla"}}, "optim": {"d": {"lr": 2.0e-4}}}


def monitor(**cfg) -> HealthMonitor:
    return HealthMonitor(MonitorConfig(**{"warmup_steps": 0, **cfg}), recipe=RECIPE, log_every=10)


def test_data_in_0_255_is_named_with_the_fix():
    m = monitor(data_batches=1)
    m.observe_batch(0, {"real": torch.rand(2, 1, 8, 8) * 255}, (-1.0, 1.0))
    (w,) = m.warnings
    assert w["warning"] == "data_range" and "[0, 255]" in w["message"] and "x / 127.5 - 1" in w["message"]


def test_data_in_0_1_is_noticed_after_the_first_batches():
    m = monitor(data_batches=2)
    m.observe_batch(0, {"real": torch.rand(2, 1, 8, 8)}, (-1.0, 1.0))
    assert not m.warnings  # one batch of bright images is not evidence yet
    m.observe_batch(1, {"real": torch.rand(2, 1, 8, 8)}, (-1.0, 1.0))
    assert [w["warning"] for w in m.warnings] == ["data_range"] and "x * 2 - 1" in m.warnings[0]["message"]


def test_data_in_range_is_quiet():
    m = monitor(data_batches=3)
    for step in range(3):
        m.observe_batch(step, {"real_a": torch.rand(2, 3, 8, 8) * 2 - 1, "y": torch.zeros(2)}, (-1.0, 1.0))
    assert m.warnings == []


def test_d_wins_needs_a_sustained_window_and_a_climbing_g_loss():
    m = monitor(d_win_checks=3)
    for step, g in zip((10, 20), (1.0, 2.0)):
        m.check(step, {"d/acc_real": 0.99, "d/acc_fake": 0.98, "g/adv": g})
    assert m.warnings == []
    m.check(30, {"d/acc_real": 0.99, "d/acc_fake": 0.99, "g/adv": 3.0})
    (w,) = m.warnings
    assert w["warning"] == "d_wins"
    for remedy in ("label_smoothing", "instance_noise", "g_steps", "optim.d.lr: 5e-05", "spectral_norm", "r1"):
        assert remedy in w["message"]
    falling = monitor(d_win_checks=3)
    for step, g in zip((10, 20, 30), (3.0, 2.0, 1.0)):
        falling.check(step, {"d/acc_real": 0.99, "d/acc_fake": 0.99, "g/adv": g})
    assert falling.warnings == []


@pytest.mark.parametrize("mode", ["wgan", "wgan_gp", "ragan", "rsgan"])
def test_critics_and_relativistic_ds_are_not_told_that_they_win(mode):
    m = HealthMonitor(MonitorConfig(warmup_steps=0, d_win_checks=1), log_every=10,
                      recipe={"losses": {"adv": {"type": "adversarial", "mode": mode}}})
    m.check(10, {"d/acc_real": 1.0, "d/acc_fake": 1.0, "g/adv": 5.0})
    m.check(20, {"d/acc_real": 1.0, "d/acc_fake": 1.0, "g/adv": 6.0})
    assert m.warnings == []


def test_collapse_is_measured_against_real_diversity():
    m = monitor(collapse_checks=2)
    real = torch.rand(16, 1, 8, 8) * 2 - 1
    same = torch.zeros(16, 1, 8, 8)
    m.check_diversity(10, same, real)
    assert m.warnings == []
    figures = m.check_diversity(20, same, real)
    assert figures["health/diversity_ratio"] == 0 and [w["warning"] for w in m.warnings] == ["collapse"]
    recovering = monitor(collapse_checks=3)
    for step, level in zip((10, 20, 30), (0.05, 0.1, 0.15)):  # a young G leaving its near-constant start
        recovering.check_diversity(step, torch.rand(16, 1, 8, 8) * level, real)
    assert recovering.warnings == []
    healthy = monitor(collapse_checks=1)
    healthy.check_diversity(10, torch.rand(16, 1, 8, 8) * 2 - 1, real)
    assert healthy.warnings == []


def test_collapse_advice_is_the_models_own_where_it_has_one():
    """BEGAN has no adversarial loss to change: its collapse warning names its own knobs, not losses.adv."""
    real, same = torch.rand(16, 1, 8, 8) * 2 - 1, torch.zeros(16, 1, 8, 8)
    messages = {}
    for model in ("dcgan", "began"):
        m = HealthMonitor(MonitorConfig(warmup_steps=0, collapse_checks=1),
                          recipe={**RECIPE, "model": {"type": model}}, log_every=10)
        m.check_diversity(10, same, real)
        (w,) = m.warnings
        messages[model] = w["message"]
    assert "losses.adv.r1" in messages["dcgan"] and "model.gamma" not in messages["dcgan"]
    assert "model.gamma" in messages["began"] and "model.lambda_k" in messages["began"]
    assert "losses.adv" not in messages["began"] and messages["began"].startswith("mode collapse: ")


def test_non_finite_figures_raise_and_healthy_figures_are_quiet():
    m = monitor()
    m.check(10, {"d/acc_real": 0.7, "d/acc_fake": 0.6, "g/adv": 1.0, "d/adv": 0.6})
    assert m.warnings == []
    with pytest.raises(NonFiniteError, match="g/adv"):
        m.check(20, {"g/adv": math.nan, "d/adv": 0.5})


def test_pairwise_diversity_and_output_range():
    assert pairwise_diversity(torch.zeros(4, 1, 8, 8)) == 0
    a = torch.stack([torch.zeros(1, 8, 8), torch.ones(1, 8, 8)])
    assert pairwise_diversity(a) == pytest.approx(1.0)
    assert output_range(ResnetGenerator(base_channels=4, blocks=1)) == (-1.0, 1.0)
    assert output_range(torch.nn.Conv2d(1, 1, 1)) is None


# ---------------------------------------------------------------- end to end, through the CLI
class Raw255(LabeledImages):
    """A custom data set that forgot to scale: 8-bit values."""

    def __getitem__(self, item):
        out = dict(super().__getitem__(item))
        out["real"] = (out["real"] + 1) * 127.5
        return out


class ConstantG(DCGANGenerator):
    """A generator that ignores z: collapsed by construction."""

    def forward(self, z, y=None, c=None):
        return super().forward(torch.zeros_like(z), y, c)


def train(tmp_path, capsys, recipe: dict, *extra: str) -> tuple[int, dict | None, str]:
    path = write_recipe(tmp_path / "r.yaml", recipe)
    code = main(["train", str(path), *extra])
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    return code, (json.loads(lines[-1]) if code == 0 and lines else None), err


def gan(root, out, **train) -> dict:
    r = tiny("dcgan", root, out, **train)
    r["eval"] = None
    r["monitor"] = {"warmup_steps": 0, "every": 2, "samples": 8}
    return r


def test_unscaled_data_warns_in_a_real_run(digits_root, tmp_path, capsys):
    r = gan(digits_root, tmp_path / "run")
    r["data"]["type"] = "tests.test_monitor:Raw255"
    code, result, err = train(tmp_path, capsys, r)
    assert code == 0 and result["warnings"][0] == "data_range"
    assert "[0, 255]" in err and "x / 127.5 - 1" in err
    logged = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert any(e.get("warning") == "data_range" for e in logged)


def test_healthy_run_is_quiet_and_logs_health_figures(digits_root, tmp_path, capsys):
    r = gan(digits_root, tmp_path / "run")
    r["monitor"] = {"every": 2}  # default verdict thresholds and warm-up: a fresh G is not a collapsed G
    code, result, _ = train(tmp_path, capsys, r)
    assert code == 0 and result["warnings"] == []
    for key in ("d/acc_real", "d/acc_fake", "d/out_real", "d/out_fake", "grad/d", "grad/g", "health/diversity_ratio"):
        assert key in result, key


def test_collapsed_generator_warns(digits_root, tmp_path, capsys):
    r = gan(digits_root, tmp_path / "run", max_steps=6)
    r["nets"]["g"]["type"] = "tests.test_monitor:ConstantG"
    r["monitor"].update(collapse_checks=2)
    code, result, err = train(tmp_path, capsys, r)
    assert code == 0 and "collapse" in result["warnings"] and "mode collapse" in err


def test_overpowered_discriminator_warns(digits_root, tmp_path, capsys):
    r = gan(digits_root, tmp_path / "run", max_steps=40, log_every=4, checkpoint_every=40, sample_every=40)
    r["optim"]["g"]["lr"] = 1.0e-9  # G cannot answer: D learns alone
    r["optim"]["d"]["lr"] = 2.0e-3
    r["monitor"].update(d_win_checks=2, every=40)
    code, result, err = train(tmp_path, capsys, r)
    assert code == 0 and "d_wins" in result["warnings"] and "label_smoothing" in err


def test_nan_stops_with_the_last_good_checkpoint_and_resumes(digits_root, tmp_path, capsys):
    run_dir = tmp_path / "run"
    r = gan(digits_root, run_dir, max_steps=10, checkpoint_every=4, log_every=2, sample_every=10)
    r["monitor"]["inject_nan_step"] = 5
    code, _, err = train(tmp_path, capsys, r)
    assert code == 2 and "training stopped at step 6" in err and "step_00000004" in err
    ckpts = sorted(p.name for p in (run_dir / "checkpoints").glob("step_*"))
    assert ckpts == ["step_00000004"] and (run_dir / "checkpoints" / "latest").read_text() == "step_00000004"
    # the fault was the injection: without it the run resumes from the good checkpoint and finishes
    code, result, _ = train(tmp_path, capsys, {**r, "monitor": {**r["monitor"], "inject_nan_step": None}},
                            "--resume", "latest")
    assert code == 0 and result["step"] == 10 and all(math.isfinite(v) for k, v in result.items() if "/" in k)


def test_nan_skip_drops_the_update_and_goes_on(digits_root, tmp_path, capsys):
    r = gan(digits_root, tmp_path / "run", max_steps=6)
    r["monitor"].update(on_nan="skip", inject_nan_step=3)
    code, result, _ = train(tmp_path, capsys, r)
    assert code == 0 and result["health/skipped_updates"] >= 1
    assert math.isfinite(result["d/adv"]) and math.isfinite(result["g/adv"])
