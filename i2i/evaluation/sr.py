"""Super-resolution fidelity as the SR literature reports it (BasicSR's conventions).

Images are HWC numpy arrays on the [0, 255] scale (uint8 or float). PSNR uses a peak of 255; SSIM is Wang et
al.'s with an 11x11 Gaussian window (sigma 1.5), C1 = (0.01 * 255)^2, C2 = (0.03 * 255)^2, averaged over the
valid region and over channels. ``y_channel`` scores the BT.601 luma of MATLAB's ``rgb2ycbcr`` (16..235), and
``crop_border`` drops that many pixels on every side first (the convention is ``crop_border = scale``).
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import correlate1d

from ..data.io import adapt_channels, from_tensor, to_float, to_tensor
from ..data.superres import bicubic_resize

_Y_WEIGHTS = np.array([65.481, 128.553, 24.966]) / 255.0  # MATLAB rgb2ycbcr, for [0, 255] RGB


def rgb_to_y(image: np.ndarray) -> np.ndarray:
    """[0, 255] RGB (H, W, 3) -> Y (H, W) in [16, 235], float64; a 1-channel image counts as R = G = B."""
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[2] == 1:
        return 16.0 + image[..., 0] * _Y_WEIGHTS.sum()
    if image.shape[2] not in (3, 4):
        raise ValueError(f"rgb_to_y needs 1 or 3 channels (RGB), got {image.shape[2]}")
    return 16.0 + image[..., :3] @ _Y_WEIGHTS


def _prepare(a: np.ndarray, b: np.ndarray, crop_border: int, y_channel: bool) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    out = []
    for x in (a, b):
        x = x.astype(np.float64)
        x = x[..., None] if x.ndim == 2 else x
        if crop_border:
            x = x[crop_border:-crop_border, crop_border:-crop_border]
        out.append(rgb_to_y(x)[..., None] if y_channel else x)
    if out[0].size == 0:
        raise ValueError(f"nothing left after cropping {crop_border} border pixels from {a.shape[:2]}")
    return out[0], out[1]


def psnr(a: np.ndarray, b: np.ndarray, *, crop_border: int = 0, y_channel: bool = False) -> float:
    """Peak signal-to-noise ratio in dB for a peak of 255; identical images give inf."""
    x, y = _prepare(a, b, crop_border, y_channel)
    mse = float(np.mean((x - y) ** 2))
    return float("inf") if mse == 0 else 10.0 * float(np.log10(255.0 ** 2 / mse))


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    r = np.arange(size) - (size - 1) / 2
    k = np.exp(-(r ** 2) / (2 * sigma ** 2))
    return k / k.sum()


def _ssim_plane(x: np.ndarray, y: np.ndarray) -> float:
    k, pad = _gaussian_window(), 5

    def blur(z: np.ndarray) -> np.ndarray:  # separable Gaussian, then the valid region only
        return correlate1d(correlate1d(z, k, axis=0, mode="reflect"), k, axis=1, mode="reflect")[pad:-pad, pad:-pad]

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s.mean())


def ssim(a: np.ndarray, b: np.ndarray, *, crop_border: int = 0, y_channel: bool = False) -> float:
    """Structural similarity (Wang et al. 2004) on the [0, 255] scale, mean over channels; identical -> 1.0."""
    x, y = _prepare(a, b, crop_border, y_channel)
    if min(x.shape[:2]) < 11:
        raise ValueError(f"SSIM needs at least 11x11 pixels (after border cropping), got {x.shape[:2]}")
    return float(np.mean([_ssim_plane(x[..., c], y[..., c]) for c in range(x.shape[2])]))


def bicubic_upscale(lr: np.ndarray, scale: int) -> np.ndarray:
    """[0, 255] HWC (or HW) -> float64 HWC ``scale`` times larger, clipped to [0, 255].

    Pillow's bicubic (a = -0.5, as MATLAB's ``imresize``) through ``torch.nn.functional.interpolate``.
    """
    lr = np.asarray(lr, dtype=np.float32)
    lr = lr[..., None] if lr.ndim == 2 else lr
    up = bicubic_resize(lr, lr.shape[0] * scale, lr.shape[1] * scale)
    return np.clip(up.astype(np.float64), 0.0, 255.0)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _input_multiple(net: torch.nn.Module, scale: int) -> int:
    net = getattr(net, "module", net)  # AveragedModel / DDP wrappers
    if hasattr(type(net), "size_multiple"):
        return int(type(net).size_multiple(scale=getattr(net, "scale", scale)))
    return 1


@torch.no_grad()
def super_resolve(net: torch.nn.Module, lr: np.ndarray, scale: int, device: str | torch.device = "cpu") -> np.ndarray:
    """One whole uint8 HWC LR image -> the net's uint8 HWC output (input padded to the net's multiple)."""
    inner = getattr(net, "module", net)
    lr = np.asarray(lr)
    lr = lr[..., None] if lr.ndim == 2 else lr
    channels = getattr(inner, "in_channels", lr.shape[2])
    x = to_tensor(adapt_channels(to_float(lr), channels))[None].to(device)
    h, w = x.shape[-2:]
    m = _input_multiple(net, scale)
    if (-h) % m or (-w) % m:
        x = F.pad(x, (0, (-w) % m, 0, (-h) % m), mode="replicate")
    y = net(x)
    if y.shape[-2:] != (x.shape[-2] * scale, x.shape[-1] * scale):
        raise ValueError(f"the net turned a {tuple(x.shape[-2:])} input into {tuple(y.shape[-2:])}, "
                         f"not x{scale}: does its scale match?")
    return from_tensor(y[0, :, : h * scale, : w * scale])


def evaluate_sr(net: torch.nn.Module, pairs: Iterable[tuple[np.ndarray, np.ndarray]], scale: int,
                device: str | torch.device = "cpu", *, crop_border: int | None = None) -> dict[str, float | int]:
    """Mean PSNR/SSIM (RGB and Y) of the net and of bicubic upscaling, both from the same LR inputs.

    ``pairs``: (LR, HR) uint8 HWC arrays (e.g. ``i2i.data.load_sr_pairs``); HR is trimmed to LR x ``scale``.
    Both outputs are rounded to uint8 before scoring, as the literature scores saved images. ``crop_border``
    defaults to ``scale``. Returns psnr, ssim, psnr_y, ssim_y, the same four prefixed ``bicubic_``, and images.
    """
    border = scale if crop_border is None else crop_border
    was_training = net.training
    net.eval()
    sums: dict[str, list[float]] = {}
    try:
        for lr, hr in pairs:
            lr, hr = np.asarray(lr), np.asarray(hr)
            hr = hr[..., None] if hr.ndim == 2 else hr
            h, w = lr.shape[0] * scale, lr.shape[1] * scale
            if hr.shape[0] < h or hr.shape[1] < w:
                raise ValueError(f"HR {hr.shape[:2]} is smaller than LR {lr.shape[:2]} x {scale}")
            sr = super_resolve(net, lr, scale, device)
            hr = adapt_channels(_to_uint8(hr[:h, :w]), sr.shape[2])
            bic = adapt_channels(_to_uint8(bicubic_upscale(lr, scale)), sr.shape[2])
            for prefix, out in (("", sr), ("bicubic_", bic)):
                for y in (False, True):
                    suffix = "_y" if y else ""
                    sums.setdefault(f"{prefix}psnr{suffix}", []).append(psnr(out, hr, crop_border=border, y_channel=y))
                    sums.setdefault(f"{prefix}ssim{suffix}", []).append(ssim(out, hr, crop_border=border, y_channel=y))
    finally:
        net.train(was_training)
    if not sums:
        raise ValueError("evaluate_sr got no (LR, HR) pairs")
    result: dict[str, float | int] = {k: float(np.mean(v)) for k, v in sums.items()}
    result["images"] = len(sums["psnr"])
    return result
