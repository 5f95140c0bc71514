"""Markdown written by staff, rendered to HTML that is safe to put on a page.

Python-Markdown turns the text into HTML (raw HTML in the text passes through it), then nh3 (the
Rust `ammonia` sanitizer) keeps only the tags and attributes below: no script, style, iframe, event
handler or `javascript:` / `data:` URL survives. Links keep http(s), mailto and local paths.
"""

from __future__ import annotations

import markdown as markdown_lib
import nh3
from flask_login import current_user
from markupsafe import Markup

from app.auth.permissions import can
from app.web import web

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "dl", "dt", "em", "h1", "h2", "h3",
    "h4", "h5", "h6", "hr", "i", "kbd", "li", "ol", "p", "pre", "s", "strong", "sub", "sup",
    "table", "tbody", "td", "th", "thead", "tr", "ul",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "abbr": {"title"}, "th": {"align"}, "td": {"align"}}
URL_SCHEMES = {"http", "https", "mailto"}
# Markdown's own extensions only: tables, fenced code, and definition lists are what runbooks use.
EXTENSIONS = ["tables", "fenced_code", "def_list", "sane_lists"]


def render_markdown(source: str | None) -> Markup:
    """Markdown to sanitized HTML, marked safe for Jinja."""
    html = markdown_lib.markdown(source or "", extensions=EXTENSIONS, output_format="html")
    cleaned = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        clean_content_tags={"script", "style", "iframe", "object", "embed", "template"},
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer",
    )
    return Markup(cleaned)  # noqa: S704 - sanitized by nh3 just above


web.add_app_template_filter(render_markdown, "markdown")


@web.app_context_processor
def permission_helpers() -> dict:
    """`user_can("knowledge:write")` in templates, to show only the actions a role may take."""
    return {"user_can": lambda permission: can(current_user, permission)}
