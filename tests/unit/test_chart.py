"""The Helm chart rendered offline: lint, least-privilege RBAC, restricted pods, settings, schema, docs."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml
from virtstack.api.policies import url_rules_policy
from virtstack.api.settings import IsoUrlRules, Settings, load_settings
from virtstack_testbed.binaries import expected_binaries
from virtstack_testbed.plane import scheduler_configuration

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "virtstack"
KUBE_VERSION = "1.35.4"  # helm's built-in default (v1.20) is below the chart's kubeVersion
RELEASE, NAMESPACE = "vs", "virtstack-system"
VALUES = yaml.safe_load((CHART / "values.yaml").read_text())

# What the operator may do, and nothing else: (API group, resource) -> verbs, cluster-wide or per namespace.
NAMESPACED_PERMISSIONS = {
    **{
        ("virtstack.io", kind): {"get", "list", "watch", "patch", "update"}
        for kind in ("virtualmachines", "affinitygroups", "isos", "sshkeypairs")
    },
    ("virtstack.io", "vssnapshots"): {"get", "list", "watch", "patch", "update", "delete"},
    **{
        ("virtstack.io", f"{kind}/status"): {"patch"}
        for kind in ("virtualmachines", "affinitygroups", "vssnapshots", "isos", "sshkeypairs")
    },
    ("kubevirt.io", "virtualmachines"): {"get", "list", "watch", "create", "patch", "delete"},
    ("kubevirt.io", "virtualmachineinstances"): {"get", "list", "watch", "delete"},
    ("kubevirt.io", "virtualmachineinstancemigrations"): {"get", "list", "watch", "create", "delete"},
    ("snapshot.kubevirt.io", "virtualmachinesnapshots"): {"get", "list", "watch", "create", "delete"},
    ("snapshot.kubevirt.io", "virtualmachinerestores"): {"get", "list", "watch", "create", "delete"},
    ("cdi.kubevirt.io", "datavolumes"): {"get", "list", "watch", "create", "delete"},
    ("cdi.kubevirt.io", "datavolumes/source"): {"create"},
    ("", "secrets"): {"get", "list", "watch", "create", "patch", "delete"},
    ("", "services"): {"get", "list", "watch", "create", "patch", "delete"},
    ("", "persistentvolumeclaims"): {"get", "list", "watch", "delete"},
    ("", "pods"): {"get", "list", "watch", "delete"},
    ("", "events"): {"create", "patch"},
    ("events.k8s.io", "events"): {"create", "patch"},
    ("", "resourcequotas"): {"get", "list", "watch", "create", "patch"},
}
CLUSTER_PERMISSIONS = {
    ("", "nodes"): {"get", "list", "watch"},
    ("", "namespaces"): {"get"},
    ("virtstack.io", "gpuprofiles"): {"get", "list", "watch", "patch", "update"},
    ("virtstack.io", "gpuprofiles/status"): {"patch"},
    ("apiextensions.k8s.io", "customresourcedefinitions"): {"get", "list", "watch"},
}
LEASE = f"{RELEASE}-virtstack-leader"


def helm_binary() -> str:
    built = expected_binaries().helm
    if built.exists():
        return str(built)
    found = shutil.which("helm")
    if not found:
        pytest.skip("helm is not built (`testbed build`) and not on PATH")
    return found


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([helm_binary(), *args], capture_output=True, text=True, check=False, timeout=60)
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed: {result.stderr}")
    return result


def render(*args: str, show_only: str | None = None) -> list[dict]:
    extra = ["--show-only", show_only] if show_only else []
    out = helm("template", RELEASE, str(CHART), "-n", NAMESPACE, "--kube-version", KUBE_VERSION, *extra, *args)
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def by_kind(docs: list[dict], kind: str) -> list[dict]:
    return [doc for doc in docs if doc["kind"] == kind]


def settings_config_map(docs: list[dict]) -> dict:
    """The operator's settings (the other ConfigMap holds the URL rules for the admission policy)."""
    (doc,) = [d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"].endswith("-config")]
    return doc


def one(docs: list[dict], kind: str) -> dict:
    (doc,) = by_kind(docs, kind)
    return doc


def permissions(role: dict) -> dict[tuple[str, str], set[str]]:
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        assert not rule.get("nonResourceURLs"), f"{role['metadata']['name']}: no non-resource URLs"
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted.setdefault((group, resource), set()).update(rule["verbs"])
    return granted


MODES = {"cluster-wide": (), "namespaced": ("--set", "watchNamespaces={team-a,team-b}")}


@pytest.mark.parametrize("mode", MODES)
def test_helm_lint_passes_strict(mode: str) -> None:
    result = helm("lint", "--strict", str(CHART), "--kube-version", KUBE_VERSION, *MODES[mode])
    assert "0 chart(s) failed" in result.stdout


def test_chart_metadata() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["kubeVersion"].startswith(">=1.30")
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert chart["appVersion"] == version, "the image tag defaults to appVersion: keep it the package version"


@pytest.mark.parametrize("mode", MODES)
def test_rbac_has_no_wildcards_and_no_escalation(mode: str) -> None:
    roles = [doc for doc in render(*MODES[mode]) if doc["kind"] in ("Role", "ClusterRole")]
    assert roles
    for role in roles:
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                for value in rule.get(field, []):
                    assert "*" not in value, f"{role['metadata']['name']}: wildcard in {field}: {rule}"
            assert not {"escalate", "bind", "impersonate", "deletecollection"} & set(rule["verbs"]), rule


def test_cluster_wide_rbac_is_exactly_what_the_operator_needs() -> None:
    docs = render()
    cluster_roles = {role["metadata"]["name"]: role for role in by_kind(docs, "ClusterRole")}
    assert permissions(cluster_roles[f"{RELEASE}-virtstack-cluster"]) == CLUSTER_PERMISSIONS
    assert permissions(cluster_roles[f"{RELEASE}-virtstack"]) == NAMESPACED_PERMISSIONS
    bindings = {binding["roleRef"]["name"]: binding for binding in by_kind(docs, "ClusterRoleBinding")}
    assert set(bindings) == set(cluster_roles)
    for binding in bindings.values():
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "vs-virtstack", "namespace": NAMESPACE}]
    (lease_role,) = by_kind(docs, "Role")
    assert lease_role["metadata"]["namespace"] == NAMESPACE
    assert lease_role["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": [LEASE],
            "verbs": ["get", "list", "watch", "update"],
        },
    ]


def test_watch_namespaces_gives_roles_in_those_namespaces_only() -> None:
    docs = render(*MODES["namespaced"])
    (cluster_role,) = by_kind(docs, "ClusterRole")
    namespaces = {("", "namespaces"): {"get", "list", "watch"}}  # kopf follows the watched namespaces
    assert permissions(cluster_role) == CLUSTER_PERMISSIONS | namespaces, "only cluster-scoped kinds stay cluster-wide"
    (cluster_binding,) = by_kind(docs, "ClusterRoleBinding")
    assert cluster_binding["roleRef"]["name"] == cluster_role["metadata"]["name"]
    roles = {(r["metadata"]["namespace"], r["metadata"]["name"]): r for r in by_kind(docs, "Role")}
    assert set(roles) == {
        ("team-a", "vs-virtstack"),
        ("team-b", "vs-virtstack"),
        (NAMESPACE, "vs-virtstack-leader-election"),
    }
    for namespace in ("team-a", "team-b"):
        assert permissions(roles[(namespace, "vs-virtstack")]) == NAMESPACED_PERMISSIONS
    bindings = {(b["metadata"]["namespace"], b["roleRef"]["name"]) for b in by_kind(docs, "RoleBinding")}
    assert bindings == set(roles)
    args = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[-2:] == ["--namespace=team-a", "--namespace=team-b"]


def test_rbac_covers_every_generated_crd() -> None:
    """A new kind from `virtstack crds` without its rules would fail here, not in production."""
    granted = {key for role in by_kind(render(), "ClusterRole") for key in permissions(role)}
    for path in sorted((CHART / "crds").glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        plural = crd["spec"]["names"]["plural"]
        expected = CLUSTER_PERMISSIONS if crd["spec"]["scope"] == "Cluster" else NAMESPACED_PERMISSIONS
        assert {"get", "list", "watch"} <= expected.get((crd["spec"]["group"], plural), set()), plural
        assert expected.get((crd["spec"]["group"], f"{plural}/status")) == {"patch"}, plural
        assert (crd["spec"]["group"], plural) in granted


def test_every_rbac_rule_says_which_feature_needs_it() -> None:
    lines = (CHART / "templates" / "rbac.yaml").read_text().splitlines()
    rules = [index for index, line in enumerate(lines) if line.lstrip().startswith("- apiGroups:")]
    assert len(rules) >= 19
    for index in rules:
        assert lines[index - 1].lstrip().startswith("#"), f"rbac.yaml line {index + 1}: rule without a comment"


def containers_and_pods(docs: list[dict]) -> list[tuple[dict, dict]]:
    pods = [doc["spec"]["template"]["spec"] for doc in by_kind(docs, "Deployment")]
    pods += [doc["spec"] for doc in by_kind(docs, "Pod")]
    return [(pod, container) for pod in pods for container in pod.get("initContainers", []) + pod["containers"]]


@pytest.mark.parametrize("mode", MODES)
def test_every_container_meets_pod_security_restricted(mode: str) -> None:
    pairs = containers_and_pods(render(*MODES[mode]))
    assert len(pairs) == 2, "the operator and the helm test pod"
    for pod, container in pairs:
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        context = container["securityContext"]
        assert context["runAsNonRoot"] is True and context["runAsUser"] == 65532
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}
        assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
        assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
        assert all("hostPath" not in volume for volume in pod.get("volumes", []))


def test_deployment_runs_one_operator_with_liveness_and_the_mounted_config() -> None:
    docs = render()
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }, "the new pod stands by until the old one releases the Lease"
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == one(docs, "ServiceAccount")["metadata"]["name"]
    (container,) = pod["containers"]
    assert container["image"] == f"{VALUES['image']['repository']}:{VALUES['image'].get('tag') or '0.1.0'}"
    assert container["command"] == ["virtstack"]
    assert container["args"] == ["run", "--liveness=http://0.0.0.0:8080/healthz"]
    assert {"name": "healthz", "containerPort": 8080, "protocol": "TCP"} in container["ports"]
    for probe in ("livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "healthz"}
    assert "readinessProbe" not in container, "kopf: readiness makes no practical sense for an operator"
    assert container["resources"] == VALUES["resources"]
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["VIRTSTACK_CONFIG"] == "/etc/virtstack/config.yaml"
    assert env["VIRTSTACK_LEADER_ELECTION_LEASE"] == LEASE
    mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
    assert mounts == {"config": "/etc/virtstack", "tmp": "/tmp"}
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert volumes["config"]["configMap"]["name"] == settings_config_map(docs)["metadata"]["name"]
    assert volumes["config"]["configMap"]["items"] == [{"key": "config.yaml", "path": "config.yaml"}]


def config_of(docs: list[dict]) -> dict:
    return yaml.safe_load(settings_config_map(docs)["data"]["config.yaml"])


def expected_config(values: dict) -> dict:
    return {
        **values["settings"],
        "watchNamespaces": values["watchNamespaces"],
        "logFormat": values["logFormat"],
        "metrics": values["metrics"],
    }


def test_configmap_holds_exactly_the_default_settings() -> None:
    assert config_of(render()) == expected_config(VALUES)


def test_configmap_holds_exactly_custom_settings(tmp_path: Path) -> None:
    custom = {
        "watchNamespaces": ["team-a"],
        "logFormat": "text",
        "metrics": {"enabled": True, "port": 9443},
        "settings": {
            "maxSnapshotsPerVM": 3,
            "snapshotCreateTimeout": "1h30m",
            "appendDisplayNameToInstanceName": True,
            "maxVMsPerHost": 20,
            "isoUrlRules": {"allowedCIDRs": ["10.20.30.0/24", "fd00:1234::/48"], "clusterCIDRs": ["10.0.0.0/16"]},
            "isoImport": {"maxAttempts": 3, "failAfter": "20m"},
            "defaultStorageClass": "ceph-rbd.fast",
            "exposeServiceType": "NodePort",
            "hostDownAfter": "90s",
            "watchInactivityTimeout": "45s",
            "schedulerNames": {"spread": "default-scheduler", "pack": "bin-packing"},
        },
    }
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(custom))
    assert config_of(render("-f", str(values_file))) == expected_config({**VALUES, **custom})


def test_a_settings_change_changes_the_pod_template_checksum() -> None:
    def checksum(*args: str) -> str:
        return one(render(*args), "Deployment")["spec"]["template"]["metadata"]["annotations"]["checksum/config"]

    assert checksum() == checksum()
    assert checksum() != checksum("--set", "settings.maxSnapshotsPerVM=5")
    assert checksum() != checksum("--set", "logFormat=text")


BAD_VALUES = [
    # (--set argument, the field path the message must name, and what it must say)
    ("replicas=6", "/replicas", "maximum"),
    ("replicas=-1", "/replicas", "minimum"),
    ("settings.maxSnapshotsPerVM=0", "/settings/maxSnapshotsPerVM", "minimum"),
    ("settings.maxSnapshotsPerVM=many", "/settings/maxSnapshotsPerVM", "want integer"),
    ("settings.snapshotCreateTimeout=30 minutes", "/settings/snapshotCreateTimeout", "does not match pattern"),
    ("settings.hostDownAfter=3", "/settings/hostDownAfter", ""),
    ("settings.exposeServiceType=ClusterIP", "/settings/exposeServiceType", "LoadBalancer"),
    ("settings.isoUrlRules.allowedCIDRs={10.0.0.0/33}", "/settings/isoUrlRules/allowedCIDRs/0", "10.0.0.0/33"),
    ("settings.isoUrlRules.allowedCIDRs={example.com}", "/settings/isoUrlRules/allowedCIDRs/0", "example.com"),
    ("settings.defaultStorageClass=Fast_SSD", "/settings/defaultStorageClass", "does not match pattern"),
    ("settings.maxVMsPerHost=-1", "/settings/maxVMsPerHost", "minimum"),
    ("settings.appendDisplayNameToInstanceName=yes", "/settings/appendDisplayNameToInstanceName", "want boolean"),
    ("settings.maxSnapshotPerVM=3", "/settings", "'maxSnapshotPerVM' not allowed"),
    ("watchNamespaces={Team_A}", "/watchNamespaces/0", "does not match pattern"),
    ("watchNamespaces={a,a}", "/watchNamespaces", "items at 0 and 1 are equal"),
    ("logFormat=xml", "/logFormat", "json"),
    ("metrics.port=8080", "/metrics/port", "not"),
    ("metrics.port=80", "/metrics/port", "minimum"),
    ("image.digest=sha256:abc", "/image/digest", "does not match pattern"),
    ("image.pullPolicy=Sometimes", "/image/pullPolicy", "IfNotPresent"),
    ("resources.requests.memory=lots", "/resources/requests/memory", "does not match pattern"),
    ("resources.limits=null", "/resources", "limits"),
]


@pytest.mark.parametrize(("setting", "path", "says"), BAD_VALUES, ids=[case[0] for case in BAD_VALUES])
def test_schema_rejects_bad_values_naming_the_field(setting: str, path: str, says: str) -> None:
    result = helm("template", RELEASE, str(CHART), "--kube-version", KUBE_VERSION, "--set", setting, check=False)
    assert result.returncode != 0, f"{setting} was accepted"
    assert "don't meet the specifications of the schema" in result.stderr
    assert f"at '{path}'" in result.stderr, result.stderr
    assert says in result.stderr, result.stderr


def test_lint_rejects_bad_values_too() -> None:
    result = helm(
        "lint", str(CHART), "--kube-version", KUBE_VERSION, "--set", "settings.maxSnapshotsPerVM=0", check=False
    )
    assert result.returncode != 0
    assert "/settings/maxSnapshotsPerVM" in result.stdout + result.stderr


def test_service_monitor_needs_metrics() -> None:
    result = helm(
        "template", RELEASE, str(CHART), "--kube-version", KUBE_VERSION,
        "--set", "serviceMonitor.enabled=true", "--set", "metrics.enabled=false", check=False,
    )  # fmt: skip
    assert result.returncode != 0 and "at '/metrics/enabled'" in result.stderr


def test_metrics_service_uses_the_port_from_values() -> None:
    service = one(render("--set", "metrics.port=9443"), "Service")
    ports = {port["name"]: port for port in service["spec"]["ports"]}
    assert ports["metrics"]["port"] == 9443 and ports["metrics"]["targetPort"] == "metrics"
    assert ports["healthz"]["port"] == 8080
    assert service["spec"]["selector"] == {"app.kubernetes.io/name": "virtstack", "app.kubernetes.io/instance": RELEASE}
    without = one(render("--set", "metrics.enabled=false"), "Service")
    assert [port["name"] for port in without["spec"]["ports"]] == ["healthz"]


def test_service_monitor_only_when_enabled_and_its_crd_exists() -> None:
    crd = ("--api-versions", "monitoring.coreos.com/v1/ServiceMonitor")
    assert not by_kind(render(*crd), "ServiceMonitor"), "off by default"
    assert not by_kind(render("--set", "serviceMonitor.enabled=true"), "ServiceMonitor"), "no CRD: install still works"
    monitor = one(render("--set", "serviceMonitor.enabled=true", *crd), "ServiceMonitor")
    assert monitor["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "30s"}]
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}


def test_helm_test_pod_checks_liveness_through_the_service() -> None:
    pod = one(render(show_only="templates/tests/test-liveness.yaml"), "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert pod["spec"]["restartPolicy"] == "Never"
    (container,) = pod["spec"]["containers"]
    assert container["command"][:2] == ["python", "-c"]
    assert container["command"][-1] == f"http://vs-virtstack.{NAMESPACE}.svc:8080/healthz"


def test_scheduling_doc_shows_the_testbed_scheduler_profiles() -> None:
    text = (REPO / "docs" / "scheduling.md").read_text()
    first_block = re.search(r"```yaml\n(.*?)```", text, re.S).group(1)
    expected = scheduler_configuration("unused")
    del expected["clientConnection"], expected["leaderElection"]
    assert yaml.safe_load(first_block) == expected
    schedulers = {profile["schedulerName"] for profile in expected["profiles"]}
    assert schedulers == set(VALUES["settings"]["schedulerNames"].values())


def test_dockerfile_is_small_non_root_and_pinned() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "ARG PYTHON_IMAGE=python:3.11-slim-bookworm" in dockerfile
    assert re.search(r"^USER 65532:65532$", dockerfile, re.M)
    assert "PYTHONDONTWRITEBYTECODE=1" in dockerfile
    assert 'ENTRYPOINT ["virtstack"]' in dockerfile
    ignored = (REPO / ".dockerignore").read_text().split()
    assert ignored[ignored.index("*") :][:4] == ["*", "!pyproject.toml", "!README.md", "!operator/"]


def test_chart_defaults_are_the_operators_own_defaults(tmp_path: Path) -> None:
    """Installing with default values configures the operator exactly as running it with no config file."""
    path = tmp_path / "config.yaml"
    path.write_text(settings_config_map(render())["data"]["config.yaml"])
    assert load_settings(str(path)) == Settings()


def test_url_rules_are_the_settings_written_into_the_admission_policy() -> None:
    """The chart's policy and binding are what url_rules_policy builds from the same settings."""
    rules = {"allowedCIDRs": ["10.20.30.0/24", "fd00:1234::/48"], "clusterCIDRs": ["10.0.0.0/24"]}
    args = [f"--set-json=settings.isoUrlRules={json.dumps(rules)}"]
    rendered = render(*args, show_only="templates/url-rules.yaml")
    expected = url_rules_policy(IsoUrlRules.model_validate(rules), f"{RELEASE}-virtstack-url-rules")
    assert rendered == expected
    assert not any("paramKind" in doc["spec"] or "paramRef" in doc["spec"] for doc in rendered), (
        "no ConfigMap parameter: the API server can lose core-type params for good"
    )


def test_replicas_beyond_one_get_spread_over_nodes_and_a_disruption_budget() -> None:
    single = render()
    assert (
        not by_kind(single, "PodDisruptionBudget")
        and "affinity" not in one(single, "Deployment")["spec"]["template"]["spec"]
    )
    docs = render("--set", "replicas=2")
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    selector = deployment["spec"]["selector"]["matchLabels"]
    (term,) = deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    assert term["podAffinityTerm"] == {
        "topologyKey": "kubernetes.io/hostname",
        "labelSelector": {"matchLabels": selector},
    }
    budget = one(docs, "PodDisruptionBudget")
    assert budget["spec"] == {"minAvailable": 1, "selector": {"matchLabels": selector}}
    custom = render("--set", "replicas=2", "--set", "affinity.nodeAffinity.x=y")
    assert one(custom, "Deployment")["spec"]["template"]["spec"]["affinity"] == {"nodeAffinity": {"x": "y"}}
