"""A queryset composed and compiled by the ORM once per *shape*, then run with each request's values.

An API list builds the same query on every request: the same scope, filters, ordering and keyset
condition, only with other values (the caller's id, a status, a cursor's timestamp). The ORM spends
about 1 ms of CPU per request composing and compiling it (cloning querysets, resolving lookups, writing
SQL) — a third of the ticket list's CPU once its rows were written by PostgreSQL (``docs/benchmarks.md``).

``CompiledQueries.bind(shape, values, build)`` asks ``build`` for the queryset once per ``shape``, with
*stand-ins* in place of the values (unlikely numbers, strings and times, one per value), compiles it, and
notes which of the compiled parameters is which stand-in. Later calls with that shape put the request's
values in those places: the same SQL the ORM would write, without the ORM.

What keeps it honest:

- The shape must name everything that changes the SQL's text (which filters, the ordering, the scope,
  whether a cursor is given); the values are only what the ORM passes as parameters.
- A shape whose stand-ins do not come out as parameters *unchanged* (a ``LIKE`` pattern wraps its value,
  a lookup converts it) is not cached: ``bind`` returns ``None`` and the caller composes as before.
  Only ``int``, ``str`` and aware ``datetime`` values are bound this way.
- ``tests/test_api_compiled.py`` compares, for a matrix of users, filters, orderings and cursors, the
  bound SQL and parameters with what the ORM compiles from the real values.

The entries are per process and few (the shapes are finite: a scope, a subset of the filters, an
ordering from a fixed list, a cursor's direction); past ``MAX_SHAPES`` they are dropped and made again.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

from django.core.exceptions import EmptyResultSet, FullResultSet
from django.db.models import QuerySet

MAX_SHAPES = 512
_MARK = "\ue000sf-stand-in\ue001"  # private-use characters: never in a real value's compiled form by chance


@dataclass(frozen=True)
class Compiled:
    sql: str
    params: tuple  # the compiled parameters, stand-ins included
    slots: tuple[tuple[int, int], ...]  # (position in params, index of the value that goes there)

    def bind(self, values: Sequence) -> tuple[str, list]:
        params = list(self.params)
        for position, index in self.slots:
            params[position] = values[index]
        return self.sql, params


def _stand_in(index: int, value):
    if type(value) is int:
        return -(10**15) - 7919 * index
    if type(value) is str:
        return f"{_MARK}{index}"
    if type(value) is dt.datetime and value.tzinfo is not None:
        return dt.datetime(1001, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=index + 1, microseconds=index + 1)
    return None


def compile_with_stand_ins(values: Sequence, build: Callable[[list], QuerySet]) -> Compiled | None:
    """``build``'s queryset compiled with stand-ins for ``values``, and where each stand-in went; ``None``
    when that cannot be bound faithfully (an unsupported value type, a value the ORM transformed, or a
    query the ORM would not run at all)."""
    stand_ins = [_stand_in(index, value) for index, value in enumerate(values)]
    if any(stand_in is None for stand_in in stand_ins):
        return None
    try:
        sql, params = build(stand_ins).query.sql_with_params()
    except (EmptyResultSet, FullResultSet):
        return None
    slots, found = [], set()
    for position, param in enumerate(params):
        for index, stand_in in enumerate(stand_ins):
            if type(param) is type(stand_in) and param == stand_in:
                slots.append((position, index))
                found.add(index)
                break
        else:
            if isinstance(param, str) and _MARK in param:
                return None  # a stand-in inside another value: the real value would need the same change
            if isinstance(param, list | tuple):
                return None  # an IN list's length is part of the SQL's text
    if len(found) != len(stand_ins):
        return None  # a value the ORM converted or dropped
    return Compiled(sql, tuple(params), tuple(slots))


class CompiledQueries:
    """The compiled form of each shape seen, in this process."""

    def __init__(self, max_shapes: int = MAX_SHAPES) -> None:
        self.max_shapes = max_shapes
        self._entries: dict[Hashable, Compiled | None] = {}
        self._lock = threading.Lock()

    def bind(self, shape: Hashable, values: Sequence, build: Callable[[list], QuerySet]) -> tuple[str, list] | None:
        """The SQL and parameters of ``build(values)`` for a query of this ``shape``, or ``None`` when the
        shape cannot be bound (then compose ``build(values)`` as usual)."""
        key = (shape, *map(type, values))  # a value of another type is another shape
        try:
            compiled = self._entries[key]
        except KeyError:
            compiled = compile_with_stand_ins(values, build)
            with self._lock:
                if len(self._entries) >= self.max_shapes:
                    self._entries.clear()
                self._entries[key] = compiled
        return None if compiled is None else compiled.bind(values)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
