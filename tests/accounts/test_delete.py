import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from movies.models import Rating, Tag
from tests.movies.factories import MovieFactory, RatingFactory

from .factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db
User = get_user_model()


def test_the_confirmation_page_says_what_will_be_lost(member_client, member):
    RatingFactory(user=member)
    text = member_client.get(reverse("accounts:delete")).text
    assert "1 rating" in text and "cannot be undone" in text


def test_deleting_needs_the_right_password(member_client, member):
    RatingFactory(user=member)
    response = member_client.post(reverse("accounts:delete"), {"password": "not-my-password"})
    assert response.status_code == 200
    assert "That is not your password." in response.text
    assert User.objects.filter(pk=member.pk).exists()
    assert Rating.objects.filter(user=member).count() == 1


def test_deleting_needs_a_password_at_all(member_client, member):
    response = member_client.post(reverse("accounts:delete"), {})
    assert response.status_code == 200 and "This field is required." in response.text
    assert User.objects.filter(pk=member.pk).exists()


def test_deleting_removes_the_account_and_its_ratings_and_logs_out(member_client, member):
    movie = MovieFactory()
    RatingFactory(user=member, movie=movie)
    RatingFactory(user=member)
    Tag.objects.create(user=member, movie=movie, text="mind-bending", tagged_at="2024-01-01T00:00:00Z")
    someone_else = RatingFactory(movie=movie, user=UserFactory(username="bob"))

    response = member_client.post(reverse("accounts:delete"), {"password": PASSWORD})

    assert response.status_code == 302 and response.url == reverse("movies:home")
    assert not User.objects.filter(pk=member.pk).exists()
    assert not Rating.objects.filter(user_id=member.pk).exists()
    assert not Tag.objects.filter(user_id=member.pk).exists()
    assert list(Rating.objects.all()) == [someone_else]
    assert "_auth_user_id" not in member_client.session
    assert "Your account and all your ratings are deleted." in member_client.get(response.url).text


def test_a_get_never_deletes(member_client, member):
    member_client.get(reverse("accounts:delete"), {"password": PASSWORD})
    assert User.objects.filter(pk=member.pk).exists()
