"""Statement building blocks shared by the hot write paths (order creation, the saga)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, insert, select


def chained_insert(table: Table, values: dict[str, Any], name: str, after=None):
    """A single-row INSERT ... RETURNING seq as a CTE that selects from `after`'s RETURNING.

    PostgreSQL runs independent data-modifying CTEs in no defined order; chaining them makes rows
    written by one statement get their `seq` (a timeline's, a step log's, an order's line order)
    in the order they were chained. `values` maps column names to typed bind parameters or
    literals (a bare SELECT gives an untyped parameter no column type to take).
    """
    row = select(*values.values())
    if after is not None:
        row = row.select_from(after)
    return insert(table).from_select(list(values), row).returning(table.c.seq).cte(name)
