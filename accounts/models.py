from django.contrib.auth.models import AbstractUser
from django.core.validators import MaxValueValidator
from django.db import models

# Users imported from a MovieLens release are called movielens_<id>; sign-up refuses names with this prefix.
MOVIELENS_USERNAME_PREFIX = "movielens_"


class User(AbstractUser):
    """A site account; imported MovieLens users carry their MovieLens id and demographics."""

    class Gender(models.TextChoices):
        FEMALE = "F", "Female"
        MALE = "M", "Male"
        OTHER = "X", "Another gender"

    age = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MaxValueValidator(130)],
        help_text="Age in years (ML-1M stores an age band's lower bound).",
    )
    gender = models.CharField(max_length=1, choices=Gender.choices, blank=True)
    occupation = models.CharField(max_length=64, blank=True)
    zip_code = models.CharField(max_length=16, blank=True)
    movielens_id = models.PositiveIntegerField(
        "MovieLens user id",
        null=True,
        blank=True,
        unique=True,
        help_text="Set for users imported from a MovieLens dataset.",
    )

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"

    @property
    def is_movielens_import(self) -> bool:
        return self.movielens_id is not None
