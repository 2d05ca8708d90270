"""Compare the counterfactual generators and saliency baselines on held-out demo phantoms.

For N held-out phantoms (``neutral`` split: the shortcut is independent of the label) at the generator's
resolution, every method is asked for a criticism: the class the demo classifier does *not* decide for. The
table reports per method (means over the images):

* flip rate: share of counterfactuals the classifier assigns to the target class (not for saliency maps);
* dP(target): mean change of the target-class probability;
* L1 and SSIM to the query (proximity);
* opacity / lung: share of the explanation map (the edit, or the heatmap) inside the planted opacity (over the
  phantoms that have one) and inside the lung field (locality);
* D(x'): the StyleGAN2 discriminator's score of the counterfactual (higher = more real), and the same for the
  queries as a reference line; loss est.: the classifier's loss-estimator value (lower = more typical);
* COUT: the pixel-swap curve score; s/image: wall time per image;
* oracle flip, agreement, oracle dP(target): the verdict of a second, independently trained classifier (the
  oracle, ``--oracle``, by default the demo's ``oracle_classifier.pt``) on the same counterfactuals: the share it
  assigns to the target class, the share on which it decides like the demo classifier, and its mean change of
  the target-class probability (``explain_engine.counterfactuals.oracle``);
* split FID: the FID between the oracle's penultimate features of one half of the counterfactuals and of the
  other half of the queries, averaged over both pairings (``explain_engine.metrics.fid.split_fid``), with the
  same split of the queries against each other as the reference line.

Projection into StyleSpace is run once per phantom and shared by ``stylespace`` and ``gci``.

    .venv/bin/python bench/generators.py [--n 50] [--quick] [--write-docs] [--classifier demo]
        [--generator explain_engine/assets/demo/generator.pt] [--ranges ranges.pt] [--threads 1]
        [--oracle explain_engine/assets/demo/oracle_classifier.pt] [--methods a,b] [--reverse] [--out DIR]

``--quick`` uses 4 phantoms and short optimisations (a smoke test of the pipeline, not numbers to quote).
``--write-docs`` replaces the table in docs/generators.md. Per-image metrics go to ``--out`` as JSON, in chunks
of ``--chunk`` images saved as they finish: an interrupted run, started again with the same settings, skips the
finished chunks (and the saved projection) and reports the wall time each chunk took when it ran. Each chunk
keeps its counterfactual images (``.npz`` beside its ``.json``), so the oracle columns are computed from them
when the table is made (no method reruns for another oracle); the oracle's and the demo classifier's
penultimate features of every query and counterfactual go to ``features.npz`` in ``--out`` (row i = phantom
i), from which the split FID can be recomputed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from explain_engine.autoencoder import DEMO_AUTOENCODER_PATH
from explain_engine.checkpoints import CheckpointError, load_autoencoder, load_discriminator, load_generator
from explain_engine.classifiers import DEMO_CLASSIFIER_PATH, ClassifierError, load_classifier
from explain_engine.counterfactuals import generate_batch
from explain_engine.counterfactuals.base import ClampedInput
from explain_engine.counterfactuals.oracle import (
    DEMO_ORACLE_PATH,
    load_oracle,
    oracle_features,
    oracle_metrics,
)
from explain_engine.demo.phantoms import make_phantom_dataset
from explain_engine.metrics import fidelity
from explain_engine.metrics.fid import split_fid
from explain_engine.metrics.fidelity import default_perceptual
from explain_engine.metrics.gan import classifier_features
from explain_engine.projection import ProjectionConfig, fidelity_summary, project_images
from explain_engine.ranges import StyleRanges, estimate_style_ranges

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "generators.md"
TABLE_START = "<!-- generators-table:start -->"
TABLE_END = "<!-- generators-table:end -->"
HELD_OUT_SEED = 11  # a phantom stream that neither the demo classifier (100-103) nor the demo GAN (0) saw
FID_SPLIT_SEED = 0  # the seeded split of the phantoms into the two halves of the split FID

# (row name, method, options at full settings, options with --quick)
METHODS = [
    ("StyleSpace, one dimension (papers/003)", "stylespace", {}, {"screening_top_k": 16}),
    # GCI at its defaults (100 steps per lambda trial, bisection to 5 %) costs about 11 trials x 100 steps per
    # batch; on a 2-core CPU the table uses 50 steps per trial and stops bisecting at 25 %.
    (
        "GCI in S, 50 steps per lambda (papers/002)",
        "gci",
        {"steps": 50, "tolerance": 0.25},
        {"steps": 20, "max_bracket_steps": 2, "bisection_steps": 2},
    ),
    # The paper's alpha = 0.02 barely moves the demo classifier within CPU-sized step counts (docs/generators.md);
    # both DIP rows use alpha = 0.2 so that the comparison with and without the estimator is between
    # counterfactuals that do change the decision.
    (
        "DIP + loss estimator, alpha 0.2 (papers/000)",
        "dip",
        {"entropy_weight": 0.2},
        {
            "entropy_weight": 0.2,
            "pixel_warmup_steps": 30,
            "preimage_steps": 10,
            "counterfactual_steps": 30,
            "lr_rampup_steps": 10,
        },
    ),
    (
        "DIP plain, alpha 0.2 (papers/000 baseline)",
        "dip",
        {"entropy_weight": 0.2, "loss_estimator_weight": 0.0},
        {
            "entropy_weight": 0.2,
            "loss_estimator_weight": 0.0,
            "pixel_warmup_steps": 30,
            "preimage_steps": 10,
            "counterfactual_steps": 30,
            "lr_rampup_steps": 10,
        },
    ),
    (
        "DISC, DIP prior (papers/001)",
        "disc",
        {"prior": "dip"},
        {"prior": "dip", "reconstruction_steps": 30, "stage_steps": 15, "lr_rampup_steps": 5},
    ),
    (
        "DISC, Fourier INR prior (papers/001)",
        "disc",
        {"prior": "inr"},
        {"prior": "inr", "reconstruction_steps": 30, "stage_steps": 15, "lr_rampup_steps": 5},
    ),
    ("Grad-CAM", "gradcam", {}, {}),
    ("Integrated gradients", "integrated_gradients", {}, {"steps": 8}),
    ("Latent Shift, demo autoencoder (Cohen et al. 2021)", "latentshift", {}, {"max_steps": 40}),
]
COUNTERFACTUAL_COLUMNS = ("reached_target", "target_probability_change", "l1", "ssim")


def _mean(values) -> float:
    v = [float(x) for x in values if x is not None and not math.isnan(float(x))]
    return sum(v) / len(v) if v else math.nan


def _fmt(value: float, digits: int = 3) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50, help="held-out phantoms [50]")
    parser.add_argument("--quick", action="store_true", help="4 phantoms, short optimisations")
    parser.add_argument(
        "--write-docs", action="store_true", help=f"write the table into {DOCS.relative_to(ROOT)}"
    )
    parser.add_argument("--classifier", default="demo", help="classifier spec [demo]")
    parser.add_argument(
        "--generator",
        default=str(ROOT / "explain_engine/assets/demo/generator.pt"),
        help="generator checkpoint (its D, when present, gives the realism column)",
    )
    parser.add_argument("--ranges", help="style-ranges file (estimated from random samples when absent)")
    parser.add_argument(
        "--autoencoder",
        default=str(DEMO_AUTOENCODER_PATH),
        help="autoencoder checkpoint of the latentshift row [the demo autoencoder]",
    )
    parser.add_argument(
        "--oracle",
        default=str(DEMO_ORACLE_PATH),
        help="the second classifier that judges the counterfactuals [the demo oracle]",
    )
    parser.add_argument("--projection-steps", type=int, default=300)
    parser.add_argument("--methods", help="comma-separated method names to run (default: all)")
    parser.add_argument("--seed", type=int, default=HELD_OUT_SEED, help=f"phantom stream [{HELD_OUT_SEED}]")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument(
        "--out",
        default=str(ROOT / "var/bench/generators"),
        help="results folder: finished chunks are kept there and skipped when the command is run again",
    )
    parser.add_argument("--chunk", type=int, default=5, help="images per saved chunk [5]")
    parser.add_argument("--fresh", action="store_true", help="discard the results kept in --out")
    parser.add_argument(
        "--reverse",
        action="store_true",
        help="work through the methods and their chunks last to first: a second process on the same --out "
        "meets the first one in the middle instead of repeating its chunks",
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    n = 4 if args.quick else args.n

    classifier = load_classifier(args.classifier)
    G = load_generator(args.generator)
    try:
        D = load_discriminator(args.generator)
    except CheckpointError:
        D = None
    size = G.img_resolution
    data = make_phantom_dataset(n, size=size, seed=args.seed, split="neutral")
    images = torch.from_numpy(data.images_float()).unsqueeze(1) * 2 - 1
    with torch.no_grad():
        probs = classifier(images)
    targets = (probs < 0.5).long().tolist()  # criticisms: the other class than the classifier's decision
    opacity = [m if m.any() else None for m in data.opacity_masks]
    print(
        f"{n} phantoms at {size}px (seed {args.seed}, neutral split), {int(data.labels.sum())} with opacity; "
        f"classifier {classifier.name}, generator {args.generator}",
        file=sys.stderr,
    )

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    run_key = {
        "n": n,
        "seed": args.seed,
        "size": size,
        "quick": args.quick,
        "projection_steps": 30 if args.quick else args.projection_steps,
        # every projection setting but the batch, so that a changed default is not mixed with old results
        "projection": {
            k: v for k, v in asdict(ProjectionConfig()).items() if k not in ("steps", "batch_size")
        },
        "generator": _sha256(args.generator),
        # the file's hash, not the name: a retrained demo classifier keeps its name
        "classifier": _sha256(DEMO_CLASSIFIER_PATH if args.classifier == "demo" else args.classifier)
        if args.classifier == "demo" or Path(args.classifier).is_file()
        else args.classifier,
        "ranges": _sha256(args.ranges) if args.ranges else "estimated",
        "autoencoder": _sha256(args.autoencoder) if Path(args.autoencoder).is_file() else "none",
    }
    key_file = out / "run.json"
    if key_file.exists() and json.loads(key_file.read_text()) != run_key:
        if not args.fresh:
            raise SystemExit(
                f"{out} holds results of other settings; pass --fresh to discard them or --out DIR"
            )
    if args.fresh:
        for stale in out.glob("chunks/*/*.json"):
            stale.unlink()
        for stale in out.glob("projection.pt"):
            stale.unlink()
    _atomic_write(key_file, json.dumps(run_key, indent=1))

    if args.ranges:
        ranges = StyleRanges.load(args.ranges)
    else:
        ranges = estimate_style_ranges(G, num_samples=2000 if args.quick else 20_000, seed=0)
    projection_steps = run_key["projection_steps"]
    projection_file = out / "projection.pt"
    projected: dict = {}

    def projection() -> dict:
        """Styles of the phantoms, projected once (saved for reruns) and shared by stylespace and gci."""
        if projected:
            return projected
        if projection_file.exists():
            projected.update(torch.load(projection_file, weights_only=True))
        else:
            t0 = time.time()
            result = project_images(
                images,
                G,
                classifier=ClampedInput(classifier),
                D=D,
                init_styles=ranges.mean,
                config=ProjectionConfig(steps=projection_steps),
                progress_fn=lambda d, t, m: print(f"  projection {d}/{t} {m}", file=sys.stderr, flush=True),
            )
            projected.update(styles=result.styles, seconds_per_image=(time.time() - t0) / n, psnr=result.psnr)
            tmp = projection_file.with_suffix(".tmp")
            torch.save(projected, tmp)
            tmp.replace(projection_file)
        projected["fidelity"] = projection_fidelity(projected["styles"])
        f = projected["fidelity"]
        print(
            f"projection: {projection_steps} steps, median PSNR {f['median_psnr']:.2f} dB, median SSIM "
            f"{f['median_ssim']:.3f}, |C(x) - C(G(S))| <= 0.1 for {f['prob_within_0.1']:.0%}, "
            f"{float(projected['seconds_per_image']):.1f} s/image",
            file=sys.stderr,
        )
        return projected

    def projection_fidelity(styles: torch.Tensor) -> dict:
        """The fidelity bar of the demo (docs/demo-models.md): reconstruction PSNR / SSIM and how far the
        classifier's probability moves, recomputed from the saved styles."""
        with torch.no_grad():
            recon = torch.cat([G.synthesize_from_styles(styles[i : i + 16]) for i in range(0, n, 16)]).clamp(
                -1, 1
            )
            p_rec = classifier(recon)
        summary = fidelity_summary(fidelity.psnr(recon, images), fidelity.ssim(recon, images), probs, p_rec)
        return {"steps": projection_steps, **summary}

    perceptual = default_perceptual(classifier)

    wanted = set(args.methods.split(",")) if args.methods else None
    rows, per_image, reference_values = [], {}, {"discriminator_logit": [], "loss_estimate": []}
    chunk_files: dict[str, list[Path]] = {}
    compute_seconds = 0.0
    for name, method, full, quick in reversed(METHODS) if args.reverse else METHODS:
        if wanted is not None and method not in wanted:
            continue
        options = quick if args.quick else full
        folder = out / "chunks" / _slug(name)
        folder.mkdir(parents=True, exist_ok=True)
        chunks = []
        starts = list(range(0, n, args.chunk))
        for start in reversed(starts) if args.reverse else starts:
            stop = min(start + args.chunk, n)
            path = folder / f"{start:04d}-{stop:04d}.json"
            images_path = path.with_suffix(".npz")
            if not (path.exists() and images_path.exists()):
                extra: dict = (
                    {"generator": G, "styles": projection()["styles"][start:stop], "ranges": ranges}
                    if method in ("stylespace", "gci")
                    else {}
                )
                if method == "latentshift":
                    extra["autoencoder"] = load_autoencoder(args.autoencoder)
                t0 = time.time()
                results = generate_batch(
                    images[start:stop],
                    classifier=classifier,
                    targets=targets[start:stop],
                    method=method,
                    discriminator=D,
                    lung_masks=list(data.lung_masks[start:stop]),
                    opacity_masks=opacity[start:stop],
                    perceptual=perceptual,
                    **extra,
                    **options,
                )
                chunk = {
                    "seconds": time.time() - t0,
                    "kind": results[0].kind,
                    "images": [
                        {
                            "index": start + i,
                            "label": int(data.labels[start + i]),
                            "target": r.target,
                            **r.metrics,
                            "details": {
                                k: v
                                for k, v in r.details.items()
                                if k not in ("lambda_trials", "loss_history", "stages")
                            },
                        }
                        for i, r in enumerate(results)
                    ],
                }
                # The images come first: a chunk counts as finished once its JSON is there.
                _save_images(images_path, torch.stack([r.counterfactual for r in results]))
                _atomic_write(path, json.dumps(chunk, indent=1, default=_json_default))
                print(
                    f"{name}: images {start}-{stop - 1}, {chunk['seconds'] / (stop - start):.1f} s/image",
                    file=sys.stderr,
                    flush=True,
                )
            chunks.append(json.loads(path.read_text()))
            chunk_files.setdefault(name, []).append(images_path)
        if args.reverse:
            chunks.reverse()
            chunk_files[name].reverse()
        metrics = [m for c in chunks for m in c["images"]]
        seconds = sum(c["seconds"] for c in chunks) / n
        compute_seconds += seconds * n
        if method in ("stylespace", "gci"):
            seconds += float(projection()["seconds_per_image"])
        row = {
            "name": name,
            "method": method,
            "saliency": chunks[0]["kind"] == "attribution",
            "seconds": seconds,
        }
        for key in (
            "reached_target",
            "target_probability_change",
            "l1",
            "ssim",
            "mass_in_opacity",
            "mass_in_lung",
            "discriminator_logit",
            "loss_estimate",
            "cout",
        ):
            row[key] = _mean(m.get(key) for m in metrics)
        rows.append(row)
        per_image[name] = metrics
        reference_values["discriminator_logit"] += [m.get("discriminator_logit_query") for m in metrics]
        reference_values["loss_estimate"] += [m.get("loss_estimate_query") for m in metrics]
        print(f"{name}: {seconds:.1f} s/image", file=sys.stderr)
    if args.reverse:
        rows.reverse()
    reference = {key: _mean(values) for key, values in reference_values.items()}
    oracle_info = oracle_columns(
        args.oracle, classifier, images, targets, rows, per_image, chunk_files, out / "features.npz"
    )
    oracle_name = oracle_info["name"] if oracle_info else None
    reference["split_fid"] = next(
        (r["split_fid_reference"] for r in rows if "split_fid_reference" in r), math.nan
    )

    table = markdown_table(rows, reference)
    if projected:
        compute_seconds += float(projected["seconds_per_image"]) * n
        print(f"fidelity: {json.dumps(projected['fidelity'])}")
    header = (
        f"{n} held-out phantoms ({size} px, seed {args.seed}, neutral split, {int(data.labels.sum())} with "
        f"an opacity), classifier `{classifier.name}`, generator `{Path(args.generator).name}`"
        f"{'' if D is not None else ' (no discriminator)'}, projection {projection_steps} steps, "
        f"{'--quick settings, ' if args.quick else ''}"
        f"{platform.machine()} with {os.cpu_count()} CPUs and {torch.get_num_threads()} torch threads, "
        f"{compute_seconds / 60:.0f} min of method time in all (summed over the saved chunks and the projection)"
        + (
            f"; oracle `{oracle_name}`, split FID on its penultimate features (halves of {n // 2} and "
            f"{n - n // 2}, split seed {FID_SPLIT_SEED})."
            if oracle_name
            else "; no oracle."
        )
    )
    print(header)
    print()
    print(table)
    (out / "metrics.json").write_text(
        json.dumps(
            {
                "header": header,
                "rows": rows,
                "reference": reference,
                "projection_fidelity": projected.get("fidelity"),
                "oracle": oracle_info,
                "per_image": per_image,
            },
            indent=1,
            default=_json_default,
        )
    )
    if args.write_docs:
        write_docs(header, table)
        print(f"written: {DOCS}", file=sys.stderr)
    return 0


def oracle_columns(
    oracle_path: str,
    classifier,
    images: torch.Tensor,
    targets: list[int],
    rows: list[dict],
    per_image: dict[str, list[dict]],
    chunk_files: dict[str, list[Path]],
    features_file: Path,
) -> dict | None:
    """Fill the oracle columns (per image and row means) and the split FID of every counterfactual row from
    the saved counterfactual images; write the penultimate features to ``features_file``. Returns the
    oracle's name and its agreement with the explained classifier on the queries, or None (columns left out,
    with a message) when it cannot be loaded."""
    try:
        oracle = load_oracle(oracle_path)
    except ClassifierError as exc:
        print(f"oracle columns left out: {exc}", file=sys.stderr)
        return None
    n = images.shape[0]
    with torch.no_grad():
        p_oracle, p_classifier = oracle(images).numpy(), classifier(images).numpy()
    query_agreement = float(((p_oracle >= 0.5) == (p_classifier >= 0.5)).mean())
    features = {
        "queries_oracle": oracle_features(oracle, images),
        "queries_classifier": classifier_features(classifier, images)[0],
        "targets": np.asarray(targets),
    }
    for row in rows:
        if row["saliency"]:
            continue
        files = chunk_files[row["name"]]
        if not all(f.exists() for f in files):
            print(f"{row['name']}: counterfactual images missing (older results); no oracle figures")
            continue
        counterfactuals = torch.cat([torch.from_numpy(np.load(f)["counterfactuals"]) for f in files])
        if counterfactuals.shape != images.shape:
            raise SystemExit(
                f"{row['name']}: saved counterfactuals {tuple(counterfactuals.shape)} do not fit"
            )
        verdicts = oracle_metrics(oracle, images, counterfactuals, targets, classifier=classifier)
        for entry, verdict in zip(per_image[row["name"]], verdicts, strict=True):
            entry.update(verdict)
        for key in ("oracle_reached_target", "oracle_target_probability_change", "oracle_agreement"):
            row[key] = _mean(v[key] for v in verdicts)
        # Of the counterfactuals the demo classifier assigns to the target class, the share the oracle confirms.
        row["oracle_confirmed"] = _mean(
            v["oracle_reached_target"]
            for v, m in zip(verdicts, per_image[row["name"]], strict=True)
            if m.get("reached_target") == 1
        )
        slug = _slug(row["name"])
        features[f"{slug}_oracle"] = oracle_features(oracle, counterfactuals)
        features[f"{slug}_classifier"] = classifier_features(classifier, counterfactuals)[0]
        result = split_fid(features[f"{slug}_oracle"], features["queries_oracle"], seed=FID_SPLIT_SEED)
        row["split_fid"] = result.value
        row["split_fid_pairings"] = list(result.pairings)
        row["split_fid_reference"] = result.reference
        row["split_fid_classifier"] = split_fid(
            features[f"{slug}_classifier"], features["queries_classifier"], seed=FID_SPLIT_SEED
        ).value
    tmp = features_file.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **features)
    tmp.replace(features_file)
    print(
        f"oracle {oracle.name}: decides like the classifier on {query_agreement:.0%} of the {n} queries; "
        f"features of the queries and of each method's counterfactuals in {features_file}",
        file=sys.stderr,
    )
    return {"name": oracle.name, "query_agreement": query_agreement}


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _slug(name: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in name.lower()).split())


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _save_images(path: Path, counterfactuals: torch.Tensor) -> None:
    """The chunk's counterfactuals ``[k, C, H, W]`` in [-1, 1] (the queries for saliency methods), so that
    figures of other models (the oracle, FID) can be computed from them later."""
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, counterfactuals=counterfactuals.detach().cpu().float().numpy())
    tmp.replace(path)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def markdown_table(rows: list[dict], reference: dict) -> str:
    """The comparison table in markdown; counterfactual columns show "–" for saliency maps."""
    lines = [
        "| method | flip rate | oracle flip | agreement | dP(target) | oracle dP(target) | L1 | SSIM | opacity "
        "| lung | D(x') | loss est. | split FID | COUT | s/image |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        cf = not r["saliency"]
        cells = [
            r["name"],
            _fmt(r["reached_target"], 2) if cf else "–",
            _fmt(r.get("oracle_reached_target", math.nan), 2) if cf else "–",
            _fmt(r.get("oracle_agreement", math.nan), 2) if cf else "–",
            _fmt(r["target_probability_change"]) if cf else "–",
            _fmt(r.get("oracle_target_probability_change", math.nan)) if cf else "–",
            _fmt(r["l1"]) if cf else "–",
            _fmt(r["ssim"]) if cf else "–",
            _fmt(r["mass_in_opacity"], 2),
            _fmt(r["mass_in_lung"], 2),
            _fmt(r["discriminator_logit"], 2) if cf else "–",
            _fmt(r["loss_estimate"], 2) if cf else "–",
            _fmt(r.get("split_fid", math.nan), 2) if cf else "–",
            _fmt(r["cout"], 2) if cf else "–",
            _fmt(r["seconds"], 1),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append(
        f"| queries (reference) | – | – | – | – | – | – | – | – | – | "
        f"{_fmt(reference['discriminator_logit'], 2)} | {_fmt(reference['loss_estimate'], 2)} | "
        f"{_fmt(reference.get('split_fid', math.nan), 2)} | – | – |"
    )
    return "\n".join(lines)


def write_docs(header: str, table: str) -> None:
    """Replace the text between the table markers of docs/generators.md."""
    text = DOCS.read_text()
    if TABLE_START not in text or TABLE_END not in text:
        raise SystemExit(f"{DOCS} lacks the markers {TABLE_START} ... {TABLE_END}")
    before, rest = text.split(TABLE_START, 1)
    _, after = rest.split(TABLE_END, 1)
    DOCS.write_text(f"{before}{TABLE_START}\n{header}\n\n{table}\n{TABLE_END}{after}")


if __name__ == "__main__":
    sys.exit(main())
