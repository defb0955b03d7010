"""i2i.data: image I/O (channels, bit depth, EXIF, errors), transforms, folder data sets, demos, edges script."""
from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from i2i.arguments import check_arguments
from i2i.data import (
    DEMOS,
    PairedFolder,
    SingleFolder,
    UnpairedFolder,
    adapt_channels,
    build_transform,
    ensure_demo,
    from_tensor,
    list_images,
    read_image,
    to_float,
    to_tensor,
    to_uint8,
    write_image,
)
from i2i.data.demo import MARKER
from i2i.errors import DataError, RecipeError
from i2i.registry import DATASETS

RNG = np.random.default_rng(0)


def photo(h: int = 40, w: int = 40, channels: int = 3, dtype: type = np.uint8) -> np.ndarray:
    """A smooth random image: structure survives resizing, so crops and flips are detectable."""
    small = RNG.random((h // 8 + 2, w // 8 + 2, channels)).astype(np.float32)
    big = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC).reshape(h, w, channels)
    return np.clip(big * np.iinfo(dtype).max, 0, np.iinfo(dtype).max).astype(dtype)


def expected(array: np.ndarray) -> torch.Tensor:
    return to_tensor(to_float(array))


# ---------------------------------------------------------------- io
@pytest.mark.parametrize("ext", [".png", ".tif"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_round_trip_is_exact(tmp_path, ext, dtype, channels):
    array = RNG.integers(0, np.iinfo(dtype).max + 1, (6, 9, channels)).astype(dtype)
    write_image(tmp_path / "sub" / f"x{ext}", array)
    back = read_image(tmp_path / "sub" / f"x{ext}")
    assert back.dtype == dtype and back.shape == (6, 9, channels)
    np.testing.assert_array_equal(back, array)
    assert os.listdir(tmp_path / "sub") == [f"x{ext}"]  # no temporary file left behind


def test_16bit_files_from_other_writers_keep_16_bits_and_rgb_order(tmp_path):
    rgb = RNG.integers(0, 65536, (5, 7, 3)).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "rgb.png"), rgb[..., ::-1])  # OpenCV stores BGR
    np.testing.assert_array_equal(read_image(tmp_path / "rgb.png"), rgb)
    gray = RNG.integers(0, 65536, (5, 7)).astype(np.uint16)
    Image.fromarray(gray).save(tmp_path / "gray.png")
    np.testing.assert_array_equal(read_image(tmp_path / "gray.png")[..., 0], gray)
    multi = RNG.random((5, 7, 6)).astype(np.float32)
    write_image(tmp_path / "multi.tif", multi)
    np.testing.assert_array_equal(read_image(tmp_path / "multi.tif"), multi)


def test_exif_orientation_is_applied(tmp_path):
    array = np.zeros((8, 16, 3), np.uint8)
    array[:, :8] = (255, 0, 0)  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise: the left half ends up on top
    Image.fromarray(array).save(tmp_path / "r.jpg", exif=exif, quality=100)
    back = read_image(tmp_path / "r.jpg")
    assert back.shape == (16, 8, 3)
    assert back[:6, :, 0].mean() > 200 and back[10:, :, 0].mean() < 50


def test_palette_cmyk_and_bilevel_load_as_rgb_or_gray(tmp_path):
    rgb = photo(8, 8)
    Image.fromarray(rgb).quantize(16).save(tmp_path / "p.png")
    assert read_image(tmp_path / "p.png").shape == (8, 8, 3)
    transparent = Image.fromarray(rgb).quantize(16)
    transparent.info["transparency"] = 0
    transparent.save(tmp_path / "pt.png", transparency=0)
    assert read_image(tmp_path / "pt.png").shape == (8, 8, 4)
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "c.jpg")
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "c.tif")
    for name in ("c.jpg", "c.tif"):
        back = read_image(tmp_path / name)
        assert back.shape == (8, 8, 3) and back.dtype == np.uint8
        assert np.abs(back.astype(int) - rgb).mean() < 20
    Image.fromarray(rgb[..., 0] > 128).save(tmp_path / "b.png")
    assert set(np.unique(read_image(tmp_path / "b.png"))) <= {0, 255}


def test_bad_files_raise_data_error_naming_the_path(tmp_path):
    write_image(tmp_path / "good.png", photo(32, 32))
    data = (tmp_path / "good.png").read_bytes()
    (tmp_path / "trunc.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("not an image")
    for name, reason in (("trunc.png", "corrupt"), ("empty.png", "zero bytes"), ("text.png", "not an image"),
                         ("missing.png", "cannot read")):
        with pytest.raises(DataError, match=reason) as info:
            read_image(tmp_path / name)
        assert str(tmp_path / name) in str(info.value)


def test_conversions():
    rgb = np.array([[[255, 0, 0], [10, 200, 30]]], np.uint8)
    # BT.601: 0.299 * 255 = 76.2; 0.299 * 10 + 0.587 * 200 + 0.114 * 30 = 123.8
    np.testing.assert_array_equal(adapt_channels(rgb, 1)[..., 0], [[76, 124]])
    assert adapt_channels(rgb[..., :1], 3).shape == (1, 2, 3)
    assert adapt_channels(np.zeros((2, 2, 4), np.uint16), 3).shape == (2, 2, 3)
    assert adapt_channels(np.zeros((2, 2, 2), np.uint8), 1).shape == (2, 2, 1)
    with pytest.raises(ValueError):
        adapt_channels(np.zeros((2, 2, 5), np.uint8), 3)
    for dtype in (np.uint8, np.uint16):
        array = RNG.integers(0, np.iinfo(dtype).max + 1, (4, 5, 3)).astype(dtype)
        tensor = to_tensor(to_float(array))
        assert tensor.shape == (3, 4, 5) and tensor.dtype == torch.float32 and tensor.abs().max() <= 1
        np.testing.assert_array_equal(from_tensor(tensor, dtype), array)
    np.testing.assert_array_equal(to_uint8(np.arange(256, dtype=np.uint16) * 257), np.arange(256))
    assert to_float(np.array([[[2.0, -1.0]]], np.float32)).tolist() == [[[1.0, 0.0]]]


def test_jpeg_gets_8_bits_and_refuses_alpha(tmp_path):
    write_image(tmp_path / "x.jpg", photo(8, 8, dtype=np.uint16))
    assert read_image(tmp_path / "x.jpg").dtype == np.uint8
    with pytest.raises(DataError, match="JPEG"):
        write_image(tmp_path / "y.jpg", photo(8, 8, 4))


def test_list_images_recursive_sorted_skips_hidden_and_loops(tmp_path):
    for rel in ("b.png", "a/c.JPG", "a/.hidden.png", ".git/d.png", "notes.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    (tmp_path / "a" / "loop").symlink_to(tmp_path)
    assert list_images(tmp_path) == [tmp_path / "a/c.JPG", tmp_path / "b.png"]


# ---------------------------------------------------------------- data sets
def aligned_root(tmp_path: Path, width_pad: int = 0) -> tuple[Path, np.ndarray]:
    x = photo(40, 40)
    write_image(tmp_path / "ds" / "train" / "p0.png", np.concatenate([x, x[:, : 40 + width_pad]], axis=1))
    write_image(tmp_path / "ds" / "train" / "p1.png", np.concatenate([x[::-1], x[::-1]], axis=1))
    return tmp_path / "ds", x


def test_aligned_pairs_get_the_same_crop_and_flip(tmp_path):
    root, _ = aligned_root(tmp_path)
    ds = PairedFolder(root=str(root), size=32, load_size=36)
    assert len(ds) == 2 and ds.channels == {"real_a": 3, "real_b": 3}
    crops = set()
    for seed in range(8):
        s = ds[(0, seed)]
        assert s["real_a"].shape == (3, 32, 32) and s["real_a"].dtype == torch.float32
        assert s["real_a"].min() >= -1 and s["real_a"].max() <= 1
        assert torch.equal(s["real_a"], s["real_b"])
        crops.add(s["real_a"].sum().item())
    assert len(crops) > 1  # the crop/flip does vary with the seed


def test_folders_layout_matches_by_relative_name(tmp_path):
    x, y = photo(40, 40), photo(40, 40)
    for side in ("A", "B"):
        write_image(tmp_path / "train" / side / "x.png", x)
    write_image(tmp_path / "train" / "A" / "sub" / "y.png", y)
    write_image(tmp_path / "train" / "B" / "sub" / "y.tif", y)  # extensions may differ
    ds = PairedFolder(root=str(tmp_path), layout="folders", size=24, load_size=32)
    assert [p.name for p, _ in ds.files] == ["y.png", "x.png"]
    for seed in range(4):
        s = ds[(0, seed)]
        assert torch.equal(s["real_a"], s["real_b"]) and s["path_b"].endswith("y.tif")


def test_direction_swap_and_channel_adaptation(tmp_path):
    x = photo(40, 40)
    write_image(tmp_path / "train" / "A" / "x.png", x)
    write_image(tmp_path / "train" / "B" / "x.png", 255 - x)
    ds = PairedFolder(root=str(tmp_path), layout="folders", direction="BtoA", size=40, flip=False)
    s = ds[0]
    assert s["path_a"].endswith(os.path.join("B", "x.png"))
    torch.testing.assert_close(s["real_a"], expected(255 - x), atol=1e-6, rtol=0)
    torch.testing.assert_close(s["real_b"], expected(x), atol=1e-6, rtol=0)
    gray = PairedFolder(root=str(tmp_path), layout="folders", a_channels=1, size=40, flip=False)[0]
    assert gray["real_a"].shape == (1, 40, 40) and gray["real_b"].shape == (3, 40, 40)
    torch.testing.assert_close(gray["real_a"], to_tensor(adapt_channels(to_float(x), 1)), atol=1e-6, rtol=0)
    with pytest.raises(DataError, match="a_channels=5"):
        PairedFolder(root=str(tmp_path), layout="folders", a_channels=5, size=40)[0]


def test_sixteen_bit_precision_reaches_the_tensor(tmp_path):
    x = (np.arange(40 * 40, dtype=np.uint16) * 37).reshape(40, 40, 1)
    write_image(tmp_path / "img" / "x.png", x)
    s = SingleFolder(root=str(tmp_path / "img"), channels=1, size=40, flip=False)[0]
    torch.testing.assert_close(s["real_a"], expected(x), atol=1e-6, rtol=0)
    assert not torch.allclose(s["real_a"], expected(to_uint8(x)), atol=1e-4)


def test_same_index_and_seed_give_identical_tensors(tmp_path):
    root, _ = aligned_root(tmp_path)
    a, b = PairedFolder(root=str(root), size=32, load_size=36), PairedFolder(root=str(root), size=32, load_size=36)
    assert torch.equal(a[(1, 5)]["real_a"], b[(1, 5)]["real_a"])
    assert torch.equal(a[(1, 5)]["real_a"], a[(1, 5)]["real_a"])
    assert torch.equal(a[1]["real_a"], a[(1, 1)]["real_a"])
    with pytest.raises(IndexError):
        a[2]


def test_unpaired_pairing_is_random_but_reproducible(tmp_path):
    for i in range(3):
        write_image(tmp_path / "trainA" / f"a{i}.png", photo(36, 36))
    for i in range(5):
        write_image(tmp_path / "trainB" / f"b{i}.png", photo(48, 40, channels=1))  # other size and channels
    ds = UnpairedFolder(root=str(tmp_path), size=32, b_channels=3)
    assert len(ds) == 5 and ds.channels == {"real_a": 3, "real_b": 3}
    first = ds[(4, 7)]
    assert first["path_a"].endswith("a1.png") and first["real_b"].shape == (3, 32, 32)
    again = ds[(4, 7)]
    assert first["path_b"] == again["path_b"] and torch.equal(first["real_b"], again["real_b"])
    assert len({ds[(0, seed)]["path_b"] for seed in range(20)}) > 1


def test_single_folder_uses_split_when_present(tmp_path):
    write_image(tmp_path / "x.png", photo(16, 16))
    write_image(tmp_path / "train" / "y.png", photo(16, 16))
    assert len(SingleFolder(root=str(tmp_path), size=16)) == 1
    assert len(SingleFolder(root=str(tmp_path), split="val", size=16)) == 2


def test_cache_keeps_decoded_images(tmp_path):
    root, _ = aligned_root(tmp_path)
    ds = PairedFolder(root=str(root), size=32, cache=True)
    first = ds[(0, 3)]
    (root / "train" / "p0.png").unlink()
    assert torch.equal(ds[(0, 3)]["real_a"], first["real_a"])


def test_missing_empty_one_sided_odd_and_corrupt_data(tmp_path):
    with pytest.raises(DataError, match="trainA/ and trainB/") as info:
        UnpairedFolder(root=str(tmp_path / "nowhere"))
    assert str(tmp_path / "nowhere" / "trainA") in str(info.value)
    (tmp_path / "empty" / "train").mkdir(parents=True)
    with pytest.raises(DataError, match="holds no images"):
        PairedFolder(root=str(tmp_path / "empty"))
    write_image(tmp_path / "pairs" / "train" / "A" / "x.png", photo(8, 8))
    write_image(tmp_path / "pairs" / "train" / "A" / "lonely.png", photo(8, 8))
    write_image(tmp_path / "pairs" / "train" / "B" / "x.png", photo(8, 8))
    with pytest.raises(DataError, match="lonely.png"):
        PairedFolder(root=str(tmp_path / "pairs"), layout="folders")
    root, _ = aligned_root(tmp_path / "odd", width_pad=-1)
    with pytest.raises(DataError, match="even width"):
        PairedFolder(root=str(root), size=32)[0]
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(DataError, match="broken.png"):
        SingleFolder(root=str(tmp_path / "bad"), size=8)[0]


def test_transform_spec_replaces_default_and_bad_specs_name_the_key(tmp_path):
    root, _ = aligned_root(tmp_path)
    spec = [{"type": "RandomCrop", "height": 16, "width": 16}, {"type": "VerticalFlip", "p": 1.0}]
    s = PairedFolder(root=str(root), transforms=spec)[(0, 2)]
    assert s["real_a"].shape == (3, 16, 16) and torch.equal(s["real_a"], s["real_b"])
    for bad, key in (([{"type": "RandomCorp", "height": 4, "width": 4}], "data.transforms[0]"),
                     ([{"type": "Resize", "height": 4, "widht": 4}], "data.transforms[0].widht"),
                     ([{"type": "Resize", "height": "x", "width": 4}], "data.transforms[0]"),
                     (["Resize"], "data.transforms[0]")):
        with pytest.raises(RecipeError, match=key.replace("[", r"\[").replace("]", r"\]")) as info:
            build_transform(32, None, True, bad, ("real_a",))
        assert info.value.key == key
    with pytest.raises(RecipeError, match="did you mean 'RandomCrop'"):
        build_transform(32, None, True, [{"type": "RandomCorp"}], ("real_a",))


def test_channels_from_config_and_recipe_validation(tmp_path):
    root, _ = aligned_root(tmp_path)
    write_image(tmp_path / "trainA" / "a.png", photo(8, 8))
    write_image(tmp_path / "trainB" / "b.png", photo(8, 8))
    cases = [(PairedFolder, {"root": str(root), "a_channels": 1, "direction": "BtoA"}),
             (UnpairedFolder, {"root": str(tmp_path), "b_channels": 1}),
             (SingleFolder, {"root": str(root), "channels": 1})]
    for cls, kwargs in cases:
        assert cls.channels_from_config(**kwargs) == cls(**kwargs).channels
        assert DATASETS.get(cls.registered_name) is cls
        check_arguments(cls, kwargs, key="data")
        with pytest.raises(RecipeError, match="data.batch_size"):
            check_arguments(cls, {**kwargs, "batch_size": 4}, key="data")
    with pytest.raises(RecipeError, match="data.load_size"):
        PairedFolder.channels_from_config(root="x", size=64, load_size=32)
    with pytest.raises(RecipeError, match="data.demo"):
        PairedFolder.channels_from_config(root="x", demo="nope")


# ---------------------------------------------------------------- demos
def test_colorize_demo_layout_counts_and_second_call_is_a_no_op(tmp_path, monkeypatch):
    root = tmp_path / "colorize"
    ensure_demo("colorize", root)
    counts = {split: len(list_images(root / split / "A")) for split in ("train", "test")}
    assert counts["train"] >= 300 and counts["test"] >= 24
    for split in ("train", "test"):
        assert [p.name for p in list_images(root / split / "A")] == [p.name for p in list_images(root / split / "B")]
    a, b = root / "train" / "A" / "astronaut_000.png", root / "train" / "B" / "astronaut_000.png"
    with Image.open(a) as gray, Image.open(b) as colour:
        assert gray.mode == "L" and colour.mode == "RGB" and gray.size == (72, 72)
    np.testing.assert_array_equal(read_image(a), adapt_channels(read_image(b), 1))
    assert json.loads((root / MARKER).read_text())["counts"]["train"] == counts["train"]
    monkeypatch.setitem(DEMOS, "colorize", lambda _: pytest.fail("rebuilt a complete demo"))
    ensure_demo("colorize", root)
    ds = PairedFolder(root=str(root), layout="folders", a_channels=1, size=64, load_size=72, demo="colorize")
    assert ds[(0, 0)]["real_a"].shape == (1, 64, 64)


def test_photo2ihc_demo_builds_through_the_data_set(tmp_path):
    ds = UnpairedFolder(root=str(tmp_path / "p2i"), size=64, load_size=72, demo="photo2ihc")
    counts = {d: len(list_images(tmp_path / "p2i" / d)) for d in ("trainA", "trainB", "testA", "testB")}
    assert counts["trainA"] >= 200 and counts["trainB"] >= 200 and counts["testA"] >= 16 and counts["testB"] >= 16
    assert len(ds) == max(counts["trainA"], counts["trainB"]) and ds[(0, 0)]["real_b"].shape == (3, 64, 64)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary build folder left


def test_demo_errors(tmp_path):
    with pytest.raises(RecipeError, match="data.demo"):
        ensure_demo("lily", tmp_path / "x")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("user data")
    with pytest.raises(DataError, match="not a complete"):
        ensure_demo("colorize", tmp_path / "mine")


# ---------------------------------------------------------------- edges script
def test_make_edges_dataset(tmp_path, capsys):
    path = Path(__file__).resolve().parents[1] / "data" / "make_edges_dataset.py"
    spec = importlib.util.spec_from_file_location("make_edges_dataset", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    for i in range(4):
        write_image(tmp_path / "src" / f"p{i}.jpg", photo(48, 64))
    assert script.main([str(tmp_path / "src"), str(tmp_path / "dst"), "--size", "32", "--test-fraction", "0.25"]) == 0
    train, test = list_images(tmp_path / "dst" / "train"), list_images(tmp_path / "dst" / "test")
    assert len(train) == 3 and len(test) == 1 and read_image(train[0]).shape == (32, 64, 3)
    assert "wrote 3 train and 1 test" in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:
        script.main([str(tmp_path / "src"), str(tmp_path / "src" / "out")])
    assert info.value.code == 2
