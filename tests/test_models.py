"""Models driven by a plain-torch context: group isolation (the most valuable GAN test) and pools."""
from __future__ import annotations

import pytest
import torch

from i2i.build import build
from i2i.layers import ImagePool
from i2i.models.base import PlainContext
from i2i.recipe import Recipe

from .conftest import tiny_cyclegan, tiny_pix2pix


def params(model, names):
    return {f"{n}.{k}": p.detach().clone() for n in names for k, p in model.nets[n].named_parameters()}


def changed(before, model, names):
    after = params(model, names)
    return {k for k in before if not torch.equal(before[k], after[k])}


def batch_of(parts, n=2):
    items = [parts.dataset[(i, i)] for i in range(n)]
    return {k: torch.stack([it[k] for it in items]) for k in items[0] if torch.is_tensor(items[0][k])}


@pytest.mark.parametrize("make, root_fixture", [(tiny_pix2pix, "paired_root"), (tiny_cyclegan, "unpaired_root")])
def test_group_isolation(make, root_fixture, request, tmp_path):
    recipe = Recipe.of(make(request.getfixturevalue(root_fixture), tmp_path / "run"), "tiny")
    torch.manual_seed(0)
    parts = build(recipe)
    model, ctx = parts.model, PlainContext(parts.model)
    batch = batch_of(parts)
    d_names = [n for n in model.nets if n.startswith("d")]
    g_names = [n for n in model.nets if n.startswith("g")]
    assert set(d_names) == set(model.optim_groups["d"]) and set(g_names) == set(model.optim_groups["g"])

    out = model.generate(batch)
    g_before, d_before = params(model, g_names), params(model, d_names)
    model.d_step(batch, out, ctx)
    assert not changed(g_before, model, g_names), "d_step changed generator weights"
    assert changed(d_before, model, d_names) == set(d_before), "d_step left some D weights untouched"
    assert all(p.grad is None for n in g_names for p in model.nets[n].parameters()), "D loss leaked into G"

    out = model.generate(batch)
    g_before, d_before = params(model, g_names), params(model, d_names)
    for opt in ctx.opts.values():
        opt.zero_grad(set_to_none=True)
    model.g_step(batch, out, ctx)
    assert not changed(d_before, model, d_names), "g_step changed discriminator weights"
    assert all(p.grad is None for n in d_names for p in model.nets[n].parameters()), "G loss leaked into D"
    assert all(p.requires_grad for n in d_names for p in model.nets[n].parameters()), "D left frozen"
    assert len(changed(g_before, model, g_names)) > 0.9 * len(g_before)


def test_train_step_returns_detached_finite_logs(paired_root, tmp_path):
    parts = build(Recipe.of(tiny_pix2pix(paired_root, tmp_path / "run"), "tiny"))
    logs = parts.model.train_step(batch_of(parts), PlainContext(parts.model))
    assert set(logs) == {"d/adv", "g/adv", "g/l1"}
    assert all(torch.isfinite(v) and not v.requires_grad for v in logs.values())


def test_image_pool_mixes_history_and_keeps_state():
    torch.manual_seed(0)
    pool = ImagePool(4)
    first = torch.arange(4.0).view(4, 1, 1, 1)
    assert torch.equal(pool.query(first), first)  # filling up: returned as given
    later = torch.full((64, 1, 1, 1), 100.0)
    out = pool.query(later)
    old = (out < 100).sum().item()
    assert 0 < old <= 4  # about half the draws swap in history, bounded by what the pool held
    restored = ImagePool(1)
    restored.load_state_dict(pool.state_dict())
    assert restored.size == 4 and all(torch.equal(a, b) for a, b in zip(restored.images, pool.images))
    assert torch.equal(ImagePool(0).query(later), later)
