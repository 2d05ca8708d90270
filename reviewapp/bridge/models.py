"""A study's networks: the engine device, checking a study's files, loading its models once per process and
device, and estimating its style ranges."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from explain_engine.checkpoints import (
    CheckpointError,
    load_autoencoder,
    load_discriminator,
    load_generator,
)
from explain_engine.classifiers import (
    DEMO_CLASSIFIER_PATH,
    ClassifierError,
    ClassifierSpec,
    ImageClassifier,
    is_builtin_classifier,
    load_classifier,
    parse_classifier_spec,
    predict_probabilities,
)
from explain_engine.device import DeviceError, describe_device, module_device, resolve_device
from explain_engine.ranges import StyleRanges, estimate_style_ranges
from reviewapp.bridge.files import file_sha256, media_path, resolve_path

ProgressFn = Callable[[int, int, str], None]
AbortFn = Callable[[], bool]

torch.set_num_threads(settings.TORCH_NUM_THREADS)


class StudyModelError(ValueError):
    """A study's checkpoint or classifier cannot be used; the message says which and why."""


# ----------------------------------------------------------------------------------------------------
# Device


def engine_device() -> torch.device:
    """The device this process computes on: ``settings.ENGINE_DEVICE`` (``auto``: the first CUDA GPU when
    PyTorch sees one, else the CPU). A value that names no device here is a configuration error."""
    spec = getattr(settings, "ENGINE_DEVICE", "auto")
    try:
        return resolve_device(spec)
    except DeviceError as error:
        raise ImproperlyConfigured(f"ENGINE_DEVICE={spec!r}: {error}.") from None


def engine_compile() -> bool:
    """Whether this process compiles the sweep's and projection's passes on CUDA (``settings.ENGINE_COMPILE``)."""
    return bool(getattr(settings, "ENGINE_COMPILE", False))


def engine_device_description() -> str:
    """What ``/healthz`` shows: the device and, for a GPU, its name and memory."""
    return describe_device(engine_device())


def module_device_description(module) -> str:
    """The device a loaded network computes on, in the words of ``engine_device_description``."""
    return describe_device(module_device(module))


# ----------------------------------------------------------------------------------------------------
# Checking a study's files


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
    except Exception as error:  # noqa: BLE001 - a file of any content reaches the loader
        raise StudyModelError(
            f"Generator: {generator_file.name} cannot be loaded: {_first_line(error)}"
        ) from None
    try:
        D = load_discriminator(discriminator_file)
    except CheckpointError as error:
        raise StudyModelError(f"Discriminator: {error}") from None
    except Exception as error:  # noqa: BLE001 - a file of any content reaches the loader
        raise StudyModelError(
            f"Discriminator: {discriminator_file.name} cannot be loaded: {_first_line(error)}"
        ) from None
    if (D.img_resolution, D.img_channels) != (G.img_resolution, G.img_channels):
        raise StudyModelError(
            f"The discriminator takes {D.img_resolution}x{D.img_resolution}x{D.img_channels} images but the "
            f"generator makes {G.img_resolution}x{G.img_resolution}x{G.img_channels}."
        )
    loader = classifier_loader_options(kind=classifier_kind, target=target_label, options=classifier_options)
    try:
        classifier = load_classifier(classifier_spec(classifier_source).loader_source, **loader)
    except (ClassifierError, FileNotFoundError, ValueError) as error:
        raise StudyModelError(f"Classifier: {error}") from None
    except Exception as error:  # noqa: BLE001 - a file of any content reaches the loader
        raise StudyModelError(f"Classifier: it cannot be loaded: {_first_line(error)}") from None
    if classifier.target.lower() != target_label.lower():
        raise StudyModelError(
            f"Classifier: it predicts {classifier.target!r}, not the study's target {target_label!r}."
        )
    if G.c_dim:
        raise StudyModelError("Generator: conditional generators (c_dim > 0) are not supported.")
    with torch.no_grad():
        try:
            probe = G.synthesize(G.mapping(torch.zeros(1, G.z_dim), None))
        except Exception as error:  # noqa: BLE001 - weights that load but do not compute
            raise StudyModelError(f"Generator: it cannot make an image: {_first_line(error)}") from None
        try:
            predict_probabilities(classifier, probe.clamp(-1, 1))
        except Exception as error:  # noqa: BLE001 - a classifier of any kind, reading an image it may not fit
            raise StudyModelError(
                f"Classifier: it cannot read the generator's images: {_first_line(error)}"
            ) from None
    layout = G.style_layout
    classifier_file = classifier_spec(classifier_source).path
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


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return (lines or [type(error).__name__])[0][:300]


def classifier_spec(source: str) -> ClassifierSpec:
    """A study's ``classifier_source`` read by the engine: built-in names ('demo', 'xrv:...') as they are,
    paths resolved against MEDIA_ROOT."""
    return parse_classifier_spec(source, resolve=resolve_path)


def classifier_names_a_file(source: str) -> bool:
    """Whether a ``classifier_source`` is a path rather than a built-in name ('demo', 'xrv:...')."""
    return not is_builtin_classifier(source)


def demo_classifier_path() -> Path:
    """Where the shipped demo classifier's weights live."""
    return DEMO_CLASSIFIER_PATH


# ----------------------------------------------------------------------------------------------------
# Loading, once per process and device


@dataclass
class StudyModels:
    G: torch.nn.Module
    classifier: ImageClassifier
    D: torch.nn.Module | None = None
    ranges: StyleRanges | None = None
    autoencoder: torch.nn.Module | None = None

    @property
    def device(self) -> torch.device:
        return module_device(self.G if self.G is not None else self.classifier)


_model_cache: dict[tuple, Any] = {}
_model_cache_lock = threading.Lock()


def _cached(key: tuple, load: Callable[[], Any]) -> Any:
    """A process loads each checkpoint once per device (keyed by role, device, path and modification time)."""
    with _model_cache_lock:
        if key not in _model_cache:
            if len(_model_cache) > 8:
                _model_cache.clear()
            _model_cache[key] = load()
        return _model_cache[key]


def _mtime(path: Path | None) -> float:
    return path.stat().st_mtime if path is not None and path.exists() else 0.0


def study_generator(study, *, device: torch.device | None = None) -> torch.nn.Module:
    """The study's generator on ``device`` (default: :func:`engine_device`), loaded once and frozen."""
    device = device or engine_device()
    generator_file = resolve_path(study.generator_path)
    G = _cached(
        ("G", str(device), str(generator_file), _mtime(generator_file)),
        lambda: load_generator(generator_file, device=device),
    )
    return G.eval().requires_grad_(False)


def study_classifier(study, *, device: torch.device | None = None) -> ImageClassifier:
    """The study's classifier on ``device`` (default: :func:`engine_device`), loaded once."""
    device = device or engine_device()
    loader = study.classifier_config.get("loader") or classifier_loader_options(
        kind=study.classifier_kind, target=study.target_label
    )
    spec = classifier_spec(study.classifier_source)
    return _cached(
        ("C", str(device), spec.loader_source, _mtime(spec.path), tuple(sorted(loader.items()))),
        lambda: load_classifier(spec.loader_source, **loader, device=device),
    )


def study_discriminator(study, *, device: torch.device | None = None) -> torch.nn.Module:
    """The study's discriminator (from its own file or the generator's) on ``device``, loaded once."""
    device = device or engine_device()
    discriminator_file = resolve_path(study.discriminator_path or study.generator_path)
    return _cached(
        ("D", str(device), str(discriminator_file), _mtime(discriminator_file)),
        lambda: load_discriminator(discriminator_file, device=device),
    )


def study_autoencoder(study, *, device: torch.device | None = None) -> torch.nn.Module:
    """The study's autoencoder (Latent Shift) on ``device``, loaded once. Raises :class:`StudyModelError` when
    the study names none."""
    if not study.autoencoder_path:
        raise StudyModelError(
            "The study has no autoencoder; Latent Shift needs one (the study's autoencoder path)."
        )
    device = device or engine_device()
    autoencoder_file = resolve_path(study.autoencoder_path)
    return _cached(
        ("AE", str(device), str(autoencoder_file), _mtime(autoencoder_file)),
        lambda: load_autoencoder(autoencoder_file, device=device),
    )


def check_autoencoder(path: str, *, resolution: int | None, channels: int | None) -> None:
    """Raise :class:`StudyModelError` unless ``path`` holds an autoencoder for the study's image size."""
    try:
        AE = load_autoencoder(resolve_path(path))
    except CheckpointError as error:
        raise StudyModelError(f"The autoencoder cannot be loaded: {error}") from None
    if (resolution, channels) != (AE.img_resolution, AE.img_channels):
        raise StudyModelError(
            f"The autoencoder is for {AE.img_channels}-channel {AE.img_resolution} px images; the study's "
            f"generator makes {channels}-channel {resolution} px images."
        )


def study_ranges(study) -> StyleRanges:
    if not study.ranges_path:
        raise StudyModelError("The study's style ranges have not been estimated yet.")
    return StyleRanges.load(media_path(study.ranges_path))


def load_study_models(study, *, discriminator: bool = False, ranges: bool = True) -> StudyModels:
    """The generator, classifier, and optionally discriminator and style ranges of ``study``, frozen, on the
    engine device. Raises :class:`StudyModelError` when a checkpoint cannot be loaded."""
    device = engine_device()
    try:
        models = StudyModels(
            G=study_generator(study, device=device), classifier=study_classifier(study, device=device)
        )
        if discriminator:
            models.D = study_discriminator(study, device=device)
        if ranges:
            models.ranges = study_ranges(study)
    except (CheckpointError, ClassifierError, FileNotFoundError) as error:
        raise StudyModelError(f"The study's models cannot be loaded: {error}") from None
    return models


def load_lab_models(study, *, generator: bool, ranges: bool, autoencoder: bool = False) -> StudyModels:
    """The models a lab method uses (the discriminator always, the generator, ranges and autoencoder when it
    uses them).

    Raises :class:`StudyModelError` when a checkpoint cannot be loaded.
    """
    device = engine_device()
    try:
        classifier = study_classifier(study, device=device)
        D = study_discriminator(study, device=device)
        G = study_generator(study, device=device) if generator else None
        style_ranges = study_ranges(study) if ranges and study.ranges_path else None
        AE = study_autoencoder(study, device=device) if autoencoder else None
    except (CheckpointError, ClassifierError, FileNotFoundError) as error:
        raise StudyModelError(f"The study's models cannot be loaded: {error}") from None
    return StudyModels(G=G, classifier=classifier, D=D, ranges=style_ranges, autoencoder=AE)


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
