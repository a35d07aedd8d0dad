from django.conf import settings
from django.db import models
from django.db.models import Q


class ModelVersion(models.Model):
    """One trained VAE: its artifacts in storage, how it was trained, on what data, and how good it is."""

    class Status(models.TextChoices):
        TRAINING = "training", "Training"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"
        ACTIVE = "active", "Active"

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.TRAINING, db_index=True)
    preset = models.CharField(max_length=64, default="default")
    hyperparameters = models.JSONField(default=dict)
    data_stats = models.JSONField(
        default=dict, help_text="users, movies, ratings, newest rating in the training snapshot"
    )
    metrics = models.JSONField(default=dict, help_text="validation metrics")
    history = models.JSONField(default=dict, help_text="loss per epoch")
    # Folder in Django's default storage that holds the version's files, and each file's SHA-256.
    artifact_path = models.CharField(max_length=255, blank=True)
    artifact_sha256 = models.JSONField(default=dict)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    training_started_at = models.DateTimeField(null=True, blank=True)
    training_finished_at = models.DateTimeField(null=True, blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    # Background trainings decide whether the new version goes into service; the decision is kept either way.
    activation_decision = models.CharField(
        max_length=16, blank=True, help_text="activated or rejected (background training)"
    )
    activation_details = models.JSONField(
        default=dict, help_text="held-out metric of this and the active model, margin, reason"
    )

    class Meta:
        ordering = ("-created_at",)
        get_latest_by = "created_at"
        # Versions are read-only records; what an administrator may do with them is one of these.
        permissions = (
            ("activate_modelversion", "Can put a model version in service"),
            ("retrain_modelversion", "Can queue a training of a new model version"),
        )
        constraints = [
            # The database guarantees there is never more than one active model.
            models.UniqueConstraint(
                fields=("status",), condition=Q(status="active"), name="model_version_single_active"
            ),
        ]

    def __str__(self) -> str:
        return f"VAE v{self.pk} ({self.get_status_display()})"

    @property
    def training_seconds(self) -> float | None:
        if self.training_started_at and self.training_finished_at:
            return (self.training_finished_at - self.training_started_at).total_seconds()
        return None

    def artifact(self, name: str) -> str:
        return f"{self.artifact_path}/{name}"


class RecommendationLog(models.Model):
    """A movie recommended to a registered user, and when: their recommendation history."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="recommendation_log", db_index=False
    )
    movie = models.ForeignKey("movies.Movie", on_delete=models.CASCADE, related_name="+")
    model_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    source = models.CharField(max_length=16)  # "model" or "popular"
    predicted_rating = models.FloatField(null=True, blank=True)
    first_shown_at = models.DateTimeField()
    last_shown_at = models.DateTimeField()

    class Meta:
        ordering = ("-last_shown_at",)
        constraints = [models.UniqueConstraint(fields=("user", "movie"), name="recommendation_log_one_row_per_movie")]
        indexes = [models.Index(fields=("user", "-last_shown_at"), name="reclog_user_recent_idx")]


class TrainingJob(models.Model):
    """One requested background training: queued when enqueued, running while a worker holds the training lock."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"

    class Reason(models.TextChoices):
        NEW_RATINGS = "new_ratings", "New ratings"
        PERIODIC = "periodic", "Periodic check"
        MANUAL = "manual", "Manual"
        RETRY = "retry", "Retry after a database outage"

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    # True while queued or running, NULL once finished: unique, so at most one job is pending at any time and
    # two triggers at the same moment queue one training, not two (NULLs never collide).
    pending = models.BooleanField(null=True, default=True, unique=True, editable=False)
    reason = models.CharField(max_length=16, choices=Reason.choices)
    new_ratings = models.PositiveIntegerField(null=True, blank=True, help_text="new or changed ratings when requested")
    task_id = models.CharField(max_length=64, blank=True)
    worker = models.CharField(max_length=255, blank=True)
    model_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    error = models.TextField(blank=True)
    requested_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Written after each epoch while running (epoch of max, latest validation score, elapsed, at most left).
    progress = models.JSONField(default=dict, blank=True, editable=False)

    class Meta:
        ordering = ("-requested_at",)

    def __str__(self) -> str:
        return f"Training job {self.pk} ({self.get_status_display()})"


class TrainingLock(models.Model):
    """A named lock with an expiry: at most one training runs across all workers, and a dead worker's lock lapses."""

    name = models.CharField(max_length=32, primary_key=True)
    holder = models.CharField(max_length=128)
    acquired_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} lock held by {self.holder} until {self.expires_at:%Y-%m-%d %H:%M:%S}"
