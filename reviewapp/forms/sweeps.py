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


#: The most dimensions one "add by rank" entry may add (each dimension renders its images).
MAX_RANKED_DIMENSIONS = 100


def parse_ranks(text: str, *, highest: int) -> list[int]:
    """Ranks from "2-10, 15": single ranks and inclusive ranges, separated by commas or spaces.

    Raises ``ValidationError`` for anything else, a rank outside 1..``highest``, or more than
    ``MAX_RANKED_DIMENSIONS`` ranks.
    """
    ranks: set[int] = set()
    for part in text.replace(",", " ").split():
        first, dash, last = part.partition("-")
        try:
            low = int(first)
            high = int(last) if dash else low
        except ValueError:
            raise forms.ValidationError(
                f"{part!r} is not a rank or a range of ranks such as 2-10.", code="invalid"
            ) from None
        if low > high:
            low, high = high, low
        if low < 1 or high > highest:
            raise forms.ValidationError(f"Ranks go from 1 to {highest}; {part!r} is outside.", code="range")
        if high - low + 1 + len(ranks) > MAX_RANKED_DIMENSIONS:
            raise forms.ValidationError(
                f"At most {MAX_RANKED_DIMENSIONS} dimensions can be added by rank.", code="too_many"
            )
        ranks.update(range(low, high + 1))
    return sorted(ranks)


class ReviewSetForm(forms.ModelForm):
    """Create a review set from a sweep: its dimensions, how many images per dimension and the curation
    filters (defaults and bounds from the ReviewSet model, which takes them from the engine's
    ``CurationFilters``), and what readers see.

    The dimensions are the ticked ones (the sweep's selected dimensions are offered) and any other ranked
    dimension of the sweep added by rank ("2-10, 15"), so that no new sweep is needed to review more.
    """

    dimensions = IdsField(
        queryset=None, widget=forms.CheckboxSelectMultiple, label="Dimensions", required=False
    )
    ranks = forms.CharField(
        required=False,
        max_length=200,
        label="Add dimensions by rank",
        help_text="Any dimension of the sweep's ranking, e.g. 2-10 or 2-10, 15 (rank 1 = strongest effect).",
    )

    class Meta:
        model = ReviewSet
        fields = [
            "name",
            *ReviewSet.CURATION_FIELDS,
            "blinded",
            "randomise_order",
            "show_probabilities",
            "confidence_change",
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
            "confidence_change": "Readers rate their confidence in the classifier's call from the original "
            "alone, then again with the explanation; the results give the mean change per arm.",
        }
        widgets = {"instructions": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, dimensions, ranked=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["dimensions"].queryset = dimensions
        self.fields["dimensions"].label_from_instance = lambda d: (
            f"#{d.rank} · {d.dim} · {d.layer}:{d.channel} · effect {d.effect:.3f} "
            f"({d.get_direction_display().lower()})"
        )
        #: Every dimension of the sweep, which "Add dimensions by rank" picks from.
        self.ranked = ranked if ranked is not None else dimensions

    def clean_ranks(self) -> list[int]:
        return parse_ranks(self.cleaned_data.get("ranks") or "", highest=self.ranked.count())

    def clean(self) -> dict:
        data = super().clean()
        ticked = list(data.get("dimensions") or [])
        ranks = data.get("ranks") or []
        by_rank = list(self.ranked.filter(rank__in=ranks)) if ranks else []
        chosen = {d.pk: d for d in [*ticked, *by_rank]}
        data["chosen_dimensions"] = sorted(chosen.values(), key=lambda d: d.rank)
        return data

    #: The form error when neither a ticked dimension nor a rank was given.
    NO_DIMENSIONS = "Tick at least one dimension or add some by rank."

    def chosen_dimensions(self) -> list:
        """The ticked dimensions and those added by rank, strongest first (empty when none was given)."""
        return self.cleaned_data.get("chosen_dimensions", [])

    def review_set_parameters(self) -> dict:
        """The review set's fields as ``review_set_create`` takes them (the dimensions apart)."""
        return {name: self.cleaned_data[name] for name in self.Meta.fields}


class AssignForm(forms.Form):
    readers = IdsField(queryset=None, widget=forms.CheckboxSelectMultiple, label="Reviewers")

    def __init__(self, *args, readers, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["readers"].queryset = readers
