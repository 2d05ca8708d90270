from django.contrib import admin

from reviewapp.models import (
    Annotation,
    AnswerVersion,
    AuditEvent,
    Case,
    Counterfactual,
    DimensionEffect,
    FactorAnnotation,
    Job,
    JobLease,
    LabRun,
    Projection,
    ReviewAssignment,
    ReviewItem,
    ReviewSet,
    Study,
    Sweep,
    SweepCase,
    SweepUnit,
)


class JobLeaseInline(admin.TabularInline):
    """The tasks that ran the job: where, their last heartbeat, which attempt, and whether they were lost."""

    model = JobLease
    extra = 0
    can_delete = False
    fields = ["task_name", "attempt", "state", "worker", "heartbeat_at", "created_at", "finished_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(JobLease)
class JobLeaseAdmin(admin.ModelAdmin):
    list_display = ["task_id", "job", "task_name", "attempt", "state", "worker", "heartbeat_at"]
    list_filter = ["state", "task_name"]
    search_fields = ["task_id", "worker"]
    readonly_fields = [field.name for field in JobLease._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    inlines = [JobLeaseInline]
    list_display = ["pk", "kind", "status", "progress", "created_by", "created_at", "finished_at"]
    list_filter = ["status", "kind"]
    search_fields = ["kind", "message", "celery_task_id"]
    readonly_fields = [field.name for field in Job._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


class ReadMostlyAdmin(admin.ModelAdmin):
    """Rows are written by the app's services (files before rows); the admin shows them and allows notes only.

    Deleting stays possible (cascades follow the models); adding is not, because a row without its files or
    its job would be inconsistent.
    """

    editable_fields: tuple[str, ...] = ()

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields if f.name not in self.editable_fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(Study)
class StudyAdmin(ReadMostlyAdmin):
    list_display = ["name", "target_label", "resolution", "style_dims", "created_by", "created_at"]
    search_fields = ["name", "notes"]
    editable_fields = ("notes",)


@admin.register(Case)
class CaseAdmin(ReadMostlyAdmin):
    list_display = ["pk", "original_filename", "study", "split", "label", "created_at"]
    list_filter = ["study", "split", "label"]
    search_fields = ["original_filename"]


@admin.register(Projection)
class ProjectionAdmin(ReadMostlyAdmin):
    list_display = [
        "pk",
        "case",
        "status",
        "psnr",
        "ssim",
        "prob_original",
        "prob_reconstruction",
        "finished_at",
    ]
    list_filter = ["status", "case__study"]
    list_select_related = ["case__study"]


class SweepUnitInline(admin.TabularInline):
    model = SweepUnit
    fields = [
        "index",
        "image_start",
        "image_stop",
        "dim_start",
        "dim_stop",
        "status",
        "attempts",
        "seconds",
        "device",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False
    max_num = 0


@admin.register(Sweep)
class SweepAdmin(ReadMostlyAdmin):
    list_display = ["pk", "study", "status", "mode", "aggregate", "delta", "num_images", "num_selected"]
    list_filter = ["status", "mode", "study"]
    inlines = [SweepUnitInline]


@admin.register(SweepCase)
class SweepCaseAdmin(ReadMostlyAdmin):
    list_display = ["sweep", "index", "projection"]
    list_filter = ["sweep"]


@admin.register(SweepUnit)
class SweepUnitAdmin(ReadMostlyAdmin):
    list_display = ["sweep", "index", "status", "claimed_by", "attempts", "seconds", "device"]
    list_filter = ["status", "sweep"]


@admin.register(DimensionEffect)
class DimensionEffectAdmin(ReadMostlyAdmin):
    list_display = ["dim", "sweep", "layer", "channel", "rank", "effect", "direction", "selected"]
    list_filter = ["selected", "kind", "sweep"]
    search_fields = ["layer"]
    ordering = ["sweep", "rank"]


@admin.register(Counterfactual)
class CounterfactualAdmin(ReadMostlyAdmin):
    list_display = ["pk", "dimension", "direction", "projection", "prob_reconstruction", "prob_perturbed"]
    list_filter = ["direction", "dimension__sweep"]
    list_select_related = ["dimension", "projection"]


@admin.register(LabRun)
class LabRunAdmin(ReadMostlyAdmin):
    list_display = ["pk", "study", "case", "method", "target", "status", "flipped", "seconds", "created_at"]
    list_filter = ["status", "method", "study"]
    list_select_related = ["study", "case"]


class ReviewItemInline(admin.TabularInline):
    model = ReviewItem
    fields = ["position", "counterfactual", "lab_run", "rank_in_dimension"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    max_num = 0


@admin.register(ReviewSet)
class ReviewSetAdmin(ReadMostlyAdmin):
    list_display = ["name", "study", "sweep", "status", "images_per_dimension", "blinded", "created_at"]
    list_filter = ["status", "study", "blinded"]
    editable_fields = ("name", "instructions")
    inlines = [ReviewItemInline]


@admin.register(ReviewItem)
class ReviewItemAdmin(ReadMostlyAdmin):
    list_display = ["review_set", "position", "counterfactual", "lab_run", "rank_in_dimension"]
    list_filter = ["review_set"]


@admin.register(ReviewAssignment)
class ReviewAssignmentAdmin(ReadMostlyAdmin):
    list_display = ["review_set", "reader", "assigned_at", "finalised_at"]
    list_filter = ["review_set", "reader"]


@admin.register(Annotation)
class AnnotationAdmin(ReadMostlyAdmin):
    list_display = ["item", "reader", "q1_meaningful", "q2_pneumonia", "confidence", "is_draft", "updated_at"]
    list_filter = ["is_draft", "q2_pneumonia", "item__review_set", "reader"]
    search_fields = ["clinical_description", "comment"]


@admin.register(FactorAnnotation)
class FactorAnnotationAdmin(ReadMostlyAdmin):
    list_display = [
        "review_set",
        "dimension",
        "reader",
        "factor_name",
        "clinical_relevance",
        "pneumonia_relevance",
    ]
    list_filter = ["review_set", "reader", "clinical_relevance", "pneumonia_relevance"]
    search_fields = ["factor_name", "comment"]


class AppendOnlyAdmin(admin.ModelAdmin):
    """Rows nobody may add, change or delete here: the app appends them; admins read them."""

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(AnswerVersion)
class AnswerVersionAdmin(AppendOnlyAdmin):
    """Every submitted version of every answer, oldest first per answer."""

    list_display = ["annotation", "version", "reader_name", "submitted", "saved_at"]
    list_filter = ["submitted", "annotation__item__review_set"]
    search_fields = ["reader_name", "=annotation__pk"]
    list_select_related = ["annotation__item__review_set"]
    date_hierarchy = "saved_at"


@admin.register(AuditEvent)
class AuditEventAdmin(AppendOnlyAdmin):
    """The audit trail; its CSV export is linked from the list (templates/admin/reviewapp/auditevent/)."""

    list_display = ["at", "username", "action", "target", "detail"]
    list_filter = ["action"]
    search_fields = ["username", "target"]
    date_hierarchy = "at"
