"""Hostile exports: an export is data, and `i2i translate` must refuse a broken or malicious one cleanly.

Every case starts from a real (tiny pix2pix) export and breaks one thing. Each must end with exit status 2 and
one `i2i: error:` line naming what is wrong, never a traceback, and nothing may be written to --output.

Categories: path (meta.json or a symlink leads outside the export folder), shape (an edited recipe.yaml or a
replaced weights file whose tensor names or shapes do not fit the net; the net is compared on the meta device, so
nothing is allocated before the refusal), dtype (integer or bool tensors where the net holds floats, and the
reverse), missing (files, keys and tensors that are not there), file (weights that are not safetensors, or not a
regular file), meta (a meta.json that is not an export's), recipe (a recipe.yaml that is broken or names code).

The same path checks guard `i2i interpolate` and `model.init_from` (the other readers of meta.json's files).
"""
from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

from i2i.cli import main
from i2i.data.io import write_image
from i2i.inference.export import load_export, write_export
from i2i.recipe import Recipe

from .conftest import tiny_pix2pix, write_recipe

CATEGORIES = {"path", "shape", "dtype", "missing", "file", "meta", "recipe"}


def make_tiny_export(folder: Path, seed: int = 0) -> Path:
    """The generator of the tests' tiny pix2pix as an export, written the way the trainer writes one."""
    from i2i.nets import build_net
    recipe = Recipe.of(tiny_pix2pix(folder / "data", folder / "run"), "tiny_pix2pix")
    torch.manual_seed(seed)
    net = build_net(recipe, "g", file="tiny")
    meta = {"model": "pix2pix", "step": seed, "ema": False, "directions": {"AtoB": "g"}, "name": "tiny_pix2pix"}
    return write_export(recipe, {"g": net.state_dict()}, folder / "export", meta)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    return make_tiny_export(tmp_path_factory.mktemp("pristine"))


# ---------------------------------------------------------------- mutations
def edit_meta(export: Path, change: Callable[[dict], object]) -> None:
    meta = json.loads((export / "meta.json").read_text())
    change(meta)
    (export / "meta.json").write_text(json.dumps(meta))


def set_files(value: object) -> Callable[[Path, Path], None]:
    return lambda export, outside: edit_meta(export, lambda m: m.__setitem__("files", value))


def set_file_g(value: object) -> Callable[[Path, Path], None]:
    return set_files({"g": value})


def edit_recipe(change: Callable[[dict], object]) -> Callable[[Path, Path], None]:
    def mutate(export: Path, outside: Path) -> None:
        recipe = yaml.safe_load((export / "recipe.yaml").read_text())
        change(recipe)
        (export / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    return mutate


def set_net_arg(key: str, value: object) -> Callable[[Path, Path], None]:
    return edit_recipe(lambda r: r["nets"]["g"].__setitem__(key, value))


def edit_weights(change: Callable[[dict[str, torch.Tensor]], object]) -> Callable[[Path, Path], None]:
    def mutate(export: Path, outside: Path) -> None:
        state = load_file(str(export / "g.safetensors"))
        change(state)
        save_file(state, str(export / "g.safetensors"))
    return mutate


def first_conv(state: dict) -> str:
    return next(k for k, v in state.items() if v.ndim == 4)


def first_bn_count(state: dict) -> str:
    return next(k for k in state if k.endswith("num_batches_tracked"))


def write(rel: str, content: bytes | str) -> Callable[[Path, Path], None]:
    def mutate(export: Path, outside: Path) -> None:
        target = export / rel
        target.unlink(missing_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
    return mutate


def remove(rel: str) -> Callable[[Path, Path], None]:
    return lambda export, outside: (export / rel).unlink()


def weights_elsewhere(rel: str) -> Callable[[Path, Path], None]:
    """Valid weights outside the export, and meta.json pointing at them with ``rel`` (the bug: they loaded)."""
    def mutate(export: Path, outside: Path) -> None:
        shutil.copy(export / "g.safetensors", outside / "g.safetensors")
        (export / "g.safetensors").unlink()
        edit_meta(export, lambda m: m.__setitem__("files", {"g": rel.replace("@OUTSIDE@", str(outside))}))
    return mutate


def symlink_out(rel: str) -> Callable[[Path, Path], None]:
    """``rel`` in the export becomes a symlink to a valid copy of it outside the folder."""
    def mutate(export: Path, outside: Path) -> None:
        shutil.copy(export / rel, outside / rel)
        (export / rel).unlink()
        os.symlink(outside / rel, export / rel)
    return mutate


def symlink_loop(export: Path, outside: Path) -> None:
    (export / "g.safetensors").unlink()
    os.symlink("loop.safetensors", export / "g.safetensors")
    os.symlink("g.safetensors", export / "loop.safetensors")


def fifo_weights(export: Path, outside: Path) -> None:
    (export / "g.safetensors").unlink()
    os.mkfifo(export / "g.safetensors")  # opening it would block forever


def folder_weights(export: Path, outside: Path) -> None:
    (export / "g.safetensors").unlink()
    (export / "g.safetensors").mkdir()


def pickled_weights(export: Path, outside: Path) -> None:
    state = load_file(str(export / "g.safetensors"))
    (export / "g.safetensors").unlink()
    torch.save(state, export / "g.safetensors")  # a pickle under the safetensors name: never unpickled


def truncated_weights(export: Path, outside: Path) -> None:
    data = (export / "g.safetensors").read_bytes()
    (export / "g.safetensors").write_bytes(data[: len(data) // 2])


def lying_header(export: Path, outside: Path) -> None:
    """A header that declares a 2**40-element tensor over a few bytes of data."""
    header = json.dumps({"w": {"dtype": "F32", "shape": [2**20, 2**20], "data_offsets": [0, 2**42]}}).encode()
    (export / "g.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + b"\0" * 16)


def recipe_from_outside(export: Path, outside: Path) -> None:
    symlink_out("recipe.yaml")(export, outside)


@dataclass
class Case:
    id: str
    category: str
    mutate: Callable[[Path, Path], None]
    fragment: str  # the error line contains this
    meta_only: bool = False  # the net must never be built for real (a shape or dtype problem)


CASES = [
    # path: everything an export names must be inside its folder, symlinks resolved
    Case("path-parent", "path", weights_elsewhere("../elsewhere/g.safetensors"), "leads outside the export folder"),
    Case("path-etc-passwd", "path", set_file_g("../../../../etc/passwd"), "leads outside the export folder"),
    Case("path-absolute", "path", weights_elsewhere("@OUTSIDE@/g.safetensors"), "leads outside the export folder"),
    Case("path-climb-back", "path", weights_elsewhere("sub/../../elsewhere/g.safetensors"),
         "leads outside the export folder"),
    Case("path-symlinked-weights", "path", symlink_out("g.safetensors"), "leads outside the export folder"),
    Case("path-symlinked-recipe", "path", recipe_from_outside, "leads outside the export folder"),
    Case("path-symlinked-meta", "path", symlink_out("meta.json"), "leads outside the export folder"),
    Case("path-the-folder-itself", "path", set_file_g("."), "leads outside the export folder"),
    Case("path-symlink-loop", "path", symlink_loop, "g.safetensors"),
    Case("path-nul", "path", set_file_g("g.safetensors\0.txt"), "must be the name of a file"),
    # shape: an edited recipe or replaced weights, refused from the header with the net on the meta device
    Case("shape-base-channels-256", "shape", set_net_arg("base_channels", 256), "do not fit nets.g", True),
    Case("shape-base-channels-absurd", "shape", set_net_arg("base_channels", 10**6), "do not fit nets.g", True),
    Case("shape-depth", "shape", set_net_arg("depth", 5), "do not fit nets.g", True),
    Case("shape-out-channels", "shape", set_net_arg("out_channels", 1), "do not fit nets.g", True),
    Case("shape-norm-instance", "shape", set_net_arg("norm", "instance"), "do not fit nets.g", True),
    Case("shape-weights-transposed", "shape",
         edit_weights(lambda s: s.__setitem__(first_conv(s), s[first_conv(s)].transpose(0, 1).contiguous())),
         "in the export but", True),
    Case("shape-weights-grown", "shape",
         edit_weights(lambda s: s.__setitem__(first_conv(s), torch.zeros(64, 1, 4, 4))), "in the export but", True),
    # dtype: the right shapes holding the wrong kind of number
    Case("dtype-int-weights", "dtype", edit_weights(lambda s: s.update({k: v.to(torch.int32) for k, v in s.items()
                                                                           if v.is_floating_point()})),
         "holds integer numbers", True),
    Case("dtype-one-bool", "dtype", edit_weights(lambda s: s.__setitem__(first_conv(s), s[first_conv(s)] > 0)),
         "holds bool numbers", True),
    Case("dtype-float-counter", "dtype",
         edit_weights(lambda s: s.__setitem__(first_bn_count(s), s[first_bn_count(s)].double())),
         "expects integer", True),
    # missing: files, keys and tensors
    Case("missing-weights-file", "missing", remove("g.safetensors"), "no such file"),
    Case("missing-recipe", "missing", remove("recipe.yaml"), "recipe.yaml"),
    Case("missing-files-key", "missing", set_files(None), "'files' must map net names"),
    Case("missing-files-empty", "missing", set_files({}), "'files' must map net names"),
    Case("missing-tensor", "missing", edit_weights(lambda s: s.pop(first_conv(s))), "is not in the export", True),
    Case("missing-extra-tensor", "missing", edit_weights(lambda s: s.__setitem__("smuggled", torch.zeros(3))),
         "the export has tensor 'smuggled'", True),
    Case("missing-renamed-tensor", "missing",
         edit_weights(lambda s: s.__setitem__("renamed", s.pop(first_conv(s)))), "is not in the export", True),
    Case("missing-net-in-recipe", "missing", edit_recipe(lambda r: r["nets"].pop("g")),
         "nets.g is missing, but meta.json lists weights for it"),
    Case("missing-direction-target", "missing",
         lambda export, outside: edit_meta(export, lambda m: m.__setitem__("directions", {"AtoB": "nope"})),
         "'directions' must map directions"),
    Case("missing-directions", "missing", lambda export, outside: edit_meta(export, lambda m: m.pop("directions")),
         "no generator to translate with"),
    # file: what sits at the weights' name is not safetensors weights
    Case("file-pickle", "file", pickled_weights, "as safetensors"),
    Case("file-empty", "file", write("g.safetensors", b""), "as safetensors"),
    Case("file-garbage", "file", write("g.safetensors", bytes(range(256)) * 8), "as safetensors"),
    Case("file-truncated", "file", truncated_weights, "g.safetensors"),
    Case("file-lying-header", "file", lying_header, "as safetensors"),
    Case("file-fifo", "file", fifo_weights, "not a regular file"),
    Case("file-folder", "file", folder_weights, "not a regular file"),
    Case("file-not-safetensors-name", "file",
         lambda export, outside: (os.rename(export / "g.safetensors", export / "g.pt"), set_file_g("g.pt")(export,
                                                                                                        outside)),
         "not a .safetensors file"),
    # meta: a meta.json that is not an export's
    Case("meta-not-json", "meta", write("meta.json", "{not json"), "unreadable export"),
    Case("meta-a-list", "meta", write("meta.json", "[1, 2]"), "a JSON object is expected"),
    Case("meta-files-a-string", "meta", set_files("g.safetensors"), "'files' must map net names"),
    Case("meta-file-a-number", "meta", set_file_g(42), "must be the name of a file"),
    Case("meta-directions-a-list", "meta",
         lambda export, outside: edit_meta(export, lambda m: m.__setitem__("directions", ["g"])),
         "'directions' must map directions"),
    # recipe: broken, or naming code
    Case("recipe-garbage", "recipe", write("recipe.yaml", "nets: [unclosed\n"), "recipe.yaml"),
    Case("recipe-empty", "recipe", write("recipe.yaml", ""), "recipe.yaml"),
    Case("recipe-unknown-type", "recipe", set_net_arg("type", "no_such_net"), "no_such_net"),
    Case("recipe-dotted-type", "recipe", set_net_arg("type", "os:system"), "imports module 'os'"),
    Case("recipe-plugin", "recipe", edit_recipe(lambda r: r.__setitem__("plugins", ["evil_plugin"])),
         "imports module 'evil_plugin'"),
    Case("recipe-net-not-a-mapping", "recipe", edit_recipe(lambda r: r["nets"].__setitem__("g", "unet")),
         "nets.g is not a net entry"),
    Case("recipe-bad-argument", "recipe", set_net_arg("depth", "deep"), "nets.g.depth"),
]


# ---------------------------------------------------------------- running a case
def inputs(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_image(folder / "a.png", (np.arange(32 * 32 * 3) % 251).reshape(32, 32, 3).astype(np.uint8))
    return folder


def hostile_copy(pristine: Path, tmp_path: Path, case: Case) -> tuple[Path, Path]:
    export, outside = tmp_path / "run" / "export", tmp_path / "run" / "elsewhere"  # ../elsewhere of the export
    shutil.copytree(pristine, export)
    outside.mkdir()
    case.mutate(export, outside)
    return export, outside


@pytest.fixture
def builds(monkeypatch) -> list[str]:
    """The device of every net build_net makes (patched where load_export imports it)."""
    import i2i.nets
    seen: list[str] = []
    real = i2i.nets.build_net

    def spy(*args, **kwargs):
        net = real(*args, **kwargs)
        seen.append(next(iter(net.state_dict().values())).device.type)
        return net
    monkeypatch.setattr(i2i.nets, "build_net", spy)
    return seen


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_export_is_refused_before_anything_is_written(case: Case, pristine, tmp_path, capsys, builds):
    export, _ = hostile_copy(pristine, tmp_path, case)
    out = tmp_path / "out"
    code = main(["translate", str(export.parent), "-i", str(inputs(tmp_path / "in")), "-o", str(out),
                 "--device", "cpu"])
    stdout, err = capsys.readouterr()
    assert "Traceback" not in err and "internal error" not in err, err
    assert code == 2, f"exit {code}; stderr {err!r}"
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("i2i: error: "), err
    assert case.fragment in err, f"expected {case.fragment!r}: {err}"
    assert not out.exists(), "nothing may be written to --output"
    if case.meta_only:
        assert builds and set(builds) == {"meta"}, f"the net was built for real before the refusal: {builds}"


def test_corpus_covers_every_category():
    assert {c.category for c in CASES} == CATEGORIES
    assert len({c.id for c in CASES}) == len(CASES)


def test_the_pristine_export_translates(pristine, tmp_path, capsys, builds):
    """The corpus tests what each case breaks: unbroken, the export loads (meta check first, then for real)."""
    out = tmp_path / "out"
    assert main(["translate", str(pristine), "-i", str(inputs(tmp_path / "in")), "-o", str(out),
                 "--device", "cpu"]) == 0, capsys.readouterr().err
    assert (out / "a.png").is_file() and builds == ["meta", "cpu"]


def test_half_precision_weights_still_load(pristine, tmp_path):
    """Only the kind of number is checked: F16 weights load into the F32 net, as load_state_dict converts them."""
    export = tmp_path / "export"
    shutil.copytree(pristine, export)
    state = load_file(str(export / "g.safetensors"))
    save_file({k: v.half() if v.is_floating_point() else v for k, v in state.items()}, str(export / "g.safetensors"))
    net = load_export(export).nets["g"]
    assert next(net.parameters()).dtype == torch.float32


def test_an_edited_recipe_allocates_nothing_before_the_refusal(pristine, tmp_path, builds):
    """The issue's case: base_channels 8 -> 256 in recipe.yaml used to build the 2.6 GB net, then fail to load."""
    export, _ = hostile_copy(pristine, tmp_path, Case("x", "shape", set_net_arg("base_channels", 256), ""))
    from i2i.errors import I2IError
    with pytest.raises(I2IError, match=r"do not fit nets\.g .*tensor '.*' is \(8, 1, 4, 4\) in the export but "
                                       r"\(256, 1, 4, 4\) in nets\.g"):
        load_export(export)
    assert builds == ["meta"]


# ---------------------------------------------------------------- the other readers of meta.json's files
@pytest.mark.parametrize("case", [c for c in CASES if c.category == "path"], ids=lambda c: c.id)
def test_interpolate_refuses_paths_outside_the_export(case: Case, pristine, tmp_path, capsys):
    export, _ = hostile_copy(pristine, tmp_path, case)
    out = tmp_path / "blend"
    code = main(["interpolate", str(pristine), str(export), "--alpha", "0.5", "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and case.fragment in err, err
    assert not out.exists()


@pytest.mark.parametrize("rel", ["../elsewhere/g.safetensors", "../../../../etc/passwd", "@SYMLINK@"])
def test_init_from_refuses_paths_outside_the_export(rel, pristine, tmp_path, capsys):
    mutate = symlink_out("g.safetensors") if rel == "@SYMLINK@" else \
        weights_elsewhere(rel) if "elsewhere" in rel else set_file_g(rel)
    export, _ = hostile_copy(pristine, tmp_path, Case("x", "path", mutate, ""))
    (tmp_path / "data").mkdir()
    recipe = tiny_pix2pix(tmp_path / "data", tmp_path / "run2")
    recipe["model"]["init_from"] = {"g": str(export)}
    code = main(["check", str(write_recipe(tmp_path / "r.yaml", recipe))])
    err = capsys.readouterr().err
    assert code == 2 and "key 'model.init_from.g'" in err and "leads outside the export folder" in err, err
