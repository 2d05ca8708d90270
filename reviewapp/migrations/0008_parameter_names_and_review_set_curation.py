"""One name per parameter, and the curation parameters on the review set.

- ``Sweep.aggregation`` -> ``aggregate`` and ``Sweep.select_top`` -> ``strongest_k`` (the engine's names);
  ``ReviewSet.per_dimension`` -> ``images_per_dimension``.
- The curation filters (``min_confidence`` ... ``max_prob_diff``) move from the sweep to each review set: a set
  made before takes its sweep's values, the ones it was curated with. ``Sweep.top_k`` (images per dimension,
  only the default of new review sets) goes; each review set keeps its own count.
"""

import django.core.validators
from django.db import migrations, models

CURATION_FILTERS = ("min_confidence", "min_psnr", "min_ssim", "max_perceptual", "max_prob_diff")


def copy_filters_to_review_sets(apps, schema_editor):
    ReviewSet = apps.get_model("reviewapp", "ReviewSet")
    for review_set in ReviewSet.objects.select_related("sweep").iterator():
        for name in CURATION_FILTERS:
            setattr(review_set, name, getattr(review_set.sweep, name))
        review_set.save(update_fields=list(CURATION_FILTERS))


def copy_filters_to_sweeps(apps, schema_editor):
    """Backwards: a sweep takes the filters of its latest review set (the defaults when it has none)."""
    Sweep = apps.get_model("reviewapp", "Sweep")
    for sweep in Sweep.objects.iterator():
        review_set = sweep.review_sets.order_by("-created_at", "-pk").first()
        if review_set is None:
            continue
        for name in CURATION_FILTERS:
            setattr(sweep, name, getattr(review_set, name))
        sweep.top_k = review_set.images_per_dimension
        sweep.save(update_fields=[*CURATION_FILTERS, "top_k"])


class Migration(migrations.Migration):
    dependencies = [
        ("reviewapp", "0007_sweep_select_top"),
    ]

    operations = [
        migrations.RenameField(model_name="sweep", old_name="aggregation", new_name="aggregate"),
        migrations.RenameField(model_name="sweep", old_name="select_top", new_name="strongest_k"),
        migrations.RenameField(
            model_name="reviewset", old_name="per_dimension", new_name="images_per_dimension"
        ),
        migrations.AlterField(
            model_name="reviewset",
            name="images_per_dimension",
            field=models.PositiveIntegerField(
                default=5,
                help_text="Items per selected dimension (paper: 5).",
                validators=[
                    django.core.validators.MinValueValidator(1),
                    django.core.validators.MaxValueValidator(50),
                ],
            ),
        ),
        migrations.AlterField(
            model_name="sweep",
            name="strongest_k",
            field=models.PositiveIntegerField(
                blank=True,
                help_text="Select the K strongest dimensions instead of those above the threshold; empty: the "
                "threshold.",
                null=True,
                validators=[
                    django.core.validators.MinValueValidator(1),
                    django.core.validators.MaxValueValidator(5000),
                ],
            ),
        ),
        migrations.AlterField(
            model_name="sweep",
            name="config",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text="The engine's SweepConfig, stored at launch; every part runs with it.",
            ),
        ),
        migrations.AddField(
            model_name="reviewset",
            name="min_confidence",
            field=models.FloatField(
                default=0.9,
                validators=[
                    django.core.validators.MinValueValidator(0.0),
                    django.core.validators.MaxValueValidator(1.0),
                ],
            ),
        ),
        migrations.AddField(
            model_name="reviewset",
            name="min_psnr",
            field=models.FloatField(
                blank=True,
                default=25.0,
                help_text="dB; empty for no filter.",
                null=True,
                validators=[django.core.validators.MinValueValidator(0.0)],
            ),
        ),
        migrations.AddField(
            model_name="reviewset",
            name="min_ssim",
            field=models.FloatField(
                blank=True,
                null=True,
                validators=[
                    django.core.validators.MinValueValidator(-1.0),
                    django.core.validators.MaxValueValidator(1.0),
                ],
            ),
        ),
        migrations.AddField(
            model_name="reviewset",
            name="max_perceptual",
            field=models.FloatField(
                blank=True, null=True, validators=[django.core.validators.MinValueValidator(0.0)]
            ),
        ),
        migrations.AddField(
            model_name="reviewset",
            name="max_prob_diff",
            field=models.FloatField(
                blank=True,
                default=0.1,
                help_text="Largest |C(x) - C(G(S))|; empty for no filter.",
                null=True,
                validators=[
                    django.core.validators.MinValueValidator(0.0),
                    django.core.validators.MaxValueValidator(1.0),
                ],
            ),
        ),
        migrations.RunPython(copy_filters_to_review_sets, copy_filters_to_sweeps),
        migrations.RemoveField(model_name="sweep", name="top_k"),
        migrations.RemoveField(model_name="sweep", name="min_confidence"),
        migrations.RemoveField(model_name="sweep", name="min_psnr"),
        migrations.RemoveField(model_name="sweep", name="min_ssim"),
        migrations.RemoveField(model_name="sweep", name="max_perceptual"),
        migrations.RemoveField(model_name="sweep", name="max_prob_diff"),
    ]
