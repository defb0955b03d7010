"""Target labels for translating with a label-conditioned generator (a ``label_channels`` net: StarGAN's G).

``LabelPlan`` turns ``--to DOMAIN`` (repeatable; ``--to all`` for every domain) and ``--set ATTR=0|1`` into one
target label per output, from the export alone (its meta.json names the domains):

- single-label exports (a folder per domain): ``--to D`` writes ``<output>/D/<name>`` with G told one-hot D;
- multi-label exports (attributes): the input's own attributes are read by the export's D (its domain head, on
  the input resized to the training size; a logit above 0 means present). ``--to A`` sets attribute A to 1
  (``<output>/A/<name>``); all ``--set`` edits together make one more output, ``<output>/A=1,B=0/<name>``; the
  attributes not named keep the value read from the input.

``labels.json`` beside the outputs records each output's label (and the attributes read from each input).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..data.domains import check_name
from ..errors import DataError, I2IError
from .tiling import ImageSource


def _domains(export, k: int) -> list[str]:
    names = export.meta.get("domains")
    if not isinstance(names, list) or len(names) != k or not all(isinstance(n, str) for n in names):
        raise I2IError(f"{export.path}: meta.json does not list the {k} domain names of this generator (key "
                       "'domains'); re-export the run with this version of i2i")
    for name in names:
        try:
            check_name(name, f"{export.path}/meta.json")
        except DataError as exc:
            raise I2IError(str(exc)) from None
    return names


class LabelPlan:
    """Which target labels each input gets and where each output goes (module docstring)."""

    codes_file = "labels.json"
    interpolate = 0  # no interpolation strips between labels

    def __init__(self, domains: list[str], multi_label: bool, targets: list[tuple[str, dict[int, float]]],
                 reader: nn.Module | None, size: int | None):
        self.domains, self.multi_label, self.targets = domains, multi_label, targets
        self.reader, self.size = reader, size
        self.used: dict[str, list[float]] = {}
        self.read: dict[str, list[float]] = {}

    @classmethod
    def for_export(cls, export, net: nn.Module, *, to: list[str] | None, set_attrs: list[str] | None,
                   device) -> LabelPlan | None:
        k = int(getattr(net, "label_channels", 0) or 0)
        to, set_attrs = list(to or []), list(set_attrs or [])
        if not k:
            if to or set_attrs:
                flags = " and ".join(f for f, on in (("--to", to), ("--set", set_attrs)) if on)
                raise I2IError(f"{flags}: the generator of this export (model '{export.meta.get('model')}') takes "
                               "no target domain; these options are for label-conditioned exports such as stargan")
            return None
        domains, multi = _domains(export, k), bool(export.meta.get("multi_label"))
        valid = f"valid: {', '.join(domains)}, or all"
        if not to and not set_attrs:
            what = "attribute" if multi else "domain"
            raise I2IError(f"this export translates to a target {what}: choose --to {what.upper()} (repeatable) or "
                           f"--to all{' or --set ATTR=0|1' if multi else ''}; {what}s: {', '.join(domains)}")
        names: list[str] = []
        for t in to:
            if t not in (*domains, "all"):
                raise I2IError(f"--to {t}: unknown {'attribute' if multi else 'domain'}; {valid}")
            names += domains if t == "all" else [t]
        targets = [(n, {domains.index(n): 1.0}) for n in dict.fromkeys(names)]
        if set_attrs:
            if not multi:
                raise I2IError(f"--set: this export's domains are exclusive (single-label), so there are no "
                               f"attributes to edit; use --to DOMAIN (domains: {', '.join(domains)})")
            targets.append(cls._edits(set_attrs, domains))
        reader = export.nets.get("d") if multi else None
        if multi and (reader is None or getattr(reader, "num_classes", 0) != k):
            raise I2IError(f"{export.path}: a multi-label export needs its D with a domain head of {k} outputs (net "
                           "'d') to read each input's attributes; this export has none")
        size = export.recipe["data"].get("size")
        return cls(domains, multi, targets, reader.to(device).eval() if reader is not None else None,
                   size if isinstance(size, int) else None)

    @staticmethod
    def _edits(set_attrs: list[str], domains: list[str]) -> tuple[str, dict[int, float]]:
        edits: dict[int, float] = {}
        for item in set_attrs:
            name, sep, value = item.partition("=")
            if not sep or value.strip() not in ("0", "1"):
                raise I2IError(f"--set {item}: expected ATTR=0 or ATTR=1 (attributes: {', '.join(domains)})")
            if name.strip() not in domains:
                raise I2IError(f"--set {item}: unknown attribute {name.strip()!r}; valid: {', '.join(domains)}")
            k, v = domains.index(name.strip()), float(value.strip())
            if edits.get(k, v) != v:
                raise I2IError(f"--set gives {name.strip()} both 0 and 1")
            edits[k] = v
        folder = ",".join(f"{domains[k]}={int(v)}" for k, v in edits.items())
        return folder, edits

    @torch.inference_mode()
    def _attributes(self, image: torch.Tensor | ImageSource) -> torch.Tensor:
        """The input's attributes as D's domain head reads them (0/1), at the training size."""
        h, w = image.shape[-2:]
        x = image if torch.is_tensor(image) else image.region(0, h, 0, w)
        param = next(self.reader.parameters())
        x = x[None].to(param.device, torch.float32)
        if self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", antialias=True, align_corners=False)
        return (self.reader(x)["class"][0].float().cpu() > 0).float()

    def codes(self, index: int, rel: Path, image: torch.Tensor | ImageSource | None = None,
              ) -> list[tuple[Path, torch.Tensor]]:
        """(output path relative to --output, target label (K,)) for one input."""
        base = torch.zeros(len(self.domains))
        if self.multi_label:
            assert image is not None
            base = self._attributes(image)
            self.read[rel.as_posix()] = base.tolist()
        out = []
        for folder, values in self.targets:
            label = base.clone()
            for k, v in values.items():
                label[k] = v
            out.append((Path(folder) / rel, label))
        return out

    def record(self, rel: Path, label: torch.Tensor) -> None:
        self.used[rel.as_posix()] = label.float().tolist()

    def write_codes(self, path: Path) -> None:
        """labels.json: the domains, each output's label, and (multi-label) the attributes read from each input."""
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps({"domains": self.domains, "multi_label": self.multi_label, "labels": self.used,
                                   **({"attributes_read": self.read} if self.multi_label else {})}, indent=1),
                       encoding="utf-8")
        os.replace(tmp, path)

    def summary(self) -> dict:
        return {"targets": [folder for folder, _ in self.targets], "domains": self.domains,
                "multi_label": self.multi_label}
