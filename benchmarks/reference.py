"""Same-run baselines: steps and translation loops written the way the reference implementations do them on a CPU.

- pix2pix / CycleGAN: junyanz/pytorch-CycleGAN-and-pix2pix ``optimize_parameters`` (pix2pix: D then G;
  CycleGAN: G then D), ``set_requires_grad`` around each update, per-parameter Adam (torch's CPU default,
  ``foreach=False``), no denormal flushing.
- DCGAN / CGAN / ACGAN: eriklindernoren/PyTorch-GAN's loops (dcgan.py, cgan.py, acgan.py): z from numpy, G
  updated first through an unfrozen D (D's weight gradients are computed and then zeroed), then D on real and
  ``gen_imgs.detach()``, a ``.item()`` per loss, per-parameter Adam, no denormal flushing.
- translate: the reference's ``test.py --model test --dataset_mode single`` written out: PIL read, torchvision
  Resize/ToTensor/Normalize, batch 1 under ``no_grad``, ``tensor2im``, PIL save.

Every baseline runs the very nets, losses and batches that i2i's step runs (same math); only the loop differs.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from common import ROOT  # noqa: F401  (puts the repository on sys.path)

from i2i.models.base import set_requires_grad

PYTORCH_GAN = ("gan", "cgan", "acgan")  # model types with a PyTorch-GAN-style baseline (InfoGAN's differs: 3 updates)


def reference_optimizers(recipe, model) -> dict:
    """The recipe's Adam settings, per-parameter loop (``foreach=False``), one optimizer per group."""
    out = {}
    for group, names in model.optim_groups.items():
        cfg = recipe["optim"][group]
        params = [p for n in names for p in model.nets[n].parameters()]
        out[group] = torch.optim.Adam(params, lr=cfg["lr"], betas=tuple(cfg["betas"]), foreach=False)
    return out


def reference_step(model_name, model, opts, batch) -> None:
    """The reference's optimize_parameters, written out (pix2pix: D then G; CycleGAN: G then D)."""
    n, adv = model.nets, model.losses["adv"]
    if model_name == "pix2pix":
        fake_b = n["g"](batch["real_a"])
        set_requires_grad((n["d"],), True)
        opts["d"].zero_grad()
        loss_d = adv.discriminator(n["d"](torch.cat([batch["real_a"], batch["real_b"]], 1)),
                                   n["d"](torch.cat([batch["real_a"], fake_b.detach()], 1)))
        loss_d.backward()
        opts["d"].step()
        set_requires_grad((n["d"],), False)
        opts["g"].zero_grad()
        loss_g = (adv.generator(n["d"](torch.cat([batch["real_a"], fake_b], 1)))
                  + model.losses["l1"](fake_b, batch["real_b"]))
        loss_g.backward()
        opts["g"].step()
        return
    a, b = batch["real_a"], batch["real_b"]
    fake_b, fake_a = n["g_ab"](a), n["g_ba"](b)
    rec_a, rec_b = n["g_ba"](fake_b), n["g_ab"](fake_a)
    set_requires_grad((n["d_a"], n["d_b"]), False)
    opts["g"].zero_grad()
    loss = (adv.generator(n["d_b"](fake_b)) + adv.generator(n["d_a"](fake_a))
            + model.losses["cycle"](rec_a, a) + model.losses["cycle"](rec_b, b)
            + model.losses["identity"](n["g_ab"](b), b) + model.losses["identity"](n["g_ba"](a), a))
    loss.backward()
    opts["g"].step()
    set_requires_grad((n["d_a"], n["d_b"]), True)
    opts["d"].zero_grad()
    fb, fa = model.pool_b.query(fake_b.detach()), model.pool_a.query(fake_a.detach())
    (adv.discriminator(n["d_b"](b), n["d_b"](fb)) + adv.discriminator(n["d_a"](a), n["d_a"](fa))).backward()
    opts["d"].step()


def pytorch_gan_step(model_type: str, model, opts, batch) -> None:
    """One iteration of PyTorch-GAN's dcgan.py / cgan.py / acgan.py loop on the recipe's nets and losses."""
    g, d, adv = model.nets["g"], model.nets["d"], model.losses["adv"]
    real, labels = batch["real"], batch["y"]
    n = real.shape[0]
    z = torch.from_numpy(np.random.normal(0, 1, (n, g.z_dim)).astype(np.float32))
    labelled = model_type in ("cgan", "acgan")
    gen_labels = torch.from_numpy(np.random.randint(0, g.num_classes, n)).long() if labelled else None

    def judge(x, y):
        return d(x, y) if model_type == "cgan" else d(x)

    opts["g"].zero_grad()
    gen_imgs = g(z, gen_labels) if labelled else g(z)
    out = judge(gen_imgs, gen_labels)
    if model_type == "acgan":
        g_loss = 0.5 * (adv.generator(out["adv"]) + F.cross_entropy(out["class"], gen_labels))
    else:
        g_loss = adv.generator(out)
    g_loss.backward()
    opts["g"].step()

    opts["d"].zero_grad()
    real_out, fake_out = judge(real, labels), judge(gen_imgs.detach(), gen_labels)
    if model_type == "acgan":
        d_loss = 0.5 * (adv.discriminator(real_out["adv"], fake_out["adv"])
                        + 0.5 * (F.cross_entropy(real_out["class"], labels)
                                 + F.cross_entropy(fake_out["class"], gen_labels)))
    else:
        d_loss = adv.discriminator(real_out, fake_out)
    d_loss.backward()
    opts["d"].step()
    d_loss.item(), g_loss.item()  # the per-batch print


def reference_translate(net: torch.nn.Module, files: list[Path], out_dir: Path, size: int = 256) -> None:
    """The reference's single-image test loop: one image at a time, PIL in and out."""
    import torchvision.transforms as T
    from PIL import Image

    transform = T.Compose([T.Resize([size, size], T.InterpolationMode.BICUBIC), T.ToTensor(),
                           T.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])
    out_dir.mkdir(parents=True, exist_ok=True)
    for path in files:
        x = transform(Image.open(path).convert("RGB")).unsqueeze(0)
        with torch.no_grad():
            fake = net(x)
        image = (np.transpose(fake[0].cpu().float().numpy(), (1, 2, 0)) + 1) / 2.0 * 255.0
        Image.fromarray(image.astype(np.uint8)).save(out_dir / f"{path.stem}.png")
