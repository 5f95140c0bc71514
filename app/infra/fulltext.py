"""Full-text search over KB articles: one function, whichever database holds them.

PostgreSQL answers from the generated `kb_articles.search_vector` column (GIN index); SQLite from
the `kb_articles_fts` FTS5 table its triggers keep in sync (migration 0004). Both stem English
words, match every term as a prefix ("sag" finds "sagas") and rank title and tag hits first.
"""

from __future__ import annotations

import re

from sqlalchemy import text
from sqlalchemy.orm import Session

# Words only: the user's text never reaches either query language's syntax (quotes, NEAR, :*, !).
_TERM = re.compile(r"\w+", re.UNICODE)
MAX_TERMS = 12
# One term's rows on SQLite; a sub-select because compound SELECTs associate left to right.
_TERM_HITS = (
    "SELECT * FROM (SELECT rowid FROM kb_articles_fts WHERE kb_articles_fts MATCH :m{n} "
    "UNION SELECT doc FROM kb_articles_fts_terms WHERE term >= :lo{n} AND term < :hi{n})"
)


def search_terms(query: str) -> list[str]:
    """The words of a search box entry, lower-cased, at most MAX_TERMS."""
    return [t.lower() for t in _TERM.findall(query or "")][:MAX_TERMS]


def search_article_seqs(session: Session, query: str, limit: int) -> list[int]:
    """`seq`s of the articles matching every word of `query`, best match first."""
    terms = search_terms(query)
    if not terms:
        return []
    if session.get_bind().dialect.name == "postgresql":
        tsquery = " & ".join(f"{t}:*" for t in terms)
        rows = session.execute(
            text(
                "SELECT seq FROM kb_articles "
                "WHERE search_vector @@ to_tsquery('english', :q) "
                "ORDER BY ts_rank(search_vector, to_tsquery('english', :q)) DESC, seq DESC "
                "LIMIT :limit"
            ),
            {"q": tsquery, "limit": limit},
        )
    else:
        rows = session.execute(*_sqlite_query(terms, limit))
    return [row[0] for row in rows]


def _sqlite_query(terms: list[str], limit: int) -> tuple:
    """FTS5: each term matches stemmed (`"sagas"` finds "saga") or as a raw prefix of an indexed
    term (`pay` finds "payment", read from the fts5vocab table); rows must match every term."""
    params: dict[str, object] = {"limit": limit, "any": " OR ".join(f'"{t}"' for t in terms)}
    per_term = []
    for n, term in enumerate(terms):
        params[f"m{n}"] = f'"{term}"'
        params[f"lo{n}"], params[f"hi{n}"] = term, term + "\U0010ffff"
        # Only bound parameters vary; the statement's shape depends on the number of terms alone.
        per_term.append(_TERM_HITS.format(n=n))
    sql = (
        # Reviewed (bandit B608): only the number of terms shapes the SQL; values are bound.
        "WITH hits(rowid) AS (" + " INTERSECT ".join(per_term) + "), "  # noqa: S608
        "ranked AS (SELECT rowid, bm25(kb_articles_fts, 10.0, 10.0, 3.0, 1.0) AS score "
        "FROM kb_articles_fts WHERE kb_articles_fts MATCH :any) "
        "SELECT hits.rowid FROM hits LEFT JOIN ranked ON ranked.rowid = hits.rowid "
        "ORDER BY ranked.score IS NULL, ranked.score, hits.rowid DESC LIMIT :limit"
    )
    return text(sql), params
