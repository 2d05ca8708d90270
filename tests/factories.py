"""factory_boy factories for the review app's models, with tiny PNG and GIF files.

Images are a few pixels wide: enough for views to serve them and for browsers to draw them, cheap to write.
Files go to MEDIA_ROOT, which tests point at a temporary folder.
"""

from __future__ import annotations

import io

import factory
import numpy as np
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from PIL import Image

from reviewapp.models import (
    Annotation,
    Case,
    Counterfactual,
    DimensionEffect,
    FactorAnnotation,
    LabRun,
    Projection,
    ReviewAssignment,
    ReviewItem,
    ReviewSet,
    Study,
    Sweep,
)


def png_bytes(*, size: int = 8, level: int = 128, seed: int = 0) -> bytes:
    """A greyscale ``size`` x ``size`` PNG around grey ``level``."""
    rng = np.random.default_rng(seed)
    pixels = np.clip(level + rng.integers(-20, 21, size=(size, size)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def gif_bytes(*, size: int = 8) -> bytes:
    """A two-frame flicker GIF."""
    frames = [Image.new("L", (size, size), color=level) for level in (60, 200)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=500, loop=0)
    return buffer.getvalue()


def npy_bytes(values: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, values)
    return buffer.getvalue()


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"reader{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.org")


class StudyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Study

    name = factory.Sequence(lambda n: f"Study {n}")
    generator_path = "/models/generator.pt"
    classifier_source = "demo"
    target_label = "Pneumonia"
    resolution = 8
    channels = 1
    style_dims = 64


class CaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Case

    study = factory.SubFactory(StudyFactory)
    image = factory.LazyAttribute(lambda case: ContentFile(png_bytes(level=110), name="case.png"))
    image_sha256 = factory.Sequence(lambda n: f"{n:064x}")
    width = 8
    height = 8
    original_filename = factory.Sequence(lambda n: f"patient{n:03d}.png")
    label = Case.Label.POSITIVE
    split = Case.Split.HELDOUT


class ProjectionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Projection

    case = factory.SubFactory(CaseFactory)
    status = Projection.Status.SUCCEEDED
    reconstruction = factory.LazyAttribute(lambda _: ContentFile(png_bytes(level=115), name="recon.png"))
    styles_file = factory.LazyAttribute(
        lambda _: ContentFile(npy_bytes(np.zeros(64, dtype=np.float32)), name="styles.npy")
    )
    styles_shape = [64]
    styles_dtype = "float32"
    psnr = 31.5
    ssim = 0.93
    prob_original = 0.95
    prob_reconstruction = 0.94


class SweepFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Sweep

    study = factory.SubFactory(StudyFactory)
    status = Sweep.Status.SUCCEEDED
    num_images = 10
    dims = 64


class DimensionEffectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DimensionEffect

    sweep = factory.SubFactory(SweepFactory)
    dim = factory.Sequence(lambda n: 1000 + n)
    layer = "b8.conv1"
    channel = factory.Sequence(lambda n: n % 16)
    kind = DimensionEffect.Kind.CONV
    resolution = 8
    rank = factory.Sequence(lambda n: n + 1)
    effect = 0.42
    direction = DimensionEffect.Direction.HIGH
    raises_score = True
    selected = True
    mean_low = -0.1
    mean_high = 0.4
    mean_abs_low = 0.12
    mean_abs_high = 0.42
    fraction_low = 0.1
    fraction_high = 0.6
    max_abs = 0.7


class CounterfactualFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Counterfactual

    dimension = factory.SubFactory(DimensionEffectFactory)
    projection = factory.SubFactory(
        ProjectionFactory, case__study=factory.SelfAttribute("...dimension.sweep.study")
    )
    direction = factory.SelfAttribute("dimension.direction")
    clamp_value = 2.5
    prob_reconstruction = 0.3
    prob_perturbed = 0.8
    perturbed_image = factory.LazyAttribute(lambda _: ContentFile(png_bytes(level=150), name="perturbed.png"))
    difference_image = factory.LazyAttribute(lambda _: ContentFile(png_bytes(level=128), name="diff.png"))
    flicker_gif = factory.LazyAttribute(lambda _: ContentFile(gif_bytes(), name="flicker.gif"))
    stack_image = factory.LazyAttribute(lambda _: ContentFile(png_bytes(size=12), name="stack.png"))


class LabRunFactory(factory.django.DjangoModelFactory):
    """A finished Counterfactual-lab run (GCI by default) with its files."""

    class Meta:
        model = LabRun

    study = factory.SubFactory(StudyFactory)
    case = factory.SubFactory(CaseFactory, study=factory.SelfAttribute("..study"))
    method = LabRun.Method.GCI
    target = 0
    parameters = {"steps": 4}
    status = LabRun.Status.SUCCEEDED
    folder = "lab/run"
    counterfactual_image = factory.LazyAttribute(lambda _: ContentFile(png_bytes(level=90), name="cf.png"))
    start_image = factory.LazyAttribute(lambda _: ContentFile(png_bytes(level=112), name="start.png"))
    difference_image = factory.LazyAttribute(lambda _: ContentFile(png_bytes(level=128), name="diff.png"))
    path_gif = factory.LazyAttribute(lambda _: ContentFile(gif_bytes(), name="path.gif"))
    flicker_gif = factory.LazyAttribute(lambda _: ContentFile(gif_bytes(), name="flicker.gif"))
    stack_image = factory.LazyAttribute(lambda _: ContentFile(png_bytes(size=12), name="stack.png"))
    prob_original = 0.91
    prob_start = 0.88
    prob_counterfactual = 0.32
    flipped = True
    metrics = {
        "l1": 0.02,
        "ssim": 0.97,
        "reached_target": 1.0,
        "flipped": 1.0,
        "cout": 0.4,
        "perceptual": None,
    }
    seconds = 3.5


class SaliencyRunFactory(LabRunFactory):
    """A finished Grad-CAM run: the heat map over the original, no changed image."""

    method = LabRun.Method.GRADCAM
    target = 1
    parameters = {}
    counterfactual_image = ""
    start_image = ""
    difference_image = ""
    path_gif = ""
    flicker_gif = ""
    stack_image = ""
    heatmap_image = factory.LazyAttribute(lambda _: ContentFile(png_bytes(level=200), name="heatmap.png"))
    prob_start = None
    prob_counterfactual = 0.91
    flipped = None
    metrics = {}


class ReviewSetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ReviewSet

    sweep = factory.SubFactory(SweepFactory)
    study = factory.SelfAttribute("sweep.study")
    name = factory.Sequence(lambda n: f"Review set {n}")
    status = ReviewSet.Status.READY


class ReviewItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ReviewItem

    review_set = factory.SubFactory(ReviewSetFactory)
    counterfactual = factory.SubFactory(
        CounterfactualFactory, dimension__sweep=factory.SelfAttribute("...review_set.sweep")
    )
    position = factory.Sequence(lambda n: n + 1)
    rank_in_dimension = 1


class ReviewAssignmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ReviewAssignment

    review_set = factory.SubFactory(ReviewSetFactory)
    reader = factory.SubFactory(UserFactory)


class AnnotationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Annotation

    item = factory.SubFactory(ReviewItemFactory)
    reader = factory.SubFactory(UserFactory)
    q1_meaningful = True
    clinical_description = "blurring of the right heart border"
    q2_pneumonia = "possible"
    is_draft = False
    time_spent_seconds = 30


class FactorAnnotationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FactorAnnotation

    review_set = factory.SubFactory(ReviewSetFactory)
    dimension = factory.SubFactory(DimensionEffectFactory, sweep=factory.SelfAttribute("..review_set.sweep"))
    reader = factory.SubFactory(UserFactory)
    factor_name = "right heart border blurring"
    clinical_relevance = "yes"
    pneumonia_relevance = "possible"
