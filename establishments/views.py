from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import get_language

from establishments.selectors import MAX_QUERY_LENGTH, home_establishments


def home(request: HttpRequest) -> HttpResponse:
    """The start page: how it works, and the live prisons found by name or town
    (``?q=``, answered here so the search works without JavaScript)."""
    query = request.GET.get("q", "")[:MAX_QUERY_LENGTH].strip()
    language = "cy" if (get_language() or "").startswith("cy") else "en-gb"
    groups = home_establishments(query, language)
    return render(
        request,
        "establishments/home.html",
        {
            "groups": groups,
            "query": query,
            "found": sum(group.matches for group in groups),
            "language": language,
        },
    )
