"""Every URL pattern of the project, with a concrete path built from sample arguments."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver, reverse


@dataclass(frozen=True)
class Route:
    key: str  # "namespace:name", or "<namespace>:<route>" for unnamed patterns
    route: str  # the full pattern text
    arguments: tuple[str, ...]

    def path(self, samples: dict[str, str]) -> str:
        kwargs = {name: samples[name] for name in self.arguments}
        if not self.key.startswith("unnamed "):
            return reverse(self.key, kwargs=kwargs)
        text = self.route.replace("^", "").replace("$", "")
        text = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: samples[m.group(1)], text)
        text = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: samples[m.group(1)], text)
        return "/" + text


def _arguments(pattern: object) -> list[str]:
    converters = getattr(pattern, "converters", None)
    if converters:
        return list(converters)
    regex = getattr(pattern, "regex", None)
    return list(regex.groupindex) if regex is not None else []


def all_routes() -> list[Route]:
    routes: list[Route] = []

    def walk(resolver: URLResolver, prefix: str, namespace: str, arguments: list[str]) -> None:
        for entry in resolver.url_patterns:
            text = prefix + str(entry.pattern)
            args = arguments + _arguments(entry.pattern)
            if isinstance(entry, URLResolver):
                inner = namespace
                if entry.namespace:
                    inner = f"{namespace}:{entry.namespace}" if namespace else entry.namespace
                walk(entry, text, inner, args)
            elif isinstance(entry, URLPattern):
                if entry.name:
                    key = f"{namespace}:{entry.name}" if namespace else entry.name
                else:
                    key = f"unnamed {namespace}:{text}"
                routes.append(Route(key=key, route=text, arguments=tuple(args)))

    walk(get_resolver(), "", "", [])
    return routes
