"""Cursor pagination under concurrent inserts, list filters, ETags and the Redis order cache."""

from __future__ import annotations

import json

import pytest

from tests.helpers import admin_headers, create_product, drain_queues, merchant_with_key, order_body


@pytest.fixture
def shop(app, client):
    admin = admin_headers(app, client)
    _, headers = merchant_with_key(client, admin)
    create_product(client, headers, stock=1000)
    return headers


def _place(client, headers, n=1):
    return [client.post("/api/v1/orders", json=order_body(), headers=headers).get_json()["id"]
            for _ in range(n)]


def test_paging_while_orders_arrive_neither_skips_nor_repeats(client, shop):
    before = set(_place(client, shop, 7))
    seen: list[str] = []
    cursor = None
    while True:
        url = "/api/v1/orders?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(url, headers=shop).get_json()
        seen += [o["id"] for o in page["data"]]
        _place(client, shop, 2)  # new orders land on top while we page down
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)), "a row was repeated"
    assert set(seen) == before, "a row was skipped, or a newer one leaked into older pages"


def test_lists_are_newest_first_with_the_contract_shape(client, shop):
    ids = _place(client, shop, 3)
    page = client.get("/api/v1/orders", headers=shop).get_json()
    assert [o["id"] for o in page["data"]] == list(reversed(ids))
    assert page["next_cursor"] is None
    products = client.get("/api/v1/products?limit=1", headers=shop).get_json()
    assert len(products["data"]) == 1 and products["next_cursor"] is None


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=101", "limit=abc", "status=shipped", "cursor=%%%garbage",
     # base64 of "v1:99999999999999999999": well formed, but past any row the API numbers
     "cursor=djE6OTk5OTk5OTk5OTk5OTk5OTk5OTk5", "cursor=djE6LTE",
     # "v1: 5", "v1:5\n", "v1:" + an Arabic-Indic five, "v1:05", padded "v1:7": never given out
     "cursor=djE6IDU", "cursor=djE6NQo", "cursor=djE62aU", "cursor=djE6MDU", "cursor=djE6Nw%3D%3D"],
)
def test_bad_list_parameters_are_422(client, shop, query):
    response = client.get(f"/api/v1/orders?{query}", headers=shop)
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] in ("limit", "status", "cursor")


def test_status_filter_returns_only_that_status(app, client, shop):
    ids = _place(client, shop, 2)
    client.post(f"/api/v1/orders/{ids[0]}/cancel", headers=shop)
    drain_queues(app)
    cancelled = client.get("/api/v1/orders?status=cancelled", headers=shop).get_json()["data"]
    assert [o["id"] for o in cancelled] == [ids[0]]
    completed = client.get("/api/v1/orders?status=completed", headers=shop).get_json()["data"]
    assert [o["id"] for o in completed] == [ids[1]]


def test_order_etag_answers_304_until_the_saga_changes_the_order(app, client, shop):
    order_id = _place(client, shop)[0]
    first = client.get(f"/api/v1/orders/{order_id}", headers=shop)
    etag = first.headers["ETag"]
    assert first.get_json()["status"] == "pending"
    again = client.get(f"/api/v1/orders/{order_id}", headers={**shop, "If-None-Match": etag})
    assert again.status_code == 304 and again.get_data() == b""
    # If-None-Match compares weakly (RFC 9110): a cache may send the tag back marked weak.
    weak = client.get(f"/api/v1/orders/{order_id}", headers={**shop, "If-None-Match": "W/" + etag})
    assert weak.status_code == 304

    drain_queues(app)  # the worker completes the saga: no call into the cache from the worker
    fresh = client.get(f"/api/v1/orders/{order_id}", headers={**shop, "If-None-Match": etag})
    assert fresh.status_code == 200
    assert fresh.get_json()["status"] == "completed"
    assert fresh.headers["ETag"] != etag


def test_order_reads_are_served_from_redis(app, client, shop):
    from app.infra import cache_keys

    order_id = _place(client, shop)[0]
    first = client.get(f"/api/v1/orders/{order_id}", headers=shop)
    body = first.get_json()
    with app.app_context():
        from app.services.order_cache import order_version

        version = order_version(order_id, None)
        # The entry is the response body itself, byte for byte.
        assert cache_keys.cached_order(order_id, version) == first.get_data(as_text=True)
        # Prove the read path uses the entry: plant a marker in it and read it back.
        marked = {**body, "customer": {"email": "c@x.io", "name": "cached"}}
        cache_keys.store_order(order_id, version, json.dumps(marked))
    served = client.get(f"/api/v1/orders/{order_id}", headers=shop)
    assert served.get_json()["customer"]["name"] == "cached"
    assert served.mimetype == "application/json" and served.headers["ETag"] == first.headers["ETag"]


def test_cancel_is_visible_at_once(app, client, shop):
    order_id = _place(client, shop)[0]
    client.get(f"/api/v1/orders/{order_id}", headers=shop)  # warm the cache
    assert client.post(f"/api/v1/orders/{order_id}/cancel", headers=shop).status_code == 202
    drain_queues(app)
    assert client.get(f"/api/v1/orders/{order_id}", headers=shop).get_json()["status"] == \
        "cancelled"
    again = client.post(f"/api/v1/orders/{order_id}/cancel", headers=shop)
    assert again.status_code == 409


def test_product_etag_changes_with_the_product(client, shop):
    first = client.get("/api/v1/products/SKU-1", headers=shop)
    etag = first.headers["ETag"]
    assert client.get("/api/v1/products/SKU-1",
                      headers={**shop, "If-None-Match": etag}).status_code == 304
    client.patch("/api/v1/products/SKU-1", json={"stock": 5}, headers=shop)
    changed = client.get("/api/v1/products/SKU-1", headers={**shop, "If-None-Match": etag})
    assert changed.status_code == 200 and changed.get_json()["stock"] == 5


def test_order_contract_fields_and_times(client, shop):
    response = client.post("/api/v1/orders", json=order_body(), headers=shop)
    order = response.get_json()
    assert response.status_code == 202
    assert response.headers["Location"] == f"/api/v1/orders/{order['id']}"
    assert set(order) == {
        "id", "status", "items", "total_amount", "currency", "customer", "shipping_address",
        "failure_reason", "created_at", "updated_at",
    }
    assert order["items"] == [{"sku": "SKU-1", "quantity": 2, "unit_price": 1999,
                               "line_total": 3998}]
    assert order["created_at"].endswith("Z") and "T" in order["created_at"]
    events = client.get(f"/api/v1/orders/{order['id']}/events", headers=shop).get_json()["data"]
    assert events[0]["type"] == "order.created" and events[0]["at"].endswith("Z")
