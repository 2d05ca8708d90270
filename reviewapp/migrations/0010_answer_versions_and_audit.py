"""Answer versions and the audit trail; existing submitted answers get their first version; on PostgreSQL
a trigger makes the audit table refuse UPDATE and DELETE."""

import django.db.models.deletion
from django.db import migrations, models


ANSWER_FIELDS = ("q1_meaningful", "clinical_description", "q2_pneumonia", "comment", "confidence")

APPEND_ONLY_SQL = """
CREATE OR REPLACE FUNCTION reviewapp_auditevent_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER reviewapp_auditevent_append_only BEFORE UPDATE OR DELETE ON reviewapp_auditevent
    FOR EACH ROW EXECUTE FUNCTION reviewapp_auditevent_append_only();
"""

DROP_APPEND_ONLY_SQL = """
DROP TRIGGER IF EXISTS reviewapp_auditevent_append_only ON reviewapp_auditevent;
DROP FUNCTION IF EXISTS reviewapp_auditevent_append_only();
"""


def first_versions(apps, schema_editor):
    """Existing answers count as version 1; each submitted one gets its first history row."""
    Annotation = apps.get_model("reviewapp", "Annotation")
    AnswerVersion = apps.get_model("reviewapp", "AnswerVersion")
    Annotation.objects.filter(version=0).update(version=1)
    rows = Annotation.objects.filter(is_draft=False).select_related("reader")
    AnswerVersion.objects.bulk_create(
        AnswerVersion(
            annotation=a,
            version=a.version,
            answers={name: getattr(a, name) for name in ANSWER_FIELDS},
            submitted=True,
            reader_id=a.reader_id,
            reader_name=a.reader.username,
            time_spent_seconds=a.time_spent_seconds,
        )
        for a in rows.iterator()
    )


def append_only_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(APPEND_ONLY_SQL)


def drop_append_only_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_APPEND_ONLY_SQL)


class Migration(migrations.Migration):

    dependencies = [
        ('reviewapp', '0009_projection_started_at'),
    ]

    operations = [
        migrations.CreateModel(
            name='AuditEvent',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('at', models.DateTimeField(auto_now_add=True, db_index=True)),
                ('user_id', models.BigIntegerField(blank=True, db_index=True, help_text='Empty: the system.', null=True)),
                ('username', models.CharField(blank=True, max_length=150)),
                ('action', models.CharField(choices=[('view_item', 'Viewed an item (reading screen)'), ('view_image', 'Viewed an item image'), ('save_answer', 'Saved an answer'), ('submit_answer', 'Submitted an answer'), ('name_factor', 'Named a factor'), ('finalise_set', 'Finalised a review set'), ('launch_job', 'Launched a job'), ('cancel_job', 'Cancelled a job'), ('export', 'Exported')], db_index=True, max_length=32)),
                ('target', models.CharField(blank=True, db_index=True, max_length=200)),
                ('detail', models.JSONField(blank=True, default=dict)),
            ],
            options={
                'ordering': ['-at', '-pk'],
            },
        ),
        migrations.AddField(
            model_name='annotation',
            name='version',
            field=models.PositiveIntegerField(default=0, help_text='How many times the answer was saved; a save based on an older version is refused.'),
        ),
        migrations.CreateModel(
            name='AnswerVersion',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('version', models.PositiveIntegerField(help_text="The answer's version number after this save.")),
                ('answers', models.JSONField(help_text='Every answer field as it was stored.')),
                ('submitted', models.BooleanField(default=True, help_text='Yes for an explicit submit; no for an edit of an already submitted answer.')),
                ('reader_id', models.BigIntegerField()),
                ('reader_name', models.CharField(max_length=150)),
                ('time_spent_seconds', models.PositiveIntegerField(default=0)),
                ('saved_at', models.DateTimeField(auto_now_add=True, db_index=True)),
                ('annotation', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='versions', to='reviewapp.annotation')),
            ],
            options={
                'ordering': ['annotation', 'version'],
                'constraints': [models.UniqueConstraint(fields=('annotation', 'version'), name='answerversion_unique_version')],
            },
        ),
        migrations.RunPython(first_versions, migrations.RunPython.noop),
        migrations.RunPython(append_only_trigger, drop_append_only_trigger),
    ]
