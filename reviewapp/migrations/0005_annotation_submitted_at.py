from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("reviewapp", "0004_case_source_file"),
    ]

    operations = [
        migrations.AddField(
            model_name="annotation",
            name="submitted_at",
            field=models.DateTimeField(
                blank=True,
                help_text="When the reader last submitted the answer (empty for a draft).",
                null=True,
            ),
        ),
    ]
