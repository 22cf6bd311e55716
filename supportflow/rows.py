"""Model instances from rows of hand-written SQL: for the hot statements written once as plain SQL
(the chat's append, the API key's check), whose rows the ORM never sees."""

from __future__ import annotations

import functools

from django.db import connection


@functools.cache
def _row_converters(model) -> list[tuple[object, list]]:
    table = model._meta.db_table
    found = []
    for field in model._meta.concrete_fields:
        col = field.get_col(table)
        found.append((col, connection.ops.get_db_converters(col) + field.get_db_converters(connection)))
    return found


def model_from_row(model, values):
    """A model instance from raw column values (all its concrete fields, in order), through each field's
    database converters (Django reads JSON as text and the field decodes it)."""
    converted = []
    for (col, converters), value in zip(_row_converters(model), values, strict=True):
        for converter in converters:
            value = converter(value, col, connection)
        converted.append(value)
    return model.from_db(connection.alias, [f.attname for f in model._meta.concrete_fields], converted)


def select_columns(model, alias: str) -> str:
    """``alias.column, …`` for all the model's concrete fields, in ``model_from_row``'s order."""
    qn = connection.ops.quote_name
    return ", ".join(f"{alias}.{qn(field.column)}" for field in model._meta.concrete_fields)
