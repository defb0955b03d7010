"""A direction that names several exported nets translates through them in sequence (encoder, then decoder)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from i2i.cli import main
from i2i.data.io import read_image, write_image
from i2i.errors import I2IError
from i2i.inference.export import Chain, load_export, write_export
from i2i.nets import build_net
from i2i.recipe import Recipe

STAGE = {"type": "tests.test_tiling:ConvStack", "layers": 2, "multiple": 4}


class Pair(nn.Module):
    """Returns (image, something else), as a VAE encoder returns (mu, logvar)."""

    in_channels = 3

    def forward(self, x):
        return x * 0.5, x * 0 + 7


@pytest.fixture(autouse=True)
def _trust_test_nets(monkeypatch):
    monkeypatch.setenv("I2I_TRUSTED_MODULES", "tests.test_tiling")


def _chain_export(folder: Path) -> Path:
    nets = {"enc": {**STAGE, "out_channels": 5}, "dec": {**STAGE, "in_channels": 5}}
    recipe = Recipe.of({"name": "tiny", "model": {"type": "pix2pix"}, "nets": nets}, "tiny")
    torch.manual_seed(0)
    states = {name: build_net(recipe, name, file="tiny").state_dict() for name in nets}
    meta = {"model": "pix2pix", "step": 1, "ema": False, "name": "tiny",
            "directions": {"AtoB": ["enc", "dec"], "half": "enc"}}
    return write_export(recipe, states, folder, meta)


def test_a_listed_direction_runs_its_nets_in_order(tmp_path):
    export = load_export(_chain_export(tmp_path / "export"))
    name, net = export.generator("AtoB")
    assert name == "enc" and isinstance(net, Chain) and net.in_channels == 3
    x = torch.rand(1, 3, 8, 8) * 2 - 1
    with torch.no_grad():
        assert torch.equal(net(x), export.nets["dec"](export.nets["enc"](x)))
    assert export.generator("half")[1] is export.nets["enc"]
    with pytest.raises(I2IError, match="valid: AtoB, half"):
        export.generator("BtoA")


def test_translate_through_a_chain_matches_the_nets_applied_by_hand(tmp_path):
    export_dir = _chain_export(tmp_path / "export")
    image = (np.random.default_rng(0).random((12, 16, 3)) * 255).astype(np.uint8)
    write_image(tmp_path / "in" / "a.png", image)
    assert main(["translate", str(export_dir), "-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"),
                 "--direction", "AtoB", "--device", "cpu"]) == 0
    out = read_image(tmp_path / "out" / "a.png")
    export = load_export(export_dir)
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():
        y = export.nets["dec"](export.nets["enc"](x))
    expected = ((y[0].permute(1, 2, 0).clamp(-1, 1) + 1) * 127.5).round().numpy()
    assert out.shape == image.shape and np.abs(out.astype(float) - expected).max() <= 1


def test_a_net_returning_a_tuple_passes_its_first_element():
    chain = Chain([Pair(), Pair()])
    assert torch.equal(chain(torch.ones(1, 3, 4, 4)), torch.full((1, 3, 4, 4), 0.25))


def test_a_direction_naming_a_missing_net_is_refused(tmp_path):
    export_dir = _chain_export(tmp_path / "export")
    meta = json.loads((export_dir / "meta.json").read_text())
    meta["directions"]["AtoB"] = ["enc", "nope"]
    (export_dir / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(I2IError, match="'directions' must map directions"):
        load_export(export_dir)
