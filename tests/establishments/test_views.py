from datetime import time

import pytest
from django.test import override_settings

from establishments.models import RolloutStage
from tests import factories

pytestmark = pytest.mark.django_db


def test_home_lists_live_establishments_with_their_call_times(
    client, django_assert_max_num_queries
) -> None:  # type: ignore[no-untyped-def]
    live = factories.EstablishmentFactory(name="HMP Liveley")
    factories.VisitSessionFactory(
        establishment=live, weekday=1, start_time=time(14), end_time=time(16)
    )
    factories.VisitSessionFactory(
        establishment=live, weekday=1, start_time=time(9, 30), end_time=time(11, 45)
    )
    factories.EstablishmentFactory(name="HMP Soon", rollout_stage=RolloutStage.TEST_CALLS)
    for n in range(5):
        other = factories.EstablishmentFactory(name=f"HMP Busy {n}")
        factories.VisitSessionFactory(establishment=other)
    with django_assert_max_num_queries(4):
        response = client.get("/")
    content = response.content.decode()
    assert response.status_code == 200
    assert "HMP Liveley" in content
    assert "HMP Soon" not in content
    assert "<dt>Tuesday</dt><dd>09:30–11:45, 14:00–16:00</dd>" in content
    assert 'href="#main"' in content and 'id="main"' in content
    assert "Create an account" in content


def test_home_with_no_live_establishment(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/")
    assert "No prison is offering video calls yet." in response.content.decode()


def test_signed_in_state_in_header(client) -> None:  # type: ignore[no-untyped-def]
    user = factories.UserFactory(email="jo@example.test")
    client.force_login(user)
    content = client.get("/").content.decode()
    assert "Signed in as jo@example.test" in content and "Sign out" in content


@override_settings(DEBUG=False)
def test_404_page_uses_the_layout(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    content = response.content.decode()
    assert "Page not found" in content and 'class="site-header"' in content


@pytest.mark.parametrize(
    ("handler", "status", "text"),
    [
        ("bad_request", 400, "could not be understood"),
        ("permission_denied", 403, "do not have access"),
        ("server_error", 500, "there is a problem with the service"),
    ],
)
def test_error_pages(rf, handler: str, status: int, text: str) -> None:  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import AnonymousUser

    from purplevisits import errors

    request = rf.get("/")
    request.user = AnonymousUser()
    view = getattr(errors, handler)
    response = view(request) if handler == "server_error" else view(request, None)
    assert response.status_code == status
    assert text in response.content.decode()
