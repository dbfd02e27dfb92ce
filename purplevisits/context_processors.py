from django.conf import settings
from django.http import HttpRequest

from establishments.selectors import account_facts


def service(request: HttpRequest) -> dict[str, object]:
    """The service's name, and what kind of account is signed in (for the nav).

    ``account`` is the request's one cached facts query (staff member, prison laptop,
    authenticator app), so the nav costs no query of its own.
    """
    return {
        "SERVICE_NAME": settings.SERVICE_NAME,
        "account": account_facts(getattr(request, "user", None)),
    }
