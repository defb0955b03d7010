"""Reduced precision only where the hardware has it: translate --precision, the trainer's check and its hint."""
from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest
import torch

import i2i.precision as precision
from i2i.cli import main
from i2i.data.io import read_image, write_image

from .conftest import tiny_pix2pix, write_recipe
from .test_tiling import STACK, make_export


@pytest.fixture(autouse=True)
def _trust_tiling_nets(monkeypatch):
    monkeypatch.setenv("I2I_TRUSTED_MODULES", "tests.test_tiling")


def _inputs(folder):
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate([(24, 32), (24, 32), (70, 93)]):  # two batched images, one cut into tiles
        write_image(folder / f"{i}.png", (np.cumsum(rng.random((h, w, 3)), 1) % 1.0 * 255).astype(np.uint8))


def test_translate_bf16_runs_every_pass_in_autocast_and_stays_close_to_fp32(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(precision, "cpu_slowdown", lambda dtype: 0.5)  # this test is about the path, not the CPU
    export = make_export(tmp_path / "export", STACK)
    src = tmp_path / "in"
    _inputs(src)
    seen: list[tuple[bool, torch.dtype]] = []

    def spy(module, inputs, out):
        seen.append((torch.is_autocast_enabled("cpu"), out.dtype))

    from i2i.inference.export import load_export
    real_load = load_export

    def load_with_spy(*args, **kwargs):
        loaded = real_load(*args, **kwargs)
        loaded.nets["g"].body[0].register_forward_hook(spy)  # the first conv: bf16 under autocast
        return loaded
    monkeypatch.setattr("i2i.inference.export.load_export", load_with_spy)
    outputs = {}
    for mode in ("fp32", "bf16"):
        seen.clear()
        assert main(["translate", str(export), "-i", str(src), "-o", str(tmp_path / mode), "--tile", "48",
                     "--device", "cpu", "--precision", mode]) == 0
        figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert figures["images"] == 3 and figures["tiled"] == 1
        want = (mode == "bf16", torch.bfloat16 if mode == "bf16" else torch.float32)
        assert len(seen) > 3 and set(seen[1:]) == {want}  # seen[0]: translate's FLOP count, outside autocast
        outputs[mode] = {i: read_image(tmp_path / mode / f"{i}.png").astype(np.int64) for i in range(3)}
    for i in range(3):
        assert outputs["bf16"][i].shape == outputs["fp32"][i].shape and outputs["bf16"][i].dtype == np.int64
        diff = np.abs(outputs["bf16"][i] - outputs["fp32"][i])
        assert diff.mean() < 2.0 and diff.max() <= 24, (i, diff.mean(), diff.max())  # 8-bit levels


def test_translate_refuses_a_precision_the_cpu_emulates(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(precision, "cpu_slowdown", lambda dtype: 400.0)  # as measured on CPUs that emulate bf16
    export = make_export(tmp_path / "export", STACK)
    _inputs(tmp_path / "in")
    assert main(["translate", str(export), "-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--device", "cpu",
                 "--precision", "bf16"]) == 2
    err = capsys.readouterr().err
    assert "--precision bf16: bf16 ran 400x slower than fp32 on this CPU" in err and "use --precision fp32" in err
    assert not (tmp_path / "out").exists()
    with pytest.raises(SystemExit) as info:  # not a precision at all: argparse lists the choices
        main(["translate", str(export), "-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--precision", "fp8"])
    assert info.value.code == 2 and "choose from 'fp32', 'bf16', 'fp16'" in capsys.readouterr().err


def test_translate_folder_names_valid_precisions(tmp_path):
    from i2i.errors import I2IError
    from i2i.inference.export import load_export
    from i2i.inference.translate import translate_folder
    export = load_export(make_export(tmp_path / "export", STACK), allow_code=["tests"])
    _inputs(tmp_path / "in")
    with pytest.raises(I2IError, match="--precision 'half': choose fp32, bf16 or fp16"):
        translate_folder(export, tmp_path / "in", tmp_path / "out", precision="half")
    assert not (tmp_path / "out").exists()


def test_unsupported_asks_the_probe_only_for_reduced_precision(monkeypatch):
    calls = []
    monkeypatch.setattr(precision, "cpu_slowdown", lambda dtype: calls.append(dtype) or 2.0)
    cpu = torch.device("cpu")
    assert precision.unsupported("fp32", cpu) is None and precision.unsupported("no", cpu) is None and not calls
    assert precision.unsupported("bf16", cpu) is None and calls == [torch.bfloat16]  # 2x slower: allowed
    monkeypatch.setattr(precision, "cpu_slowdown", lambda dtype: 3.5)
    assert "3x slower" in precision.unsupported("fp16", cpu) or "4x slower" in precision.unsupported("fp16", cpu)


@pytest.mark.parametrize("slowdown, hint", [(0.4, True), (1.0, False)])
def test_cpu_training_in_fp32_says_when_bf16_is_faster(paired_root, tmp_path, caplog, monkeypatch, slowdown, hint):
    monkeypatch.setattr(precision, "cpu_slowdown", lambda dtype: slowdown)
    recipe = write_recipe(tmp_path / "r.yaml", tiny_pix2pix(paired_root, tmp_path / "run", max_steps=2))
    with caplog.at_level(logging.INFO, logger="i2i"):
        assert main(["train", str(recipe)]) == 0
    said = [r.getMessage() for r in caplog.records if "bf16 matmuls" in r.getMessage()]
    assert said == (["this CPU runs bf16 matmuls 2.5x faster than fp32: train.mixed_precision=bf16 may train "
                     "faster (autocast: convolutions in bf16, losses and weights in fp32)"] if hint else [])


def test_bf16_training_on_a_cpu_that_has_it_runs_and_logs_finite_losses(paired_root, tmp_path, monkeypatch):
    monkeypatch.setattr(precision, "cpu_slowdown", lambda dtype: 0.5)
    recipe = write_recipe(tmp_path / "r.yaml", tiny_pix2pix(paired_root, tmp_path / "run", max_steps=4,
                                                            mixed_precision="bf16"))
    assert main(["train", str(recipe)]) == 0
    logged = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    losses = {k: v for entry in logged for k, v in entry.items() if k.startswith(("g/", "d/"))}
    assert losses and all(np.isfinite(v) for v in losses.values())
    from safetensors.torch import load_file
    weights = load_file(tmp_path / "run" / "export" / "g.safetensors")
    assert all(v.dtype == torch.float32 for k, v in weights.items() if v.is_floating_point())  # fp32 master weights


@pytest.mark.skipif(not any(shutil.which(c) for c in ("g++", "clang++")), reason="torch.compile's CPU backend needs a "
                                                                               "C++ compiler")
def test_translate_compile_gives_the_eager_outputs(tmp_path, capsys):
    export = make_export(tmp_path / "export", STACK)
    src = tmp_path / "in"
    _inputs(src)
    for name, extra in (("eager", []), ("compiled", ["--compile"])):
        assert main(["translate", str(export), "-i", str(src), "-o", str(tmp_path / name), "--tile", "48",
                     "--device", "cpu", *extra]) == 0
        assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["images"] == 3
    for i in range(3):
        eager, compiled = (read_image(tmp_path / n / f"{i}.png").astype(np.int64) for n in ("eager", "compiled"))
        assert eager.shape == compiled.shape and np.abs(eager - compiled).max() <= 1


def test_translate_compile_failure_is_an_error_naming_the_flag(tmp_path, capsys, monkeypatch):
    def broken(net):
        def run(*args):
            raise torch._dynamo.exc.TorchDynamoException("InvalidCxxCompiler: No working C++ compiler found\nmore")
        return run
    monkeypatch.setattr(torch, "compile", broken)
    export = make_export(tmp_path / "export", STACK)
    _inputs(tmp_path / "in")
    assert main(["translate", str(export), "-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--device", "cpu",
                 "--compile"]) == 2
    err = capsys.readouterr().err
    assert ("--compile: torch.compile failed on this machine (InvalidCxxCompiler: No working C++ compiler found); "
            "translate without --compile") in err
    assert not list(tmp_path.glob("out/**/*.png"))  # it stops at the first pass, before writing anything
