"""Small truths: what `hub migrate` says."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests import conftest


def _migrate(url: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "hub.cli", "migrate"],
        env={**os.environ, "HUB_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


async def test_migrate_names_what_it_applied_and_then_says_up_to_date(tmp_path: Path) -> None:
    if conftest.BACKEND == "postgres":
        url = await conftest._create_pg_database()
    else:
        url = f"sqlite://{tmp_path}/fresh.sqlite3"
    try:
        first = _migrate(url)
        migrations = sorted(p.stem for p in (Path(__file__).parents[2] / "hub" / "migrations").glob("0*.py"))
        assert first == f"applied {len(migrations)} migrations: {', '.join(migrations)}"
        assert _migrate(url) == "database is up to date: no migration to apply"
    finally:
        if conftest.BACKEND == "postgres":
            await conftest._drop_pg_database(url)
