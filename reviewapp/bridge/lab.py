"""The Counterfactual lab: the engine's counterfactual and saliency methods, their options, and one run's
result written into its own folder."""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from dataclasses import asdict
from typing import Any

import numpy as np
import torch

from explain_engine import images as engine_images
from explain_engine.classifiers import predict_probabilities
from explain_engine.counterfactuals import (
    METHODS,
    CounterfactualError,
    generate,
    make_config,
    resolve_target,
    save_result,
)
from explain_engine.counterfactuals.disc import MANIFOLD_TERMS
from explain_engine.counterfactuals.gci import ANCHORS
from explain_engine.counterfactuals.saliency import BASELINES
from explain_engine.counterfactuals.stylespace import DIRECTIONS
from explain_engine.params import ParamSpec, spec
from reviewapp.bridge.cases import case_tensor
from reviewapp.bridge.files import media_path
from reviewapp.bridge.models import AbortFn, ProgressFn, load_lab_models, study_classifier
from reviewapp.bridge.rendering import write_flicker_and_stack

__all__ = [
    "ANCHORS",
    "BASELINES",
    "DIRECTIONS",
    "MANIFOLD_TERMS",
    "METHODS",
    "ParamSpec",
    "CounterfactualError",
    "case_probability",
    "lab_files",
    "make_config",
    "option_spec",
    "resolve_target",
]


def option_spec(method: str, name: str) -> ParamSpec:
    """Default and bounds of option ``name`` of ``method`` (from the method's config dataclass)."""
    return spec(METHODS[method].config, name)


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
    models = load_lab_models(
        study, generator="generator" in uses, ranges="ranges" in uses, autoencoder="autoencoder" in uses
    )
    styles = None
    if "styles" in uses and styles_projection is not None:
        styles = torch.from_numpy(np.load(media_path(styles_projection.styles_file.name))).float()
    image = case_tensor([case], channels=study.channels or 1)[0]
    result = generate(
        image,
        classifier=models.classifier,
        target=run.target,
        method=run.method,
        generator=models.G,
        discriminator=models.D,
        styles=styles,
        ranges=models.ranges,
        autoencoder=models.autoencoder,
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
