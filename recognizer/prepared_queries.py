"""Queries of the game's hot paths compiled to SQL once per connection, then
run with new values.

Django compiles a queryset to SQL again on every call. For the game's
reads that is most of their cost: measured in one process on SQLite,
`Room.objects.filter(code=code).first()` took 0.69-0.73 ms of CPU and the
same SELECT through a cursor 0.05-0.08 ms. A player's `done`
(guesses.finish_player) asks about ten such statements; under 64 players it
took 11 ms of CPU (p50) on the database threads, which hold the interpreter
the event loop needs (bench/bench_prepared_queries.py measures them).

A PreparedQuery builds its queryset from named values. The first call on
a connection builds it twice, with two sets of stand-in values, and compiles
both: the SQL must be the same, and the parameters must differ exactly where
a stand-in stands, each stand-in passed through unchanged (a string or an
integer the field takes as it is, or an integer the database driver types,
such as psycopg's Int2). Later calls put their values in those places. A
queryset whose SQL cannot be so read (a value the field converts, a
stand-in missing or changing the SQL, an integer out of its type's range)
runs through the ORM as before, on every call: slower, never different. A
value of another type than the first call's is planned apart.
tests/test_prepared_queries.py holds each query to the ORM's rows
and counts, on SQLite and on PostgreSQL.

Four kinds of result: model instances (`first`, no select_related, no
annotations, no deferred fields), one column (`value`), whether any row
matches (`exists`), and an UPDATE's count of rows (`update`, for a `build`
that returns the queryset and its changes).
"""

import threading
import weakref

from django.core.exceptions import EmptyResultSet
from django.db import connections, router, transaction
from django.db.models.query import FlatValuesListIterable
from django.db.models.sql import UpdateQuery
from django.db.transaction import TransactionManagementError

# Stand-ins of each kind of value: two per value, far from the game's own
# values and within every integer column's range (a PositiveSmallIntegerField
# stops at 32767; Django refuses a lookup out of a column's range without
# asking the database, and the stand-in would vanish from the parameters).
# Spaced unevenly (37 apart in the first set, 53 in the second), so that no
# arithmetic on one value (`b=u + 1`) lands on another's stand-in in both.
_INT_STANDINS = ((30001, 37), (30501, 53))
# A string stand-in holds what a lookup would change: both cases (a lookup
# that lowers or raises the case), LIKE's % and _ and the escape character
# (`iexact`, `contains` escape them), and spaces at both ends (a trim). A
# value that comes out of its lookup changed is not found as itself in the
# parameters, and the query goes the ORM's way.
_STRING_STANDIN = " Prepared%_\\{which} {name} "
# An integer the driver types itself (psycopg's Int2, Int4, Int8: the
# column's size) is put in as that type when it fits it; a plain one when it
# fits 64 bits (sqlite3 refuses more). Out of it the ORM's way decides:
# Django finds no row for a value out of its column's range without asking
# the database, where the driver would refuse it. An integer type this table
# does not know is held to 16 bits.
_INT_BITS = {int: 64, "Int2": 16, "Int4": 32, "Int8": 64}


def _standins(values, which):
    standins = {}
    for index, (name, value) in enumerate(sorted(values.items())):
        kind = type(value)
        if kind is int:
            start, step = _INT_STANDINS[which]
            standins[name] = start + step * index
        elif kind is str:
            standins[name] = _STRING_STANDIN.format(which=which, name=name)
        else:
            return None  # bools, floats, dates, instances: the ORM's way
    return standins


class _Plan:
    """A queryset's SQL, where its values go, and how to make its rows."""

    def __init__(self, sql, params, places, make_row, for_update):
        self.sql = sql
        self.for_update = for_update
        self.params = params  # the parameters with the first stand-ins in place
        self.places = places  # parameter index -> (value name, its type there)
        self.make_row = make_row

    def params_for(self, values):
        """The parameters with `values` in place; None where a value must go
        the ORM's way (an integer out of its type's range, _INT_BITS)."""
        params = list(self.params)
        for index, (name, wrapper) in self.places.items():
            value = values[name]
            if wrapper is not str:
                bits = _INT_BITS.get(wrapper, _INT_BITS.get(wrapper.__name__, 16))
                if not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
                    return None
                if wrapper is not int:
                    value = wrapper(value)
            params[index] = value
        return params


class PreparedQuery:
    """`build(**values)` -> a QuerySet of `model`, its SQL compiled once per
    connection. `build` must use its values as lookups' values only, never
    branch on them (a falsy one would take another branch than its stand-in);
    it may branch on which values it is given (each set of names is planned
    apart)."""

    def __init__(self, model, build):
        self.model = model
        self.build = build
        # connection -> {(result, the values' names and types): _Plan, or None
        # for the ORM's way}
        self._plans = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        self.planned = 0  # compiles made (tests and the benchmark count them)
        self._routing = None  # (the queryset's `using()`, whether it writes)

    # -- results -------------------------------------------------------------

    def first(self, **values):
        """The first row as a model instance (the queryset's `first()`), or None."""
        return self._run(values, "first")

    def value(self, **values):
        """The first row's one column (a `values_list(name, flat=True)`
        queryset), or None without a row."""
        return self._run(values, "value")

    def exists(self, **values):
        """Whether any row matches (the queryset's `exists()`)."""
        return self._run(values, "exists")

    def update(self, **values):
        """The queryset's `update(**changes)`, for `build` returning (queryset,
        changes); the number of rows changed."""
        return self._run(values, "update")

    # -- the work ------------------------------------------------------------

    def _orm(self, values, result):
        if result == "update":
            queryset, changes = self.build(**values)
            return queryset.update(**changes)
        queryset = self.build(**values)
        return queryset.exists() if result == "exists" else queryset.first()

    def _alias(self, values, result):
        """The database the queryset would run on: its `using()`, or the
        router's for writing (an update, a locking read) or for reading.
        Learnt from the first call's queryset: `build` does not branch on
        its values."""
        if self._routing is None:
            built = self.build(**values)
            queryset = built[0] if result == "update" else built
            self._routing = (queryset._db, queryset._for_write)
        using, for_write = self._routing
        if using:
            return using
        if for_write or result == "update":
            return router.db_for_write(self.model)
        return router.db_for_read(self.model)

    def _run(self, values, result):
        alias = self._alias(values, result)
        connection = connections[alias]
        plan = self._plan(connection, alias, values, result)
        if plan is None:
            return self._orm(values, result)
        if (plan.for_update and connection.get_autocommit()
                and connection.features.supports_transactions):
            # As the ORM says it (SQLCompiler.as_sql): a lock outside a
            # transaction would end with its statement.
            raise TransactionManagementError(
                "select_for_update cannot be used outside of a transaction.")
        params = plan.params_for(values)
        if params is None:
            return self._orm(values, result)
        with transaction.mark_for_rollback_on_error(using=alias), connection.cursor() as cursor:
            cursor.execute(plan.sql, params)
            if result == "update":
                return cursor.rowcount
            row = cursor.fetchone()
        if result == "exists":
            return row is not None
        if row is None:
            return None
        return plan.make_row(row)

    def _plan(self, connection, alias, values, result):
        kinds = (result, *sorted((name, type(value)) for name, value in values.items()))
        plans = self._plans.get(connection)
        if plans is not None and kinds in plans:
            return plans[kinds]
        with self._lock:
            plans = self._plans.setdefault(connection, {})
            if kinds not in plans:
                plans[kinds] = self._compile(connection, alias, values, result)
                self.planned += 1
            return plans[kinds]

    def _compile(self, connection, alias, values, result):
        compiled = []
        for which in (0, 1):
            standins = _standins(values, which)
            if standins is None:
                return None
            try:
                query = self._query(self.build(**standins), alias, result)
                compiler = query.get_compiler(using=alias, connection=connection)
                sql, params = compiler.as_sql()
            except EmptyResultSet:  # answered without the database: the ORM's way
                return None
            except (TypeError, ValueError):  # a stand-in the field refuses
                return None
            compiled.append((standins, compiler, sql, list(params)))
        (first, compiler, sql, params), (second, _, sql_again, params_again) = compiled
        if sql != sql_again or len(params) != len(params_again):
            return None
        places = {}
        for index, (a, b) in enumerate(zip(params, params_again, strict=True)):
            if a == b and type(a) is type(b):
                continue
            # The stand-in itself, or the database driver's own subclass of
            # its type (psycopg's Int2 for a small integer column).
            names = [name for name in first if first[name] == a and second[name] == b
                     and type(a) is type(b) and issubclass(type(a), type(first[name]))]
            if len(names) != 1:
                return None  # a difference no stand-in explains
            places[index] = (names[0], type(a))
        if {name for name, _ in places.values()} != set(values):
            return None  # a value that left no trace in the SQL
        make_row = self._row_maker(compiler, connection, alias, result)
        if make_row is None and result not in ("exists", "update"):
            return None
        for_update = query.select_for_update and connection.features.has_select_for_update
        return _Plan(sql, params, places, make_row, for_update)

    @staticmethod
    def _query(built, alias, result):
        """The query `exists()`, `first()` or `update()` would run
        (QuerySet.exists, QuerySet.first, QuerySet.update)."""
        if result == "update":
            queryset, changes = built
            if queryset.query.is_sliced or queryset.query.combinator or queryset.query.order_by:
                raise ValueError("the ORM's way")  # what QuerySet.update refuses or rewrites
            query = queryset.query.chain(UpdateQuery)
            query.add_update_values(changes)
            if query.related_updates:
                raise ValueError("the ORM's way")  # a parent model's table: two statements
            query.clear_select_clause()
            return query
        queryset = built
        if result == "value" and queryset._iterable_class is not FlatValuesListIterable:
            raise ValueError("the ORM's way")  # its first() is a tuple, a dict or a row
        if result == "exists":
            return queryset.query.exists()
        if not queryset.ordered:
            queryset = queryset.order_by("pk")
        return queryset[:1].query

    def _row_maker(self, compiler, connection, alias, result):
        if result in ("exists", "update"):
            return None
        select = compiler.select
        converters = compiler.get_converters([column for column, _, _ in select])

        def converted(row):
            row = list(row)
            for index, (functions, expression) in converters.items():
                value = row[index]
                for function in functions:
                    value = function(value, expression, connection)
                row[index] = value
            return row

        if result == "value":
            if len(select) != 1:
                return None
            return lambda row: converted(row)[0]
        info = compiler.klass_info
        if (info is None or info.get("related_klass_infos") or compiler.annotation_col_map
                or info["model"] is not self.model):
            return None
        names = [column.target.attname for column, _, _ in select]
        if names != [field.attname for field in self.model._meta.concrete_fields]:
            return None  # deferred fields, extra columns: the ORM's way
        model = self.model
        return lambda row: model.from_db(alias, names, converted(row))
