"""What an installed i2i gives a user: --version, the bundled recipes by name from any folder (a regular install
ships recipes/ as the package i2i.recipes), plug-in modules from the current folder, and help on every option."""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import i2i
from i2i import registry
from i2i.build import validate_recipe
from i2i.cli import main, parser
from i2i.errors import RecipeError
from i2i.recipe import load_recipe
from i2i.recipe.loader import bundled_recipes, bundled_recipes_dir, find_recipe
from i2i.registry import NETS

from .conftest import ROOT

REPO_RECIPES = sorted(p.relative_to(ROOT / "recipes").with_suffix("").as_posix()
                      for p in (ROOT / "recipes").rglob("*.yaml"))
TINY_NET = ("import torch\nfrom torch import nn\nfrom i2i.registry import NETS\n"
            "class Tiny(nn.Module):\n"
            "    def __init__(self, in_channels: int = 3, out_channels: int = 3):\n"
            "        super().__init__(); self.in_channels, self.out_channels = in_channels, out_channels\n"
            "        self.conv = nn.Conv2d(in_channels, out_channels, 1)\n"
            "    def forward(self, x): return self.conv(x).tanh()\n"
            "NETS.register('{name}')(Tiny)\n")


def image_folders(root: Path, *folders: str) -> Path:
    """``root`` with one small PNG in each of ``folders``: the layout `i2i check` looks for."""
    from PIL import Image
    for folder in folders:
        (root / folder).mkdir(parents=True)
        Image.new("RGB", (64, 32), (90, 120, 150)).save(root / folder / "0.png")
    return root


def test_version_flag(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"i2i {i2i.__version__}"
    from importlib.metadata import PackageNotFoundError, version
    with contextlib.suppress(PackageNotFoundError):  # not installed: running from a checkout
        assert version("i2i") == i2i.__version__  # pyproject reads the version from i2i.__version__


def test_pyproject_ships_every_package_and_the_recipes():
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    setuptools = config["tool"]["setuptools"]
    packages = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "i2i").rglob("__init__.py")}
    assert set(setuptools["packages"]) == packages | {"i2i.recipes"}, "pyproject.toml's packages list is stale"
    assert setuptools["package-dir"] == {"i2i.recipes": "recipes"}
    assert (ROOT / "recipes" / "__init__.py").is_file()
    patterns = setuptools["package-data"]["i2i.recipes"]
    for path in (ROOT / "recipes").rglob("*.y*ml"):  # every recipe file matches a package-data pattern
        assert any(path.relative_to(ROOT / "recipes").match(p) for p in patterns), path
    assert "version" in config["project"]["dynamic"]
    assert setuptools["dynamic"]["version"] == {"attr": "i2i.__version__"}


def test_bundled_recipes_are_the_repository_recipes():
    assert bundled_recipes_dir().samefile(ROOT / "recipes")  # editable install or checkout: the folder itself
    assert sorted(bundled_recipes()) == REPO_RECIPES
    assert {"cyclegan", "pix2pix", "demo/pix2pix", "demo/cyclegan"} <= set(bundled_recipes())


def test_bundled_recipe_by_name_from_another_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert find_recipe("cyclegan").samefile(ROOT / "recipes" / "cyclegan.yaml")
    recipe = load_recipe("demo/pix2pix", ["train.max_steps=3"])
    assert recipe["name"] == "demo_pix2pix"                       # run folder runs/demo_pix2pix, as from the repo
    assert recipe["model"]["type"] == "pix2pix"                   # base: ../pix2pix.yaml was merged
    assert recipe["data"]["root"] == "data/demo/colorize"         # still relative to the current folder
    assert recipe["train"]["max_steps"] == 3
    assert recipe == load_recipe(ROOT / "recipes" / "demo" / "pix2pix.yaml", ["train.max_steps=3"])


def test_own_recipe_inherits_a_bundled_one_by_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "colour.yaml").write_text("base: demo/pix2pix\ntrain: {max_steps: 5}\n")
    recipe = load_recipe("mine/colour.yaml")
    assert recipe["name"] == "colour" and recipe["train"]["max_steps"] == 5
    assert recipe["model"]["type"] == "pix2pix" and recipe["data"]["root"] == "data/demo/colorize"
    (tmp_path / "mine" / "typo.yaml").write_text("base: demo/pix2px\n")
    with pytest.raises(RecipeError, match="recipe file not found"):
        load_recipe("mine/typo.yaml")


def test_a_file_in_the_current_folder_wins_over_a_bundled_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(ROOT / "recipes" / "pix2pix.yaml", tmp_path / "cyclegan")
    assert find_recipe("cyclegan") == Path("cyclegan")
    assert load_recipe("cyclegan")["model"]["type"] == "pix2pix"


def test_unknown_recipe_names_say_what_exists(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RecipeError, match=r"nor a bundled recipe.*did you mean 'cyclegan'.*demo/pix2pix"):
        load_recipe("cylegan")
    with pytest.raises(RecipeError, match="recipe file not found"):  # a .yaml name is a file name, never bundled
        load_recipe("cyclegan.yaml")
    with pytest.raises(RecipeError, match="nor a bundled recipe"):  # no climbing out of the bundled folder
        load_recipe("../recipes/cyclegan")


def test_cli_check_and_recipes_list_the_bundled_set(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["check", "demo/pix2pix"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["name"] == "demo_pix2pix"
    image_folders(tmp_path / "horses", "trainA", "trainB")
    assert main(["check", "cyclegan", "data.root=horses"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["model"] == "cyclegan"
    assert main(["recipes"]) == 0
    out = capsys.readouterr().out
    assert "bundled recipes" in out and "recipes in" not in out  # no ./recipes here
    listed = [line.split()[0] for line in out.split("bundled recipes", 1)[1].splitlines()[1:] if line.strip()]
    assert listed == REPO_RECIPES
    assert "CycleGAN (Zhu et al. 2017" in out  # each with its first comment line


def test_recipes_lists_a_local_folder_once(monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(ROOT)  # ./recipes is the bundled set: not listed twice
    assert main(["recipes"]) == 0
    assert "recipes in" not in capsys.readouterr().out
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "x.yaml").write_text("base: cyclegan.yaml\n")
    assert main(["recipes", "--folder", str(tmp_path / "mine")]) == 0
    assert f"recipes in {tmp_path / 'mine'}:\n  {tmp_path / 'mine' / 'x.yaml'}" in capsys.readouterr().out


@pytest.fixture
def bare_cwd(tmp_path, monkeypatch):
    """The current folder as a console script sees it: not on sys.path ('' is what python -m / -c put there)."""
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".")])
    monkeypatch.setattr(registry, "_CWD_ENTRY", None)
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("i2i_cwd_lab")]:
        del sys.modules[name]


def test_plugins_import_from_the_current_folder(bare_cwd, monkeypatch):
    pix2pix = ROOT / "recipes" / "pix2pix.yaml"
    (bare_cwd / "i2i_cwd_lab.py").write_text(TINY_NET.format(name="i2i_cwd_lab_tiny"))
    assert str(bare_cwd) not in sys.path
    validate_recipe(load_recipe(pix2pix, ["nets.g={type: 'i2i_cwd_lab:Tiny', in_channels: 3, out_channels: 3}"]))
    assert sys.path[-1] == str(bare_cwd)  # after what is installed: a local file never shadows an installed module
    (bare_cwd / "pkg").mkdir()
    (bare_cwd / "pkg" / "i2i_cwd_lab_pkg").mkdir()
    (bare_cwd / "pkg" / "i2i_cwd_lab_pkg" / "__init__.py").write_text("")
    (bare_cwd / "pkg" / "i2i_cwd_lab_pkg" / "nets.py").write_text(TINY_NET.format(name="i2i_cwd_lab_pkg_tiny"))
    monkeypatch.chdir(bare_cwd / "pkg")  # another folder: the entry moves, it does not pile up
    try:
        validate_recipe(load_recipe(pix2pix, ["plugins=[i2i_cwd_lab_pkg.nets]", "nets.g={type: i2i_cwd_lab_pkg_tiny}"]))
    finally:
        NETS._classes.pop("i2i_cwd_lab_pkg_tiny", None)
        NETS._classes.pop("i2i_cwd_lab_tiny", None)
    assert sys.path[-1] == str(bare_cwd / "pkg") and str(bare_cwd) not in sys.path


def test_missing_plugin_names_the_current_folder(bare_cwd):
    with pytest.raises(RecipeError, match="not in the current folder"):
        validate_recipe(load_recipe(ROOT / "recipes" / "pix2pix.yaml", ["plugins=[i2i_cwd_lab_absent]"]))


@pytest.mark.slow
def test_console_script_finds_a_plugin_beside_the_user(tmp_path):
    """The `i2i` console script puts its own folder first on sys.path, not the current one: run main the same way."""
    (tmp_path / "i2i_cwd_lab_cli.py").write_text(TINY_NET.format(name="i2i_cwd_lab_cli_tiny"))
    image_folders(tmp_path / "data", "train")
    script = ("import sys; sys.path[:] = [p for p in sys.path if p]; from i2i.cli import main; "
              "sys.exit(main(sys.argv[1:]))")
    proc = subprocess.run([sys.executable, "-c", script, "check", str(ROOT / "recipes" / "pix2pix.yaml"),
                           "data.root=data", "plugins=[i2i_cwd_lab_cli]", "nets.g={type: i2i_cwd_lab_cli_tiny}"],
                          capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": ""})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1])["valid"] is True


def _parsers(p: argparse.ArgumentParser):
    yield p
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


def test_every_command_and_option_has_help():
    """So `i2i COMMAND -h` explains every option, and an option added later without help fails here."""
    missing = []
    for p in _parsers(parser()):
        for action in p._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            if isinstance(action, argparse._SubParsersAction):
                helped = {c.dest for c in action._choices_actions if (c.help or "").strip()}
                missing += [f"{p.prog} {name}" for name in action.choices if name not in helped]
                continue
            if not (action.help or "").strip() or action.help == argparse.SUPPRESS:
                missing.append(f"{p.prog} {'/'.join(action.option_strings) or action.dest}")
    assert not missing, f"arguments without help: {missing}"


@pytest.mark.slow
def test_regular_install_trains_bundled_recipes_from_anywhere(tmp_path):
    """Build a wheel (from a copy: no build/ in the working tree), install it non-editable with --target, and use
    it from a folder that is not the repository: the recipes come from the installed package."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "i2i", src / "i2i", ignore=skip)
    shutil.copytree(ROOT / "recipes", src / "recipes", ignore=skip)
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "whl"), str(src)],
                   check=True, capture_output=True)
    wheel = next((tmp_path / "whl").glob("i2i-*.whl"))
    subprocess.run([*pip, "install", "--no-deps", "--no-index", "--target", str(tmp_path / "site"), str(wheel)],
                   check=True, capture_output=True)
    work = tmp_path / "work"
    image_folders(work / "horses", "trainA", "trainB")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}

    def i2i_cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "i2i.cli", *args], capture_output=True, text=True, cwd=work,
                              env=env)

    where = subprocess.run([sys.executable, "-c", "import i2i; print(i2i.__file__)"], capture_output=True, text=True,
                           cwd=work, env=env, check=True).stdout
    assert where.startswith(str(tmp_path / "site")), where  # not the editable install of the checkout
    installed = tmp_path / "site" / "i2i" / "recipes"
    assert sorted(p.relative_to(installed).with_suffix("").as_posix() for p in installed.rglob("*.yaml")) == \
        REPO_RECIPES
    assert i2i_cli("--version").stdout.strip() == f"i2i {i2i.__version__}"
    listing = i2i_cli("recipes")
    assert listing.returncode == 0 and f"the files are in {installed}" in listing.stdout, listing.stderr
    assert "  demo/pix2pix " in listing.stdout and "  cyclegan " in listing.stdout
    for args in (["check", "cyclegan", "data.root=horses"], ["check", "demo/pix2pix"]):
        proc = i2i_cli(*args)
        assert proc.returncode == 0, proc.stderr
        assert str(installed) in proc.stderr  # the log line names the bundled file it used
        assert json.loads(proc.stdout.strip().splitlines()[-1])["valid"] is True
