"""Several readers on one review set: agreement per question and the per-dimension verdicts (papers/003 3.2).

Only submitted answers count. An item counts towards agreement when every reader who answered anything in the
set has answered it, so that each kappa compares the same items.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from reviewapp.agreement import (
    MIN_KAPPA_ITEMS,
    kappa,
    kappa_interval,
    kappa_strength,
    mean_interval,
    wilson_interval,
)
from reviewapp.models import (
    Annotation,
    DimensionEffect,
    FactorAnnotation,
    FactorRelevance,
    LabRun,
    PneumoniaRelevance,
    ReviewItem,
    ReviewSet,
)

#: Graded answers to Q2 that count as "relevant to pneumonia" when answers are counted yes/no.
RELEVANT_ANSWERS = frozenset(
    {
        PneumoniaRelevance.YES,
        PneumoniaRelevance.POSSIBLE,
        PneumoniaRelevance.EARLY_CHANGE,
        PneumoniaRelevance.SUBTLE,
    }
)
#: Factor ratings that count as relevant ("possibly relevant" included).
RELEVANT_FACTOR_RATINGS = frozenset({FactorRelevance.YES, FactorRelevance.POSSIBLE})

QUESTIONS = (
    ("q1_meaningful", "Q1: semantically meaningful (yes / no)"),
    ("q2_pneumonia", "Q2: relevance to pneumonia (six graded answers)"),
    ("q2_relevant", "Q2: relevant to pneumonia (yes / possible / early change / subtle vs the rest)"),
)


def is_relevant(answer: str) -> bool:
    return answer in RELEVANT_ANSWERS


@dataclass(frozen=True)
class QuestionAgreement:
    question: str
    label: str
    method: str
    kappa: float | None
    observed: float | None
    items: int
    readers: int
    note: str = ""
    #: The 95 % bootstrap interval of kappa over the items; None when it cannot be estimated.
    interval: tuple[float, float] | None = None

    @property
    def too_few_items(self) -> bool:
        """True when kappa rests on too few shared items to say how well the readers agree."""
        return bool(self.method) and self.items < MIN_KAPPA_ITEMS

    @property
    def strength(self) -> str:
        if not self.method:
            return ""
        if self.too_few_items:
            return "too few items"
        return kappa_strength(self.kappa)


def _submitted(review_set: ReviewSet) -> dict[int, dict[int, tuple[bool, str]]]:
    """item id -> reader id -> (q1, q2) of the submitted answers."""
    answers: dict[int, dict[int, tuple[bool, str]]] = defaultdict(dict)
    # An item a reader passed on (unreadable, not sure) has no answers to agree on; saliency items have
    # their own questions (see :func:`review_set_arms`).
    rows = (
        Annotation.objects.filter(item__review_set=review_set, is_draft=False, flag="")
        .exclude(item__lab_run__method__in=LabRun.SALIENCY_METHODS)
        .values_list("item_id", "reader_id", "q1_meaningful", "q2_pneumonia")
    )
    for item_id, reader_id, q1, q2 in rows:
        answers[item_id][reader_id] = (bool(q1), q2)
    return answers


def _pairwise_agreement(ratings: list[list]) -> float:
    """Mean over items of the share of reader pairs that agree (two readers: the observed agreement)."""
    shares = []
    for row in ratings:
        counts = Counter(row)
        n = len(row)
        shares.append(sum(c * (c - 1) for c in counts.values()) / (n * (n - 1)))
    return sum(shares) / len(shares)


def review_set_agreement(*, review_set: ReviewSet) -> list[QuestionAgreement]:
    """Per question: Cohen's kappa (two readers) or Fleiss' kappa (three or more), the observed agreement
    and how many items and readers it rests on."""
    answers = _submitted(review_set)
    readers = sorted({reader for by_reader in answers.values() for reader in by_reader})
    common = [item for item in sorted(answers) if all(r in answers[item] for r in readers)]
    results = []
    for key, label in QUESTIONS:
        if len(readers) < 2:
            note = "Agreement needs at least two readers with submitted answers."
            results.append(QuestionAgreement(key, label, "", None, None, 0, len(readers), note))
            continue
        if not common:
            note = "No item has been answered by every reader yet."
            results.append(QuestionAgreement(key, label, "", None, None, 0, len(readers), note))
            continue
        ratings = []
        for item in common:
            row = [answers[item][reader] for reader in readers]
            if key == "q1_meaningful":
                ratings.append([q1 for q1, _ in row])
            elif key == "q2_pneumonia":
                ratings.append([q2 for _, q2 in row])
            else:
                ratings.append([is_relevant(q2) for _, q2 in row])
        method, value = kappa(ratings)
        method = "Cohen's kappa" if method == "cohen" else "Fleiss' kappa"
        if value is None:
            note = "Undefined: every reader gave the same answer to every item."
        elif len(common) < MIN_KAPPA_ITEMS:
            note = (
                f"Only {len(common)} item(s) answered by every reader: too few to judge agreement "
                f"(at least {MIN_KAPPA_ITEMS} are needed)."
            )
        else:
            note = ""
        interval = kappa_interval(ratings) if value is not None else None
        results.append(
            QuestionAgreement(
                key,
                label,
                method,
                value,
                _pairwise_agreement(ratings),
                len(common),
                len(readers),
                note,
                interval,
            )
        )
    return results


def majority(votes: Counter) -> str:
    """The most frequent answer, or "split" when two answers tie for it; "" without votes."""
    if not votes:
        return ""
    (top, count), *rest = votes.most_common()
    if rest and rest[0][1] == count:
        return "split"
    return str(top)


@dataclass
class DimensionVerdict:
    """How the readers judged one style dimension of a review set."""

    dimension: DimensionEffect
    items: int = 0
    meaningful_items: int = 0
    relevant_items: int = 0
    names: list[tuple[str, str]] = field(default_factory=list)
    clinical_votes: Counter = field(default_factory=Counter)
    pneumonia_votes: Counter = field(default_factory=Counter)
    #: "factors" when readers rated the factor; "items" when the verdict falls back on the item answers.
    source: str = "items"
    clinically_meaningful: bool = False
    pneumonia_relevant: bool = False

    @property
    def raters(self) -> int:
        """How many readers rated the factor (the verdict from factors rests on them alone)."""
        return sum(self.clinical_votes.values())

    @property
    def clinical_majority(self) -> str:
        return majority(self.clinical_votes)

    @property
    def pneumonia_majority(self) -> str:
        return majority(self.pneumonia_votes)


@dataclass(frozen=True)
class LabItemVerdict:
    """How the readers judged one item added from the Counterfactual lab (it belongs to no dimension)."""

    item: ReviewItem
    answers: int
    meaningful: bool
    relevant: bool


@dataclass
class ReviewSummary:
    """The paper's summary: how many dimensions a majority found clinically meaningful and relevant to
    pneumonia, and how many items a majority judged relevant; lab items are judged one by one beside it."""

    dimensions: list[DimensionVerdict]
    readers: int
    lab_items: list[LabItemVerdict] = field(default_factory=list)

    @property
    def total_items(self) -> int:
        return sum(d.items for d in self.dimensions)

    @property
    def relevant_items(self) -> int:
        return sum(d.relevant_items for d in self.dimensions)

    @property
    def meaningful_items(self) -> int:
        return sum(d.meaningful_items for d in self.dimensions)

    @property
    def meaningful_dimensions(self) -> int:
        return sum(d.clinically_meaningful for d in self.dimensions)

    @property
    def relevant_dimensions(self) -> int:
        return sum(d.pneumonia_relevant for d in self.dimensions)


def _more_than_half(yes: int, total: int) -> bool:
    return total > 0 and 2 * yes > total


def review_set_summary(*, review_set: ReviewSet) -> ReviewSummary:
    """Per dimension: items judged meaningful / relevant by a majority of the readers who answered them,
    the readers' factor names and ratings, and the majority verdict on the dimension. The verdict comes from
    the factor ratings ("relevant" or "possibly relevant" from more than half of the readers who rated the
    factor); a dimension no reader rated falls back on its items (more than half of them judged so)."""
    answers = _submitted(review_set)
    # Lab items belong to no style dimension; they count in the agreement, not here.
    items = ReviewItem.objects.filter(review_set=review_set, counterfactual__isnull=False).values_list(
        "pk", "counterfactual__dimension"
    )
    dimensions = {
        d.pk: DimensionVerdict(dimension=d)
        for d in DimensionEffect.objects.filter(pk__in={dimension_id for _, dimension_id in items}).order_by(
            "rank", "dim"
        )
    }
    for item_id, dimension_id in items:
        verdict = dimensions[dimension_id]
        verdict.items += 1
        given = list(answers.get(item_id, {}).values())
        verdict.meaningful_items += _more_than_half(sum(q1 for q1, _ in given), len(given))
        verdict.relevant_items += _more_than_half(sum(is_relevant(q2) for _, q2 in given), len(given))
    factors = FactorAnnotation.objects.filter(review_set=review_set).exclude(factor_name="")
    for factor in factors.select_related("reader").order_by("reader__username"):
        verdict = dimensions.get(factor.dimension_id)
        if verdict is None:
            continue
        verdict.names.append((factor.reader.get_username(), factor.factor_name))
        verdict.clinical_votes[factor.clinical_relevance] += 1
        verdict.pneumonia_votes[factor.pneumonia_relevance] += 1
    for verdict in dimensions.values():
        rated = sum(verdict.clinical_votes.values())
        if rated:
            verdict.source = "factors"
            relevant = sum(verdict.clinical_votes[r] for r in RELEVANT_FACTOR_RATINGS)
            verdict.clinically_meaningful = _more_than_half(relevant, rated)
            relevant = sum(verdict.pneumonia_votes[r] for r in RELEVANT_FACTOR_RATINGS)
            verdict.pneumonia_relevant = _more_than_half(relevant, rated)
        else:
            verdict.clinically_meaningful = _more_than_half(verdict.meaningful_items, verdict.items)
            verdict.pneumonia_relevant = _more_than_half(verdict.relevant_items, verdict.items)
    lab_items = []
    lab = ReviewItem.objects.filter(review_set=review_set, lab_run__isnull=False).exclude(
        lab_run__method__in=LabRun.SALIENCY_METHODS
    )
    for item in lab.select_related("lab_run__case", "lab_run__study"):
        given = list(answers.get(item.pk, {}).values())
        lab_items.append(
            LabItemVerdict(
                item=item,
                answers=len(given),
                meaningful=_more_than_half(sum(q1 for q1, _ in given), len(given)),
                relevant=_more_than_half(sum(is_relevant(q2) for _, q2 in given), len(given)),
            )
        )
    readers = len({reader for by_reader in answers.values() for reader in by_reader})
    return ReviewSummary(dimensions=list(dimensions.values()), readers=readers, lab_items=lab_items)


@dataclass(frozen=True)
class ArmSummary:
    """One arm of the reader study (counterfactual or saliency items) in numbers.

    ``relevant_items``: items that more than half of the readers who answered them judged relevant (Q2 yes /
    possible / early change / subtle for a counterfactual, "the highlighted region shows relevant findings"
    for a saliency map) out of ``judged_items``, with Wilson's 95 % interval of the share. ``agreement``:
    kappa on relevant-or-not over the arm's items answered by every reader. ``seconds_per_item``: the mean
    reading time of a submitted answer. ``confidence_change``: the mean of (confidence with the explanation
    minus without it) over the submitted answers that rate both, with its 95 % t interval.
    """

    arm: str
    label: str
    items: int
    answers: int
    judged_items: int
    relevant_items: int
    relevant_interval: tuple[float, float] | None
    agreement: QuestionAgreement
    seconds_per_item: float | None
    confidence_changes: int = 0
    confidence_change: float | None = None
    confidence_change_interval: tuple[float, float] | None = None

    @property
    def relevant_share(self) -> float | None:
        return self.relevant_items / self.judged_items if self.judged_items else None


def _arm_agreement(relevance: dict[int, dict[int, bool]], label: str) -> QuestionAgreement:
    readers = sorted({reader for by_reader in relevance.values() for reader in by_reader})
    key = "relevant"
    if len(readers) < 2:
        note = "Agreement needs at least two readers with submitted answers."
        return QuestionAgreement(key, label, "", None, None, 0, len(readers), note)
    common = [item for item in sorted(relevance) if all(r in relevance[item] for r in readers)]
    if not common:
        return QuestionAgreement(
            key, label, "", None, None, 0, len(readers), "No item has been answered by every reader yet."
        )
    ratings = [[relevance[item][reader] for reader in readers] for item in common]
    method, value = kappa(ratings)
    method = "Cohen's kappa" if method == "cohen" else "Fleiss' kappa"
    if value is None:
        note = "Undefined: every reader gave the same answer to every item."
    elif len(common) < MIN_KAPPA_ITEMS:
        note = (
            f"Only {len(common)} item(s) answered by every reader: too few to judge agreement "
            f"(at least {MIN_KAPPA_ITEMS} are needed)."
        )
    else:
        note = ""
    interval = kappa_interval(ratings) if value is not None else None
    return QuestionAgreement(
        key, label, method, value, _pairwise_agreement(ratings), len(common), len(readers), note, interval
    )


def review_set_arms(*, review_set: ReviewSet) -> list[ArmSummary]:
    """The arms of the set that hold items, counterfactual first: see :class:`ArmSummary`."""
    items = {
        item.pk: item.arm
        for item in ReviewItem.objects.filter(review_set=review_set).select_related("lab_run")
    }
    rows = Annotation.objects.filter(item__review_set=review_set, is_draft=False).values_list(
        "item_id", "reader_id", "flag", "q2_pneumonia", "saliency_relevant", "time_spent_seconds",
        "confidence_before", "confidence_after",
    )  # fmt: skip
    by_arm: dict[str, list[tuple]] = defaultdict(list)
    for row in rows:
        by_arm[items[row[0]]].append(row)
    summaries = []
    for arm, label in ReviewItem.Arm.choices:
        count = sum(1 for value in items.values() if value == arm)
        if not count:
            continue
        answers = by_arm.get(arm, [])
        relevance: dict[int, dict[int, bool]] = defaultdict(dict)
        for item_id, reader_id, flag, q2, salient, *_ in answers:
            if flag:
                continue
            relevance[item_id][reader_id] = (
                bool(salient) if arm == ReviewItem.Arm.SALIENCY else is_relevant(q2)
            )
        relevant = sum(_more_than_half(sum(given.values()), len(given)) for given in relevance.values())
        seconds = [row[5] for row in answers]
        changes = [
            after - before for *_, before, after in answers if before is not None and after is not None
        ]
        change = mean_interval(changes)
        question = (
            "Highlighted region relevant (yes vs no)"
            if arm == ReviewItem.Arm.SALIENCY
            else "Q2: relevant to pneumonia (yes / possible / early change / subtle vs the rest)"
        )
        summaries.append(
            ArmSummary(
                arm=arm,
                label=label,
                items=count,
                answers=len(answers),
                judged_items=len(relevance),
                relevant_items=relevant,
                relevant_interval=wilson_interval(relevant, len(relevance)),
                agreement=_arm_agreement(relevance, question),
                seconds_per_item=sum(seconds) / len(seconds) if seconds else None,
                confidence_changes=len(changes),
                confidence_change=change[0] if change else None,
                confidence_change_interval=change[1] if change else None,
            )
        )
    return summaries
