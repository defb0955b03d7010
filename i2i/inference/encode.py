"""`i2i encode`: an exported encoder's codes for a folder of images, and latent interpolation between two images.

Works from an export alone for every model that exports an encoder ``e`` (AAE, BiGAN/ALI, VAE-GAN): the codes
are E's means (the first element of an encoder's ``(mu, logvar)``). Images are read keeping their file's
channels, adapted to E's ``in_channels`` and resized (bilinear, antialiased) to E's ``size`` when E takes one
fixed size, as the labeled data set resizes them for training.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..data.io import list_images, read_image, show_path
from ..errors import DataError, I2IError, check_count
from .export import Export
from .grid import save_grid
from .tiling import input_tensor


def _code(out) -> torch.Tensor:
    return out[0] if isinstance(out, (tuple, list)) else out


def encoder_of(export: Export) -> torch.nn.Module:
    if "e" not in export.nets:
        raise I2IError(f"{export.path}: model '{export.meta.get('model')}' exports no encoder 'e' (nets: "
                       f"{', '.join(export.nets)}); `i2i encode` needs one (aae, bigan, vaegan)")
    return export.nets["e"]


def load_for_net(path: Path, net: torch.nn.Module) -> torch.Tensor:
    """(C, H, W) in [-1, 1] for ``net``: its channel count, and its ``size`` when it takes one fixed size."""
    x = input_tensor(read_image(path), net.in_channels).float()
    size = getattr(net, "size", None)
    if isinstance(size, int) and tuple(x.shape[-2:]) != (size, size):
        x = F.interpolate(x[None], size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]
    return x.contiguous()


def _check_output(output: Path, suffix: str, export: Export) -> None:
    if output.suffix.lower() != suffix:
        raise I2IError(f"--output {show_path(output)}: the file name must end in {suffix}")
    if output.is_dir():
        raise I2IError(f"--output {show_path(output)} is a folder; name a {suffix} file")
    exp = Path(export.path).resolve()
    if exp in output.resolve().parents:
        raise I2IError(f"--output {show_path(output)} is inside the export {show_path(export.path)}; write it "
                       "elsewhere (an export is never changed)")


def encode_folder(export: Export, input_dir: str | Path, output: str | Path, *, batch_size: int = 64,
                  device: str | torch.device = "cpu") -> dict:
    """E's code for every image under ``input_dir`` (or the one image it names) into ``output`` (.npz): one array
    (z_dim,) per image, keyed by its path relative to ``input_dir`` (``/``-separated). Written atomically: an
    existing file is replaced only once the new one is complete. Unreadable images are reported, not fatal."""
    input_dir, output = Path(input_dir), Path(output)
    check_count("--batch-size", batch_size)
    _check_output(output, ".npz", export)
    e = encoder_of(export).to(device).eval()
    if input_dir.is_file():
        files = [(input_dir, input_dir.name)]
    elif input_dir.is_dir():
        files = [(p, p.relative_to(input_dir).as_posix()) for p in list_images(input_dir)]
    else:
        raise I2IError(f"--input {show_path(input_dir)}: no such file or folder")
    if not files:
        raise I2IError(f"--input {show_path(input_dir)}: no images found")
    codes: dict[str, np.ndarray] = {}
    failed: list[dict] = []
    pending: list[tuple[str, torch.Tensor]] = []

    def flush() -> None:
        if pending:
            with torch.inference_mode():
                z = _code(e(torch.stack([x for _, x in pending]).to(device))).float().cpu().numpy()
            codes.update({name: row for (name, _), row in zip(pending, z)})
            pending.clear()

    for path, name in files:
        try:
            pending.append((name, load_for_net(path, e)))
        except (DataError, ValueError, OSError) as exc:
            failed.append({"file": str(path), "error": str(exc) or type(exc).__name__})
        if len(pending) >= batch_size:
            flush()
    flush()
    if codes:
        output.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".npz", dir=output.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **codes)
            os.replace(tmp, output)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return {"output": str(output), "images": len(codes), "failed": len(failed), "failures": failed,
            "z_dim": int(next(iter(codes.values())).shape[0]) if codes else None}


def interpolate_images(export: Export, a: str | Path, b: str | Path, output: str | Path, *, steps: int = 8,
                       device: str | torch.device = "cpu") -> dict:
    """A strip ``output`` (.png): image A, G(z) for ``steps`` codes on the line from E(A) to E(B), image B."""
    check_count("--steps", steps)
    if steps < 2:
        raise I2IError(f"--steps must be at least 2 (the two ends), got {steps}")
    output = Path(output)
    _check_output(output, ".png", export)
    e = encoder_of(export).to(device).eval()
    if "g" not in export.nets:
        raise I2IError(f"{export.path}: no generator 'g' to decode the interpolated codes")
    g = export.nets["g"].to(device).eval()
    images = []
    for p in (Path(a), Path(b)):
        if not p.is_file():
            raise I2IError(f"--interpolate {show_path(p)}: no such image")
        try:
            images.append(load_for_net(p, e))
        except (DataError, ValueError, OSError) as exc:
            raise I2IError(f"--interpolate {show_path(p)}: cannot read it ({exc})") from None
    x = torch.stack(images).to(device)
    with torch.inference_mode():
        z = _code(e(x)).float()
        t = torch.linspace(0, 1, steps, device=device)[:, None]
        line = (1 - t) * z[0] + t * z[1]
        decoded = g(line, None, None).float()
    ends = x if x.shape[-2:] == decoded.shape[-2:] else \
        F.interpolate(x, size=decoded.shape[-2:], mode="bilinear", antialias=True, align_corners=False)
    if ends.shape[1] != decoded.shape[1]:
        ends = ends.mean(1, keepdim=True).expand(-1, decoded.shape[1], -1, -1)
    columns = [ends[:1], *decoded.split(1), ends[1:]]
    save_grid(columns, output)
    return {"output": str(output), "steps": steps, "a": str(a), "b": str(b),
            "code_distance": float((z[0] - z[1]).norm())}
