"""Deployment artefacts without a cluster or a Docker engine: the Dockerfile (hadolint, the paths it
copies), and the Helm chart (helm lint --strict, helm template with the defaults and each example,
every render validated with kubernetes-validate --strict, bad values refused by the schema).

Helm comes from scripts/_helm.sh (``$HELM``); scripts/test fetches it once into the user's cache.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "charts" / "skao-staging"
EXAMPLES = ["minimal-evaluation.yaml", "production.yaml", "jupyter.yaml"]
BIN = Path(sys.executable).parent
KUBERNETES_VERSION = "1.30.0"
NOT_IN_KUBERNETES = {"ServiceMonitor"}  # a prometheus-operator CRD: kubernetes-validate has no schema for it


@dataclass(frozen=True)
class Helm:
    binary: str
    home: Path  # Helm writes its cache and configuration under HOME


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    binary = os.environ.get("HELM") or shutil.which("helm")
    if not binary:
        pytest.fail("no Helm binary: run through scripts/test, which fetches one (scripts/_helm.sh)")
    return Helm(binary, tmp_path_factory.mktemp("helm-home"))


def run_helm(helm: Helm, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(helm.home), "XDG_CACHE_HOME": f"{helm.home}/cache"}
    env["XDG_CONFIG_HOME"] = f"{helm.home}/config"
    return subprocess.run([helm.binary, *args], capture_output=True, text=True, env=env, timeout=120)


def render(helm: Helm, *values: str) -> list[dict[str, Any]]:
    args = ["template", "staging", str(CHART), "--namespace", "skao"]
    for name in values:
        args += ["-f", str(CHART / "examples" / name)]
    result = run_helm(helm, *args)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def validate(manifests: list[dict[str, Any]], tmp_path: Path) -> None:
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(yaml.safe_dump_all([m for m in manifests if m["kind"] not in NOT_IN_KUBERNETES]))
    result = subprocess.run(
        [str(BIN / "kubernetes-validate"), "-k", KUBERNETES_VERSION, "--strict", str(rendered)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARN" not in result.stdout + result.stderr, result.stdout + result.stderr


def find(manifests: list[dict[str, Any]], kind: str, suffix: str = "") -> dict[str, Any]:
    matches = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"].endswith(suffix)]
    assert len(matches) == 1, f"{kind} *{suffix}: {[m['metadata']['name'] for m in matches]}"
    return matches[0]


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container["env"]}


def test_helm_lint_strict(helm: Helm) -> None:
    for values in [None, *EXAMPLES]:
        args = ["lint", "--strict", str(CHART)]
        if values:
            args += ["-f", str(CHART / "examples" / values)]
        result = run_helm(helm, *args)
        assert result.returncode == 0, f"{values}: {result.stdout}{result.stderr}"


@pytest.mark.parametrize("values", [None, *EXAMPLES])
def test_every_render_is_valid_kubernetes(helm: Helm, values: str | None, tmp_path: Path) -> None:
    manifests = render(helm, *([values] if values else []))
    validate(manifests, tmp_path)
    for monitor in (m for m in manifests if m["kind"] == "ServiceMonitor"):
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        assert monitor["spec"]["selector"]["matchLabels"] and monitor["spec"]["endpoints"][0]["path"] == "/metrics"


def test_defaults_are_safe_and_complete(helm: Helm) -> None:
    manifests = render(helm)
    api = find(manifests, "Deployment", "-api")["spec"]["template"]["spec"]
    container = api["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert api["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert "--insecure" not in container["args"]
    env = env_of(container)
    assert env["STAGING_AUTH_MODE"] == "header" and env["STAGING_TRUSTED_PROXIES"] == ""  # refuses all until set
    assert env["STAGING_STORAGE_ROOTS"] == "/data/archive" and env["STAGING_USER_AREAS"] == "/data/users/{username}"
    assert "jupyter_copy" not in env["STAGING_METHODS"]  # no hub configured
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/data/archive"]["readOnly"] is True and not mounts["/data/users"].get("readOnly")
    assert {"/tmp", "/var/log/skao-staging"} <= set(mounts)  # writable scratch under a read-only root
    volumes = {v["name"]: v for v in api["volumes"]}
    assert volumes["user-areas"]["persistentVolumeClaim"]["claimName"] == "user-areas"

    worker = find(manifests, "Deployment", "-worker")["spec"]["template"]["spec"]
    grace = int(env_of(worker["containers"][0])["STAGING_SHUTDOWN_GRACE_SECONDS"])
    assert worker["terminationGracePeriodSeconds"] == grace + 15
    assert worker["containers"][0]["args"][0] == "worker"

    # evaluation database: the migration is a Job of the release (the database exists only after install)
    migrate = find(manifests, "Job")
    assert "annotations" not in migrate["metadata"] and migrate["spec"]["template"]["spec"]["containers"][0][
        "args"
    ] == ["migrate"]
    mariadb_secret = find(manifests, "Secret", "-mariadb")["stringData"]
    assert mariadb_secret["database-url"].startswith("mysql+pymysql://staging:")
    assert mariadb_secret["password"] in mariadb_secret["database-url"]
    assert len(mariadb_secret["password"]) == 24


def test_production_example(helm: Helm) -> None:
    manifests = render(helm, "production.yaml")
    kinds = {m["kind"] for m in manifests}
    assert {"HorizontalPodAutoscaler", "Ingress", "ServiceMonitor", "PodDisruptionBudget", "NetworkPolicy"} <= kinds
    assert "StatefulSet" not in kinds
    migrate = find(manifests, "Job", "-migrate")
    assert migrate["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    url = migrate["spec"]["template"]["spec"]["containers"][0]["env"][0]["valueFrom"]["secretKeyRef"]
    assert url == {"name": "skao-staging-db", "key": "database-url"}
    api = find(manifests, "Deployment", "-api")
    assert "replicas" not in api["spec"]  # the HPA owns it
    env = env_of(api["spec"]["template"]["spec"]["containers"][0])
    assert env["STAGING_OIDC_ISSUER"] == "https://ska-iam.stfc.ac.uk/" and env["STAGING_AUTH_MODE"] == "oidc"
    assert env["STAGING_STORAGE_ROOTS"] == "/data/archive,/data/legacy,/data/rse"
    assert env["STAGING_USER_AREAS"] == "/data/users/{username}/staged"
    assert env["STAGING_GROUP_STORAGE_ROOTS"] == '{"srcnet/embargoed":["/data/archive/embargoed"]}'
    assert env["STAGING_MAX_RUNNING_PER_USER"] == "8"
    worker = find(manifests, "Deployment", "-worker")["spec"]["template"]["spec"]
    assert worker["terminationGracePeriodSeconds"] == 315
    # DIDs: the worker reads the RSE where it is mounted, signed in by the token the site refreshes
    worker_env = env_of(worker["containers"][0])
    assert worker_env["STAGING_RUCIO_RSE_MOUNTS"] == '{"davs://storage.src.example.org:443/srcnet/":"/data/rse"}'
    assert worker_env["STAGING_RUCIO_AUTH_URL"] == "https://rucio.srcnet.example.org"
    assert worker_env["STAGING_RUCIO_TOKEN_FILE"] == "/var/run/secrets/rucio/token"
    assert "STAGING_RUCIO_PASSWORD" not in worker_env
    assert {"name": "rucio-token", "secret": {"secretName": "skao-staging-rucio-token"}} in worker["volumes"]
    mounts = {mount["mountPath"]: mount for mount in worker["containers"][0]["volumeMounts"]}
    assert mounts["/var/run/secrets/rucio"]["readOnly"] and mounts["/data/rse"]["readOnly"]
    # lifetimes and notices: the reaper and the notifier run in the workers, secrets from Secrets
    assert worker_env["STAGING_MAX_LIFETIME"] == "P60D"
    assert worker_env["STAGING_QUOTA_HELD_BYTES_PER_USER"] == "5497558138880"
    assert worker_env["STAGING_SMTP_HOST"] == "smtp.example.org" and worker_env["STAGING_SMTP_STARTTLS"] == "true"
    assert worker_env["STAGING_WEBHOOK_URL"] == "https://ops.example.org/staging-events"
    secrets = {
        item["name"]: item["valueFrom"]["secretKeyRef"]
        for item in worker["containers"][0]["env"]
        if "valueFrom" in item and item["name"].startswith(("STAGING_SMTP", "STAGING_WEBHOOK"))
    }
    assert secrets == {
        "STAGING_SMTP_USERNAME": {"name": "skao-staging-smtp", "key": "username"},
        "STAGING_SMTP_PASSWORD": {"name": "skao-staging-smtp", "key": "password"},
        "STAGING_WEBHOOK_SECRET": {"name": "skao-staging-webhook", "key": "secret"},
    }
    ingress = find(manifests, "Ingress")
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"] == "8m"
    assert ingress["spec"]["tls"][0]["secretName"] == "staging-tls"
    policy = find(manifests, "NetworkPolicy", "-worker")
    assert policy["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "monitoring"
    }


def test_jupyter_example(helm: Helm) -> None:
    manifests = render(helm, "jupyter.yaml")
    env = env_of(find(manifests, "Deployment", "-api")["spec"]["template"]["spec"]["containers"][0])
    assert "jupyter_copy" in env["STAGING_METHODS"].split(",")
    assert env["STAGING_JUPYTERHUB_URL"] == "http://proxy-public.jhub.svc.cluster.local"
    assert env["STAGING_JUPYTERHUB_API_TOKEN"] == {"secretKeyRef": {"name": "skao-staging-hub-token", "key": "token"}}
    assert env["STAGING_AUTH_USER_HEADER"] == "X-Auth-Request-Preferred-Username"
    # the ingress lets through what the service accepts, so that the service answers 413 itself
    ingress = find(manifests, "Ingress")
    assert env["STAGING_MAX_BODY_BYTES"] == "2097152"
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"] == "2m"
    database = find(manifests, "Secret", "-database")
    assert database["metadata"]["annotations"]["helm.sh/hook-weight"] == "-10"  # exists before the migration hook


def test_evaluation_example_runs_without_sign_in_only_when_asked(helm: Helm) -> None:
    manifests = render(helm, "minimal-evaluation.yaml")
    api = find(manifests, "Deployment", "-api")["spec"]["template"]["spec"]["containers"][0]
    assert "--insecure" in api["args"] and env_of(api)["STAGING_EMBEDDED_WORKER"] == "true"
    assert not [m for m in manifests if m["kind"] == "Deployment" and m["metadata"]["name"].endswith("-worker")]
    assert not [m for m in manifests if m["kind"] == "NetworkPolicy"]


def test_bad_values_are_rejected_by_the_schema(helm: Helm) -> None:
    result = run_helm(helm, "template", "staging", str(CHART), "-f", str(CHART / "examples" / "bad-values.yaml"))
    assert result.returncode != 0
    for complaint in [
        "additional properties 'replicaCount' not allowed",
        "/worker/concurrency",
        "/methods/1",
        "/storage/userAreas/pathTemplate",
    ]:
        assert complaint in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["--set", "mariadb.enabled=false"], "a database is required"),
        (["--set", "auth.mode=oidc"], "auth.mode=oidc needs auth.oidc.issuer"),
        (["--set", "jupyterhub.enabled=true"], "jupyterhub.enabled needs jupyterhub.url"),
        (["--set", "rucio.enabled=true"], "rucio.enabled needs rucio.url, rucio.account"),
        (
            [
                "--set",
                "rucio.enabled=true,rucio.url=https://r.example,rucio.account=a,rucio.rse=R",
                "--set-json",
                'rucio.rseMounts={"file://x/": "/data/rse"}',
            ],
            "rucio.enabled needs rucio.existingSecret (userpass) or rucio.tokenSecret",
        ),
        (
            ["--set", "notifications.webhook.url=https://ops.example.org/hook"],
            "notifications.webhook.url needs notifications.webhook.existingSecret",
        ),
        (["--set", "auth.mode=everyone"], "/auth/mode"),
    ],
)
def test_incomplete_values_fail_with_a_reason(helm: Helm, values: list[str], message: str) -> None:
    result = run_helm(helm, "template", "staging", str(CHART), *values)
    assert result.returncode != 0 and message in result.stderr, result.stderr


def test_dockerfile_lints_and_copies_what_exists() -> None:
    dockerfile = ROOT / "Dockerfile"
    result = subprocess.run([str(BIN / "hadolint"), str(dockerfile)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    text = dockerfile.read_text()
    copies = re.findall(r"^COPY (?!--from)(.+) \S+$", text, flags=re.MULTILINE)
    assert copies, "no COPY found"
    for sources in copies:
        for source in sources.split():
            assert (ROOT / source).exists(), f"the Dockerfile copies {source}, which does not exist"
    assert re.search(r"^USER 10001", text, flags=re.MULTILINE) and "HEALTHCHECK" in text
    # the image runs what the README's install does: the package with its built frontend
    assert "npm run build" in text and "python -m build --wheel" in text
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", "**/node_modules", "src/skao_staging/web/"} <= set(ignored)
    chart_user = yaml.safe_load((CHART / "values.yaml").read_text())["podSecurityContext"]["runAsUser"]
    assert f"--uid {chart_user}" in text, "the chart's runAsUser is the image's user"


def test_the_wheel_carries_the_frontend_and_the_migrations(tmp_path: Path) -> None:
    """What the image installs: the package built as a wheel, with the built web interface inside."""
    assert (ROOT / "src/skao_staging/web/index.html").is_file(), "build the frontend first (scripts/test does)"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", str(ROOT), "-w", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    import zipfile

    names = zipfile.ZipFile(next(tmp_path.glob("skao_staging-*.whl"))).namelist()
    assert "skao_staging/web/index.html" in names
    assert any(re.fullmatch(r"skao_staging/web/assets/index-[\w-]+\.js", name) for name in names)
    assert "skao_staging/db/migrations/versions/0004_job_owner.py" in names and "skao_staging/py.typed" in names


def test_the_chart_runs_the_image_as_the_dockerfile_builds_it(helm: Helm) -> None:
    """User, port and entrypoint: the chart's pods and the Dockerfile agree (scripts/image runs the image)."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    user = re.search(r"^USER (\d+):(\d+)$", dockerfile, flags=re.MULTILINE)
    port = re.search(r"^EXPOSE (\d+)$", dockerfile, flags=re.MULTILINE)
    entrypoint = re.search(r"^ENTRYPOINT (\[.*\])$", dockerfile, flags=re.MULTILINE)
    assert user and port and entrypoint
    assert json.loads(entrypoint.group(1)) == ["skao-staging"]
    manifests = render(helm)
    for kind, suffix in (("Deployment", "-api"), ("Deployment", "-worker"), ("Job", "")):
        pod = find(manifests, kind, suffix)["spec"]["template"]["spec"]
        assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (
            int(user.group(1)),
            int(user.group(2)),
        )
        container = pod["containers"][0]
        assert "command" not in container, "the chart keeps the image's entrypoint and passes a subcommand"
        assert container["args"][0] in ("serve", "worker", "migrate")
    api = find(manifests, "Deployment", "-api")["spec"]["template"]["spec"]["containers"][0]
    assert f"--port={port.group(1)}" in api["args"]
    assert {p["containerPort"] for p in api["ports"]} == {int(port.group(1))}
    assert f"STAGING_HEALTH_PORT={port.group(1)}" in dockerfile
