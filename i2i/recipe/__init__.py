"""The recipe: YAML -> ``Recipe`` (``loader``: base inheritance, overrides, early checks) and the dataclasses of
its own sections (``schema``). Pure Python: nothing here imports torch or a component."""
from .loader import REQUIRED_SECTIONS, TOP_LEVEL_KEYS, Recipe, load_recipe, recipe_from_text
from .schema import (
    LOADER_KEYS,
    MAX_BATCH_BYTES,
    EMAConfig,
    LoaderConfig,
    MonitorConfig,
    TrainConfig,
    check_positive,
    split_data,
)

__all__ = [
    "LOADER_KEYS", "MAX_BATCH_BYTES", "REQUIRED_SECTIONS", "TOP_LEVEL_KEYS", "EMAConfig", "LoaderConfig",
    "MonitorConfig", "Recipe", "TrainConfig", "check_positive", "load_recipe", "recipe_from_text", "split_data",
]
