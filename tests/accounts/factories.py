import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password

# Every factory-made account has this password, so tests can log in through the real log-in page.
PASSWORD = "a-strong-test-password"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"person{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    password = factory.django.Password(PASSWORD)


class MovieLensUserFactory(UserFactory):
    """A user as `import_movielens` creates them: `movielens_<id>`, no e-mail, an unusable password."""

    movielens_id = factory.Sequence(lambda n: 900_000 + n)
    username = factory.LazyAttribute(lambda user: f"movielens_{user.movielens_id}")
    email = ""
    password = factory.LazyFunction(lambda: make_password(None))
