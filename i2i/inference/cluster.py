"""Cluster a folder of images with an export's encoder (ClusterGAN's E): a CSV of cluster ids and a grid per cluster."""
from __future__ import annotations

import csv
import io
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..data.io import adapt_channels, list_images, read_image, show_path, to_float, to_tensor
from ..errors import DataError, I2IError
from .export import Export
from .grid import save_grid

GRID_COLUMNS = 8


def _load(path: Path, channels: int, size: int) -> torch.Tensor:
    """One image as the encoder reads it: (channels, size, size) in [-1, 1], resized (bilinear, antialiased)."""
    try:
        array = to_float(read_image(path))
        array = adapt_channels(array if array.ndim == 3 else array[..., None], channels)
    except (DataError, ValueError, OSError) as exc:
        raise DataError(f"{show_path(path)}: cannot be read as an image with {channels} channel(s): {exc}") from None
    x = to_tensor(array)[None]
    if tuple(x.shape[-2:]) != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x[0].clamp(-1, 1)


def _overlaps(a: Path, b: Path) -> bool:
    a, b = a.resolve(), b.resolve()
    return a == b or a in b.parents or b in a.parents


def _write_csv(path: Path, rows: list[tuple[str, int, float]]) -> None:
    """Atomically: a temporary file beside it, then a rename, so a failed write never leaves half a CSV."""
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["file", "cluster", "confidence"])
    writer.writerows((name, k, f"{p:.4f}") for name, k, p in rows)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text.getvalue())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@torch.no_grad()
def cluster_folder(export: Export, input: str | Path, output: str | Path, *, per_grid: int = 64,
                   batch_size: int = 256, device: str = "cpu") -> dict:
    """Every image under ``input`` (recursive) -> ``output/clusters.csv`` (file, cluster, confidence) and
    ``output/cluster_<k>.png``: up to ``per_grid`` of its most confident members, 8 per row (gray tiles pad)."""
    e = export.nets.get("e")
    if e is None or not getattr(e, "clusters", 0):
        raise I2IError(f"{export.path}: no cluster encoder 'e' in this export (model '{export.meta.get('model')}'); "
                       "`i2i cluster` runs ClusterGAN exports")
    if per_grid < 1:
        raise I2IError(f"--per-grid must be >= 1, got {per_grid}")
    source, output = Path(input), Path(output)
    if not source.exists():
        raise I2IError(f"--input {show_path(source)} does not exist")
    if _overlaps(source, output) and source.is_dir():
        raise I2IError(f"--output {show_path(output)} overlaps --input {show_path(source)}: the grids would become "
                       "inputs; choose a folder outside it")
    files = [source] if source.is_file() else list_images(source)
    if not files:
        raise I2IError(f"--input {show_path(source)}: no images found (searched recursively)")
    e = e.to(device).eval()
    channels, size, k = e.in_channels, e.size, e.clusters
    ids, conf, images = [], [], []
    for start in range(0, len(files), batch_size):
        x = torch.stack([_load(p, channels, size) for p in files[start:start + batch_size]])
        probs = e(x.to(device))[1].float().softmax(1).cpu()
        p, c = probs.max(1)
        ids.append(c)
        conf.append(p)
        images.append(x)
    cluster_ids, confidence, images_all = torch.cat(ids), torch.cat(conf), torch.cat(images)
    output.mkdir(parents=True, exist_ok=True)
    names = [str(p.relative_to(source)) if source.is_dir() else p.name for p in files]
    _write_csv(output / "clusters.csv", list(zip(names, cluster_ids.tolist(), confidence.tolist())))
    counts = np.bincount(cluster_ids.numpy(), minlength=k).tolist()
    grids = {}
    for cluster in range(k):
        members = (cluster_ids == cluster).nonzero().flatten()
        if not len(members):
            continue
        members = members[confidence[members].argsort(descending=True)][:per_grid]
        tiles = images_all[members]
        rows = -(-len(tiles) // GRID_COLUMNS)
        pad = torch.zeros(rows * GRID_COLUMNS - len(tiles), *tiles.shape[1:])
        tiles = torch.cat([tiles, pad]).view(rows, GRID_COLUMNS, *tiles.shape[1:])
        grids[cluster] = str(save_grid(list(tiles.unbind(1)), output / f"cluster_{cluster:02d}.png"))
    return {"output": str(output), "images": len(files), "clusters": k, "counts": counts,
            "csv": str(output / "clusters.csv"), "grids": len(grids)}
