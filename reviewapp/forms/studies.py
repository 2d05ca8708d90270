"""Forms of the admin side: register a study, upload cases."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from reviewapp.models import Case


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files in one field (Django's documented pattern); cleans to a list."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput(attrs={"multiple": True}))
        # An empty file among many is refused by the import, by its name, rather than the whole batch here.
        kwargs.setdefault("allow_empty_file", True)
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        if isinstance(data, list | tuple):
            return [super(MultipleFileField, self).clean(item, initial) for item in data]
        return [super().clean(data, initial)] if data else []


class StudyForm(forms.Form):
    """A study: its name, its models (uploaded or named by their path on the server) and its settings."""

    name = forms.CharField(max_length=200)
    target_label = forms.CharField(max_length=100, initial="Pneumonia")
    generator_file = forms.FileField(required=False, label="Generator checkpoint (upload)")
    generator_path = forms.CharField(
        required=False, max_length=1000, label="…or its path on the server", help_text=".pkl or .pt"
    )
    discriminator_file = forms.FileField(required=False, label="Discriminator checkpoint (upload)")
    discriminator_path = forms.CharField(
        required=False,
        max_length=1000,
        label="…or its path on the server",
        help_text="Leave both empty when the generator's file holds the discriminator (D).",
    )
    classifier_file = forms.FileField(required=False, label="Classifier (upload)")
    classifier_source = forms.CharField(
        required=False,
        max_length=1000,
        label="…or its path on the server, or a built-in name",
        help_text="'demo', 'xrv:densenet121-res224-all', or a path.",
    )
    classifier_kind = forms.ChoiceField(
        required=False,
        choices=[
            ("", "Recognise from the file"),
            ("checkpoint", "This tool's classifier checkpoint"),
            ("torchscript", "TorchScript"),
            ("torchvision", "torchvision state dict"),
            ("xrv", "TorchXRayVision DenseNet weights"),
        ],
    )
    classifier_arch = forms.CharField(required=False, max_length=64, label="torchvision architecture")
    autoencoder_path = forms.CharField(
        required=False,
        max_length=1000,
        label="Autoencoder checkpoint path on the server (optional)",
        help_text="For Latent Shift in the lab (python -m explain_engine train-autoencoder writes one).",
    )
    projection_steps = forms.IntegerField(min_value=1, max_value=10_000, initial=500)
    projection_batch_size = forms.IntegerField(min_value=1, max_value=256, initial=16)
    ranges_samples = forms.IntegerField(min_value=100, max_value=10_000_000, initial=100_000)
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))

    def clean(self):
        data = super().clean()
        for role, source_field in (("generator", "generator_path"), ("classifier", "classifier_source")):
            if not data.get(f"{role}_file") and not data.get(source_field):
                raise ValidationError(f"Upload the {role} or name it.")
            if data.get(f"{role}_file") and data.get(source_field):
                raise ValidationError(f"Either upload the {role} or name it, not both.")
        if data.get("discriminator_file") and data.get("discriminator_path"):
            raise ValidationError("Either upload the discriminator or name it, not both.")
        return data


class CaseUploadForm(forms.Form):
    files = MultipleFileField(label="Images (PNG, JPEG, TIFF, BMP 8/16-bit, DICOM)")
    split = forms.ChoiceField(choices=Case.Split.choices, initial=Case.Split.HELDOUT)
    labels_csv = forms.FileField(
        required=False, label="Labels CSV (optional)", help_text="Columns filename, label (0/1), split."
    )
