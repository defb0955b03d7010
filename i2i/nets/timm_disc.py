"""A discriminator on any timm backbone, with small trainable heads on its feature maps (Projected GANs)."""
from __future__ import annotations

import contextlib
import difflib
import os
import re
from typing import Any, ClassVar, Literal

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from ..errors import RecipeError
from ..layers import Init, init_weights
from ..registry import NETS, SizeRules, config_value

CHECKPOINT_KEYS = ("state_dict", "model", "state_dict_ema", "model_ema")  # wrappers of a state dict in a checkpoint


def _timm() -> Any:
    import timm  # imported on first use: `import i2i.nets` stays light
    return timm


def close_backbones(name: str, limit: int = 8) -> list[str]:
    """timm model names close to ``name``: fuzzy matches first, then names sharing its family prefix."""
    timm = _timm()
    base = str(name).split(".")[0].lower()
    names = timm.list_models()
    found = difflib.get_close_matches(base, names, n=limit, cutoff=0.6)
    family = re.match(r"[a-z]+", base)
    for pattern in (f"*{base}*", f"{family.group(0)}*" if family else None):
        if pattern and len(found) < limit:
            found += [n for n in timm.list_models(pattern) if n not in found][:limit - len(found)]
    return found


def check_backbone(name: Any) -> None:
    """ValueError naming close valid models when timm has no model ``name`` (``arch`` or ``arch.tag``)."""
    if not isinstance(name, str) or not name or not _timm().is_model(name):
        close = close_backbones(name) if isinstance(name, str) and name else []
        hint = f"; close names: {', '.join(close)}" if close else ""
        raise ValueError(f"unknown timm backbone '{name}'{hint} (all names: timm.list_models('*pattern*'))")


def missing_weights_message(path: str, backbone: str, who: str = "timm_discriminator") -> str:
    hub = None
    with contextlib.suppress(Exception):  # an unknown name is reported elsewhere
        hub = getattr(_timm().models.get_pretrained_cfg(backbone), "hf_hub_id", None)
    how = (f"`huggingface-cli download {hub} model.safetensors --local-dir weights/{backbone}` on a machine with "
           f"internet access" if hub else "the weights of this timm model from the Hugging Face Hub or its authors")
    return (f"{who}: pretrained weights file not found: '{path}'. Nothing is downloaded during "
            f"training; fetch {how}, or save `timm.create_model('{backbone}', pretrained=True).state_dict()` with "
            f"torch.save, and set pretrained to that local file (.safetensors, or a torch state dict)")


def load_weights_file(path: str, backbone: str, who: str = "timm_discriminator") -> dict[str, torch.Tensor]:
    """A state dict from a local .safetensors file or a torch checkpoint (weights_only=True: no code runs)."""
    path = os.path.expanduser(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(missing_weights_message(path, backbone, who))
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file
        obj: Any = load_file(path, device="cpu")
    else:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    while isinstance(obj, dict) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
        key = next((k for k in CHECKPOINT_KEYS if isinstance(obj.get(k), dict)), None)
        if key is None:
            break
        obj = obj[key]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{who}: '{path}' holds no state dict (a mapping of names to tensors, "
                         f"possibly under one of {', '.join(CHECKPOINT_KEYS)})")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def _source_names(key: str) -> list[str]:
    """Names a feature-extractor key may have in a full model's state dict.

    timm's feature wrappers rename flattened sequential stages ('stages.0' -> 'stages_0') and wrap some
    models as ``model.`` (FeatureGetterNet); the full model's checkpoint keeps the original names.
    """
    names = [key]
    if key.startswith("model."):
        names.append(key[len("model."):])
    first, dot, rest = key.partition(".")
    names += [f"{first[:i]}.{first[i + 1:]}{dot}{rest}" for i, ch in enumerate(first) if ch == "_"]
    return names


def assign_backbone_weights(backbone: nn.Module, state: dict[str, torch.Tensor], *, path: str, name: str,
                            who: str = "timm_discriminator") -> int:
    """Load ``state`` into the feature extractor strictly on its side; extra keys (the classifier) are ignored."""
    own = backbone.state_dict()
    found, missing, mismatched = {}, [], []
    for key, value in own.items():
        src = next((s for s in _source_names(key) if s in state), None)
        if src is None:
            if not key.endswith("num_batches_tracked"):  # a counter some checkpoints leave out
                missing.append(key)
            continue
        if tuple(state[src].shape) != tuple(value.shape):
            mismatched.append(f"{key} {tuple(state[src].shape)} vs {tuple(value.shape)}")
            continue
        found[key] = state[src]
    if missing or mismatched:
        problems = [f"{len(missing)} of {len(own)} backbone tensors missing (e.g. {', '.join(missing[:3])})"] \
            if missing else []
        problems += [f"shapes differ: {'; '.join(mismatched[:3])}"] if mismatched else []
        raise ValueError(f"{who}: '{path}' does not hold weights of timm backbone '{name}': "
                         f"{'; '.join(problems)}. Use a checkpoint of this exact architecture in timm's format "
                         "(e.g. the model.safetensors of its timm Hugging Face Hub repository)")
    backbone.load_state_dict(found, strict=False)
    return len(found)


class BackboneInput(nn.Module):
    """Maps images in [-1, 1] (1 or 3 channels; gray repeated to RGB) to a timm backbone's mean/std."""

    def __init__(self, backbone: nn.Module, in_channels: int, who: str):
        super().__init__()
        if in_channels not in (1, 3):
            raise ValueError(f"{who} in_channels must be 1 (repeated to RGB) or 3, got {in_channels}")
        self.in_channels, self.who = in_channels, who
        data = _timm().data.resolve_model_data_config(backbone)
        self.register_buffer("mean", torch.tensor(data["mean"], dtype=torch.float32).view(1, -1, 1, 1), False)
        self.register_buffer("std", torch.tensor(data["std"], dtype=torch.float32).view(1, -1, 1, 1), False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_tracing() and (x.dim() != 4 or x.shape[1] != self.in_channels):
            raise ValueError(f"{self.who}(in_channels={self.in_channels}) needs (B, {self.in_channels}, H, W) images, "
                             f"got {tuple(x.shape)}")
        if self.in_channels == 1:
            x = x.expand(-1, 3, -1, -1)
        return ((x + 1) / 2 - self.mean.to(x.dtype)) / self.std.to(x.dtype)


class TimmSizes(SizeRules):
    """Size rules of the nets on a timm backbone: any size, at least the stride of most backbones' last level."""

    SIZE_MULTIPLE, MIN_SIZE = 1, 32  # the deepest level of most backbones has stride 32


def check_timm_config(cls: type, cfg: dict, *, key: str, file: str | None, who: str) -> None:
    """Recipe-time checks of the timm nets: a known backbone (close names listed), 1 or 3 input channels, and a
    local weights file that exists."""
    name = cfg.get("backbone")
    try:
        check_backbone(name)
    except ValueError:
        close = close_backbones(name) if isinstance(name, str) and name else []
        raise RecipeError("unknown timm backbone (the close names are listed; all: timm.list_models('*pattern*'))",
                          file=file, key=f"{key}.backbone", value=name, choices=close) from None
    if config_value(cls, cfg, "in_channels") not in (1, 3):
        raise RecipeError(f"{who} takes 1 (repeated to RGB) or 3 input channels", file=file,
                          key=f"{key}.in_channels", value=config_value(cls, cfg, "in_channels"), choices=[1, 3])
    path = config_value(cls, cfg, "pretrained")
    if path is not None and not os.path.isfile(os.path.expanduser(path)):
        raise RecipeError(missing_weights_message(path, name, who), file=file, key=f"{key}.pretrained", value=path)


class _Head(nn.Module):
    """One scale: 1x1 conv to ``channels`` + LeakyReLU 0.2 + 3x3 conv to a 1-channel logit map [+ projection]."""

    def __init__(self, cin: int, channels: int, num_classes: int, sn: bool):
        super().__init__()
        wrap = _spectral_norm if sn else (lambda m: m)
        self.proj = wrap(nn.Conv2d(cin, channels, 1))
        self.act = nn.LeakyReLU(0.2, True)
        self.out = wrap(nn.Conv2d(channels, 1, 3, padding=1))  # 3x3: also fits the 1x1 maps of small images
        self.embed = nn.Embedding(num_classes, channels) if num_classes else None

    def forward(self, f: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        h = self.act(self.proj(f))
        logits = self.out(h)
        if self.embed is None:
            return logits
        return logits + (self.embed(y)[:, :, None, None].to(h.dtype) * h).sum(1, keepdim=True)  # per-pixel projection


@NETS.register("timm_discriminator")
class TimmDiscriminator(TimmSizes, nn.Module):
    """D on a timm backbone (Projected GANs, Sauer et al. 2021): (B, in, H, W) [, y (B,)] -> list of logit maps.

    The backbone is built with ``features_only=True`` and never downloads anything: ``pretrained`` is the path of
    a local weights file. Inputs in [-1, 1] are mapped to the backbone's mean/std (grayscale repeated to RGB).
    ``out_indices`` picks the feature maps (an int n: the last n); each gets a small trainable head that gives a
    (B, 1, h, w) logit map. A frozen backbone has no trainable parameters and stays in eval mode (its BatchNorm
    statistics do not drift), yet gradients still flow through it to the input, so G learns.
    """

    smoke_args: ClassVar[dict] = {"backbone": "mobilenetv3_small_050", "head_channels": 8, "num_classes": 3,
                                  "conditioning": "projection", "spectral_norm": True}

    def __init__(self, backbone: str, in_channels: int = 3, out_indices: int | list[int] = 4,
                 pretrained: str | None = None, frozen: bool | None = None, head_channels: int = 64,
                 num_classes: int = 0, conditioning: Literal["none", "projection"] = "none",
                 spectral_norm: bool = False, init: Init = "normal", init_gain: float = 0.02):
        super().__init__()
        check_backbone(backbone)
        if conditioning not in ("none", "projection"):
            raise ValueError(f"unknown conditioning '{conditioning}'; valid: none, projection")
        if conditioning != "none" and num_classes < 1:
            raise ValueError(f"conditioning '{conditioning}' needs num_classes > 0")
        if head_channels < 1:
            raise ValueError(f"timm_discriminator head_channels must be >= 1, got {head_channels}")
        indices = _check_out_indices(out_indices)
        timm = _timm()
        state = load_weights_file(pretrained, backbone) if pretrained is not None else None
        try:
            self.backbone = timm.create_model(backbone, pretrained=False, features_only=True, out_indices=indices)
        except (IndexError, AssertionError, RuntimeError, TypeError, ValueError) as exc:
            raise ValueError(f"timm backbone '{backbone}' cannot give feature maps out_indices={out_indices} "
                             f"({type(exc).__name__}: {exc}); an int n takes the last n of its levels") from exc
        if state is not None:
            assign_backbone_weights(self.backbone, state, path=str(pretrained), name=backbone)
        self.backbone_name, self.pretrained_path = backbone, pretrained
        self.in_channels, self.num_classes, self.conditioning = in_channels, num_classes, conditioning
        self.frozen = pretrained is not None if frozen is None else bool(frozen)
        if self.frozen:
            self.backbone.requires_grad_(False)
            self.backbone.eval()
        info = self.backbone.feature_info
        self.channels, self.reductions = list(info.channels()), list(info.reduction())
        self.nhwc = str(getattr(self.backbone, "output_fmt", "NCHW")).endswith("NHWC")
        self.input_map = BackboneInput(self.backbone, in_channels, "timm_discriminator")
        labels = num_classes if conditioning == "projection" else 0
        self.heads = nn.ModuleList(_Head(c, head_channels, labels, spectral_norm) for c in self.channels)
        init_weights(self.heads, init, init_gain)  # the heads only: the backbone keeps its own (or loaded) weights
        for head in self.heads:
            if head.embed is not None:  # Glorot-uniform, as in Miyato & Koyama's code
                nn.init.xavier_uniform_(head.embed.weight)

    @classmethod
    def check_config(cls, cfg: dict, *, key: str, file: str | None) -> None:
        check_timm_config(cls, cfg, key=key, file=file, who="timm_discriminator")
        try:
            _check_out_indices(config_value(cls, cfg, "out_indices"))
        except ValueError as exc:
            raise RecipeError(str(exc), file=file, key=f"{key}.out_indices",
                              value=config_value(cls, cfg, "out_indices")) from None
        if config_value(cls, cfg, "conditioning") != "none" and not config_value(cls, cfg, "num_classes"):
            raise RecipeError("label conditioning needs num_classes > 0", file=file, key=f"{key}.num_classes",
                              value=config_value(cls, cfg, "num_classes"))

    def train(self, mode: bool = True) -> TimmDiscriminator:
        super().train(mode)
        if self.frozen:  # running statistics of a frozen backbone must not follow the fakes
            self.backbone.eval()
        return self

    def example_inputs(self, batch: int = 2, size: int | None = None) -> tuple[torch.Tensor, ...]:
        side = max(size or 32, self.min_size())
        x = torch.rand(batch, self.in_channels, side, side) * 2 - 1
        return (x, torch.randint(0, self.num_classes, (batch,))) if self.conditioning != "none" else (x,)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The backbone's selected feature maps (NCHW) for images in [-1, 1]."""
        feats = self.backbone(self.input_map(x))
        return [f.permute(0, 3, 1, 2) for f in feats] if self.nhwc else list(feats)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> list[torch.Tensor]:
        if (y is None) != (self.conditioning == "none"):
            raise ValueError(f"timm_discriminator(conditioning='{self.conditioning}') needs y (B,) labels exactly "
                             "when conditioned")
        return [head(f, y) for f, head in zip(self.features(x), self.heads)]


def _check_out_indices(out_indices: Any) -> int | tuple[int, ...]:
    if isinstance(out_indices, int) and not isinstance(out_indices, bool):
        if out_indices < 1:
            raise ValueError(f"timm_discriminator out_indices as an int n (the last n feature levels) must be >= 1, "
                             f"got {out_indices}")
        return out_indices
    if (not isinstance(out_indices, (list, tuple)) or not out_indices
            or not all(isinstance(i, int) and not isinstance(i, bool) for i in out_indices)
            or len(set(out_indices)) != len(out_indices)):
        raise ValueError(f"timm_discriminator out_indices must be an int n (the last n feature levels) or a list of "
                         f"distinct level indices, got {out_indices!r}")
    return tuple(out_indices)
