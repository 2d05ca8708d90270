"""Rows of the CSV exports, generated lazily so that a stream of 100k rows needs constant memory.

Each table has its columns as ``(name, meaning)`` pairs; docs/exports.md lists them and a test checks that
the two agree. Every cell goes through :func:`csv_cell` on its way out, so no text a reader typed can run as
a spreadsheet formula.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from datetime import datetime

from django.db.models import F

from reviewapp.models import (
    Annotation,
    AuditEvent,
    Counterfactual,
    DimensionEffect,
    FactorAnnotation,
    LabRun,
    ReviewAssignment,
    ReviewItem,
    ReviewSet,
    Study,
    Sweep,
)
from reviewapp.selectors.agreement import (
    RELEVANT_FACTOR_RATINGS,
    is_relevant,
    majority,
    review_set_agreement,
    review_set_summary,
)

CHUNK = 2000

#: A cell starting with one of these is read as a formula (or has its start eaten) by spreadsheet programs.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def csv_cell(value: object) -> object:
    """``value`` as a CSV cell that spreadsheet programs show as text and never evaluate: text that starts
    with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading apostrophe (``'=1+1``), except
    a plain number such as ``-0.25`` or ``1e-05``. Numbers and other values pass unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


REVIEW_COLUMNS = [
    ("style_dimension", "Index of the style dimension in the flat StyleSpace vector (Table 1: Style dimension)."),
    ("image_index", "1-based index of the item in the review set (Table 1: Image index)."),
    ("clinical_relevance", "The reader's clinical description of the change; 'no' when Q1 is no and nothing "
     "was written (Table 1: Clinical Relevance)."),
    ("pneumonia_relevance", "Q2, graded: yes, possible, early_change, subtle, not_compelling or no "
     "(Table 1: Pneumonia relevance)."),
    ("semantically_meaningful", "Q1: yes or no."),
    ("pneumonia_relevant", "yes when pneumonia_relevance is yes, possible, early_change or subtle, else no."),
    ("comment", "The reader's optional comment on Q2."),
    ("confidence", "The reader's confidence, 1 (low) to 5 (high); empty when not given."),
    ("reader", "Username of the reader."),
    ("review_set", "Name of the review set."),
    ("case", "File name of the case (the original image)."),
    ("case_label", "Ground truth of the case for the target label: 1, 0, or empty when unknown."),
    ("direction", "low or high: which extreme the style dimension was clamped to."),
    ("layer", "Generator layer of the style dimension."),
    ("channel", "Channel of the style dimension in its layer."),
    ("clamp_value", "The value the style coordinate was clamped to."),
    ("prob_original", "Classifier probability of the target on the original image, C(x)."),
    ("prob_reconstruction", "Classifier probability on the reconstruction, C(G(S)); for a lab item on the "
     "method's start point (reconstruction or pre-image)."),
    ("prob_perturbed", "Classifier probability on the perturbed image, C(G(S with s_d clamped)); for a lab "
     "item on the counterfactual."),
    ("probability_change", "prob_perturbed - prob_reconstruction."),
    ("rank_in_dimension", "1 = the largest change among the dimension's items; empty for lab items."),
    ("status", "submitted or draft."),
    ("time_spent_seconds", "Reading time the reader spent on the item, in seconds."),
    ("created_at", "When the answer was first saved (UTC, ISO 8601)."),
    ("updated_at", "When the answer was last changed (UTC, ISO 8601)."),
    ("submitted_at", "When the answer was last submitted (UTC, ISO 8601); empty for drafts."),
    ("reader_finalised_at", "When the reader finalised the set (UTC, ISO 8601); empty if not yet."),
    ("source", "What made the item: 'sweep' (a style dimension clamped by a sweep) or 'lab:<method>' (a "
     "Counterfactual lab run, e.g. lab:gci), whose style-dimension columns are empty."),
    ("flag", "Set when the reader passed on the item: unreadable (image unreadable) or unsure (not sure); "
     "Q1 and Q2 may then be empty."),
    ("region", "Where the reader saw the change (optional): right_upper, right_middle, right_lower, "
     "left_upper, left_middle, left_lower, heart_mediastinum, both_lungs or outside_lungs."),
    ("finding", "What the change looks like (optional): opacity, consolidation, border_blurring, effusion, "
     "device, image_quality or other."),
    ("arm", "The arm of the reader study: counterfactual (Q1 and Q2 above) or saliency (a Grad-CAM or "
     "integrated-gradients map of the lab, answered with saliency_relevant and region)."),
    ("saliency_relevant", "Saliency items: yes when the reader found that the highlighted region shows "
     "findings relevant to the label, else no; empty for counterfactual items."),
    ("confidence_before", "Sets that ask for it: the reader's confidence (1 to 5) in the classifier's call "
     "before seeing the explanation; else empty."),
    ("confidence_after", "The same confidence with the explanation shown."),
    ("confidence_change", "confidence_after - confidence_before; empty unless both are given."),
    ("explanation_shown_at", "Sets that ask for the confidence change: when the reader was shown the "
     "explanation (UTC, ISO 8601), after which confidence_before could no longer change; else empty."),
]  # fmt: skip

DIMENSION_COLUMNS = [
    ("sweep", "Id of the sweep."),
    ("style_dimension", "Index of the style dimension in the flat StyleSpace vector."),
    ("layer", "Generator layer."),
    ("channel", "Channel in the layer."),
    ("kind", "conv or torgb."),
    ("resolution", "Resolution of the layer, in pixels."),
    ("rank", "1 = the strongest effect."),
    (
        "effect",
        "The aggregated effect the sweep ranks by (its aggregate: mean |change|, fraction or raise).",
    ),
    ("direction", "low or high: the clamp with the larger effect."),
    ("raises_score", "yes when that clamp raises the classifier score."),
    ("selected", "yes when the sweep's selection rule selected the dimension (see the sweep page for the rule)."),
    ("mean_low", "Mean change of the score when clamped low, C(S_d-) - C(S)."),
    ("mean_high", "Mean change of the score when clamped high, C(S_d+) - C(S)."),
    ("mean_abs_low", "Mean |change| when clamped low."),
    ("mean_abs_high", "Mean |change| when clamped high."),
    ("fraction_low", "Share of images whose |change| reached delta when clamped low."),
    ("fraction_high", "Share of images whose |change| reached delta when clamped high."),
    ("max_abs", "Largest |change| over the images and both clamps."),
    ("effect_lower", "Lower bound of the bootstrap interval of the effect (resampling the images; the sweep's "
     "confidence level); empty when the sweep has no intervals."),
    ("effect_upper", "Upper bound of that interval."),
    ("low_lower", "Lower bound of the interval of the aggregate when clamped low."),
    ("low_upper", "Upper bound of the interval of the aggregate when clamped low."),
    ("high_lower", "Lower bound of the interval of the aggregate when clamped high."),
    ("high_upper", "Upper bound of the interval of the aggregate when clamped high."),
    ("selection_frequency", "Share of bootstrap resamples in which the dimension passes the selection threshold."),
    ("borderline", "yes when the dimension is not selected but its interval or the deltas' numeric tolerance "
     "reaches the threshold."),
    ("borderline_reason", "Why the dimension is borderline."),
]  # fmt: skip

AGREEMENT_COLUMNS = [
    ("review_set", "Name of the review set."),
    ("question", "q1_meaningful, q2_pneumonia (six graded answers) or q2_relevant (relevant or not)."),
    ("method", "Cohen's kappa (two readers) or Fleiss' kappa (three or more)."),
    ("kappa", "The kappa value; empty when undefined or when there are too few readers."),
    ("strength", "Landis and Koch's words for the kappa value."),
    ("observed_agreement", "Mean share of reader pairs giving the same answer to an item."),
    ("items", "Items answered by every reader, which the kappa is computed on."),
    ("readers", "Readers with submitted answers."),
    ("note", "Why a value is missing or says little (too few items), if it does."),
    (
        "kappa_ci_low",
        "Lower end of the 95 % bootstrap interval of kappa over the items; empty when not estimable.",
    ),
    ("kappa_ci_high", "Upper end of the same interval."),
]

SUMMARY_COLUMNS = [
    ("review_set", "Name of the review set."),
    ("style_dimension", "Index of the style dimension."),
    ("layer", "Generator layer."),
    ("channel", "Channel in the layer."),
    ("items", "Items of the dimension in the set."),
    ("meaningful_items", "Items a majority of their readers judged semantically meaningful (Q1)."),
    ("relevant_items", "Items a majority of their readers judged relevant to pneumonia (Q2)."),
    ("factor_names", "Each reader's name for the factor, as 'reader: name', separated by ' | '."),
    ("clinical_majority", "Most frequent factor rating of clinical relevance (yes, possible, no or split)."),
    ("pneumonia_majority", "Most frequent factor rating of pneumonia relevance (yes, possible, no or split)."),
    ("clinically_meaningful", "Majority verdict: yes when more than half rated the factor relevant or "
     "possibly relevant (or, when nobody rated it, more than half of its items were meaningful)."),
    ("pneumonia_relevant", "Majority verdict on pneumonia relevance, likewise."),
    ("verdict_from", "factors (the readers' factor ratings) or items (the item answers)."),
]  # fmt: skip

FACTOR_COLUMNS = [
    ("sweep", "Id of the sweep the dimension comes from."),
    ("style_dimension", "Index of the style dimension."),
    ("layer", "Generator layer."),
    ("channel", "Channel in the layer."),
    ("direction", "low or high: the clamp the sweep found stronger."),
    ("effect", "The sweep's aggregated effect of the dimension."),
    ("review_sets", "Review sets that showed the dimension, separated by ' | '."),
    ("readers", "How many readers rated the factor."),
    ("factor_names", "Each reader's name for the factor, as 'reader: name', separated by ' | '."),
    ("clinical_majority", "Most frequent rating of clinical relevance (yes, possible, no or split)."),
    ("pneumonia_majority", "Most frequent rating of pneumonia relevance (yes, possible, no or split)."),
    ("clinically_relevant", "yes when more than half of the ratings are relevant or possibly relevant."),
    (
        "pneumonia_relevant",
        "yes when more than half of the pneumonia ratings are relevant or possibly relevant.",
    ),
    ("items", "Review items showing the dimension, over all its review sets."),
]

AUDIT_COLUMNS = [
    ("at", "When it happened (UTC, ISO 8601)."),
    ("user_id", "Id of the user; empty for the system (e.g. jobs queued by a worker)."),
    ("username", "Their username at the time."),
    ("action", "view_item, view_image, save_answer, submit_answer, name_factor, finalise_set, launch_job, "
     "cancel_job or export."),
    ("target", "What it was done to, as model:id (e.g. case:12, annotation:7, job:3, reviewset:2)."),
    ("detail", "More about it as JSON (e.g. the review set and position of a viewed case, the answer "
     "fields a save changed, the table exported)."),
]  # fmt: skip


def header(columns: list[tuple[str, str]]) -> list[str]:
    return [name for name, _ in columns]


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value is not None else ""


def _yes_no(value: bool | None) -> str:
    return {True: "yes", False: "no"}.get(value, "")


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


def review_table_rows(*, review_set: ReviewSet, include_drafts: bool = False) -> Iterator[list[str]]:
    """The review table of papers/003 Appendix A Table 1, one row per reader and item, ordered by dimension
    rank, image index and reader, lab items after the sweep's (REVIEW_COLUMNS)."""
    finalised = dict(
        ReviewAssignment.objects.filter(review_set=review_set).values_list("reader_id", "finalised_at")
    )
    answers = Annotation.objects.filter(item__review_set=review_set)
    if not include_drafts:
        answers = answers.filter(is_draft=False)
    cf, lab = "item__counterfactual__", "item__lab_run__"
    rows = answers.order_by(
        F(f"{cf}dimension__rank").asc(nulls_last=True), F(f"{cf}dimension__dim").asc(nulls_last=True),
        "item__position", "reader__username",
    )  # fmt: skip
    fields = (
        f"{cf}dimension__dim", "item__position", "q1_meaningful", "clinical_description", "q2_pneumonia",
        "comment", "confidence", "reader__username", "reader_id", f"{cf}projection__case__original_filename",
        f"{cf}projection__case__label", f"{cf}direction", f"{cf}dimension__layer", f"{cf}dimension__channel",
        f"{cf}clamp_value", f"{cf}projection__prob_original", f"{cf}prob_reconstruction", f"{cf}prob_perturbed",
        "item__rank_in_dimension", "is_draft", "time_spent_seconds", "created_at", "updated_at", "submitted_at",
        f"{lab}method", f"{lab}case__original_filename", f"{lab}case__label", f"{lab}prob_original",
        f"{lab}prob_start", f"{lab}prob_counterfactual", "flag", "region", "finding", "saliency_relevant",
        "confidence_before", "confidence_after", "explanation_shown_at",
    )  # fmt: skip
    for (
        dim, position, q1, description, q2, comment, confidence, reader, reader_id, case, label, direction,
        layer, channel, clamp, p_original, p_recon, p_perturbed, rank, is_draft, seconds, created, updated,
        submitted, method, lab_case, lab_label, lab_original, lab_start, lab_counterfactual, flag, region,
        finding, salient, before, after, shown,
    ) in rows.values_list(*fields).iterator(chunk_size=CHUNK):  # fmt: skip
        source = "sweep"
        if method:
            source, case, label = f"lab:{method}", lab_case, lab_label
            p_original, p_perturbed = lab_original, lab_counterfactual
            p_recon = lab_start if lab_start is not None else lab_original
        clinical = description or ("no" if q1 is False else "")
        change = p_perturbed - p_recon if p_perturbed is not None and p_recon is not None else None
        yield [
            "" if dim is None else dim, position, clinical, q2, _yes_no(q1), _yes_no(is_relevant(q2)) if q2 else "",
            comment, "" if confidence is None else confidence, reader, review_set.name, case,
            "" if label is None else label, direction or "", layer or "", "" if channel is None else channel,
            _number(clamp), _number(p_original), _number(p_recon), _number(p_perturbed), _number(change),
            "" if rank is None else rank, "draft" if is_draft else "submitted", seconds, _iso(created),
            _iso(updated), _iso(submitted), _iso(finalised.get(reader_id)), source, flag, region, finding,
            ReviewItem.Arm.SALIENCY if method in LabRun.SALIENCY_METHODS else ReviewItem.Arm.COUNTERFACTUAL,
            _yes_no(salient), "" if before is None else before, "" if after is None else after,
            "" if before is None or after is None else after - before, _iso(shown),
        ]  # fmt: skip


def dimension_table_rows(*, sweep: Sweep) -> Iterator[list]:
    """Every dimension of a sweep with its effect (DIMENSION_COLUMNS), strongest first."""
    fields = (
        "dim", "layer", "channel", "kind", "resolution", "rank", "effect", "direction", "raises_score",
        "selected", "mean_low", "mean_high", "mean_abs_low", "mean_abs_high", "fraction_low", "fraction_high",
        "max_abs", "effect_lower", "effect_upper", "low_lower", "low_upper", "high_lower", "high_upper",
        "frequency", "borderline", "borderline_reason",
    )  # fmt: skip
    rows = DimensionEffect.objects.filter(sweep=sweep).order_by("rank", "dim").values_list(*fields)
    for row in rows.iterator(chunk_size=CHUNK):
        (dim, layer, channel, kind, resolution, rank, effect, direction, raises, selected, *numbers) = row
        *numbers, borderline, reason = numbers
        yield [
            sweep.pk, dim, layer, channel, kind, resolution, rank, _number(effect), direction, _yes_no(raises),
            _yes_no(selected), *(_number(n) for n in numbers), _yes_no(borderline), reason,
        ]  # fmt: skip


def agreement_rows(*, review_set: ReviewSet) -> Iterator[list]:
    """Agreement per question (AGREEMENT_COLUMNS)."""
    for result in review_set_agreement(review_set=review_set):
        yield [
            review_set.name, result.question, result.method,
            "" if result.kappa is None else f"{result.kappa:.4f}", result.strength,
            "" if result.observed is None else f"{result.observed:.4f}", result.items, result.readers,
            result.note,
            "" if result.interval is None else f"{result.interval[0]:.4f}",
            "" if result.interval is None else f"{result.interval[1]:.4f}",
        ]  # fmt: skip


def summary_rows(*, review_set: ReviewSet) -> Iterator[list]:
    """Per-dimension verdicts (SUMMARY_COLUMNS)."""
    for verdict in review_set_summary(review_set=review_set).dimensions:
        dimension = verdict.dimension
        yield [
            review_set.name, dimension.dim, dimension.layer, dimension.channel, verdict.items,
            verdict.meaningful_items, verdict.relevant_items,
            " | ".join(f"{reader}: {name}" for reader, name in verdict.names), verdict.clinical_majority,
            verdict.pneumonia_majority, _yes_no(verdict.clinically_meaningful),
            _yes_no(verdict.pneumonia_relevant), verdict.source,
        ]  # fmt: skip


class CatalogueEntry:
    """One reviewed dimension of a study: its readers' names and ratings over all review sets."""

    def __init__(self, dimension: DimensionEffect):
        self.dimension = dimension
        self.review_sets: list[str] = []
        self.names: list[tuple[str, str, str]] = []  # (reader, review set, name)
        self.clinical_votes: Counter = Counter()
        self.pneumonia_votes: Counter = Counter()
        self.items = 0
        self.examples: list[Counterfactual] = []

    @property
    def readers(self) -> int:
        return sum(self.clinical_votes.values())

    @property
    def clinical_majority(self) -> str:
        return majority(self.clinical_votes)

    @property
    def pneumonia_majority(self) -> str:
        return majority(self.pneumonia_votes)

    @property
    def clinically_relevant(self) -> bool:
        relevant = sum(self.clinical_votes[r] for r in RELEVANT_FACTOR_RATINGS)
        return self.readers > 0 and 2 * relevant > self.readers

    @property
    def pneumonia_relevant(self) -> bool:
        relevant = sum(self.pneumonia_votes[r] for r in RELEVANT_FACTOR_RATINGS)
        return self.readers > 0 and 2 * relevant > self.readers


def factor_catalogue(*, study: Study, examples: int = 3) -> list[CatalogueEntry]:
    """Every dimension of the study shown in a review set (the paper's Figure 3): the names each reader gave
    it, the majority verdicts and up to ``examples`` counterfactuals of it, strongest change first."""
    items = (
        ReviewItem.objects.filter(review_set__study=study, counterfactual__isnull=False)
        .select_related(
            "review_set", "counterfactual", "counterfactual__dimension", "counterfactual__projection"
        )
        .order_by("counterfactual__dimension__sweep", "counterfactual__dimension__rank", "rank_in_dimension")
    )
    entries: dict[int, CatalogueEntry] = {}
    for item in items:
        dimension = item.counterfactual.dimension
        entry = entries.setdefault(dimension.pk, CatalogueEntry(dimension))
        entry.items += 1
        if item.review_set.name not in entry.review_sets:
            entry.review_sets.append(item.review_set.name)
        if len(entry.examples) < examples and item.counterfactual not in entry.examples:
            entry.examples.append(item.counterfactual)
    factors = (
        FactorAnnotation.objects.filter(review_set__study=study, dimension__in=list(entries))
        .exclude(factor_name="")
        .select_related("reader", "review_set")
        .order_by("reader__username")
    )
    for factor in factors:
        entry = entries[factor.dimension_id]
        entry.names.append((factor.reader.get_username(), factor.review_set.name, factor.factor_name))
        entry.clinical_votes[factor.clinical_relevance] += 1
        entry.pneumonia_votes[factor.pneumonia_relevance] += 1
    return list(entries.values())


def factor_catalogue_rows(*, study: Study) -> Iterator[list]:
    """The factor catalogue (FACTOR_COLUMNS)."""
    for entry in factor_catalogue(study=study, examples=0):
        dimension = entry.dimension
        yield [
            dimension.sweep_id, dimension.dim, dimension.layer, dimension.channel, dimension.direction,
            _number(dimension.effect), " | ".join(entry.review_sets), entry.readers,
            " | ".join(f"{reader}: {name}" for reader, _, name in entry.names), entry.clinical_majority,
            entry.pneumonia_majority, _yes_no(entry.clinically_relevant), _yes_no(entry.pneumonia_relevant),
            entry.items,
        ]  # fmt: skip


def audit_rows(
    *,
    username: str = "",
    action: str = "",
    target: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
) -> Iterator[list]:
    """The audit trail (AUDIT_COLUMNS), oldest first, narrowed by whichever filters are given."""
    events = AuditEvent.objects.order_by("at", "pk")
    if username:
        events = events.filter(username=username)
    if action:
        events = events.filter(action=action)
    if target:
        events = events.filter(target=target)
    if since is not None:
        events = events.filter(at__gte=since)
    if until is not None:
        events = events.filter(at__lt=until)
    fields = ("at", "user_id", "username", "action", "target", "detail")
    for at, user_id, name, what, on, detail in events.values_list(*fields).iterator(chunk_size=CHUNK):
        yield [
            _iso(at),
            "" if user_id is None else user_id,
            name,
            what,
            on,
            json.dumps(detail, sort_keys=True),
        ]
