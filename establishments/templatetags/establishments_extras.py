"""Template helpers for the family's call pages."""

from __future__ import annotations

from django import template

from establishments.models import Establishment

register = template.Library()


@register.simple_tag
def children_rule(establishment: Establishment) -> str:
    """The establishment's children's rule in the page's language ("" when it is off):
    ``{% children_rule booking.establishment as rule %}``."""
    from calls.faces import children_rule_text

    return children_rule_text(establishment)


@register.inclusion_tag("establishments/_contact.html")
def visits_contact(establishment: Establishment) -> dict[str, object]:
    """The establishment's visits team card (phone, email, opening hours in the page's
    language): ``{% visits_contact establishment %}`` on the help page and the portal."""
    from django.utils.translation import get_language

    language = "cy" if (get_language() or "").startswith("cy") else "en-gb"
    return {"establishment": establishment, "hours": establishment.visits_hours_in(language)}
