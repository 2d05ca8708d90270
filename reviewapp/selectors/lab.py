"""Reads of the Counterfactual lab: a study's runs, runs side by side with their metrics, where a run may go."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.db.models import QuerySet

from reviewapp.models import LabRun, ReviewItem, ReviewSet, Study

#: The figures the lab shows for a run: (key, label, meaning); keys of ``LabRun.metrics`` but for RUN_FIELDS.
LAB_METRICS = [
    ("prob_original", "p(original)", "Classifier probability of the target label on the case."),
    ("prob_start", "p(start point)", "On the method's reconstruction or pre-image, before the edit."),
    ("prob_counterfactual", "p(result)", "On the counterfactual (the case itself for saliency maps)."),
    ("flipped", "Flipped", "The classifier's decision on the result differs from that on the case."),
    ("reached_target", "Reached target", "The classifier decides for the target class on the result."),
    ("l1", "L1", "Mean absolute change per pixel, 0 to 1 scale."),
    ("ssim", "SSIM", "Structural similarity to the case, 1 = identical."),
    (
        "perceptual",
        "Perceptual",
        "LPIPS, or a classifier-feature distance when LPIPS weights are not on disk.",
    ),
    ("changed_fraction", "Changed pixels", "Share of pixels the edit changed by more than 0.05."),
    ("mass_in_lung", "Change in lung", "Share of the edit (or heatmap) inside the lung field, if known."),
    ("mass_in_opacity", "Change in opacity", "Share inside the planted opacity (phantoms only)."),
    ("discriminator_logit", "Realism (D)", "The discriminator's score of the result; higher = more real."),
    (
        "loss_estimate",
        "Loss estimate",
        "The classifier's loss estimator on the result; lower = more typical.",
    ),
    ("cout", "COUT", "Pixel-swap score from -1 to 1: near 1 when a few changed pixels already decide."),
    ("seconds", "Wall time (s)", "The whole run: models, method, metrics and files."),
]


#: Figures of an edit, which a saliency map (which changes nothing) does not have: not shown for its runs.
COUNTERFACTUAL_ONLY = frozenset(
    {
        "prob_start",
        "flipped",
        "reached_target",
        "l1",
        "ssim",
        "perceptual",
        "changed_fraction",
        "discriminator_logit",
        "loss_estimate",
        "cout",
    }
)


def lab_runs_of_study(*, study: Study) -> QuerySet[LabRun]:
    """The study's runs, newest first."""
    return LabRun.objects.filter(study=study).select_related("case", "job", "created_by", "study")


def lab_runs_to_compare(
    *, study: Study, run_ids: Sequence[int] = (), case_id: int | None = None
) -> list[LabRun]:
    """The chosen runs of the study (``run_ids``), or every run of one case, oldest first."""
    runs = lab_runs_of_study(study=study).order_by("created_at", "pk")
    if run_ids:
        return list(runs.filter(pk__in=run_ids))
    if case_id is not None:
        return list(runs.filter(case_id=case_id))
    return []


#: Figures kept in the run's own fields rather than in its metrics.
RUN_FIELDS = frozenset({"prob_original", "prob_start", "prob_counterfactual", "flipped", "seconds"})


def _figure(run: LabRun, key: str) -> object:
    return getattr(run, key) if key in RUN_FIELDS else (run.metrics or {}).get(key)


def _shown(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return f"{value:.3f}"
    return str(value)


@dataclass(frozen=True)
class MetricRow:
    key: str
    label: str
    meaning: str
    values: list[str]


def lab_metric_rows(*, runs: Sequence[LabRun]) -> list[MetricRow]:
    """One row per figure of LAB_METRICS, one value per run (only finished runs have values).

    The figures of an edit (COUNTERFACTUAL_ONLY) are left out for saliency maps: "—" beside other runs, and
    no row at all when every run is a saliency map.
    """
    rows = []
    all_saliency = bool(runs) and all(run.is_saliency for run in runs)
    for key, label, meaning in LAB_METRICS:
        if key in COUNTERFACTUAL_ONLY and all_saliency:
            continue
        values = []
        for run in runs:
            hidden = key in COUNTERFACTUAL_ONLY and run.is_saliency
            value = _figure(run, key) if run.status == LabRun.Status.SUCCEEDED and not hidden else None
            if key == "reached_target" and value is not None:
                value = bool(value)
            values.append(_shown(value))
        rows.append(MetricRow(key=key, label=label, meaning=meaning, values=values))
    return rows


@dataclass(frozen=True)
class ChangedStyle:
    dim: int
    layer: str
    channel: int | None
    change: float
    change_scaled: float | None


def lab_changed_styles(*, run: LabRun) -> list[ChangedStyle]:
    """The run's most changed style dimensions, largest change first (in units of the dimension's spread when
    the engine measured it so, else raw)."""
    styles = []
    for entry in (run.details or {}).get("top_changed_styles") or []:
        scaled = entry.get("change_scaled")
        styles.append(
            ChangedStyle(
                dim=int(entry["dim"]),
                layer=str(entry.get("layer", "")),
                channel=entry.get("channel"),
                change=float(entry.get("change", 0.0)),
                change_scaled=None if scaled is None else float(scaled),
            )
        )
    return sorted(
        styles, key=lambda s: (-abs(s.change_scaled if s.change_scaled is not None else s.change), s.dim)
    )


def lab_review_sets_for(*, run: LabRun) -> QuerySet[ReviewSet]:
    """The study's review sets a finished run can be added to (ready ones), newest first."""
    return ReviewSet.objects.filter(study=run.study_id, status=ReviewSet.Status.READY).order_by("-created_at")


def lab_run_items(*, run: LabRun) -> QuerySet[ReviewItem]:
    """The review items that show the run."""
    return ReviewItem.objects.filter(lab_run=run).select_related("review_set").order_by("review_set__name")
