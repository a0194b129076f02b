"""Model rows read and written with plain SQL, for the few statements every notification runs.

Applying a notification runs the same handful of statements six to eight times per call. There the ORM's
Python costs more than the statements themselves: a ``RawQuerySet`` re-derives which column is which field
on every query, and ``Model.save()`` compiles a fresh UPDATE each time (bench/apply_cost.py). This module
does the same work once per model, from the model's metadata (``Model._meta``), and then only binds values:

- ``columns(model, alias)`` lists a model's columns for a SELECT, ``instances(model, rows)`` makes model
  instances of the rows such a SELECT returned (``Model.from_db``, as the ORM does: the instances are
  ordinary ones, ``_state`` included);
- ``row_insert(obj)`` and ``row_update(obj)`` write one instance as ``Model.save()`` would: each field's
  ``pre_save`` (``auto_now``, ``auto_now_add``) and ``get_db_prep_save`` (JSON, dates, foreign keys) — the
  Field API a custom field implements — into a statement built once. ``row_update`` of an instance read by
  ``instances`` (or written by ``row_insert``) writes only the fields whose value differs from what was read
  (JSON fields always: their values can change in place), like ``save(update_fields=…)``; one statement per
  set of fields, built once.

Only field types whose values the database driver already returns as Python wants them are accepted (text,
numbers, booleans, dates and times, foreign keys, and fields with their own ``from_db_value`` such as
JSON); a model with another kind of field is refused when its shape is first built, so a new field cannot
be read wrongly. No signals are sent: the models written here have no receivers (calls.models says so).
Values are always bound parameters; identifiers come from the metadata, quoted by the backend.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from django.db import connection, models

M = TypeVar("M", bound=models.Model)

# Field types whose database values need nothing but what ``_loader`` does. Subclasses count (PositiveInteger
# is an Integer, OneToOne a ForeignKey, BigAuto an Auto).
_PLAIN = (
    models.AutoField,
    models.BigAutoField,
    models.BigIntegerField,
    models.BooleanField,
    models.CharField,
    models.DateTimeField,
    models.ForeignKey,
    models.IntegerField,
    models.JSONField,
    models.SmallIntegerField,
    models.TextField,
)


@dataclass(frozen=True)
class Shape:
    """What reading and writing one model's rows needs, derived once from its metadata."""

    fields: tuple[models.Field, ...]  # the concrete fields, in the model's order
    attnames: tuple[str, ...]
    column_names: tuple[str, ...]  # quoted
    loaders: tuple[Callable[[Any], Any] | None, ...]
    insert_fields: tuple[models.Field, ...]  # every field but the primary key: what both statements write
    insert_sql: str
    # The quoted pieces of an UPDATE: the table, each insert field's column, the primary key's column.
    table: str
    insert_columns: tuple[str, ...]
    pk_column: str
    insert_index: tuple[int, ...]  # where each insert field is among ``fields``
    # Per insert field: written by every update (JSON: a value changed in place cannot be told from the
    # value read).
    always: tuple[bool, ...]


def _loader(field: models.Field) -> Callable[[Any], Any] | None:
    if hasattr(field, "from_db_value"):  # JSON: the backend hands over text, the field parses it
        return lambda value: field.from_db_value(value, None, connection)  # type: ignore[attr-defined]
    if isinstance(field, models.DateTimeField):
        # PostgreSQL returns aware datetimes; SQLite naive ones, in UTC (Django stores UTC there).
        return lambda value: (
            value.replace(tzinfo=UTC) if isinstance(value, datetime) and value.tzinfo is None else value
        )
    return None


@functools.cache
def shape(model: type[models.Model]) -> Shape:
    meta = model._meta
    fields = tuple(meta.concrete_fields)
    odd = [f.name for f in fields if not isinstance(f, _PLAIN)]
    if odd:
        raise TypeError(f"{model.__name__}: mttcrm.rows does not read fields of these types: {odd}")

    def quote(name: str | None) -> str:
        return str(connection.ops.quote_name(str(name)))

    table = quote(meta.db_table)
    pk = meta.pk
    assert pk is not None
    column_names = tuple(quote(f.column) for f in fields)
    insert_fields = tuple(f for f in fields if not f.primary_key)
    insert_columns = tuple(quote(f.column) for f in insert_fields)
    return Shape(
        fields=fields,
        attnames=tuple(f.attname for f in fields),
        column_names=column_names,
        loaders=tuple(_loader(f) for f in fields),
        insert_fields=insert_fields,
        insert_index=tuple(i for i, f in enumerate(fields) if not f.primary_key),
        always=tuple(isinstance(f, models.JSONField) for f in insert_fields),
        insert_sql=(
            f"INSERT INTO {table} ({', '.join(insert_columns)}) "  # noqa: S608
            f"VALUES ({', '.join(['%s'] * len(insert_fields))}) RETURNING {quote(pk.column)}"
        ),
        table=table,
        insert_columns=insert_columns,
        pk_column=quote(pk.column),
    )


def columns(model: type[models.Model], alias: str) -> str:
    """The model's columns for a SELECT, in the order ``instances`` expects, qualified by ``alias``."""
    return ", ".join(f"{alias}.{name}" for name in shape(model).column_names)


def instances(model: type[M], rows: Iterable[Sequence[Any]], *, extra: Sequence[str] = ()) -> list[M]:
    """Model instances of rows that start with ``columns(model, …)``; the row's further values, if any,
    become attributes named by ``extra`` (the joined columns of the query)."""
    spec = shape(model)
    width = len(spec.fields)
    result = []
    for row in rows:
        values = [
            load(value) if load is not None and value is not None else value
            for value, load in zip(row[:width], spec.loaders, strict=True)
        ]
        obj = model.from_db(connection.alias, spec.attnames, values)
        # What was read of the insert fields, for row_update to write only what changed.
        setattr(obj, _READ, [values[i] for i in spec.insert_index])
        for name, value in zip(extra, row[width:], strict=True):
            setattr(obj, name, value)
        result.append(obj)
    return result


# The attribute that keeps, on an instance read or inserted here, its insert fields' values as read: ours,
# on our instances (not a field of any model here).
_READ = "_mttcrm_rows_read"


@functools.lru_cache(maxsize=512)
def _update_sql(model: type[models.Model], written: tuple[int, ...]) -> str:
    """The UPDATE of the insert fields at these positions (one per set of fields a caller writes)."""
    spec = shape(model)
    sets = ", ".join(f"{spec.insert_columns[i]} = %s" for i in written)
    return f"UPDATE {spec.table} SET {sets} WHERE {spec.pk_column} = %s"  # noqa: S608


def row_update(obj: models.Model) -> None:
    """Write an existing row as ``obj.save()`` does (``auto_now`` included): the fields that changed since
    ``instances`` read it or ``row_insert`` wrote it (every field of an instance from elsewhere). A row that
    is gone raises ``DoesNotExist`` — when there is something to write: nothing changed and no ``auto_now``
    means no statement at all."""
    spec = shape(type(obj))
    read = getattr(obj, _READ, None)
    values = [field.pre_save(obj, False) for field in spec.insert_fields]
    if read is None:
        written = tuple(range(len(values)))
    else:
        written = tuple(
            i
            for i, (value, was, always) in enumerate(zip(values, read, spec.always, strict=True))
            if always or value != was
        )
    if not written:
        return
    fields = spec.insert_fields
    params = [fields[i].get_db_prep_save(values[i], connection) for i in written]
    with connection.cursor() as cursor:
        cursor.execute(_update_sql(type(obj), written), [*params, obj.pk])
        if cursor.rowcount != 1:
            raise obj._meta.model.DoesNotExist(f"{type(obj).__name__} {obj.pk} is gone")  # type: ignore[attr-defined]
    setattr(obj, _READ, values)


def row_insert(obj: M) -> M:
    """Insert a new row, as ``obj.save()`` does for an instance never saved; sets its primary key."""
    spec = shape(type(obj))
    values = [field.pre_save(obj, True) for field in spec.insert_fields]
    params = [
        field.get_db_prep_save(value, connection)
        for field, value in zip(spec.insert_fields, values, strict=True)
    ]
    with connection.cursor() as cursor:
        cursor.execute(spec.insert_sql, params)
        (obj.pk,) = cursor.fetchone()
    obj._state.adding = False
    obj._state.db = connection.alias
    setattr(obj, _READ, values)
    return obj
