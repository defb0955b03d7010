"""Imports flow one way: only i2i.engine imports accelerate; translating needs no trainer."""
from __future__ import annotations

import subprocess
import sys


def modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_nets_losses_models_data_do_not_import_accelerate():
    loaded = modules_after("import i2i.nets, i2i.losses, i2i.models, i2i.data, i2i.build")
    assert "i2i.nets" in loaded and "accelerate" not in loaded


def test_translate_needs_no_trainer():
    loaded = modules_after("import i2i.translate, i2i.export, i2i.checkpoint_export")
    assert "i2i.inference.translate" in loaded and "accelerate" not in loaded and "i2i.engine.trainer" not in loaded
