"""/kb: the knowledge base - read by every staff member, written by operators and admins."""

from __future__ import annotations

from flask import abort, render_template, request, url_for

from app.auth.actors import request_actor
from app.auth.decorators import require_permission
from app.domain.errors import NotFound, ValidationFailed
from app.services import knowledge
from app.web import web
from app.web.knowledge_forms import ArticleForm, form_page, save_and_redirect


def _article_input(form: ArticleForm) -> knowledge.ArticleInput:
    return knowledge.ArticleInput(
        title=form.title.data or "",
        issue=form.issue.data or "",
        resolution=form.resolution.data or "",
        tags=form.tags.data or "",
    )


def _load(article_id: str):
    try:
        return knowledge.get_article(article_id)
    except NotFound:
        abort(404, "No such knowledge base article.")


@web.get("/kb")
@require_permission("dashboard:read")
def kb_list():
    query = (request.args.get("q") or "").strip()[:200]
    tag = (request.args.get("tag") or "").strip()[:40] or None
    if query:
        return render_template("kb/list.html", query=query, tag=None,
                               articles=knowledge.search_articles(query), next_cursor=None)
    try:
        page = knowledge.list_articles(tag=tag, cursor=request.args.get("cursor"))
    except ValidationFailed:
        page = knowledge.list_articles(tag=tag)
    return render_template("kb/list.html", query="", tag=tag, articles=page.items,
                           next_cursor=page.next_cursor)


@web.get("/kb/<article_id>")
@require_permission("dashboard:read")
def kb_article(article_id: str):
    return render_template("kb/article.html", article=_load(article_id))


@web.route("/kb/new", methods=["GET", "POST"], endpoint="kb_new")
@web.route("/kb/<article_id>/edit", methods=["GET", "POST"])
@require_permission("knowledge:write")
def kb_edit(article_id: str | None = None):
    article = _load(article_id) if article_id else None
    form = ArticleForm(obj=article)

    def save() -> str:
        data, actor = _article_input(form), request_actor("web")
        if article is None:
            saved = knowledge.create_article(data, actor)
        else:
            saved = knowledge.update_article(article.id, data, actor)
        return url_for("web.kb_article", article_id=saved.id)

    return save_and_redirect(form, save, "Article saved.") or form_page(
        "kb/form.html", form, article=article
    )
