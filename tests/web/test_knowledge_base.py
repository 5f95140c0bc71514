"""The knowledge base: staff write articles, everyone searches them, Markdown is rendered safely."""

from __future__ import annotations

import re

import pytest

from tests.web.knowledge_support import audit_entries, staff_client, submit

ARTICLE = {
    "title": "Redis timeouts while sagas run",
    "issue": "Workers logged `TimeoutError` talking to **Redis**; orders piled up.",
    "resolution": "Raised `maxmemory`; see [the runbook](/runbooks/redis-down).",
    "tags": "Redis, queues redis",
}


def create(client, **changes):
    response = submit(client, "/kb/new", "/kb/new", {**ARTICLE, **changes})
    assert response.status_code == 302, response.get_data(as_text=True)
    return response.headers["Location"]


def test_operator_writes_an_article_that_renders_its_markdown_and_is_audited(app):
    operator = staff_client(app, "operator")
    location = create(operator)
    page = operator.get(location).get_data(as_text=True)
    assert "<strong>Redis</strong>" in page
    assert '<a href="/runbooks/redis-down"' in page
    # Tags are normalised: lower case, deduplicated.
    assert re.findall(r'class="tag" href="/kb\?tag=(\w+)"', page) == ["redis", "queues"]
    [entry] = audit_entries(app, "kb.create")
    assert entry.actor == operator.username and entry.source == "web"
    assert entry.after["title"] == ARTICLE["title"]


def test_editing_an_article_keeps_what_it_said_before_in_the_audit_log(app):
    operator = staff_client(app, "operator")
    location = create(operator)
    edit = location + "/edit"
    response = submit(operator, edit, edit, {**ARTICLE, "resolution": "Restarted Redis."})
    assert response.status_code == 302
    assert "Restarted Redis." in operator.get(location).get_data(as_text=True)
    [entry] = audit_entries(app, "kb.update")
    assert entry.before == {"resolution": ARTICLE["resolution"]}
    assert entry.after == {"resolution": "Restarted Redis."}


def test_search_matches_stemmed_word_prefixes_across_title_tags_and_text(app):
    operator = staff_client(app, "operator")
    create(operator)
    create(operator, title="Payment provider maintenance", issue="Captures failed.",
           resolution="Switched on the payment hold.", tags="payments")
    create(operator, title="Webhook receiver down", issue="Merchant endpoint answered 500.",
           resolution="Deliveries retried with backoff.", tags="webhooks")

    def titles(query):
        page = operator.get("/kb", query_string={"q": query}).get_data(as_text=True)
        return re.findall(r'class="title" href="/kb/[^"]+">([^<]+)</a>', page)

    assert titles("redis") == ["Redis timeouts while sagas run"]
    assert titles("saga") == ["Redis timeouts while sagas run"]  # stemmed: sagas -> saga
    assert titles("pay") == ["Payment provider maintenance"]  # prefix
    assert titles("retrying deliveries") == ["Webhook receiver down"]
    assert titles("redis payment") == []  # every word must match
    assert set(titles("failed OR answered")) == set()  # no query language leaks through


def test_search_follows_edits(app):
    operator = staff_client(app, "operator")
    location = create(operator)
    edit = location + "/edit"
    submit(operator, edit, edit, {**ARTICLE, "title": "Memcached evictions", "tags": "cache",
                                  "issue": "Evictions.", "resolution": "More memory."})
    assert "No articles" not in operator.get("/kb?q=memcached").get_data(as_text=True)
    assert "Nothing matches" in operator.get("/kb?q=redis").get_data(as_text=True)


@pytest.mark.parametrize(
    "query",
    ['"unterminated', "redis:*", "NEAR(a b)", "a & | ! b", "title:redis", "*", "'; DROP TABLE x"],
)
def test_search_syntax_in_the_box_is_treated_as_words(sqlite_app, query):
    viewer = staff_client(sqlite_app, "viewer")
    response = viewer.get("/kb", query_string={"q": query})
    assert response.status_code == 200


XSS_PAYLOADS = (
    "<script>alert('xss')</script>",
    "<img src=x onerror=alert(1)>",
    "[click](javascript:alert(1))",
    '<a href="JaVaScRiPt:alert(1)">x</a>',
    '<a href="&#106;avascript:alert(1)">y</a>',
    "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "<svg onload=alert(1)><circle/></svg>",
    '<iframe src="https://evil.example"></iframe>',
    '<div style="background:url(javascript:alert(1))" onmouseover="alert(1)">hover</div>',
    "<style>body{display:none}</style>",
)


def test_markdown_cannot_carry_scripts_handlers_or_javascript_links(sqlite_app):
    operator = staff_client(sqlite_app, "operator")
    location = create(operator, issue="\n\n".join(XSS_PAYLOADS), resolution="Fine.")
    page = operator.get(location).get_data(as_text=True)
    body = page.split('class="card issue"', 1)[1]
    assert "<script" not in body.lower()
    assert "javascript:" not in body.lower()
    assert "data:text/html" not in body
    for marker in ("onerror", "onload", "onmouseover", "<iframe", "<svg", "<style", "style="):
        assert marker not in body.lower(), marker
    assert "hover" in body  # the text survives, the attack does not


def test_viewer_reads_but_cannot_write(sqlite_app):
    operator = staff_client(sqlite_app, "operator")
    location = create(operator)
    viewer = staff_client(sqlite_app, "viewer")
    assert viewer.get("/kb").status_code == 200
    assert viewer.get(location).status_code == 200
    assert "New article" not in viewer.get("/kb").get_data(as_text=True)
    assert viewer.get("/kb/new").status_code == 403
    # A valid CSRF token does not help: the role is checked on the server.
    assert submit(viewer, "/kb", "/kb/new", ARTICLE).status_code == 403
    assert submit(viewer, "/kb", location + "/edit", ARTICLE).status_code == 403
    assert len(audit_entries(sqlite_app, "kb.create")) == 1


def test_anonymous_visitors_are_sent_to_login(sqlite_client):
    response = sqlite_client.get("/kb")
    assert response.status_code in (302, 401)


def test_post_without_csrf_token_is_refused_and_changes_nothing(sqlite_app):
    operator = staff_client(sqlite_app, "operator")
    response = operator.post("/kb/new", data=ARTICLE)
    assert response.status_code == 400
    assert audit_entries(sqlite_app, "kb.create") == []


def test_missing_fields_and_bad_tags_get_form_messages(sqlite_app):
    operator = staff_client(sqlite_app, "operator")
    response = submit(operator, "/kb/new", "/kb/new",
                      {**ARTICLE, "resolution": "", "tags": "ok <b>bad</b>"})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert page.count('class="field-error"') >= 1
    response = submit(operator, "/kb/new", "/kb/new", {**ARTICLE, "tags": "ok b@d"})
    assert response.status_code == 400
    assert "b@d" in response.get_data(as_text=True)


def test_unknown_article_is_a_404_page(sqlite_app):
    viewer = staff_client(sqlite_app, "viewer")
    response = viewer.get("/kb/kb_doesnotexist")
    assert response.status_code == 404
    assert "No such knowledge base article" in response.get_data(as_text=True)
