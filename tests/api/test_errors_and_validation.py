"""Errors are problem+json with a request id; bodies are validated; nothing internal leaks."""

from __future__ import annotations

import io
import json

import pytest

from tests.helpers import admin_headers, create_product, merchant_with_key, order_body

PROBLEM_KEYS = {"type", "title", "status", "detail", "request_id"}
LEAKS = ("Traceback", "sqlalchemy", "psycopg", "SELECT ", "INSERT ", "/work/", ".py", "File \"")


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert PROBLEM_KEYS <= set(body) and body["status"] == status
    assert body["request_id"] == response.headers["X-Request-ID"]
    text = response.get_data(as_text=True)
    assert not any(leak in text for leak in LEAKS), text
    return body


@pytest.fixture
def merchant(sqlite_app, sqlite_client):
    admin = admin_headers(sqlite_app, sqlite_client)
    _, headers = merchant_with_key(sqlite_client, admin)
    create_product(sqlite_client, headers)
    return headers


def test_unknown_api_route_is_a_problem_404_with_rate_limit_headers(sqlite_client):
    response = sqlite_client.get("/api/v1/no-such-thing")
    assert_problem(response, 404)
    assert "X-RateLimit-Limit" in response.headers


def test_wrong_method_is_a_problem_405_naming_the_allowed_methods(sqlite_client):
    response = sqlite_client.put("/api/v1/orders")
    assert_problem(response, 405)
    assert {"GET", "POST"} <= {m.strip() for m in response.headers["Allow"].split(",")}


def test_malformed_json_is_400(sqlite_client, merchant):
    response = sqlite_client.post(
        "/api/v1/orders", data=b'{"items": [', content_type="application/json", headers=merchant
    )
    assert_problem(response, 400)


def test_non_json_body_is_415(sqlite_client, merchant):
    response = sqlite_client.post(
        "/api/v1/orders", data="items=1", content_type="application/x-www-form-urlencoded",
        headers=merchant,
    )
    assert_problem(response, 415)


def test_a_non_json_body_is_415_on_endpoints_that_read_no_body_too(sqlite_client, merchant):
    order = sqlite_client.post("/api/v1/orders", json=order_body(), headers=merchant).get_json()
    cancel = sqlite_client.post(f"/api/v1/orders/{order['id']}/cancel", data="hello",
                                content_type="text/plain", headers=merchant)
    assert_problem(cancel, 415)
    assert sqlite_client.get(f"/api/v1/orders/{order['id']}",
                             headers=merchant).get_json()["status"] == "pending"
    # Without a body (or with JSON) the same call goes through.
    assert sqlite_client.post(f"/api/v1/orders/{order['id']}/cancel",
                              headers=merchant).status_code == 202


def test_stock_framework_texts_are_replaced_by_plain_ones(sqlite_app, sqlite_client, merchant):
    from tests.helpers import create_user, token_for

    missing = assert_problem(sqlite_client.get("/api/v1/no-such-thing"), 404)
    assert missing["detail"] == "No such resource here: check the path and the id."
    create_user(sqlite_app, "night-viewer", "viewer")
    viewer = {"Authorization": f"Bearer {token_for(sqlite_client, 'night-viewer')}"}
    refused = assert_problem(sqlite_client.get("/api/v1/orders", headers=viewer), 403)
    assert "URL" not in refused["detail"] and "server" not in refused["detail"]


def test_options_is_an_empty_204_naming_the_allowed_methods(sqlite_client, merchant):
    response = sqlite_client.options("/api/v1/orders", headers=merchant)
    assert response.status_code == 204 and response.data == b""
    assert "Content-Type" not in response.headers
    assert {"GET", "POST"} <= {m.strip() for m in response.headers["Allow"].split(",")}
    assert "X-RateLimit-Limit" in response.headers


def test_body_over_one_mebibyte_is_413(sqlite_client, merchant):
    big = b'{"name": "' + b"x" * (1024 * 1024) + b'"}'
    response = sqlite_client.post(
        "/api/v1/products", data=big, content_type="application/json", headers=merchant
    )
    assert assert_problem(response, 413)["detail"] == "The body is over the size limit (1 MiB)."


def test_an_integer_too_long_for_python_is_422_on_its_field_not_invalid_json(
    sqlite_client, merchant
):
    raw = json.dumps(order_body()).replace('"quantity": 2', '"quantity": 1' + "0" * 5000)
    assert '"quantity": 1000' in raw
    response = sqlite_client.post("/api/v1/orders", data=raw, content_type="application/json",
                                  headers=merchant)
    problem = assert_problem(response, 422)
    assert problem["errors"] == [
        {"field": "items[0].quantity", "message": "must be a whole number"}]


def test_a_card_number_is_refused_as_a_payment_token_and_never_stored(sqlite_app, sqlite_client,
                                                                      merchant):
    from app.extensions import db
    from app.infra.models import Order

    for card in ("4242424242424242", "4242 4242 4242 4242", "4242-4242-4242-4242"):
        response = sqlite_client.post("/api/v1/orders", json=order_body(payment={"token": card}),
                                      headers=merchant)
        problem = assert_problem(response, 422)
        assert [e["field"] for e in problem["errors"]] == ["payment.token"]
    with sqlite_app.app_context():
        assert db.session.query(Order).count() == 0


@pytest.mark.parametrize("extra", [1, 4096])
def test_chunked_body_over_one_mebibyte_is_413_not_a_cut_short_body(sqlite_client, merchant,
                                                                     extra):
    # A chunked body has no Content-Length: the server must notice it ran past the limit
    # (gunicorn marks such input as terminated; the test client does not, unless told).
    body = b'{"name": "' + b"x" * (1024 * 1024 + extra) + b'"}'
    response = sqlite_client.post(
        "/api/v1/products", input_stream=io.BytesIO(body),
        headers={**merchant, "Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert_problem(response, 413)


def test_chunked_body_within_the_limit_is_read_whole(sqlite_client, merchant):
    body = json.dumps({"sku": "CHUNKED-1", "name": "x" * 150, "price": 5, "currency": "MYR",
                       "stock": 1}).encode()
    response = sqlite_client.post(
        "/api/v1/products", input_stream=io.BytesIO(body),
        headers={**merchant, "Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 201, response.get_data(as_text=True)


@pytest.mark.parametrize(
    "raw",
    [b"", b"  ", b'{"items": NaN}', b'{"items": [Infinity]}',
     b"[" * 5000 + b"]" * 5000, b'{"items": ' + b"[" * 990 + b"]" * 990 + b"}"],
    ids=["empty", "blank", "nan", "infinity", "nested-5000", "nested-990"],
)
def test_bodies_that_are_not_json_or_too_deep_are_400(sqlite_client, merchant, raw):
    response = sqlite_client.post(
        "/api/v1/orders", data=raw, content_type="application/json", headers=merchant
    )
    assert_problem(response, 400)


def test_a_currency_outside_iso_4217_is_422_on_that_field(sqlite_client, merchant):
    body = {"sku": "CUR-1", "name": "x", "price": 100, "currency": "XYZ", "stock": 1}
    problem = assert_problem(sqlite_client.post("/api/v1/products", json=body, headers=merchant),
                             422)
    assert problem["errors"] == [
        {"field": "currency", "message": "must be an ISO 4217 currency code, like MYR or EUR"}
    ]
    body["currency"] = "EUR"
    assert sqlite_client.post("/api/v1/products", json=body, headers=merchant).status_code == 201


@pytest.mark.parametrize("sku", [".", "..", ".hidden", "-dash", "A/B", "with space"])
def test_a_sku_no_url_could_address_is_422(sqlite_client, merchant, sku):
    body = {"sku": sku, "name": "x", "price": 100, "currency": "MYR", "stock": 1}
    problem = assert_problem(sqlite_client.post("/api/v1/products", json=body, headers=merchant),
                             422)
    assert [e["field"] for e in problem["errors"]] == ["sku"]


def test_validation_errors_name_each_field(sqlite_client, merchant):
    body = order_body(items=[{"sku": "SKU-1", "quantity": 0}, {"sku": "SKU-1", "quantity": "2"}])
    body["shipping_address"]["country"] = "Malaysia"
    problem = assert_problem(sqlite_client.post("/api/v1/orders", json=body, headers=merchant), 422)
    fields = {e["field"] for e in problem["errors"]}
    assert {"items[0].quantity", "items[1].quantity", "shipping_address.country"} <= fields


def test_lines_of_one_sku_are_merged_and_bounded_per_line_as_sent(sqlite_client, merchant):
    body = order_body(items=[{"sku": "SKU-1", "quantity": 600}, {"sku": "SKU-1", "quantity": 600}])
    response = sqlite_client.post("/api/v1/orders", json=body, headers=merchant)
    assert response.status_code == 202, response.get_data(as_text=True)
    order = response.get_json()
    assert [(line["sku"], line["quantity"]) for line in order["items"]] == [("SKU-1", 1200)]
    assert order["total_amount"] == 1200 * order["items"][0]["unit_price"]


def test_format_and_choice_errors_state_the_rule_not_a_regex(sqlite_app, sqlite_client, merchant):
    body = order_body(items=[])
    body["customer"]["email"] = "nope"
    body["shipping_address"]["country"] = "MYS"
    problem = assert_problem(sqlite_client.post("/api/v1/orders", json=body, headers=merchant), 422)
    assert problem["errors"] == [
        {"field": "items", "message": "must have at least 1 item"},
        {"field": "customer.email", "message": "must be a valid email address"},
        {"field": "shipping_address.country",
         "message": "must be a two-letter country code, like MY"},
    ]
    product = {"sku": "a/b", "name": "", "price": 1, "currency": "myr", "stock": 1}
    problem = assert_problem(sqlite_client.post("/api/v1/products", json=product,
                                                headers=merchant), 422)
    assert problem["errors"] == [
        {"field": "sku",
         "message": "must be 1-64 of A-Z a-z 0-9 . _ - and start with a letter or digit"},
        {"field": "name", "message": "must not be empty"},
        {"field": "currency", "message": "must be an ISO 4217 currency code, like MYR or EUR"},
    ]
    admin = admin_headers(sqlite_app, sqlite_client)
    user = {"username": "someone", "password": "p" * 12 + "!Q7", "role": "superuser"}
    problem = assert_problem(sqlite_client.post("/api/v1/users", json=user, headers=admin), 422)
    assert problem["errors"] == [
        {"field": "role", "message": "must be one of 'admin', 'operator', 'viewer' or 'merchant'"}]
    assert "pattern" not in json.dumps(problem) and "Input should" not in json.dumps(problem)


def test_type_errors_speak_json_not_the_validation_librarys_types(sqlite_client, merchant):
    body = order_body(items=[{"sku": 1, "quantity": "two"}])
    body["customer"] = "Ana"
    problem = assert_problem(sqlite_client.post("/api/v1/orders", json=body, headers=merchant), 422)
    assert {(e["field"], e["message"]) for e in problem["errors"]} == {
        ("items[0].sku", "must be a string"),
        ("items[0].quantity", "must be a whole number"),
        ("customer", "must be an object"),
    }
    product = {"sku": "NEG-1", "name": "x", "price": -1, "currency": "MYR", "stock": 1.5}
    problem = assert_problem(sqlite_client.post("/api/v1/products", json=product,
                                                headers=merchant), 422)
    assert problem["errors"] == [{"field": "price", "message": "must be at least 0"},
                                 {"field": "stock", "message": "must be a whole number"}]


@pytest.mark.parametrize(
    ("path", "field", "value"),
    [
        ("/api/v1/orders", "status", "completed"),
        ("/api/v1/orders", "total_amount", 1),
        ("/api/v1/orders", "merchant_id", "mer_other"),
        ("/api/v1/products", "merchant_id", "mer_other"),
        ("/api/v1/products", "reserved", 0),
    ],
)
def test_mass_assignment_is_rejected_and_nothing_is_stored(
    sqlite_app, sqlite_client, merchant, path, field, value
):
    from app.extensions import db
    from app.infra.models import Order, Product

    body = order_body() if path.endswith("orders") else {
        "sku": "SKU-NEW", "name": "n", "price": 1, "currency": "MYR", "stock": 1,
    }
    body[field] = value
    problem = assert_problem(sqlite_client.post(path, json=body, headers=merchant), 422)
    assert {"field": field, "message": "unknown field; it cannot be set"} in problem["errors"]
    with sqlite_app.app_context():
        assert db.session.query(Order).count() == 0
        assert db.session.query(Product).count() == 1


def test_unit_price_in_an_order_line_is_rejected(sqlite_app, sqlite_client, merchant):
    from app.extensions import db
    from app.infra.models import Order

    body = order_body(items=[{"sku": "SKU-1", "quantity": 1, "unit_price": 1}])
    problem = assert_problem(sqlite_client.post("/api/v1/orders", json=body, headers=merchant), 422)
    assert problem["errors"][0]["field"] == "items[0].unit_price"
    with sqlite_app.app_context():
        assert db.session.query(Order).count() == 0


def test_patch_cannot_set_reserved_or_null_fields(sqlite_client, merchant):
    for body in ({"reserved": 5}, {"name": None}, {"price": "12"}):
        assert_problem(
            sqlite_client.patch("/api/v1/products/SKU-1", json=body, headers=merchant), 422
        )


def test_an_unexpected_error_is_a_bare_500_problem(sqlite_app, sqlite_client, merchant,
                                                   monkeypatch):
    from app.services import catalog

    def explode(*args, **kwargs):
        raise RuntimeError("secret detail at /work/main/app/services/catalog.py")

    monkeypatch.setattr(catalog, "list_products", explode)
    body = assert_problem(sqlite_client.get("/api/v1/products", headers=merchant), 500)
    assert "secret" not in body["detail"]


def test_a_database_outage_is_a_503_problem(sqlite_client, merchant, monkeypatch):
    from sqlalchemy.exc import OperationalError

    from app.services import catalog

    def down(*args, **kwargs):
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(catalog, "list_products", down)
    response = sqlite_client.get("/api/v1/products", headers=merchant)
    assert_problem(response, 503)
    assert response.headers["Retry-After"]


def test_request_id_is_echoed_when_well_formed_and_replaced_otherwise(sqlite_client):
    ok = sqlite_client.get("/api/v1/orders", headers={"X-Request-ID": "abc.DEF-123_x"})
    assert ok.headers["X-Request-ID"] == "abc.DEF-123_x"
    assert ok.get_json()["request_id"] == "abc.DEF-123_x"
    bad = sqlite_client.get("/api/v1/orders", headers={"X-Request-ID": "no spaces allowed"})
    assert bad.headers["X-Request-ID"] != "no spaces allowed"
    assert len(bad.headers["X-Request-ID"]) >= 16


def test_request_id_appears_in_the_log_of_a_failing_request(sqlite_client, merchant, monkeypatch):
    import logging

    from app.observability.logs import JsonFormatter
    from app.services import catalog

    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record):
            lines.append(JsonFormatter().format(record))  # formatted inside the request

    handler = Collect(level=logging.ERROR)
    logging.getLogger().addHandler(handler)
    monkeypatch.setattr(catalog, "list_products", lambda *a, **k: 1 / 0)
    try:
        sqlite_client.get("/api/v1/products", headers={**merchant, "X-Request-ID": "trace-me-42"})
    finally:
        logging.getLogger().removeHandler(handler)
    assert any('"request_id": "trace-me-42"' in line for line in lines), lines
