"""manage.py activate_model VERSION_ID"""

from django.core.management.base import BaseCommand, CommandError

from recommender.models import ModelVersion
from recommender.services import TrainingError, model_version_activate


class Command(BaseCommand):
    help = "Put a ready model version in service (the previously active one goes back to ready)."

    def add_arguments(self, parser):
        parser.add_argument("version_id", type=int)

    def handle(self, *args, version_id: int, **options):
        try:
            version = model_version_activate(version=ModelVersion.objects.get(pk=version_id))
        except ModelVersion.DoesNotExist:
            raise CommandError(f"there is no model version {version_id}") from None
        except TrainingError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(self.style.SUCCESS(f"Model version {version.pk} is active"))
