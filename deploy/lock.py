"""`make lock`: pin what is installed in .venv into two files.

requirements.lock: pyproject's [project] dependencies and everything they need (the
image installs only this); requirements-dev.lock: the rest of .venv (tests, linters).
"""

from __future__ import annotations

import importlib.metadata as metadata
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
# Installed with --no-deps from requirements-nodeps.txt, and the project itself.
SKIP = {"face-recognition", "purplevisits"}


def runtime_closure(requirements: list[str]) -> set[str]:
    seen: set[tuple[str, frozenset[str]]] = set()
    stack = [Requirement(r) for r in requirements]
    while stack:
        requirement = stack.pop()
        key = (canonicalize_name(requirement.name), frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            raise SystemExit(f"{requirement.name} is not installed: run make setup") from None
        for raw in dist.requires or []:
            needed = Requirement(raw)
            extras = requirement.extras or {""}
            if needed.marker and not any(needed.marker.evaluate({"extra": e}) for e in extras):
                continue
            stack.append(needed)
    return {name for name, _ in seen}


def main() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = runtime_closure(project["dependencies"])
    pins = sorted(
        (f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions()),
        key=lambda pin: pin.split("==")[0].lower(),
    )
    runtime_lines: list[str] = []
    dev_lines: list[str] = []
    for pin in pins:
        name = canonicalize_name(pin.split("==")[0])
        if name in SKIP or name in {"pip", "setuptools", "wheel"}:
            continue
        (runtime_lines if name in runtime else dev_lines).append(pin)
    (ROOT / "requirements.lock").write_text("\n".join(runtime_lines) + "\n")
    (ROOT / "requirements-dev.lock").write_text("\n".join(dev_lines) + "\n")
    print(f"requirements.lock: {len(runtime_lines)} pins; requirements-dev.lock: {len(dev_lines)}")


if __name__ == "__main__":
    main()
