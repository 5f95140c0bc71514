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
