"""The bare counterpart of the API benchmark: Flask doing one raw INSERT / one raw SELECT.

    gunicorn -c gunicorn.conf.py benchmarks.bare_app:app   (BARE_DATABASE_URL=postgresql://...)

No auth, no validation, no ORM: the floor the real API is compared against.
"""

from __future__ import annotations

import os
import threading

import psycopg
from flask import Flask, abort, request

app = Flask(__name__)
_local = threading.local()
INSERT = "INSERT INTO bench_bare (payload) VALUES (%s) RETURNING id"


def connection() -> psycopg.Connection:
    """One autocommit connection per worker thread, opened after the fork."""
    current = getattr(_local, "connection", None)
    if current is None or current.closed:
        url = os.environ["BARE_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
        current = _local.connection = psycopg.connect(url, autocommit=True)
    return current


@app.post("/bare/rows")
def insert_row():
    payload = request.get_data(as_text=True)
    row = connection().execute(INSERT, (payload,)).fetchone()
    return {"id": row[0]}, 201


@app.get("/bare/rows/<int:row_id>")
def select_row(row_id: int):
    row = connection().execute(
        "SELECT id, payload FROM bench_bare WHERE id = %s", (row_id,)
    ).fetchone()
    if row is None:
        abort(404)
    return {"id": row[0], "payload": row[1]}
