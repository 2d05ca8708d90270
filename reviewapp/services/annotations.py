"""A reader's answers: drafts that autosave, submitted answers, factor names, and finalising a set.

The protocol is papers/003 3.2: Q1 "Is the change semantically meaningful?" (if yes, a clinical description
is required) and Q2 "Is the change relevant to pneumonia?" with the graded answers of Appendix A, plus an
optional comment and confidence. Answers stay editable until the reader finalises the set.

A saliency item (a Grad-CAM or integrated-gradients map of the lab) has its own protocol: "Does the
highlighted region show findings relevant to the label?" (yes / no), where (the same region vocabulary;
required when yes) and the same optional confidence. A set with ``confidence_change`` asks on every item for
the reader's confidence (1 to 5) in the classifier's call before the explanation is shown, then with it:
the explanation is shown only once a before-rating is stored (:func:`annotation_show_explanation` records
when), the before-rating is frozen from then on (:class:`BeforeRatingFrozen`), and the answers about the
explanation wait for it (:class:`ExplanationNotShown`).

Nothing a reader stored is lost or overwritten unseen:

- a save changes only the answers it carries (``fields``); the others keep their stored values;
- a submitted answer stays submitted: an edit that would leave it incomplete is refused, not turned into a
  draft;
- every answer has a ``version``; a save that names the version it was based on (``version=``) and finds a
  newer one stored is refused with :class:`AnswerConflict`, and the newer answer is kept;
- every submitted version is appended to :class:`~reviewapp.models.AnswerVersion`.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict, dataclass, replace
from dataclasses import fields as dataclass_fields

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from reviewapp.models import (
    Annotation,
    AnswerVersion,
    AuditAction,
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
from reviewapp.services import audit

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
    saliency_relevant: bool | None = None
    confidence_before: int | None = None
    confidence_after: int | None = None

    @classmethod
    def of(cls, annotation: Annotation) -> Answers:
        """The answers stored on ``annotation``."""
        return cls(**{field.name: getattr(annotation, field.name) for field in dataclass_fields(cls)})

    def missing(
        self, *, arm: str = ReviewItem.Arm.COUNTERFACTUAL, confidence_change: bool = False
    ) -> dict[str, str]:
        """Field -> message for each answer that submitting requires and is missing: the questions of the
        item's ``arm``, and both confidence ratings when the set asks for the ``confidence_change``. A
        flagged item (image unreadable, not sure) needs none."""
        errors: dict[str, str] = {}
        if self.flag:
            return errors
        if confidence_change:
            if self.confidence_before is None:
                errors["confidence_before"] = (
                    "Rate your confidence in the classifier's call before the explanation."
                )
            if self.confidence_after is None:
                errors["confidence_after"] = (
                    "Rate your confidence in the classifier's call with the explanation."
                )
        if arm == ReviewItem.Arm.SALIENCY:
            if self.saliency_relevant is None:
                errors["saliency_relevant"] = "Say whether the highlighted region shows relevant findings."
            elif self.saliency_relevant and not self.region:
                errors["region"] = "Say where the relevant findings are (the highlighted region is relevant)."
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
        for name in ("confidence", "confidence_before", "confidence_after"):
            value = getattr(self, name)
            if value is not None and not 1 <= value <= 5:
                errors[name] = "Confidence is 1 to 5."
        for name, choices in (("flag", ItemFlag), ("region", ChestRegion), ("finding", Finding)):
            value = getattr(self, name)
            if value and value not in choices.values:
                errors[name] = f"Unknown {name} {value!r}."
        for name in ("clinical_description", "comment"):
            if len(getattr(self, name)) > MAX_TEXT_LENGTH:
                errors[name] = f"At most {MAX_TEXT_LENGTH} characters."
        return errors


#: Names of every answer field (the model's, the forms' and the API's names alike).
ANSWER_FIELDS = tuple(field.name for field in dataclass_fields(Answers))
#: In a confidence-change set, the answers a reader may give before the explanation is shown: the rating of
#: the call from the original alone, and passing on the item.
BEFORE_STAGE_FIELDS = ("confidence_before", "flag")


class AnswerConflict(ValidationError):
    """A save based on an older version of the answer than the one stored; nothing was saved."""

    def __init__(self, current: Annotation):
        self.current = current
        saved = timezone.localtime(current.updated_at).strftime("%H:%M:%S %Z")
        super().__init__(
            f"This answer was changed in another tab or window at {saved} (version {current.version}) after "
            "this page loaded it. Nothing was saved here, so the newer answer is kept: reload the page to "
            "see it, then make your change again.",
            code="conflict",
        )


class BeforeRatingFrozen(ValidationError):
    """A change of the before-rating after the explanation was shown; nothing was saved."""

    def __init__(self, current: Annotation):
        self.current = current
        super().__init__(
            {
                "confidence_before": ValidationError(
                    f"Your confidence before the explanation ({current.confidence_before}) was fixed when the "
                    "explanation was shown, and can no longer be changed. Nothing was saved.",
                    code="frozen",
                )
            }
        )
        self.code = "frozen"


class ExplanationNotShown(ValidationError):
    """An answer about the explanation (or the rating with it) before it was shown; nothing was saved."""

    def __init__(self, fields: Collection[str]):
        self.fields = list(fields)
        super().__init__(
            "Rate your confidence in the classifier's call from the original alone and show the explanation "
            f"before answering about it ({', '.join(self.fields)}). Nothing was saved.",
            code="not_shown",
        )


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
    *,
    assignment: ReviewAssignment,
    item: ReviewItem,
    answers: Answers,
    seconds: int,
    submit: bool,
    fields: Collection[str] | None,
    version: int | None,
) -> Annotation:
    _check_open(assignment, item)
    existing = Annotation.objects.select_for_update().filter(item=item, reader=assignment.reader_id).first()
    annotation = existing or Annotation(item=item, reader_id=assignment.reader_id)
    carried = ANSWER_FIELDS if fields is None else [name for name in ANSWER_FIELDS if name in fields]
    before = Answers.of(annotation)
    merged = replace(before, **{name: getattr(answers, name) for name in carried})
    changed = [name for name in ANSWER_FIELDS if getattr(before, name) != getattr(merged, name)]
    if existing is not None and version is not None and version != existing.version and (changed or submit):
        raise AnswerConflict(existing)
    errors = merged.invalid()
    if errors:
        raise ValidationError(errors)
    staged = item.review_set.confidence_change
    shown = existing is not None and existing.explanation_shown_at is not None
    if staged and shown and "confidence_before" in changed:
        raise BeforeRatingFrozen(existing)
    missing = merged.missing(arm=item.arm, confidence_change=staged)
    if submit and missing:
        raise ValidationError(missing)
    early = [name for name in changed if name not in BEFORE_STAGE_FIELDS]
    if staged and not shown and early:
        raise ExplanationNotShown(early)
    was_submitted = existing is not None and not existing.is_draft
    if was_submitted and missing:
        kept = "The submitted answer stays as it was until this is answered."
        raise ValidationError(
            {name: f"{message} {kept}" for name, message in missing.items()}, code="incomplete"
        )
    for name in changed:
        setattr(annotation, name, getattr(merged, name))
    annotation.time_spent_seconds += _seconds(seconds)
    if submit:
        annotation.is_draft = False
        annotation.submitted_at = timezone.now()
    if changed or submit or existing is None:
        annotation.version += 1
    try:
        with transaction.atomic():
            annotation.save()
    except IntegrityError:
        # Another tab created the answer between our read and our write.
        current = Annotation.objects.filter(item=item, reader=assignment.reader_id).first()
        if current is None:
            raise
        raise AnswerConflict(current) from None
    if not annotation.is_draft and (changed or submit):
        AnswerVersion.objects.create(
            annotation=annotation,
            version=annotation.version,
            answers=asdict(merged),
            submitted=submit,
            reader_id=assignment.reader_id,
            reader_name=assignment.reader.get_username(),
            time_spent_seconds=annotation.time_spent_seconds,
        )
    if changed or submit:
        action = AuditAction.SUBMIT_ANSWER if submit else AuditAction.SAVE_ANSWER
        audit.record(
            assignment.reader, action, annotation, item=item.pk, version=annotation.version, changed=changed
        )
    return annotation


@transaction.atomic
def annotation_save_draft(
    *,
    assignment: ReviewAssignment,
    item: ReviewItem,
    answers: Answers,
    seconds: int = 0,
    fields: Collection[str] | None = None,
    version: int | None = None,
) -> Annotation:
    """Store the reader's answers (autosave): only the answers named in ``fields`` (all when None) change.
    A draft stays a draft; a submitted answer stays submitted, and an edit that would leave it incomplete
    raises ``ValidationError``. ``version``: the version the edit was based on; a newer stored one raises
    :class:`AnswerConflict`. ``seconds`` of reading time are added (at most MAX_SECONDS_PER_SAVE per save)."""
    return _store(
        assignment=assignment, item=item, answers=answers, seconds=seconds, submit=False, fields=fields,
        version=version,
    )  # fmt: skip


@transaction.atomic
def annotation_submit(
    *,
    assignment: ReviewAssignment,
    item: ReviewItem,
    answers: Answers,
    seconds: int = 0,
    fields: Collection[str] | None = None,
    version: int | None = None,
) -> Annotation:
    """Store the reader's answers as submitted (``fields`` and ``version`` as for a draft); raises
    ``ValidationError`` (field -> message) when an answer the protocol requires is missing, and stores
    nothing then. Each submit appends a version to the answer's history."""
    return _store(
        assignment=assignment, item=item, answers=answers, seconds=seconds, submit=True, fields=fields,
        version=version,
    )  # fmt: skip


@transaction.atomic
def annotation_show_explanation(
    *,
    assignment: ReviewAssignment,
    item: ReviewItem,
    confidence_before: int | None = None,
    seconds: int = 0,
    version: int | None = None,
) -> Annotation:
    """Record that the reader is shown the explanation of ``item`` in a confidence-change set; from then on
    their before-rating is frozen. ``confidence_before``, when given, is stored first (as a draft save, with
    ``version`` checked as there); a stored before-rating is required. Showing it again changes nothing."""
    _check_open(assignment, item)
    if not item.review_set.confidence_change:
        raise ValidationError("This review set shows the explanation from the start.", code="not_staged")
    if confidence_before is not None or seconds:
        _store(
            assignment=assignment, item=item, answers=Answers(confidence_before=confidence_before),
            seconds=seconds, submit=False, fields=["confidence_before"] if confidence_before else [],
            version=version,
        )  # fmt: skip
    annotation = Annotation.objects.select_for_update().filter(item=item, reader=assignment.reader_id).first()
    if annotation is None or annotation.confidence_before is None:
        raise ValidationError(
            {
                "confidence_before": "Rate your confidence in the classifier's call from the original alone first."
            }
        )
    if annotation.explanation_shown_at is None:
        annotation.explanation_shown_at = timezone.now()
        annotation.save(update_fields=["explanation_shown_at"])
        audit.record(
            assignment.reader, AuditAction.SHOW_EXPLANATION, annotation, item=item.pk,
            confidence_before=annotation.confidence_before,
        )  # fmt: skip
    return annotation


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
    audit.record(assignment.reader, AuditAction.NAME_FACTOR, factor, dimension=dimension.dim)
    return factor


@transaction.atomic
def assignment_finalise(*, assignment: ReviewAssignment) -> ReviewAssignment:
    """Close the reader's answers on the set; every item needs a submitted answer first."""
    reader = assignment.reader
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
    audit.record(reader, AuditAction.FINALISE_SET, assignment.review_set, items=total)
    return assignment
