"""Every model change comes with a migration."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_models_and_migrations_agree(tmp_path: Path) -> None:
    # Run `tortoise makemigrations` on a copy, so that a missing migration is reported, not written.
    shutil.copytree(ROOT / "hub", tmp_path / "hub", ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "HUB_DATABASE_URL": f"sqlite://{tmp_path}/m.sqlite3"}
    out = subprocess.run(
        [sys.executable, "-m", "tortoise", "-c", "hub.db.TORTOISE_ORM", "makemigrations"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "No changes detected" in out.stdout, f"models changed without a migration:\n{out.stdout}"
