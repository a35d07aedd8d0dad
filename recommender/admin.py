import base64

from django.contrib import admin, messages
from django.utils.html import format_html

from .artifacts import LOSS_PLOT, ArtifactError, artifact_read
from .models import ModelVersion
from .services import TrainingError, model_version_activate


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("__str__", "status", "preset", "created_at", "training_time", "users_movies_ratings", "key_metrics", "activated_at")
    list_filter = ("status", "preset")
    actions = ("activate",)
    readonly_fields = [f.name for f in ModelVersion._meta.fields] + ["loss_plot"]

    def has_add_permission(self, request) -> bool:
        return False  # versions come from training, never from a form

    @admin.display(description="training time")
    def training_time(self, version: ModelVersion) -> str:
        return f"{version.training_seconds:.0f} s" if version.training_seconds is not None else "-"

    @admin.display(description="users / movies / ratings")
    def users_movies_ratings(self, version: ModelVersion) -> str:
        stats = version.data_stats
        return f"{stats.get('users', '-')} / {stats.get('movies', '-')} / {stats.get('ratings', '-')}"

    @admin.display(description="validation")
    def key_metrics(self, version: ModelVersion) -> str:
        shown = [f"{name} {version.metrics[name]:.3f}" for name in ("precision@5", "ndcg@100", "rmse") if name in version.metrics]
        return ", ".join(shown) or "-"

    @admin.display(description="loss curve")
    def loss_plot(self, version: ModelVersion) -> str:
        # Inlined from storage, so it shows whatever storage backend holds the artifacts.
        try:
            png = artifact_read(folder=version.artifact_path, name=LOSS_PLOT, expected_sha256=version.artifact_sha256.get(LOSS_PLOT))
        except ArtifactError as error:
            return str(error) if version.artifact_path else "-"
        return format_html('<img src="data:image/png;base64,{}" alt="training and validation loss per epoch" style="max-width:700px">', base64.b64encode(png).decode())

    @admin.action(description="Activate the selected version (put it in service)")
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
