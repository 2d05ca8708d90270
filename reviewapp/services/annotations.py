"""A reader's answers: drafts that autosave, submitted answers, factor names, and finalising a set.

The protocol is papers/003 3.2: Q1 "Is the change semantically meaningful?" (if yes, a clinical description
is required) and Q2 "Is the change relevant to pneumonia?" with the graded answers of Appendix A, plus an
optional comment and confidence. Answers stay editable until the reader finalises the set.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from reviewapp.models import (
    Annotation,
    ChestRegion,
    DimensionEffect,
    FactorAnnotation,
    FactorRelevance,
    Finding,
    ItemFlag,
    PneumoniaRelevance,
    ReviewAssignment,
    ReviewItem,
)

#: Longest stretch of reading time one save may add: a tab left open overnight does not count as reading.
MAX_SECONDS_PER_SAVE = 600
MAX_TEXT_LENGTH = 5000
MAX_FACTOR_NAME_LENGTH = 200


@dataclass(frozen=True)
class Answers:
    """What a reader can answer about one item; empty values are unanswered."""

    q1_meaningful: bool | None = None
    clinical_description: str = ""
    q2_pneumonia: str = ""
    comment: str = ""
    confidence: int | None = None
    flag: str = ""
    region: str = ""
    finding: str = ""

    def missing(self) -> dict[str, str]:
        """Field -> message for each answer that submitting requires and is missing; a flagged item
        (image unreadable, not sure) needs none."""
        errors: dict[str, str] = {}
        if self.flag:
            return errors
        if self.q1_meaningful is None:
            errors["q1_meaningful"] = "Say whether the change is semantically meaningful."
        elif self.q1_meaningful and not self.clinical_description.strip():
            errors["clinical_description"] = "Describe the change clinically (Q1 is yes)."
        if not self.q2_pneumonia:
            errors["q2_pneumonia"] = "Say whether the change is relevant to pneumonia."
        return errors

    def invalid(self) -> dict[str, str]:
        """Field -> message for each value that no save accepts."""
        errors = {}
        if self.q2_pneumonia and self.q2_pneumonia not in PneumoniaRelevance.values:
            errors["q2_pneumonia"] = f"Unknown answer {self.q2_pneumonia!r}."
        if self.confidence is not None and not 1 <= self.confidence <= 5:
            errors["confidence"] = "Confidence is 1 to 5."
        for name, choices in (("flag", ItemFlag), ("region", ChestRegion), ("finding", Finding)):
            value = getattr(self, name)
            if value and value not in choices.values:
                errors[name] = f"Unknown {name} {value!r}."
        for name in ("clinical_description", "comment"):
            if len(getattr(self, name)) > MAX_TEXT_LENGTH:
                errors[name] = f"At most {MAX_TEXT_LENGTH} characters."
        return errors


def _check_open(assignment: ReviewAssignment, item: ReviewItem) -> None:
    if item.review_set_id != assignment.review_set_id:
        raise ValidationError("This item is not part of the reader's review set.")
    if assignment.finalised_at is not None:
        raise ValidationError(
            "You finalised this review set; its answers can no longer be changed.", code="finalised"
        )


def _seconds(seconds: int) -> int:
    return max(0, min(int(seconds), MAX_SECONDS_PER_SAVE))


def _store(
    *, assignment: ReviewAssignment, item: ReviewItem, answers: Answers, seconds: int, submit: bool
) -> Annotation:
    _check_open(assignment, item)
    errors = answers.invalid()
    if errors:
        raise ValidationError(errors)
    annotation = Annotation.objects.select_for_update().filter(
        item=item, reader=assignment.reader_id
    ).first() or Annotation(item=item, reader_id=assignment.reader_id)
    for name, value in asdict(answers).items():
        setattr(annotation, name, value)
    annotation.time_spent_seconds += _seconds(seconds)
    if submit:
        missing = answers.missing()
        if missing:
            raise ValidationError(missing)
        annotation.is_draft = False
        annotation.submitted_at = timezone.now()
    elif answers.missing():
        # An edit that leaves a submitted answer incomplete makes it a draft again until resubmitted.
        annotation.is_draft = True
        annotation.submitted_at = None
    annotation.save()
    return annotation


@transaction.atomic
def annotation_save_draft(
    *, assignment: ReviewAssignment, item: ReviewItem, answers: Answers, seconds: int = 0
) -> Annotation:
    """Store the reader's answers as they are (autosave). A submitted answer edited into a complete one
    stays submitted; ``seconds`` of reading time are added (at most MAX_SECONDS_PER_SAVE per save)."""
    return _store(assignment=assignment, item=item, answers=answers, seconds=seconds, submit=False)


@transaction.atomic
def annotation_submit(
    *, assignment: ReviewAssignment, item: ReviewItem, answers: Answers, seconds: int = 0
) -> Annotation:
    """Store the reader's complete answers as submitted; raises ``ValidationError`` (field -> message) when
    an answer the protocol requires is missing, and stores nothing then."""
    return _store(assignment=assignment, item=item, answers=answers, seconds=seconds, submit=True)


@transaction.atomic
def factor_annotation_save(
    *,
    assignment: ReviewAssignment,
    dimension: DimensionEffect,
    factor_name: str,
    clinical_relevance: str,
    pneumonia_relevance: str,
    comment: str = "",
) -> FactorAnnotation:
    """Name a style dimension and rate its overall clinical and pneumonia relevance, once the reader has
    answered every item of that dimension in the set."""
    review_set = assignment.review_set
    if assignment.finalised_at is not None:
        raise ValidationError(
            "You finalised this review set; its answers can no longer be changed.", code="finalised"
        )
    items = ReviewItem.objects.filter(review_set=review_set, counterfactual__dimension=dimension)
    total = items.count()
    if total == 0:
        raise ValidationError("This dimension is not part of the review set.")
    answered = Annotation.objects.filter(item__in=items, reader=assignment.reader_id, is_draft=False).count()
    if answered < total:
        raise ValidationError(f"Answer all {total} items of this factor first ({answered} answered).")
    errors = {}
    factor_name = factor_name.strip()
    if not factor_name:
        errors["factor_name"] = "Name the factor, e.g. 'blurring of the right heart border'."
    elif len(factor_name) > MAX_FACTOR_NAME_LENGTH:
        errors["factor_name"] = f"At most {MAX_FACTOR_NAME_LENGTH} characters."
    for name, value in (
        ("clinical_relevance", clinical_relevance),
        ("pneumonia_relevance", pneumonia_relevance),
    ):
        if value not in FactorRelevance.values:
            errors[name] = "Choose relevant, possibly relevant or not relevant."
    if len(comment) > MAX_TEXT_LENGTH:
        errors["comment"] = f"At most {MAX_TEXT_LENGTH} characters."
    if errors:
        raise ValidationError(errors)
    factor, _ = FactorAnnotation.objects.update_or_create(
        review_set=review_set,
        dimension=dimension,
        reader_id=assignment.reader_id,
        defaults={
            "factor_name": factor_name,
            "clinical_relevance": clinical_relevance,
            "pneumonia_relevance": pneumonia_relevance,
            "comment": comment,
        },
    )
    return factor


@transaction.atomic
def assignment_finalise(*, assignment: ReviewAssignment) -> ReviewAssignment:
    """Close the reader's answers on the set; every item needs a submitted answer first."""
    assignment = ReviewAssignment.objects.select_for_update().get(pk=assignment.pk)
    if assignment.finalised_at is not None:
        return assignment
    total = ReviewItem.objects.filter(review_set=assignment.review_set_id).count()
    answered = Annotation.objects.filter(
        item__review_set=assignment.review_set_id, reader=assignment.reader_id, is_draft=False
    ).count()
    if answered < total:
        raise ValidationError(f"{total - answered} of {total} items are not submitted yet.")
    assignment.finalised_at = timezone.now()
    assignment.save(update_fields=["finalised_at"])
    return assignment
