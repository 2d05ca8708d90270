"""CLI command ``counterfactual``: one query image explained by one method, written to a folder.

Run as ``python -m explain_engine counterfactual --help``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from .common import CLASSIFIER_HELP, TqdmProgress, add_device_argument, command

# The option that ``--steps`` sets for each method (its main optimisation length).
STEPS_OPTION = {
    "gci": "steps",
    "dip": "counterfactual_steps",
    "disc": "stage_steps",
    "integrated_gradients": "steps",
    "latentshift": "max_steps",
}


def _counterfactual_args(p: argparse.ArgumentParser) -> None:
    from ..counterfactuals import METHODS

    p.add_argument("image", help="the query image (PNG/JPEG/DICOM)")
    p.add_argument(
        "--method",
        required=True,
        choices=list(METHODS),
        help="stylespace (one clamped style dimension, papers/003), gci (latent optimisation with "
        "lambda bisection, papers/002), dip (deep image prior + loss estimator, papers/000), "
        "disc (deep inversion, papers/001), gradcam / integrated_gradients (saliency)",
    )
    p.add_argument("--classifier", required=True, help=CLASSIFIER_HELP)
    p.add_argument("--arch", help="torchvision architecture of a state-dict classifier")
    p.add_argument("--label", help="the classifier's label to explain (default: its own, e.g. Pneumonia)")
    p.add_argument(
        "--target",
        required=True,
        help="the target class: 1 (label present), 0 (absent), the label's name or 'no <label>'",
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--generator", help="StyleGAN2 checkpoint (.pkl or .pt); needed by stylespace and gci")
    p.add_argument(
        "--autoencoder",
        help="autoencoder checkpoint (.pt, network AE) for latentshift [the demo autoencoder]",
    )
    p.add_argument(
        "--discriminator",
        help="checkpoint holding D (often the generator's file): realism metric, projection term, "
        "DISC's discriminator manifold term",
    )
    p.add_argument("--ranges", help="style-ranges file (stylespace clamps; projection start)")
    p.add_argument(
        "--styles", help="projected styles .npy [N, D] (from `project`); else the image is projected"
    )
    p.add_argument("--style-index", type=int, default=0, help="row of --styles that belongs to IMAGE [0]")
    p.add_argument(
        "--size",
        type=int,
        help="side the image is resized to (default: the generator's resolution, else the "
        "classifier's input size, else the image's shorter side)",
    )
    p.add_argument("--lung-mask", help="lung-field mask image (white = lung) for the locality metrics")
    p.add_argument("--opacity-mask", help="opacity mask image (white = finding) for the locality metrics")
    p.add_argument(
        "--steps",
        type=int,
        help="main optimisation length: gci steps per lambda, dip counterfactual steps, disc steps "
        "per stage, integrated-gradients path points",
    )
    p.add_argument("--projection-steps", type=int, help="projection steps when no --styles are given")
    p.add_argument(
        "--dimension", type=int, help="stylespace: the style dimension to clamp (default: screened)"
    )
    p.add_argument("--direction", choices=["low", "high"], help="stylespace: the clamp direction")
    p.add_argument("--layer", help="dip: the inverted layer; gradcam: the explained layer")
    p.add_argument("--prior", choices=["dip", "inr"], help="disc: the image prior [dip]")
    p.add_argument(
        "--no-loss-estimator",
        action="store_true",
        help="dip: plain deep image prior inversion, without the loss-estimator term",
    )
    p.add_argument("--seed", type=int, help="dip / disc: seed of the prior")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any option of the method's config (repeatable), VALUE read as JSON when it parses "
        "(e.g. --set lambda_init=0.1 --set confidence_schedule=[0.6,0.9])",
    )
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    add_device_argument(p)


def _method_options(args: argparse.Namespace) -> dict:
    """The method's config options from the shortcut flags and ``--set KEY=VALUE``."""
    options: dict = {}
    if args.steps is not None:
        if args.method not in STEPS_OPTION:
            raise ValueError(f"--steps does not apply to {args.method}")
        options[STEPS_OPTION[args.method]] = args.steps
    flags = {
        "projection_steps": args.projection_steps,
        "dimension": args.dimension,
        "direction": args.direction,
        "layer": args.layer,
        "prior": args.prior,
        "seed": args.seed,
    }
    options.update({k: v for k, v in flags.items() if v is not None})
    if args.no_loss_estimator:
        options["loss_estimator_weight"] = 0.0
    for item in args.set:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        options[key.strip()] = tuple(value) if isinstance(value, list) else value
    return options


def _read_mask(path: str, size: int) -> np.ndarray:
    """A mask image -> bool [size, size], centre-cropped and resized like the query (nearest neighbour)."""
    from PIL import Image

    with Image.open(path) as img:
        grey = np.asarray(img.convert("L"))
    h, w = grey.shape
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    crop = Image.fromarray(grey[top : top + side, left : left + side])
    return np.asarray(crop.resize((size, size), Image.Resampling.NEAREST)) >= 128


@command(
    "counterfactual",
    "explain one image with a counterfactual (or saliency) method; writes the "
    "counterfactual, the path GIF and a metrics JSON",
    _counterfactual_args,
)
def _counterfactual(args: argparse.Namespace) -> int:
    from ..autoencoder import DEMO_AUTOENCODER_PATH
    from ..checkpoints import CheckpointError, load_autoencoder, load_discriminator, load_generator
    from ..classifiers import ClassifierError, load_classifier
    from ..counterfactuals import CounterfactualError, generate, save_result
    from ..images import ImageReadError, read_radiograph, resize_square, to_tensor
    from ..ranges import StyleRanges

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        options = _method_options(args)
        device = args.device
        classifier = load_classifier(args.classifier, target=args.label, arch=args.arch, device=device)
        G = load_generator(args.generator, device=device) if args.generator else None
        D = load_discriminator(args.discriminator, device=device) if args.discriminator else None
        ranges = StyleRanges.load(args.ranges) if args.ranges else None
        AE = None
        if args.method == "latentshift":
            AE = load_autoencoder(args.autoencoder or DEMO_AUTOENCODER_PATH, device=device)
        size = args.size or (G.img_resolution if G is not None else None)
        size = size or (AE.img_resolution if AE is not None else None)
        input_size = getattr(classifier, "input_size", None)
        size = size or (input_size[0] if input_size else None)
        pixels = read_radiograph(args.image).pixels
        size = size or min(pixels.shape)
        image = to_tensor(resize_square(pixels, size), channels=G.img_channels if G is not None else 1)[0]
        styles = None
        if args.styles:
            table = np.load(args.styles)
            if table.ndim != 2 or not 0 <= args.style_index < table.shape[0]:
                raise ValueError(
                    f"--styles must be [N, D] with row {args.style_index}; got shape {table.shape}"
                )
            styles = torch.from_numpy(table[args.style_index]).float()
        lung = _read_mask(args.lung_mask, size) if args.lung_mask else None
        opacity = _read_mask(args.opacity_mask, size) if args.opacity_mask else None
        bar = TqdmProgress(args.method, unit="‰")
        try:
            result = generate(
                image,
                classifier=classifier,
                target=args.target,
                method=args.method,
                generator=G,
                discriminator=D,
                styles=styles,
                ranges=ranges,
                autoencoder=AE,
                lung_mask=lung,
                opacity_mask=opacity,
                progress_fn=bar,
                **options,
            )
        finally:
            bar.close()
    except (CounterfactualError, ClassifierError, CheckpointError, ImageReadError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    files = save_result(result, Path(args.out))
    m = result.metrics
    print(f"method: {result.method} ({result.kind})")
    print(f"target: {result.target} ({'' if result.target else 'no '}{result.label})")
    print(
        f"probability of {result.label}: query {result.query_probability:.4f} -> counterfactual "
        f"{result.probability:.4f}"
    )
    print(f"reached target: {'yes' if result.reached_target else 'no'}")
    for key in (
        "l1",
        "ssim",
        "perceptual",
        "mass_in_lung",
        "mass_in_opacity",
        "discriminator_logit",
        "loss_estimate",
        "cout",
        "seconds",
    ):
        value = m.get(key, float("nan"))
        if value == value:  # not NaN
            print(f"{key}: {value:.4f}")
    for name, path in files.items():
        print(f"written {name}: {path}")
    return 0
