"""A net from its recipe entry: ``type:`` plus constructor arguments, and ``spectral_norm: true`` on any net."""
from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from ..errors import RecipeError
from ..layers import apply_spectral_norm
from ..registry import NETS, load_plugins


def net_config(cfg: Any, *, key: str, file: str | None) -> tuple[Any, bool]:
    """(the entry to build, whether to apply spectral norm afterwards). ``spectral_norm: true`` works on every
    net: passed on where the net takes it, else applied after building."""
    if not isinstance(cfg, dict) or "spectral_norm" not in cfg or "type" not in cfg:  # NETS.check says what is wrong
        return cfg, False
    cls = NETS.get(cfg.get("type"), key=f"{key}.type", file=file)
    if "spectral_norm" in inspect.signature(cls.__init__).parameters:
        return cfg, False
    if not isinstance(cfg["spectral_norm"], bool):
        raise RecipeError("must be true or false", file=file, key=f"{key}.spectral_norm", value=cfg["spectral_norm"],
                          choices=[True, False])
    return {k: v for k, v in cfg.items() if k != "spectral_norm"}, cfg["spectral_norm"]


def build_net_config(cfg: dict, *, key: str, file: str | None) -> nn.Module:
    """Build one checked net entry (``key`` names it in errors, e.g. nets.g)."""
    cfg, sn = net_config(cfg, key=key, file=file)
    net = NETS.build(cfg, key=key, file=file)
    return apply_spectral_norm(net) if sn else net


def build_net(recipe: dict, name: str, *, file: str | None) -> nn.Module:
    """Net ``name`` of a (stored) recipe, its plug-ins imported first: what translate and exports need."""
    load_plugins(recipe.get("plugins"), file=file)
    return build_net_config(recipe["nets"][name], key=f"nets.{name}", file=file)
