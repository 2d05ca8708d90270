"""The one place where ``explain_engine`` meets the app: models loaded for a study, engine results turned into
files under MEDIA_ROOT and into the field values of rows.

Functions here load, compute and write files; they never save rows. The services of each area call them and
write the rows, so a file always exists before the row that points at it is committed.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from django.conf import settings
from PIL import Image, ImageDraw

from explain_engine import images as engine_images
from explain_engine.checkpoints import CheckpointError, load_discriminator, load_generator
from explain_engine.classifiers import (
    ClassifierError,
    ImageClassifier,
    load_classifier,
    predict_probabilities,
)
from explain_engine.counterfactuals import METHODS, generate, make_config, save_result
from explain_engine.projection import ProjectionConfig, project_images
from explain_engine.ranges import StyleRanges, estimate_style_ranges
from explain_engine.selection import CurationFilters, ImageFacts, Selection, curate, select_dimensions
from explain_engine.sweep import SweepConfig, open_deltas, plan_units, sweep_deltas
from reviewapp.deidentify import deidentified_dicom_bytes, dicom_facts, is_dicom

ProgressFn = Callable[[int, int, str], None]
AbortFn = Callable[[], bool]

#: Review images are shown at least this large; the GIF's labels need the room.
DISPLAY_MIN_SIZE = 256

torch.set_num_threads(settings.TORCH_NUM_THREADS)


class StudyModelError(ValueError):
    """A study's checkpoint or classifier cannot be used; the message says which and why."""


# ----------------------------------------------------------------------------------------------------
# Files


def media_path(name: str) -> Path:
    """The absolute path of a file name stored in a row (relative to MEDIA_ROOT)."""
    return Path(settings.MEDIA_ROOT) / name


def resolve_path(path: str) -> Path:
    """A study's file: absolute paths are files on the server, others are relative to MEDIA_ROOT."""
    candidate = Path(path)
    return candidate if candidate.is_absolute() else media_path(path)


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_media(name: str, data: bytes) -> str:
    """Write ``data`` to MEDIA_ROOT/``name`` atomically (temporary file, then rename); returns ``name``."""
    path = media_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".tmp-", delete=False) as handle:
        handle.write(data)
    os.replace(handle.name, path)
    return name


def delete_media(names: Sequence[str]) -> None:
    """Remove stored files (used to undo the files of an import that failed)."""
    for name in names:
        if name:
            media_path(name).unlink(missing_ok=True)


def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def npy_facts(name: str) -> dict[str, Any]:
    """Shape, dtype and SHA-256 of a stored ``.npy`` file, for the row that points at it."""
    array = np.load(media_path(name), mmap_mode="r")
    return {"shape": list(array.shape), "dtype": str(array.dtype), "sha256": file_sha256(media_path(name))}


# ----------------------------------------------------------------------------------------------------
# Study models


@dataclass
class StudyInspection:
    """What loading a study's models reported; the values go into the Study row."""

    resolution: int
    channels: int
    style_dims: int
    generator_config: dict
    classifier_config: dict
    generator_sha256: str
    discriminator_sha256: str
    classifier_sha256: str


def classifier_loader_options(*, kind: str, target: str, options: dict | None = None) -> dict:
    """Keyword arguments of ``load_classifier`` for a study's classifier settings."""
    kwargs: dict[str, Any] = {"target": target}
    if kind and kind != "demo":
        kwargs["kind"] = kind
    for key in ("arch", "output_index", "output"):
        if options and options.get(key) not in (None, ""):
            kwargs[key] = options[key]
    return kwargs


def inspect_study_files(
    *,
    generator_path: str,
    discriminator_path: str,
    classifier_source: str,
    classifier_kind: str,
    target_label: str,
    classifier_options: dict | None = None,
) -> StudyInspection:
    """Load the generator, discriminator and classifier once to prove they work together.

    Raises :class:`StudyModelError` naming the file and the problem.
    """
    generator_file = resolve_path(generator_path)
    discriminator_file = resolve_path(discriminator_path or generator_path)
    try:
        G = load_generator(generator_file)
    except CheckpointError as error:
        raise StudyModelError(f"Generator: {error}") from None
    try:
        D = load_discriminator(discriminator_file)
    except CheckpointError as error:
        raise StudyModelError(f"Discriminator: {error}") from None
    if (D.img_resolution, D.img_channels) != (G.img_resolution, G.img_channels):
        raise StudyModelError(
            f"The discriminator takes {D.img_resolution}x{D.img_resolution}x{D.img_channels} images but the "
            f"generator makes {G.img_resolution}x{G.img_resolution}x{G.img_channels}."
        )
    loader = classifier_loader_options(kind=classifier_kind, target=target_label, options=classifier_options)
    try:
        classifier = load_classifier(_classifier_spec(classifier_source), **loader)
    except (ClassifierError, FileNotFoundError, ValueError) as error:
        raise StudyModelError(f"Classifier: {error}") from None
    if classifier.target.lower() != target_label.lower():
        raise StudyModelError(
            f"Classifier: it predicts {classifier.target!r}, not the study's target {target_label!r}."
        )
    if G.c_dim:
        raise StudyModelError("Generator: conditional generators (c_dim > 0) are not supported.")
    with torch.no_grad():
        probe = G.synthesize(G.mapping(torch.zeros(1, G.z_dim), None))
        try:
            predict_probabilities(classifier, probe.clamp(-1, 1))
        except (RuntimeError, ValueError) as error:
            raise StudyModelError(f"Classifier: it cannot read the generator's images: {error}") from None
    layout = G.style_layout
    classifier_file = _classifier_file(classifier_source)
    return StudyInspection(
        resolution=G.img_resolution,
        channels=G.img_channels,
        style_dims=layout.dims,
        generator_config={
            "resolution": G.img_resolution,
            "channels": G.img_channels,
            "z_dim": G.z_dim,
            "w_dim": G.w_dim,
            "style_dims": layout.dims,
            "conv_dims": layout.conv_dims,
            "torgb_dims": layout.torgb_dims,
            "layers": len(layout.layers),
        },
        classifier_config={"loader": loader, "name": classifier.name, "target": classifier.target},
        generator_sha256=file_sha256(generator_file),
        discriminator_sha256=file_sha256(discriminator_file),
        classifier_sha256=file_sha256(classifier_file) if classifier_file else "",
    )


def _classifier_spec(source: str) -> str:
    """Built-in names ('demo', 'xrv:...') as they are; paths resolved against MEDIA_ROOT."""
    if source == "demo" or source.startswith("xrv:"):
        return source
    return str(resolve_path(source))


def _classifier_file(source: str) -> Path | None:
    if source.startswith("xrv:"):
        return None
    if source == "demo":
        from explain_engine.classifiers import DEMO_CLASSIFIER_PATH

        return DEMO_CLASSIFIER_PATH
    return resolve_path(source)


@dataclass
class StudyModels:
    G: torch.nn.Module
    classifier: ImageClassifier
    D: torch.nn.Module | None = None
    ranges: StyleRanges | None = None


_model_cache: dict[tuple, Any] = {}
_model_cache_lock = threading.Lock()


def _cached(key: tuple, load: Callable[[], Any]) -> Any:
    """A worker process loads each checkpoint once (keyed by path and modification time)."""
    with _model_cache_lock:
        if key not in _model_cache:
            if len(_model_cache) > 8:
                _model_cache.clear()
            _model_cache[key] = load()
        return _model_cache[key]


def _mtime(path: Path | None) -> float:
    return path.stat().st_mtime if path is not None and path.exists() else 0.0


def study_generator(study) -> torch.nn.Module:
    """The study's generator, loaded once per worker process and frozen."""
    generator_file = resolve_path(study.generator_path)
    G = _cached(("G", str(generator_file), _mtime(generator_file)), lambda: load_generator(generator_file))
    return G.eval().requires_grad_(False)


def study_classifier(study) -> ImageClassifier:
    """The study's classifier, loaded once per worker process."""
    loader = study.classifier_config.get("loader") or classifier_loader_options(
        kind=study.classifier_kind, target=study.target_label
    )
    spec = _classifier_spec(study.classifier_source)
    classifier_file = _classifier_file(study.classifier_source)
    return _cached(
        ("C", spec, _mtime(classifier_file), tuple(sorted(loader.items()))),
        lambda: load_classifier(spec, **loader),
    )


def study_discriminator(study) -> torch.nn.Module:
    """The study's discriminator (from its own file or the generator's), loaded once per worker process."""
    discriminator_file = resolve_path(study.discriminator_path or study.generator_path)
    return _cached(
        ("D", str(discriminator_file), _mtime(discriminator_file)),
        lambda: load_discriminator(discriminator_file),
    )


def study_ranges(study) -> StyleRanges:
    if not study.ranges_path:
        raise StudyModelError("The study's style ranges have not been estimated yet.")
    return StyleRanges.load(media_path(study.ranges_path))


def load_study_models(study, *, discriminator: bool = False, ranges: bool = True) -> StudyModels:
    """The generator, classifier, and optionally discriminator and style ranges of ``study``, frozen."""
    models = StudyModels(G=study_generator(study), classifier=study_classifier(study))
    if discriminator:
        models.D = study_discriminator(study)
    if ranges:
        models.ranges = study_ranges(study)
    return models


# ----------------------------------------------------------------------------------------------------
# Style ranges


def estimate_ranges_file(study, *, progress_fn: ProgressFn, abort_fn: AbortFn) -> dict[str, Any]:
    """Estimate the study's style ranges and store them; returns the Study fields that point at the file."""
    G = load_study_models(study, ranges=False).G
    ranges = estimate_style_ranges(
        G, num_samples=study.ranges_samples, progress_fn=progress_fn, abort_fn=abort_fn
    )
    name = f"studies/{study.pk}/ranges-{study.ranges_samples}.pt"
    media_path(name).parent.mkdir(parents=True, exist_ok=True)
    ranges.save(media_path(name))
    return {"ranges_path": name, "ranges_sha256": file_sha256(media_path(name))}


# ----------------------------------------------------------------------------------------------------
# Cases


@dataclass
class CaseImage:
    """An uploaded radiograph converted for a study: the PNG to store, the source to keep, and facts."""

    png: bytes
    size: int
    source: bytes
    source_suffix: str
    source_format: str
    bits: int
    metadata: dict


def convert_case_image(data: bytes, *, filename: str, size: int) -> CaseImage:
    """Read PNG/JPEG (8/16-bit) or DICOM bytes and make the study's ``size`` x ``size`` greyscale PNG.

    DICOM is de-identified here, before anything of it is returned. Raises ``ImageReadError`` with the reason.
    """
    if is_dicom(data, filename):
        radiograph, dataset = engine_images.read_dicom(data)
        source = deidentified_dicom_bytes(dataset)
        metadata = {"format": "dicom", **dicom_facts(dataset)}
        suffix = ".dcm"
    else:
        radiograph = engine_images.read_radiograph(data, filename=filename)
        source = data
        height, width = radiograph.pixels.shape
        metadata = {
            "format": radiograph.source_format,
            "bits": radiograph.bits,
            "rows": height,
            "columns": width,
        }
        suffix = Path(filename).suffix.lower() or f".{radiograph.source_format}"
    pixels = engine_images.resize_square(radiograph.pixels, size)
    png = png_bytes(np.round(np.clip(pixels, 0, 1) * 255).astype(np.uint8))
    return CaseImage(
        png=png,
        size=size,
        source=source,
        source_suffix=suffix,
        source_format=radiograph.source_format,
        bits=radiograph.bits,
        metadata=metadata,
    )


def case_tensor(cases: Sequence, *, channels: int) -> torch.Tensor:
    """The stored PNGs of ``cases`` as the generator's input [N, C, H, W] in [-1, 1]."""
    pixels = [engine_images.read_radiograph(media_path(case.image.name)).pixels for case in cases]
    return engine_images.to_tensor(pixels, channels=channels)


# ----------------------------------------------------------------------------------------------------
# Projection


def project_to_files(
    study, projections: Sequence, *, progress_fn: ProgressFn, abort_fn: AbortFn
) -> list[dict[str, Any]]:
    """Project the cases of ``projections`` (one batch) and write their style vectors and reconstructions.

    Returns, per projection, the field values of its row. Raises ``InterruptedError`` when aborted.
    """
    models = load_study_models(study, discriminator=True)
    images = case_tensor([p.case for p in projections], channels=study.channels or models.G.img_channels)
    config = ProjectionConfig(steps=study.projection_steps, batch_size=max(len(projections), 1))
    result = project_images(
        images,
        models.G,
        classifier=models.classifier,
        D=models.D,
        init_styles=models.ranges.mean,
        config=config,
        progress_fn=progress_fn,
        abort_fn=abort_fn,
    )
    rows = []
    for i, projection in enumerate(projections):
        base = f"studies/{study.pk}/projections/{projection.pk}"
        buffer = io.BytesIO()
        np.save(buffer, result.styles[i].numpy().astype(np.float32))
        styles_name = write_media(f"{base}-styles.npy", buffer.getvalue())
        recon_name = write_media(
            f"{base}-reconstruction.png", png_bytes(engine_images.to_uint8(result.reconstructions[i]))
        )
        facts = result.per_image(i)
        rows.append(
            {
                "config": asdict(config),
                "styles_file": styles_name,
                "styles_shape": [int(result.styles.shape[1])],
                "styles_dtype": "float32",
                "styles_sha256": file_sha256(media_path(styles_name)),
                "reconstruction": recon_name,
                "mse": facts["mse"],
                "psnr": _finite(facts["psnr"]),
                "ssim": facts["ssim"],
                "perceptual": _finite(facts["perceptual"]),
                "perceptual_kind": result.perceptual_kind,
                "prob_original": facts["prob_original"],
                "prob_reconstruction": facts["prob_reconstruction"],
                "seconds": result.seconds / max(len(projections), 1),
            }
        )
    return rows


def _finite(value: float) -> float | None:
    return value if np.isfinite(value) else None


def load_styles(projections: Sequence) -> torch.Tensor:
    """The stored style vectors of ``projections`` stacked [N, D]."""
    return torch.from_numpy(np.stack([np.load(media_path(p.styles_file.name)) for p in projections]))


# ----------------------------------------------------------------------------------------------------
# Sweeps


def sweep_config(sweep) -> SweepConfig:
    return SweepConfig(
        mode=sweep.mode,
        screening_top_k=sweep.screening_top_k,
        image_chunk=settings.SWEEP_IMAGE_CHUNK,
        dim_chunk=settings.SWEEP_DIM_CHUNK,
    )


def new_sweep_folder(sweep) -> str:
    """A folder for a new sweep's files, unique even when a deleted sweep's primary key is used again."""
    return f"studies/{sweep.study_id}/sweeps/{sweep.pk}-{uuid.uuid4().hex[:8]}"


def sweep_folder(sweep) -> str:
    if not sweep.deltas_dir:
        raise ValueError(f"Sweep {sweep.pk} has no folder yet.")
    return sweep.deltas_dir


class SweepRunner:
    """A sweep's models and style vectors loaded once, to run one unit after another into its folder."""

    def __init__(self, sweep, projections: Sequence):
        self.sweep = sweep
        self.models = load_study_models(sweep.study)
        self.styles = load_styles(projections)
        self.config = sweep_config(sweep)
        self.folder = media_path(sweep_folder(sweep))

    def prepare(self) -> list[dict[str, int]]:
        """Create the sweep's files (no unit runs) and return the plan of units as row values."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.run_units([])
        plan = plan_units(self.styles.shape[0], self.styles.shape[1], self.config)
        return [
            {
                "index": unit.index,
                "image_start": unit.image_start,
                "image_stop": unit.image_stop,
                "dim_start": unit.dim_start,
                "dim_stop": unit.dim_stop,
            }
            for unit in plan
        ]

    def run_units(self, units: Sequence[int], *, abort_fn: AbortFn | None = None) -> tuple[float, int]:
        """Run ``units`` (skipping finished ones); returns (seconds, perturbed images evaluated).

        Raises ``InterruptedError`` when ``abort_fn`` stops it.
        """
        result = sweep_deltas(
            self.models.G,
            self.models.classifier,
            self.styles,
            self.models.ranges,
            config=self.config,
            out_dir=self.folder,
            units=list(units),
            abort_fn=abort_fn,
        )
        return result.seconds, result.perturbations

    @property
    def engine_config(self) -> dict:
        return asdict(self.config)


def sweep_deltas_facts(sweep) -> dict[str, Any]:
    facts = npy_facts(f"{sweep_folder(sweep)}/deltas.npy")
    return {"deltas_shape": facts["shape"], "deltas_dtype": facts["dtype"], "deltas_sha256": facts["sha256"]}


def sweep_arrays(sweep) -> tuple[np.ndarray, np.ndarray]:
    """(deltas [N, D, 2], base probabilities [N]) of a finished sweep, memory-mapped."""
    deltas, base_probs, _ = open_deltas(media_path(sweep_folder(sweep)))
    return deltas, base_probs


def sweep_selection(sweep) -> Selection:
    """Aggregate and rank every dimension of a finished sweep (papers/003 2.2)."""
    deltas, _ = sweep_arrays(sweep)
    G = load_study_models(sweep.study, ranges=False).G
    return select_dimensions(
        np.asarray(deltas),
        G.style_layout,
        aggregate=sweep.aggregation,
        delta=sweep.delta,
        min_fraction=sweep.min_fraction,
        top_k=sweep.select_top,
    )


def dimension_effect_fields(selection: Selection) -> list[dict[str, Any]]:
    """Row values of every DimensionEffect of a selection (ranks counted from 1)."""
    return [
        {
            "dim": effect.dim,
            "layer": effect.layer,
            "channel": effect.channel,
            "kind": effect.kind,
            "resolution": effect.resolution,
            "rank": effect.rank + 1,
            "effect": _or_zero(effect.effect),
            "direction": effect.direction,
            "raises_score": bool(effect.raises_score),
            "selected": bool(effect.selected),
            "mean_low": _or_zero(effect.mean_low),
            "mean_high": _or_zero(effect.mean_high),
            "mean_abs_low": _or_zero(effect.mean_abs_low),
            "mean_abs_high": _or_zero(effect.mean_abs_high),
            "fraction_low": _or_zero(effect.fraction_low),
            "fraction_high": _or_zero(effect.fraction_high),
            "max_abs": _or_zero(effect.max_abs),
        }
        for effect in selection.ranking
    ]


def _or_zero(value: float) -> float:
    return float(value) if np.isfinite(value) else 0.0


def dimension_changes(sweep, dim: int, direction: str) -> np.ndarray:
    """Per image, the change of the score when ``dim`` is clamped in ``direction``: r [N]."""
    deltas, _ = sweep_arrays(sweep)
    column = np.asarray(deltas[:, dim, :], dtype=np.float64)
    return -column[:, 0] if direction == "low" else column[:, 1]


def image_facts(projections: Sequence) -> ImageFacts:
    """The per-image facts curation filters on, in sweep order."""

    def column(name: str) -> np.ndarray:
        return np.array([getattr(p, name) if getattr(p, name) is not None else np.nan for p in projections])

    # -1: label unknown; the engine then asks only for a confident prediction.
    labels = np.array([p.case.label if p.case.label is not None else -1 for p in projections])
    return ImageFacts(
        prob_original=column("prob_original"),
        prob_reconstruction=column("prob_reconstruction"),
        labels=labels,
        psnr=column("psnr"),
        ssim=column("ssim"),
        perceptual=column("perceptual"),
    )


def curation_filters(sweep, *, top_k: int) -> CurationFilters:
    return CurationFilters(
        top_k=top_k,
        min_confidence=sweep.min_confidence,
        min_psnr=sweep.min_psnr,
        min_ssim=sweep.min_ssim,
        max_perceptual=sweep.max_perceptual,
        max_prob_diff=sweep.max_prob_diff,
    )


@dataclass
class CuratedItem:
    dim: int
    image_index: int
    direction: str
    change: float
    rank_in_dimension: int


def curate_items(
    sweep, dimensions: Sequence, projections: Sequence, *, top_k: int
) -> tuple[list[CuratedItem], dict]:
    """Pick review items for ``dimensions`` (DimensionEffect rows) with the sweep's curation filters.

    Returns the items and a summary (the filters and how many images each dropped) for the ReviewSet row.
    """
    deltas, base_probs = sweep_arrays(sweep)
    effects = sweep_selection_for(dimensions)
    filters = curation_filters(sweep, top_k=top_k)
    curation = curate(np.asarray(deltas), np.asarray(base_probs), effects, image_facts(projections), filters)
    items = []
    for dim, candidates in curation.items.items():
        for rank, candidate in enumerate(candidates, start=1):
            items.append(
                CuratedItem(
                    dim=int(dim),
                    image_index=int(candidate.image_index),
                    direction=candidate.direction,
                    change=float(candidate.change),
                    rank_in_dimension=rank,
                )
            )
    summary = {
        "filters": curation.filters or asdict(filters),
        "dropped": {key: int(value) for key, value in curation.dropped.items()},
        "eligible_images": int(np.count_nonzero(curation.eligible)),
        "images": len(projections),
    }
    return items, summary


def sweep_selection_for(dimensions: Sequence) -> list:
    """Engine DimensionEffects rebuilt from rows, for curation."""
    from explain_engine.selection import DimensionEffect as EngineEffect

    return [
        EngineEffect(
            dim=row.dim,
            layer=row.layer,
            channel=row.channel,
            kind=row.kind,
            resolution=row.resolution,
            effect=row.effect,
            direction=row.direction,
            raises_score=row.raises_score,
            rank=row.rank - 1,
            selected=True,
            mean_low=row.mean_low,
            mean_high=row.mean_high,
            mean_abs_low=row.mean_abs_low,
            mean_abs_high=row.mean_abs_high,
            fraction_low=row.fraction_low,
            fraction_high=row.fraction_high,
            max_abs=row.max_abs,
        )
        for row in dimensions
    ]


# ----------------------------------------------------------------------------------------------------
# Counterfactuals


def _display(images: torch.Tensor) -> torch.Tensor:
    """Images [N, C, H, W] scaled up (bilinear) to at least DISPLAY_MIN_SIZE for GIFs and stacks."""
    size = images.shape[-1]
    if size >= DISPLAY_MIN_SIZE:
        return images
    return torch.nn.functional.interpolate(
        images, size=(DISPLAY_MIN_SIZE, DISPLAY_MIN_SIZE), mode="bilinear", align_corners=False
    )


def _perturb(sweep, dim: int, direction: str, projections: Sequence):
    """(clamp value, reconstructions, perturbed images, their probabilities) for one dimension clamped."""
    models = load_study_models(sweep.study)
    low, high = models.ranges.clamp_values("minmax")
    clamp = float((low if direction == "low" else high)[dim])
    styles = load_styles(projections)
    perturbed_styles = styles.clone()
    perturbed_styles[:, dim] = clamp
    with torch.no_grad():
        recon = models.G.synthesize_from_styles(styles, noise_mode="const").clamp(-1, 1)
        perturbed = models.G.synthesize_from_styles(perturbed_styles, noise_mode="const").clamp(-1, 1)
        prob_recon = predict_probabilities(models.classifier, recon)
        prob_pert = predict_probabilities(models.classifier, perturbed)
    return clamp, recon, perturbed, prob_recon, prob_pert


def render_counterfactuals(
    sweep, dimension, projections: Sequence, *, direction: str
) -> list[dict[str, Any]]:
    """Clamp ``dimension`` in ``direction`` on each projection and write the perturbed image, the signed
    difference heatmap, the flicker GIF and the stack (original | reconstruction | perturbed, with the
    classifier's probability on each). Returns the field values of each Counterfactual row."""
    clamp, recon, perturbed, prob_recon, prob_pert = _perturb(sweep, dimension.dim, direction, projections)
    base = f"{sweep_folder(sweep)}/counterfactuals/{dimension.dim}-{direction}"
    rows = []
    for i, projection in enumerate(projections):
        stem = f"{base}-{projection.pk}"
        p_rec, p_pert = float(prob_recon[i]), float(prob_pert[i])
        perturbed_name = write_media(f"{stem}-perturbed.png", png_bytes(engine_images.to_uint8(perturbed[i])))
        difference_name = write_media(
            f"{stem}-difference.png", png_bytes(engine_images.difference_heatmap(recon[i], perturbed[i]))
        )
        gif_name, stack_name = f"{stem}-flicker.gif", f"{stem}-stack.png"
        write_flicker_and_stack(
            gif_name=gif_name,
            stack_name=stack_name,
            original=np.asarray(Image.open(media_path(projection.case.image.name)).convert("L")),
            p_original=projection.prob_original,
            unmodified=recon[i],
            p_unmodified=p_rec,
            perturbed=perturbed[i],
            p_perturbed=p_pert,
        )
        rows.append(
            {
                "projection": projection,
                "dimension": dimension,
                "direction": direction,
                "clamp_value": clamp,
                "prob_reconstruction": p_rec,
                "prob_perturbed": p_pert,
                "perturbed_image": perturbed_name,
                "difference_image": difference_name,
                "flicker_gif": gif_name,
                "stack_image": stack_name,
            }
        )
    return rows


def write_flicker_and_stack(
    *,
    gif_name: str,
    stack_name: str,
    original: np.ndarray,
    p_original: float | None,
    unmodified: torch.Tensor,
    p_unmodified: float | None,
    perturbed: torch.Tensor,
    p_perturbed: float | None,
    unmodified_label: str | None = "reconstruction",
) -> None:
    """Write the flicker GIF of ``perturbed`` over ``unmodified`` (images [C, H, W] in [-1, 1], shown at
    display size with the classifier's probability on each frame) and the stack original | unmodified |
    perturbed (``original`` uint8 [H, W]); without ``unmodified_label`` the stack leaves the unmodified
    image out (it is the original). Names are relative to MEDIA_ROOT."""
    big = _display(torch.stack([unmodified, perturbed]))
    engine_images.save_flicker_gif(
        big[0],
        big[1],
        media_path(gif_name),
        labels=(f"unmodified p={_or_nan(p_unmodified):.2f}", f"perturbed p={_or_nan(p_perturbed):.2f}"),
    )
    panels = [(original, "original", p_original)]
    if unmodified_label:
        panels.append((engine_images.to_uint8(big[0]), unmodified_label, p_unmodified))
    panels.append((engine_images.to_uint8(big[1]), "perturbed", p_perturbed))
    write_media(stack_name, png_bytes(stack_image(panels)))


def _or_nan(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def render_dimension_summary(sweep, dimension, projections: Sequence) -> dict[str, str]:
    """Write the dimension's mean signed difference map over ``projections`` (where in the chest it acts)
    and the distribution of its effect over all images; returns the DimensionEffect fields."""
    _, recon, perturbed, _, _ = _perturb(sweep, dimension.dim, dimension.direction, projections)
    mean = (perturbed - recon).mean(0)
    base = f"{sweep_folder(sweep)}/dims/{dimension.dim}"
    mean_name = write_media(
        f"{base}-mean-difference.png",
        png_bytes(engine_images.difference_heatmap(torch.zeros_like(mean), mean)),
    )
    from reviewapp import plots

    r_low = dimension_changes(sweep, dimension.dim, "low")
    r_high = dimension_changes(sweep, dimension.dim, "high")
    plot_name = write_media(
        f"{base}-distribution.png",
        plots.dimension_distribution_png(r_low=r_low, r_high=r_high, delta=sweep.delta, dim=dimension.dim),
    )
    return {"mean_difference": mean_name, "distribution_plot": plot_name}


def stack_image(panels: Sequence[tuple[np.ndarray, str, float | None]]) -> np.ndarray:
    """Greyscale panels side by side, each captioned with its name and the classifier's probability."""
    size = max(DISPLAY_MIN_SIZE, max(panel.shape[0] for panel, _, _ in panels))
    caption, gap = 22, 6
    width = len(panels) * size + (len(panels) - 1) * gap
    canvas = Image.new("L", (width, size + caption), color=255)
    draw = ImageDraw.Draw(canvas)
    for i, (pixels, name, probability) in enumerate(panels):
        tile = Image.fromarray(pixels).convert("L").resize((size, size), Image.Resampling.BILINEAR)
        x = i * (size + gap)
        canvas.paste(tile, (x, 0))
        text = name if probability is None else f"{name}   p = {probability:.2f}"
        draw.text((x + 4, size + 5), text, fill=0)
    return np.asarray(canvas)


# ----------------------------------------------------------------------------------------------------
# Counterfactual lab


def case_probability(study, case) -> float:
    """The classifier's probability of the study's target label on one stored case."""
    classifier = study_classifier(study)
    image = case_tensor([case], channels=study.channels or 1)
    with torch.no_grad():
        return float(predict_probabilities(classifier, image)[0])


def lab_files(run, *, styles_projection=None, progress_fn: ProgressFn, abort_fn: AbortFn) -> dict[str, Any]:
    """Run ``run.method`` on ``run.case`` toward ``run.target`` and write the result's files; returns the
    LabRun field values (file names relative to MEDIA_ROOT, probabilities, metrics, details, wall time).

    ``styles_projection``: a projection of the case whose style vector the StyleSpace methods start from
    (they project the case themselves without one). The files are written into a hidden folder that is
    renamed into place once all of them exist and removed when anything fails, so no half-written result is
    left where a row could point. Raises ``CounterfactualError`` (bad parameters), ``StudyModelError``,
    ``InterruptedError`` (``abort_fn`` asked to stop).
    """
    started = time.perf_counter()
    study, case = run.study, run.case
    uses = METHODS[run.method].uses
    config = make_config(run.method, **run.parameters)
    try:
        classifier = study_classifier(study)
        D = study_discriminator(study)
        G = study_generator(study) if "generator" in uses else None
        ranges = study_ranges(study) if "ranges" in uses and study.ranges_path else None
    except (CheckpointError, ClassifierError, FileNotFoundError) as error:
        raise StudyModelError(f"The study's models cannot be loaded: {error}") from None
    styles = None
    if "styles" in uses and styles_projection is not None:
        styles = torch.from_numpy(np.load(media_path(styles_projection.styles_file.name))).float()
    image = case_tensor([case], channels=study.channels or 1)[0]
    result = generate(
        image,
        classifier=classifier,
        target=run.target,
        method=run.method,
        generator=G,
        discriminator=D,
        styles=styles,
        ranges=ranges,
        config=config,
        progress_fn=progress_fn,
        abort_fn=abort_fn,
    )

    folder = f"studies/{study.pk}/lab/{run.pk}-{uuid.uuid4().hex[:8]}"
    partial = f"studies/{study.pk}/lab/.partial-{run.pk}-{uuid.uuid4().hex[:8]}"
    try:
        written = save_result(result, media_path(partial))
        if result.heatmap is None:
            start = result.reconstruction
            write_flicker_and_stack(
                gif_name=f"{partial}/flicker.gif",
                stack_name=f"{partial}/stack.png",
                original=engine_images.to_uint8(result.query),
                p_original=result.query_probability,
                unmodified=start if start is not None else result.query,
                p_unmodified=result.reconstruction_probability
                if start is not None
                else result.query_probability,
                perturbed=result.counterfactual,
                p_perturbed=result.probability,
                unmodified_label="reconstruction" if start is not None else None,
            )
            written["flicker"] = media_path(f"{partial}/flicker.gif")
            written["stack"] = media_path(f"{partial}/stack.png")
        summary = json.loads(written["metrics"].read_text())
        os.replace(media_path(partial), media_path(folder))
    except BaseException:
        shutil.rmtree(media_path(partial), ignore_errors=True)
        raise

    def stored(kind: str) -> str:
        return f"{folder}/{written[kind].name}" if kind in written else ""

    metrics = summary.get("metrics") or {}
    flipped = metrics.get("flipped")
    return {
        "folder": folder,
        "counterfactual_image": stored("counterfactual"),
        "start_image": stored("reconstruction"),
        "difference_image": stored("difference"),
        "heatmap_image": stored("heatmap"),
        "path_gif": stored("path"),
        "flicker_gif": stored("flicker"),
        "stack_image": stored("stack"),
        "prob_original": summary["query_probability"],
        "prob_start": summary["reconstruction_probability"],
        "prob_counterfactual": summary["probability"],
        "flipped": None if result.heatmap is not None or flipped is None else bool(flipped),
        "metrics": metrics,
        "details": summary.get("details") or {},
        "config": {**asdict(config), **(summary.get("parameters") or {})},
        "seconds": time.perf_counter() - started,
    }
