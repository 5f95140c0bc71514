"""/healthz and /readyz per the contract."""


def test_healthz_answers_ok_without_touching_dependencies(make_app, sqlite_database_url):
    app = make_app(sqlite_database_url, REDIS_URL="redis://127.0.0.1:1/0")
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_is_ok_when_database_and_redis_answer(sqlite_client):
    response = sqlite_client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ok"


def test_readyz_names_redis_when_it_is_unreachable(make_app, sqlite_database_url):
    app = make_app(sqlite_database_url, REDIS_URL="redis://127.0.0.1:1/0")
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["failed"] == ["redis"]


def test_readyz_names_the_database_when_it_is_unreachable(make_app, tmp_path):
    app = make_app("postgresql+psycopg://postgres@127.0.0.1:1/nothing")
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["failed"] == ["database"]
