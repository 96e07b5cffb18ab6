"""Every model change comes with a migration."""

from __future__ import annotations

import json
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


async def test_a_ledger_written_before_the_ledger_core_migration_survives_it_and_the_engine_goes_on(
    tmp_path: Path,
) -> None:
    from tests import conftest

    if conftest.BACKEND == "postgres":
        url = await conftest._create_pg_database()
    else:
        url = f"sqlite://{tmp_path}/old.sqlite3"
    try:
        out = subprocess.run(
            [sys.executable, "-m", "tests.ledger.migrate_with_data", url],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        if conftest.BACKEND == "postgres":
            await conftest._drop_pg_database(url)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["audit_ok"], report["violations"]
    # The old member account (key b1:points:member:m7, id 3) went on: 100 + 30 - 110; the retry of the
    # first earn answers the balance right after it.
    assert (report["member_account_id"], report["balance"], report["sequence"]) == (3, 20, 4)
    assert report["answers"] == [130, 20, 120] and report["replayed"] == [False, False, True]
    assert (report["accounts"], report["postings"], report["lots"], report["outbox"]) == (3, 8, 2, 4)
    assert report["duplicate_key_refused"]
    # Columns added later get their defaults on rows that were there before (hub/migrations/_operations).
    assert report["brand_settings"] == ["Asia/Shanghai", 100, 100]
    # The earning migration turned the old earn into a purchase and filled the member's activity.
    assert report["purchases"] == [[1, 12_050, 120, 1]]
    assert report["activity"] == [True, 1, 12_050, "normal"]


async def test_api_keys_of_the_first_schema_survive_the_migrations(tmp_path: Path) -> None:
    from tests import conftest

    if conftest.BACKEND == "postgres":
        url = await conftest._create_pg_database()
    else:
        url = f"sqlite://{tmp_path}/old.sqlite3"
    try:
        out = subprocess.run(
            [sys.executable, "-m", "tests.auth.migration_data", url],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        after = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        if conftest.BACKEND == "postgres":
            await conftest._drop_pg_database(url)
    # The key is intact, has no expiry and no previous secret, and still authenticates.
    assert after == {
        "label": "till",
        "expires_at": None,
        "last_used_at": True,
        "previous_secret_hash": None,
        "previous_valid_until": None,
        "principal": ["store", 1, 1],
    }


def test_migrations_are_one_chain() -> None:
    """Each migration depends on the one before it. Two branches landing with the same number both
    apply on a fresh database, so nothing else fails; after a rebase, renumber yours."""
    import ast
    import itertools

    names = sorted(p.stem for p in (ROOT / "hub" / "migrations").glob("0*.py"))
    for previous, name in itertools.pairwise(names):
        tree = ast.parse((ROOT / "hub" / "migrations" / f"{name}.py").read_text())
        deps = next(
            ast.literal_eval(node.value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Assign)
            and any(getattr(t, "id", "") == "dependencies" for t in node.targets)
        )
        assert deps == [("models", previous)], f"{name} should depend on {previous}, not {deps}"
    assert [n[:4] for n in names] == [f"{i:04d}" for i in range(1, len(names) + 1)], names
