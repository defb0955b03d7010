"""The ``i2i`` command: train, translate, export, check, recipes. Measuring commands end with one JSON line."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback
from pathlib import Path

from . import __version__
from .errors import I2IError

EPILOG = "Docs: README.md and docs/ in the i2i repository."


def _json(figures: dict) -> None:
    print(json.dumps(figures), flush=True)


def cmd_train(args: argparse.Namespace) -> int:
    from .recipe import load_recipe
    recipe = load_recipe(args.recipe, args.overrides)
    from .engine.stops import TrainingInterrupted
    from .engine.trainer import Trainer
    main_process = os.environ.get("RANK", "0") == "0"  # one summary, from the main process of a launched run
    trainer = Trainer(recipe, resume=args.resume)
    try:
        result = trainer.fit()
    except TrainingInterrupted as exc:  # SIGINT/SIGTERM: the figures so far, then the message (exit 130/143)
        if main_process and exc.result is not None:
            _json(exc.result)
        raise
    if main_process:
        for line in trainer.summary_lines:  # for people, on stderr; the JSON line stays the last line of stdout
            print(line, file=sys.stderr, flush=True)
        _json(result)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from .recipe import load_recipe
    recipe = load_recipe(args.recipe, args.overrides)  # before importing torch: a broken file fails at once
    from .build import check_run_paths, validate_recipe
    validate_recipe(recipe)
    check_run_paths(recipe)  # the run folder, the data and its layout, as train checks them before writing
    if args.print:
        print(recipe.to_yaml())
    _json({"recipe": args.recipe, "valid": True, "model": recipe["model"]["type"], "name": recipe["name"]})
    return 0


def _devices_here() -> list[str]:
    """The devices torch can use on this machine: cpu, then cuda:0 ... cuda:N-1, mps, xpu:0 ... where present."""
    import torch
    found = ["cpu"]
    if torch.cuda.is_available():
        found += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        found.append("mps")
    xpu = getattr(torch, "xpu", None)
    if xpu is not None and xpu.is_available():
        found += [f"xpu:{i}" for i in range(xpu.device_count())]
    return found


def _device(name: str) -> str:
    """--device checked against the devices this machine has (auto: cuda if available, else cpu); an error (exit 2)
    names the devices there are."""
    import torch
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    here = _devices_here()
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        device = None
    if device is not None and device.type in ("cpu", "mps") and device.index in (None, 0):
        ok = device.type in here
    elif device is not None:
        ok = any(d.startswith(f"{device.type}:") for d in here) if device.index is None else \
            f"{device.type}:{device.index}" in here
    else:
        ok = False
    if not ok:
        what = "not a device torch knows" if device is None else "no such device on this machine"
        if device is not None and device.type == "cuda" and not torch.cuda.is_available():
            what = ("no CUDA GPU on this machine (torch.cuda.is_available() is False" +
                    ("; this torch is built without CUDA)" if torch.version.cuda is None else ")"))
        raise I2IError(f"--device {name}: {what}; devices here: {', '.join(here)} (or auto)")
    return name


def _allow_code(args: argparse.Namespace) -> bool | list[str]:
    return True if args.trust_code else list(args.allow_code or [])


def _device_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto (cuda if available, else cpu), cpu, cuda, cuda:1 ...")


def _trust_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--allow-code", action="append", metavar="MODULE",
                   help="let the export import this module (its dotted-path net types or plugins); repeatable. "
                        "Without it an export that names code outside i2i is refused: an export is data")
    p.add_argument("--trust-code", action="store_true", help="let the export import any module it names")


def cmd_translate(args: argparse.Namespace) -> int:
    from .inference.export import load_export
    from .inference.translate import translate_folder
    device = _device(args.device)
    export = load_export(args.export, device=device, allow_code=_allow_code(args))
    result = translate_folder(export, args.input, args.output, direction=args.direction,
                              batch_size=args.batch_size, device=device, tile=args.tile,
                              tile_overlap=args.tile_overlap, tile_batch=args.tile_batch, samples=args.samples,
                              seed=args.seed,
                              sync_z=args.sync_z, style_from=args.style_from, interpolate=args.interpolate,
                              precision=args.precision, compile=args.compile, progress=True, to=args.to,
                              set_attrs=args.set)
    for f in result["skips"]:  # left out on purpose (hidden, not an image, pages after the first): said, counted
        print(f"i2i: skipped {f['file']}: {f['reason']}", file=sys.stderr)
    for f in result["failures"]:
        error = str(f["error"]).replace(f" {f['file']}", "", 1)  # the line names the file once
        print(f"i2i: skipped {f['file']}: {error}", file=sys.stderr)
    _json({k: v for k, v in result.items() if k not in ("failures", "skips")})
    return 1 if result["failed"] else 0


def cmd_inpaint(args: argparse.Namespace) -> int:
    from .inference.export import load_export
    from .inference.inpaint import inpaint_folder
    device = _device(args.device)
    export = load_export(args.export, device=device, allow_code=_allow_code(args))
    result = inpaint_folder(export, args.input, args.output, masks=args.masks, seed=args.seed, device=device,
                            tile=args.tile, tile_overlap=args.tile_overlap)
    for f in result["failures"]:
        print(f"i2i: failed {f['file']}: {f['error']}", file=sys.stderr)
    _json({k: v for k, v in result.items() if k not in ("failures", "skips")})
    return 1 if result["failed"] else 0


def cmd_interpolate(args: argparse.Namespace) -> int:
    from .inference.export import interpolate_exports
    out = interpolate_exports(args.a, args.b, args.alpha, args.output)
    _json({"export": str(out), "a": args.a, "b": args.b, "alpha": args.alpha})
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .engine.checkpoint import export_checkpoint
    if args.format == "onnx":
        return _export_onnx(args)
    out = export_checkpoint(args.checkpoint, args.output)
    _json({"export": str(out)})
    return 0


def _export_onnx(args: argparse.Namespace) -> int:
    """``i2i export RUN --format onnx``: the run's export/ (or an export folder) as ONNX; a checkpoint folder, or a
    run without export/, is exported from its (latest) checkpoint first, into a temporary folder."""
    import tempfile

    from .engine.checkpoint import export_checkpoint
    from .inference.export import find_export, load_export
    from .inference.onnx_export import export_onnx
    source = find_export(args.checkpoint)
    with tempfile.TemporaryDirectory(prefix="i2i_onnx_") as tmp:
        if source is None:
            source = export_checkpoint(args.checkpoint, Path(tmp) / "export")
            given = Path(args.checkpoint)
            run = given if (given / "checkpoints").is_dir() else given.parent.parent
            step = json.loads((source / "meta.json").read_text(encoding="utf-8"))["step"]
            default = run / f"export_step_{step:08d}"
        else:
            default = source
        output = args.output or default.with_name(f"{default.name}_onnx")
        _json(export_onnx(load_export(source, allow_code=_allow_code(args)), output))
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from .inference.export import load_export
    from .inference.sample import sample_export
    device = _device(args.device)
    export = load_export(args.export, device=device, allow_code=_allow_code(args))
    classes = [c for c in args.classes.split(",") if c] if args.classes else None
    _json(sample_export(export, args.output, per_class=args.per_class, classes=classes, columns=args.columns,
                        seed=args.seed, traverse=not args.no_traverse, device=device))
    return 0


def cmd_encode(args: argparse.Namespace) -> int:
    from .inference.encode import encode_folder, interpolate_images
    from .inference.export import load_export
    device = _device(args.device)
    export = load_export(args.export, device=device, allow_code=_allow_code(args))
    if args.interpolate:
        _json(interpolate_images(export, *args.interpolate, args.output, steps=args.steps, device=device))
        return 0
    if args.input is None:
        raise I2IError("i2i encode needs --input DIR (codes per image) or --interpolate A B (a strip)")
    result = encode_folder(export, args.input, args.output, batch_size=args.batch_size, device=device)
    for f in result["failures"]:
        print(f"i2i: skipped {f['file']}: {f['error']}", file=sys.stderr)
    _json({k: v for k, v in result.items() if k != "failures"})
    return 1 if result["failed"] else 0


def cmd_cluster(args: argparse.Namespace) -> int:
    from .inference.cluster import cluster_folder
    from .inference.export import load_export
    device = _device(args.device)
    export = load_export(args.export, device=device, allow_code=_allow_code(args))
    output = args.output or str(export.path.parent / "clusters")  # beside the export, never inside it
    _json(cluster_folder(export, args.input, output, per_grid=args.per_grid, batch_size=args.batch_size,
                         device=device))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    import torch

    from .data.labeled import load_labeled_arrays
    from .evaluation.conditional import evaluate_generator
    from .inference.export import load_export
    device = _device(args.device)
    export = load_export(args.export, device=device, allow_code=_allow_code(args))
    if args.fid is not None:  # any generator: FID/KID against a folder of real images
        from .evaluation.fid_scoring import evaluate_export_fid
        _json(evaluate_export_fid(export, args.fid, samples=args.fid_samples, inputs=args.fid_input,
                                  direction=args.direction, size=args.fid_size, real_images=args.fid_real_images,
                                  weights=args.fid_weights, seed=args.seed, device=device))
        return 0
    if export.meta.get("task") == "super_resolution":  # sr_pixel / esrgan exports: PSNR/SSIM against bicubic
        return _eval_sr(args, export, device)
    if export.meta.get("task") == "inpainting":  # context_encoder / ccgan: hole PSNR/SSIM/L1 against OpenCV
        from .evaluation.inpaint_scoring import evaluate_export as evaluate_inpainting
        _json(evaluate_inpainting(export, data=args.data, split=args.split, mask=args.mask,
                                  max_images=args.max_images, seed=args.seed, device=device))
        return 0
    if export.meta.get("task") == "unpaired_translation" or export.meta.get("model") in ("cyclegan", "unit"):
        # target-domain accuracy, Frechet distance and cycle L1 with a domain classifier (--classifier)
        from .evaluation.domain_scoring import evaluate_export_translation
        _json(evaluate_export_translation(export, data=args.data, classifier=args.classifier, split=args.split,
                                          max_images=args.max_images, device=device))
        return 0
    if export.meta.get("task") == "coupled_generation":  # cogan: pair agreement, per-domain Frechet distance
        from .evaluation.domain_scoring import evaluate_export_coupled
        _json(evaluate_export_coupled(export, data=args.data, classifier=args.classifier, split=args.split,
                                      max_images=args.max_images, seed=args.seed, device=device))
        return 0
    if export.meta.get("task") == "domain_translation":  # stargan: every ordered pair of domains, per domain
        from .evaluation.stargan_scoring import evaluate_export_stargan
        _json(evaluate_export_stargan(export, data=args.data, classifier=args.classifier, split=args.split,
                                      max_images=args.max_images, device=device))
        return 0
    if export.meta.get("task") == "classification":  # sgan, `i2i classifier`: test accuracy
        from .evaluation.classification_scoring import evaluate_export as evaluate_classifier_export
        _json(evaluate_classifier_export(export, data=args.data, split=args.split, max_images=args.max_images,
                                         device=device))
        return 0
    if export.meta.get("task") == "paired_translation" or export.meta.get("model") in ("pix2pix", "bicyclegan"):
        # diversity and reconstruction (exports written before meta.task existed are known by their model)
        from .evaluation.paired_scoring import evaluate_export_paired
        _json(evaluate_export_paired(export, data=args.data, split=args.split, max_images=args.max_images,
                                     samples=args.samples, seed=args.seed, feature_weights=args.feature_weights,
                                     device=device))
        return 0
    if args.data is None:
        raise I2IError("--data is required for this export: labeled data (class folders or .npz), or HR images for "
                       "super-resolution")
    classifier_dir = args.classifier or (export.recipe.get("eval") or {}).get("classifier")
    if not classifier_dir:
        raise I2IError("no evaluation classifier: pass --classifier DIR (train one with "
                       f"`i2i classifier {args.data} --output DIR`)")
    classifier = load_export(classifier_dir, device=device).nets["classifier"]
    g = export.nets.get("g")
    from .inference.sample import noise_generator
    if g is None or not noise_generator(g):
        raise I2IError(f"{export.path}: `i2i eval` scores conditional generators (cgan, acgan, infogan)")
    x, y, _ = load_labeled_arrays(args.data, args.split, g.out_channels, g.size)
    figures = evaluate_generator(g, classifier, torch.as_tensor(x[: args.real_images]),
                                 real_labels=torch.as_tensor(y[: args.real_images]), per_class=args.per_class,
                                 seed=args.seed, device=device)
    if "e" in export.nets and export.meta.get("task") == "encoding":  # aae, bigan, vaegan: what E learned
        from .evaluation.encoder_scoring import evaluate_encoder, probe_subset
        x_train, y_train, _ = load_labeled_arrays(args.data, "train", g.out_channels, g.size)
        figures.update(evaluate_encoder(export.nets["e"], g, *probe_subset(x_train, y_train, args.real_images),
                                        torch.as_tensor(x[: args.real_images]), torch.as_tensor(y[: args.real_images]),
                                        device=device))
    if getattr(export.nets.get("e"), "clusters", 0):  # clustergan: E's clusters of the real images vs their labels
        from .evaluation.coverage import cluster_accuracy
        e, real = export.nets["e"].eval(), torch.as_tensor(x[: args.real_images])
        with torch.no_grad():
            ids = torch.cat([e(c.to(device))[1].argmax(1).cpu() for c in real.split(256)]).numpy()
        labels = torch.as_tensor(y[: args.real_images]).numpy()
        figures.update(cluster_accuracy(ids, labels, e.clusters, int(labels.max()) + 1))
    _json({"export": str(export.path), "classifier": str(classifier_dir), **figures})
    return 0


def _eval_sr(args: argparse.Namespace, export, device: str) -> int:
    if args.data is None:
        raise I2IError("--data is required for a super-resolution export: a folder of HR images or *_HR/*_LR pairs")
    from .evaluation.sr_scoring import evaluate_export, format_table
    summary, rows = evaluate_export(export, args.data, lr_data=args.lr_data, scale=args.scale,
                                    crop_border=args.crop_border, max_images=args.max_images, device=device)
    print(format_table(rows, summary), flush=True)
    _json(summary)
    return 0


def cmd_classifier(args: argparse.Namespace) -> int:
    from .evaluation.classifier import train_classifier
    _json(train_classifier(args.data, args.output, channels=args.channels, size=args.size, steps=args.steps,
                           batch_size=args.batch_size, seed=args.seed, device=_device(args.device),
                           labeled_fraction=args.labeled_fraction, labels_per_class=args.labels_per_class,
                           label_seed=args.label_seed,
                           net={"base_channels": args.base_channels, "feature_dim": args.feature_dim}))
    return 0


def cmd_classify(args: argparse.Namespace) -> int:
    from .inference.classify import classify_folder
    from .inference.export import load_export
    device = _device(args.device)
    export = load_export(args.export, device=device, allow_code=_allow_code(args))
    _json(classify_folder(export, args.input, args.output, batch_size=args.batch_size, device=device))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .engine.report_page import write_report
    _json(write_report(args.run))
    return 0


def cmd_recipes(args: argparse.Namespace) -> int:
    from .build import import_builtins
    from .optim import OPTIMIZERS, SCHEDULES
    from .registry import DATASETS, LOSSES, MODELS, NETS
    import_builtins()
    for registry in (MODELS, NETS, LOSSES, DATASETS, OPTIMIZERS, SCHEDULES):
        print(f"{registry.kind}{'es' if registry.kind.endswith('s') else 's'}:")
        for name, cls in registry.items():
            doc = (cls.__doc__ or "").strip().splitlines()
            print(f"  {name:22s} {doc[0] if doc else ''}"[:150])
    from .recipe.loader import bundled_recipes, bundled_recipes_dir
    bundled = bundled_recipes_dir()
    if bundled is not None:
        print(f"bundled recipes (i2i train NAME, i2i check NAME; the files are in {bundled}):")
        for name, path in bundled_recipes().items():
            print(f"  {name:22s} {_recipe_summary(path)}"[:150])
    folder = Path(args.folder)
    if folder.is_dir() and (bundled is None or folder.resolve() != bundled.resolve()):
        print(f"recipes in {folder}:")
        for path in sorted(folder.rglob("*.yaml")):
            print(f"  {path}")
    return 0


def _recipe_summary(path: Path) -> str:
    """A recipe file's first comment line, without the '#'."""
    try:
        with path.open(encoding="utf-8") as f:
            first = f.readline().strip()
    except (OSError, UnicodeDecodeError):
        return ""
    return first.lstrip("#").strip() if first.startswith("#") else ""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="i2i", description="Conditional and image-to-image GANs from recipe files.",
                                epilog=EPILOG)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("--version", action="version", version=f"i2i {__version__}", help="print the version and exit")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="train a recipe (also: accelerate launch train.py RECIPE ...)",
                       description="Train a recipe. Overrides are dotted YAML paths: train.max_steps=500 "
                                   "data.root=/data/facades. Ends with one JSON line of figures.")
    t.add_argument("recipe", help="recipe YAML file, e.g. recipes/demo/pix2pix.yaml, or a bundled recipe's name: "
                                  "cyclegan, demo/pix2pix (`i2i recipes` lists them)")
    t.add_argument("overrides", nargs="*", help="KEY.PATH=VALUE overrides")
    t.add_argument("--resume", metavar="latest|auto|PATH", default=None,
                   help="continue a run: 'latest' checkpoint of the run folder, 'auto' (latest if any, else start), "
                        "or a checkpoint/run folder")
    t.set_defaults(func=cmd_train)

    c = sub.add_parser("check", help="validate a recipe without building anything",
                       description="Load, merge and validate a recipe; prints errors or one JSON line.")
    c.add_argument("recipe", help="recipe YAML file, or a bundled recipe's name (cyclegan, demo/pix2pix)")
    c.add_argument("overrides", nargs="*", help="KEY.PATH=VALUE overrides, as for train")
    c.add_argument("--print", action="store_true", help="print the resolved recipe")
    c.set_defaults(func=cmd_check)

    tr = sub.add_parser("translate", help="translate a folder of images with an export",
                        description="Translate every image under --input (recursively) into --output, keeping "
                                    "relative names, channel count and bit depth. Ends with one JSON line.")
    tr.add_argument("export", help="export folder, or a run folder holding export/")
    tr.add_argument("--input", "-i", required=True, help="folder of images (searched recursively), or one image")
    tr.add_argument("--output", "-o", required=True, help="output folder (must not overlap the input, nor be in the "
                                                          "export); one image's output is --output/<its name>")
    tr.add_argument("--direction", default=None, help="AtoB or BtoA for two-way models (default: the first)")
    tr.add_argument("--batch-size", type=int, default=None,
                    help="images of equal size per forward pass (and tiles, on a GPU). Default: 4; on the CPU as many "
                         "as make about 50 GFLOP of work, 1 to 4 (big nets such as CycleGAN's run one at a time)")
    tr.add_argument("--tile-batch", type=int, default=None, metavar="N",
                    help="tiles of one image per forward pass (default: 1 on the CPU, where larger batches cost "
                         "memory and no time; --batch-size on a GPU)")
    _device_flag(tr)
    tr.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"],
                    help="fp32 (default), or bf16/fp16 autocast: convolutions in reduced precision, faster where the "
                         "hardware has it (GPUs; CPUs with AVX512-BF16 or AMX), refused where it does not")
    tr.add_argument("--compile", action="store_true",
                    help="run the net through torch.compile: each new input size first compiles (seconds to a "
                         "minute), then passes run faster; worth it for many images of one size, or tiles")
    tr.add_argument("--tile", type=int, default=None, metavar="N",
                    help="translate images larger than N x N input px in overlapping N px tiles, blended on the "
                         "CPU, so device memory holds one batch of tiles whatever the image size (rounded up to "
                         "the net's size multiple). Default: automatic, images above 2048x2048 px of input are "
                         "tiled with 512 px tiles (logged). 0: never tile")
    _trust_flags(tr)
    tr.add_argument("--tile-overlap", type=int, default=32, metavar="N",
                    help="overlap between neighbouring tiles in input px (default 32, smaller than --tile). Tiled "
                         "output equals untiled output for convolutional nets whose receptive-field radius is at "
                         "most N/4; nets with instance norm normalise per tile (the blending hides the seams)")
    mm = tr.add_argument_group("multimodal exports (a generator with a latent code z, e.g. bicyclegan)")
    mm.add_argument("--samples", type=int, default=None, metavar="N",
                    help="outputs per input, <name>_sample0 ... <name>_sample<N-1>, each with z ~ N(0, I) "
                         "(default 1; the codes used go to latents.json in --output)")
    mm.add_argument("--seed", type=int, default=0, help="seed of the random codes (with the input's position in the "
                                                        "sorted file list, unless --sync-z)")
    mm.add_argument("--sync-z", action="store_true", help="the same codes for every input: sample k of each input "
                                                          "shares z_k, so columns compare like with like")
    mm.add_argument("--style-from", default=None, metavar="IMAGE",
                    help="one output per input, <name>_style-<image>, with z encoded from this B-domain image by the "
                         "export's encoder (plus random samples only if --samples is given too)")
    mm.add_argument("--interpolate", type=int, default=0, metavar="K",
                    help="also write <name>_interp: a strip of K outputs along the line from the input's first "
                         "random code to its second (its _sample0 and _sample1)")
    lc = tr.add_argument_group("label-conditioned exports (a generator told the target domain, e.g. stargan)")
    lc.add_argument("--to", action="append", default=None, metavar="DOMAIN",
                    help="translate every input to DOMAIN, written to <output>/DOMAIN/<name>; repeatable; 'all': "
                         "one output per domain. For an attribute (multi-label) export, sets that attribute to 1")
    lc.add_argument("--set", action="append", default=None, metavar="ATTR=0|1",
                    help="multi-label exports: edit attribute ATTR (repeatable; all edits make one output, in "
                         "<output>/ATTR=1,.../<name>); the attributes not named keep the values the export's D "
                         "reads from the input. Outputs' labels go to labels.json in --output")
    tr.set_defaults(func=cmd_translate)

    inp = sub.add_parser("inpaint", help="fill holes in a folder of images with an inpainting export",
                         description="Fill the holes of every image under --input (recursively) with a "
                                     "context_encoder or ccgan export, into --output with the same relative names "
                                     "(JPEG/WebP inputs as PNG). Known pixels are kept exactly: output = mask * "
                                     "generated + (1 - mask) * input in the written bit depth. Ends with one JSON "
                                     "line.")
    inp.add_argument("export", help="export folder, or a run folder holding export/")
    inp.add_argument("--input", "-i", required=True, help="folder of images (searched recursively), or one image")
    inp.add_argument("--output", "-o", required=True, help="output folder (must not overlap the input or the masks)")
    inp.add_argument("--masks", required=True, metavar="DIR|center|random",
                     help="center: the central square of half the shorter side; random: 1 to 3 random blocks per "
                          "image (seeded by --seed and the image's position); or a folder of mask images, white = "
                          "hole, matched to the inputs by relative path without extension (a.png for a.jpg)")
    inp.add_argument("--seed", type=int, default=0, help="seed of --masks random")
    inp.add_argument("--tile", type=int, default=None, metavar="N",
                     help="fill images larger than N x N px in overlapping N px tiles (default: images above "
                          "2048x2048 px in 512 px tiles; 0: never tile). A hole is filled from the context inside "
                          "its tiles, so keep holes well below the tile size")
    inp.add_argument("--tile-overlap", type=int, default=32, metavar="N", help="overlap of neighbouring tiles (px)")
    _device_flag(inp)
    _trust_flags(inp)
    inp.set_defaults(func=cmd_inpaint)

    ip = sub.add_parser("interpolate", help="blend the weights of two exports of one architecture",
                        description="Network interpolation (as ESRGAN blends its PSNR and GAN weights): write an "
                                    "export whose weights are (1 - alpha) * A + alpha * B. A and B must have the "
                                    "same nets and identical state_dict keys and shapes; integer buffers come from "
                                    "A. Ends with one JSON line.")
    ip.add_argument("a", help="export folder (or run folder holding export/) for alpha = 0")
    ip.add_argument("b", help="export folder (or run folder holding export/) for alpha = 1")
    ip.add_argument("--alpha", type=float, required=True, help="weight of B, between 0 and 1 (ESRGAN uses 0.8)")
    ip.add_argument("--output", "-o", required=True, help="new export folder (not one of the inputs)")
    ip.set_defaults(func=cmd_interpolate)

    e = sub.add_parser("export", help="make an export bundle from a checkpoint",
                       description="Write recipe.yaml + safetensors + meta.json from a checkpoint folder or the "
                                   "latest checkpoint of a run folder.")
    e.add_argument("checkpoint", help="checkpoint folder (runs/x/checkpoints/step_N) or run folder")
    e.add_argument("--output", "-o", default=None, help="export folder (default: <run>/export_step_N; with "
                                                        "--format onnx: <export folder>_onnx, e.g. <run>/export_onnx)")
    e.add_argument("--format", default="safetensors", choices=["safetensors", "onnx"],
                   help="safetensors (default): an export bundle from a checkpoint. onnx: one <net>.onnx per exported "
                        "net (dynamic batch, height and width; checked against PyTorch with onnxruntime) plus "
                        "recipe.yaml and meta.json, from the run's export/, an export folder or a checkpoint "
                        "(pip install 'i2i[onnx]')")
    _trust_flags(e)
    e.set_defaults(func=cmd_export)

    s = sub.add_parser("sample", help="sample a conditional generator (class grid, per-class folders, traversals)",
                       description="Writes grid.png (one row per class, the same noise down each column), "
                                   "N images per class into per-class folders, and for InfoGAN traverse_cont*.png. "
                                   "Seeds make the output reproducible. Ends with one JSON line.")
    s.add_argument("export", help="export folder, or a run folder holding export/")
    s.add_argument("--output", "-o", required=True, help="output folder for grid.png, traversals and class folders")
    s.add_argument("--per-class", type=int, default=0, help="images per class written into <output>/<class>/ "
                                                            "(CoGAN: pairs, into <output>/<domain>/)")
    s.add_argument("--classes", default=None, help="comma-separated class names or indices (default: all)")
    s.add_argument("--columns", type=int, default=10, help="noise vectors (columns) in the grid and traversals")
    s.add_argument("--seed", type=int, default=0, help="seed of the noise: the same seed gives the same images")
    s.add_argument("--no-traverse", action="store_true", help="skip InfoGAN latent traversals")
    _device_flag(s)
    _trust_flags(s)
    s.set_defaults(func=cmd_sample)

    en = sub.add_parser("encode", help="an exported encoder's codes per image (aae, bigan, vaegan), or a latent "
                                       "interpolation strip between two images",
                        description="Encode every image under --input (recursively) with the export's encoder E "
                                    "and write one code per image into --output (.npz, keyed by the path relative "
                                    "to --input). With --interpolate A B, write a strip (.png): A, G(z) along the "
                                    "line from E(A) to E(B), B. Ends with one JSON line.")
    en.add_argument("export", help="export folder, or a run folder holding export/")
    en.add_argument("--input", "-i", default=None, help="folder of images (searched recursively), or one image")
    en.add_argument("--output", "-o", required=True, help="codes file (.npz), or the strip (.png) with --interpolate")
    en.add_argument("--interpolate", nargs=2, metavar=("A", "B"), default=None,
                    help="two images: decode codes on the line between their codes into a strip")
    en.add_argument("--steps", type=int, default=8, help="decoded images along the line (default 8, ends included)")
    en.add_argument("--batch-size", type=int, default=64, help="images per forward pass (default 64)")
    _device_flag(en)
    _trust_flags(en)
    en.set_defaults(func=cmd_encode)

    cu = sub.add_parser("cluster", help="cluster a folder of images with a ClusterGAN export's encoder",
                        description="Assign every image under --input (recursively) to the cluster of the export's "
                                    "encoder E (its most probable z_c). Writes --output/clusters.csv (file, cluster, "
                                    "confidence) and cluster_<k>.png: up to --per-grid of the cluster's most "
                                    "confident images, 8 per row. Ends with one JSON line (counts per cluster).")
    cu.add_argument("export", help="export folder, or a run folder holding export/")
    cu.add_argument("--input", "-i", required=True, help="folder of images (searched recursively), or one image")
    cu.add_argument("--output", "-o", default=None, help="output folder (default: clusters/ beside the export; "
                                                         "must not overlap --input)")
    cu.add_argument("--per-grid", type=int, default=64, help="images per cluster grid (default 64)")
    cu.add_argument("--batch-size", type=int, default=256, help="images per forward pass (default 256)")
    _device_flag(cu)
    _trust_flags(cu)
    cu.set_defaults(func=cmd_cluster)

    ev = sub.add_parser("eval", help="score an export: a conditional generator with the evaluation classifier, "
                                     "a super-resolution net by PSNR/SSIM against bicubic, a paired translator "
                                     "(pix2pix, bicyclegan) by diversity and reconstruction",
                        description="Conditional generators: class accuracy of generated samples (InfoGAN: after "
                                    "matching code values to classes) and Frechet distance in the classifier's "
                                    "feature space. Super-resolution exports (sr_pixel, esrgan): PSNR and SSIM (RGB "
                                    "and Y, scale px of border cropped) of the model and of bicubic upscaling from "
                                    "the same LR inputs, as a table per image. Paired translators (pix2pix, "
                                    "bicyclegan): on the --split pairs of --data (default: the recipe's data.root), "
                                    "diversity = mean pairwise distance between --samples outputs per input (pixels "
                                    "and VGG19 features; pix2pix's noise is its dropout) and reconstruction_l1 "
                                    "(BicycleGAN: with z encoded from the real B). Last line: JSON.")
    ev.add_argument("export", help="export folder, or a run folder holding export/")
    ev.add_argument("--data", default=None, help="labeled data (class folders or .npz; StarGAN: its domain folders "
                                                 "or attribute table root/<split>.csv) for the real images; for "
                                                 "super-resolution: HR images (LR made by the training bicubic) or "
                                                 "*_HR/*_LR pairs such as Set5/image_SRF_4 (LR files used); for "
                                                 "paired translators: the paired data root (default: the recipe's)")
    ev.add_argument("--samples", type=int, default=5, help="paired translators: outputs per input (>= 2)")
    ev.add_argument("--feature-weights", default="auto",
                    help="paired translators: VGG19 weights for the feature-space diversity: auto (ImageNet from "
                         "the torch cache if there, else an untrained VGG19, named in the output), imagenet, a path")
    ev.add_argument("--lr-data", default=None, help="super-resolution: a folder of LR images matching --data's HR "
                                                    "images by name (model and bicubic both start from them)")
    ev.add_argument("--scale", type=int, default=None, help="super-resolution: must equal the export's scale")
    ev.add_argument("--crop-border", type=int, default=None, help="super-resolution: border px not scored "
                                                                  "(default: the scale)")
    ev.add_argument("--max-images", type=int, default=None, help="super-resolution and paired translators: the "
                                                                 "first N images only")
    ev.add_argument("--mask", default=None, choices=["center", "blocks", "strokes"],
                    help="inpainting: the holes scored (default: the recipe's eval.mask, else center: the central "
                         "square of half the side); random kinds are seeded by --seed and the image's position")
    ev.add_argument("--classifier", default=None, help="classifier export (default: the recipe's eval.classifier)")
    ev.add_argument("--split", default="test", help="split of --data scored (default: test)")
    ev.add_argument("--per-class", type=int, default=100, help="conditional generators: samples generated per "
                                                               "class (default 100)")
    ev.add_argument("--real-images", type=int, default=5000, help="conditional generators: real images of --data "
                                                                  "compared with (the first N; default 5000)")
    ev.add_argument("--seed", type=int, default=0, help="seed of the noise and codes sampled")
    _device_flag(ev)
    fid = ev.add_argument_group("FID/KID of any generator (pip install 'i2i[fid]'; the standard Inception weights "
                                "from a local file, never downloaded)")
    fid.add_argument("--fid", default=None, metavar="REAL_DIR",
                     help="score FID and KID against the images of this folder (a translator's target domain) "
                          "instead of the export's own figures")
    fid.add_argument("--fid-samples", type=int, default=10000, metavar="N",
                     help="images generated (translators: at most N inputs; default 10000)")
    fid.add_argument("--fid-input", default=None, metavar="DIR",
                     help="translators: source-domain images (default: the recipe's data.root/testA or test/A; "
                          "testB or test/B for --direction BtoA)")
    fid.add_argument("--direction", default=None, help="translators: AtoB or BtoA (default: the first)")
    fid.add_argument("--fid-size", type=int, default=None, metavar="PX",
                     help="translators: inputs resized (shorter side) and centre-cropped to PX (default: data.size)")
    fid.add_argument("--fid-real-images", type=int, default=None, metavar="N",
                     help="the first N real images by name (default: all)")
    fid.add_argument("--fid-weights", default=None, metavar="FILE",
                     help="Inception weights (pt_inception-2015-12-05; default $I2I_INCEPTION_WEIGHTS, then the "
                          "torch hub cache); 'random': untrained, for pipeline checks only")
    _trust_flags(ev)
    ev.set_defaults(func=cmd_eval)

    cl = sub.add_parser("classifier", help="train the evaluation classifier on labeled data",
                        description="Train a small CNN on the train split of DATA (class folders or .npz) and save "
                                    "it as an export for `i2i eval` and recipes' eval.classifier. An attribute "
                                    "table DATA/train.csv (file,<attr>,... with 0/1 values) trains a multi-label "
                                    "classifier (one output per attribute, binary cross-entropy) scored per "
                                    "attribute on DATA/test.csv. Last line: JSON.")
    cl.add_argument("data", help="labeled data: class folders (DATA/train/<class>/*.png), an MNIST-style .npz, or "
                                 "an attribute table DATA/train.csv (multi-label)")
    cl.add_argument("--output", "-o", required=True, help="export folder for the trained classifier")
    cl.add_argument("--channels", type=int, default=1, help="image channels the classifier reads (default 1)")
    cl.add_argument("--size", type=int, default=32, help="images are resized to SIZE x SIZE px (default 32)")
    cl.add_argument("--steps", type=int, default=600, help="training steps (default 600)")
    cl.add_argument("--batch-size", type=int, default=128, help="images per step (default 128)")
    cl.add_argument("--seed", type=int, default=0, help="seed of the weights and the batches")
    cl.add_argument("--labels-per-class", type=int, default=None,
                    help="train on this many labeled images per class only: the subset a recipe with the same "
                         "data.labels_per_class and data.label_seed uses (SGAN's supervised baseline)")
    cl.add_argument("--labeled-fraction", type=float, default=None,
                    help="train on this fraction of each class only (as data.labeled_fraction)")
    cl.add_argument("--label-seed", type=int, default=0, help="seed that picks the labeled subset (data.label_seed)")
    cl.add_argument("--base-channels", type=int, default=32, help="image_classifier's width (default 32)")
    cl.add_argument("--feature-dim", type=int, default=128, help="image_classifier's feature size (default 128)")
    _device_flag(cl)
    cl.set_defaults(func=cmd_classifier)

    cf = sub.add_parser("classify", help="predict the class of every image in a folder with a classifier export",
                        description="Classify every image under --input (recursive) with a classifier export (an "
                                    "sgan run's D, or `i2i classifier`'s net) and write a CSV: file (relative to "
                                    "--input), class, class_index, confidence (softmax over the real classes). "
                                    "Unreadable images are left out with a warning. Last line: JSON.")
    cf.add_argument("export", help="export folder, or a run folder holding export/")
    cf.add_argument("--input", "-i", required=True, help="folder of images")
    cf.add_argument("--output", "-o", default="predictions.csv", help="CSV file written (default predictions.csv)")
    cf.add_argument("--batch-size", type=int, default=256, help="images per forward pass (default 256)")
    _device_flag(cf)
    _trust_flags(cf)
    cf.set_defaults(func=cmd_classify)

    rp = sub.add_parser("report", help="write RUN/report.html and RUN/curves.png: curves, samples, warnings",
                        description="Write RUN/report.html, one page that opens from disk (no server, no network): "
                                    "the recipe at a glance, every scalar of log.jsonl as curves grouped (G, D, "
                                    "health, eval, learning rates, images/s), the health warnings at their steps, "
                                    "the eval figures with the best step, every sample grid newest first, the "
                                    "checkpoints and exports. Also RUN/curves.png. The trainer refreshes both at "
                                    "each sample interval and at the end (train.report). Last line: JSON.")
    rp.add_argument("run", help="run folder (train.output_dir, or runs/<recipe name>)")
    rp.set_defaults(func=cmd_report)

    r = sub.add_parser("recipes", help="list registered components and bundled recipes",
                       description="List every registered model, net, loss, data set, optimizer and schedule, "
                                   "and the recipes bundled with i2i (train or check one by name: "
                                   "i2i train cyclegan, i2i check demo/pix2pix).")
    r.add_argument("--folder", default="recipes", help="also list the recipe files in this folder (default: "
                                                       "./recipes, where it is not the bundled set)")
    r.set_defaults(func=cmd_recipes)
    return p


def _parse(argv: list[str] | None) -> argparse.Namespace:
    """The command line; overrides may also follow an option (``train r.yaml --resume latest optim.g.lr=0.1``),
    which argparse alone refuses once the positional list has been taken."""
    p = parser()
    args, extra = p.parse_known_args(argv)
    if extra and hasattr(args, "overrides") and all("=" in e and not e.startswith("-") for e in extra):
        args.overrides = [*args.overrides, *extra]
    elif extra:
        p.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="i2i: %(message)s")
    if not args.verbose:  # Accelerate logs every file it saves at INFO
        logging.getLogger("accelerate").setLevel(logging.WARNING)
    try:
        return args.func(args)
    except I2IError as exc:
        if args.verbose:  # the chain behind the message (a plug-in's own error, say) for whoever debugs it
            traceback.print_exception(exc, file=sys.stderr)
        print(f"i2i: error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)
    except KeyboardInterrupt:
        print("i2i: interrupted", file=sys.stderr)
        return 130
    except Exception:  # noqa: BLE001  last resort: what no check foresaw is a bug; show what a report needs
        traceback.print_exc(file=sys.stderr)
        print("i2i: internal error (a bug in i2i or a plug-in, not a problem you can fix in the recipe); please "
              "report it with the traceback above", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())


def main_entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
