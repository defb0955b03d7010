"""Sample a conditional generator: class grid, N images per class into per-class folders, InfoGAN traversals."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..codes import class_grid, codes_for_rows, generate_images
from ..data.io import from_tensor, write_image
from ..errors import I2IError
from .export import Export
from .grid import save_grid


def _class_names(g, names: list[str]) -> list[str]:
    """The export's class names, or the indices when it has none (InfoGAN codes)."""
    k = g.num_classes or (g.cat_codes[0] if g.cat_codes else 0)
    return names if len(names) == k else [str(i) for i in range(k)]


def _classes(g, names: list[str], wanted: list[str] | None) -> list[int]:
    names = _class_names(g, names)
    k = len(names)
    if not wanted:
        return list(range(k))
    out = []
    for w in wanted:
        if w in names:
            out.append(names.index(w))
        elif w.isdigit() and int(w) < k:
            out.append(int(w))
        else:
            raise I2IError(f"--classes: unknown class '{w}'; valid: {', '.join(names)}")
    return out


@torch.no_grad()
def noise_generator(g) -> bool:
    """A generator of noise (and labels/codes) alone; an image-to-image one (even with a latent code, as
    BicycleGAN's U-Net) takes ``in_channels`` of input image."""
    return hasattr(g, "z_dim") and not hasattr(g, "in_channels")


def sample_coupled(export: Export, output: str | Path, *, per_class: int = 0, columns: int = 10, seed: int = 0,
                   device: str = "cpu") -> dict:
    """Several exported generator chains driven by one z (meta ``coupled``: domain -> nets in order, CoGAN): grid.png
    with the domains' images of one z side by side (``columns`` pairs per row, ``columns`` rows), and with
    ``per_class`` N, N samples per domain into <output>/<domain>/ (the same file name in each is one z)."""
    from .export import Chain, chain_names
    spec = export.meta["coupled"]
    if not isinstance(spec, dict) or not spec or any(n not in export.nets for v in spec.values()
                                                      for n in chain_names(v)):
        raise I2IError(f"{export.path}/meta.json: 'coupled' must map domains to exported nets "
                       f"({', '.join(export.nets)}), got {spec!r}")
    chains = {d: Chain([export.nets[n].to(device).eval() for n in chain_names(v)]) for d, v in spec.items()}
    z_dim = next(iter(chains.values())).stages[0].z_dim
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(columns * columns, z_dim, generator=gen).to(device)
    with torch.no_grad():
        images = {d: c(z) for d, c in chains.items()}
    grid = [images[d][j::columns] for j in range(columns) for d in chains]  # each row: `columns` pairs from one z each
    written = {"grid": str(save_grid(grid, output / "grid.png"))}
    count = 0
    for start in range(0, per_class, 256):
        z = torch.randn(min(256, per_class - start), z_dim, generator=gen).to(device)
        with torch.no_grad():
            for d, chain in chains.items():
                for i, img in enumerate(chain(z).float().cpu()):
                    write_image(output / d / f"{start + i:06d}.png", from_tensor(img, dtype=np.uint8))
                    count += 1
    return {"output": str(output), "images": count, "domains": list(chains), "seed": seed, **written}


def sample_export(export: Export, output: str | Path, *, per_class: int = 0, classes: list[str] | None = None,
                  columns: int = 10, seed: int = 0, traverse: bool = True, device: str = "cpu") -> dict:
    if export.meta.get("coupled"):
        return sample_coupled(export, output, per_class=per_class, columns=columns, seed=seed, device=device)
    if "g" not in export.nets:
        raise I2IError(f"{export.path}: no generator 'g' to sample (model '{export.meta.get('model')}')")
    g = export.nets["g"].to(device).eval()
    if not noise_generator(g):
        raise I2IError(f"{export.path}: generator {type(g).__name__} takes an input image; use `i2i translate`")
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    names = list(export.meta.get("class_names") or [])
    rows = _classes(g, names, classes) if (g.num_classes or g.cat_codes) else [0]
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(columns, g.z_dim, generator=gen).to(device)
    written = {}
    # class grid: one row per class (code value), the same noise down each column
    ids = torch.tensor(rows, device=device)
    if g.num_classes or g.cat_codes:
        written["grid"] = str(save_grid(class_grid(g, ids, z), output / "grid.png"))
    else:  # unconditional: a square grid of samples, all different noise
        more = torch.randn(columns * columns, g.z_dim, generator=gen).to(device)
        images = generate_images(g, codes_for_rows(g, torch.zeros(len(more), dtype=torch.long, device=device), more))
        written["grid"] = str(save_grid(list(images.view(columns, columns, *images.shape[1:]).unbind(1)),
                                        output / "grid.png"))
    # InfoGAN: vary one continuous code from -2 to 2 (columns), one row per categorical value, z fixed
    if traverse and g.cont_codes:
        for i in range(g.cont_codes):
            cols = []
            for v in torch.linspace(-2, 2, columns, device=device):
                cont = torch.zeros(len(rows), g.cont_codes, device=device)
                cont[:, i] = v
                cols += class_grid(g, ids, z[:1], cont=cont)
            written[f"traverse_cont{i}"] = str(save_grid(cols, output / f"traverse_cont{i}.png"))
    # per-class folders for synthetic data sets
    count = 0
    label_names = _class_names(g, names) if (g.num_classes or g.cat_codes) else ["samples"]
    for r in rows if per_class else []:
        for start in range(0, per_class, 256):
            row_ids = torch.full((min(256, per_class - start),), r, device=device, dtype=torch.long)
            images = generate_images(g, codes_for_rows(g, row_ids, fixed=False, generator=gen))
            for i, img in enumerate(images.float().cpu()):
                write_image(output / label_names[r] / f"{start + i:06d}.png", from_tensor(img, dtype=np.uint8))
                count += 1
    return {"output": str(output), "images": count, "classes": len(rows), "seed": seed, **written}
