"""Ground-truth recovery on the demo study: do the selected style dimensions act on the planted pathology or
on the planted shortcut?

Pipeline on held-out phantoms (drawn like the training data, shortcut included): project every phantom into
StyleSpace, sweep every dimension, select dimensions, and for each selected (or top-ranked) dimension perturb
every image in the dimension's direction and measure

* where the image changes: the share of the absolute change |G(S^d) - G(S)| that falls inside the planted
  opacity mask (positives only), inside the lung field, and inside the lung bases (the lower half of the lung
  field), and how spread out the change is (the fraction of pixels carrying 90% of it);
* what the change does to two probes trained on shortcut-neutral phantoms: a *pathology probe* (opacity
  present?) and a *shortcut probe* (portable AP acquisition?). A dimension acts on the pathology when it moves
  the pathology probe, on the shortcut when it moves the shortcut probe.

Verdicts (thresholds on the mean absolute probe change over images): "pathology" if the pathology probe moves
by >= 0.1 and at least twice as much as the shortcut probe, "shortcut" in the opposite case, "both" if both move
by >= 0.1, else "other" (global or image-quality changes the probes do not read).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..device import module_device
from ..files import atomic_torch_save
from ..projection import ProjectionConfig, fidelity_summary, project_images
from ..ranges import StyleRanges, estimate_style_ranges
from ..selection import AGGREGATES, DimensionEffect, Selection, SelectionConfig, select_dimensions
from ..sweep import SweepConfig, open_deltas, sweep_deltas
from .cases import HELDOUT_SEED
from .phantoms import PhantomDataset, make_phantom, make_phantom_dataset

ProgressFn = Callable[[int, int, str], None]


@dataclass
class DimensionTruth:
    dim: int
    layer: str
    channel: int
    effect: float
    direction: str
    selected: bool
    share_in_opacity: float  # mean over positives of the change share inside the opacity mask
    opacity_area: float  # mean area of the opacity mask (the share a uniform change would have)
    share_in_lungs: float
    share_in_bases: float
    spread: float  # fraction of pixels holding 90% of the change
    pathology_probe_change: float  # mean |delta| of the pathology probe
    shortcut_probe_change: float
    classifier_change: float  # mean signed change of the classifier in the dimension's direction
    verdict: str


@dataclass
class ValidationReport:
    num_images: int
    selected: int
    dims: int
    rows: list[DimensionTruth]
    fidelity: dict
    probes: dict
    shortcut_reliance: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def found(self) -> dict[str, list[int]]:
        """Selected dimensions whose verdict is pathology or shortcut ("both" counts for each)."""
        return {
            kind: [r.dim for r in self.rows if r.selected and r.verdict in (kind, "both")]
            for kind in ("pathology", "shortcut")
        }

    @property
    def expectation_met(self) -> bool:
        """The issue's expectation: a pathology dimension and a shortcut dimension are both selected."""
        found = self.found
        return bool(found["pathology"] and found["shortcut"])

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1, default=float)


def _relabel(ds: PhantomDataset, labels: np.ndarray) -> PhantomDataset:
    return dataclasses.replace(ds, labels=np.asarray(labels, np.int64))


def train_probes(
    size: int, *, n_train: int = 2000, epochs: int = 4, seed: int = 77, cache: str | Path | None = None
) -> dict:
    """Two demo-architecture CNNs trained on shortcut-neutral phantoms: ``pathology`` (opacity present) and
    ``shortcut`` (portable AP). Returns {"pathology": model, "shortcut": model, "metrics": {...}}.

    With ``cache`` (a file path) the trained probes are saved there and loaded on the next call with the same
    settings instead of being trained again."""
    from .classifier import DemoClassifier
    from .training.classifier import train_classifier

    settings = {"size": size, "n_train": n_train, "epochs": epochs, "seed": seed}
    if cache is not None and Path(cache).exists():
        saved = torch.load(cache, weights_only=True)
        if saved["settings"] == settings:
            probes: dict = {"metrics": saved["metrics"]}
            for kind in ("pathology", "shortcut"):
                model = DemoClassifier()
                model.load_state_dict(saved[kind])
                probes[kind] = model.eval().requires_grad_(False)
            return probes

    train = make_phantom_dataset(n_train, size=size, seed=seed, split="neutral")
    val = make_phantom_dataset(400, size=size, seed=seed + 1, split="neutral")
    patho, m1 = train_classifier(train, val, epochs=epochs)
    short, m2 = train_classifier(
        _relabel(train, train.shortcut_present), _relabel(val, val.shortcut_present), epochs=epochs
    )
    metrics = {"pathology_auroc": m1["val"]["auroc"], "shortcut_auroc": m2["val"]["auroc"]}
    if cache is not None:
        atomic_torch_save(
            {
                "settings": settings,
                "metrics": metrics,
                "pathology": patho.state_dict(),
                "shortcut": short.state_dict(),
            },
            Path(cache),
        )
    return {"pathology": patho, "shortcut": short, "metrics": metrics}


@torch.no_grad()
def shortcut_reliance(classifier, size: int, *, n: int = 150, seed: int = 5) -> dict:
    """How far the classifier moves when only the shortcut factor changes: ``n`` neutral phantoms rendered twice,
    with the portable AP look on and off, everything else equal. This bounds what a single style dimension acting
    on the shortcut can do to the classifier's score."""
    on, off = [], []
    for i in range(n):
        on.append(make_phantom(seed, index=i, size=size, split="neutral", portable_ap=True).image)
        off.append(make_phantom(seed, index=i, size=size, split="neutral", portable_ap=False).image)

    def probs(images):
        x = torch.from_numpy(np.stack(images)).float().unsqueeze(1) * 2 - 1
        return classifier(x).float().cpu().numpy()

    change = probs(on) - probs(off)
    return {
        "phantoms": n,
        "mean_change": float(change.mean()),
        "mean_abs_change": float(np.abs(change).mean()),
        "fraction_abs_change_at_least_0.3": float((np.abs(change) >= 0.3).mean()),
        "fraction_abs_change_at_least_0.1": float((np.abs(change) >= 0.1).mean()),
    }


def _change_statistics(delta: np.ndarray, opacity: np.ndarray, lungs: np.ndarray, labels: np.ndarray) -> dict:
    """delta, masks: [N, H, W]; returns mean shares over images."""
    total = delta.reshape(len(delta), -1).sum(1) + 1e-12
    in_lungs = (delta * lungs).reshape(len(delta), -1).sum(1) / total
    h = lungs.shape[1]
    rows = np.arange(h)[None, :, None]
    lung_rows = np.where(lungs.any(2), np.arange(h)[None, :], np.nan)
    mid = np.nanmean(lung_rows, axis=1)[:, None, None]
    bases = lungs & (rows >= mid)
    in_bases = (delta * bases).reshape(len(delta), -1).sum(1) / total
    pos = labels == 1
    in_opacity = ((delta * opacity).reshape(len(delta), -1).sum(1) / total)[pos]
    flat = np.sort(delta.reshape(len(delta), -1), axis=1)[:, ::-1]
    cum = np.cumsum(flat, axis=1) / total[:, None]
    spread = (np.argmax(cum >= 0.9, axis=1) + 1) / flat.shape[1]
    return {
        "share_in_opacity": float(in_opacity.mean()) if pos.any() else float("nan"),
        "opacity_area": float(opacity[pos].reshape(pos.sum(), -1).mean()) if pos.any() else float("nan"),
        "share_in_lungs": float(in_lungs.mean()),
        "share_in_bases": float(in_bases.mean()),
        "spread": float(spread.mean()),
    }


def verdict(pathology: float, shortcut: float, *, threshold: float = 0.1) -> str:
    if pathology >= threshold and shortcut >= threshold:
        return (
            "both"
            if max(pathology, shortcut) < 2 * min(pathology, shortcut)
            else ("pathology" if pathology > shortcut else "shortcut")
        )
    if pathology >= threshold:
        return "pathology"
    if shortcut >= threshold:
        return "shortcut"
    return "other"


@torch.no_grad()
def measure_dimensions(
    G,
    classifier,
    styles: torch.Tensor,
    ranges_low: torch.Tensor,
    ranges_high: torch.Tensor,
    selection: Selection,
    dataset: PhantomDataset,
    probes: dict,
    *,
    top: int = 10,
    batch_size: int = 32,
    also: Sequence[DimensionEffect] = (),
) -> list[DimensionTruth]:
    """Perturb every image in each reported dimension's direction and measure where and what it changes.

    The reported dimensions are the selected ones, at least the ``top`` strongest, then those of ``also`` not
    among them (e.g. the strongest under another aggregate)."""
    effects = selection.selected or selection.ranking[:top]
    if len(effects) < top:
        extra = [e for e in selection.ranking if not e.selected][: top - len(effects)]
        effects = list(effects) + extra
    effects = list(effects)
    seen = {e.dim for e in effects}
    for e in also:
        if e.dim not in seen:
            seen.add(e.dim)
            effects.append(e)
    opacity = dataset.opacity_masks.astype(np.float64)
    lungs = dataset.lung_masks.astype(bool)
    rows = []
    styles = styles.to(module_device(G))
    base_imgs = torch.cat(
        [
            G.synthesize_from_styles(styles[i : i + batch_size]).clamp(-1, 1)
            for i in range(0, len(styles), batch_size)
        ]
    )

    def probs(model, imgs):
        return torch.cat([model(imgs[i : i + 128]) for i in range(0, len(imgs), 128)])

    base_p = {k: probs(probes[k], base_imgs) for k in ("pathology", "shortcut")}
    base_c = probs(classifier, base_imgs)
    for e in effects:
        value = (ranges_high if e.direction == "high" else ranges_low)[e.dim]
        s2 = styles.clone()
        s2[:, e.dim] = value
        pert = torch.cat(
            [
                G.synthesize_from_styles(s2[i : i + batch_size]).clamp(-1, 1)
                for i in range(0, len(s2), batch_size)
            ]
        )
        delta = ((pert - base_imgs).abs()[:, 0] / 2).cpu().numpy()
        st = _change_statistics(delta, opacity, lungs, dataset.labels)
        dp = float((probs(probes["pathology"], pert) - base_p["pathology"]).abs().mean())
        ds = float((probs(probes["shortcut"], pert) - base_p["shortcut"]).abs().mean())
        dc = float((probs(classifier, pert) - base_c).mean())
        rows.append(
            DimensionTruth(
                dim=e.dim,
                layer=e.layer,
                channel=e.channel,
                effect=e.effect,
                direction=e.direction,
                selected=e.selected,
                pathology_probe_change=dp,
                shortcut_probe_change=ds,
                classifier_change=dc,
                verdict=verdict(dp, ds),
                **st,
            )
        )
    return rows


PROJECTION_CHUNK = 16  # phantoms projected and saved together


def _run_key(G, classifier, config: ProjectionConfig) -> str:
    """A short fingerprint of the models' weights and the projection settings: the cached projection and sweep
    live in folders named with it, so a retrained model or a changed default is never mixed with old results."""
    h = hashlib.sha256(json.dumps(dataclasses.asdict(config), sort_keys=True).encode())
    for model in (G, classifier):
        for name, tensor in sorted(model.state_dict().items()):
            h.update(name.encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:10]


def _project_in_chunks(
    ds, G, D, classifier, ranges, folder: Path, config: ProjectionConfig, progress_fn
) -> tuple:
    """Project the phantoms ``PROJECTION_CHUNK`` at a time, saving each chunk as it finishes, so an interrupted
    run resumes where it stopped. Returns (styles [N, D], fidelity summary with per-image lists)."""
    folder.mkdir(parents=True, exist_ok=True)
    x = torch.from_numpy(ds.images_float()).unsqueeze(1) * 2 - 1
    n = len(x)
    chunks = []
    for start in range(0, n, PROJECTION_CHUNK):
        stop = min(start + PROJECTION_CHUNK, n)
        path = folder / f"{start:05d}-{stop:05d}.pt"
        if not path.exists():

            def say(d, t, m, start=start, stop=stop):
                if progress_fn:
                    progress_fn(1, 5, f"projecting phantoms {start + 1}-{stop} of {n}: {m}")

            res = project_images(
                x[start:stop],
                G,
                classifier=classifier,
                D=D,
                init_styles=ranges.mean,
                config=config,
                progress_fn=say,
            )
            chunk = {
                "styles": res.styles,
                "psnr": res.psnr,
                "ssim": res.ssim,
                "prob_original": res.prob_original,
                "prob_reconstruction": res.prob_reconstruction,
                "seconds": torch.tensor(res.seconds),
                "perceptual_kind": res.perceptual_kind,
            }
            atomic_torch_save(chunk, path)
        chunks.append(torch.load(path, weights_only=True))
    joined = {key: torch.cat([c[key] for c in chunks]) for key in ("styles", "psnr", "ssim")}
    p_orig = torch.cat([c["prob_original"] for c in chunks])
    p_rec = torch.cat([c["prob_reconstruction"] for c in chunks])
    fidelity = {
        **fidelity_summary(joined["psnr"], joined["ssim"], p_orig, p_rec),
        "perceptual_kind": chunks[0]["perceptual_kind"],
        "steps": config.steps,
        "lr": config.lr,
        "seconds": float(sum(float(c["seconds"]) for c in chunks)),
        "prob_original": p_orig.tolist(),
        "prob_reconstruction": p_rec.tolist(),
        "psnr": joined["psnr"].tolist(),
        "ssim": joined["ssim"].tolist(),
    }
    return joined["styles"], fidelity


def validate_demo(
    G,
    D,
    classifier,
    out_dir: str | Path,
    *,
    num_images: int = 200,
    projection_steps: int = 500,
    sweep_mode: str = SweepConfig.mode,
    aggregate: str = SelectionConfig.aggregate,
    delta: float = SelectionConfig.delta,
    strongest_k: int | None = SelectionConfig.strongest_k,
    top: int = 10,
    ranges_samples: int = 100_000,
    probe_epochs: int = 4,
    stream: int = HELDOUT_SEED,
    progress_fn: ProgressFn | None = None,
) -> ValidationReport:
    """Run the whole ground-truth check; intermediate results (ranges, styles, sweep, probes) are cached in
    ``out_dir`` so an interrupted run resumes.

    ``stream``: the phantom stream (seed) of the held-out phantoms; any stream the models were not trained on
    gives fresh phantoms drawn the same way."""
    t0 = time.time()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    size = G.img_resolution

    def say(step, msg):
        if progress_fn:
            progress_fn(step, 5, msg)

    config = ProjectionConfig(steps=projection_steps)
    key = _run_key(G, classifier, config)
    ranges_path = out / f"ranges-{ranges_samples}-samples-{key}.pt"
    if ranges_path.exists():
        ranges = StyleRanges.load(ranges_path)
    else:
        say(0, "style ranges")
        ranges = estimate_style_ranges(G, num_samples=ranges_samples, batch_size=1000)
        ranges.save(ranges_path)
    ds = make_phantom_dataset(num_images, size=size, seed=stream, split="val")
    # The default stream keeps the folder names of earlier runs; other streams get their own folders.
    tag = key if stream == HELDOUT_SEED else f"{key}-stream-{stream}"
    styles, fidelity = _project_in_chunks(
        ds,
        G,
        D,
        classifier,
        ranges,
        out / f"projection-{projection_steps}-steps-{tag}",
        config,
        progress_fn,
    )
    say(2, "sweeping")
    sweep_dir = out / f"sweep-{sweep_mode}-{num_images}-images-{projection_steps}-steps-{tag}"
    sweep_deltas(
        G,
        classifier,
        styles,
        ranges,
        config=SweepConfig(mode=sweep_mode),
        out_dir=sweep_dir,
        progress_fn=(lambda d, t, m: progress_fn(2, 5, f"sweeping: {d}/{t} ({m})")) if progress_fn else None,
    )
    deltas, _, _ = open_deltas(sweep_dir)
    selection = select_dimensions(
        np.asarray(deltas), G.style_layout, aggregate=aggregate, delta=delta, strongest_k=strongest_k
    )
    say(3, "training probes")
    probes = train_probes(size, epochs=probe_epochs, cache=out / f"probes-{size}px-{probe_epochs}-epochs.pt")
    say(4, "measuring dimensions")
    # The strongest dimensions under the other aggregates are measured too, so that one run tells what each
    # aggregate would find.
    others = [
        select_dimensions(np.asarray(deltas), G.style_layout, aggregate=other, delta=delta).ranking[:top]
        for other in AGGREGATES
        if other != aggregate and other != "mean_raise"
    ]
    rows = measure_dimensions(
        G,
        classifier,
        styles,
        ranges.minimum,
        ranges.maximum,
        selection,
        ds,
        probes,
        top=top,
        also=[e for ranking in others for e in ranking],
    )
    report = ValidationReport(
        num_images=num_images,
        selected=len(selection.selected),
        dims=G.style_layout.dims,
        rows=rows,
        fidelity={k: v for k, v in fidelity.items() if not isinstance(v, list)},
        probes=probes["metrics"],
        shortcut_reliance=shortcut_reliance(classifier, size),
        settings={
            "projection_steps": projection_steps,
            "sweep_mode": sweep_mode,
            "aggregate": aggregate,
            "delta": delta,
            "strongest_k": strongest_k,
            "stream": stream,
        },
        seconds=time.time() - t0,
    )
    (out / "validation.json").write_text(report.to_json())
    say(5, "done")
    return report


def markdown_table(report: ValidationReport) -> str:
    head = (
        "| dim | layer | ch | effect | dir | selected | in opacity (area) | in lungs | in bases | spread | "
        "pathology probe | shortcut probe | classifier | verdict |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = [
        f"| {r.dim} | {r.layer} | {r.channel} | {r.effect:.3f} | {r.direction} | {'yes' if r.selected else 'no'} | "
        f"{r.share_in_opacity:.2f} ({r.opacity_area:.2f}) | {r.share_in_lungs:.2f} | {r.share_in_bases:.2f} | "
        f"{r.spread:.2f} | {r.pathology_probe_change:.3f} | {r.shortcut_probe_change:.3f} | "
        f"{r.classifier_change:+.3f} | {r.verdict} |"
        for r in report.rows
    ]
    return head + "\n".join(lines) + "\n"
