"""Staff Markdown keeps its formatting and loses anything that could run in a browser."""

from __future__ import annotations

import pytest

from app.infra.fulltext import MAX_TERMS, search_terms
from app.web.rendering import render_markdown


def test_formatting_that_runbooks_use_survives():
    html = render_markdown(
        "**Bold** and `code`\n\n```\nflask --app wsgi check-integrity\n```\n\n"
        "| a | b |\n| --- | --- |\n| 1 | 2 |\n\n[queues](/queues) [docs](https://example.com)"
    )
    assert "<strong>Bold</strong>" in html and "<code>code</code>" in html
    assert "<pre><code>flask --app wsgi check-integrity" in html
    assert "<table>" in html and "<td>2</td>" in html
    assert '<a href="/queues" rel="noopener noreferrer">queues</a>' in html
    assert '<a href="https://example.com" rel="noopener noreferrer">docs</a>' in html


@pytest.mark.parametrize(
    ("source", "forbidden"),
    [
        ("<script>alert(1)</script>", "alert"),
        ("[x](javascript:alert(1))", "javascript"),
        ("[x](JAVASCRIPT:alert(1))", "alert"),
        ("[x](vbscript:msgbox(1))", "vbscript"),
        ('<a href="java&#115;cript:alert(1)">x</a>', "alert"),
        ("<img src=x onerror=alert(1)>", "onerror"),
        ("<p onclick=alert(1)>x</p>", "onclick"),
        ('<form action="/logout"><button>x</button></form>', "<form"),
        ('<meta http-equiv="refresh" content="0;url=https://evil.example">', "refresh"),
        ("<object data=x></object>", "<object"),
        ('<p style="position:fixed">x</p>', "style"),
    ],
)
def test_active_content_is_removed(source, forbidden):
    assert forbidden not in render_markdown(source).lower()


def test_code_blocks_show_html_as_text():
    html = render_markdown("```\n<script>alert(1)</script>\n```")
    assert "&lt;script&gt;" in html and "<script>" not in html


def test_search_box_text_becomes_plain_words():
    assert search_terms('Redis "timeouts" :* NEAR(a b) & | !') == [
        "redis", "timeouts", "near", "a", "b",
    ]
    assert search_terms("") == []
    assert len(search_terms("w " * 50)) == MAX_TERMS
