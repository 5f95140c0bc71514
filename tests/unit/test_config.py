"""Settings precedence: defaults < YAML file < ORDERPROCESSING_* environment (no app, no I/O)."""

import pytest

from config import ConfigError, load_settings


def test_defaults_are_the_embedded_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings(environ={"ORDERPROCESSING_INSTANCE_PATH": str(tmp_path)})
    assert settings["DATABASE_URL"] == f"sqlite:///{tmp_path}/orders.db"
    assert settings["REDIS_URL"] == f"unix://{tmp_path}/redis.sock"
    assert settings["RATELIMIT_API"] == "600 per minute"
    assert settings["RATELIMIT_AUTH"] == "10 per minute"
    assert settings["WORKER_COUNT"] == 2
    assert settings["SERVER_PORT"] == 8000


def test_environment_beats_file_beats_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.yaml").write_text("worker_count: 5\nserver_port: 9000\nlog_level: DEBUG\n")
    settings = load_settings(environ={"ORDERPROCESSING_SERVER_PORT": "9100"})
    assert settings["WORKER_COUNT"] == 5
    assert settings["SERVER_PORT"] == 9100
    assert settings["LOG_LEVEL"] == "DEBUG"


def test_named_config_file_is_used(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "elsewhere.yaml"
    path.write_text("RATELIMIT_API: 5 per second\n")
    settings = load_settings(environ={"ORDERPROCESSING_CONFIG": str(path)})
    assert settings["RATELIMIT_API"] == "5 per second"


def test_platform_names_are_honoured_and_prefixed_names_win(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings(
        environ={
            "PORT": "7000",
            "DATABASE_URL": "postgres://u:p@db/x",
            "REDIS_URL": "redis://r:6379/0",
        }
    )
    assert settings["SERVER_PORT"] == 7000
    assert settings["DATABASE_URL"] == "postgresql+psycopg://u:p@db/x"
    assert settings["REDIS_URL"] == "redis://r:6379/0"
    settings = load_settings(environ={"PORT": "7000", "ORDERPROCESSING_SERVER_PORT": "7001"})
    assert settings["SERVER_PORT"] == 7001


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"ORDERPROCESSING_WORKER_COUNT": "many"}, "WORKER_COUNT must be a whole number"),
        ({"ORDERPROCESSING_ENV": "staging"}, "ENV must be"),
        ({"ORDERPROCESSING_CONFIG": "/nonexistent.yaml"}, "not a readable file"),
    ],
)
def test_bad_settings_fail_with_a_clear_message(tmp_path, monkeypatch, environ, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=message):
        load_settings(environ=environ)


def test_unknown_setting_in_the_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.yaml").write_text("WORKERS_COUNT: 3\n")
    with pytest.raises(ConfigError, match="unknown setting 'WORKERS_COUNT'"):
        load_settings(environ={})


# --- boolean settings: one set of spellings, anything else stops start-up ---

BOOLEAN_SETTINGS = (
    "RATELIMIT_ENABLED", "WORKER_ASYNC_COMMIT", "WEBHOOK_ALLOW_PRIVATE_TARGETS",
    "SESSION_COOKIE_SECURE", "METRICS_ENABLED",
)


@pytest.mark.parametrize("name", BOOLEAN_SETTINGS)
@pytest.mark.parametrize(
    ("raw", "expected"),
    [("true", True), ("FALSE", False), ("1", True), ("0", False), ("Yes", True), ("no", False),
     ("on", True), ("OFF", False), (" off ", False)],
)
def test_boolean_settings_accept_the_usual_spellings(tmp_path, monkeypatch, name, raw, expected):
    monkeypatch.chdir(tmp_path)
    assert load_settings(environ={f"ORDERPROCESSING_{name}": raw})[name] is expected


@pytest.mark.parametrize("name", BOOLEAN_SETTINGS)
@pytest.mark.parametrize("raw", ["maybe", "2", "enabled", "None"])
def test_a_malformed_boolean_stops_start_up_naming_the_setting(tmp_path, monkeypatch, name, raw):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=f"ORDERPROCESSING_{name} must be"):
        load_settings(environ={f"ORDERPROCESSING_{name}": raw})


def test_automatic_booleans_stay_automatic_when_unset(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings(environ={})
    assert settings["WEBHOOK_ALLOW_PRIVATE_TARGETS"] is None
    assert settings["SESSION_COOKIE_SECURE"] is None


# --- malformed values are start-up errors that name the setting as the operator wrote it ---


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"ORDERPROCESSING_RATELIMIT_API": "garbage"}, "ORDERPROCESSING_RATELIMIT_API must be"),
        ({"ORDERPROCESSING_RATELIMIT_AUTH": "10 per fortnight"},
         "ORDERPROCESSING_RATELIMIT_AUTH must be"),
        ({"ORDERPROCESSING_LOG_FORMAT": "xml"}, "ORDERPROCESSING_LOG_FORMAT must be one of"),
        ({"ORDERPROCESSING_LOG_LEVEL": "LOUD"}, "ORDERPROCESSING_LOG_LEVEL must be one of"),
        ({"ORDERPROCESSING_SERVER_PORT": "0"}, "ORDERPROCESSING_SERVER_PORT must be between"),
        ({"ORDERPROCESSING_SERVER_PORT": "65536"}, "ORDERPROCESSING_SERVER_PORT must be between"),
        ({"ORDERPROCESSING_WORKER_COUNT": "0"}, "ORDERPROCESSING_WORKER_COUNT must be at least 1"),
        ({"ORDERPROCESSING_WEB_WORKERS": "0"}, "ORDERPROCESSING_WEB_WORKERS must be at least 1"),
        ({"ORDERPROCESSING_WEB_THREADS": "0"}, "ORDERPROCESSING_WEB_THREADS must be at least 1"),
        ({"ORDERPROCESSING_PAYMENT_SIMULATOR_LATENCY_MS": "-1"},
         "ORDERPROCESSING_PAYMENT_SIMULATOR_LATENCY_MS must be at least 0"),
        ({"ORDERPROCESSING_SHIPPING_SIMULATOR_LATENCY_MS": "-5"},
         "ORDERPROCESSING_SHIPPING_SIMULATOR_LATENCY_MS must be at least 0"),
        ({"ORDERPROCESSING_TRUSTED_PROXY_COUNT": "-1"},
         "ORDERPROCESSING_TRUSTED_PROXY_COUNT must be at least 0"),
        ({"ORDERPROCESSING_WEBHOOK_TIMEOUT_SECONDS": "nan"},
         "ORDERPROCESSING_WEBHOOK_TIMEOUT_SECONDS must be"),
        ({"PORT": "abc"}, r"^PORT must be a whole number"),
        ({"WEB_CONCURRENCY": "lots"}, r"^WEB_CONCURRENCY must be a whole number"),
        ({"ORDERPROCESSING_DATABASE_URL": "mysql://u@db/x"},
         "ORDERPROCESSING_DATABASE_URL must be a sqlite or postgresql URL"),
        ({"DATABASE_URL": "db.example.com/orders"}, r"^DATABASE_URL must be a sqlite or postgres"),
        ({"ORDERPROCESSING_DATABASE_REPLICA_URL": "http://replica/x"},
         "ORDERPROCESSING_DATABASE_REPLICA_URL must be"),
        ({"ORDERPROCESSING_REDIS_URL": "http://cache:6379"},
         "ORDERPROCESSING_REDIS_URL must be a redis://, rediss:// or unix:// URL"),
        ({"REDIS_URL": "localhost:6379"}, r"^REDIS_URL must be a redis://"),
    ],
)
def test_malformed_values_stop_start_up_naming_the_setting(tmp_path, monkeypatch, environ,
                                                           message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=message):
        load_settings(environ=environ)


def test_well_formed_values_are_accepted_and_tidied(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings(environ={
        "ORDERPROCESSING_RATELIMIT_API": "100/minute",
        "ORDERPROCESSING_LOG_LEVEL": "debug",
        "ORDERPROCESSING_LOG_FORMAT": "text",
        "ORDERPROCESSING_SERVER_PORT": "65535",
        "ORDERPROCESSING_REDIS_URL": "rediss://cache:6380/1",
        "ORDERPROCESSING_DATABASE_URL": "postgres://u@db/x",
        "ORDERPROCESSING_WEBHOOK_RETRY_BASE_SECONDS": "0.5",
    })
    assert settings["RATELIMIT_API"] == "100/minute"
    assert settings["LOG_LEVEL"] == "DEBUG"
    assert settings["SERVER_PORT"] == 65535
    assert settings["DATABASE_URL"] == "postgresql+psycopg://u@db/x"
    assert settings["WEBHOOK_RETRY_BASE_SECONDS"] == 0.5


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("worker_count: 2.5", "worker_count must be a whole number"),
        ("worker_count: [1, 2]", "worker_count must be a whole number"),
        ("worker_count:", "worker_count must be a whole number"),
        ("worker_count: true", "worker_count must be a whole number"),
        ("server_port: 99999", "server_port must be between 1 and 65535"),
        ("metrics_enabled: 5", "metrics_enabled must be"),
        ("metrics_enabled: maybe", "metrics_enabled must be"),
        ("session_cookie_secure: [yes]", "session_cookie_secure must be"),
        ("webhook_timeout_seconds: fast", "webhook_timeout_seconds must be a number"),
        ("ratelimit_api: garbage", "ratelimit_api must be"),
        ("log_format: xml", "log_format must be one of"),
        ("server_host: 1234", "server_host must be text"),
        ("DATABASE_URL: mysql://u@db/x", "DATABASE_URL must be a sqlite or postgresql URL"),
    ],
)
def test_a_wrongly_typed_file_value_stops_start_up_naming_the_files_key(tmp_path, monkeypatch,
                                                                        line, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.yaml").write_text(line + "\n")
    with pytest.raises(ConfigError, match=message) as raised:
        load_settings(environ={})
    assert "config.yaml" in str(raised.value)
    assert "ORDERPROCESSING_" not in str(raised.value)


def test_file_values_of_the_right_type_are_taken(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.yaml").write_text(
        "metrics_enabled: off\nsession_cookie_secure: yes\nwebhook_allow_private_targets: 0\n"
        "webhook_retry_base_seconds: 2\nworker_count: '3'\nserver_host: 127.0.0.1\n"
        "web_workers: 4\nweb_threads: 8\naccess_log: '-'\ntrusted_proxy_count: 1\n"
    )
    settings = load_settings(environ={})
    assert settings["METRICS_ENABLED"] is False
    assert settings["SESSION_COOKIE_SECURE"] is True
    assert settings["WEBHOOK_ALLOW_PRIVATE_TARGETS"] is False
    assert settings["WEBHOOK_RETRY_BASE_SECONDS"] == 2.0
    assert settings["WORKER_COUNT"] == 3
    assert settings["SERVER_HOST"] == "127.0.0.1"
    assert (settings["WEB_WORKERS"], settings["WEB_THREADS"]) == (4, 8)
    assert settings["ACCESS_LOG"] == "-"
    assert settings["TRUSTED_PROXY_COUNT"] == 1


def test_overrides_are_checked_like_any_other_source(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="RATELIMIT_API must be"):
        load_settings(environ={}, overrides={"RATELIMIT_API": "garbage"})
    assert load_settings(environ={}, overrides={"WORKER_COUNT": 3})["WORKER_COUNT"] == 3


# --- empty variables, platform names ---


def test_an_empty_variable_counts_as_unset(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings(environ={
        "ORDERPROCESSING_DATABASE_URL": "", "DATABASE_URL": "postgres://u@db/x",
        "ORDERPROCESSING_SERVER_PORT": "", "PORT": "7000",
        "ORDERPROCESSING_WORKER_COUNT": "",
    })
    assert settings["DATABASE_URL"] == "postgresql+psycopg://u@db/x"
    assert settings["SERVER_PORT"] == 7000
    assert settings["WORKER_COUNT"] == 2


def test_host_and_web_concurrency_are_honoured_and_prefixed_names_win(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings(environ={"HOST": "127.0.0.1", "WEB_CONCURRENCY": "5"})
    assert settings["SERVER_HOST"] == "127.0.0.1"
    assert settings["WEB_WORKERS"] == 5
    settings = load_settings(environ={
        "HOST": "127.0.0.1", "ORDERPROCESSING_SERVER_HOST": "::1",
        "WEB_CONCURRENCY": "5", "ORDERPROCESSING_WEB_WORKERS": "3",
    })
    assert settings["SERVER_HOST"] == "::1"
    assert settings["WEB_WORKERS"] == 3


def test_the_web_server_settings_have_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings(environ={})
    assert settings["SERVER_HOST"] == "0.0.0.0"
    assert settings["WEB_WORKERS"] == 2
    assert settings["WEB_THREADS"] == 1
    assert settings["ACCESS_LOG"] == ""
    assert settings["TRUSTED_PROXY_COUNT"] == 0


# --- the database password ---


def test_the_database_password_fills_a_postgresql_url_without_one():
    from config import database_connect_url

    url = "postgresql+psycopg://orders@db:5432/orders"
    assert database_connect_url(url, "s3cr/t@x") == (
        "postgresql+psycopg://orders:s3cr%2Ft%40x@db:5432/orders"
    )
    assert database_connect_url("postgresql+psycopg://orders:own@db/orders", "other") == (
        "postgresql+psycopg://orders:own@db/orders"
    )
    assert database_connect_url(url, "") == url
    assert database_connect_url("sqlite:////tmp/x.db", "pw") == "sqlite:////tmp/x.db"


def test_an_error_never_shows_a_secret_or_a_urls_password(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as raised:
        load_settings(environ={"DATABASE_URL": "mysql://orders:hunter2-pw@db/x"})
    assert "hunter2-pw" not in str(raised.value)
    (tmp_path / "config.yaml").write_text("secret_key: 1234567890123\n")
    with pytest.raises(ConfigError, match="secret_key must be text") as raised:
        load_settings(environ={})
    assert "1234567890123" not in str(raised.value)
