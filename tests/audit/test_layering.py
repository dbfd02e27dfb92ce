"""The audit log is a ground floor: it imports nothing from the apps that write to it,
and they reach it without importing `monitoring` (the top floor)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WRITERS = ("identity", "bookings", "calls", "monitoring")


_FROM = re.compile(r"^[ \t]*from[ \t]+([\w.]+)[ \t]+import[ \t]+(\([^)]*\)|[^\n]+)", re.M)
_IMPORT = re.compile(r"^[ \t]*import[ \t]+([\w., \t]+)", re.M)


def _imports(path: Path) -> set[str]:
    # Read as text, not with ast.parse: CPython 3.11.7's AST constructor sometimes raised
    # "SystemError: AST constructor recursion depth mismatch" on a loaded machine.
    text = path.read_text()
    found: set[str] = set()
    for module, names in _FROM.findall(text):
        for name in names.strip("()").replace("\n", ",").split(","):
            name = name.split("#")[0].split(" as ")[0].strip()
            if name:
                found.add(f"{module}.{name}")
    for modules in _IMPORT.findall(text):
        found.update(m.split(" as ")[0].strip() for m in modules.split(",") if m.strip())
    return found


def _sources(app: str) -> list[Path]:
    return [p for p in (ROOT / app).rglob("*.py") if "migrations" not in p.parts]


def test_audit_imports_no_app_above_it() -> None:
    offending = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in _sources("audit")
        for name in _imports(path)
        if name.split(".")[0] in WRITERS
    }
    assert not offending


def test_no_app_reaches_the_audit_log_through_monitoring() -> None:
    offending = {
        f"{path.relative_to(ROOT)}: {name}"
        for app in (*WRITERS, "establishments", "purplevisits")
        for path in _sources(app)
        for name in _imports(path)
        if name in {"monitoring.models.AuditEntry", "monitoring.models.AuditAction"}
        or name == "monitoring.services.audit_record"
    }
    assert not offending
    assert _sources("audit"), "the audit app is missing"
