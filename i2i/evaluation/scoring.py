"""Scores logged during training (the recipe's ``eval:`` section) and by ``i2i eval``, chosen by the model.

A model names its scorer with a ``scorer`` class attribute (a ``module:Class`` string, imported when needed, so
models never import the metrics). A scorer class has ``check_config(cfg, recipe, file=)`` (recipe time),
``for_recipe(recipe, parts, accelerator)`` (build, main process does the heavy set-up) and
``score(model, emas, run_dir, step, accelerator) -> dict`` with an ``every`` attribute.
"""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from ..registry import import_dotted

log = logging.getLogger("i2i")


def scorer_for(model, eval_section: dict | None = None) -> type | None:
    """The scorer class a model (class or instance) names, or None. An ``eval:`` section holding ``fid`` gets the
    general FID/KID scorer around it (``fid_scoring.WithFID``: the rest of the section goes to the model's)."""
    name = getattr(model, "scorer", None)
    own = import_dotted(name) if isinstance(name, str) else name
    if isinstance(eval_section, dict) and "fid" in eval_section:
        return import_dotted("i2i.evaluation.fid_scoring:with_fid")(own)  # by name: fid_scoring uses write_scores
    return own


def write_scores(run_dir: Path, step: int, logged: dict, accelerator) -> None:
    accelerator.log(logged, step=step)
    with open(run_dir / "log.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps({"step": step, **logged}) + "\n")
    print(f"step {step}: " + " ".join(f"{k}={v:.4g}" for k, v in logged.items()), file=sys.stderr, flush=True)
