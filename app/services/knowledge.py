"""The knowledge base: articles staff write about an issue and its resolution, and their search."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select

from app.domain.errors import FieldError, NotFound, ValidationFailed
from app.domain.ids import new_id
from app.extensions import db
from app.infra import fulltext
from app.infra.models import KbArticle
from app.infra.models.base import utcnow
from app.services import audit
from app.services.audit import Actor
from app.services.pagination import Page, paginate

MAX_TAGS = 12
_TAG = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,39}$")
AUDITED_FIELDS = ("title", "issue", "resolution", "tags")


@dataclass(frozen=True)
class ArticleInput:
    """What a person types into the article form."""

    title: str
    issue: str
    resolution: str
    tags: str = ""


def normalize_tags(raw: str) -> str:
    """Tags as lower-case words separated by one space, duplicates dropped, order kept."""
    seen: list[str] = []
    for tag in re.split(r"[\s,]+", (raw or "").strip().lower()):
        if tag and tag not in seen:
            seen.append(tag)
    return " ".join(seen)


def _validated(data: ArticleInput) -> dict[str, str]:
    values = {
        "title": (data.title or "").strip(),
        "issue": (data.issue or "").strip(),
        "resolution": (data.resolution or "").strip(),
        "tags": normalize_tags(data.tags),
    }
    errors = [
        FieldError(name, "must not be empty")
        for name in ("title", "issue", "resolution")
        if not values[name]
    ]
    if len(values["title"]) > 200:
        errors.append(FieldError("title", "must be at most 200 characters"))
    tags = values["tags"].split()
    if len(tags) > MAX_TAGS:
        errors.append(FieldError("tags", f"at most {MAX_TAGS} tags"))
    bad = [t for t in tags if not _TAG.match(t)]
    if bad:
        errors.append(
            FieldError("tags", "letters, digits, '-', '_' or '.' only: " + ", ".join(bad[:3]))
        )
    if errors:
        raise ValidationFailed(errors)
    return values


def _snapshot(article: KbArticle) -> dict[str, str]:
    return {name: getattr(article, name) for name in AUDITED_FIELDS}


def create_article(data: ArticleInput, actor: Actor) -> KbArticle:
    """A new article, audited."""
    values = _validated(data)
    article = KbArticle(id=new_id("kb"), created_by=actor.name, updated_by=actor.name, **values)
    db.session.add(article)
    audit.record(actor, "kb.create", "kb_article", article.id, after=values)
    db.session.commit()
    return article


def update_article(article_id: str, data: ArticleInput, actor: Actor) -> KbArticle:
    """Change an article; the audit entry keeps what it said before."""
    values = _validated(data)
    article = get_article(article_id)
    before = _snapshot(article)
    changed = {k: v for k, v in values.items() if before[k] != v}
    if not changed:
        return article
    for name, value in changed.items():
        setattr(article, name, value)
    article.updated_by = actor.name
    article.updated_at = utcnow()
    audit.record(
        actor,
        "kb.update",
        "kb_article",
        article.id,
        before={k: before[k] for k in changed},
        after=changed,
    )
    db.session.commit()
    return article


def get_article(article_id: str) -> KbArticle:
    """One article, or NotFound."""
    article = db.session.scalar(select(KbArticle).where(KbArticle.id == article_id))
    if article is None:
        raise NotFound("article")
    return article


def list_articles(*, tag: str | None = None, cursor: str | None = None, limit: int = 25) -> Page:
    """Articles, most recently written first, optionally with one tag."""
    query = select(KbArticle)
    if tag:
        # Tags are space-separated; pad both sides so "redis" does not match "redis-cluster".
        query = query.where((" " + KbArticle.tags + " ").contains(f" {tag.strip().lower()} "))
    return paginate(query, KbArticle.seq, limit, cursor)


def search_articles(query: str, limit: int = 50) -> list[KbArticle]:
    """Articles matching every word of `query` (stemmed, prefix), best match first."""
    seqs = fulltext.search_article_seqs(db.session, query, limit)
    if not seqs:
        return []
    rows = db.session.scalars(select(KbArticle).where(KbArticle.seq.in_(seqs)))
    by_seq = {article.seq: article for article in rows}
    return [by_seq[s] for s in seqs if s in by_seq]
