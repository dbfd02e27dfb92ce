"""A forked child (the e2e test server, a pre-forking web server) gets working face
checks: neither its parent's executor nor its parent's forkserver is reused."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

SCRIPT = textwrap.dedent(
    """
    import asyncio, os, sys
    sys.path.insert(0, {root!r})
    os.environ["DJANGO_SETTINGS_MODULE"] = "purplevisits.settings"

    def main():
        import django
        django.setup()
        from calls.facecheck import close_shared_pool, shared_pool

        async def pids():
            return await shared_pool().warm()

        parent = asyncio.run(pids())
        print("parent", len(parent), flush=True)
        child = os.fork()
        if child == 0:
            try:
                found = asyncio.run(pids())
                ok = bool(found) and not set(found) & set(parent)
                print("child", "ok" if ok else "shared", flush=True)
            finally:
                close_shared_pool()
                os._exit(0)
        os.waitpid(child, 0)
        close_shared_pool()

    if __name__ == "__main__":
        main()
    """
)


def test_a_forked_child_starts_its_own_pool(tmp_path) -> None:  # type: ignore[no-untyped-def]
    script = tmp_path / "fork_pool.py"
    script.write_text(SCRIPT.format(root=str(ROOT)))
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120
    )
    assert "parent" in result.stdout, result.stderr[-2000:]
    assert "child ok" in result.stdout, result.stderr[-2000:]
