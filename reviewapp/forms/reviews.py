"""Forms of the reading screen and the factor page."""

from __future__ import annotations

from django import forms

from reviewapp.models import ChestRegion, FactorRelevance, Finding, ItemFlag, PneumoniaRelevance
from reviewapp.services.annotations import ANSWER_FIELDS, MAX_FACTOR_NAME_LENGTH, MAX_TEXT_LENGTH, Answers

YES_NO = [("yes", "Yes"), ("no", "No")]
CONFIDENCE = [(str(n), str(n)) for n in range(1, 6)]


def _yes_no(value: str) -> bool | None:
    return {"yes": True, "no": False}.get(value)


def _rating(value: int | None) -> str:
    return "" if value is None else str(value)


class AnnotationForm(forms.Form):
    """The protocol's answers, every one optional here: drafts may be incomplete, and the service says
    what submitting still needs."""

    q1_meaningful = forms.TypedChoiceField(
        label="Is the change semantically meaningful?",
        choices=YES_NO,
        coerce=_yes_no,
        empty_value=None,
        required=False,
        widget=forms.RadioSelect,
    )
    clinical_description = forms.CharField(
        label="Clinical description of the change",
        required=False,
        max_length=MAX_TEXT_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    q2_pneumonia = forms.ChoiceField(
        label="Is the change relevant to pneumonia?",
        choices=PneumoniaRelevance.choices,
        required=False,
        widget=forms.RadioSelect,
    )
    comment = forms.CharField(
        label="Comment", required=False, max_length=MAX_TEXT_LENGTH, widget=forms.Textarea(attrs={"rows": 2})
    )
    confidence = forms.TypedChoiceField(
        label="Confidence", choices=CONFIDENCE, coerce=int, empty_value=None, required=False,
        widget=forms.RadioSelect,
    )  # fmt: skip
    flag = forms.ChoiceField(label="Pass on this item", choices=ItemFlag.choices, required=False)
    region = forms.ChoiceField(
        label="Where", choices=[("", "—"), *ChestRegion.choices], required=False, widget=forms.Select
    )
    finding = forms.ChoiceField(
        label="Finding", choices=[("", "—"), *Finding.choices], required=False, widget=forms.Select
    )
    saliency_relevant = forms.TypedChoiceField(
        label="Does the highlighted region show findings relevant to the label?",
        choices=YES_NO,
        coerce=_yes_no,
        empty_value=None,
        required=False,
        widget=forms.RadioSelect,
    )
    confidence_before = forms.TypedChoiceField(
        label="Confidence in the classifier's call, before the explanation", choices=CONFIDENCE, coerce=int,
        empty_value=None, required=False, widget=forms.RadioSelect,
    )  # fmt: skip
    confidence_after = forms.TypedChoiceField(
        label="Confidence in the classifier's call, with the explanation", choices=CONFIDENCE, coerce=int,
        empty_value=None, required=False, widget=forms.RadioSelect,
    )  # fmt: skip
    seconds = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)
    version = forms.IntegerField(required=False, min_value=0, max_value=2**31 - 1, widget=forms.HiddenInput)

    def answers(self) -> Answers:
        data = self.cleaned_data
        return Answers(
            q1_meaningful=data["q1_meaningful"],
            clinical_description=data["clinical_description"].strip(),
            q2_pneumonia=data["q2_pneumonia"],
            comment=data["comment"].strip(),
            confidence=data["confidence"],
            flag=data.get("flag") or "",
            region=data.get("region") or "",
            finding=data.get("finding") or "",
            saliency_relevant=data.get("saliency_relevant"),
            confidence_before=data.get("confidence_before"),
            confidence_after=data.get("confidence_after"),
        )

    def seconds_spent(self) -> int:
        return self.cleaned_data.get("seconds") or 0

    def carried(self) -> list[str]:
        """The answers this request sends; the others keep their stored values. (An unchecked radio group is
        absent from a browser's form data: a chosen answer cannot be unchosen, only changed.)"""
        return [name for name in ANSWER_FIELDS if name in self.data]

    def loaded_version(self) -> int | None:
        """The version of the answer the page was showing, when it says."""
        return self.cleaned_data.get("version")

    @classmethod
    def initial_from(cls, annotation) -> dict:
        if annotation is None:
            return {"version": 0}
        q1 = {True: "yes", False: "no"}.get(annotation.q1_meaningful, "")
        return {
            "q1_meaningful": q1,
            "clinical_description": annotation.clinical_description,
            "q2_pneumonia": annotation.q2_pneumonia,
            "comment": annotation.comment,
            "confidence": "" if annotation.confidence is None else str(annotation.confidence),
            "version": annotation.version,
            "flag": annotation.flag,
            "region": annotation.region,
            "finding": annotation.finding,
            "saliency_relevant": {True: "yes", False: "no"}.get(annotation.saliency_relevant, ""),
            "confidence_before": _rating(annotation.confidence_before),
            "confidence_after": _rating(annotation.confidence_after),
        }


class FactorAnnotationForm(forms.Form):
    factor_name = forms.CharField(
        label="Name of the factor",
        max_length=MAX_FACTOR_NAME_LENGTH,
        help_text="A short clinical label, e.g. 'blurring of the right heart border'.",
    )
    clinical_relevance = forms.ChoiceField(
        label="Overall clinical relevance", choices=FactorRelevance.choices, widget=forms.RadioSelect
    )
    pneumonia_relevance = forms.ChoiceField(
        label="Overall relevance to pneumonia", choices=FactorRelevance.choices, widget=forms.RadioSelect
    )
    comment = forms.CharField(
        label="Comment", required=False, max_length=MAX_TEXT_LENGTH, widget=forms.Textarea(attrs={"rows": 2})
    )
