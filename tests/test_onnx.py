"""ONNX export: every net type a registered model exports runs in onnxruntime as in PyTorch, at any batch and size.

The net types come from the registry: each registered model's exported nets (``model.export``) in the bundled
recipes (``recipes/demo/*.yaml`` and ``recipes/*.yaml``, by ``model.type``), each built with its ``smoke_args``.
"""
from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime", reason="the [onnx] extra is not installed")
pytest.importorskip("onnxscript", reason="the [onnx] extra is not installed")

import onnxruntime as ort  # noqa: E402

from i2i.build import import_builtins  # noqa: E402
from i2i.cli import main  # noqa: E402
from i2i.inference.export import load_export  # noqa: E402
from i2i.inference.onnx_export import export_net, net_inputs  # noqa: E402
from i2i.registry import MODELS, NETS  # noqa: E402

from .test_hostile_exports import make_tiny_export  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@cache
def exported_net_types() -> dict[str, list[str]]:
    """{net type: [models exporting it]} over every registered model's bundled recipes."""
    from i2i.recipe import load_recipe
    import_builtins()
    found: dict[str, set[str]] = {}
    for path in sorted([*ROOT.glob("recipes/*.yaml"), *ROOT.glob("recipes/demo/*.yaml")]):
        recipe = load_recipe(path)
        model = recipe["model"]["type"]
        if model not in MODELS.names():
            continue
        for name in MODELS.get(model).export:
            entry = (recipe.get("nets") or {}).get(name)
            if isinstance(entry, dict) and ":" not in str(entry.get("type")):
                found.setdefault(entry["type"], set()).add(model)
    return {k: sorted(v) for k, v in sorted(found.items())}


def test_every_registered_model_exports_a_known_net_type():
    models = {m for ms in exported_net_types().values() for m in ms}
    assert set(MODELS.names()) <= models, f"no bundled recipe shows what {set(MODELS.names()) - models} export"


PARITY: dict[str, float] = {}


@pytest.mark.slow  # about 4 s of CPU per net type (the exporter traces, optimises and onnxruntime loads each)
@pytest.mark.parametrize("net_type", exported_net_types())
def test_onnx_matches_torch_at_two_sizes(net_type: str, tmp_path: Path):
    cls = NETS.get(net_type)
    torch.manual_seed(0)
    net = cls(**cls.smoke_args).eval()
    info = export_net(net, tmp_path / f"{net_type}.onnx", {"type": net_type, **cls.smoke_args})
    session = ort.InferenceSession(str(tmp_path / f"{net_type}.onnx"), providers=["CPUExecutionProvider"])
    declared = {i.name: i.shape for i in session.get_inputs()}
    assert declared and all(shape[0] == "batch" for shape in declared.values()), declared
    images = [k for k, x in net_inputs(net, 2).items() if x.dim() == 4]
    m = info["size_multiple"]
    worst = 0.0
    # sizes of our own, not the exporter's checks: batch 1 and 4, two non-square image sizes where H, W are dynamic
    for batch, k in ((1, 3), (4, 5)):
        size = None
        if images and all(isinstance(d, str) for d in declared[images[0]][2:]):
            side = -(-max(info["min_size"], 16) // m) * m
            size = (side + k * m, side + (k - 1) * m)
        feeds = net_inputs(net, batch, size)
        with torch.no_grad():
            out = net(**feeds)
        want = [out] if isinstance(out, torch.Tensor) else list(out.values() if isinstance(out, dict) else out)
        got = session.run(None, {k: v.numpy() for k, v in feeds.items()})
        assert [g.shape for g in got] == [tuple(w.shape) for w in want]
        worst = max(worst, *(float(np.abs(g - w.numpy()).max()) for g, w in zip(got, want)))
    assert worst < 1e-4, f"{net_type}: max |onnxruntime - torch| = {worst}"
    PARITY[net_type] = worst
    print(f"\nonnx parity {net_type}: max abs diff {worst:.3g} (export check {info['max_abs_diff']:.3g})")


def test_cli_export_onnx_from_a_run_and_refusals(tmp_path: Path, capsys):
    export = make_tiny_export(tmp_path)
    run = export.parent
    assert main(["export", str(run), "--format", "onnx"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    out = run / "export_onnx"
    assert Path(result["onnx"]) == out and result["nets"] == {"g": "g.onnx"}
    assert sorted(p.name for p in out.iterdir()) == ["g.onnx", "meta.json", "recipe.yaml"]
    assert (out / "recipe.yaml").read_bytes() == (export / "recipe.yaml").read_bytes()
    meta = json.loads((out / "meta.json").read_text())
    assert meta["format"] == "onnx" and meta["directions"] == {"AtoB": "g"} and meta["nets"]["g"]["max_abs_diff"] < 1e-4
    assert meta["nets"]["g"]["inputs"]["x"]["shape"] == ["batch", 1, "height", "width"]
    # the file translates like the export does, with onnxruntime alone, at a size of our own
    g = load_export(export).nets["g"].eval()
    x = torch.rand(2, 1, 48, 80) * 2 - 1
    got = ort.InferenceSession(str(out / "g.onnx")).run(None, {"x": x.numpy()})[0]
    with torch.no_grad():
        assert np.abs(got - g(x).numpy()).max() < 1e-4
    # never into the export itself, nor over a folder that is not an ONNX export
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "notes.txt").write_text("mine")
    for target in (export, export / "sub", keep, run):
        assert main(["export", str(export), "--format", "onnx", "--output", str(target)]) == 2
        assert "overlaps" in (err := capsys.readouterr().err) or "not an ONNX export" in err, err
    assert (keep / "notes.txt").read_text() == "mine" and (export / "meta.json").is_file()


@pytest.mark.slow
def test_onnx_from_a_checkpoint_and_over_a_previous_onnx_export(tmp_path: Path, paired_root: Path, capsys):
    from .recipes import tiny_pix2pix, write_recipe
    run = tmp_path / "run"
    assert main(["train", str(write_recipe(tmp_path / "r.yaml", tiny_pix2pix(paired_root, run)))]) == 0
    capsys.readouterr()
    checkpoint = run / "checkpoints" / "step_00000004"
    assert main(["export", str(checkpoint), "--format", "onnx"]) == 0
    out = Path(json.loads(capsys.readouterr().out.strip().splitlines()[-1])["onnx"])
    assert out == run / "export_step_00000004_onnx" and json.loads((out / "meta.json").read_text())["step"] == 4
    # the checkpoint's weights are the run's export's (no EMA): both ONNX files give the same images
    x = {"x": (np.random.default_rng(0).random((2, 1, 32, 48), dtype=np.float32) * 2 - 1)}
    from_checkpoint = ort.InferenceSession(str(out / "g.onnx")).run(None, x)[0]
    assert main(["export", str(run), "--format", "onnx", "--output", str(out)]) == 0  # replaces the ONNX export
    assert json.loads((out / "meta.json").read_text())["from_export"] == str(run / "export")
    np.testing.assert_allclose(ort.InferenceSession(str(out / "g.onnx")).run(None, x)[0], from_checkpoint, atol=1e-6)
    assert not [p.name for p in run.iterdir() if p.name.startswith(".export")]  # no temporary folder left
