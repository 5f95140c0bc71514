"""SQL time buckets, spelled per database, so charts aggregate in the database, not in Python."""

from __future__ import annotations

from sqlalchemy import Integer
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement


class epoch_bucket(FunctionElement):  # noqa: N801 - used like a SQL function
    """floor(unix seconds of `column` / `seconds`): the index of the bucket the time falls in."""

    type = Integer()
    inherit_cache = True
    name = "epoch_bucket"


def _parts(element, compiler, **kw):
    column, seconds = list(element.clauses)
    return compiler.process(column, **kw), compiler.process(seconds, **kw)


@compiles(epoch_bucket, "postgresql")
def _postgresql(element, compiler, **kw):
    column, seconds = _parts(element, compiler, **kw)
    return f"CAST(floor(extract(epoch FROM {column}) / {seconds}) AS INTEGER)"


@compiles(epoch_bucket, "sqlite")
def _sqlite(element, compiler, **kw):
    column, seconds = _parts(element, compiler, **kw)
    # Integer division of non-negative integers floors; strftime understands the stored offset.
    return f"(CAST(strftime('%s', {column}) AS INTEGER) / {seconds})"
