"""Forms of the Counterfactual lab: launch a run (case, method, target, the method's main options) and add a
finished run to a review set.

The option fields take their defaults from the engine's config dataclasses, so the form offers what the
engine would do anyway; the service validates the options again through the engine's ``make_config``.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from django import forms

from reviewapp.bridge.lab import ANCHORS, BASELINES, DIRECTIONS, MANIFOLD_TERMS, METHODS, option_spec
from reviewapp.inputs import json_loads
from reviewapp.models import Case, LabRun, ReviewSet, Study

#: One sentence per method, shown beside the method's options and in the admin guide.
METHOD_NOTES = {
    "stylespace": "Clamps the one StyleSpace dimension that moves the classifier most toward the target to its "
    "range (papers/003).",
    "gci": "Optimises the projected style vector for the smallest change that reaches the target, with "
    "lambda found by bisection (papers/002).",
    "dip": "A deep image prior recovers a pre-image of the classifier's first block, then edits it toward "
    "the target with the loss estimator keeping it typical (papers/000).",
    "disc": "Deep inversion with a DIP or Fourier-feature prior, a manifold term and rising target "
    "confidence stages (papers/001).",
    "gradcam": "Saliency baseline: where the last feature block's evidence for the target lies.",
    "integrated_gradients": "Saliency baseline: pixel attributions along a path from a blurred copy.",
    "latentshift": "Moves the case's autoencoder code along the classifier's gradient until the decision "
    "flips, and shows the decoded sequence as a film (Cohen et al. 2021).",
}

#: The options the form offers per method (any other option goes in the JSON box).
MAIN_OPTIONS: dict[str, tuple[str, ...]] = {
    "stylespace": ("dimension", "direction", "projection_steps"),
    "gci": ("steps", "bisection_steps", "anchor", "projection_steps"),
    "dip": ("pixel_warmup_steps", "preimage_steps", "counterfactual_steps", "loss_estimator_weight"),
    "disc": ("prior", "reconstruction_steps", "stage_steps", "manifold"),
    "gradcam": ("layer",),
    "integrated_gradients": ("steps", "baseline"),
    "latentshift": ("lambda_step", "max_steps", "iterative"),
}

OPTION_CHOICES = {
    "direction": DIRECTIONS,
    "anchor": ANCHORS,
    "prior": ("dip", "inr"),
    "manifold": MANIFOLD_TERMS,
    "baseline": BASELINES,
}

OPTION_HELP = {
    ("stylespace", "dimension"): "Empty: screened for the dimension that moves most toward the target.",
    ("stylespace", "direction"): "Empty: the clamp that moves toward the target.",
    ("stylespace", "projection_steps"): "Only when the case has no projection yet.",
    ("gci", "steps"): "Adam steps per lambda tried.",
    ("gci", "bisection_steps"): "At most this many bisection trials once lambda is bracketed.",
    ("gci", "projection_steps"): "Only when the case has no projection yet.",
    ("dip", "loss_estimator_weight"): "0 = plain deep image prior, without the loss estimator.",
    ("disc", "manifold"): "Empty: the loss estimator, else the discriminator, else augmentations.",
    ("gradcam", "layer"): "Empty: the classifier's last named feature block.",
    ("integrated_gradients", "steps"): "Points on the path from the baseline.",
    ("latentshift", "lambda_step"): "Step of the shift, in units of the latent code's size.",
    ("latentshift", "max_steps"): "Steps before giving up when the decision does not flip.",
    ("latentshift", "iterative"): "Take the gradient again after every step (a path that can bend).",
}


def _option_field(method: str, field: dataclasses.Field) -> forms.Field:
    """A form field of one option; its default and bounds are the method's config's (``option_spec``)."""
    kinds = [kind.strip() for kind in str(field.type).split("|")]
    optional = "None" in kinds
    default = None if field.default is dataclasses.MISSING else field.default
    bounds = option_spec(method, field.name)
    label = field.name.replace("_", " ").capitalize()
    help_text = OPTION_HELP.get((method, field.name), "")
    if field.name in OPTION_CHOICES:
        choices = [(value, value) for value in OPTION_CHOICES[field.name]]
        if optional:
            choices = [("", "automatic"), *choices]
        return forms.ChoiceField(
            choices=choices, required=False, initial=default or "", label=label, help_text=help_text
        )
    if "int" in kinds:
        return forms.IntegerField(
            required=False,
            initial=default,
            min_value=int(bounds.min) if bounds.min is not None else None,
            max_value=int(bounds.max) if bounds.max is not None else None,
            label=label,
            help_text=help_text,
        )
    if "float" in kinds:
        return forms.FloatField(
            required=False,
            initial=default,
            min_value=bounds.min,
            max_value=bounds.max,
            label=label,
            help_text=help_text,
        )
    return forms.CharField(required=False, initial=default or "", label=label, help_text=help_text)


class LabRunForm(forms.Form):
    """Case, method, target, the chosen method's main options and any other options as JSON."""

    case = forms.ModelChoiceField(queryset=Case.objects.none(), empty_label=None)
    method = forms.ChoiceField(choices=LabRun.Method.choices)
    target = forms.ChoiceField(required=False)
    options_json = forms.CharField(
        required=False,
        label="Other options (JSON)",
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": '{"path_frames": 8}'}),
        help_text='Any option of the method\'s config, e.g. {"lr": 0.05}; it overrides the fields above.',
    )

    def __init__(self, *args, study: Study, **kwargs):
        super().__init__(*args, **kwargs)
        self.study = study
        self.fields["case"].queryset = study.cases.order_by("pk")
        self.fields["case"].label_from_instance = lambda case: (
            f"{case.original_filename} ({case.get_split_display().lower()}"
            f"{', label ' + str(case.label) if case.label is not None else ''})"
        )
        label = study.target_label
        self.fields["target"].choices = [
            ("", "default: the other class than the classifier's decision (saliency maps: the decision)"),
            ("1", label),
            ("0", f"no {label.lower()}"),
        ]
        for method, names in MAIN_OPTIONS.items():
            config_fields = {field.name: field for field in dataclasses.fields(METHODS[method].config)}
            for name in names:
                self.fields[f"{method}-{name}"] = _option_field(method, config_fields[name])
            if "projection_steps" in names:
                # A case without a projection is projected as the study projects its cases.
                self.fields[f"{method}-projection_steps"].initial = study.projection_steps

    def method_fields(self) -> list[tuple[str, str, str, list]]:
        """(method, its name, its note, its bound option fields) for the template."""
        return [
            (
                method,
                LabRun.Method(method).label,
                METHOD_NOTES[method],
                [self[f"{method}-{n}"] for n in names],
            )
            for method, names in MAIN_OPTIONS.items()
        ]

    def clean_options_json(self) -> dict:
        text = self.cleaned_data["options_json"].strip()
        if not text:
            return {}
        try:
            value = json_loads(text)
        except json.JSONDecodeError as error:
            raise forms.ValidationError(f"Not valid JSON: {error.msg} (line {error.lineno}).") from None
        except ValueError as error:
            raise forms.ValidationError(f"Not valid JSON: {error}.") from None
        if not isinstance(value, dict):
            raise forms.ValidationError('Give an object of option names and values, e.g. {"lr": 0.05}.')
        return value

    def parameters(self) -> dict[str, Any]:
        """The chosen method's options: the filled-in main options, then the JSON ones."""
        method = self.cleaned_data["method"]
        options = {}
        for name in MAIN_OPTIONS[method]:
            value = self.cleaned_data.get(f"{method}-{name}")
            if value is not None and value != "":
                options[name] = value
        return {**options, **self.cleaned_data["options_json"]}


class AddToReviewSetForm(forms.Form):
    review_set = forms.ModelChoiceField(queryset=ReviewSet.objects.none(), empty_label=None)

    def __init__(self, *args, review_sets, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["review_set"].queryset = review_sets
