"""Imports flow one way (docs/architecture.md): each module imports only its own layer and the layers below,
the component packages never import each other, no import forms a loop, and only i2i.engine imports accelerate.

Every import counts, including those inside functions: a lazy import that runs back up is still a loop.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "i2i"

#: bottom to top; a module belongs to the first layer with a prefix that names it or a package above it
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("core", ("i2i", "i2i.errors", "i2i.arguments", "i2i.registry", "i2i.recipe", "i2i.precision",
              "i2i.allocator")),
    ("shared", ("i2i.layers", "i2i.codes")),
    ("components", ("i2i.nets", "i2i.losses", "i2i.data", "i2i.optim")),
    ("models", ("i2i.models",)),
    ("inference", ("i2i.inference",)),
    ("evaluation", ("i2i.evaluation",)),
    ("build", ("i2i.build", "i2i.init_from")),
    ("engine", ("i2i.engine",)),
    ("cli", ("i2i.cli",)),
]
COMPONENTS = ("i2i.nets", "i2i.losses", "i2i.data", "i2i.optim")  # side by side: none imports another


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str) -> set[str]:
    """The i2i modules ``name`` imports, anywhere in its body."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "i2i")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "i2i":
                continue
            for alias in node.names:  # `from i2i.engine import checkpoint` imports the module i2i.engine.checkpoint
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in MODULES else target)
    return {m for m in found if m != name}


def layer_of(name: str) -> int:
    best = max((len(prefix), i) for i, (_, prefixes) in enumerate(LAYERS) for prefix in prefixes
               if name == prefix or (name.startswith(prefix + ".") and prefix != "i2i"))
    return best[1]


def component_of(name: str) -> str | None:
    return next((c for c in COMPONENTS if name == c or name.startswith(c + ".")), None)


def test_every_module_has_a_layer():
    for name in MODULES:
        assert name == "i2i" or layer_of(name) >= 0


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_run_down_or_sideways(name):
    """No module imports a layer above its own; no component package imports another."""
    for target in imports_of(name):
        assert layer_of(target) <= layer_of(name), (
            f"{name} ({LAYERS[layer_of(name)][0]}) imports {target} ({LAYERS[layer_of(target)][0]}), a layer above")
        own, other = component_of(name), component_of(target)
        assert own is None or other is None or own == other, f"{name} imports {target}: components stay apart"


def find_loop(graph: dict[str, set[str]]) -> list[str] | None:
    """One import loop of ``graph`` (module -> modules it imports) as a path, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (loop := visit(nxt, path + [nxt])):
                return loop
        state[node] = 2
        return None

    for name in sorted(graph):
        if name not in state and (loop := visit(name, [name])):
            return loop
    return None


def test_no_import_loops():
    loop = find_loop({name: imports_of(name) & set(MODULES) for name in MODULES})
    assert loop is None, "import loop: " + " -> ".join(loop or [])


def test_the_checks_can_fail(tmp_path, monkeypatch):
    """A model importing the engine is an upward import, and a loop through two modules is found."""
    monkeypatch.setitem(MODULES, "i2i.models.probe", tmp_path / "probe.py")
    (tmp_path / "probe.py").write_text("def f():\n    from ..engine import trainer\n")
    assert "i2i.engine.trainer" in imports_of("i2i.models.probe")
    assert layer_of("i2i.engine.trainer") > layer_of("i2i.models.probe")
    assert find_loop({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_loop({"a": {"b"}, "b": set()}) is None


def modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_nets_losses_models_data_do_not_import_accelerate():
    loaded = modules_after("import i2i.nets, i2i.losses, i2i.models, i2i.data, i2i.build")
    assert "i2i.nets" in loaded and "accelerate" not in loaded


def test_inference_and_evaluation_need_no_trainer():
    loaded = modules_after("import i2i.inference.translate, i2i.inference.export, i2i.inference.sample, "
                           "i2i.evaluation.paired_scoring, i2i.evaluation.sr_scoring, "
                           "i2i.evaluation.conditional_scoring")
    assert "i2i.inference.translate" in loaded and "accelerate" not in loaded and "i2i.engine.trainer" not in loaded
