"""Forms of sweeps and review sets."""

from __future__ import annotations

from django import forms

from reviewapp.forms.fields import IdsField
from reviewapp.models import ReviewSet, Sweep


class SweepForm(forms.ModelForm):
    """Launch a sweep: which held-out cases, the sweep mode and how dimensions are selected.

    The fields, their defaults and their bounds are the Sweep model's (which takes them from the engine's
    ``SweepConfig`` and ``SelectionConfig``); the model's validators check them.
    """

    cases = IdsField(
        queryset=None, widget=forms.CheckboxSelectMultiple, label="Held-out cases", required=False
    )

    class Meta:
        model = Sweep
        fields = ["mode", "screening_top_k", "aggregate", "delta", "min_fraction", "strongest_k", "rule"]
        labels = {
            "screening_top_k": "Screening: dimensions per image evaluated exactly",
            "delta": "Delta (selection threshold)",
            "min_fraction": "Minimum fraction (fraction aggregate)",
            "strongest_k": "Or select the K strongest dimensions",
            "rule": "Selection rule",
        }
        help_texts = {
            "strongest_k": "Leave empty to select by the threshold. Useful when the classifier's scores are "
            "mostly near 0 or 1, where no single change reaches delta on average; the paper reviewed 10 "
            "dimensions.",
            "rule": "The interval rule asks the lower bound of the effect's bootstrap interval over the images to "
            "pass the threshold, so a dimension selected by the accident of the sample is listed as borderline.",
        }

    def __init__(self, *args, cases, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["cases"].queryset = cases
        self.fields["cases"].label_from_instance = lambda case: case.original_filename
        # A request without a rule (a script written before the rule existed) gets the engine's default.
        self.fields["rule"].required = False

    def clean_rule(self) -> str:
        return self.cleaned_data.get("rule") or Sweep._meta.get_field("rule").get_default()

    def sweep_parameters(self) -> dict:
        return {name: self.cleaned_data[name] for name in self.Meta.fields}


class ReviewSetForm(forms.ModelForm):
    """Create a review set from a sweep: its dimensions, how many images per dimension and the curation
    filters (defaults and bounds from the ReviewSet model, which takes them from the engine's
    ``CurationFilters``), and what readers see."""

    dimensions = IdsField(queryset=None, widget=forms.CheckboxSelectMultiple, label="Dimensions")

    class Meta:
        model = ReviewSet
        fields = [
            "name",
            *ReviewSet.CURATION_FIELDS,
            "blinded",
            "randomise_order",
            "show_probabilities",
            "instructions",
        ]
        labels = {
            "images_per_dimension": "Images per dimension",
            "min_confidence": "Minimum confidence",
            "min_psnr": "Minimum PSNR (dB)",
            "min_ssim": "Minimum SSIM",
            "max_perceptual": "Maximum perceptual distance",
            "max_prob_diff": "Maximum |C(x) − C(G(S))|",
        }
        help_texts = {
            "blinded": "Readers see neither the dimension nor the case name.",
            "randomise_order": "Each reader gets their own stable random order.",
            "show_probabilities": "Show the classifier's probability on each image.",
        }
        widgets = {"instructions": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, dimensions, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["dimensions"].queryset = dimensions
        self.fields["dimensions"].label_from_instance = lambda d: (
            f"{d.dim} · {d.layer}:{d.channel} · effect {d.effect:.3f} ({d.get_direction_display().lower()})"
        )

    def review_set_parameters(self) -> dict:
        """The review set's fields as ``review_set_create`` takes them (the dimensions apart)."""
        return {name: self.cleaned_data[name] for name in self.Meta.fields}


class AssignForm(forms.Form):
    readers = IdsField(queryset=None, widget=forms.CheckboxSelectMultiple, label="Reviewers")

    def __init__(self, *args, readers, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["readers"].queryset = readers
