from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from establishments.selectors import live_establishments_with_sessions


def home(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "establishments/home.html",
        {"establishments": live_establishments_with_sessions()},
    )
