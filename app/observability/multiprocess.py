"""PROMETHEUS_MULTIPROC_DIR housekeeping for gunicorn and the RQ workers (standard library only).

The directory must exist, and be the same for every process of one host, before prometheus_client
is imported. Files of processes that no longer run are removed at start-up, so a restart does not
resurrect old counts, while processes still running (workers started first) keep theirs.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"
_PID_FILE = re.compile(r"_(\d+)\.db$")


def ensure_dir(default: str | os.PathLike) -> Path:
    """Use $PROMETHEUS_MULTIPROC_DIR, or set it to `default`; create it; return it."""
    path = Path(os.environ.get(ENV) or default)
    path.mkdir(parents=True, exist_ok=True)
    os.environ[ENV] = str(path)
    return path


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_dead_process_files(path: str | os.PathLike) -> list[str]:
    """Delete the metric files of processes that are gone; the names removed."""
    removed = []
    for entry in Path(path).glob("*.db"):
        match = _PID_FILE.search(entry.name)
        if match and not _running(int(match.group(1))):
            entry.unlink(missing_ok=True)
            removed.append(entry.name)
    return removed


def default_dir() -> str:
    """<instance path>/prometheus, as `make run` uses; a temp dir if the settings cannot load."""
    try:
        from config import load_settings

        return str(Path(load_settings()["INSTANCE_PATH"]) / "prometheus")
    except Exception:  # noqa: BLE001 - gunicorn must still start; the app reports config errors
        import tempfile

        return str(Path(tempfile.gettempdir()) / f"orderprocessing-prometheus-{os.getuid()}")
