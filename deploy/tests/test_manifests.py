"""The Kubernetes manifests: every overlay renders, validates strictly against the
Kubernetes schemas, and follows the platform rules (probes, limits, hardened pods,
disruption budgets, no inlined secrets); every service has a hardened Dockerfile."""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from callcue.core import access

ROOT = Path(__file__).parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("dev", "prod")
SERVICES = ("gateway", "transcriber", "detector", "notifier")
# The console and telephony speak HTTP and WebSockets, not gRPC; checked on their own below.
CONSOLE = "console"
TELEPHONY = "telephony"
KUBERNETES_VERSION = "1.33.0"
WORKLOADS = ("Deployment", "StatefulSet")


def render(path: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl (for kubectl kustomize, which works offline) is not installed"
    result = subprocess.run(
        [kubectl, "kustomize", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@cache
def overlay(name: str) -> tuple[dict[str, Any], ...]:
    return tuple(render(K8S / "overlays" / name))


def named(docs: tuple[dict[str, Any], ...], kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def workloads(docs: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] in WORKLOADS]


@pytest.mark.parametrize("name", OVERLAYS)
def test_every_object_validates_strictly(name: str) -> None:
    for doc in overlay(name):
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_strict_validation_catches_a_misspelt_field() -> None:
    deployment = dict(named(overlay("prod"), "Deployment")["gateway"])
    deployment["spec"] = {**deployment["spec"], "replica": 3}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("name", OVERLAYS)
def test_every_pod_is_hardened_with_probes_and_limits(name: str) -> None:
    for workload in workloads(overlay(name)):
        where = f"{name}/{workload['metadata']['name']}"
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, where
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert pod["automountServiceAccountToken"] is False, where
        assert pod["serviceAccountName"] == workload["metadata"]["name"], where
        for container in pod["containers"] + pod.get("initContainers", []):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["capabilities"] == {"drop": ["ALL"]}, where
            for bound in ("requests", "limits"):
                assert set(container["resources"][bound]) >= {"cpu", "memory"}, where
            image = container["image"]
            assert re.search(r":[\w.-]+$", image) and not image.endswith(":latest"), image
            for variable in container.get("env", []):
                value = str(variable.get("value", ""))
                assert not re.search(r"password|://[^/@]+:[^/@]+@", value, re.I), where
        for container in pod["containers"]:
            assert "readinessProbe" in container and "livenessProbe" in container, where


@pytest.mark.parametrize("name", OVERLAYS)
def test_services_use_grpc_health_probes_headless_services_and_drain(name: str) -> None:
    docs = overlay(name)
    deployments, services = named(docs, "Deployment"), named(docs, "Service")
    configs = named(docs, "ConfigMap")
    assert set(deployments) == {*SERVICES, CONSOLE, TELEPHONY}
    for service in SERVICES:
        pod = deployments[service]["spec"]["template"]["spec"]
        container = pod["containers"][0]
        port = container["ports"][0]["containerPort"]
        for probe in ("readinessProbe", "livenessProbe"):
            assert container[probe]["grpc"] == {"port": port}, (service, probe)
        assert services[service]["spec"]["clusterIP"] == "None"
        assert services[service]["spec"]["ports"][0]["appProtocol"] == "grpc"
        config = configs[service]["data"]
        assert float(config["CALLCUE_MAX_CONNECTION_AGE_SECONDS"]) > 0, service
        # SIGTERM: readiness goes NOT_SERVING, calls get the grace, then the pod is killed.
        grace = float(config["CALLCUE_SHUTDOWN_GRACE_SECONDS"])
        assert pod["terminationGracePeriodSeconds"] > grace, service
        annotations = deployments[service]["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == config["CALLCUE_METRICS_PORT"]
    for service in ("gateway", "detector", CONSOLE, TELEPHONY):
        init = deployments[service]["spec"]["template"]["spec"]["initContainers"][0]
        assert init["args"] == ["migrate"], "migrations run before the service starts"


@pytest.mark.parametrize("name", OVERLAYS)
def test_the_console_uses_http_probes_and_drains_within_its_grace(name: str) -> None:
    docs = overlay(name)
    pod = named(docs, "Deployment")[CONSOLE]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    config = named(docs, "ConfigMap")[CONSOLE]["data"]
    assert pod["terminationGracePeriodSeconds"] > float(config["CALLCUE_SHUTDOWN_GRACE_SECONDS"])
    assert config["CALLCUE_CONSOLE_STATIC_DIR"] == "/opt/callcue/web"
    assert config["CALLCUE_CONSOLE_SECURE_COOKIES"] == ("false" if name == "dev" else "true")
    service = named(docs, "Service")[CONSOLE]
    assert service["spec"]["ports"][0]["appProtocol"] == "http"


@pytest.mark.parametrize("name", OVERLAYS)
def test_telephony_uses_http_probes_and_lets_calls_end_before_it_is_killed(name: str) -> None:
    docs = overlay(name)
    pod = named(docs, "Deployment")[TELEPHONY]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    config = named(docs, "ConfigMap")[TELEPHONY]["data"]
    grace = float(config["CALLCUE_SHUTDOWN_GRACE_SECONDS"])
    assert grace >= 60, "a phone call needs minutes, not seconds, to end"
    assert pod["terminationGracePeriodSeconds"] > grace
    secrets = {
        v["name"]: v["valueFrom"]["secretKeyRef"] for v in container["env"] if "valueFrom" in v
    }
    # The dev overlay's generated Secret carries a content hash in its name.
    reference = secrets["CALLCUE_TELEPHONY_SECRETS_KEY"]
    assert reference["name"].startswith("callcue-telephony") and reference["key"] == "secrets-key"
    ports = {p["name"]: p for p in named(docs, "Service")[TELEPHONY]["spec"]["ports"]}
    assert ports["http"]["appProtocol"] == "http" and ports["grpc"]["appProtocol"] == "grpc"
    assert int(config["CALLCUE_TELEPHONY_GRPC_PORT"]) == ports["grpc"]["port"]


def test_prod_routes_only_the_websocket_paths_to_telephony() -> None:
    ingress = named(overlay("prod"), "Ingress")["callcue-telephony"]
    assert ingress["spec"]["tls"][0]["secretName"] == "callcue-telephony-tls"
    annotations = ingress["metadata"]["annotations"]
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    paths = ingress["spec"]["rules"][0]["http"]["paths"]
    assert {p["path"] for p in paths} == {"/twilio/", "/audiohook/", "/freeswitch/"}
    assert {p["backend"]["service"]["name"] for p in paths} == {TELEPHONY}
    host = ingress["spec"]["rules"][0]["host"]
    public = named(overlay("prod"), "ConfigMap")[TELEPHONY]["data"]["CALLCUE_TELEPHONY_PUBLIC_URL"]
    assert public == f"wss://{host}", "Twilio signs the URL it was given"


@pytest.mark.parametrize("name", OVERLAYS)
def test_every_workload_has_a_disruption_budget(name: str) -> None:
    docs = overlay(name)
    budgets = named(docs, "PodDisruptionBudget")
    for workload in workloads(docs):
        labels = workload["spec"]["template"]["metadata"]["labels"]
        covering = [
            budget
            for budget in budgets.values()
            if budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
        ]
        assert covering, workload["metadata"]["name"]


def test_dev_runs_single_replicas_with_its_own_databases_on_volumes() -> None:
    docs = overlay("dev")
    assert all(d["spec"]["replicas"] == 1 for d in named(docs, "Deployment").values())
    assert not named(docs, "HorizontalPodAutoscaler")
    stateful = named(docs, "StatefulSet")
    assert set(stateful) == {"postgres", "redis"}
    for workload in stateful.values():
        assert workload["spec"]["volumeClaimTemplates"], workload["metadata"]["name"]


def test_prod_scales_references_external_secrets_and_exposes_grpc_with_tls() -> None:
    docs = overlay("prod")
    assert not named(docs, "Secret"), "prod secrets are created by the operator, not committed"
    assert not named(docs, "StatefulSet"), "prod uses external PostgreSQL and Redis"
    deployments = named(docs, "Deployment")
    assert all(d["spec"]["replicas"] >= 2 for d in deployments.values())
    referenced = {
        variable["valueFrom"]["secretKeyRef"]["name"]
        for deployment in deployments.values()
        for container in deployment["spec"]["template"]["spec"]["containers"]
        for variable in container.get("env", [])
        if "valueFrom" in variable
    }
    assert referenced == {"callcue-database", "callcue-redis", "callcue-telephony"}
    scalers = named(docs, "HorizontalPodAutoscaler")
    console = named(docs, "Ingress")["callcue-console"]
    assert console["spec"]["tls"][0]["secretName"] == "callcue-console-tls"
    assert console["metadata"]["annotations"]["nginx.ingress.kubernetes.io/backend-protocol"] == (
        "HTTP"
    )
    (route,) = console["spec"]["rules"][0]["http"]["paths"]
    assert route["backend"]["service"]["name"] == CONSOLE
    assert set(scalers) == {"gateway", "transcriber"}
    for scaler in scalers.values():
        assert scaler["spec"]["minReplicas"] >= 2
    (pods,) = [m["pods"] for m in scalers["transcriber"]["spec"]["metrics"] if m["type"] == "Pods"]
    # Scaled on the capacity the transcriber exposes, below where it refuses new calls.
    assert pods["metric"]["name"] == "callcue_transcriber_live_channels"
    assert 0 < int(pods["target"]["averageValue"]) < _max_live_channels(docs)
    for deployment in deployments.values():
        assert deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
    ingress = named(docs, "Ingress")["callcue"]
    assert ingress["spec"]["tls"][0]["secretName"] == "callcue-tls"
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/backend-protocol"] == (
        "GRPC"
    )
    paths = {p["path"] for p in ingress["spec"]["rules"][0]["http"]["paths"]}
    assert {p for p in paths if p.startswith("/callcue.")} == {
        "/callcue.gateway.v1.GatewayService",
        "/callcue.detector.v1.PlaybookService",
        "/callcue.notifier.v1.SubscriberService",
        "/callcue.telephony.v1.ConnectorService",
    }, "only public services are routed"
    internal = {
        service for service, methods in access.RULES.items() if access.INTERNAL in methods.values()
    }
    assert internal and not any(path.strip("/") in internal for path in paths)


def _max_live_channels(docs: tuple[dict[str, Any], ...]) -> int:
    return int(named(docs, "ConfigMap")["transcriber"]["data"]["CALLCUE_MAX_LIVE_CHANNELS"])


def _container(docs: tuple[dict[str, Any], ...], name: str) -> dict[str, Any]:
    deployment = named(docs, "Deployment")[name]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def _volume(docs: tuple[dict[str, Any], ...], name: str, volume: str) -> dict[str, Any]:
    volumes = named(docs, "Deployment")[name]["spec"]["template"]["spec"]["volumes"]
    return next(v for v in volumes if v["name"] == volume)


@pytest.mark.parametrize("name", OVERLAYS)
def test_only_the_gateway_holds_the_signing_key_and_the_internal_services_trust_it(
    name: str,
) -> None:
    docs = overlay(name)
    env = {
        service: {v["name"]: v for v in _container(docs, service).get("env", [])}
        for service in SERVICES
    }
    key_file = env["gateway"]["CALLCUE_SERVICE_KEY_FILE"]["value"]
    (mount,) = [
        m for m in _container(docs, "gateway")["volumeMounts"] if m["name"] == "service-key"
    ]
    assert mount["readOnly"] and key_file.startswith(mount["mountPath"] + "/")
    secret = _volume(docs, "gateway", "service-key")["secret"]
    assert secret["secretName"].startswith("callcue-service-key")
    assert secret["defaultMode"] == 0o400
    for service in ("transcriber", "detector", "notifier"):
        assert "CALLCUE_SERVICE_KEY_FILE" not in env[service], service
        directory = env[service]["CALLCUE_TRUSTED_SERVICES_DIR"]["value"]
        (trusted,) = [
            m for m in _container(docs, service)["volumeMounts"] if m["mountPath"] == directory
        ]
        assert trusted["readOnly"], service
        volume = _volume(docs, service, trusted["name"])
        assert volume["configMap"]["name"].startswith("callcue-trusted-services"), service
        assert not any(
            "secret" in _volume(docs, service, m["name"])
            for m in _container(docs, service)["volumeMounts"]
        ), f"the {service} holds no secret files"
    # The transcriber needs no database: it checks the gateway's credentials by key.
    assert "DATABASE_URL" not in env["transcriber"]
    if name == "dev":
        generated = named(docs, "ConfigMap")
        (trusted_map,) = [n for n in generated if n.startswith("callcue-trusted-services")]
        assert set(generated[trusted_map]["data"]) == {"gateway.pub"}


def test_one_hardened_multi_stage_dockerfile_builds_each_service() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert len(stages) >= 2, "multi-stage: build tools stay out of the image"
    for image in stages + re.findall(r"COPY --from=(\S+:\S+)", text):
        assert re.search(r":\d[\w.-]*$", image), f"{image} is not pinned to a version"
    assert '--package "callcue-${SERVICE}"' in text, "only this service's dependencies"
    assert 'ln -s "callcue-${SERVICE}" /opt/callcue/bin/callcue-service' in text
    final = text[text.rindex("FROM") :]
    user = re.search(r"^USER\s+(\d+)", final, re.M)
    assert user and int(user.group(1)) != 0, "runs as a non-root user"
    assert 'ENTRYPOINT ["callcue-service"]' in final
    assert 'if [ "${SERVICE}" = console ]' in text, "only the console's image has the pages"
    for service in (*SERVICES, CONSOLE, TELEPHONY):
        # What the symlink points at must be a console script of the service's package.
        project = (ROOT / "services" / service / "pyproject.toml").read_text()
        assert f'callcue-{service} = "callcue.{service}' in project, service


def _sources(rule: dict[str, Any]) -> set[str]:
    """Who an ingress rule lets in: pod names, or "ns:<namespace>"."""
    found = set()
    for peer in rule.get("from", []):
        if "podSelector" in peer and "namespaceSelector" not in peer:
            found.add(peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"])
        elif "namespaceSelector" in peer:
            found.add(
                "ns:" + peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
            )
    return found


def _allowed(docs: tuple[dict[str, Any], ...], target: str) -> dict[int, set[str]]:
    """Port -> who may reach it, for the pods named ``target``."""
    ports: dict[int, set[str]] = {}
    for policy in named(docs, "NetworkPolicy").values():
        selector = policy["spec"]["podSelector"].get("matchLabels", {})
        if selector and selector.get("app.kubernetes.io/name") != target:
            continue
        for rule in policy["spec"].get("ingress", []):
            for port in rule.get("ports", []):
                ports.setdefault(port["port"], set()).update(_sources(rule))
    return ports


@pytest.mark.parametrize("name", OVERLAYS)
def test_network_policies_deny_by_default_and_open_only_what_each_service_needs(name: str) -> None:
    docs = overlay(name)
    policies = named(docs, "NetworkPolicy")
    deny = policies["default-deny"]["spec"]
    assert (
        deny["podSelector"] == {} and deny["policyTypes"] == ["Ingress"] and "ingress" not in deny
    )
    ingress, monitoring = "ns:ingress-nginx", "ns:monitoring"
    # Only the gateway reaches the transcriber; nothing from outside the namespace.
    assert _allowed(docs, "transcriber") == {50052: {"gateway"}, 9090: {monitoring}}
    assert _allowed(docs, "gateway")[50051] == {ingress, "console", "telephony"}
    assert _allowed(docs, "detector")[50053] == {ingress, "gateway", "console"}
    assert _allowed(docs, "notifier")[50054] == {ingress, "gateway", "console"}
    assert _allowed(docs, "console") == {8080: {ingress}, 9090: {monitoring}}
    assert _allowed(docs, "telephony")[8090] == {ingress}
    assert _allowed(docs, "telephony")[50055] == {ingress, "console"}
    # Every port a workload listens on is let in by a policy (or nothing could reach it),
    # and every pod a policy names exists.
    workload_names = {w["metadata"]["name"] for w in workloads(docs)}
    for workload in workloads(docs):
        target = workload["metadata"]["name"]
        allowed = _allowed(docs, target)
        for container in workload["spec"]["template"]["spec"]["containers"]:
            for port in container.get("ports", []):
                assert port["containerPort"] in allowed, (target, port)
        for sources in allowed.values():
            assert {s for s in sources if not s.startswith("ns:")} <= workload_names
    if name == "dev":
        assert _allowed(docs, "redis") == {6379: {"notifier"}}
        assert _allowed(docs, "postgres")[5432] == (set(SERVICES) - {"transcriber"}) | {
            CONSOLE,
            TELEPHONY,
        }
