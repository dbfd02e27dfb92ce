"""Every write to the establishments app."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone
from django.utils.text import slugify

from establishments.models import (
    Country,
    Establishment,
    EstablishmentKind,
    Feedback,
    Operator,
    RolloutStage,
    RolloutStageChange,
)


@transaction.atomic
def establishment_set_stage(
    *,
    establishment: Establishment,
    stage: str,
    changed_by: User | AnonymousUser | None = None,
    note: str = "",
) -> bool:
    """Move an establishment to ``stage`` and record the change. False if already there."""
    if stage not in RolloutStage.values:
        raise ValidationError({"rollout_stage": f"{stage!r} is not a rollout stage."})
    locked = Establishment.objects.select_for_update().get(pk=establishment.pk)
    if locked.rollout_stage == stage:
        return False
    now = timezone.now()
    RolloutStageChange.objects.create(
        establishment=locked,
        from_stage=locked.rollout_stage,
        to_stage=stage,
        changed_at=now,
        changed_by=changed_by if isinstance(changed_by, User) else None,
        note=note[:200],
    )
    Establishment.objects.filter(pk=locked.pk).update(
        rollout_stage=stage, rollout_stage_changed_at=now
    )
    establishment.rollout_stage = stage
    establishment.rollout_stage_changed_at = now
    return True


def establishment_advance_stage(
    *, establishment: Establishment, changed_by: User | AnonymousUser | None = None
) -> bool:
    """Equipment delivered → staff training → test calls → live (suspended → live)."""
    following = RolloutStage.next_after(establishment.rollout_stage)
    if following is None:
        return False
    return establishment_set_stage(
        establishment=establishment, stage=following, changed_by=changed_by, note="Advanced"
    )


# --- Importing the estate from CSV -----------------------------------------------------

REQUIRED_COLUMNS = ("name", "kind", "operator", "country")
STAGE_COLUMNS = ("rollout_stage", "rollout_stage_2020_07")
# Optional: where the establishment is (the home page's search). An absent column
# leaves what admin has set; a present one, even empty, is what the file says.
TOWN_COLUMNS = ("town", "town_cy")
# The 2020 letter only says "setting up" (equipment delivered, training, test calls or
# local configuration issues); the first of those stages is the only safe reading.
STAGE_ALIASES = {"setting_up": RolloutStage.EQUIPMENT_DELIVERED}
MAX_IMPORT_BYTES = 5 * 1024 * 1024


class ImportError_(Exception):  # noqa: N801 - avoids shadowing the builtin ImportError
    """A CSV that cannot be imported; the message names the line."""


@dataclass(frozen=True)
class EstablishmentRow:
    line: int
    code: str
    name: str
    kind: str
    operator: str
    country: str
    stage: str
    towns: dict[str, str] | None = None  # {"town": …, "town_cy": …} when the file has them


@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int
    unchanged: int


def _choice(value: str, choices: type[models.TextChoices], column: str, line: int) -> str:
    normalised = value.strip().lower().replace(" ", "_").replace("-", "_")
    if normalised in choices.values:
        return normalised
    for choice_value, label in choices.choices:
        if normalised == str(label).lower().replace(" ", "_"):
            return choice_value
    allowed = ", ".join(choices.values)
    raise ImportError_(f"line {line}: unknown {column} {value!r} (expected one of: {allowed}).")


def parse_establishments_csv(text: str) -> list[EstablishmentRow]:
    """Validate every row first; raise ImportError_ naming the first bad line."""
    if len(text.encode()) > MAX_IMPORT_BYTES:
        raise ImportError_(f"the file is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MB.")
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [column.strip().lower() for column in (reader.fieldnames or [])]
    if not header:
        raise ImportError_("line 1: the file is empty (expected a header row).")
    reader.fieldnames = header
    missing = [column for column in REQUIRED_COLUMNS if column not in header]
    stage_column = next((column for column in STAGE_COLUMNS if column in header), None)
    if stage_column is None:
        missing.append(" or ".join(STAGE_COLUMNS))
    if missing:
        raise ImportError_(f"line 1: missing column(s): {', '.join(missing)}.")

    rows: list[EstablishmentRow] = []
    seen_names: dict[str, int] = {}
    seen_codes: dict[str, int] = {}
    try:
        for record in reader:
            line = reader.line_num
            if None in record:
                raise ImportError_(f"line {line}: more fields than columns in the header.")
            values = {key: (value or "").strip() for key, value in record.items()}
            if not any(values.values()):
                continue
            name = values["name"]
            if not name:
                raise ImportError_(f"line {line}: the name is empty.")
            if len(name) > 120:
                raise ImportError_(f"line {line}: the name is longer than 120 characters.")
            code = slugify(name)[:64]
            if not code:
                raise ImportError_(f"line {line}: the name {name!r} has no letters or digits.")
            folded = name.casefold()
            if folded in seen_names:
                raise ImportError_(
                    f"line {line}: duplicate name {name!r} (first on line {seen_names[folded]})."
                )
            if code in seen_codes:
                raise ImportError_(
                    f"line {line}: {name!r} gives the same web address as line {seen_codes[code]}."
                )
            seen_names[folded] = line
            seen_codes[code] = line
            towns = {column: values[column] for column in TOWN_COLUMNS if column in header}
            for column, town in towns.items():
                if len(town) > 60:
                    raise ImportError_(f"line {line}: the {column} is longer than 60 characters.")
            raw_stage = values[stage_column].lower()
            stage = STAGE_ALIASES.get(raw_stage) or _choice(
                raw_stage, RolloutStage, "rollout stage", line
            )
            rows.append(
                EstablishmentRow(
                    line=line,
                    code=code,
                    name=name,
                    kind=_choice(values["kind"], EstablishmentKind, "kind", line),
                    operator=_choice(values["operator"], Operator, "operator", line),
                    country=_choice(values["country"], Country, "country", line),
                    stage=stage,
                    towns=towns or None,
                )
            )
    except csv.Error as exc:
        raise ImportError_(f"line {reader.line_num}: malformed CSV ({exc}).") from None
    if not rows:
        raise ImportError_("the file has a header but no establishments.")
    return rows


@transaction.atomic
def establishments_import(*, rows: list[EstablishmentRow]) -> ImportResult:
    """Create or update establishments by code. Running it twice changes nothing."""
    created = updated = unchanged = 0
    existing = {e.code: e for e in Establishment.objects.select_for_update()}
    for row in rows:
        establishment = existing.get(row.code)
        if establishment is None:
            establishment = Establishment(
                code=row.code,
                name=row.name,
                kind=row.kind,
                operator=row.operator,
                country=row.country,
                rollout_stage=row.stage,
                **(row.towns or {}),
            )
            try:
                establishment.full_clean()
            except ValidationError as exc:
                raise ImportError_(f"line {row.line}: {'; '.join(exc.messages)}") from None
            establishment.save()
            RolloutStageChange.objects.create(
                establishment=establishment, from_stage="", to_stage=row.stage, note="Imported"
            )
            created += 1
            continue
        fields = {
            "name": row.name,
            "kind": row.kind,
            "operator": row.operator,
            "country": row.country,
            **(row.towns or {}),
        }
        changed = [
            field for field, value in fields.items() if getattr(establishment, field) != value
        ]
        for field in changed:
            setattr(establishment, field, fields[field])
        if changed:
            establishment.full_clean()
            establishment.save(update_fields=[*changed, "updated_at"])
        stage_changed = establishment_set_stage(
            establishment=establishment, stage=row.stage, note="Imported"
        )
        if changed or stage_changed:
            updated += 1
        else:
            unchanged += 1
    return ImportResult(created=created, updated=updated, unchanged=unchanged)


# --- Feedback from the footer's form ------------------------------------------------------


@transaction.atomic
def feedback_create(
    *,
    topic: str,
    message: str,
    establishment: Establishment | None = None,
    reply_to: str = "",
    language: str = "",
    user: User | None = None,
) -> Feedback:
    feedback = Feedback(
        topic=topic,
        message=message,
        establishment=establishment,
        reply_to=reply_to,
        language=language,
        user=user,
    )
    feedback.full_clean()
    feedback.save()
    return feedback
