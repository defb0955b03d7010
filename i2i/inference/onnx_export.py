"""ONNX export: one ``<net>.onnx`` per net of an export bundle, for runtimes without i2i or PyTorch.

Each net goes through ``torch.onnx.export`` (the torch.export-based exporter) with a dynamic batch size on every
input and a dynamic height and width on every image input (4-D), so one file serves any batch and image size the
net accepts (its ``size_multiple`` and ``min_size`` are written to meta.json). Inputs are named after the net's
``forward`` arguments (``x``; ``z``, ``y``, ``c`` for generators of noise, labels and codes; ``x`` and ``z`` for a
multimodal translator). Images are float32 NCHW in [-1, 1], outputs likewise.

Every file is checked before the folder is written: onnxruntime runs it at two batch sizes and two image sizes and
its outputs are compared with the PyTorch net's (the largest absolute difference goes to meta.json). The folder
gets ``recipe.yaml`` (the export's) and ``meta.json`` beside the ``.onnx`` files, written into a temporary sibling
and swapped into place, as exports are.
"""
from __future__ import annotations

import contextlib
import inspect
import io
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data.io import show_path, umask_mode
from ..errors import I2IError
from .export import Export

log = logging.getLogger("i2i")

PARITY_LIMIT = 1e-3  # largest |onnxruntime - torch| accepted, relative to max(1, |torch output|)
FORMAT = "onnx"


def _require() -> Any:
    version = tuple(int(p) for p in torch.__version__.split("+")[0].split(".")[:2] if p.isdigit())
    if version < (2, 6):
        raise I2IError(f"ONNX export uses torch.export's dynamic shapes, which need torch >= 2.6 (this is "
                       f"{torch.__version__})")
    try:
        import onnx  # noqa: F401
        import onnxruntime
        import onnxscript  # noqa: F401  (torch.onnx's exporter builds the graph with it)
    except ImportError as exc:
        raise I2IError(f"ONNX export needs onnx, onnxscript and onnxruntime ({exc.name} is missing): "
                       "pip install 'i2i[onnx]'") from None
    return onnxruntime


def _tensors(out: Any) -> list[torch.Tensor]:
    """A net's outputs flattened as the exporter flattens them (tensors; tuples, lists and dicts in order)."""
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (list, tuple)):
        return [t for o in out for t in _tensors(o)]
    return []


def _output_names(out: Any) -> list[str]:
    if isinstance(out, torch.Tensor):
        return ["output"]
    if isinstance(out, dict) and all(isinstance(v, torch.Tensor) for v in out.values()):
        return [str(k) for k in out]
    return [f"output_{i}" for i in range(len(_tensors(out)))]


def image_sizes(cfg: dict | None) -> tuple[int, int]:
    """(size multiple, smallest side) of a net's recipe entry; (1, 1) when the registry cannot say."""
    from ..registry import net_size_rules
    try:
        return net_size_rules(cfg) if isinstance(cfg, dict) and "type" in cfg else (1, 1)
    except Exception:  # noqa: BLE001  a plug-in net's own size rules failing: fall back to no rule
        return 1, 1


def net_inputs(net: nn.Module, batch: int, size: tuple[int, int] | None = None) -> dict[str, torch.Tensor]:
    """Named inputs for ``net.forward``: its ``example_inputs`` by argument name (None left out), image inputs
    resized to ``size`` (height, width) when given, and z ~ N(0, I) for a translator with a latent code."""
    if not hasattr(net, "example_inputs"):
        raise I2IError(f"{type(net).__name__} has no example_inputs(): the ONNX export cannot know its inputs")
    params = list(inspect.signature(net.forward).parameters)
    seed = batch * 1000 + (size[0] if size else 0)
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        example = net.example_inputs(batch=batch)
    named = {}
    for name, x in zip(params, example):
        if x is None:
            continue
        if x.dim() == 4 and size is not None:  # an image at the requested size, values in [-1, 1]
            x = torch.rand(batch, x.shape[1], *size, generator=gen) * 2 - 1
        named[name] = x
    if "z" in params and "z" not in named and (getattr(net, "z_dim", 0) or 0) > 0:
        named["z"] = torch.randn(batch, net.z_dim, generator=gen)
    return named


def _shapes(inputs: dict[str, torch.Tensor]) -> dict[str, dict[int, Any]]:
    """Batch, height and width left to the exporter (AUTO): dynamic unless the net fixes them (a fixed-size
    DCGAN net keeps its height and width, and the ONNX file says so)."""
    from torch.export import Dim
    return {k: ({0: Dim.AUTO, 2: Dim.AUTO, 3: Dim.AUTO} if x.dim() == 4 else {0: Dim.AUTO}) for k, x in inputs.items()}


def _name_dims(model) -> None:
    """The exporter's symbols (s77, s53 ...) renamed batch, height, width (by input position) everywhere, and the
    sizes it writes as symbols ('16': a fixed-size net's height) made fixed sizes."""
    import re
    values = [*model.graph.input, *model.graph.output, *model.graph.value_info]
    for value in values:
        for d in value.type.tensor_type.shape.dim:
            if d.dim_param.isdigit():
                d.dim_value = int(d.dim_param)
    names: dict[str, str] = {}
    for value in model.graph.input:
        dims = value.type.tensor_type.shape.dim
        for i, label in ((0, "batch"), (2, "height"), (3, "width")):
            if i < len(dims) and dims[i].dim_param and dims[i].dim_param not in names:
                names[dims[i].dim_param] = label if label not in names.values() else f"{value.name}_{label}"
    if not names:
        return
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, names)) + r")\b")
    for value in values:
        for d in value.type.tensor_type.shape.dim:
            if d.dim_param:
                d.dim_param = pattern.sub(lambda m: names[m.group(1)], d.dim_param)


def _input_dims(model) -> dict[str, dict]:
    import onnx
    out = {}
    for value in model.graph.input:
        out[value.name] = {"shape": [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim],
                           "dtype": onnx.helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type).name}
    return out


def _check_sizes(dims: dict[str, dict], inputs: dict[str, torch.Tensor], multiple: int) -> list[tuple]:
    """(batch, image size or None) to check: the export's, then another batch and, where the file's height and
    width are dynamic, another (non-square) size."""
    batch_dynamic = all(isinstance(d["shape"][0], str) for d in dims.values())
    images = [(k, x) for k, x in inputs.items() if x.dim() == 4]
    first = (images[0][1].shape[2], images[0][1].shape[3]) if images else None
    spatial = bool(images) and all(isinstance(v, str) for k, _ in images for v in dims[k]["shape"][2:])
    batch = next(iter(inputs.values())).shape[0]
    second = (first[0] + multiple, first[1] + 2 * multiple) if spatial else first
    return [(batch, first), (batch + 1 if batch_dynamic else batch, second)]


@contextlib.contextmanager
def _quiet(*names: str):
    """The exporter's optimisation passes log every step at INFO; only their warnings are shown."""
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


@torch.no_grad()
def export_net(net: nn.Module, path: Path, cfg: dict | None = None) -> dict:
    """Write ``net`` to ``path`` as ONNX and check it with onnxruntime at two batch and image sizes.

    Returns what meta.json records for it: inputs, outputs, size rules, opset and the parity figures."""
    ort = _require()
    import onnx
    net = net.cpu().eval()
    multiple, minimum = image_sizes(cfg)
    inputs = net_inputs(net, 2)
    names = _output_names(net(**inputs))
    captured = io.StringIO()  # the exporter prints its progress; keep stdout for the command's JSON line
    try:
        with contextlib.redirect_stdout(captured), _quiet("onnxscript", "onnx_ir", "torch.onnx"):
            # torch.export first: the program knows which sizes the net fixes (given the module, the ONNX
            # exporter would declare a fixed-size net's height and width dynamic)
            program = torch.export.export(net, (), kwargs=inputs, dynamic_shapes=_shapes(inputs))
            torch.onnx.export(program, (), str(path), input_names=list(inputs), output_names=names, dynamo=True,
                              external_data=False)
    except Exception as exc:  # noqa: BLE001  the exporter's errors are many kinds; all mean "cannot export"
        log.debug("torch.onnx.export output:\n%s", captured.getvalue())
        text = str(exc).strip()
        raise I2IError(f"{type(net).__name__}: torch.onnx.export failed: {type(exc).__name__}: "
                       f"{text.splitlines()[0][:400] if text else ''}") from exc
    model = onnx.load(str(path), load_external_data=False)
    _name_dims(model)
    onnx.save(model, str(path))
    dims = _input_dims(model)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst, checked = 0.0, []
    for batch, size in _check_sizes(dims, inputs, multiple):
        feeds = net_inputs(net, batch, size)
        want = [t.float().numpy() for t in _tensors(net(**feeds))]
        got = session.run(None, {k: v.numpy() for k, v in feeds.items()})
        shown = {k: tuple(v.shape) for k, v in feeds.items()}
        if len(got) != len(want) or any(g.shape != w.shape for g, w in zip(got, want)):
            raise I2IError(f"{type(net).__name__}: onnxruntime gives shapes {[g.shape for g in got]} for inputs "
                           f"{shown}, PyTorch {[w.shape for w in want]}; not written")
        diff = max(float(np.abs(g - w).max()) for g, w in zip(got, want))
        scale = max(1.0, *(float(np.abs(w).max()) for w in want))
        if not diff <= PARITY_LIMIT * scale:
            raise I2IError(f"{type(net).__name__}: onnxruntime's output differs from PyTorch's by {diff:.3g} at "
                           f"{shown}; not written")
        worst = max(worst, diff)
        checked.append({k: list(v) for k, v in shown.items()})
    return {"file": path.name, "inputs": dims, "outputs": names, "size_multiple": multiple, "min_size": minimum,
            "opset": next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None),
            "checked_inputs": checked, "max_abs_diff": worst}


def _is_onnx_folder(path: Path) -> bool:
    try:
        return json.loads((path / "meta.json").read_text(encoding="utf-8")).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def _check_output(export: Export, out: Path) -> None:
    source = export.path.resolve()
    target = out.resolve()
    if target == source or source in target.parents or target in source.parents:
        raise I2IError(f"--output {show_path(out)} overlaps the export {show_path(export.path)}; choose another folder")
    if target.exists() and (not target.is_dir() or (any(target.iterdir()) and not _is_onnx_folder(target))):
        raise I2IError(f"--output {show_path(out)} exists and is not an ONNX export folder (no meta.json with format "
                       "onnx); choose a new or empty folder (a previous ONNX export there is replaced)")


def export_onnx(export: Export, output: str | os.PathLike) -> dict:
    """One ``<net>.onnx`` per net of ``export``, with recipe.yaml and meta.json, into ``output``."""
    _require()
    out = Path(output)
    _check_output(export, out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        nets = {}
        for name, net in export.nets.items():
            cfg = (export.recipe.get("nets") or {}).get(name)
            nets[name] = export_net(net, tmp / f"{name}.onnx", cfg)
            log.info("onnx: %s -> %s (max |onnxruntime - torch| = %.3g)", name, nets[name]["file"],
                     nets[name]["max_abs_diff"])
        shutil.copyfile(export.path / "recipe.yaml", tmp / "recipe.yaml")
        keep = ("model", "name", "step", "ema", "directions", "task", "scale", "class_names")
        meta = {"format": FORMAT, "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "from_export": str(export.path),
                **{k: export.meta[k] for k in keep if k in export.meta}, "value_range": [-1.0, 1.0],
                "torch": torch.__version__, "nets": nets}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        for written in tmp.iterdir():
            written.chmod(umask_mode())
        tmp.chmod(umask_mode(folder=True))
        old = out.with_name(f".{out.name}.old")
        if out.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"onnx": str(out), "nets": {k: v["file"] for k, v in nets.items()},
            "max_abs_diff": {k: v["max_abs_diff"] for k, v in nets.items()}}
