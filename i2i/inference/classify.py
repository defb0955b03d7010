"""Classify a folder of images with a classifier export (SGAN's D, `i2i classifier`): one CSV row per image.

The export names its classifier net in ``meta.classifier_net`` and its classes in ``meta.class_names``; a D with a
learned "generated" output (K + 1 outputs) is read on its K real classes only. Images are read like the data sets
read them (any channel count adapted, resized to the net's size, [-1, 1]).
"""
from __future__ import annotations

import csv
import logging
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.io import IMAGE_EXTENSIONS, UnreadableImage, adapt_channels, list_images, read_image, show_path, to_float
from ..errors import I2IError
from .export import Export

log = logging.getLogger("i2i")
COLUMNS = ("file", "class", "class_index", "confidence")


def classifier_of(export: Export) -> tuple[nn.Module, list[str]]:
    """The export's classifier net and its class names; I2IError for an export that has none."""
    name = export.meta.get("classifier_net")
    names = [str(n) for n in export.meta.get("class_names") or []]
    if not name or name not in export.nets:
        raise I2IError(f"{export.path}: this export ('{export.meta.get('model')}') has no classifier (its meta.json "
                       "names no classifier_net); classifiers come from sgan runs and `i2i classifier`")
    if len(names) < 2 and not export.meta.get("multi_label"):
        raise I2IError(f"{export.path}: meta.json lists {len(names)} class name(s); a classifier export needs its "
                       "class names")
    return export.nets[name], names


@torch.no_grad()
def predict(net: nn.Module, images: torch.Tensor, num_classes: int, *, batch_size: int = 256,
            device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """(predicted class, its probability among the K real classes) for (N, C, H, W) images in [-1, 1]."""
    was_training = net.training
    net.eval()
    preds, confs = [], []
    try:
        for start in range(0, len(images), batch_size):
            logits = net(images[start:start + batch_size].to(device)).float()[:, :num_classes]
            conf, pred = logits.softmax(1).max(1)
            preds.append(pred.cpu())
            confs.append(conf.cpu())
    finally:
        net.train(was_training)
    if not preds:
        return torch.empty(0, dtype=torch.long), torch.empty(0)
    return torch.cat(preds), torch.cat(confs)


def load_image(path: Path, channels: int, size: int) -> torch.Tensor:
    """(channels, size, size) in [-1, 1]; raises UnreadableImage or I2IError naming the file."""
    array = to_float(read_image(path))
    try:
        array = adapt_channels(array, channels)
    except ValueError:
        raise I2IError(f"{show_path(path)} has {array.shape[2]} channels; the classifier reads {channels}") from None
    x = torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))[None]
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x[0].clamp(0, 1) * 2 - 1


def classify_folder(export: Export, input_dir: str | Path, output: str | Path, *, batch_size: int = 256,
                    device: str | torch.device = "cpu") -> dict:
    """Predict every image under ``input_dir`` (recursive, sorted) into the CSV ``output`` (file, class,
    class_index, confidence; file relative to ``input_dir``), written atomically. Unreadable images are left out
    with a warning and counted. Returns the summary figures."""
    input_dir, output = Path(input_dir), Path(output)
    if output.suffix.lower() != ".csv":
        raise I2IError(f"--output {show_path(output)}: must be a .csv file name")
    if output.is_dir():
        raise I2IError(f"--output {show_path(output)} is a folder; give a .csv file name")
    if not input_dir.is_dir():
        raise I2IError(f"--input {show_path(input_dir)}: no such folder")
    net, names = classifier_of(export)
    if export.meta.get("multi_label"):
        raise I2IError(f"{export.path}: a multi-label classifier (attributes {', '.join(names)}) gives 0/1 per "
                       "attribute, not one class per image; `i2i classify` writes one class per image, so it takes "
                       "single-label classifiers (class folders or .npz); score this one with `i2i eval`")
    net = net.to(device)
    channels, size = int(net.in_channels), int(net.size)
    files = list_images(input_dir)
    if not files:
        raise I2IError(f"--input {show_path(input_dir)}: no images found (looked for "
                       f"{', '.join(sorted(IMAGE_EXTENSIONS))} recursively)")
    t0 = time.perf_counter()
    images, kept, skipped = [], [], []
    for path in files:
        try:
            images.append(load_image(path, channels, size))
            kept.append(path)
        except UnreadableImage as exc:
            log.warning("classify: skipping %s: %s", show_path(path), exc.reason)
            skipped.append({"file": show_path(path), "reason": exc.reason})
    if not images:
        raise I2IError(f"--input {show_path(input_dir)}: none of the {len(files)} image(s) could be read")
    pred, conf = predict(net, torch.stack(images), len(names), batch_size=batch_size, device=device)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp")
    try:
        with tmp.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(COLUMNS)
            for path, k, c in zip(kept, pred.tolist(), conf.tolist()):
                writer.writerow([path.relative_to(input_dir).as_posix(), names[k], k, f"{c:.4f}"])
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)
    counts = {name: int((pred == k).sum()) for k, name in enumerate(names)}
    return {"export": str(export.path), "output": str(output), "images": len(kept), "skipped": len(skipped),
            "skipped_files": skipped[:20], "per_class": counts, "seconds": round(time.perf_counter() - t0, 2)}
