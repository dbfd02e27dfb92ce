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


# --- the home page's search (issue 17) ---------------------------------------------------


def _visible_names(content: str) -> list[str]:
    """Names of the cards shown (not rendered hidden), in page order."""
    import re

    names = []
    for attributes, body in re.findall(r'<li class="card"([^>]*)>(.*?)</li>', content, re.S):
        if " hidden" not in attributes:
            names.append(re.search(r"<h4>(.*?)</h4>", body).group(1))
    return names


@pytest.fixture
def estate(db):  # type: ignore[no-untyped-def]
    return [
        factories.EstablishmentFactory(
            name="Berwyn", code="berwyn", country="wales", town="Wrexham", town_cy="Wrecsam"
        ),
        factories.EstablishmentFactory(
            name="Cardiff", code="cardiff", country="wales", town="Cardiff", town_cy="Caerdydd"
        ),
        factories.EstablishmentFactory(name="Full Sutton", code="full-sutton", town="York"),
        factories.EstablishmentFactory(name="Askham Grange", code="askham-grange", town="York"),
        factories.EstablishmentFactory(
            name="Leeds", code="leeds", town="Leeds", rollout_stage=RolloutStage.TEST_CALLS
        ),
    ]


def test_home_groups_prisons_by_country(client, estate) -> None:  # type: ignore[no-untyped-def]
    content = client.get("/").content.decode()
    assert content.index('id="country-england"') < content.index('id="country-wales"')
    assert _visible_names(content) == ["Askham Grange", "Full Sutton", "Berwyn", "Cardiff"]
    assert "Leeds" not in _visible_names(content)  # not live
    assert 'href="/visits/berwyn/"' in content


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("berwyn", ["Berwyn"]),  # by name, any case
        ("  BERWYN ", ["Berwyn"]),
        ("york", ["Askham Grange", "Full Sutton"]),  # by town
        ("wrexham", ["Berwyn"]),
        ("wrecsam", ["Berwyn"]),  # the town's Welsh name
        ("caerdydd", ["Cardiff"]),
        ("full york", ["Full Sutton"]),  # every word must match
        ("sutton-full", ["Full Sutton"]),  # punctuation folded
        ("nowhere", []),
    ],
)
def test_search_by_name_or_town_without_javascript(client, estate, query, found) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/", {"q": query})
    content = response.content.decode()
    assert response.status_code == 200
    assert _visible_names(content) == found
    # The rest stay on the page (hidden), so the filter as you type can widen the search.
    assert content.count('<li class="card"') == 4
    assert f'value="{query.strip()}"' in content
    if found:
        assert "No prison matches your search" not in content.split("data-search-none")[1][:40]
        assert f"found for “{query.strip()}”" in content
    else:
        none = content.split("data-search-none", 1)[1].split(">", 1)[0]
        assert "hidden" not in none
    assert 'src="/static/js/establishment-search.js"' in content


def test_search_in_welsh_puts_wales_first(client, estate) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/", {"q": "caerdydd"}, HTTP_ACCEPT_LANGUAGE="cy")
    content = response.content.decode()
    assert 'lang="cy"' in content
    assert content.index('id="country-wales"') < content.index('id="country-england"')
    assert _visible_names(content) == ["Cardiff"]
    assert "Daethpwyd o hyd i 1 carchar" in content
    assert "Caerdydd ·" in content  # the town in Welsh on Welsh pages
    assert "Chwilio am garchar" in content


def test_search_text_is_escaped_and_bounded(client, estate) -> None:  # type: ignore[no-untyped-def]
    hostile = '"><script>alert(1)</script>' + "x" * 500
    content = client.get("/", {"q": hostile}).content.decode()
    assert "<script>alert(1)</script>" not in content
    import html
    import re

    value = html.unescape(re.search(r'name="q" value="([^"]*)"', content).group(1))
    assert value == hostile[:100].strip()  # at most 100 characters are read


def test_search_key_folds_case_accents_and_punctuation() -> None:
    from establishments.selectors import search_key

    assert search_key("  Pen-y-bont  ar OGWR ") == "pen y bont ar ogwr"
    assert search_key("Ŵyl Dŷ Â") == "wyl dy a"
