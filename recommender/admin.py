import base64
import json

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from .artifacts import LOSS_PLOT, ArtifactError, artifact_read
from .models import ModelVersion, TrainingJob
from .retraining import training_job_enqueue
from .selectors import training_job_queued, training_lock_held, training_pause
from .services import TrainingError, model_version_activate


def training_state() -> str:
    """One line for the admin: what the background training is doing."""
    lock, queued = training_lock_held(), training_job_queued()
    parts = []
    if lock:
        parts.append(f"Training running ({lock.holder}, lock until {lock.expires_at:%H:%M:%S})")
    if queued:
        parts.append(f"{queued} waiting since {queued.requested_at:%Y-%m-%d %H:%M:%S}")
    if pause := training_pause():
        parts.append(f"Automatic trainings wait until {pause.until:%Y-%m-%d %H:%M:%S}: {pause.reason}")
    return "; ".join(parts) or "No training queued or running."


def _retrain_now(modeladmin, request) -> None:
    job = training_job_enqueue(reason=TrainingJob.Reason.MANUAL)
    if job is None:
        modeladmin.message_user(request, "A training is already queued.", messages.WARNING)
        return
    job.refresh_from_db()
    if job.status == TrainingJob.Status.FAILED:
        modeladmin.message_user(request, f"{job}: {job.error}", messages.ERROR)
    else:
        modeladmin.message_user(request, f"{job} queued; a training worker will pick it up.", messages.SUCCESS)


def _number(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _pretty_json(value) -> str:
    if not value:
        return "-"
    return format_html('<pre class="json">{}</pre>', json.dumps(value, indent=2, sort_keys=True))


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "status",
        "preset",
        "created_at",
        "training_time",
        "users_movies_ratings",
        "key_metrics",
        "activated_at",
    )
    list_filter = ("status", "preset", "activation_decision")
    actions = ("activate", "retrain_now", "delete_selected")
    # The record reads top-down: the loss curves, what happened, then the details, with the long JSON folded away.
    fieldsets = (
        (None, {"fields": ("loss_plot", "status", "preset", "error")}),
        ("When", {"fields": ("created_at", "training_started_at", "training_finished_at", "activated_at")}),
        ("Validation", {"fields": ("metrics_table",)}),
        ("Activation decision", {"fields": ("activation_decision", "activation_details_pretty")}),
        ("Training data", {"classes": ("collapse",), "fields": ("data_stats_pretty",)}),
        ("Hyperparameters", {"classes": ("collapse",), "fields": ("hyperparameters_pretty",)}),
        ("History per epoch", {"classes": ("collapse",), "fields": ("history_pretty",)}),
        ("Files", {"classes": ("collapse",), "fields": ("artifact_path", "artifact_sha256_pretty")}),
    )
    readonly_fields = [
        *(f.name for f in ModelVersion._meta.fields),
        "loss_plot",
        "metrics_table",
        "activation_details_pretty",
        "data_stats_pretty",
        "hyperparameters_pretty",
        "history_pretty",
        "artifact_sha256_pretty",
    ]
    change_list_template = "admin/recommender/modelversion/change_list.html"

    class Media:
        css = {"all": ("admin_extra/recommender.css",)}

    def get_urls(self):
        retrain = path(
            "retrain/", self.admin_site.admin_view(self.retrain_view), name="recommender_modelversion_retrain"
        )
        return [retrain, *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        context = {"training_state": training_state(), "can_retrain": self.has_retrain_permission(request)}
        return super().changelist_view(request, {**(extra_context or {}), **context})

    def retrain_view(self, request):
        # POST only (CSRF-protected form in the change list); a GET just goes back to the list.
        if not self.has_retrain_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            _retrain_now(self, request)
        return redirect("admin:recommender_modelversion_changelist")

    @admin.action(
        description="Retrain now (queue a background training on every current rating)", permissions=["retrain"]
    )
    def retrain_now(self, request, queryset):
        _retrain_now(self, request)

    # A version is a read-only record of a training: nobody edits one; putting one in service, queueing a training
    # and deleting an inactive version each need their own permission.
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_activate_permission(self, request) -> bool:
        return request.user.has_perm("recommender.activate_modelversion")

    def has_retrain_permission(self, request) -> bool:
        return request.user.has_perm("recommender.retrain_modelversion")

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.status in (ModelVersion.Status.ACTIVE, ModelVersion.Status.TRAINING):
            return False  # the model in service, or one a worker is writing
        return super().has_delete_permission(request, obj)

    @admin.display(description="training time")
    def training_time(self, version: ModelVersion) -> str:
        return f"{version.training_seconds:.0f} s" if version.training_seconds is not None else "-"

    @admin.display(description="users / movies / ratings")
    def users_movies_ratings(self, version: ModelVersion) -> str:
        stats = version.data_stats
        return f"{stats.get('users', '-')} / {stats.get('movies', '-')} / {stats.get('ratings', '-')}"

    @admin.display(description="validation")
    def key_metrics(self, version: ModelVersion) -> str:
        shown = [
            f"{name} {version.metrics[name]:.3f}"
            for name in ("precision@5", "ndcg@100", "flip@10", "rmse")
            if name in version.metrics
        ]
        # One metric a line, so the list fits a 1280-pixel screen.
        return format_html_join(format_html("<br>"), "{}", ((line,) for line in shown)) or "-"

    @admin.display(description="metrics")
    def metrics_table(self, version: ModelVersion) -> str:
        if not version.metrics:
            return "-"
        rows = format_html_join(
            "", "<tr><th scope='row'>{}</th><td>{}</td></tr>", ((k, _number(v)) for k, v in version.metrics.items())
        )
        return format_html('<table class="metrics-table">{}</table>', rows)

    @admin.display(description="details")
    def activation_details_pretty(self, version: ModelVersion) -> str:
        return _pretty_json(version.activation_details)

    @admin.display(description="users, movies, ratings, audit")
    def data_stats_pretty(self, version: ModelVersion) -> str:
        return _pretty_json(version.data_stats)

    @admin.display(description="hyperparameters")
    def hyperparameters_pretty(self, version: ModelVersion) -> str:
        return _pretty_json(version.hyperparameters)

    @admin.display(description="history")
    def history_pretty(self, version: ModelVersion) -> str:
        return _pretty_json(version.history)

    @admin.display(description="checksums")
    def artifact_sha256_pretty(self, version: ModelVersion) -> str:
        return _pretty_json(version.artifact_sha256)

    @admin.display(description="loss curve")
    def loss_plot(self, version: ModelVersion) -> str:
        # Inlined from storage, so it shows whatever storage backend holds the artifacts.
        if not version.artifact_path:  # failed before its files were written
            return "-"
        try:
            png = artifact_read(
                folder=version.artifact_path, name=LOSS_PLOT, expected_sha256=version.artifact_sha256.get(LOSS_PLOT)
            )
        except ArtifactError as error:
            return str(error)
        return format_html(
            '<img src="data:image/png;base64,{}" alt="training and validation loss per epoch" class="loss-plot">',
            base64.b64encode(png).decode(),
        )

    @admin.action(description="Activate the selected version (put it in service)", permissions=["activate"])
    def activate(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version to activate.", messages.ERROR)
            return
        try:
            version = model_version_activate(version=queryset.get())
        except TrainingError as error:
            self.message_user(request, str(error), messages.ERROR)
            return
        self.message_user(request, f"{version} is now active.", messages.SUCCESS)


def progress_html(job: TrainingJob, *, refresh_url: str = "") -> str:
    """The job's progress: a bar and a line (epoch n of at most N, latest validation score, elapsed, at most left);
    while it runs the block fetches itself again every two seconds (htmx), so the page follows the training."""
    progress = job.progress or {}
    polling = job.status in (TrainingJob.Status.QUEUED, TrainingJob.Status.RUNNING) and refresh_url
    attributes = format_html(' hx-get="{}" hx-trigger="every 2s" hx-swap="outerHTML"', refresh_url) if polling else ""
    if progress.get("epoch"):
        bar = format_html('<progress max="{}" value="{}"></progress> ', progress["max_epochs"], progress["epoch"])
        text = progress["summary"] + (
            "" if job.status == TrainingJob.Status.RUNNING else f" ({job.get_status_display().lower()})"
        )
    else:
        bar = ""
        text = {
            TrainingJob.Status.QUEUED: "waiting for a worker",
            TrainingJob.Status.RUNNING: "reading the ratings",
        }.get(job.status, "-")
    return format_html(
        '<div class="training-progress" id="training-progress-{}"{}>{}{}</div>', job.pk, attributes, bar, text
    )


@admin.register(TrainingJob)
class TrainingJobAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "status",
        "reason",
        "new_ratings",
        "requested_at",
        "started_at",
        "finished_at",
        "worker",
        "model_version",
        "progress_line",
        "error",
    )
    list_filter = ("status", "reason")
    readonly_fields = ("live_progress", *(f.name for f in TrainingJob._meta.fields if f.name != "progress"))

    class Media:
        js = ("vendor/htmx-2.0.11.min.js", "js/admin-htmx.js")  # the progress block refreshes itself
        css = {"all": ("admin_extra/recommender.css",)}

    def get_urls(self):
        progress = path(
            "<int:job_id>/progress/",
            self.admin_site.admin_view(self.progress_view),
            name="recommender_trainingjob_progress",
        )
        return [progress, *super().get_urls()]

    def progress_view(self, request, job_id: int):
        if not self.has_view_permission(request):
            raise PermissionDenied
        job = get_object_or_404(TrainingJob, pk=job_id)
        return HttpResponse(progress_html(job, refresh_url=request.path))

    # Jobs are read-only records; finished ones may be deleted (with the delete permission), pending ones never.
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.pending:
            return False
        return super().has_delete_permission(request, obj)

    @admin.display(description="progress")
    def live_progress(self, job: TrainingJob) -> str:
        return progress_html(job, refresh_url=reverse("admin:recommender_trainingjob_progress", args=[job.pk]))

    @admin.display(description="progress")
    def progress_line(self, job: TrainingJob) -> str:
        return (job.progress or {}).get("summary", "-")

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(
            request, {**(extra_context or {}), "title": f"Training jobs. {training_state()}"}
        )
