"""Migration operations the project adds to Tortoise's (the loader skips modules starting with ``_``).

Tortoise's ``AddField`` adds a NOT NULL column without a SQL default, which fails on a table that has
rows (PostgreSQL: "column contains null values"; SQLite refuses outright). ``AddFieldWithDefault`` gives
the column its default in the database too, so existing rows get it.
"""

from __future__ import annotations

from typing import Any

from tortoise.migrations import operations as ops


class AddFieldWithDefault(ops.AddField):
    def __init__(self, model_name: str, name: str, field: Any, sql_type: str, sql_default: str) -> None:
        super().__init__(model_name, name, field)
        self.sql_type = sql_type
        self.sql_default = sql_default

    async def database_forward(self, app_label, old_state, new_state, state_editor=None) -> None:  # type: ignore[no-untyped-def]
        if not state_editor:
            return
        model = new_state.apps.get_model(f"{app_label}.{self.model_name}")
        column = model._meta.fields_map[self.name].source_field or self.name
        await state_editor._run_sql(
            f'ALTER TABLE "{model._meta.db_table}" ADD COLUMN "{column}" {self.sql_type}'
            f" NOT NULL DEFAULT {self.sql_default}"
        )
