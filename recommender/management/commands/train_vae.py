"""manage.py train_vae [--preset NAME] [--<hyperparameter> VALUE ...] [--activate] | train_vae --async"""

import dataclasses
import time

from django.core.management.base import BaseCommand, CommandError

from recommender.models import TrainingJob
from recommender.retraining import training_job_enqueue, training_progress
from recommender.selectors import model_version_active
from recommender.services import TrainingError, model_version_activate, model_version_train

PROGRESS_BAR_WIDTH = 24


def _option_name(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


def _parser_for(field: dataclasses.Field):
    """argparse type for a VAEConfig field: ints, floats, booleans, comma-separated tuples, optional values."""
    hint = str(field.type)

    def parse(text: str):
        lowered = text.strip().lower()
        if "None" in hint and lowered in ("none", ""):
            return None
        if hint.startswith("tuple") or "tuple[" in hint:
            number = float if "tuple[float" in hint else int
            return tuple(number(part) for part in lowered.split(",") if part)
        if hint.startswith("bool"):
            if lowered in ("true", "yes", "1", "on"):
                return True
            if lowered in ("false", "no", "0", "off"):
                return False
            raise ValueError(text)
        if hint.startswith("int"):
            return int(text)
        if hint.startswith("float"):
            return float(text)
        return text

    parse.__name__ = hint  # argparse shows it in "invalid <type> value" messages
    return parse


class Command(BaseCommand):
    help = "Train the VAE recommender on every rating in the database and store a new model version."

    def add_arguments(self, parser):
        from recommender.ml.vae import PRESETS, VAEConfig

        parser.add_argument(
            "--preset", default="default", choices=sorted(PRESETS), help="starting configuration (default: %(default)s)"
        )
        parser.add_argument(
            "--activate", action="store_true", help="put the new version in service when training succeeds"
        )
        parser.add_argument(
            "--unless-active", action="store_true", help="do nothing when a model is already active (start-up scripts)"
        )
        parser.add_argument(
            "--async",
            dest="run_async",
            action="store_true",
            help="queue a training for a Celery worker (queue 'training') instead of training here; it is activated "
            "when not worse than the active model (settings RECOMMENDER_TRAINING_PRESET/OVERRIDES apply)",
        )
        group = parser.add_argument_group("hyperparameters (each overrides the preset)")
        defaults = VAEConfig()
        for field in dataclasses.fields(VAEConfig):
            default = getattr(defaults, field.name)
            shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
            group.add_argument(
                _option_name(field.name),
                dest=f"hp_{field.name}",
                type=_parser_for(field),
                default=None,
                metavar=field.name.upper(),
                help=f"default preset: {shown}",
            )

    def handle(
        self,
        *args,
        preset: str,
        activate: bool,
        unless_active: bool,
        run_async: bool = False,
        verbosity: int = 1,
        **options,
    ):
        from recommender.ml.vae import preset as make_preset

        if unless_active and (active := model_version_active()):
            self.stdout.write(f"{active} is already in service; nothing to train.")
            return

        overrides = {key[3:]: value for key, value in options.items() if key.startswith("hp_") and value is not None}
        if run_async:
            return self._enqueue(overrides, preset)
        try:
            config = make_preset(preset, **overrides)
        except (TypeError, ValueError) as error:
            raise CommandError(f"invalid hyperparameters: {error}") from error
        if verbosity:
            changed = ", ".join(f"{k}={v}" for k, v in overrides.items()) or "no overrides"
            self.stdout.write(f"Training the VAE (preset {preset}, {changed})")
        self._max_epochs, self._started, self._bar_open = config.max_epochs, time.monotonic(), False
        try:
            version = model_version_train(config=config, preset=preset, on_epoch_end=self._epoch if verbosity else None)
            if activate:
                version = model_version_activate(version=version)
        except TrainingError as error:
            raise CommandError(str(error)) from error
        finally:
            if self._bar_open:
                self.stdout.write("")  # end the progress bar's line
        if verbosity:
            metrics = ", ".join(
                f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in version.metrics.items()
            )
            self.stdout.write(
                self.style.SUCCESS(
                    f"Model version {version.pk} is {version.get_status_display().lower()} "
                    f"({version.training_seconds:.1f} s; {version.data_stats['users']} users, {version.data_stats['movies']} movies, "
                    f"{version.data_stats['ratings']} ratings)"
                )
            )
            self.stdout.write(f"Validation: {metrics}")
            self.stdout.write(f"Artifacts: {version.artifact_path}/ (loss plot: {version.artifact('loss.png')})")
            if not activate:
                self.stdout.write(
                    f"Put it in service with: manage.py activate_model {version.pk} (or the admin action)"
                )

    def _enqueue(self, overrides: dict, preset: str) -> None:
        if overrides or preset != "default":
            raise CommandError(
                "--async trains with the worker's settings: set RECOMMENDER_TRAINING_PRESET and RECOMMENDER_TRAINING_OVERRIDES there"
            )
        job = training_job_enqueue(reason=TrainingJob.Reason.MANUAL)
        if job is None:
            self.stdout.write("A training is already queued; nothing more to do.")
            return
        job.refresh_from_db()
        if job.status == TrainingJob.Status.FAILED:
            raise CommandError(f"training job {job.pk} {job.error}")
        self.stdout.write(
            self.style.SUCCESS(f"Queued training job {job.pk} (task {job.task_id}) on the 'training' queue.")
        )

    def _epoch(self, epoch: int, logs: dict) -> None:
        """One line per epoch; on a terminal, one progress bar redrawn in place."""
        progress = training_progress(
            epoch=epoch, max_epochs=self._max_epochs, logs=logs, elapsed=time.monotonic() - self._started
        )
        if self.stdout.isatty():
            filled = round(PROGRESS_BAR_WIDTH * epoch / max(self._max_epochs, 1))
            bar = "#" * filled + "." * (PROGRESS_BAR_WIDTH - filled)
            self.stdout.write(f"\r\033[K[{bar}] {progress['summary']}", ending="")
            self._bar_open = True
        else:
            self.stdout.write(progress["summary"])
        self.stdout.flush()
