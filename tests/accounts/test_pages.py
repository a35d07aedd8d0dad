"""Every account page renders, inside the site layout, with CSRF-protected forms and the right navigation."""

import pytest
from django.urls import reverse

from .factories import UserFactory

pytestmark = pytest.mark.django_db

PUBLIC_PAGES = ["login", "signup", "password_reset", "password_reset_done", "password_reset_complete"]
MEMBER_PAGES = ["profile", "password_change", "password_change_done", "delete"]
PAGES_WITH_A_FORM = ["login", "signup", "password_reset", "profile", "password_change", "delete"]


@pytest.mark.parametrize("name", PUBLIC_PAGES)
def test_public_pages_render_in_the_site_layout(client, name):
    response = client.get(reverse(f"accounts:{name}"))
    assert response.status_code == 200
    assert "site.css" in response.text and "site-header" in response.text


@pytest.mark.parametrize("name", MEMBER_PAGES)
def test_member_pages_render_for_a_logged_in_user(member_client, name):
    response = member_client.get(reverse(f"accounts:{name}"))
    assert response.status_code == 200
    assert "site-header" in response.text


@pytest.mark.parametrize("name", MEMBER_PAGES)
def test_member_pages_send_anonymous_visitors_to_log_in_and_back(client, name):
    url = reverse(f"accounts:{name}")
    response = client.get(url)
    assert response.status_code == 302
    assert response.url == f"{reverse('accounts:login')}?next={url}"


@pytest.mark.parametrize("name", PAGES_WITH_A_FORM)
def test_every_form_has_a_csrf_token_and_labels(client, name):
    if name in MEMBER_PAGES:
        client.force_login(UserFactory())
    response = client.get(reverse(f"accounts:{name}"))
    text = response.text
    assert 'method="post"' in text
    assert text.count('name="csrfmiddlewaretoken"') >= text.count('method="post"')
    assert "<label" in text


def test_invalid_reset_link_page_offers_a_new_link(client):
    response = client.get(reverse("accounts:password_reset_confirm", kwargs={"uidb64": "MQ", "token": "bad-token"}))
    assert response.status_code == 200
    assert "This link no longer works" in response.text
    assert reverse("accounts:password_reset") in response.text


def test_navigation_for_anonymous_visitors_offers_log_in_and_sign_up(client):
    text = client.get(reverse("movies:home")).text
    assert f"{reverse('accounts:login')}?next=/" in text
    assert reverse("accounts:signup") in text
    assert "Log out" not in text and reverse("admin:index") not in text


def test_navigation_for_members_links_the_profile_and_logs_out_by_post(member_client, member):
    text = member_client.get(reverse("movies:home")).text
    assert f'href="{reverse("accounts:profile")}"' in text and member.username in text
    assert f'<form class="logout-form" method="post" action="{reverse("accounts:logout")}">' in text
    assert "Sign up" not in text
    assert reverse("admin:index") not in text


def test_navigation_shows_admin_to_staff(client):
    client.force_login(UserFactory(username="boss", is_staff=True))
    assert f'href="{reverse("admin:index")}"' in client.get(reverse("movies:home")).text
