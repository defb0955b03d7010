"""FID and KID: torch-fidelity's Inception-v3 architecture with random weights (the standard weights are a 91 MB
file nobody downloads in tests), the recipe's eval.fid during training and ``i2i eval --fid``."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("torch_fidelity", reason="the [fid] extra is not installed")

from i2i.cli import main  # noqa: E402
from i2i.errors import I2IError, RecipeError  # noqa: E402
from i2i.evaluation import fid as fidmod  # noqa: E402
from i2i.evaluation.fid import InceptionFeatures, fid_kid, kid, to_uint8_rgb  # noqa: E402

from .conftest import photo_crops  # noqa: E402
from .recipes import tiny_pix2pix, write_recipe  # noqa: E402


@pytest.fixture(scope="module")
def inception() -> InceptionFeatures:
    return InceptionFeatures("random")


def _crops(n: int, seed: int) -> torch.Tensor:
    return torch.from_numpy(np.stack(photo_crops(n, 32, seed=seed))).permute(0, 3, 1, 2).float() / 127.5 - 1


@pytest.fixture(scope="module")
def base(inception) -> torch.Tensor:
    """Inception features of 12 photo crops."""
    return inception(to_uint8_rgb(_crops(12, seed=3)))


def test_kid_is_unbiased_on_small_sets(base):
    """Random halves of one pool come from one distribution: KID's unbiased estimate averages 0 at 6 images a
    side (over random splits its expectation is exactly 0), and single splits fall on both sides of 0."""
    rng = np.random.default_rng(0)
    kids = []
    for _ in range(200):
        order = torch.from_numpy(rng.permutation(len(base)))
        kids.append(kid(base[order[:6]], base[order[6:]], subsets=1)["kid"])
    kids = np.array(kids)
    se = kids.std() / np.sqrt(len(kids))
    assert abs(kids.mean()) < 3 * se, (kids.mean(), se)
    assert (kids < 0).mean() > 0.2 and (kids > 0).mean() > 0.2
    # the biased V-statistic (diagonal kept) of the same splits is always above 0: what "unbiased" removes
    a, b = base[:6].numpy(), base[6:].numpy()
    k = lambda x, y: (x @ y.T / x.shape[1] + 1) ** 3  # noqa: E731  KID's kernel
    biased = k(a, a).mean() + k(b, b).mean() - 2 * k(a, b).mean()
    assert biased > kid(base[:6], base[6:], subsets=1)["kid"]


@pytest.mark.slow
def test_fid_of_a_set_with_itself_is_zero_and_grows_with_a_shift(inception, base):
    crops = _crops(12, seed=3)
    shifted = {s: inception(to_uint8_rgb(crops + s)) for s in (0.25, 0.5)}
    same, near, far = fid_kid(base, base), fid_kid(base, shifted[0.25]), fid_kid(base, shifted[0.5])
    assert far["fid"] > near["fid"] > 0
    assert abs(same["fid"]) < 1e-4 * near["fid"]  # eigenvalues of a rank-deficient product: round-off
    # KID at 12 images a side: the +0.25 shift is within its noise (about -0.01, as KID(x, x)), +0.5 is not
    assert far["kid"] > 0 and far["kid"] > near["kid"] and far["kid"] > 3 * abs(same["kid"])
    assert near["kid_subset_size"] == 12  # capped at the set sizes


def test_weights_come_from_a_local_file_never_a_download(inception, tmp_path, monkeypatch):
    import torch_fidelity.feature_extractor_inceptionv3 as tf_inception

    def no_download(*args, **kwargs):
        raise AssertionError("tried to download")

    monkeypatch.setattr(tf_inception, "load_state_dict_from_url", no_download)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.delenv(fidmod.WEIGHTS_ENV, raising=False)
    with pytest.raises(I2IError) as missing:  # nowhere: the message says where to put it and where it comes from
        InceptionFeatures(None)
    text = str(missing.value)
    assert str(tmp_path / "torch_home" / "hub" / "checkpoints" / fidmod.FILE_NAMES[0]) in text
    assert fidmod.URLS[0] in text and fidmod.WEIGHTS_ENV in text
    # a weights file on disk (here the random net's own), by path, by $I2I_INCEPTION_WEIGHTS, from the hub cache
    weights = tmp_path / "inception.pth"
    torch.save(inception.net.state_dict(), weights)
    images = to_uint8_rgb(torch.rand(2, 3, 20, 24) * 2 - 1)
    want = inception(images)
    by_path = InceptionFeatures(weights)
    assert by_path.standard is False and torch.allclose(by_path(images), want)
    monkeypatch.setenv(fidmod.WEIGHTS_ENV, str(weights))
    assert fidmod.resolve_weights(None) == str(weights)
    monkeypatch.delenv(fidmod.WEIGHTS_ENV)
    hub = fidmod.hub_paths()[1]
    hub.parent.mkdir(parents=True)
    hub.symlink_to(weights)
    assert fidmod.resolve_weights(None) == str(hub)
    # files that are not the weights
    (tmp_path / "junk.pth").write_bytes(b"not torch")
    torch.save({"fc.weight": torch.zeros(3)}, tmp_path / "other.pth")
    for bad, why in (("junk.pth", "not a PyTorch weights file"), ("other.pth", "not the Inception weights"),
                     ("absent.pth", "no such file")):
        with pytest.raises(I2IError, match=why):
            InceptionFeatures(tmp_path / bad)


def test_missing_library_is_a_clear_error(monkeypatch):
    import builtins
    real_import = builtins.__import__

    def without(name, *args, **kwargs):
        if name.startswith("torch_fidelity"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without)
    with pytest.raises(I2IError, match=r"pip install 'i2i\[fid\]'"):
        kid(torch.zeros(3, 4), torch.zeros(3, 4))


def _folder(root: Path, images: list[np.ndarray], gray: bool = False) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i, rgb in enumerate(images):
        img = Image.fromarray(rgb)
        (img.convert("L") if gray else img).save(root / f"{i:03d}.png")
    return root


def _tiny_pix2pix_recipe(tmp_path: Path, paired_root: Path, evaluation: dict | None) -> dict:
    recipe = tiny_pix2pix(paired_root, tmp_path / "run")
    recipe["eval"] = evaluation
    return recipe


def test_recipe_checks_of_eval_fid(tmp_path, paired_root, monkeypatch):
    from i2i.build import validate_recipe
    from i2i.recipe import Recipe
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.delenv(fidmod.WEIGHTS_ENV, raising=False)
    real = str(paired_root / "train" / "B")
    good = {"real": real, "input": str(paired_root / "train" / "A"), "samples": 4, "every": 2, "weights": "random"}

    def check(evaluation):
        return validate_recipe(Recipe.of(_tiny_pix2pix_recipe(tmp_path, paired_root, evaluation), "r.yaml"))

    scorer = check({"fid": good}).scorer
    assert scorer.metric_names({"fid": good}, {}) == ["fid", "kid", "kid_std"]
    both = {"every": 2, "samples": 2, "fid": good}
    assert check(both).scorer.inner.__name__ == "PairedScorer"
    for change, key in (({"real": str(tmp_path / "nowhere")}, "eval.fid.real"),
                        ({"samples": 1}, "eval.fid.samples"), ({"every": 0}, "eval.fid.every"),
                        ({"direction": "BtoA"}, "eval.fid.direction"), ({"colour": 1}, "eval.fid.colour"),
                        ({"weights": None}, "eval.fid.weights"), ({"input": None}, "eval.fid.input")):
        with pytest.raises(RecipeError) as err:
            check({"fid": {**good, **change}})
        assert err.value.key == key, (change, err.value)
    with pytest.raises(RecipeError, match="curl"):  # the weights' error says how to get them
        check({"fid": {**good, "weights": None}})


@pytest.mark.slow
def test_training_logs_fid_beside_the_models_own_scores(tmp_path, paired_root):
    fid = {"real": str(paired_root / "train" / "B"), "input": str(paired_root / "train" / "A"), "samples": 3,
           "every": 2, "weights": "random", "batch_size": 2}
    recipe = _tiny_pix2pix_recipe(tmp_path, paired_root, {"every": 4, "max_images": 2, "samples": 2,
                                                          "feature_weights": None, "split": "train", "fid": fid})
    assert main(["train", str(write_recipe(tmp_path / "r.yaml", recipe))]) == 0
    rows = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    fid_rows = [r for r in rows if "eval/fid" in r]
    assert [r["step"] for r in fid_rows] == [0, 2, 4]  # step 0: the untrained generator, before the first step
    assert all(r["eval/fid"] > 0 and np.isfinite(r["eval/kid"]) for r in fid_rows)
    assert fid_rows[1]["eval/fid"] != fid_rows[2]["eval/fid"]  # the generator changed between the two
    paired = [r for r in rows if "eval/diversity" in r]
    assert [r["step"] for r in paired] == [0, 4]


@pytest.mark.slow
def test_cli_eval_fid_for_a_translator_and_a_noise_generator(tmp_path, capsys):
    from .test_hostile_exports import make_tiny_export
    export = make_tiny_export(tmp_path)
    real = _folder(tmp_path / "real", photo_crops(4, 32, seed=5))
    inputs = _folder(tmp_path / "inputs", photo_crops(3, 40, seed=6), gray=True)
    assert main(["eval", str(export), "--fid", str(real), "--fid-input", str(inputs), "--fid-weights", "random",
                 "--fid-size", "32", "--device", "cpu"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["generated"] == 3 and out["real_images"] == 4 and out["fid"] > 0 and out["standard_weights"] is False
    assert out["kid_subset_size"] == 3 and out["input"] == str(inputs)
    # without inputs and without a test split to default to: a clear error, exit 2
    assert main(["eval", str(export), "--fid", str(real), "--fid-weights", "random"]) == 2
    assert "--fid-input" in capsys.readouterr().err
