"""Tiled inference: run a generator over an image of any size in overlapping tiles, blended on the CPU.

The image stays on the CPU. It is cut into ``tile`` x ``tile`` input tiles that overlap by ``overlap`` px; a few
tiles at a time (``batch``) go to the device, through the net under ``torch.inference_mode`` and back. Each output
tile is weighted by a window and added into a CPU buffer, which is divided by the sum of the weights. Device
memory is therefore bounded by one tile batch, whatever the image size. Output rows are handed out as soon as no
later tile can touch them (``iter_tiled_rows``), so a caller can convert them to uint8/uint16 as they come and
never hold the whole float output.

Windows. Along each axis the weight is 1 in a tile's interior and at the image border. Inside an overlap of width
``ov`` between two neighbours, the outer quarter next to each tile's cut edge gets weight 0 (those outputs saw the
tile edge instead of the real neighbourhood), and the middle half ramps from 0 to 1 (``cosine``: a Hann half-period,
or ``linear``). The two neighbours' ramps are mirror images, so their weights sum to 1 there.

Exactness. For a translation-equivariant, tile-local net (a stack of convolutions without normalisation, or with
BatchNorm in eval mode) whose receptive-field radius r is at most ``overlap // 4`` input px, every output pixel
with a non-zero weight equals the whole-image output, so the tiled output equals the untiled one up to float
rounding. A net with InstanceNorm (or anything with image-wide statistics) is not tile-local: its statistics are
taken per tile, so the tiled output differs from the whole-image one; the blending then hides the seams, it does
not remove the difference. Nets with strided downsampling are equivariant only to shifts by a multiple of their
stride: tiles start at multiples of ``multiple`` (the stride between tiles is rounded down to one, the image is
padded to one), so such nets stay exact under the same radius condition when ``tile`` is a multiple too. Nets whose
receptive field is larger than that (a U-Net's is the whole image) are approximated.

Scale. A super-resolution net returns ``scale`` x its input; the scale is read from ``scale=``, else checked on
the first tile batch (a ``scale`` attribute on the net, when present, must agree). Output tile coordinates are
``scale`` x input coordinates. The image is padded at its right and bottom to the net's ``multiple`` (reflect, or
replicate when too small to reflect) and the output cropped back, exactly as untiled translation does; a tile that
is not a multiple itself (``tile`` not a multiple, via the Python API) is padded the same way.
"""
from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.io import adapt_channels
from ..errors import I2IError

WINDOWS = ("cosine", "linear")


def tile_starts(length: int, tile: int, overlap: int, align: int = 1) -> list[int]:
    """Tile origins along one axis: every ``tile - overlap`` px, the last one shifted inward to end at ``length``.

    An axis no longer than ``tile`` is one tile covering it. Every neighbouring pair overlaps by at least
    ``overlap`` px (the shifted last pair by more). With ``align`` (the net's size multiple), the stride is rounded
    down to a multiple of it where possible, so tiles keep the phase of a strided net's downsampling.
    """
    if length <= tile:
        return [0]
    stride = tile - overlap
    if stride >= align:
        stride -= stride % align
    return list(range(0, length - tile, stride)) + [length - tile]


def _ramp(n: int, window: str) -> torch.Tensor:
    """n rising weights strictly inside (0, 1); ramp(n) + ramp(n).flip(0) == 1."""
    t = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    return (t if window == "linear" else 0.5 - 0.5 * torch.cos(math.pi * t)).float()


def _rising_edge(overlap_out: int, quarter_out: int, window: str) -> torch.Tensor:
    """Weights over an overlap of ``overlap_out`` output px: 0 on the first quarter, a ramp, then 1."""
    n = overlap_out - 2 * quarter_out
    return torch.cat([torch.zeros(quarter_out), _ramp(n, window), torch.ones(quarter_out)])


def axis_windows(length: int, tile: int, overlap: int, *, scale: int = 1, window: str = "cosine",
                 align: int = 1) -> tuple[list[int], list[torch.Tensor], torch.Tensor]:
    """(starts, one output-resolution weight vector per tile, their sum over the output axis) for one axis."""
    if window not in WINDOWS:
        raise I2IError(f"unknown tile window '{window}'; valid: {', '.join(WINDOWS)}")
    starts = tile_starts(length, tile, overlap, align)
    size = min(tile, length)
    weights = []
    for i, a in enumerate(starts):
        w = torch.ones(size * scale)
        if i > 0:  # shared with the previous tile: [a, end of previous)
            ov = starts[i - 1] + size - a
            edge = _rising_edge(ov * scale, (ov // 4) * scale, window)
            w[: edge.numel()] *= edge
        if i < len(starts) - 1:  # shared with the next tile: [start of next, a + size)
            ov = a + size - starts[i + 1]
            edge = _rising_edge(ov * scale, (ov // 4) * scale, window)
            w[w.numel() - edge.numel():] *= edge.flip(0)
        weights.append(w)
    total = torch.zeros(length * scale)
    for a, w in zip(starts, weights):
        total[a * scale: a * scale + w.numel()] += w
    return starts, weights, total


def unit_float(array: np.ndarray) -> torch.Tensor:
    """HWC uint8 / uint16 / float array in [0, 1] -> (C, H, W) float32 in [-1, 1], one float copy."""
    if array.dtype not in (np.uint8, np.uint16) and array.dtype.kind != "f":
        raise ValueError(f"unsupported image dtype {array.dtype}")
    t = torch.from_numpy(array.astype(np.float32)).permute(2, 0, 1)
    if array.dtype == np.uint8:
        t.div_(255.0)
    elif array.dtype == np.uint16:
        t.div_(65535.0)
    else:
        t.clamp_(0.0, 1.0)
    return t.mul_(2.0).sub_(1.0)


def input_tensor(source: np.ndarray, channels: int) -> torch.Tensor:
    """``to_tensor(to_float(adapt_channels(source, channels)))`` bit for bit, with one float copy instead of three.

    A (C, H, W) view in channels-last memory.
    """
    return unit_float(adapt_channels(source, channels))


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """(``x`` padded at its right and bottom to a multiple of ``multiple``, its original (h, w)).

    Reflect padding, or replicate when a side is too small to reflect; ``x`` itself when no padding is needed.
    Whole images, tiles and interpolation strips are all padded by this one rule, so their outputs agree.
    """
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="reflect" if ph < h and pw < w else "replicate")
    return x, (h, w)


class ImageSource:
    """An image kept in its file's dtype (HWC), seen as (C, H, W) in [-1, 1] one region at a time.

    Tiling a 4000x3000 image from this instead of a float tensor saves the float copy of the whole input
    (144 MB for RGB); each tile is converted when it is cut, with the same arithmetic as ``unit_float``.
    """

    def __init__(self, array: np.ndarray):
        if array.ndim != 3 or (array.dtype not in (np.uint8, np.uint16) and array.dtype.kind != "f"):
            raise ValueError(f"unsupported image array {array.dtype} {array.shape}")
        self.array = array
        self.shape = (array.shape[2], array.shape[0], array.shape[1])

    def region(self, y0: int, y1: int, x0: int, x1: int) -> torch.Tensor:
        return unit_float(self.array[y0:y1, x0:x1])

    def padded(self, multiple: int) -> ImageSource:
        """As ``pad_to_multiple`` on the float image: reflect (or replicate when too small) at the right and bottom."""
        h, w = self.array.shape[:2]
        ph, pw = -h % multiple, -w % multiple
        if not (ph or pw):
            return self
        mode = "reflect" if ph < h and pw < w else "edge"
        return ImageSource(np.pad(self.array, ((0, ph), (0, pw), (0, 0)), mode=mode))


def _check(tile: int, overlap: int, batch: int, multiple: int) -> None:
    checks = (("tile", tile, 1), ("overlap", overlap, 0), ("batch", batch, 1), ("multiple", multiple, 1))
    for name, value, low in checks:
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise I2IError(f"tiled_forward: {name} must be an integer >= {low}, got {value!r}")
    if overlap >= tile:
        raise I2IError(f"tiled_forward: overlap ({overlap}) must be smaller than tile ({tile})")


def _scale_of(out: torch.Tensor, inp: torch.Tensor, expected: int | None) -> int:
    (oh, ow), (ih, iw) = out.shape[-2:], inp.shape[-2:]
    if oh % ih or ow % iw or oh // ih != ow // iw or oh < ih:
        raise I2IError(f"tiling needs a net whose output is an integer multiple of its input in both sides; "
                       f"a {ih}x{iw} tile gave {oh}x{ow}")
    scale = oh // ih
    if expected is not None and scale != expected:
        raise I2IError(f"the net upscales by {scale}, but scale={expected} was given (or set on the net)")
    return scale


def iter_tiled_rows(net: nn.Module, image: torch.Tensor | ImageSource, *, tile: int, overlap: int,
                    scale: int | None = None, device: str | torch.device = "cpu", batch: int = 4,
                    window: str = "cosine", multiple: int = 1) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield ``(first_row, rows)`` of the blended output, top to bottom, each (C_out, n, W * scale) on the CPU.

    Rows are yielded once no later tile reaches them, so only about one band of tiles is held in float.
    """
    lazy = isinstance(image, ImageSource)
    if not lazy and (image.dim() not in (3, 4) or (image.dim() == 4 and image.shape[0] != 1)):
        raise I2IError(f"tiled_forward takes one image, (C, H, W) or (1, C, H, W); got shape {tuple(image.shape)}")
    x = image if lazy else image[0] if image.dim() == 4 else image
    _check(tile, overlap, batch, multiple)
    if scale is None and isinstance(getattr(net, "scale", None), int):
        scale = net.scale
    if window not in WINDOWS:
        raise I2IError(f"unknown tile window '{window}'; valid: {', '.join(WINDOWS)}")
    height, width = x.shape[-2:]
    # pad the whole image as untiled translation does: same outputs at its right/bottom
    x = x.padded(multiple) if lazy else pad_to_multiple(x.detach().cpu(), multiple)[0]
    ph, pw = x.shape[-2:]
    th, tw = min(tile, ph), min(tile, pw)
    ys, xs = tile_starts(ph, tile, overlap, multiple), tile_starts(pw, tile, overlap, multiple)
    tiles = [(y, x0) for y in ys for x0 in xs]
    s = None
    acc = torch.empty(0)
    lo = hi = 0  # output rows held in acc: [lo, hi)
    for i in range(0, len(tiles), batch):
        chunk = tiles[i: i + batch]
        cut = (lambda y, x0: x.region(y, y + th, x0, x0 + tw)) if lazy else (lambda y, x0: x[:, y: y + th, x0: x0 + tw])
        inp = pad_to_multiple(torch.stack([cut(y, x0) for y, x0 in chunk]).contiguous(), multiple)[0]
        with torch.inference_mode():
            out = net(inp.to(device))
            if s is None:
                s = _scale_of(out, inp, scale)
                ys, wy, sy = axis_windows(ph, tile, overlap, scale=s, window=window, align=multiple)
                xs, wx, sx = axis_windows(pw, tile, overlap, scale=s, window=window, align=multiple)
                rows_w, cols_w = dict(zip(ys, wy)), dict(zip(xs, wx))
                acc = torch.zeros(out.shape[1], 0, pw * s)
            out = out[..., : th * s, : tw * s].float().cpu()
            for (y, x0), o in zip(chunk, out):
                y0, y1 = y * s, (y + th) * s
                if y1 > hi:
                    acc = torch.cat([acc, acc.new_zeros(acc.shape[0], y1 - hi, acc.shape[2])], 1)
                    hi = y1
                weight = rows_w[y][:, None] * cols_w[x0][None, :]
                acc[:, y0 - lo: y1 - lo, x0 * s: (x0 + tw) * s] += o * weight
        done = min(tiles[i + batch][0] * s if i + batch < len(tiles) else hi, height * s)
        if done > lo:
            rows = acc[:, : done - lo, : width * s] / (sy[lo:done, None] * sx[None, : width * s])
            acc = acc[:, done - lo:].clone()
            yield lo, rows
            lo = done


def tiled_forward(net: nn.Module, image: torch.Tensor | ImageSource, *, tile: int, overlap: int,
                  scale: int | None = None, device: str | torch.device = "cpu", batch: int = 4, window: str = "cosine",
                  multiple: int = 1) -> torch.Tensor:
    """``net(image)`` computed tile by tile: a CPU tensor shaped like the input's rank, (1,) C_out, H*s, W*s.

    ``image`` is a CPU tensor (C, H, W) or (1, C, H, W). ``tile``/``overlap`` are input pixels; ``batch`` tiles
    go to ``device`` at a time; ``multiple`` is the net's size multiple (tiles are padded to it and cropped back).
    See the module docstring for the windows and when the result equals the whole-image output.
    """
    out = None
    for row, rows in iter_tiled_rows(net, image, tile=tile, overlap=overlap, scale=scale, device=device,
                                     batch=batch, window=window, multiple=multiple):
        if out is None:  # the first rows tell the scale and channels: fill one preallocated tensor
            s = rows.shape[-1] // image.shape[-1]
            out = torch.empty(rows.shape[0], image.shape[-2] * s, rows.shape[-1])
        out[:, row: row + rows.shape[1]] = rows
    assert out is not None
    return out[None] if torch.is_tensor(image) and image.dim() == 4 else out


def check_tile(tile: int, overlap: int, *, multiple: int = 1, min_size: int = 1) -> tuple[int, str | None]:
    """Validate the ``--tile``/``--tile-overlap`` flags for a net; returns (tile, note if the tile was rounded up)."""
    if not isinstance(tile, int) or isinstance(tile, bool) or tile < 1:
        raise I2IError(f"--tile must be a positive number of pixels (0 turns tiling off), got {tile!r}")
    if not isinstance(overlap, int) or isinstance(overlap, bool) or overlap < 1:
        raise I2IError(f"--tile-overlap must be a positive number of pixels, got {overlap!r}")
    note = None
    rounded = max(-(-tile // multiple) * multiple, -(-min_size // multiple) * multiple)
    if rounded != tile:
        why = f"a multiple of {multiple}, the net's size multiple" if tile % multiple else \
            f"the net's minimum input size {min_size}"
        note = f"--tile {tile} rounded up to {rounded} ({why})"
    if overlap >= rounded:
        raise I2IError(f"--tile-overlap {overlap} must be smaller than --tile {rounded}; use an overlap of about "
                       f"1/8 to 1/4 of the tile")
    if 2 * overlap > rounded:
        cost = f"--tile-overlap {overlap} is more than half of --tile {rounded}: each pixel is computed about " \
               f"{(rounded / (rounded - overlap)) ** 2:.0f} times"
        note = f"{note}; {cost}" if note else cost
    return rounded, note
