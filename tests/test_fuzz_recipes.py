"""Fuzz corpus: hostile recipes derived from every bundled recipe go through `i2i check`.

Every case must end with exit status 2 and one short `i2i: error:` line on stderr that names the recipe file and,
where a key is at fault, its key path: never a traceback, never an uncaught exception. The corpus is built when
the tests are collected, from recipes/*.yaml and recipes/demo/*.yaml, so a new bundled recipe is fuzzed too.

Categories: syntax (broken YAML text), file (what is not a recipe file), base (broken base: chains), override
(malformed KEY=VALUE), type (a wrong type at every leaf), number (NaN, infinity, negative and absurd numbers at
every number), unknown_key (at every level), component (missing and dotted types, plug-ins), section (missing
or empty sections), data_root, size (absurd crop, load and batch sizes; nets too large to build).

Cases that would run the same code are made once: a leaf is identified by the class that takes it and its
argument name (nets.g.base_channels of a unet_generator in ten recipes is one leaf), and the wrong values are
dealt out in turn over the leaves of each kind, so every kind of wrong value is used and the file stays fast.

Note for recipe writers: an integer in a recipe is fuzzed as a count (negative and huge values must be refused),
so write floats with a dot (weight: 1.0).
"""
from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from i2i.cli import main
from i2i.recipe import REQUIRED_SECTIONS, load_recipe

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = sorted((ROOT / "recipes").glob("*.yaml")) + sorted((ROOT / "recipes" / "demo").glob("*.yaml"))
DATA_ROOT = Path(tempfile.gettempdir()) / "i2i_fuzz_data"  # made below: every data set's layout, one image each
FREE_TEXT = {"root", "split", "classifier", "classifier_data", "name", "output_dir", "data"}   # any text is valid there
SPAN_KEYS = "data.mask."  # a number or a [min, max] pair is valid there (i2i/data/masks.py): a pair must be in order
HUGE = 10**12
CASE_FILE = "case.yaml"
CATEGORIES = {"syntax", "file", "base", "override", "type", "number", "unknown_key", "component", "section",
              "data_root", "size"}


@dataclass
class Case:
    id: str
    category: str
    recipe: Path | None = None                          # a bundled recipe, checked with overrides
    overrides: tuple[str, ...] = ()
    files: dict[str, str | bytes] = field(default_factory=dict)   # written to tmp; CASE_FILE is checked
    keys: tuple[str, ...] = ()                           # the message names one of these key paths
    fragment: str = ""                                   # ... and contains this
    checked: str | None = None                           # the path given to `i2i check` when not CASE_FILE


# ---------------------------------------------------------------- helpers
_SEEN: set[tuple] = set()
_TURN: dict[str, int] = {}


def fresh(*signature: Any) -> bool:
    """True the first time a signature (what code a case exercises) is seen."""
    if signature in _SEEN:
        return False
    _SEEN.add(signature)
    return True


def deal(group: str, options: list) -> Any:
    """The next option of ``group`` in turn: over many leaves every option is used."""
    turn = _TURN.get(group, 0)
    _TURN[group] = turn + 1
    return options[turn % len(options)]


def label(path: Path) -> str:
    return str(path.relative_to(ROOT / "recipes").with_suffix(""))


_RESOLVED: dict[Path, dict] = {}


def resolved(path: Path) -> dict:
    if path not in _RESOLVED:
        _RESOLVED[path] = dict(load_recipe(path))
    return copy.deepcopy(_RESOLVED[path])


def make_data_root(root: Path) -> Path:
    """One folder in every built-in data set's layout, since `i2i check` lists the data (it opens no image):
    train/A + train/B (paired 'folders', and 'aligned' lists train/ recursively; 'labeled' sees classes A and B),
    trainA/ + trainB/ (unpaired); superres_folder and single_folder take every image under it."""
    import numpy as np
    from PIL import Image
    for folder in ("train/A", "train/B", "trainA", "trainB"):
        (root / folder).mkdir(parents=True, exist_ok=True)
        if not (root / folder / "0.png").is_file():
            Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / folder / "0.png")
    return root


make_data_root(DATA_ROOT)


def baseline(path: Path) -> list[str]:
    """Overrides that make a bundled recipe pass `i2i check` here: its data root must exist (demos build theirs)."""
    data = resolved(path)
    out = [] if data["data"].get("demo") is not None else [f"data.root={DATA_ROOT}"]
    # what an earlier run or a fetched file provides (ESRGAN stage 2) is switched off, as data.root is pointed here
    if isinstance(data.get("model"), dict) and data["model"].get("init_from") is not None:
        out.append("model.init_from=null")
    if isinstance((data.get("losses") or {}).get("perceptual"), dict):
        out.append("losses.perceptual.weights=null")
    if data["data"].get("attributes") and data["data"].get("demo") is None:
        out.append("data.attributes=null")  # CelebA's attribute names: the fuzz data has domain folders A and B
    return out


def self_contained(path: Path) -> dict:
    """The resolved recipe (base: merged) with a data root that exists, as a plain dict to mutate and write."""
    return dict(load_recipe(path, baseline(path)))


def dump(data: dict) -> str:
    return yaml.safe_dump(data, sort_keys=False)


def typo(word: str) -> str:
    return word + word[-1]


def context(data: dict, key: str) -> tuple[str, str]:
    """('nets:unet_generator', 'base_channels') for nets.g.base_channels: the class that takes a key, and the key."""
    parts = key.split(".")
    ctx, rel, node = parts[0], parts[1:], data
    for i, part in enumerate(parts[:-1]):
        node = node[part]
        if isinstance(node, dict) and isinstance(node.get("type"), str):
            ctx, rel = f"{parts[0]}:{node['type']}", parts[i + 1:]
    return ctx, ".".join(rel)


def leaves(node: Any, key: str = "") -> list[tuple[str, Any]]:
    """(dotted key, value) of every mapping and value below the top level."""
    out = [(key, node)] if key else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += leaves(v, f"{key}.{k}" if key else k)
    return out


# ---------------------------------------------------------------- corpus, per bundled recipe
SYNTAX_KINDS = ("tab_indent", "unclosed_brace", "unclosed_bracket", "duplicate_top_key", "duplicate_nested_key",
                "stray_indent", "unterminated_quote", "python_tag", "undefined_alias", "nul_character",
                "invalid_utf8")


def syntax_cases(path: Path) -> list[Case]:
    """Broken YAML made from the recipe's own text (its base: made absolute so the copy still resolves)."""
    name = label(path)
    lines = [f"base: {(path.parent / ln.split(':', 1)[1].strip()).resolve()}" if ln.startswith("base:") else ln
             for ln in path.read_text().splitlines()]
    text = "\n".join(lines) + "\n"

    def edit(i: int, new: list[str]) -> str:
        return "\n".join(lines[:i] + new + lines[i + 1:]) + "\n"

    def one_line_child(ln: str) -> bool:
        return (ln.startswith("  ") and ln.strip()[:1].isalpha() and ln.count("{") == ln.count("}")
                and ln.count("[") == ln.count("]"))

    indented = next(i for i, ln in enumerate(lines) if ln.startswith("  ") and ln.strip()[:1].isalpha())
    flow = next(i for i, ln in enumerate(lines) if "}" in ln and not ln.lstrip().startswith("#"))
    top_scalar = next(i for i, ln in enumerate(lines) if re.match(r"\w+: *[^{\s#]", ln))
    child = next(i for i, ln in enumerate(lines) if one_line_child(ln))
    first_key = next(m.group(1) for ln in lines if (m := re.match(r"(\w+):", ln)))
    cut = lines[flow].rindex("}")
    mid = len(text) // 2
    made = {
        "tab_indent": (edit(indented, ["\t" + lines[indented].lstrip()]), "not valid YAML at line"),
        "unclosed_brace": (edit(flow, [lines[flow][:cut] + lines[flow][cut + 1:]]), "not valid YAML"),
        "unclosed_bracket": (text + "extra: [1, 2\n", "not valid YAML"),
        "duplicate_top_key": (text + f"{first_key}: {{}}\n", f"duplicate key '{first_key}'"),
        "duplicate_nested_key": (edit(child, [lines[child], lines[child]]),
                                 f"duplicate key '{lines[child].split(':')[0].strip()}'"),
        "stray_indent": (edit(top_scalar, [lines[top_scalar], "  stray: 1"]), "not valid YAML"),
        "unterminated_quote": (text + 'name: "unterminated\n', "not valid YAML"),
        "python_tag": (text + "translate: !!python/object/apply:os.system [echo pwned]\n", "not valid YAML"),
        "undefined_alias": (text + "translate: *nowhere\n", "not valid YAML"),
        "nul_character": (text[:mid] + "\x00" + text[mid:], "not valid YAML"),
        "invalid_utf8": (text.encode()[:mid] + b"\xff\xfe" + text.encode()[mid:], "not a text file"),
    }
    kinds = [deal("syntax", list(SYNTAX_KINDS)) for _ in range(3)]  # three kinds per recipe, in turn
    return [Case(f"syntax-{name}-{kind}", "syntax", files={CASE_FILE: made[kind][0]}, fragment=made[kind][1])
            for kind in kinds]


TYPE_OPTIONS = {
    "bool": [("int_for_bool", "5"), ("text_for_bool", "'maybe'")],
    "int": [("text_for_int", "'12'"), ("list_for_int", "[1, 2]"), ("bool_for_int", "true")],
    "float": [("text_for_float", "'0.5'"), ("bool_for_float", "true"), ("list_for_float", "[0.5]")],
    "text": [("list_for_text", "[a, b]"), ("mapping_for_text", "{a: 1}")],
    "choice": [("bad_choice", None), ("list_for_text", "[a, b]"), ("mapping_for_text", "{a: 1}")],
    "list": [("text_for_list", "'x'"), ("mapping_for_list", "{a: 1}"), ("wrong_items", "[a, b]")],
    "null": [("text_for_null", "'x'")],
    "mapping": [("list_for_mapping", "[1, 2]"), ("text_for_mapping", "oops")],
    "component": [("list_for_mapping", "[1, 2]"), ("text_for_mapping", "oops"), ("null_for_mapping", "null")],
}
NUMBER_OPTIONS = {"int": [("huge", str(HUGE)), ("negative", "-1")],
                  "float": [("nan", ".nan"), ("inf", "-.inf"), ("huge_inf", "1.0e+999")]}


def kind_of(key: str, value: Any) -> str:
    if isinstance(value, dict):
        return "component" if key.count(".") == 1 and key.split(".")[0] in ("nets", "losses", "optim") else "mapping"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "text" if key.rsplit(".", 1)[-1] in FREE_TEXT else "choice"
    return "list" if isinstance(value, list) else "null"


def leaf_cases(path: Path) -> list[Case]:
    """A wrong type at every leaf, and NaN/infinity/negative/absurd values at every number."""
    name, data = label(path), resolved(path)
    cases = []
    for key, value in leaves(data):
        if key.startswith("model.init_from"):
            continue  # the baseline sets it to null: tests/test_esrgan.py checks its errors
        ctx, rel = context(data, key)
        kind = kind_of(key, value)
        if kind == "component":
            ctx, rel = key.split(".")[0], "*"  # nets.g and nets.d are checked by the same code
        if fresh("type", ctx, rel, kind):
            what, text = deal(f"type-{kind}", TYPE_OPTIONS[kind])
            text = f"{value}_typo" if text is None else text
            if what in ("list_for_int", "list_for_float") and key.startswith(SPAN_KEYS):
                what, text = "reversed_span", "[2, 1]"
            if not (what == "null_for_mapping" and key in ("schedule", "ema", "eval", "monitor", "translate")):
                cases.append(Case(f"type-{name}-{key}-{what}", "type", path, (f"{key}={text}",), keys=(key,),
                                  fragment="valid:" if what == "bad_choice" else ""))
        if key in REQUIRED_SECTIONS and fresh("type", key, "null"):
            cases.append(Case(f"type-{name}-{key}-null_section", "type", path, (f"{key}=null",), keys=(key,),
                              fragment="empty"))
        if kind in NUMBER_OPTIONS and fresh("number", ctx, rel):
            what, text = deal(f"number-{kind}", NUMBER_OPTIONS[kind])
            cases.append(Case(f"number-{name}-{key}-{what}", "number", path, (f"{key}={text}",), keys=(key,),
                              fragment="finite" if kind == "float" else ""))
    return cases


def key_cases(path: Path) -> list[Case]:
    """Unknown keys at every level: a typo of a real key (did-you-mean) and a made-up one."""
    name, data = label(path), resolved(path)
    model = data["model"]["type"]
    cases = []
    for key, node in [("", data)] + [(k, v) for k, v in leaves(data) if isinstance(v, dict)]:
        ctx = context(data, f"{key}.x")[0] if key else "top"
        if key and isinstance(node.get("type"), str):
            ctx = f"{key.split('.')[0]}:{node['type']}"
        prefix = f"{key}." if key else ""
        real = [k for k in node if k != "type" and len(k) >= 2]
        if key in ("nets", "losses", "optim"):
            ctx = (key, model)  # the model decides which names are valid here
        if real and fresh("unknown_key", ctx, "typo"):
            bad = prefix + typo(real[0])
            cases.append(Case(f"unknown_key-{name}-{bad}", "unknown_key", path, (f"{bad}=1",), keys=(bad,),
                              fragment="did you mean"))
        if fresh("unknown_key", ctx, "made_up"):
            cases.append(Case(f"unknown_key-{name}-{prefix}zz_unknown", "unknown_key", path,
                              (f"{prefix}zz_unknown=1",), keys=(f"{prefix}zz_unknown",)))
    return cases


def component_cases(path: Path) -> list[Case]:
    """A component without type:, or with a null one."""
    name, data = label(path), self_contained(path)
    cases = []
    for key, cfg in leaves(data):
        if not (isinstance(cfg, dict) and "type" in cfg) or not fresh("component", key.split(".")[0]):
            continue
        broken = copy.deepcopy(data)
        node = broken
        for part in key.split("."):
            node = node[part]
        del node["type"]
        cases.append(Case(f"component-{name}-{key}-missing_type", "component", files={CASE_FILE: dump(broken)},
                          keys=(key,), fragment="missing 'type:'"))
        cases.append(Case(f"component-{name}-{key}-type_null", "component", path, (f"{key}.type=null",),
                          keys=(f"{key}.type",), fragment="must be a name"))
    return cases


def section_cases(path: Path) -> list[Case]:
    name, data = label(path), self_contained(path)
    cases = []
    for section in REQUIRED_SECTIONS:
        if fresh("section", section):
            broken = {k: v for k, v in data.items() if k != section}
            cases.append(Case(f"section-{name}-{section}-missing", "section", files={CASE_FILE: dump(broken)},
                              keys=(section,), fragment="missing section"))
    if fresh("section", "net", data["model"]["type"]):
        net = next(iter(data["nets"]))
        broken = copy.deepcopy(data)
        del broken["nets"][net]
        cases.append(Case(f"section-{name}-nets.{net}-missing", "section", files={CASE_FILE: dump(broken)},
                          keys=(f"nets.{net}",), fragment="needs"))
    return cases


def override_cases(path: Path) -> list[Case]:
    """Malformed overrides that depend on what is in the recipe."""
    name, data = label(path), resolved(path)
    lists = [k for k, v in leaves(data) if isinstance(v, list)]
    group, net = next(iter(data["optim"])), next(iter(data["nets"]))
    made = [("empty_value_for_required", "train.max_steps=", "train.max_steps", "expected int"),
            ("top_typo", "trian.max_steps=5", "trian", "did you mean 'train'"),
            ("into_scalar", "train.max_steps.x=1", "train.max_steps", "not a mapping"),
            ("broken_yaml_value", f"nets.{net}.type=[unclosed", f"nets.{net}.type", "not valid YAML"),
            ("duplicate_key_value", f"nets.{net}={{type: a, type: b}}", f"nets.{net}", "duplicate key"),
            ("number_like_text", f"optim.{group}.lr=2e-4", f"optim.{group}.lr", "write 2.0e-4"),
            ("number_like_text_unsigned", f"optim.{group}.lr=1.0e5", f"optim.{group}.lr", "write 1.0e+5"),
            ("unknown_intermediate", "nets.zz.type=patchgan", "nets.zz", "not in the recipe")]
    made += [("into_list", f"{lists[0]}.0=1", lists[0], "not a mapping")] if lists else []
    return [Case(f"override-{name}-{what}", "override", path, (text,), keys=(key,), fragment=frag)
            for what, text, key, frag in made if fresh("override", what)]


def data_root_cases(path: Path) -> list[Case]:
    name, data = label(path), resolved(path)
    demo = data["data"].get("demo") is not None
    demo_off = ("data.demo=null",) if demo else ()
    cases = []
    if fresh("data_root", data["data"]["type"], demo):
        cases += [Case(f"data_root-{name}-missing", "data_root", path, ("data.root=/no/such/fuzz/root", *demo_off),
                       keys=("data.root",), fragment="no such file or folder"),
                  Case(f"data_root-{name}-relative_missing", "data_root", path, ("data.root=no/such/fuzz", *demo_off),
                       keys=("data.root",), fragment="relative to")]
    if isinstance(data.get("eval"), dict) and fresh("data_root", "eval"):
        cases += [Case(f"data_root-{name}-eval_data_missing", "data_root", path, ("eval.data=/no/such/fuzz/eval",),
                       keys=("eval.data",), fragment="no such file or folder"),
                  Case(f"data_root-{name}-eval_classifier_missing", "data_root", path,
                       ("eval.classifier=/no/such/fuzz/classifier", "eval.build_if_missing=false"),
                       keys=("eval.classifier",), fragment="no classifier export")]
    return cases


def size_cases(path: Path) -> list[Case]:
    """Absurd crop, load and batch sizes; nets too wide or too deep to build."""
    name, data = label(path), resolved(path)
    size = data["data"].get("size", 32)
    no_load = ("data.load_size=null",)
    net_types = tuple(sorted(cfg["type"] for cfg in data["nets"].values()))
    sized_nets = tuple(f"nets.{n}.size" for n, cfg in data["nets"].items() if "size" in cfg)
    if data["data"]["type"] == "superres_folder":  # crops are gt_size (HR pixels) there, with no load size
        gt = data["data"].get("gt_size", 64)
        made = [("gt_zero", ("data.gt_size=0",), ("data.gt_size",), ""),
                ("gt_1e6", ("data.gt_size=1000000",), ("data.gt_size",), "GiB"),
                ("gt_not_multiple", (f"data.gt_size={gt + 1}",), ("data.gt_size",), "divisible"),
                ("batch_1e6", ("data.batch_size=1000000",), ("data.batch_size",), "GiB")]
        return [Case(f"size-{name}-{what}", "size", path, overrides, keys=keys, fragment=frag)
                for what, overrides, keys, frag in made if fresh("size", what, data["data"]["type"], net_types)]
    made = [("crop_zero", ("data.size=0", *no_load), ("data.size",), "positive"),
            ("crop_negative", ("data.size=-1", *no_load), ("data.size",), ""),
            ("crop_1e6", ("data.size=1000000", *no_load), ("data.size",), "GiB"),
            ("crop_1e9", ("data.size=1000000000", *no_load), ("data.size",), "GiB"),
            ("crop_not_multiple", (f"data.size={size + 2}", *no_load), ("data.size", *sized_nets), ""),
            ("crop_above_load_size", (f"data.load_size={size}", f"data.size={size * 2}"), ("data.load_size",), ""),
            ("load_1e9", ("data.load_size=1000000000",), ("data.load_size",), "GiB"),
            ("batch_1e6", ("data.batch_size=1000000",), ("data.batch_size",), "GiB")]
    cases = [Case(f"size-{name}-{what}", "size", path, overrides, keys=keys, fragment=frag)
             for what, overrides, keys, frag in made if fresh("size", what, data["data"]["type"], net_types)]
    for net, cfg in data["nets"].items():
        if "base_channels" in cfg and fresh("size", "width", cfg["type"]):
            cases += [Case(f"size-{name}-nets.{net}-width_1e5", "size", path, (f"nets.{net}.base_channels=100000",),
                           keys=(f"nets.{net}.base_channels",),
                           # CoGAN's per-domain D head is small at any width: its width must equal its partner's
                           fragment="must equal" if cfg["type"] == "coupled_discriminator_head" else "parameters"),
                      Case(f"size-{name}-nets.{net}-width_0", "size", path, (f"nets.{net}.base_channels=0",),
                           keys=(f"nets.{net}.base_channels",), fragment="empty")]
        for arg in ("blocks", "depth", "layers"):
            if arg in cfg and fresh("size", arg, cfg["type"]):
                cases.append(Case(f"size-{name}-nets.{net}-{arg}_1e4", "size", path, (f"nets.{net}.{arg}=10000",),
                                  keys=(f"nets.{net}.{arg}",), fragment="would have more than"))
    return cases


# ---------------------------------------------------------------- corpus, once
def file_cases() -> list[Case]:
    """What is not a recipe at all, and YAML that expands beyond reason."""
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n" for p, c in zip("abcdefgh", "bcdefghi"))
    made = [
        ("empty", "", "the recipe is empty"),
        ("comments_only", "# nothing here\n# at all\n", "the recipe is empty"),
        ("null_document", "null\n", "the recipe is empty"),
        ("top_level_list", "- data\n- model\n", "must be a mapping"),
        ("top_level_number", "42\n", "must be a mapping"),
        ("top_level_text", "just some words\n", "must be a mapping"),
        ("two_documents", "seed: 1\n---\nseed: 2\n", "not valid YAML"),
        ("binary_garbage", bytes(range(256)) * 4, "not a text file"),
        ("too_large", "seed: 0\n" + "# padding\n" * 120_000, "too large"),
        ("deep_nesting", "deep: " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
        ("deep_nesting_crash", "deep: " + "[" * 200_000 + "]" * 200_000 + "\n", "nested too deeply"),
        ("billion_laughs", bomb, "more than"),
        ("recursive_alias", "data: &r [*r]\n", "nested more than"),
    ]
    out = [Case(f"file-{what}", "file", files={CASE_FILE: body}, fragment=frag) for what, body, frag in made]
    out += [Case("file-missing", "file", checked="@TMP@/no_such_recipe.yaml", fragment="recipe file not found"),
            Case("file-directory", "file", checked="@TMP@", fragment="folder, not a recipe file")]
    data = self_contained(BUNDLED[0])
    for what, change, key, frag in (("non_text_key", {1: "x"}, "1", "keys must be text"),
                                    ("date_seed", {"seed": "@DATE@"}, "seed", "integer"),
                                    ("seed_2_64", {"seed": 2**64}, "seed", "between"),
                                    ("name_dots", {"name": ".."}, "name", "plain word"),
                                    ("name_too_long", {"name": "n" * 300}, "name", "plain word"),
                                    ("name_with_slash", {"name": "../escape"}, "name", "plain word")):
        text = dump({**data, **change}).replace("'@DATE@'", "2020-01-01")
        out.append(Case(f"file-{what}", "file", files={CASE_FILE: text}, keys=(key,), fragment=frag))
    return out


def base_cases() -> list[Case]:
    made = [
        ("missing", {CASE_FILE: "base: nowhere.yaml\n"}, "recipe file not found"),
        ("directory", {CASE_FILE: "base: .\n"}, "folder, not a recipe file"),
        ("itself", {CASE_FILE: f"base: {CASE_FILE}\n"}, "cyclic base: chain"),
        ("cycle_2", {CASE_FILE: "base: b.yaml\n", "b.yaml": f"base: {CASE_FILE}\n"}, "cyclic base: chain"),
        ("cycle_3", {CASE_FILE: "base: b.yaml\n", "b.yaml": "base: c.yaml\n", "c.yaml": f"base: {CASE_FILE}\n"},
         "cyclic base: chain"),
        ("list", {CASE_FILE: f"base: [{BUNDLED[0]}]\n"}, "base must be the path"),
        ("number", {CASE_FILE: "base: 3\n"}, "base must be the path"),
        ("empty_text", {CASE_FILE: "base: ''\n"}, "base must be the path"),
        ("binary_file", {CASE_FILE: "base: b.bin\n", "b.bin": b"\x89PNG\r\n\x1a\n\xff\xd8\x00\x01"}, "not a text file"),
        ("broken_yaml", {CASE_FILE: "base: b.yaml\n", "b.yaml": "data: {type: [\n"}, "the base: of"),
        ("list_file", {CASE_FILE: "base: b.yaml\n", "b.yaml": "- a\n- b\n"}, "must be a mapping"),
        ("nul_in_path", {CASE_FILE: 'base: "b\\0.yaml"\n'}, "the base: of"),
        ("name_too_long", {CASE_FILE: f"base: {'b' * 300}.yaml\n"}, "the base: of"),
        ("chain_40_long", {CASE_FILE: "base: c0.yaml\n", **{f"c{i}.yaml": f"base: c{i + 1}.yaml\n" for i in range(40)},
                           "c40.yaml": "seed: 0\n"}, "base: chain longer"),
        ("unknown_key_in_child", {CASE_FILE: f"base: {BUNDLED[0]}\ntrainn: {{}}\n"}, "did you mean 'train'"),
    ]
    return [Case(f"base-{what}", "base", files=files, fragment=frag,
                 keys=("base",) if "cycl" in frag or "path" in frag or "chain" in frag else ())
            for what, files, frag in made]


def override_syntax_cases() -> list[Case]:
    recipe = BUNDLED[0]
    made = [("no_equals", "train.max_steps", "KEY.PATH=VALUE"), ("no_key", "=x", "dotted path"),
            ("double_dot", "a..b=1", "dotted path"), ("leading_dot", ".train=1", "dotted path"),
            ("trailing_dot", "train.=1", "dotted path"), ("spaces", "train. max_steps=1", "dotted path"),
            ("only_equals", "=", "dotted path"), ("unknown_top", "zz=1", "unknown top-level key"),
            ("base_override", "base=x.yaml", "unknown top-level key"),
            ("section_text", "data=5", "must be a mapping"),
            ("huge_text", "model.type=" + "b" * 20_000, "characters)"),
            ("recursive_value", "translate=&r [*r]", "nested more than"),
            ("python_tag_value", "translate=!!python/name:os.system", "not valid YAML")]
    return [Case(f"override-{what}", "override", recipe, (text,), fragment=frag) for what, text, frag in made]


PLUGIN_ERRORS = {
    "raises": ("fuzz_plugin_raises", "x = 1 / 0\n", "ZeroDivisionError"),
    "syntax": ("fuzz_plugin_syntax", "def broken(:\n", "SyntaxError"),
    "missing_dependency": ("fuzz_plugin_dep", "import no_such_dependency_fuzz\n", "no_such_dependency_fuzz"),
    "duplicate_registration": ("fuzz_plugin_dup", ("from torch import nn\nfrom i2i.registry import NETS\n"
                                                  "NETS.register('patchgan')(type('Other', (nn.Module,), {}))\n"),
                               "already registered"),
}
EVEN_NET = ("from torch import nn\nclass Net(nn.Module):\n"
            "    def __init__(self, in_channels: int = 3, out_channels: int = 3, width: int = 8):\n"
            "        super().__init__()\n        if width % 2:\n"
            "            raise ValueError('width must be even')\n")


def component_once_cases() -> list[Case]:
    """Plug-ins that fail to import, dotted types that name nothing usable."""
    recipe = BUNDLED[0]
    net = next(iter(resolved(recipe)["nets"]))
    out = [Case(f"component-plugin-{what}", "component", recipe, (f"plugins=[{module}]",), keys=("plugins[0]",),
                fragment=frag, files={f"{module}.py": code}) for what, (module, code, frag) in PLUGIN_ERRORS.items()]
    out += [Case("component-plugin-not_a_list", "component", recipe, ("plugins=fuzz_x",), keys=("plugins",)),
            Case("component-plugin-number", "component", recipe, ("plugins=[1]",), keys=("plugins",)),
            Case("component-plugin-empty_name", "component", recipe, ("plugins=['']",), keys=("plugins[0]",)),
            Case("component-plugin-relative_name", "component", recipe, ("plugins=[..fuzz]",), keys=("plugins[0]",)),
            Case("component-plugin-missing", "component", recipe, ("plugins=[no_such_plugin_fuzz]",),
                 keys=("plugins[0]",), fragment="no module named")]
    dotted = [("missing_module", "no_such_pkg_fuzz.mod:Net", {}, "no module named 'no_such_pkg_fuzz'"),
              ("module_raises", "fuzz_dotted_raises:Net", {"fuzz_dotted_raises.py": "raise RuntimeError('boom')\n"},
               "boom"),
              ("missing_attr", "i2i.nets:NoSuchNet", {}, "has no 'NoSuchNet'"),
              ("function", "os.path:join", {}, "must name a class"),
              ("float", "math:pi", {}, "must name a class"),
              ("not_a_module", "collections:OrderedDict", {}, "subclass of torch.nn.Module"),
              ("empty_module", ":Net", {}, "package.module:ClassName"),
              ("empty_class", "i2i.nets:", {}, "package.module:ClassName")]
    out += [Case(f"component-dotted-{what}", "component", recipe, (f"nets.{net}={{type: '{type_}'}}",),
                 keys=(f"nets.{net}.type",), fragment=frag, files=files) for what, type_, files, frag in dotted]
    out += [Case("component-dotted-constructor_rejects", "component", recipe,
                 (f"nets.{net}={{type: 'fuzz_dotted_net:Net', width: 3}}",), keys=(f"nets.{net}.width",),
                 fragment="width must be even", files={"fuzz_dotted_net.py": EVEN_NET}),
            Case("component-dotted-model_not_a_model", "component", recipe, ("model.type=collections:Counter",),
                 keys=("model.type",), fragment="subclass of i2i.models.base.GANModel"),
            Case("component-dotted-dataset_not_a_dataset", "component", recipe, ("data.type=collections:Counter",),
                 keys=("data.type",), fragment="channels_from_config")]
    return out


def corpus() -> list[Case]:
    cases = file_cases() + base_cases() + override_syntax_cases() + component_once_cases()
    for path in BUNDLED:
        for make in (syntax_cases, leaf_cases, key_cases, component_cases, section_cases, override_cases,
                     data_root_cases, size_cases):
            cases += make(path)
    ids = [c.id for c in cases]
    assert len(ids) == len(set(ids)), "case ids must be distinct"
    return cases


CASES = corpus()


# ---------------------------------------------------------------- running a case
def prepare(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, list[str]]:
    """Write the case's files; return the recipe path to check and the overrides."""
    for name, content in case.files.items():
        target = tmp_path / name
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
    if any(name.endswith(".py") for name in case.files):
        monkeypatch.syspath_prepend(str(tmp_path))
    if case.checked:
        return case.checked.replace("@TMP@", str(tmp_path)), list(case.overrides)
    if case.recipe is not None:
        return str(case.recipe), baseline(case.recipe) + list(case.overrides)
    return str(tmp_path / CASE_FILE), list(case.overrides)


def assert_clear_error(case: Case, checked: str, code: int, out: str, err: str) -> None:
    assert "Traceback" not in out + err, err
    assert "internal error" not in err, err
    assert code == 2, f"exit {code}; stdout {out!r}; stderr {err!r}"
    lines = err.strip().splitlines()
    assert 1 <= len(lines) <= 3 and lines[0].startswith("i2i: error: "), err
    assert len(err) < 2000, f"message of {len(err)} characters"
    assert checked in err or str(Path(checked).resolve()) in err, f"the message does not name {checked}: {err}"
    if case.keys:
        # the key itself, or one of its list items (data.transforms[0])
        assert any(f"key '{k}'" in err or f"key '{k}[" in err for k in case.keys), (
            f"expected key {' or '.join(case.keys)}: {err}")
    assert case.fragment in err, f"expected {case.fragment!r}: {err}"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_recipe_gives_one_clear_error(case: Case, tmp_path, monkeypatch, capsys):
    checked, overrides = prepare(case, tmp_path, monkeypatch)
    code = main(["check", checked, *overrides])
    out, err = capsys.readouterr()
    assert_clear_error(case, checked, code, out, err)


@pytest.mark.parametrize("path", BUNDLED, ids=[label(p) for p in BUNDLED])
def test_bundled_recipes_pass_check(path, capsys):
    """The corpus tests what each case breaks, not what was already broken."""
    assert main(["check", str(path), *baseline(path)]) == 0, capsys.readouterr().err
    assert '"valid": true' in capsys.readouterr().out


def test_corpus_covers_every_category_and_wrong_value():
    categories = {c.category for c in CASES}
    values = {c.id.rsplit("-", 1)[-1] for c in CASES if c.category in ("type", "number")}
    wanted = {what for options in (*TYPE_OPTIONS.values(), *NUMBER_OPTIONS.values()) for what, _ in options}
    assert len(CASES) >= 200 and categories == CATEGORIES and wanted <= values, (
        len(CASES), categories, wanted - values)


def end_to_end_cases() -> list[Case]:
    """Ten representative cases: seven that fail while the recipe is read (fast: no torch import) and three
    that fail in validation (a plug-in, a wrong type, an absurd size)."""
    by_id = {c.id: c for c in CASES}
    chosen = [by_id[i] for i in ("file-empty", "file-binary_garbage", "file-deep_nesting_crash", "base-cycle_3",
                                 "override-double_dot", "override-unknown_top", "component-plugin-raises")]
    return chosen + [next(c for c in CASES if c.category == category) for category in ("syntax", "type", "size")]


def test_exit_status_end_to_end(tmp_path, monkeypatch):
    """The same cases through real `python -m i2i.cli check` processes: exit 2, one line, no traceback."""
    procs = []
    for i, case in enumerate(end_to_end_cases()):
        folder = tmp_path / str(i)
        folder.mkdir()
        checked, overrides = prepare(case, folder, monkeypatch)
        procs.append((case, checked, subprocess.Popen(
            [sys.executable, "-m", "i2i.cli", "check", checked, *overrides], cwd=ROOT, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), str(ROOT)])})))
    for case, checked, proc in procs:
        out, err = proc.communicate(timeout=300)
        assert_clear_error(case, checked, proc.returncode, out, err)


def test_a_bug_is_an_internal_error_with_its_traceback(monkeypatch, capsys):
    """The last-resort handler hides nothing: the traceback, then a line asking for a report (exit 1, not 2)."""
    import i2i.cli

    def broken(args: object) -> int:
        raise AttributeError("a bug no check foresaw")
    monkeypatch.setattr(i2i.cli, "cmd_check", broken)
    assert i2i.cli.main(["check", "any.yaml"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "AttributeError: a bug no check foresaw" in err
    assert err.strip().splitlines()[-1].startswith("i2i: internal error")


def test_verbose_shows_the_chain_behind_a_recipe_error(tmp_path, monkeypatch, capsys):
    (tmp_path / "fuzz_verbose_plugin.py").write_text("x = 1 / 0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    recipe = BUNDLED[0]
    assert main(["-v", "check", str(recipe), *baseline(recipe), "plugins=[fuzz_verbose_plugin]"]) == 2
    err = capsys.readouterr().err
    assert "ZeroDivisionError" in err and "Traceback" in err and err.strip().splitlines()[-1].startswith("i2i: error:")
