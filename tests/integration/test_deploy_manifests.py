"""Deploy artefacts without a Docker engine: the Dockerfile, docker-compose.yml and the Kubernetes
manifests are checked for what a rollout relies on; and expand/contract migrations are proven by
running the previous release's code against the current schema."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import tarfile
from io import BytesIO
from pathlib import Path

import pytest
import yaml

from config import DEFAULTS

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
PROCFILE = dict(
    line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip()
)


def k8s_objects() -> list[dict]:
    return [doc for path in sorted(K8S.glob("*.yaml"))
            for doc in yaml.safe_load_all(path.read_text()) if doc]


def by_kind(kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in k8s_objects() if o["kind"] == kind}


def containers(deployment: dict) -> list[dict]:
    return deployment["spec"]["template"]["spec"]["containers"]


def known_setting(name: str) -> bool:
    return name.startswith("ORDERPROCESSING_") and name[len("ORDERPROCESSING_"):] in DEFAULTS


def test_dockerfile_is_multi_stage_non_root_with_a_healthcheck_and_the_procfile_command():
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+\S+(?:\s+AS\s+(\w+))?", text, re.M)
    assert len(stages) >= 2 and "--from=build" in text
    user = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert user and user[-1].split(":")[0] not in ("root", "0")
    healthcheck = re.search(r"^HEALTHCHECK .*?CMD (.+)$", text, re.M | re.S)
    assert healthcheck and "/healthz" in healthcheck.group(1)
    assert (ROOT / "scripts" / "healthcheck.py").exists()
    cmd = re.findall(r'^CMD \[(.+)\]', text, re.M)[-1]
    assert " ".join(part.strip().strip('"') for part in cmd.split(",")) == PROCFILE["web"]
    for source in re.findall(r"^COPY --chown=\S+ (.+) \S+$", text, re.M):
        for name in source.split():
            assert (ROOT / name).exists(), f"the Dockerfile copies {name}, which is missing"
    for name in re.findall(r"(ORDERPROCESSING_\w+)=", text):
        assert known_setting(name), name


def test_compose_runs_the_whole_stack_with_the_shipped_rules_and_dashboard():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"web", "worker", "scheduler", "postgres", "redis", "vault", "prometheus",
            "grafana"} <= set(services)
    for process in ("web", "worker", "scheduler"):
        assert " ".join(services[process]["command"]) == PROCFILE[process]
    assert " ".join(services["migrate"]["command"]) == PROCFILE["release"]
    assert services["web"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    mounts = [m.split(":")[0] for s in services.values() for m in s.get("volumes", [])]
    local = [m for m in mounts if m.startswith("./")]
    assert "./deploy/prometheus/orderprocessing-rules.yml" in local
    assert "./deploy/grafana/orderprocessing-dashboard.json" in local
    for path in local:
        assert (ROOT / path).exists(), f"{path} is mounted but missing"
    rules = yaml.safe_load((ROOT / "deploy/compose/prometheus.yml").read_text())["rule_files"]
    assert any(r.endswith("orderprocessing-rules.yml") for r in rules)
    for service in services.values():
        for name in service.get("environment", {}):
            assert not name.startswith("ORDERPROCESSING_") or known_setting(name), name


def test_kubernetes_web_pods_probe_healthz_and_readyz_and_every_container_requests_resources():
    web = by_kind("Deployment")["orderprocessing-web"]
    [container] = containers(web)
    port = container["ports"][0]
    assert port["containerPort"] == 8000
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["port"] in (port["name"], port["containerPort"])
    assert web["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    for deployment in by_kind("Deployment").values():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        for c in pod["containers"]:
            assert {"cpu", "memory"} <= set(c["resources"]["requests"]), c["name"]
    for config in by_kind("ConfigMap").values():
        for name in config["data"]:
            assert known_setting(name), name


def test_kubernetes_has_disruption_budgets_and_scales_workers_apart_from_web():
    deployments = by_kind("Deployment")
    commands = {" ".join(containers(d)[0]["command"]): name for name, d in deployments.items()}
    for process in ("web", "worker", "scheduler"):
        assert PROCFILE[process] in commands, f"no Deployment runs the Procfile's {process}"
    worker = commands[PROCFILE["worker"]]
    hpa = by_kind("HorizontalPodAutoscaler")
    assert any(h["spec"]["scaleTargetRef"]["name"] == worker for h in hpa.values())
    assert worker != commands[PROCFILE["web"]]
    pdbs = by_kind("PodDisruptionBudget")
    web_labels = deployments[commands[PROCFILE["web"]]]["spec"]["selector"]["matchLabels"]
    assert any(p["spec"]["selector"]["matchLabels"] == web_labels for p in pdbs.values())
    job = next(iter(by_kind("Job").values()))
    assert " ".join(containers({"spec": job["spec"]})[0]["command"]) == PROCFILE["release"]


DESTRUCTIVE = ("drop_table", "drop_column", "rename_table", "alter_column")


def test_migrations_only_expand_unless_they_declare_a_contract_step():
    """Expand/contract: a migration that drops, renames or alters must say why it is safe now
    (`CONTRACT = "..."`: the release that stopped using the old shape is everywhere)."""
    for path in sorted((ROOT / "migrations" / "versions").glob("*.py")):
        tree = ast.parse(path.read_text())
        upgrade = next(n for n in tree.body if isinstance(n, ast.FunctionDef)
                       and n.name == "upgrade")
        calls = {n.func.attr for n in ast.walk(upgrade)
                 if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)}
        contract = any(isinstance(n, ast.Assign) and any(
            getattr(t, "id", "") == "CONTRACT" for t in n.targets) for n in tree.body)
        risky = calls & set(DESTRUCTIVE)
        assert not risky or contract, f"{path.name} uses {sorted(risky)} without CONTRACT"


OLD_RELEASE_SCRIPT = """
import sys
from pathlib import Path
from app.factory import create_app
from tests.conftest import base_overrides
from tests.helpers import admin_headers, create_product, drain_queues, merchant_with_key, order_body

app = create_app(base_overrides(sys.argv[1], sys.argv[2], Path(sys.argv[3])))
client = app.test_client()
admin = admin_headers(app, client)
_merchant, headers = merchant_with_key(client, admin, name="Old release")
create_product(client, headers, sku="OLD-1")
placed = client.post("/api/v1/orders", json=order_body(items=[{"sku": "OLD-1", "quantity": 1}]),
                     headers=headers)
assert placed.status_code == 202, placed.get_json()
drain_queues(app)
order = client.get("/api/v1/orders/" + placed.get_json()["id"], headers=headers).get_json()
assert order["status"] == "completed", order
listed = client.get("/api/v1/orders", headers=headers).get_json()["data"]
assert [o["id"] for o in listed] == [order["id"]]
print("OLD-RELEASE-OK")
"""


def previous_release() -> str | None:
    """The commit just before the newest migration was added: the release a rollout replaces."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        return None
    newest = sorted((ROOT / "migrations" / "versions").glob("[0-9]*.py"))[-1]
    added = subprocess.run(
        ["git", "log", "--diff-filter=A", "--format=%H", "--", str(newest.relative_to(ROOT))],
        cwd=ROOT, capture_output=True, text=True, check=False).stdout.split()
    return f"{added[-1]}^" if added else None


@pytest.mark.slow
def test_the_previous_release_runs_against_the_current_schema(make_app, database_url, redis_url,
                                                              tmp_path):
    release = previous_release()
    if release is None:
        pytest.skip("not a git checkout, or the newest migration is not committed yet")
    make_app(database_url)  # the schema is at the current head; tables are emptied afterwards
    archive = subprocess.run(["git", "archive", release], cwd=ROOT, capture_output=True,
                             check=True).stdout
    old = tmp_path / "old-release"
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(old, filter="data")
    result = subprocess.run(
        [sys.executable, "-c", OLD_RELEASE_SCRIPT, database_url, redis_url,
         str(tmp_path / "old-instance")],
        cwd=old, env={"PYTHONPATH": str(old), "PATH": "/usr/bin:/bin"}, capture_output=True,
        text=True, timeout=300, check=False,
    )
    assert "OLD-RELEASE-OK" in result.stdout, result.stderr[-3000:]
