"""The CPU allocator setting (i2i/allocator.py): freed blocks stay in the process, so a repeated step stops
faulting its memory in afresh; the user's own malloc choices win; the recipe key turns it off."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from i2i.allocator import user_chose_allocator
from i2i.cli import main

from .conftest import ROOT, tiny_pix2pix, write_recipe

GLIBC = sys.platform == "linux" and os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc")

# allocate and free a 64 MiB tensor 20 times; print the minor page faults that took and keep_freed_memory's answer
FAULTS = """
import json, resource, sys, torch
from i2i.allocator import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "keep" else None
torch.empty(16 << 20).fill_(1.0)  # the first one faults in either way
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    torch.empty(16 << 20).fill_(1.0)
print(json.dumps({"kept": kept, "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before}))
"""


def faults(mode: str, **env: str) -> dict:
    clean = {k: v for k, v in os.environ.items()
             if k not in ("GLIBC_TUNABLES", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "LD_PRELOAD")}
    out = subprocess.run([sys.executable, "-c", FAULTS, mode], cwd=ROOT, env={**clean, **env, "OMP_NUM_THREADS": "1"},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not GLIBC, reason="the setting is for glibc's malloc")
def test_freed_memory_is_reused_instead_of_faulted_in_again():
    default, kept = faults("default"), faults("keep")
    assert kept["kept"] is True
    # 64 MiB is 16384 pages of 4 KiB: glibc's default maps and unmaps it each time, so each round faults it all in
    assert default["faults"] > 20 * 16384 * 0.9, default
    # kept: measured 2 to 6 rounds' worth (the heap grows to hold the block a few times), then reused
    assert kept["faults"] < default["faults"] / 2, (kept, default)


@pytest.mark.skipif(not GLIBC, reason="the setting is for glibc's malloc")
def test_the_users_own_malloc_settings_win():
    out = faults("keep", GLIBC_TUNABLES="glibc.malloc.trim_threshold=1048576")
    assert out["kept"] is False
    assert out["faults"] > 20 * 16384 * 0.9  # untouched: still the user's (here: glibc's default-like) behaviour


@pytest.mark.parametrize("env, chosen", [
    ({}, None),
    ({"GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX512F"}, None),
    ({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}, "GLIBC_TUNABLES"),
    ({"MALLOC_MMAP_THRESHOLD_": "65536"}, "MALLOC_MMAP_THRESHOLD_"),
    ({"MALLOC_TRIM_THRESHOLD_": "0"}, "MALLOC_TRIM_THRESHOLD_"),
    ({"LD_PRELOAD": "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"}, "LD_PRELOAD"),
    ({"LD_PRELOAD": "/opt/libtcmalloc_minimal.so.4"}, "LD_PRELOAD"),
    ({"LD_PRELOAD": "/opt/libfaketime.so"}, None),
])
def test_user_chose_allocator(env, chosen):
    assert user_chose_allocator(env) == chosen


@pytest.mark.parametrize("value, called", [(True, 1), (False, 0)])
def test_recipe_key_turns_it_on_and_off(paired_root, tmp_path, capsys, monkeypatch, value, called):
    import i2i.engine.hardware as trainer
    calls = []
    monkeypatch.setattr(trainer, "keep_freed_memory", lambda: calls.append(1) or True)
    recipe = tiny_pix2pix(paired_root, tmp_path / "run", keep_freed_memory=value)
    recipe["train"].update(max_steps=1, log_every=1, sample_every=1, checkpoint_every=1)
    assert main(["train", str(write_recipe(tmp_path / "r.yaml", recipe))]) == 0
    assert len(calls) == called


def test_recipe_key_must_be_a_bool(paired_root, tmp_path, capsys):
    recipe = tiny_pix2pix(paired_root, tmp_path / "run", keep_freed_memory="sometimes")
    assert main(["train", str(write_recipe(tmp_path / "r.yaml", recipe))]) == 2
    assert "train.keep_freed_memory" in capsys.readouterr().err
