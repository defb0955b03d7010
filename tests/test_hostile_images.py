"""Hostile image folders: corrupt, truncated, empty, fake, odd-mode, huge, looping, unreadable and oddly named files.

Data sets skip them with one warning each and a count (``data.on_error: skip``, the default) or stop at the first
one (``fail``); items whose files fail only when decoded are replaced deterministically; ``i2i translate``
writes every good file, reports each bad one and exits 1; it never writes outside its output folder.
"""
from __future__ import annotations

import io
import json
import logging
import os
import shutil
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from i2i.arguments import check_arguments
from i2i.cli import main
from i2i.data import (
    LabeledImages,
    PairedFolder,
    SingleFolder,
    SuperResFolder,
    UnpairedFolder,
    folders,
    list_images,
    read_image,
)
from i2i.data.io import UnreadableImage, probe_image, show_path
from i2i.errors import DataError, RecipeError
from i2i.inference.translate import output_path

from .conftest import photo_crops, tiny_cyclegan, write_recipe

pytestmark = pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # refused anyway
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
NON_UTF8 = b"caf\xe9_\xff.png"  # Latin-1 bytes: not valid UTF-8


def png_header_only(width: int, height: int) -> bytes:
    """A valid-looking 8-bit gray PNG that declares width x height but holds 4 rows: a decompression-bomb header."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = zlib.compress(b"\0" * (width + 1) * 4)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", rows) + chunk(b"IEND", b""))


def jpeg_bytes(rgb: np.ndarray, **kwargs) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=92, **kwargs)
    return buf.getvalue()


def make_hostile(folder: Path, n_good: int = 6, seed: int = 0) -> tuple[dict[str, str], dict[str, tuple]]:
    """Fill ``folder`` with photos and hostile files.

    Returns (bad: file name -> expected reason fragment, good: file name -> (height, width, channels, dtype)).
    """
    import tifffile

    folder.mkdir(parents=True, exist_ok=True)
    photos = photo_crops(n_good + 12, 48, seed)
    good: dict[str, tuple] = {}
    for i in range(n_good):
        name = f"photo_{i:02d}.{'png' if i % 2 else 'jpg'}"
        Image.fromarray(photos[i]).save(folder / name, quality=92)
        good[name] = (48, 48, 3, np.uint8)
    extra = iter(photos[n_good:])
    # unusual but valid: each must load
    Image.fromarray(next(extra)).quantize(16).save(folder / "palette.png")
    good["palette.png"] = (48, 48, 3, np.uint8)
    Image.fromarray(next(extra)).convert("CMYK").save(folder / "cmyk.jpg", quality=92)
    good["cmyk.jpg"] = (48, 48, 3, np.uint8)
    Image.fromarray(next(extra)).convert("LA").save(folder / "gray_alpha.png")
    good["gray_alpha.png"] = (48, 48, 2, np.uint8)
    Image.fromarray(next(extra)).convert("RGBA").save(folder / "rgba.png")
    good["rgba.png"] = (48, 48, 4, np.uint8)
    tifffile.imwrite(folder / "sixteen.tif", next(extra).astype(np.uint16) * 257, photometric="rgb")
    good["sixteen.tif"] = (48, 48, 3, np.uint16)
    tifffile.imwrite(folder / "float.tif", next(extra).astype(np.float32) / 255, photometric="rgb")
    good["float.tif"] = (48, 48, 3, np.float32)
    Image.fromarray(next(extra)[:5, :7]).save(folder / "tiny.png")  # far smaller than any crop: resized
    good["tiny.png"] = (5, 7, 3, np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated by 90 degrees
    (folder / "rotated.jpg").write_bytes(jpeg_bytes(next(extra)[:, :40], exif=exif))
    good["rotated.jpg"] = (40, 48, 3, np.uint8)  # 48 rows x 40 columns stored, shown 40 x 48
    with open(os.path.join(os.fsencode(folder), NON_UTF8), "wb") as f:
        f.write(jpeg_bytes(next(extra)))
    good[os.fsdecode(NON_UTF8)] = (48, 48, 3, np.uint8)
    # unusable: each must be reported with its reason
    bad: dict[str, str] = {}
    png = (folder / "photo_01.png").read_bytes()
    big_jpeg = jpeg_bytes(np.ascontiguousarray(np.tile(next(extra), (3, 3, 1))))
    (folder / "a_truncated.jpg").write_bytes(big_jpeg[: len(big_jpeg) * 2 // 3])  # header intact, scan cut
    bad["a_truncated.jpg"] = "truncated"
    (folder / "truncated.png").write_bytes(png[: len(png) // 2])
    bad["truncated.png"] = "truncated"
    (folder / "corrupt.png").write_bytes(png[:200] + bytes(range(256)) * 2 + png[712:])
    bad["corrupt.png"] = "corrupt"
    (folder / "zero.png").write_bytes(b"")
    bad["zero.png"] = "zero bytes"
    (folder / "readme.png").write_text("This is a text file with an image name.\n")
    bad["readme.png"] = "not an image"
    (folder / "bomb.png").write_bytes(png_header_only(30000, 30000))  # above Pillow's hard limit
    bad["bomb.png"] = "too large"
    (folder / "bomb_soft.png").write_bytes(png_header_only(10000, 10000))  # above the limit, below Pillow's error
    bad["bomb_soft.png"] = "too large"
    nan = np.full((16, 16, 3), 0.5, np.float32)
    nan[3, 4, 1] = np.nan
    tifffile.imwrite(folder / "nan.tif", nan, photometric="rgb")
    bad["nan.tif"] = "NaN"
    os.symlink("loop_b.png", folder / "loop_a.png")
    os.symlink("loop_a.png", folder / "loop_b.png")
    bad["loop_a.png"] = bad["loop_b.png"] = "symbolic links"
    os.symlink("gone.png", folder / "dangling.png")
    bad["dangling.png"] = "No such file"
    os.mkfifo(folder / "pipe.png")  # reading it would block forever
    bad["pipe.png"] = "not a regular file"
    if not IS_ROOT:  # root reads everything
        (folder / "locked.png").write_bytes(png)
        os.chmod(folder / "locked.png", 0)
        bad["locked.png"] = "Permission denied"
    (folder / "sub").mkdir()
    os.symlink("..", folder / "sub" / "up")  # a folder loop: symlinked folders are not followed
    (folder / "notes.txt").write_text("not listed: no image extension")
    return bad, good


@pytest.fixture
def hostile(tmp_path: Path) -> tuple[Path, dict[str, str], dict[str, tuple]]:
    bad, good = make_hostile(tmp_path / "photos")
    return tmp_path / "photos", bad, good


def skip_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("data: skipping ")]


# ---------------------------------------------------------------- io
def test_every_odd_but_valid_file_loads(hostile):
    root, bad, good = hostile
    listed = {p.name for p in list_images(root)}
    assert listed == set(bad) | set(good)  # notes.txt and the folder loop are not listed
    for name, (h, w, c, dtype) in good.items():
        array = read_image(root / name)
        assert array.shape == (h, w, c) and array.dtype == dtype, name
        assert probe_image(root / name) == (w, h) or name == "rotated.jpg"  # the header size is before EXIF
    rotated = read_image(root / "rotated.jpg")
    with Image.open(root / "rotated.jpg") as im:
        assert im.size == (40, 48) and rotated.shape[:2] == (40, 48)  # stored 40 wide, shown 48 wide


def test_each_bad_file_has_its_reason(hostile):
    root, bad, _ = hostile
    for name, reason in bad.items():
        with pytest.raises(UnreadableImage, match=reason) as info:
            read_image(root / name)
        assert info.value.path == root / name and str(root / name) in str(info.value)
    # the header check finds all but truncated JPEG data and NaN samples, which only decoding finds
    for name, reason in bad.items():
        if name in ("a_truncated.jpg", "nan.tif"):
            assert probe_image(root / name) is not None
        else:
            with pytest.raises(UnreadableImage, match=reason):
                probe_image(root / name)


def test_bombs_are_refused_from_the_header_in_milliseconds(tmp_path, monkeypatch):
    import time
    (tmp_path / "b.png").write_bytes(png_header_only(10000, 10000))
    t = time.perf_counter()
    with pytest.raises(UnreadableImage, match="10000x10000 = 100,000,000 pixels.*I2I_MAX_PIXELS"):
        read_image(tmp_path / "b.png")
    assert time.perf_counter() - t < 1.0
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2000)  # the limit is Pillow's setting (I2I_MAX_PIXELS sets it)
    Image.fromarray(np.zeros((40, 60), np.uint8)).save(tmp_path / "small.png")
    with pytest.raises(UnreadableImage, match="too large"):
        read_image(tmp_path / "small.png")
    import tifffile
    tifffile.imwrite(tmp_path / "f.tif", np.zeros((40, 60, 3), np.float32), photometric="rgb")
    with pytest.raises(UnreadableImage, match="too large"):
        read_image(tmp_path / "f.tif")
    with pytest.raises(UnreadableImage, match="too large"):
        probe_image(tmp_path / "f.tif")


def test_show_path_escapes_what_cannot_be_printed():
    assert show_path("/a/b.png") == "/a/b.png"
    assert show_path(os.fsdecode(b"/x/caf\xe9.png")) == "/x/caf\\udce9.png"
    assert show_path("/x/new\nline.png") == "/x/new\\nline.png"


@pytest.mark.skipif(IS_ROOT, reason="root can list every folder")
def test_unlistable_folders_are_reported_not_fatal(tmp_path, caplog):
    for sub in ("ok", "locked"):
        (tmp_path / sub).mkdir()
        Image.fromarray(photo_crops(1, 16)[0]).save(tmp_path / sub / "x.png")
    os.chmod(tmp_path / "locked", 0)
    try:
        errors: list = []
        assert list_images(tmp_path, errors=errors) == [tmp_path / "ok" / "x.png"]
        assert errors and errors[0][0] == tmp_path / "locked" and "Permission denied" in errors[0][1]
        ds = SingleFolder(root=str(tmp_path), size=16)
        assert len(ds) == 1 and ds.skip_summary()["skipped"] == 1
        with pytest.raises(DataError, match="cannot list .*locked"):
            SingleFolder(root=str(tmp_path), size=16, on_error="fail")
    finally:
        os.chmod(tmp_path / "locked", 0o755)


def test_unlistable_folders_as_root_too(tmp_path, monkeypatch, caplog):
    """The same through a folder whose listing raises PermissionError (what a non-root user meets)."""
    for sub in ("ok", "locked"):
        (tmp_path / sub).mkdir()
        Image.fromarray(photo_crops(1, 16)[0]).save(tmp_path / sub / "x.png")
    real_scandir = os.scandir

    def scandir(path="."):
        if Path(os.fsdecode(path)).name == "locked":
            raise PermissionError(13, "Permission denied", os.fsdecode(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)  # os.walk lists folders with it
    caplog.set_level(logging.WARNING, logger="i2i")
    ds = SingleFolder(root=str(tmp_path), size=16)
    assert [p.parent.name for p in ds.files] == ["ok"] and ds.skip_summary(log_summary=False)["skipped"] == 1
    assert f"data: skipping {tmp_path / 'locked'}: cannot list folder: Permission denied" in caplog.messages
    with pytest.raises(DataError, match="cannot list .*locked.*data.on_error: fail"):
        SingleFolder(root=str(tmp_path), size=16, on_error="fail")
    (tmp_path / "ok" / "x.png").unlink()
    with pytest.raises(DataError, match="holds no images.*could not be listed.*locked"):
        SingleFolder(root=str(tmp_path), size=16)


# ---------------------------------------------------------------- data sets
def test_folder_data_set_skips_each_bad_file_once_with_its_reason(hostile, caplog):
    root, bad, good = hostile
    caplog.set_level(logging.WARNING, logger="i2i")
    ds = SingleFolder(root=str(root), size=32, load_size=36)
    assert len(ds) == len(good) and {p.name for p in ds.files} == set(good)
    lines = skip_lines(caplog)
    assert len(lines) == len(bad)
    for name, reason in bad.items():
        mine = [line for line in lines if show_path(root / name) + ":" in line]
        assert len(mine) == 1 and reason in mine[0], (name, lines)
    assert any(f"{len(bad)} of {len(bad) + len(good)} image file(s)" in r.getMessage() for r in caplog.records)
    assert ds.skip_summary(log_summary=False) == {"skipped": len(bad), "skipped_at_build": len(bad),
                                                  "skipped_while_loading": 0, "files": len(bad) + len(good),
                                                  "items": len(good)}
    for i in range(len(ds)):  # every kept item loads: odd modes become RGB, tiny images are resized
        item = ds[(i, 3)]
        assert item["real_a"].shape == (3, 32, 32) and torch.isfinite(item["real_a"]).all()
    gray = SingleFolder(root=str(root), size=32, channels=1)
    assert all(gray[i]["real_a"].shape == (1, 32, 32) for i in range(len(gray)))


def test_fail_mode_names_the_first_bad_file(hostile):
    root, bad, _ = hostile
    first = min(root / name for name in bad)
    assert first.name == "a_truncated.jpg"  # found by the full decode of a small set, before any header failure
    with pytest.raises(DataError, match="data.on_error: fail") as info:
        SingleFolder(root=str(root), size=32, on_error="fail")
    assert str(first) in str(info.value) and "truncated" in str(info.value)
    (first).unlink()
    with pytest.raises(DataError) as info:
        SingleFolder(root=str(root), size=32, on_error="fail")
    assert str(root / "bomb.png") in str(info.value) and "too large" in str(info.value)


def test_on_error_is_validated(tmp_path):
    with pytest.raises(RecipeError, match="data.on_error") as info:
        check_arguments(SingleFolder, {"root": "x", "on_error": "ignore"}, key="data")
    assert "fail" in str(info.value) and "skip" in str(info.value)
    for cls in (SingleFolder, PairedFolder, UnpairedFolder, LabeledImages):
        with pytest.raises(RecipeError, match="data.on_error"):
            cls.channels_from_config(root="x", on_error="ignore")
        check_arguments(cls, {"root": "x", "on_error": "fail"}, key="data")
    with pytest.raises(RecipeError, match="data.on_error"):
        SuperResFolder.channels_from_config(root="x", on_error="warn")


def test_nothing_usable_is_a_clear_error(tmp_path):
    (tmp_path / "zero.png").write_bytes(b"")
    (tmp_path / "fake.jpg").write_text("hello")
    with pytest.raises(DataError, match=r"no usable images under .*all 2 file\(s\) were left out.*fake.jpg: not an "
                                        r"image.*zero.png: empty file"):
        SingleFolder(root=str(tmp_path), size=16)


def test_decode_time_failures_are_replaced_deterministically(hostile, monkeypatch, caplog, capfd):
    root, bad, good = hostile
    monkeypatch.setattr(folders, "FULL_CHECK_PIXELS", 0)  # headers only, as for a large set
    ds = SingleFolder(root=str(root), size=32, load_size=36)
    late = {"a_truncated.jpg", "nan.tif"}  # pass the header check, fail when decoded
    assert {p.name for p in ds.files} == set(good) | late
    idx = [i for i, p in enumerate(ds.files) if p.name in late]
    caplog.set_level(logging.WARNING, logger="i2i")
    caplog.clear()
    first = [ds[(i, 11)] for i in idx]
    assert all(item["path_a"] not in {str(root / n) for n in late} for item in first)
    lines = skip_lines(caplog)
    assert len(lines) == 2 and all("found while loading" in line for line in lines)
    again = [ds[(i, 11)] for i in idx]  # known bad now: no new warning, same substitute
    assert len(skip_lines(caplog)) == 2
    fresh = SingleFolder(root=str(root), size=32, load_size=36)
    for a, b, c in zip(first, again, [fresh[(i, 11)] for i in idx]):
        assert a["path_a"] == b["path_a"] == c["path_a"] and torch.equal(a["real_a"], c["real_a"])
    summary = ds.skip_summary(log_summary=False)
    assert summary["skipped_while_loading"] == 2 and summary["skipped"] == len(bad)
    # DataLoader workers (other processes) give the same items as the main process
    items = [(i, 5) for i in range(len(ds))]
    serial = [ds[it]["real_a"] for it in items]
    loader = DataLoader(SingleFolder(root=str(root), size=32, load_size=36), batch_size=1, sampler=items,
                        num_workers=2)
    handler = logging.StreamHandler(sys.stderr)  # as the CLI's logging.basicConfig sets up
    logging.getLogger("i2i").addHandler(handler)
    try:
        capfd.readouterr()
        parallel = [batch["real_a"][0] for batch in loader]
    finally:
        logging.getLogger("i2i").removeHandler(handler)
    assert all(torch.equal(a, b) for a, b in zip(serial, parallel))
    assert "a_truncated.jpg: corrupt or truncated" in capfd.readouterr().err  # the workers' warnings reach stderr
    for name in set(bad) - late:
        os.unlink(root / name)
    strict = SingleFolder(root=str(root), size=32, on_error="fail")  # headers only: builds
    with pytest.raises(UnreadableImage, match="a_truncated.jpg"):
        strict[next(i for i, p in enumerate(strict.files) if p.name == "a_truncated.jpg")]


def test_paired_unpaired_labeled_and_superres_skip(tmp_path, caplog):
    photos = photo_crops(8, 40)
    for side in ("A", "B"):
        (tmp_path / "p" / "train" / side).mkdir(parents=True)
        for i, rgb in enumerate(photos[:4]):
            Image.fromarray(rgb).save(tmp_path / "p" / "train" / side / f"{i}.png")
    (tmp_path / "p" / "train" / "B" / "2.png").write_bytes(b"")
    pairs = PairedFolder(root=str(tmp_path / "p"), layout="folders", size=32)
    assert [a.name for a, _ in pairs.files] == ["0.png", "1.png", "3.png"]  # the whole pair is left out
    assert pairs.skip_summary(log_summary=False)["skipped"] == 1

    for domain, n in (("trainA", 3), ("trainB", 4)):
        (tmp_path / "u" / domain).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(photos[i]).save(tmp_path / "u" / domain / f"{i}.png")
    (tmp_path / "u" / "trainB" / "9.jpg").write_text("no")
    un = UnpairedFolder(root=str(tmp_path / "u"), size=32)
    assert len(un.files_a) == 3 and len(un.files_b) == 4 and len(un) == 4
    for f in (tmp_path / "u" / "trainA").iterdir():
        f.write_bytes(b"")
    with pytest.raises(DataError, match="no usable trainA images"):
        UnpairedFolder(root=str(tmp_path / "u"), size=32)

    for label in ("cat", "dog"):
        (tmp_path / "l" / label).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(photos[i + (label == "dog")]).convert("L").save(tmp_path / "l" / label / f"{i}.png")
    (tmp_path / "l" / "dog" / "0.png").write_bytes(b"GIF89a broken")
    lab = LabeledImages(root=str(tmp_path / "l"), size=16)
    assert len(lab) == 5 and lab.labels.tolist() == [0, 0, 0, 1, 1] and lab.num_classes == 2
    with pytest.raises(DataError, match=r"dog/0.png.*data.on_error: fail"):
        LabeledImages(root=str(tmp_path / "l"), size=16, on_error="fail")
    for f in (tmp_path / "l" / "dog").iterdir():
        f.write_text("x")
    with pytest.raises(DataError, match="class.*dog.*no usable image"):
        LabeledImages(root=str(tmp_path / "l"), size=16)

    for i, rgb in enumerate(photos[:3]):
        (tmp_path / "hr").mkdir(exist_ok=True)
        Image.fromarray(rgb).save(tmp_path / "hr" / f"{i}.png")
    (tmp_path / "hr" / "3.png").write_bytes((tmp_path / "hr" / "0.png").read_bytes()[:300])
    sr = SuperResFolder(root=str(tmp_path / "hr"), scale=2, gt_size=16)
    assert [p.name for _, p in sr.pairs] == ["0.png", "1.png", "2.png"] and sr[(2, 1)]["real_b"].shape == (3, 16, 16)
    with pytest.raises(DataError, match="3.png"):
        SuperResFolder(root=str(tmp_path / "hr"), scale=2, gt_size=16, on_error="fail")
    with pytest.raises(DataError, match="smaller than the HR crop"):  # small images stay an error: lower gt_size
        SuperResFolder(root=str(tmp_path / "hr"), scale=2, gt_size=48)


# ---------------------------------------------------------------- CLI: train and translate
def last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


@pytest.fixture
def hostile_unpaired(tmp_path: Path) -> tuple[Path, int]:
    root = tmp_path / "h2z"
    bad_a, _ = make_hostile(root / "trainA", n_good=4, seed=1)
    bad_b, _ = make_hostile(root / "trainB", n_good=4, seed=2)
    return root, len(bad_a) + len(bad_b)


def test_training_on_a_hostile_folder_completes_with_a_skip_summary(hostile_unpaired, tmp_path, capsys, caplog):
    root, n_bad = hostile_unpaired
    caplog.set_level(logging.WARNING, logger="i2i")  # under pytest the log goes here, not to stderr
    recipe = write_recipe(tmp_path / "r.yaml", tiny_cyclegan(root, tmp_path / "run"))
    assert main(["train", str(recipe)]) == 0
    result = last_json(capsys.readouterr().out)
    assert result["step"] == 4 and result["data"]["skipped"] == n_bad == result["data"]["skipped_at_build"]
    log = "\n".join(caplog.messages)
    assert log.count("data: skipping ") == n_bad and "bomb.png: too large" in log
    assert f"data: {n_bad} file(s) skipped ({n_bad} by the check at build time" in caplog.messages[-1]
    strict = write_recipe(tmp_path / "s.yaml", tiny_cyclegan(root, tmp_path / "run2"))
    assert main(["train", str(strict), "data.on_error=fail"]) == 2
    assert "a_truncated.jpg" in capsys.readouterr().err and not (tmp_path / "run2" / "checkpoints").exists()


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("export")
    for domain, seed in (("trainA", 1), ("trainB", 2)):
        (tmp / "data" / domain).mkdir(parents=True)
        for i, rgb in enumerate(photo_crops(3, 32, seed)):
            Image.fromarray(rgb).save(tmp / "data" / domain / f"{i}.png")
    recipe = write_recipe(tmp / "r.yaml", tiny_cyclegan(tmp / "data", tmp / "run", max_steps=2, log_every=1))
    assert main(["train", str(recipe)]) == 0
    return tmp / "run"


def test_translate_writes_every_good_file_and_reports_the_bad(tiny_export, hostile, tmp_path, capsys):
    root, bad, good = hostile
    (root / "nested").mkdir()
    shutil.copy(root / "photo_00.jpg", root / "nested" / "deep.jpg")
    good["nested/deep.jpg"] = (48, 48, 3, np.uint8)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    os.symlink(outside / "photo_00.jpg", root / "link_out.jpg")  # a file symlink pointing outside: read it
    shutil.copy(root / "photo_00.jpg", outside / "photo_00.jpg")
    good["link_out.jpg"] = (48, 48, 3, np.uint8)
    out = tmp_path / "out"
    capsys.readouterr()
    code = main(["translate", str(tiny_export), "--input", str(root), "--output", str(out), "--device", "cpu"])
    stdout, err = capsys.readouterr()
    figures = last_json(stdout)
    assert code == 1 and figures["images"] == len(good) and figures["failed"] == len(bad)
    for name, (h, w, _c, dtype) in good.items():
        back = read_image(out / name)
        assert back.shape[:2] == (h, w) and back.dtype == (np.uint8 if dtype == np.uint8 else np.uint16), name
    for name, reason in bad.items():
        line = [line for line in err.splitlines() if line.startswith(f"i2i: skipped {root / name}:")]
        assert len(line) == 1 and reason in line[0], name
    assert not (out / "link_out.jpg").is_symlink() and sorted(os.listdir(outside)) == ["photo_00.jpg"]
    written = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert written == set(good)  # nothing else, no temporary files


def test_translate_never_writes_outside_its_output(tiny_export, tmp_path, capsys):
    src, out, outside = tmp_path / "in", tmp_path / "out", tmp_path / "outside"
    for sub in ("", "nested"):
        (src / sub).mkdir(parents=True, exist_ok=True)
        Image.fromarray(photo_crops(1, 32)[0]).save(src / sub / "x.png")
    outside.mkdir()
    out.mkdir()
    os.symlink(outside, out / "nested")  # a symlinked folder already in the output tree leads elsewhere
    code = main(["translate", str(tiny_export), "--input", str(src), "--output", str(out), "--device", "cpu"])
    stdout, err = capsys.readouterr()
    assert code == 1 and last_json(stdout)["images"] == 1 and list(outside.iterdir()) == []
    assert f"refusing to write {out / 'nested' / 'x.png'}" in err and "outside --output" in err
    real_scandir = os.scandir

    def scandir(path="."):  # a sub-folder of the input that cannot be listed is a reported failure
        if Path(os.fsdecode(path)).name == "nested":
            raise PermissionError(13, "Permission denied", os.fsdecode(path))
        return real_scandir(path)

    os.unlink(out / "nested")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "scandir", scandir)
        code = main(["translate", str(tiny_export), "--input", str(src), "--output", str(tmp_path / "o2"),
                         "--device", "cpu"])
    stdout, err = capsys.readouterr()
    assert code == 1 and last_json(stdout)["failed"] == 1 and f"{src / 'nested'}: cannot list folder" in err
    for rel in ("../x.png", "a/../../x.png", "/etc/x.png"):
        with pytest.raises(DataError, match="refusing to write"):
            output_path(out, Path(rel))
    assert output_path(out, Path("a/b.png")) == out / "a" / "b.png"
