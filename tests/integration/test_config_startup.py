"""Settings taking effect where they are used: gunicorn's bind, workers and access log come from
the same load_settings() as the app's (env beats the YAML file beats defaults)."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.servers import BIN, ROOT

# Names that would leak the caller's own setup into gunicorn's.
CLEARED = ("PORT", "HOST", "WEB_CONCURRENCY", "GUNICORN_BIND", "PROMETHEUS_MULTIPROC_DIR")


def gunicorn_config(tmp_path, env: dict[str, str], yaml_text: str | None = None):
    """`gunicorn -c gunicorn.conf.py wsgi:app --print-config`, run from an empty directory."""
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith("ORDERPROCESSING_") and k not in CLEARED}
    environ.update(PYTHONPATH=str(ROOT), ORDERPROCESSING_INSTANCE_PATH=str(tmp_path / "instance"))
    if yaml_text is not None:
        (tmp_path / "config.yaml").write_text(yaml_text)
    environ.update(env)
    result = subprocess.run(
        [str(BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), "wsgi:app", "--print-config"],
        cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=60, check=False,
    )
    printed = {}
    for line in result.stdout.splitlines():
        name, sep, value = line.partition("=")
        if sep:
            printed[name.strip()] = value.strip()
    return result, printed


@pytest.mark.parametrize(
    ("env", "yaml_text", "bind"),
    [
        ({}, None, "['0.0.0.0:8000']"),
        ({}, "server_host: 127.0.0.1\nserver_port: 9001\n", "['127.0.0.1:9001']"),
        ({"ORDERPROCESSING_SERVER_PORT": "9002"}, "server_port: 9001\n", "['0.0.0.0:9002']"),
        ({"ORDERPROCESSING_SERVER_HOST": "127.0.0.2"}, "server_host: 127.0.0.1\n",
         "['127.0.0.2:8000']"),
        ({"PORT": "9003"}, "server_port: 9001\n", "['0.0.0.0:9003']"),
        ({"PORT": "9003", "ORDERPROCESSING_SERVER_PORT": "9004"}, None, "['0.0.0.0:9004']"),
        ({"HOST": "127.0.0.3", "PORT": "9005"}, None, "['127.0.0.3:9005']"),
        ({"HOST": "127.0.0.3", "ORDERPROCESSING_SERVER_HOST": "127.0.0.4"}, None,
         "['127.0.0.4:8000']"),
        ({"ORDERPROCESSING_SERVER_HOST": "::1"}, None, "['[::1]:8000']"),
        ({"GUNICORN_BIND": "127.0.0.9:9999", "PORT": "9003"}, "server_port: 9001\n",
         "['127.0.0.9:9999']"),
    ],
)
def test_gunicorn_binds_where_the_settings_say(tmp_path, env, yaml_text, bind):
    result, printed = gunicorn_config(tmp_path, env, yaml_text)
    assert result.returncode == 0, result.stderr[-2000:]
    assert printed["bind"] == bind


def test_gunicorn_workers_threads_and_access_log_are_settings(tmp_path):
    result, printed = gunicorn_config(tmp_path, {})
    assert (printed["workers"], printed["threads"], printed["worker_class"]) == ("2", "1", "sync")
    assert printed["accesslog"] == "None"
    result, printed = gunicorn_config(
        tmp_path, {}, "web_workers: 3\nweb_threads: 4\naccess_log: '-'\n"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (printed["workers"], printed["threads"], printed["worker_class"]) == (
        "3", "4", "gthread"
    )
    assert printed["accesslog"] == "-"
    result, printed = gunicorn_config(tmp_path, {"WEB_CONCURRENCY": "5"})
    assert printed["workers"] == "5"
    result, printed = gunicorn_config(
        tmp_path, {"WEB_CONCURRENCY": "5", "ORDERPROCESSING_WEB_WORKERS": "6"}
    )
    assert printed["workers"] == "6"


@pytest.mark.parametrize(
    ("env", "named"),
    [({"PORT": "abc"}, "PORT must be a whole number"),
     ({"ORDERPROCESSING_WEB_THREADS": "0"}, "ORDERPROCESSING_WEB_THREADS must be at least 1")],
)
def test_gunicorn_refuses_to_start_on_a_malformed_setting(tmp_path, env, named):
    result, _ = gunicorn_config(tmp_path, env)
    assert result.returncode != 0
    assert named in result.stderr
