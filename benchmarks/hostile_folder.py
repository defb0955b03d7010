"""Acceptance scenario for hostile image folders, run as a user would: ``i2i train`` then ``i2i translate``.

Copies N real photos (default 60: half from ``--source``, half from ``--source-b``) into a temporary folder
(never into the repository), seeds both domains with unusable files (corrupt, truncated PNG and JPEG, zero-byte,
text named .png, decompression-bomb headers, NaN float TIFF, symlink loop, dangling symlink, FIFO, and, when not
root, an unreadable file) and with odd but valid ones made from the same photos (palette, CMYK JPEG, gray+alpha,
RGBA, 16-bit and float32 TIFF, a 5x7 image, an EXIF-rotated JPEG, a non-UTF-8 file name). Then it trains a small
CycleGAN through the CLI (``data.on_error: skip``, DataLoader workers), checks that ``data.on_error=fail`` stops
at the first bad file, translates the hostile domain-A folder, and prints the counts: files seeded, skipped,
trained on, translated, failed.

    python benchmarks/hostile_folder.py                                   # horse2zebra from ../shared/data
    python benchmarks/hostile_folder.py --source DIR --source-b DIR2 --photos 60 --steps 20

Prints a table; the last line is JSON. Exits 1 when an expectation fails (a bad file trained on, a good file not
translated, a wrong exit code), 0 otherwise. Skips (exit 0, ``{"skipped": ...}``) when the photos are absent.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_A = ROOT.parent / "shared" / "data" / "horse2zebra" / "trainA"
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
NON_UTF8 = b"photo_caf\xe9_\xff.jpg"


def png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * (width + 1) * 4)) + chunk(b"IEND", b""))


def seed_folder(folder: Path, photos: list[Path], odd_from: list[Path]) -> tuple[int, dict[str, str]]:
    """Copy ``photos``; add odd-but-valid files made from ``odd_from`` and unusable files.

    Returns (number of usable files, {bad file name: what it is}).
    """
    import numpy as np
    import tifffile
    from PIL import Image

    folder.mkdir(parents=True)
    for p in photos:
        shutil.copy(p, folder / p.name)
    rgb = [np.asarray(Image.open(p).convert("RGB")) for p in odd_from]
    odd = {
        "odd_palette.png": lambda: Image.fromarray(rgb[0]).quantize(64).save(folder / "odd_palette.png"),
        "odd_cmyk.jpg": lambda: Image.fromarray(rgb[1]).convert("CMYK").save(folder / "odd_cmyk.jpg", quality=90),
        "odd_gray_alpha.png": lambda: Image.fromarray(rgb[2]).convert("LA").save(folder / "odd_gray_alpha.png"),
        "odd_rgba.png": lambda: Image.fromarray(rgb[3]).convert("RGBA").save(folder / "odd_rgba.png"),
        "odd_16bit.tif": lambda: tifffile.imwrite(folder / "odd_16bit.tif", rgb[4].astype(np.uint16) * 257,
                                                  photometric="rgb"),
        "odd_float.tif": lambda: tifffile.imwrite(folder / "odd_float.tif", rgb[5].astype(np.float32) / 255,
                                                  photometric="rgb"),
        "odd_tiny.png": lambda: Image.fromarray(rgb[6][:5, :7]).save(folder / "odd_tiny.png"),
    }
    for make in odd.values():
        make()
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(rgb[7]).save(folder / "odd_exif_rotated.jpg", exif=exif, quality=90)
    with open(os.path.join(os.fsencode(folder), NON_UTF8), "wb") as f:
        Image.fromarray(rgb[8]).save(f, "JPEG", quality=90)
    usable = len(photos) + len(odd) + 2

    png = io.BytesIO()
    Image.fromarray(rgb[9]).save(png, "PNG")
    png = png.getvalue()
    jpg = (folder / photos[0].name).read_bytes()
    bad: dict[str, str] = {}

    def put(name: str, data: bytes, what: str) -> None:
        (folder / name).write_bytes(data)
        bad[name] = what

    put("bad_truncated.jpg", jpg[: len(jpg) * 2 // 3], "JPEG cut at 2/3 (header intact)")
    put("bad_truncated.png", png[: len(png) // 2], "PNG cut in half")
    put("bad_corrupt.png", png[:300] + os.urandom(400) + png[700:], "PNG with 400 random bytes inside")
    put("bad_zero.png", b"", "zero bytes")
    put("bad_text.png", b"I am a text file with an image name\n", "text named .png")
    put("bad_bomb.png", png_header_only(40000, 40000), "PNG header declaring 40000x40000")
    put("bad_bomb_soft.png", png_header_only(10000, 10000), "PNG header declaring 10000x10000")
    nan = np.full((64, 64, 3), 0.5, np.float32)
    nan[5, 5] = np.nan
    tifffile.imwrite(folder / "bad_nan.tif", nan, photometric="rgb")
    bad["bad_nan.tif"] = "float TIFF with a NaN"
    os.symlink("bad_loop_b.png", folder / "bad_loop_a.png")
    os.symlink("bad_loop_a.png", folder / "bad_loop_b.png")
    bad["bad_loop_a.png"] = bad["bad_loop_b.png"] = "symlink loop"
    os.symlink("nowhere.png", folder / "bad_dangling.png")
    bad["bad_dangling.png"] = "dangling symlink"
    os.mkfifo(folder / "bad_fifo.png")
    bad["bad_fifo.png"] = "FIFO (a plain read would block)"
    if not IS_ROOT:
        put("bad_unreadable.jpg", jpg, "no read permission")
        os.chmod(folder / "bad_unreadable.jpg", 0)
    (folder / "notes.txt").write_text("not an image extension: never listed\n")
    (folder / "loop_dir").mkdir()
    os.symlink("..", folder / "loop_dir" / "up")  # a folder loop: symlinked folders are not followed
    return usable, bad


def recipe(root: Path, out: Path, steps: int, size: int, workers: int) -> dict:
    gen = {"type": "resnet_generator", "in_channels": 3, "out_channels": 3, "base_channels": 8, "blocks": 2,
           "norm": "instance"}
    disc = {"type": "patchgan", "in_channels": 3, "base_channels": 8, "layers": 2, "norm": "instance"}
    return {
        "name": "hostile_cyclegan", "seed": 0,
        "data": {"type": "unpaired_folder", "root": str(root), "size": size, "load_size": size + size // 8,
                 "batch_size": 1, "num_workers": workers, "on_error": "skip"},
        "model": {"type": "cyclegan", "pool_size": 10},
        "nets": {"g_ab": dict(gen), "g_ba": dict(gen), "d_a": dict(disc), "d_b": dict(disc)},
        "losses": {"adv": {"type": "adversarial", "mode": "lsgan"}, "cycle": {"type": "l1", "weight": 10.0},
                   "identity": {"type": "l1", "weight": 5.0}},
        "optim": {"g": {"type": "adam", "lr": 2.0e-4, "betas": [0.5, 0.999]},
                  "d": {"type": "adam", "lr": 2.0e-4, "betas": [0.5, 0.999]}},
        "train": {"max_steps": steps, "log_every": max(1, steps // 2), "sample_every": steps,
                  "checkpoint_every": steps, "output_dir": str(out), "tensorboard": False},
    }


def i2i(*args: str) -> tuple[int, str, str, float]:
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "i2i.cli", *args], capture_output=True, cwd=ROOT, check=False,
                          env={**os.environ, "PYTHONIOENCODING": "utf-8:backslashreplace"})
    return (proc.returncode, proc.stdout.decode("utf-8", "backslashreplace"),
            proc.stderr.decode("utf-8", "backslashreplace"), time.perf_counter() - t)


def last_json(text: str) -> dict:
    lines = [line for line in text.strip().splitlines() if line.startswith("{")]
    return json.loads(lines[-1]) if lines else {}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", type=Path, default=DEFAULT_A, help="folder of photos for domain A")
    ap.add_argument("--source-b", type=Path, default=None,
                    help="folder of photos for domain B (default: trainB beside a trainA --source, else --source)")
    ap.add_argument("--photos", type=int, default=60, help="photos copied in all (half per domain)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2, help="DataLoader workers")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder and print its path")
    args = ap.parse_args(argv)
    source_b = args.source_b or (args.source.parent / "trainB" if args.source.name == "trainA" else args.source)
    exts = {".jpg", ".jpeg", ".png"}
    pool_a = sorted(p for p in args.source.glob("*") if p.suffix.lower() in exts) if args.source.is_dir() else []
    pool_b = sorted(p for p in source_b.glob("*") if p.suffix.lower() in exts) if source_b.is_dir() else []
    half = args.photos // 2
    if len(pool_a) < half + 10 or len(pool_b) < half + 10:
        print(json.dumps({"skipped": f"need {half + 10} photos in {args.source} and {source_b}"}))
        return 0
    if source_b == args.source:
        pool_b = pool_b[half + 10:]
    sys.path.insert(0, str(ROOT))

    tmp = Path(tempfile.mkdtemp(prefix="i2i_hostile_"))
    ok = True
    try:
        data = tmp / "data"
        good_a, bad_a = seed_folder(data / "trainA", pool_a[:half], pool_a[half:half + 10])
        good_b, bad_b = seed_folder(data / "trainB", pool_b[:half], pool_b[half:half + 10])
        seeded_bad = len(bad_a) + len(bad_b)
        print(f"seeded {data}: trainA {good_a} usable + {len(bad_a)} unusable, trainB {good_b} usable + "
              f"{len(bad_b)} unusable ({half} real photos each, odd modes made from 10 more)", file=sys.stderr)

        import yaml
        (tmp / "r.yaml").write_text(yaml.safe_dump(recipe(data, tmp / "run", args.steps, args.size, args.workers)))
        code, out, err, train_s = i2i("train", str(tmp / "r.yaml"))
        result = last_json(out)
        summary = result.get("data", {})
        skip_lines = [line for line in err.splitlines() if line.startswith("i2i: data: skipping ")]
        summary_line = next((line for line in err.splitlines() if "file(s) skipped (" in line), "")
        print("\n--- training (data.on_error: skip): skip report on stderr ---")
        print("\n".join(skip_lines))
        print(summary_line)
        train_ok = code == 0 and result.get("step") == args.steps and summary.get("skipped") == seeded_bad
        ok &= train_ok
        if code != 0:
            print(err[-3000:])

        fcode, _, ferr, _ = i2i("train", str(tmp / "r.yaml"), "data.on_error=fail",
                                f"train.output_dir={tmp / 'run_fail'}")
        fail_line = next((line for line in ferr.splitlines() if line.startswith("i2i: error:")), "")
        print("\n--- training (data.on_error=fail) ---")
        print(f"exit {fcode}: {fail_line}")
        ok &= fcode == 2 and "bad_" in fail_line

        tcode, tout, terr, translate_s = i2i("translate", str(tmp / "run"), "--input", str(data / "trainA"),
                                             "--output", str(tmp / "translated"), "--device", "cpu")
        figures = last_json(tout)
        reported = [line for line in terr.splitlines() if line.startswith("i2i: skipped ")]
        print("\n--- translate of the hostile trainA ---")
        print("\n".join(reported))
        written = sum(1 for p in (tmp / "translated").rglob("*") if p.is_file()) if (tmp / "translated").exists() \
            else 0
        translate_ok = (tcode == 1 and figures.get("images") == good_a == written
                        and figures.get("failed") == len(bad_a) == len(reported))
        ok &= translate_ok

        rows = [
            ("files seeded (both domains)", good_a + good_b + seeded_bad),
            ("  usable (photos + odd modes)", good_a + good_b),
            ("  unusable", seeded_bad),
            ("skipped at build (check)", summary.get("skipped_at_build")),
            ("skipped while loading (main process)", summary.get("skipped_while_loading")),
            ("trained on: trainA / trainB files", f"{good_a} / {good_b} (items per epoch {summary.get('items')})"),
            ("training steps / seconds / exit", f"{result.get('step')} / {train_s:.1f} / {code}"),
            ("fail mode exit", fcode),
            ("translated (trainA) / files written", f"{figures.get('images')} / {written}"),
            ("translate failed (reported) / exit", f"{figures.get('failed')} ({len(reported)}) / {tcode}"),
            ("translate seconds", f"{translate_s:.1f}"),
        ]
        print("\n--- summary ---")
        for name, value in rows:
            print(f"{name:<40} {value}")
        print(json.dumps({"seeded": good_a + good_b + seeded_bad, "usable": good_a + good_b, "unusable": seeded_bad,
                          "skipped": summary.get("skipped"), "skipped_at_build": summary.get("skipped_at_build"),
                          "skipped_while_loading": summary.get("skipped_while_loading"),
                          "trained_items": summary.get("items"), "train_exit": code, "train_s": round(train_s, 1),
                          "fail_mode_exit": fcode, "translated": figures.get("images"),
                          "translate_failed": figures.get("failed"), "translate_exit": tcode, "ok": bool(ok)}))
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
