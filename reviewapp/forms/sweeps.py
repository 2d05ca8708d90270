"""Forms of sweeps and review sets."""

from __future__ import annotations

from django import forms

from reviewapp.models import Sweep


class SweepForm(forms.Form):
    """Launch a sweep: which held-out cases, mode, selection and curation filters (papers/003 defaults)."""

    cases = forms.ModelMultipleChoiceField(
        queryset=None, widget=forms.CheckboxSelectMultiple, label="Held-out cases", required=False
    )
    mode = forms.ChoiceField(choices=Sweep.Mode.choices, initial=Sweep.Mode.EXACT)
    screening_top_k = forms.IntegerField(
        min_value=1, initial=64, label="Screening: dimensions per image evaluated exactly"
    )
    aggregation = forms.ChoiceField(choices=Sweep.Aggregation.choices, initial=Sweep.Aggregation.MEAN_ABS)
    delta = forms.FloatField(min_value=0.0, max_value=1.0, initial=0.3, label="Delta (selection threshold)")
    min_fraction = forms.FloatField(
        min_value=0.0, max_value=1.0, initial=0.1, label="Minimum fraction (fraction aggregation)"
    )
    select_top = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=5000,
        label="Or select the K strongest dimensions",
        help_text="Leave empty to select by the threshold. Useful when the classifier's scores are mostly near 0 "
        "or 1, where no single change reaches delta on average; the paper reviewed 10 dimensions.",
    )
    top_k = forms.IntegerField(min_value=1, max_value=100, initial=5, label="Images per dimension")
    min_confidence = forms.FloatField(min_value=0.0, max_value=1.0, initial=0.9, label="Minimum confidence")
    min_psnr = forms.FloatField(required=False, initial=25.0, label="Minimum PSNR (dB)")
    min_ssim = forms.FloatField(required=False, min_value=-1.0, max_value=1.0, label="Minimum SSIM")
    max_perceptual = forms.FloatField(required=False, min_value=0.0, label="Maximum perceptual distance")
    max_prob_diff = forms.FloatField(
        required=False, min_value=0.0, max_value=1.0, initial=0.1, label="Maximum |C(x) − C(G(S))|"
    )

    def __init__(self, *args, cases, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["cases"].queryset = cases
        self.fields["cases"].label_from_instance = lambda case: case.original_filename

    def sweep_parameters(self) -> dict:
        return {name: value for name, value in self.cleaned_data.items() if name != "cases"}


class ReviewSetForm(forms.Form):
    name = forms.CharField(max_length=200)
    dimensions = forms.ModelMultipleChoiceField(
        queryset=None, widget=forms.CheckboxSelectMultiple, label="Dimensions"
    )
    per_dimension = forms.IntegerField(min_value=1, max_value=50, initial=5, label="Items per dimension")
    blinded = forms.BooleanField(
        required=False, initial=True, help_text="Readers see neither the dimension nor the case name."
    )
    randomise_order = forms.BooleanField(
        required=False, initial=True, help_text="Each reader gets their own stable random order."
    )
    show_probabilities = forms.BooleanField(
        required=False, initial=True, help_text="Show the classifier's probability on each image."
    )
    instructions = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args, dimensions, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["dimensions"].queryset = dimensions
        self.fields["dimensions"].label_from_instance = lambda d: (
            f"{d.dim} · {d.layer}:{d.channel} · effect {d.effect:.3f} ({d.get_direction_display().lower()})"
        )


class AssignForm(forms.Form):
    readers = forms.ModelMultipleChoiceField(
        queryset=None, widget=forms.CheckboxSelectMultiple, label="Reviewers"
    )

    def __init__(self, *args, readers, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["readers"].queryset = readers
