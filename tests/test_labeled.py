"""i2i.data.labeled: class folders and MNIST-style .npz with labels, the digits demo, whole-split arrays."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from i2i.arguments import check_arguments
from i2i.data import DEMOS, LabeledImages, ensure_demo, list_images, load_labeled_arrays, write_image
from i2i.data.demo import MARKER
from i2i.errors import DataError, RecipeError
from i2i.registry import DATASETS

CLASSES = {"0": 0.2, "2": 0.5, "10": 0.8}  # class name -> mean brightness: the content encodes the label


def digit_like(value: float, rng: np.random.Generator, size: int = 28, channels: int = 1) -> np.ndarray:
    """A smooth uint8 image of mean ~``value``: structure survives resizing, the mean identifies the class."""
    small = rng.random((5, 5, channels)).astype(np.float32) - 0.5
    smooth = cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC).reshape(size, size, channels)
    return np.clip(np.rint((value + 0.15 * smooth) * 255), 0, 255).astype(np.uint8)


def decode(real: torch.Tensor) -> str:
    """The class name whose brightness is closest to the image's mean (in [-1, 1])."""
    mean = (float(real.mean()) + 1) / 2
    return min(CLASSES, key=lambda name: abs(CLASSES[name] - mean))


def make_folders(root, splits=("train", "test"), per_class=4, channels=1, seed=0):
    rng = np.random.default_rng(seed)
    for split in splits:
        for name, value in CLASSES.items():
            for i in range(per_class):
                write_image(root / split / name / f"{i}.png", digit_like(value, rng, channels=channels))
    return root


def make_npz(path, per_class=4, channels=None, seed=0, **extra):
    """MNIST-style: uint8 (N, 28, 28) (or (N, 28, 28, C)), integer labels 0, 2, 10."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in (("train", per_class), ("test", per_class // 2)):
        labels = rng.permutation(np.repeat([int(c) for c in CLASSES], n))
        x = np.stack([digit_like(CLASSES[str(y)], rng, channels=channels or 1) for y in labels])
        arrays[f"x_{split}"], arrays[f"y_{split}"] = (x if channels else x[..., 0]), labels.astype(np.uint8)
    np.savez(path, **{**arrays, **extra})
    return path


@pytest.fixture
def roots(tmp_path):
    return make_folders(tmp_path / "folders"), make_npz(tmp_path / "mnist.npz")


# ---------------------------------------------------------------- both root kinds
def test_folder_and_npz_give_the_same_items_and_correct_labels(roots):
    for root in roots:
        for split, n in (("train", 12), ("test", 12 if root.is_dir() else 6)):
            ds = LabeledImages(root=str(root), split=split)
            assert len(ds) == n and ds.channels == {"real": 1} and ds.num_classes == 3
            assert ds.class_names == ["0", "2", "10"]  # numeric, not string, order
            assert ds.labels.dtype == np.int64 and ds.labels.shape == (n,)
            for i in range(n):
                item = ds[(i, 7)]
                assert set(item) == {"real", "y", "path"}
                real, y = item["real"], item["y"]
                assert real.shape == (1, 32, 32) and real.dtype == torch.float32  # 28 px -> 32 px
                assert real.min() >= -1 and real.max() <= 1
                assert y.dtype == torch.int64 and y.ndim == 0 and int(y) == ds.labels[i]
                assert ds.class_names[int(y)] == decode(real)
    folder = LabeledImages(root=str(roots[0]))
    assert folder[0]["path"].endswith("train/0/0.png")
    npz = LabeledImages(root=str(roots[1]), split="test")
    assert npz[3]["path"] == f"{roots[1]}#test/3"


def test_class_names_from_folders_and_npz(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("dog", "cat", "bird"):  # no split folder: root/<class>/
        write_image(tmp_path / "pets" / name / "a.jpg", digit_like(0.5, rng, channels=3))
    ds = LabeledImages(root=str(tmp_path / "pets"), channels=3)
    assert ds.class_names == ["bird", "cat", "dog"] and ds.labels.tolist() == [0, 1, 2]
    # Labels index class_names when the npz has it; otherwise the sorted labels of all splits name the classes.
    x = np.zeros((4, 8, 8), np.uint8)
    np.savez(tmp_path / "named.npz", x=x, y=np.array([1, 0, 1, 2]), class_names=np.array(["a", "b", "c"]))
    named = LabeledImages(root=str(tmp_path / "named.npz"), split="anything")
    assert named.class_names == ["a", "b", "c"] and named.labels.tolist() == [1, 0, 1, 2]
    assert named[0]["path"].endswith("named.npz#x/0")
    np.savez(tmp_path / "sparse.npz", x_train=x[:2], y_train=np.array([7, 3]), x_test=x[:2], y_test=np.array([11., 3.]))
    train = LabeledImages(root=str(tmp_path / "sparse.npz"))
    test = LabeledImages(root=str(tmp_path / "sparse.npz"), split="test")
    assert train.class_names == test.class_names == ["3", "7", "11"]  # same indices in every split
    assert train.labels.tolist() == [1, 0] and test.labels.tolist() == [2, 0]


def test_npz_float_and_channel_last_images(tmp_path):
    rng = np.random.default_rng(1)
    x = np.stack([digit_like(v, rng, size=16, channels=3) for v in (0.2, 0.8)])
    np.savez(tmp_path / "f.npz", x=x.astype(np.float32) / 255, y=np.array([0, 1]))
    np.savez(tmp_path / "u.npz", x=x, y=np.array([0, 1]))
    a, b = (LabeledImages(root=str(tmp_path / n), channels=3, size=16) for n in ("f.npz", "u.npz"))
    torch.testing.assert_close(a[(1, 0)]["real"], b[(1, 0)]["real"], atol=1e-5, rtol=0)
    assert a[0]["real"].shape == (3, 16, 16)


def test_channel_adaptation_both_ways(tmp_path):
    gray = make_folders(tmp_path / "gray", splits=("train",), per_class=1)
    rgb_npz = make_npz(tmp_path / "rgb.npz", per_class=2, channels=3)
    rgb_folders = make_folders(tmp_path / "rgb", splits=("train",), per_class=1, channels=3)
    three = LabeledImages(root=str(gray), channels=3)[0]["real"]
    assert three.shape == (3, 32, 32) and torch.equal(three[0], three[1]) and torch.equal(three[0], three[2])
    for root in (rgb_npz, rgb_folders):
        ds = LabeledImages(root=str(root), channels=1)
        assert ds[0]["real"].shape == (1, 32, 32) and ds.channels == {"real": 1}
        assert ds.class_names[int(ds[0]["y"])] == decode(ds[0]["real"])


def test_items_are_a_function_of_index_and_seed(roots):
    for root in roots:
        ds = LabeledImages(root=str(root), size=24, load_size=32, flip=True)
        again = LabeledImages(root=str(root), size=24, load_size=32, flip=True)
        for i in range(4):
            assert torch.equal(ds[(i, 3)]["real"], again[(i, 3)]["real"])
            assert torch.equal(ds[(i, 3)]["real"], ds[(i, 3)]["real"])
        assert any(not torch.equal(ds[(0, 0)]["real"], ds[(0, s)]["real"]) for s in range(1, 6))
        assert ds[(2, 5)]["real"].shape == (1, 24, 24) and int(ds[(2, 5)]["y"]) == ds.labels[2]
        plain = LabeledImages(root=str(root))  # no crop, no flip: the seed does not matter
        assert torch.equal(plain[(1, 0)]["real"], plain[(1, 9)]["real"])


def test_limit_takes_a_fixed_subset(roots):
    for root in roots:
        full = LabeledImages(root=str(root))
        a, b = LabeledImages(root=str(root), limit=5), LabeledImages(root=str(root), limit=5)
        assert len(a) == 5 and a.labels.shape == (5,) and a.num_classes == 3
        paths = [a[i]["path"] for i in range(5)]
        assert paths == [b[i]["path"] for i in range(5)]
        assert paths != [full[i]["path"] for i in range(5)]  # shuffled, not the first 5 files
        index = {full[i]["path"]: i for i in range(len(full))}
        assert [full.labels[index[p]] for p in paths] == a.labels.tolist()
        assert [int(a[i]["y"]) for i in range(5)] == a.labels.tolist()
        assert len(LabeledImages(root=str(root), limit=1000)) == len(full)
    with pytest.raises(RecipeError, match="data.limit"):
        LabeledImages(root=str(roots[0]), limit=0)


# ---------------------------------------------------------------- errors
def test_errors_name_the_path_or_key(tmp_path, roots):
    with pytest.raises(DataError, match="nowhere.*does not exist"):
        LabeledImages(root=str(tmp_path / "nowhere"))
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="notes.txt.*not an .npz"):
        LabeledImages(root=str(tmp_path / "notes.txt"))
    np.savez(tmp_path / "odd.npz", images=np.zeros((2, 4, 4), np.uint8), targets=np.array([0, 1]))
    with pytest.raises(DataError, match=r"odd.npz.*expected x_train and y_train.*it has images, targets"):
        LabeledImages(root=str(tmp_path / "odd.npz"))
    with pytest.raises(DataError, match=r"expected x_val and y_val.*it has x_test, x_train, y_test, y_train"):
        LabeledImages(root=str(roots[1]), split="val")
    np.savez(tmp_path / "short.npz", x=np.zeros((3, 4, 4), np.uint8), y=np.array([0, 1]))
    with pytest.raises(DataError, match="short.npz: x has 3 images but y has 2 labels"):
        LabeledImages(root=str(tmp_path / "short.npz"))
    np.savez(tmp_path / "frac.npz", x=np.zeros((2, 4, 4), np.uint8), y=np.array([0.0, 0.5]))
    with pytest.raises(DataError, match="frac.npz:y.*not integers"):
        LabeledImages(root=str(tmp_path / "frac.npz"))
    np.savez(tmp_path / "one.npz", x=np.zeros((2, 4, 4), np.uint8), y=np.array([3, 3]))
    with pytest.raises(DataError, match="one.npz defines 1 class"):
        LabeledImages(root=str(tmp_path / "one.npz"))
    np.savez(tmp_path / "bright.npz", x=np.full((2, 4, 4), 255.0), y=np.array([0, 1]))
    with pytest.raises(DataError, match=r"bright.npz:x holds floats in \[255, 255\]"):
        LabeledImages(root=str(tmp_path / "bright.npz"))

    root = make_folders(tmp_path / "f", splits=("train",), per_class=1)
    (root / "train" / "7").mkdir()
    with pytest.raises(DataError, match=r"f/train/7 holds no images.*class '7'"):
        LabeledImages(root=str(root))
    (root / "train" / "7").rmdir()
    with pytest.raises(DataError, match=r"f has no 'test' folder \(it has train\)"):
        LabeledImages(root=str(root), split="test")
    write_image(tmp_path / "single" / "only" / "a.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(DataError, match="single has 1 class sub-folder.*at least 2"):
        LabeledImages(root=str(tmp_path / "single"))
    (root / "train" / "2" / "9.png").write_bytes(b"not a png at all")
    with pytest.raises(DataError, match=r"cannot read image .*train/2/9.png"):
        LabeledImages(root=str(root), on_error="fail")
    assert "9.png" not in [p.name for p in LabeledImages(root=str(root)).files]  # skip: left out at build


# ---------------------------------------------------------------- whole splits for evaluation
def test_load_labeled_arrays_matches_the_data_set(roots):
    for root in roots:
        for split in ("train", "test"):
            for channels in (1, 3):
                images, labels, names = load_labeled_arrays(str(root), split, channels, 32)
                ds = LabeledImages(root=str(root), split=split, channels=channels)
                items = torch.stack([ds[(i, 0)]["real"] for i in range(len(ds))])
                assert images.shape == items.shape == (len(ds), channels, 32, 32) and images.dtype == torch.float32
                assert labels.dtype == torch.int64 and labels.tolist() == ds.labels.tolist()
                assert names == ds.class_names
                assert images.min() >= -1 and images.max() <= 1
                assert (images - items).abs().mean() < 0.02  # bilinear vs bicubic resize of smooth images


# ---------------------------------------------------------------- registry and recipe checks
def test_registered_and_channels_from_config(roots):
    assert DATASETS.get("labeled") is LabeledImages
    for kwargs in ({"root": str(roots[0])}, {"root": str(roots[1]), "channels": 3, "split": "test", "limit": 4}):
        assert LabeledImages.channels_from_config(**kwargs) == LabeledImages(**kwargs).channels
        check_arguments(LabeledImages, kwargs, key="data")
        with pytest.raises(RecipeError, match="data.batch_size"):
            check_arguments(LabeledImages, {**kwargs, "batch_size": 4}, key="data")
    assert LabeledImages.channels_from_config(root="not/there.npz", channels=3) == {"real": 3}  # no disk access
    with pytest.raises(RecipeError, match="data.limit"):
        check_arguments(LabeledImages, {"root": "x", "limit": "all"}, key="data")
    for bad, key in (({"size": 32, "load_size": 28}, "data.load_size"), ({"demo": "mnist"}, "data.demo"),
                     ({"limit": -1}, "data.limit"), ({"transforms": [{"type": "Nope"}]}, r"data.transforms\[0\]")):
        with pytest.raises(RecipeError, match=key):
            LabeledImages.channels_from_config(root="x", **bad)


# ---------------------------------------------------------------- digits demo
def test_digits_demo(tmp_path, monkeypatch):
    root = tmp_path / "digits"
    train = LabeledImages(root=str(root), demo="digits")
    test = LabeledImages(root=str(root), split="test", demo="digits")
    assert train.class_names == test.class_names == [str(d) for d in range(10)]
    assert (len(train), len(test)) == (1528, 269)  # 1797 scans, 15% of each class held out
    assert json.loads((root / MARKER).read_text())["counts"] == {"train": 1528, "test": 269}
    per_class = np.bincount(test.labels, minlength=10)
    assert per_class.min() >= 26 and per_class.max() <= 27 and np.bincount(train.labels).min() >= 147
    assert "load_digits" in (root / "SOURCES.txt").read_text()
    train_names = {p.name for p in list_images(root / "train")}
    assert not train_names & {p.name for p in list_images(root / "test")}  # no scan in both splits
    real = train[(0, 0)]["real"]
    assert real.shape == (1, 32, 32) and real[0, :3].max() == -1 and real.max() > 0.9  # white digit on black
    monkeypatch.setitem(DEMOS, "digits", lambda _: pytest.fail("rebuilt a complete demo"))
    ensure_demo("digits", root)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary build folder left
