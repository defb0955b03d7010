"""Latent codes for translating with a multimodal generator (one with a ``z_dim``, e.g. BicycleGAN's U-Net).

``LatentPlan`` decides which codes each input gets and what the outputs are called: ``<name>_sample<k>`` for
z ~ N(0, I) (reproducible: drawn from ``seed`` and the input's position in the sorted file list, or from ``seed``
alone with ``sync_z`` so every input gets the same set), ``<name>_style-<image>`` for the code the export's
encoder gives a reference image (its mean), and ``<name>_interp`` for a strip of outputs along the line between an
input's first two random codes. Every code written is kept in ``latents.json`` beside the outputs.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.io import read_image
from ..errors import I2IError, check_count
from .tiling import input_tensor, pad_to_multiple


def with_suffix(rel: Path, suffix: str) -> Path:
    return rel.with_name(f"{rel.stem}{suffix}{rel.suffix}")


class WithCode(nn.Module):
    """A multimodal generator with its code fixed: ``forward(x)`` = ``net(x, z)`` for every image of the batch."""

    def __init__(self, net: nn.Module, z: torch.Tensor):
        super().__init__()
        self.net, self.z = net, z

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x, self.z.to(x.device, x.dtype).expand(x.shape[0], -1))


@torch.inference_mode()
def interpolation_strip(net: nn.Module, image: torch.Tensor, codes: torch.Tensor, *, multiple: int,
                        device) -> torch.Tensor:
    """(C, h, K * w): the outputs for one (C, h, w) input and K codes, side by side."""
    x, (h, w) = pad_to_multiple(image[None].expand(codes.shape[0], -1, -1, -1).contiguous().to(device), multiple)
    y = net(x, codes.to(device))[..., :h, :w].float().cpu()
    return torch.cat(list(y), dim=-1)


def encode_style(export, path: str | Path, device) -> torch.Tensor:
    """The encoder's mean code (z_dim,) for a reference image, resized to the training size as E saw it."""
    e = export.nets.get("e")
    if e is None:
        raise I2IError(f"--style-from: the export {export.path} has no encoder (net 'e'); only exports with one "
                       "(bicyclegan) can take a style from an image")
    path = Path(path)
    if not path.is_file():
        raise I2IError(f"--style-from {path}: no such file")
    try:
        x = input_tensor(read_image(path), e.in_channels)
    except (ValueError, OSError, I2IError) as exc:
        raise I2IError(f"--style-from {path}: cannot read it as an image ({exc})") from exc
    size = export.recipe["data"].get("size")
    if isinstance(size, int):
        x = F.interpolate(x[None], size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]
    e = e.to(device).eval()
    with torch.inference_mode():
        return e(x[None].to(device))[0][0].float().cpu()


class LatentPlan:
    """Which codes each input gets, and the output names (module docstring)."""

    codes_file = "latents.json"

    def __init__(self, z_dim: int, *, samples: int, samples_asked: bool, seed: int, sync_z: bool,
                 style: tuple[str, torch.Tensor] | None, interpolate: int):
        self.z_dim, self.samples, self.seed, self.sync_z = z_dim, samples, seed, sync_z
        self.style, self.interpolate = style, interpolate
        self.random = style is None or samples_asked  # a style image alone replaces the random samples
        self.used: dict[str, list] = {}

    @classmethod
    def for_export(cls, export, net: nn.Module, *, samples: int | None, seed: int, sync_z: bool,
                   style_from: str | Path | None, interpolate: int, device) -> LatentPlan | None:
        z_dim = int(getattr(net, "z_dim", 0) or 0)
        asked = [flag for flag, on in (("--samples", samples not in (None, 1)), ("--sync-z", sync_z),
                                       ("--style-from", style_from is not None), ("--interpolate", bool(interpolate)))
                 if on]
        if not z_dim:
            if asked:
                raise I2IError(f"{', '.join(asked)}: the generator of this export (model "
                               f"'{export.meta.get('model')}') takes no latent code; these options are for "
                               "multimodal exports such as bicyclegan")
            return None
        check_count("--samples", samples)
        if not isinstance(interpolate, int) or interpolate < 0 or interpolate == 1:
            raise I2IError("--interpolate must be 0 (off) or the number of frames in a strip (>= 2), "
                           f"got {interpolate!r}")
        style = (Path(style_from).stem, encode_style(export, style_from, device)) if style_from is not None else None
        return cls(z_dim, samples=samples or 1, samples_asked=samples is not None, seed=seed, sync_z=sync_z,
                   style=style, interpolate=interpolate)

    def _random(self, index: int, n: int) -> torch.Tensor:
        key = [self.seed] if self.sync_z else [self.seed, index]
        state = np.random.SeedSequence(key).generate_state(2, dtype=np.uint32)
        gen = torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))
        return torch.randn(n, self.z_dim, generator=gen)

    def codes(self, index: int, rel: Path, image: object = None) -> list[tuple[Path, torch.Tensor]]:
        """(output name, code) for input number ``index`` of the sorted file list (``image``: unused here)."""
        out = []
        if self.style is not None:
            out.append((with_suffix(rel, f"_style-{self.style[0]}"), self.style[1]))
        if self.random:
            out += [(with_suffix(rel, f"_sample{k}"), z) for k, z in enumerate(self._random(index, self.samples))]
        return out

    def line(self, index: int) -> torch.Tensor:
        """(K, z_dim) codes from the input's first random code to its second (its _sample0 and _sample1)."""
        ends = self._random(index, 2)
        t = torch.linspace(0, 1, self.interpolate)[:, None]
        return (1 - t) * ends[0] + t * ends[1]

    @staticmethod
    def strip_name(rel: Path) -> Path:
        return with_suffix(rel, "_interp")

    def record(self, rel: Path, z: torch.Tensor) -> None:
        self.used[rel.as_posix()] = torch.round(z.float(), decimals=6).tolist()

    def write_codes(self, path: Path) -> None:
        """latents.json: output name -> code (strips: their two end codes), written atomically."""
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps({"z_dim": self.z_dim, "seed": self.seed, "sync_z": self.sync_z,
                                   "codes": self.used}, indent=1), encoding="utf-8")
        os.replace(tmp, path)

    def summary(self) -> dict:
        return {"samples_per_input": self.samples if self.random else 0, "z_dim": self.z_dim, "seed": self.seed,
                "sync_z": self.sync_z, "style_from": self.style[0] if self.style else None,
                "interpolate": self.interpolate}
