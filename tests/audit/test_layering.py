"""The audit log is a ground floor: it imports nothing from the apps that write to it,
and they reach it without importing `monitoring` (the top floor)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WRITERS = ("identity", "bookings", "calls", "monitoring")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
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
