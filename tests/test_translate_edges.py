"""The edges a user of `i2i translate` (and sample, eval) hits: devices that are not there, the umask, odd --input
and --output paths, files left out of a folder, and progress on large folders."""
from __future__ import annotations

import io
import json
import os
import stat
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from i2i.cli import main
from i2i.data.io import read_image, write_image

from .test_hostile_exports import make_tiny_export


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> Path:
    return make_tiny_export(tmp_path_factory.mktemp("edges"))


def photo(seed: int = 0, size: int = 32) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (np.cumsum(rng.random((size, size, 3)), 1) % 1.0 * 255).astype(np.uint8)


def translate(export: Path, src: Path, out: Path, *extra: str) -> int:
    return main(["translate", str(export), "-i", str(src), "-o", str(out), "--device", "cpu", *extra])


def last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("i2i: error: "), err
    return lines[0]


# ---------------------------------------------------------------- 7: --device names a device that is not here
MISSING_GPU = f"cuda:{torch.cuda.device_count()}"  # one past the last GPU: absent on every machine


@pytest.mark.parametrize("device", ["banana", "cuda:x", MISSING_GPU, "meta", "cpu:1",
                                    pytest.param("cuda", marks=pytest.mark.skipif(torch.cuda.is_available(),
                                                                                  reason="this machine has a GPU"))])
@pytest.mark.parametrize("command", ["translate", "sample", "eval"])
def test_a_device_that_is_not_here_is_a_clear_error(command, device, export, tmp_path, capsys):
    out = tmp_path / "out"
    src = tmp_path / "in"
    write_image(src / "a.png", photo())
    argv = {"translate": ["translate", str(export), "-i", str(src), "-o", str(out)],
            "sample": ["sample", str(export), "-o", str(out)],
            "eval": ["eval", str(export), "--data", str(src)]}[command]
    assert main([*argv, "--device", device]) == 2
    line = error_line(capsys)
    assert f"--device {device}: " in line and "devices here: cpu" in line, line
    if device == "cuda":
        assert "no CUDA GPU on this machine" in line
    assert not out.exists()


def test_devices_that_are_here_are_accepted(export, tmp_path, capsys):
    src = tmp_path / "in"
    write_image(src / "a.png", photo())
    for i, device in enumerate(["cpu", "cpu:0", "auto"]):
        assert translate(export, src, tmp_path / f"o{i}", "--device", device) == 0, capsys.readouterr().err


# ---------------------------------------------------------------- 9: files and folders follow the umask
@pytest.fixture
def umask():
    def set_to(mask: int) -> None:
        os.umask(mask)
    old = os.umask(0o022)
    yield set_to
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002])
def test_exports_and_translated_images_follow_the_umask(mask, umask, tmp_path, capsys):
    umask(mask)
    exported = make_tiny_export(tmp_path / "run")
    assert mode(exported) == 0o777 & ~mask
    for name in ("g.safetensors", "meta.json", "recipe.yaml"):
        assert mode(exported / name) == 0o666 & ~mask, name
    src = tmp_path / "in"
    write_image(src / "sub" / "a.png", photo())
    assert translate(exported, src, tmp_path / "out") == 0, capsys.readouterr().err
    assert mode(tmp_path / "out" / "sub" / "a.png") == 0o666 & ~mask
    assert mode(tmp_path / "out" / "sub") == 0o777 & ~mask
    assert mode(src / "sub" / "a.png") == 0o666 & ~mask  # write_image itself, wherever it is used


# ---------------------------------------------------------------- 10: --input and --output paths
def test_an_output_that_is_a_file_fails_at_once(export, tmp_path, capsys):
    src = tmp_path / "in"
    for i in range(3):
        write_image(src / f"{i}.png", photo(i))
    (tmp_path / "taken.png").write_bytes(b"mine")
    assert translate(export, src, tmp_path / "taken.png") == 2
    assert "must be a folder" in error_line(capsys)
    assert (tmp_path / "taken.png").read_bytes() == b"mine"
    assert translate(export, src, tmp_path / "taken.png" / "sub") == 2  # a file on the way there
    assert f"{tmp_path / 'taken.png'}, in its path, is a file" in error_line(capsys)


def test_one_image_as_input(export, tmp_path, capsys):
    write_image(tmp_path / "photo.png", photo())
    assert translate(export, tmp_path / "photo.png", tmp_path / "out") == 0, capsys.readouterr().err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["photo.png"]
    assert read_image(tmp_path / "out" / "photo.png").shape == (32, 32, 3)
    # its own folder as --output would replace it: refused, the image untouched
    before = (tmp_path / "photo.png").read_bytes()
    assert translate(export, tmp_path / "photo.png", tmp_path) == 2
    assert "would replace the image" in error_line(capsys)
    assert (tmp_path / "photo.png").read_bytes() == before
    (tmp_path / "notes.txt").write_text("not an image")
    assert translate(export, tmp_path / "notes.txt", tmp_path / "o2") == 2
    assert "not an image file name" in error_line(capsys)
    assert translate(export, tmp_path / "absent.png", tmp_path / "o3") == 2
    assert "no such file or folder" in error_line(capsys)
    assert not (tmp_path / "o2").exists() and not (tmp_path / "o3").exists()


@pytest.mark.parametrize("where", ["export", "export/translated", "run"])
def test_an_output_in_the_export_is_refused(where, tmp_path, capsys):
    exported = make_tiny_export(tmp_path / "run")
    src = tmp_path / "in"
    write_image(src / "a.png", photo())
    out = {"export": exported, "export/translated": exported / "translated", "run": exported.parent}[where]
    before = sorted(p.name for p in exported.iterdir())
    code = translate(exported.parent, src, out)
    if where == "run":  # beside the export, in the run folder: fine (the README does it)
        assert code == 0 and (out / "a.png").is_file()
        return
    assert code == 2 and "inside the export" in error_line(capsys)
    assert sorted(p.name for p in exported.iterdir()) == before


# ---------------------------------------------------------------- 11: what is left out is said and counted
def gif(path: Path, frames: int) -> None:
    images = [Image.fromarray(photo(i)) for i in range(frames)]
    images[0].save(path, save_all=True, append_images=images[1:], duration=100, loop=0)


def multipage_tiff(path: Path, pages: int) -> None:
    import tifffile
    with tifffile.TiffWriter(path) as tif:
        for i in range(pages):
            tif.write(photo(i), photometric="rgb")


@pytest.fixture
def mixed(tmp_path) -> Path:
    root = tmp_path / "mixed"
    write_image(root / "a.png", photo(0))
    gif(root / "anim.gif", 3)
    gif(root / "still.gif", 1)
    multipage_tiff(root / "stack.tif", 3)
    write_image(root / ".hidden.png", photo(1))
    write_image(root / ".git" / "x.png", photo(2))
    (root / "notes.txt").write_text("a note")
    elsewhere = tmp_path / "elsewhere"
    write_image(elsewhere / "e.png", photo(3))
    os.symlink(elsewhere, root / "linked")
    return root


def test_skipped_files_are_named_and_counted(export, mixed, tmp_path, capsys):
    out = tmp_path / "out"
    assert translate(export, mixed, out) == 0
    stdout, err = capsys.readouterr()
    figures = last_json(stdout)
    assert figures["images"] == 4 and figures["failed"] == 0  # a.png, both GIFs, the TIFF's first page
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "anim.gif", "stack.tif", "still.gif"]
    assert read_image(out / "anim.gif").shape == (32, 32, 3) and read_image(out / "stack.tif").shape == (32, 32, 3)
    assert figures["skipped"] == 6 and figures["skipped_reasons"] == {
        "frames after the first not translated": 1, "hidden file": 1, "hidden folder": 1,
        "not an image file name": 1, "pages after the first not translated": 1, "symlinked folder": 1}
    skipped = {line.split(": ", 2)[1].removeprefix("skipped "): line.split(": ", 2)[2]
               for line in err.splitlines() if line.startswith("i2i: skipped ")}
    assert set(skipped) == {str(mixed / n) for n in ("anim.gif", ".hidden.png", ".git", "notes.txt", "stack.tif",
                                                     "linked")}, err
    assert skipped[str(mixed / "stack.tif")].startswith("pages after the first not translated (it has 3 pages")
    assert "pages 2-3 were left out" in skipped[str(mixed / "stack.tif")]
    assert skipped[str(mixed / "anim.gif")].startswith("frames after the first not translated (it has 3 frames")
    assert skipped[str(mixed / ".hidden.png")].startswith("hidden file")
    assert skipped[str(mixed / "notes.txt")].startswith("not an image file name (extension '.txt'")


def test_a_folder_of_only_skipped_files_says_what_was_left_out(export, tmp_path, capsys):
    root = tmp_path / "in"
    write_image(root / ".a.png", photo())
    (root / "b.txt").write_text("x")
    assert translate(export, root, tmp_path / "out") == 2
    line = error_line(capsys)
    assert "no images found" in line and "1 hidden file" in line and "1 not an image file name" in line, line


# ---------------------------------------------------------------- progress
@pytest.mark.parametrize("count, lines", [(25, True), (5, False)])
def test_progress_lines_when_stderr_is_not_a_terminal(count, lines, export, tmp_path, capsys):
    src = tmp_path / "in"
    for i in range(count):
        write_image(src / f"{i:02d}.png", photo(i, 16))
    assert translate(export, src, tmp_path / "out") == 0
    err = capsys.readouterr().err
    progress = [line for line in err.splitlines() if line.startswith("i2i: translate: ")]
    if not lines:
        assert progress == []
        return
    assert 2 <= len(progress) <= 11 and progress[-1].startswith(f"i2i: translate: {count}/{count} inputs (100%)")
    assert all("ETA" in line and "/s" in line for line in progress)


def test_a_progress_bar_on_a_terminal(export, tmp_path, monkeypatch, capsys):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    src = tmp_path / "in"
    for i in range(3):
        write_image(src / f"{i}.png", photo(i, 16))
    assert translate(export, src, tmp_path / "out") == 0
    shown = terminal.getvalue()
    assert "i2i: translate" in shown and "3/3" in shown and "image/s" in shown, shown
