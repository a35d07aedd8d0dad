import pytest

pytestmark = pytest.mark.django_db


def test_unknown_page_gets_the_styled_404(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert "Page not found" in response.text and "site.css" in response.text
