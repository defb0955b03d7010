"""FID and KID: torch-fidelity's Inception-v3 (the TF 2015-12-05 graph FID was defined with) and its formulas.

Nothing here downloads. The standard weights (``pt_inception-2015-12-05``, the TF FID weights as pytorch-fid and
torch-fidelity ship them, sha256 prefix 6726825d) are read from a local file: the path given (recipe
``eval.fid.weights``, ``i2i eval --fid-weights``), else ``$I2I_INCEPTION_WEIGHTS``, else the torch hub cache
(``<torch hub dir>/checkpoints/`` under either file name). torch-fidelity's extractor is always handed the weights
(it would download only when given none), loaded here with ``weights_only=True``. ``weights="random"`` builds the
same architecture with seeded random weights: figures for tests and pipeline checks, comparable with nothing.

Images go in as uint8 RGB of any size (gray is repeated to 3 channels, alpha dropped) and are resized to 299 x 299
inside the extractor with TF1's bilinear resize, as the original TF code (TTUR) and torch-fidelity do; the
features are the 2048-d pool3 activations. FID is torch-fidelity's ``fid_statistics_to_metric``, KID its unbiased
polynomial-kernel MMD averaged over ``kid_subsets`` random subsets of ``kid_subset_size`` (capped at the counts).
"""
from __future__ import annotations

import hashlib
import io
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch

from ..errors import I2IError

log = logging.getLogger("i2i")

WEIGHTS_ENV = "I2I_INCEPTION_WEIGHTS"
RANDOM = "random"
FILE_NAMES = ("weights-inception-2015-12-05-6726825d.pth", "pt_inception-2015-12-05-6726825d.pth")
URLS = ("https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth",
        "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth")
STANDARD_SHA256_PREFIX = "6726825d"
FEATURE = "2048"
_RANDOM_MARK = "__i2i_random_inception__"


def _fidelity():
    try:
        import torch_fidelity
    except ImportError:
        raise I2IError("FID and KID use torch-fidelity, which is not installed: pip install 'i2i[fid]' "
                       "(or pip install torch-fidelity)") from None
    return torch_fidelity


def hub_paths() -> list[Path]:
    """Where the weights are looked for in the torch hub cache (``$TORCH_HOME/hub/checkpoints``)."""
    return [Path(torch.hub.get_dir()) / "checkpoints" / name for name in FILE_NAMES]


def how_to_get() -> str:
    target = hub_paths()[0]
    return (f"Nothing is downloaded at run time. Put the standard Inception weights (pt_inception-2015-12-05, 91 MB, "
            f"the TF FID weights as pytorch-fid and torch-fidelity ship them) at {target}, or give its path with "
            f"eval.fid.weights / --fid-weights or ${WEIGHTS_ENV}. On a machine with internet: "
            f"mkdir -p {target.parent} && curl -L -o {target} {URLS[0]} "
            f"(the same weights as pytorch-fid's {URLS[1]})")


def resolve_weights(weights: str | os.PathLike | None = None, *, what: str = "--fid-weights") -> str:
    """'random', or the path of an existing weights file: ``weights``, else ``$I2I_INCEPTION_WEIGHTS``, else the
    torch hub cache. Raises I2IError saying where to put the file and how to get it."""
    if weights is not None and str(weights) == RANDOM:
        return RANDOM
    for source, given in ((what, weights), (f"${WEIGHTS_ENV}", os.environ.get(WEIGHTS_ENV) or None)):
        if given is None:
            continue
        path = Path(given).expanduser()
        if not path.is_file():
            raise I2IError(f"{source} {given}: no such file. {how_to_get()}")
        return str(path)
    for path in hub_paths():
        if path.is_file():
            return str(path)
    raise I2IError(f"no Inception weights found (looked in {', '.join(str(p) for p in hub_paths())}). "
                   f"{how_to_get()}")


def sha256_prefix(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[: len(STANDARD_SHA256_PREFIX)]


def _load_state(path: str) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001  pickle, zip or torch errors: all mean "not a weights file"
        raise I2IError(f"{path}: not a PyTorch weights file ({type(exc).__name__}: {str(exc)[:200]}). "
                       f"{how_to_get()}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise I2IError(f"{path}: not a state dict of tensors. {how_to_get()}")
    missing = [k for k in ("Conv2d_1a_3x3.conv.weight", "Mixed_7c.branch_pool.conv.weight", "fc.weight")
               if k not in state]
    if missing:  # before building the net: a foreign file fails at once
        raise I2IError(f"{path}: not the Inception weights torch-fidelity reads (no {', '.join(missing)}). "
                       f"{how_to_get()}")
    return state


def _extractor_class():
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    class InceptionV3(FeatureExtractorInceptionV3):
        """torch-fidelity's extractor; a state dict carrying the random mark keeps the (re-seeded) init."""

        def load_state_dict(self, state_dict, strict=True, assign=False):
            if _RANDOM_MARK in state_dict:
                for m in self.modules():  # fan-in init keeps the activations' scale through the ~50 layers
                    if isinstance(m, torch.nn.Conv2d):
                        torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                return None
            return super().load_state_dict(state_dict, strict=strict, assign=assign)

    return InceptionV3


class InceptionFeatures:
    """uint8 RGB images (N, 3, H, W), any size -> 2048-d Inception pool features (float64, on the CPU)."""

    def __init__(self, weights: str | os.PathLike | None = None, device: str | torch.device = "cpu"):
        _fidelity()
        self.weights = resolve_weights(weights)
        self.device = torch.device(device)
        if self.weights == RANDOM:
            state, self.standard = {_RANDOM_MARK: torch.zeros(1)}, False
        else:
            state = _load_state(self.weights)
            self.standard = sha256_prefix(self.weights) == STANDARD_SHA256_PREFIX
            if not self.standard:
                log.warning("%s is not the standard Inception weights file (sha256 does not start with %s): its "
                            "FID/KID are not comparable with published figures", self.weights, STANDARD_SHA256_PREFIX)
        buffer = io.BytesIO()
        torch.save(state, buffer)
        buffer.seek(0)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            try:  # handed a file object, torch-fidelity never reaches its download branch
                net = _extractor_class()("inception-v3-compat", [FEATURE], feature_extractor_weights_path=buffer)
            except RuntimeError as exc:  # load_state_dict: missing/unexpected keys or shapes
                raise I2IError(f"{self.weights}: not the Inception weights torch-fidelity reads "
                               f"({str(exc).splitlines()[0][:300]}). {how_to_get()}") from None
        self.net = net.to(self.device).eval()

    def describe(self) -> dict:
        return {"inception_weights": self.weights, "standard_weights": self.standard}

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"expected uint8 images (N, 3, H, W), got {images.dtype} {tuple(images.shape)}")
        (features,) = self.net(images.to(self.device))
        return features.double().cpu()

    def of_batches(self, batches: Iterable[torch.Tensor]) -> torch.Tensor:
        """Features of every image in ``batches`` (uint8 (N, 3, H, W) each), concatenated."""
        out = [self(b) for b in batches if len(b)]
        return torch.cat(out) if out else torch.zeros(0, 2048, dtype=torch.float64)


def to_uint8_rgb(images: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) in [-1, 1] -> uint8 RGB, rounded as written PNGs are (gray repeated, alpha or extras dropped)."""
    images = images.detach().float().cpu()
    if images.shape[1] in (2, 4):
        images = images[:, :-1]
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    return ((images[:, :3].clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)


def read_rgb(path: Path) -> np.ndarray:
    """An image file as uint8 HWC RGB."""
    from ..data.io import adapt_channels, read_image, to_uint8
    array = read_image(path)
    if array.dtype.kind == "f":
        array = np.rint(np.clip(array, 0.0, 1.0) * 255.0).astype(np.uint8)
    return adapt_channels(to_uint8(array), 3)


def folder_images(folder: str | os.PathLike, max_images: int | None = None) -> list[Path]:
    from ..data.io import list_images
    root = Path(folder)
    if not root.is_dir():
        raise I2IError(f"{root}: no such folder of real images")
    files = list_images(root)
    if len(files) < 2:
        raise I2IError(f"{root}: FID needs at least 2 images, found {len(files)}")
    return files[:max_images] if max_images else files


def folder_batches(files: list[Path], batch_size: int = 50) -> Iterator[torch.Tensor]:
    """uint8 (N, 3, H, W) batches of consecutive files of one size (the extractor resizes each to 299)."""
    batch: list[np.ndarray] = []
    for path in files:
        image = read_rgb(path)
        if batch and (image.shape != batch[0].shape or len(batch) == batch_size):
            yield torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2).contiguous()
            batch = []
        batch.append(image)
    if batch:
        yield torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2).contiguous()


def fid(real: torch.Tensor, fake: torch.Tensor) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (torch-fidelity's statistics and formula; an
    eigendecomposition of a 2048 x 2048 matrix: seconds on a CPU whatever the image counts)."""
    _fidelity()
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
    if len(real) < 2 or len(fake) < 2:
        raise I2IError(f"FID needs at least 2 images on each side, got {len(real)} real and {len(fake)} generated")
    stats = [fid_features_to_statistics(f.double().cpu()) for f in (real, fake)]
    return float(fid_statistics_to_metric(*stats, verbose=False)["frechet_inception_distance"])


def kid(real: torch.Tensor, fake: torch.Tensor, *, subset_size: int = 1000, subsets: int = 100,
        seed: int = 0) -> dict:
    """KID: torch-fidelity's unbiased MMD^2 with the cubic polynomial kernel, mean and std over ``subsets`` random
    subsets of ``subset_size`` images a side (capped at the smaller count)."""
    _fidelity()
    from torch_fidelity.metric_kid import kid_features_to_metric
    size = min(subset_size, len(real), len(fake))
    if size < 2:
        raise I2IError(f"KID needs at least 2 images on each side, got {len(real)} real and {len(fake)} generated")
    out = kid_features_to_metric(real.double().cpu(), fake.double().cpu(), kid_subsets=subsets,
                                 kid_subset_size=size, rng_seed=seed, verbose=False)
    return {"kid": out["kernel_inception_distance_mean"], "kid_std": out["kernel_inception_distance_std"],
            "kid_subset_size": size}


def fid_kid(real: torch.Tensor, fake: torch.Tensor, *, kid_subset_size: int = 1000, kid_subsets: int = 100,
            seed: int = 0) -> dict:
    """FID and KID (mean, std over subsets) between two feature sets."""
    return {"fid": fid(real, fake), **kid(real, fake, subset_size=kid_subset_size, subsets=kid_subsets, seed=seed)}


def load_inputs(folder: str | os.PathLike, channels: int, size: int | None, max_images: int | None) -> torch.Tensor:
    """Source-domain images for a translating generator: (N, channels, size, size) in [-1, 1], the first
    ``max_images`` by name, each resized (shorter side to ``size``, antialiased) and centre-cropped; without
    ``size`` the images must share one size."""
    import torch.nn.functional as F

    from ..data.io import adapt_channels, read_image, to_float, to_tensor
    root = Path(folder)
    if not root.is_dir():
        raise I2IError(f"{root}: no such folder of input images")
    from ..data.io import list_images
    files = list_images(root)[:max_images] if max_images else list_images(root)
    if not files:
        raise I2IError(f"{root}: no images to translate")
    out = []
    for path in files:
        x = to_tensor(adapt_channels(to_float(read_image(path)), channels))[None]
        if size is not None:
            h, w = x.shape[-2:]
            scale = size / min(h, w)
            nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
            if (nh, nw) != (h, w):
                x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)
            top, left = (nh - size) // 2, (nw - size) // 2
            x = x[..., top:top + size, left:left + size]
        if out and x.shape != out[0].shape:
            raise I2IError(f"{path}: {tuple(x.shape[-2:])} px, the first input has {tuple(out[0].shape[-2:])}; give "
                           "a size to resize the inputs to")
        out.append(x)
    return torch.cat(out)


@torch.no_grad()
def generated_batches(g: torch.nn.Module, *, samples: int, inputs: torch.Tensor | None = None, batch_size: int = 50,
                      seed: int = 0, device: str | torch.device = "cpu") -> Iterator[torch.Tensor]:
    """uint8 RGB batches of generated images, drawn from a private RNG (the same images for the same weights).

    A generator of noise (and labels or codes: gan, cgan, acgan, infogan) gets ``samples`` latent draws, labels and
    codes uniform; a translating generator gets the ``inputs`` (and, with a latent code, z ~ N(0, I) each)."""
    from ..codes import generate_images, sample_latent
    from ..inference.sample import noise_generator
    gen = torch.Generator().manual_seed(seed)
    was_training = g.training
    g.eval()
    try:
        if noise_generator(g):
            for start in range(0, samples, batch_size):
                n = min(batch_size, samples - start)
                yield to_uint8_rgb(generate_images(g, sample_latent(g, n, device, generator=gen)))
            return
        if inputs is None:
            raise I2IError(f"{type(g).__name__} translates images: FID needs a folder of source-domain inputs")
        z_dim = getattr(g, "z_dim", 0) or 0
        for start in range(0, min(samples, len(inputs)), batch_size):
            x = inputs[start:min(start + batch_size, samples)].to(device)
            args = (x, torch.randn(len(x), z_dim, generator=gen).to(device)) if z_dim else (x,)
            out = g(*args)
            yield to_uint8_rgb(out[0] if isinstance(out, (tuple, list)) else out)
    finally:
        g.train(was_training)
