from django.conf import settings
from django.http import HttpRequest


def service(request: HttpRequest) -> dict[str, object]:
    return {"SERVICE_NAME": settings.SERVICE_NAME}
