"""Latent codes of noise-driven generators: z, labels, InfoGAN codes; shared by models, sampling and evaluation."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def sample_latent(g, n: int, device, *, y: torch.Tensor | None = None, cat_idx: list | None = None,
                  cont: torch.Tensor | None = None, generator: torch.Generator | None = None) -> dict:
    """z ~ N(0, I); labels and categorical codes uniform; continuous codes U(-1, 1). Given values are kept."""
    def randn(*shape):
        return torch.randn(*shape, generator=generator).to(device)

    def randint(k):
        return torch.randint(0, k, (n,), generator=generator).to(device)

    z = randn(n, g.z_dim)
    if g.num_classes and y is None:
        y = randint(g.num_classes)
    cats = list(cat_idx) if cat_idx is not None else [randint(k) for k in g.cat_codes]
    if cont is None and g.cont_codes:
        cont = (torch.rand(n, g.cont_codes, generator=generator) * 2 - 1).to(device)
    parts = [F.one_hot(i, k).float() for i, k in zip(cats, g.cat_codes)]
    if g.cont_codes:
        parts.append(cont)
    c = torch.cat(parts, 1) if parts else None
    return {"z": z, "y": y, "c": c, "cat_idx": cats, "cont": cont}


def codes_for_rows(g, rows: torch.Tensor, z: torch.Tensor | None = None, *, cont: torch.Tensor | None = None,
                   fixed: bool = True, generator: torch.Generator | None = None) -> dict:
    """Codes asking for class ``rows[i]`` (InfoGAN: first categorical code value) with noise ``z[i]`` (drawn if None).

    The other categorical codes and the continuous codes are 0 when ``fixed`` (grids, traversals), else drawn
    (sampling data sets, scoring). Draws come from ``generator`` only, never from the global RNG.
    """
    n, device, labelled = len(rows), rows.device, bool(g.num_classes)

    def other(k: int) -> torch.Tensor:
        return torch.zeros_like(rows) if fixed else torch.randint(0, k, (n,), generator=generator).to(device)

    cats = None
    if g.cat_codes:
        cats = [other(g.cat_codes[0]) if labelled else rows] + [other(k) for k in g.cat_codes[1:]]
    if cont is None and fixed and g.cont_codes:
        cont = torch.zeros(n, g.cont_codes, device=device)
    codes = sample_latent(g, n, device, y=rows if labelled else None, cat_idx=cats, cont=cont,
                          generator=generator if generator is not None else torch.Generator().manual_seed(0))
    if z is not None:
        codes["z"] = z
    return codes


def generate_images(g, codes: dict) -> torch.Tensor:
    return g(codes["z"], codes["y"], codes["c"])


def class_grid(g, rows: torch.Tensor, z: torch.Tensor, cont: torch.Tensor | None = None) -> list[torch.Tensor]:
    """Grid columns: column j shows every requested row (class) with the same noise z[j]."""
    return [generate_images(g, codes_for_rows(g, rows, z[j:j + 1].expand(len(rows), -1), cont=cont))
            for j in range(len(z))]
