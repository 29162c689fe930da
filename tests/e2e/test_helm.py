"""The Helm chart against the control plane: install, upgrade, uninstall, RBAC, and `helm test`.

kwok runs no containers: it marks every scheduled pod Running and Ready and, by its default
stages, completes only pods owned by a Job. A `helm test` pod would therefore stay Running and
`helm test` would time out. The test below plays the kubelet for that one pod: it runs the pod's
own command (the operator image's Python check) against the operator's liveness endpoint, then
reports the exit code as the pod's phase, the way a kubelet would. Everything else (the hook, its
creation under Pod Security `restricted`, helm waiting on the phase and reporting it) is real.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from virtstack.objects import condition_of
from virtstack_testbed.plane import AUDIT_LOG
from virtstack_testbed.processes import free_port, log_tail
from virtstack_testbed.testing import Cluster, wait_condition, wait_for

from .conftest import Operator

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "virtstack"
POLICIES = CHART / "templates" / "admission-policies.yaml"
pytestmark = pytest.mark.usefixtures("virtstack_crds", "policies_left_to_helm")


@pytest.fixture
def policies_left_to_helm(cluster: Cluster, virtstack_crds: None):
    """The session applies the chart's admission policies with kubectl; a release must own them itself.

    Helm refuses to adopt objects another manager created, so they are removed for the release
    to create, and applied again (as the session fixture does) once it is uninstalled.
    """
    if not POLICIES.exists():
        yield
        return
    cluster.kubectl("delete", "--ignore-not-found", "--wait=true", "-f", str(POLICIES))
    try:
        yield
    finally:
        cluster.kubectl(
            "apply", "--server-side", "--force-conflicts", "--field-manager=virtstack-e2e", "--validate=strict",
            "-f", str(POLICIES),
        )  # fmt: skip


class Helm:
    def __init__(self, binary: str, kubeconfig: str, home: Path) -> None:
        self.binary = binary
        self.env = {
            **os.environ,
            "KUBECONFIG": kubeconfig,
            "HELM_CACHE_HOME": str(home / "cache"),
            "HELM_CONFIG_HOME": str(home / "config"),
            "HELM_DATA_HOME": str(home / "data"),
        }

    def __call__(self, *args: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [self.binary, *args], env=self.env, capture_output=True, text=True, check=False, timeout=timeout
        )
        if check and result.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed: {result.stderr}")
        return result

    def start(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen(
            [self.binary, *args], env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )


@pytest.fixture(scope="module")
def helm(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Helm:
    binary = cluster.plane.binaries["helm"] if cluster.plane else shutil.which("helm")
    assert binary, "helm is needed: `testbed build`, or on PATH against an existing cluster"
    return Helm(str(binary), cluster.kubeconfig, tmp_path_factory.mktemp("helm"))


def restricted_namespace(cluster: Cluster, namespace: str) -> None:
    """Pod Security admission enforces `restricted`: a pod that breaks it is refused by the API server."""
    cluster.kubectl(
        "label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/enforce-version=latest", "--overwrite",
    )  # fmt: skip


def release_name(namespace: str) -> str:
    return f"vs-{namespace.removeprefix('e2e-')}"  # cluster-scoped RBAC names stay unique per test


def can_i(cluster: Cluster, account: str, *args: str) -> bool:
    result = cluster.kubectl("auth", "can-i", f"--as={account}", *args, check=False)
    return result.stdout.strip() == "yes"


def deployment(cluster: Cluster, name: str, namespace: str) -> dict:
    found = cluster.get("deployment", name, namespace)
    assert found, f"deployment {name} missing"
    return found


def test_install_upgrade_and_uninstall(cluster: Cluster, namespace: str, helm: Helm) -> None:
    restricted_namespace(cluster, namespace)
    release = release_name(namespace)
    fullname = f"{release}-virtstack"

    dry = helm("install", release, str(CHART), "-n", namespace, "--dry-run=server")
    assert "kind: Deployment" in dry.stdout, "the server-side dry run renders against the real API versions"
    for scope in ([], ["--set", f"watchNamespaces={{{namespace}}}"], ["--set", "replicas=2"]):
        rendered = helm("template", release, str(CHART), "-n", namespace, "--kube-version=1.35.4", *scope).stdout
        cluster.kubectl(
            "apply", "--dry-run=server", "--validate=strict", "-n", namespace, "-f", "-", input_text=rendered
        )  # every field known to the API server, as for every other write here

    installed = helm(
        "install", release, str(CHART), "-n", namespace, "--wait", "--timeout=120s",
        "--set", "serviceMonitor.enabled=true",
    )  # fmt: skip
    assert "helm test" in installed.stdout, "NOTES are shown"
    assert "no ServiceMonitor was created" in installed.stdout, "no Prometheus Operator here: a note, not a failure"
    assert "kind: ServiceMonitor" not in helm("get", "manifest", release, "-n", namespace).stdout

    for kind, name in [
        ("serviceaccount", fullname),
        ("configmap", f"{fullname}-config"),
        ("service", fullname),
        ("role", f"{fullname}-leader-election"),
        ("rolebinding", f"{fullname}-leader-election"),
    ]:
        assert cluster.get(kind, name, namespace), f"{kind}/{name} not created"
    for kind in ("clusterrole", "clusterrolebinding"):
        for name in (fullname, f"{fullname}-cluster"):
            assert cluster.get(kind, name), f"{kind}/{name} not created"
    before = deployment(cluster, fullname, namespace)
    assert before["status"]["availableReplicas"] == 1, "the pod passed Pod Security `restricted` admission"
    config = yaml.safe_load(cluster.get("configmap", f"{fullname}-config", namespace)["data"]["config.yaml"])
    assert config["maxSnapshotsPerVM"] == 10

    account = f"system:serviceaccount:{namespace}:{fullname}"
    assert can_i(cluster, account, "create", "virtualmachines.kubevirt.io", "-n", "default")
    assert can_i(cluster, account, "patch", "virtualmachines.virtstack.io", "--subresource=status", "-n", "default")
    assert can_i(cluster, account, "watch", "nodes")
    assert can_i(cluster, account, "update", f"leases/{fullname}-leader", "-n", namespace)
    assert not can_i(cluster, account, "update", "leases/someone-else", "-n", namespace), "only its own Lease"
    assert not can_i(cluster, account, "create", "virtualmachines.virtstack.io", "-n", "default"), "users create VMs"
    assert not can_i(cluster, account, "update", "virtualmachines.virtstack.io", "--subresource=status", "-n", "x")
    assert not can_i(cluster, account, "delete", "nodes")
    assert not can_i(cluster, account, "get", "configmaps", "-n", "default")
    assert not can_i(cluster, account, "create", "pods", "-n", "default")

    helm("upgrade", release, str(CHART), "-n", namespace, "--reuse-values", "--wait", "--timeout=120s")
    unchanged = deployment(cluster, fullname, namespace)
    assert unchanged["metadata"]["generation"] == before["metadata"]["generation"], "no change, no rollout"

    helm(
        "upgrade", release, str(CHART), "-n", namespace, "--reuse-values", "--wait", "--timeout=120s",
        "--set", "settings.maxSnapshotsPerVM=5",
    )  # fmt: skip
    after = deployment(cluster, fullname, namespace)
    annotation = "checksum/config"
    old, new = (d["spec"]["template"]["metadata"]["annotations"][annotation] for d in (before, after))
    assert old != new, "a settings change changes the pod template"
    assert after["metadata"]["generation"] > before["metadata"]["generation"]
    assert after["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2", "a new ReplicaSet rolled out"
    history = json.loads(helm("history", release, "-n", namespace, "--output=json").stdout)
    assert [entry["revision"] for entry in history] == [1, 2, 3]
    cluster.kubectl("rollout", "status", f"deployment/{fullname}", "-n", namespace, "--timeout=60s")
    config = yaml.safe_load(cluster.get("configmap", f"{fullname}-config", namespace)["data"]["config.yaml"])
    assert config["maxSnapshotsPerVM"] == 5

    def one_current_pod() -> list[dict]:
        pods = cluster.list("pods", namespace, selector=f"app.kubernetes.io/instance={release}")
        return pods if [p["metadata"]["annotations"].get(annotation) for p in pods] == [new] else []

    wait_for(one_current_pod, 60, "the old pod replaced by one with the new config")

    helm("uninstall", release, "-n", namespace, "--wait", "--timeout=60s")
    for kind, name, ns in [
        ("deployment", fullname, namespace),
        ("serviceaccount", fullname, namespace),
        ("configmap", f"{fullname}-config", namespace),
        ("service", fullname, namespace),
        ("role", f"{fullname}-leader-election", namespace),
        ("rolebinding", f"{fullname}-leader-election", namespace),
        ("clusterrole", fullname, None),
        ("clusterrole", f"{fullname}-cluster", None),
        ("clusterrolebinding", fullname, None),
        ("clusterrolebinding", f"{fullname}-cluster", None),
    ]:
        assert cluster.get(kind, name, ns) is None, f"{kind}/{name} left behind"
    assert cluster.get("crd", "virtualmachines.virtstack.io"), "helm never deletes CRDs (users' VMs live in them)"


def token_kubeconfig(cluster: Cluster, namespace: str, account: str, path: Path) -> Path:
    """A kubeconfig that authenticates as the chart's ServiceAccount, as the pod's token would."""
    token = cluster.kubectl("create", "token", account, "-n", namespace, "--duration=1h").stdout.strip()
    admin = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])["context"]
    server = next(c for c in admin["clusters"] if c["name"] == context["cluster"])
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [server],
                "users": [{"name": account, "user": {"token": token}}],
                "contexts": [{"name": account, "context": {"cluster": server["name"], "user": account}}],
                "current-context": account,
            }
        )
    )
    return path


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:  # noqa: S310
            return response.status == 200
    except OSError:
        return False


def helm_test_with_kubelet_stand_in(cluster: Cluster, helm: Helm, release: str, namespace: str, port: int):
    """Run `helm test`; when kwok reports the test pod Running, run its command here and report the result."""
    pod_name = f"{release}-virtstack-test-liveness"
    process = helm.start("test", release, "-n", namespace, "--timeout=90s")
    try:
        pod = wait_for(
            lambda: (p := cluster.get("pod", pod_name, namespace)) and p["status"].get("phase") == "Running" and p,
            60,
            "the helm test pod created and Running under kwok",
        )
        command = pod["spec"]["containers"][0]["command"]
        service_url = f"http://{release}-virtstack.{namespace}.svc:8080/healthz"
        assert command[0] == "python" and command[-1] == service_url
        # The Service's healthz port leads to the operator's liveness port; here the operator is a local process.
        run = subprocess.run(
            [sys.executable, *command[1:-1], f"http://127.0.0.1:{port}/healthz"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        terminated = {"exitCode": run.returncode, "reason": "Completed" if run.returncode == 0 else "Error"}
        status = {
            "phase": "Succeeded" if run.returncode == 0 else "Failed",
            "containerStatuses": [
                {
                    "name": "liveness",
                    "image": pod["spec"]["containers"][0]["image"],
                    "imageID": "",
                    "ready": False,
                    "restartCount": 0,
                    "state": {"terminated": {**terminated, "startedAt": now, "finishedAt": now}},
                }
            ],
        }
        cluster.kubectl(
            "patch", "pod", pod_name, "-n", namespace, "--subresource=status", "--type=merge",
            "-p", json.dumps({"status": status}),
        )  # fmt: skip
        output, _ = process.communicate(timeout=90)
        return process.returncode, output, run
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def vsvm(name: str, state: str, **spec: object) -> dict:
    return {
        "apiVersion": "virtstack.io/v1alpha1",
        "kind": "VirtualMachine",
        "metadata": {"name": name},
        "spec": {
            "state": state,
            "resources": {"cpu": 1, "memory": "1Gi"},
            "source": {"template": {"image": "quay.io/containerdisks/fedora:41"}},
            **spec,
        },
    }


def vm_lifecycle(cluster: Cluster, namespace: str) -> None:
    """A generated key pair (a Secret), a VM with an exposed port (a Service) Running, snapshotted beyond
    the limit (maxSnapshotsPerVM 1) and reverted, stopped, deleted."""
    cluster.apply(
        {"apiVersion": "virtstack.io/v1alpha1", "kind": "SSHKeyPair", "metadata": {"name": "deploy"},
         "spec": {"keyType": "ed25519"}},
        namespace=namespace,
    )  # fmt: skip
    wait_condition(cluster, "sshkey", "deploy", namespace, "Ready", 60, "sshkey deploy generated", status="True")
    secret = cluster.get("sshkey", "deploy", namespace)["status"]["privateKeySecret"]
    assert cluster.get("secret", secret, namespace), "the private key's Secret was written"

    def in_state(state: str):
        def check() -> dict | None:
            vm = cluster.get("vsvm", "lifecycle", namespace) or {}
            status = vm.get("status") or {}
            ready = condition_of(vm, "Ready")
            seen = status.get("observedGeneration") == vm["metadata"]["generation"] if vm else False
            return vm if ready and ready["status"] == "True" and status.get("state") == state and seen else None

        return check

    extras = {"sshKeyPairs": ["deploy"], "expose": {"ports": [{"port": 22}]}}
    cluster.apply(vsvm("lifecycle", "Running", **extras), namespace=namespace)
    wait_for(in_state("Running"), 60, "vsvm lifecycle Running and Ready")
    wait_for(lambda: cluster.get("service", "lifecycle", namespace), 30, "the exposed VM's Service")
    requested = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    for request in ({"migration": {"requestedAt": requested}}, {"reinstallRequestedAt": requested}):
        cluster.apply(vsvm("lifecycle", "Running", **extras, **request), namespace=namespace)
        done = "lastMigratedAt" if "migration" in request else "lastReinstalledAt"
        wait_for(lambda done=done: status_of(cluster, namespace).get(done) == requested, 60, f"{done} {requested}")
        wait_for(in_state("Running"), 60, "vsvm lifecycle Running and Ready again")
    snapshots(cluster, namespace)
    cluster.apply(vsvm("lifecycle", "Stopped", **extras), namespace=namespace)
    wait_for(in_state("Stopped"), 60, "vsvm lifecycle Stopped and Ready")
    cluster.kubectl("delete", "vsvm", "lifecycle", "-n", namespace, "--wait=true", "--timeout=60s")
    wait_for(
        lambda: cluster.get("virtualmachines.kubevirt.io", "lifecycle", namespace) is None,
        60,
        "the KubeVirt VM garbage-collected with its owner",
    )


def status_of(cluster: Cluster, namespace: str) -> dict:
    return (cluster.get("vsvm", "lifecycle", namespace) or {}).get("status") or {}


def snapshots(cluster: Cluster, namespace: str) -> None:
    """Two snapshots with a limit of one (the first is deleted), and a revert to the second."""

    def snapshot(name: str, **spec: object) -> dict:
        spec = {"virtualMachine": "lifecycle", **spec}
        return {"apiVersion": "virtstack.io/v1alpha1", "kind": "VMSnapshot", "metadata": {"name": name}, "spec": spec}

    def phase(name: str) -> str | None:
        return ((cluster.get("vssnap", name, namespace) or {}).get("status") or {}).get("phase")

    cluster.apply(snapshot("first"), namespace=namespace)
    wait_for(lambda: phase("first") == "Ready", 60, "VMSnapshot first Ready")
    cluster.apply(snapshot("second"), namespace=namespace)
    wait_for(lambda: cluster.get("vssnap", "first", namespace) is None, 60, "the oldest beyond the limit deleted")
    requested = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    cluster.apply(snapshot("second", revertRequestedAt=requested), namespace=namespace)
    wait_for(
        lambda: cluster.get("vssnap", "second", namespace)["status"].get("lastRevertedAt") == requested,
        90,
        "the VM reverted to VMSnapshot second",
    )


def writes_by(cluster: Cluster, username: str) -> set[tuple[str, str, str, str, int, str]]:
    """(verb, API group, resource, subresource, response code, RBAC decision) of each write audited from a user."""
    path = Path(cluster.plane.run_dir) / AUDIT_LOG
    events = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return {
        (e["verb"], e["objectRef"].get("apiGroup", ""), e["objectRef"].get("resource", ""),
         e["objectRef"].get("subresource", ""), e["responseStatus"]["code"],
         e.get("annotations", {}).get("authorization.k8s.io/decision", ""))
        for e in events
        if e.get("stage") == "ResponseComplete" and e["user"]["username"] == username
    }  # fmt: skip


def reconciled_elsewhere(cluster: Cluster, namespace: str) -> bool:
    """Whether another operator (not this suite's: it is stopped meanwhile) already reconciles this namespace."""
    cluster.apply(vsvm("canary", "Stopped"), namespace=namespace)
    time.sleep(5)
    reconciled = bool((cluster.get("vsvm", "canary", namespace) or {}).get("status"))
    cluster.kubectl("delete", "vsvm", "canary", "-n", namespace, "--wait=false")
    return reconciled


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def operator_process(kubeconfig: Path, config: Path, namespace: str | None, log_path: Path, env: dict[str, str]):
    """The operator as the chart's pod runs it: its ServiceAccount's token, config file, namespaces and env."""
    port = free_port()
    scope = [f"--namespace={namespace}"] if namespace else []
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "virtstack", "run", *scope, f"--liveness=http://127.0.0.1:{port}/healthz"],
            env={**os.environ, **env, "KUBECONFIG": str(kubeconfig), "VIRTSTACK_CONFIG": str(config)},
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        wait_for(lambda: process.poll() is not None or healthy(port), 60, "the operator's liveness endpoint")
        assert process.poll() is None, f"operator exited: {log_tail(str(log_path), 20)}"
        yield process, port
    finally:
        stop(process)


def assert_allowed_everything(cluster: Cluster, log_path: Path, username: str) -> None:
    """No request of the operator was denied by RBAC; on the testbed, its own writes did the work.

    (A 403 for a namespace being deleted is not an RBAC denial: the cluster-wide operator may meet
    an earlier test's namespace on its way out.)
    """
    log = log_path.read_text()
    denial = re.search(r'forbidden: User \\?"[^"\\]+\\?" cannot', log)  # the message, plain or JSON-escaped
    assert not denial, f"denied by RBAC: {denial.group(0)}"
    assert "Not enough permissions" not in log, log_tail(str(log_path), 30)
    if cluster.plane is not None:
        writes = writes_by(cluster, username)
        assert not [w for w in writes if w[-1] == "forbid"], f"writes denied by RBAC: {writes}"
        assert any(w[-1] == "allow" for w in writes), "the audit log records RBAC decisions"
        succeeded = {w[:4] for w in writes if 200 <= w[4] < 300}
        assert ("patch", "kubevirt.io", "virtualmachines", "") in succeeded, writes  # server-side apply
        assert ("patch", "virtstack.io", "virtualmachines", "status") in succeeded, writes
        assert ("patch", "virtstack.io", "sshkeypairs", "status") in succeeded, writes
        assert ("create", "kubevirt.io", "virtualmachineinstancemigrations", "") in succeeded, writes
        assert {("", "secrets"), ("", "services")} <= {(w[1], w[2]) for w in succeeded}, writes
        assert {
            ("patch", "virtstack.io", "vssnapshots", ""),  # the VM's owner reference
            ("delete", "virtstack.io", "vssnapshots", ""),  # beyond maxSnapshotsPerVM
            ("patch", "virtstack.io", "vssnapshots", "status"),
            ("create", "snapshot.kubevirt.io", "virtualmachinesnapshots", ""),
            ("create", "snapshot.kubevirt.io", "virtualmachinerestores", ""),
        } <= succeeded, writes


@pytest.mark.parametrize("scope", ["namespaced", "cluster-wide"])
def test_operator_runs_with_the_chart_service_account_and_helm_test_passes(
    cluster: Cluster, namespace: str, helm: Helm, tmp_path: Path, scope: str, operator: Operator
) -> None:
    """The chart's RBAC (either scope) is enough for the operator's lifecycle, and `helm test` sees it live.

    The operator's namespace enforces Pod Security `restricted`; the VMs live in another namespace,
    as in production (KubeVirt's launcher pods are privileged).
    """
    restricted_namespace(cluster, namespace)
    vms = f"{namespace}-vms"
    cluster.kubectl("create", "namespace", vms)
    release = release_name(namespace)
    fullname = f"{release}-virtstack"
    watch = vms if scope == "namespaced" else None
    helm(
        "install", release, str(CHART), "-n", namespace, "--wait", "--timeout=120s",
        *(["--set", f"watchNamespaces={{{vms}}}"] if watch else []),
    )  # fmt: skip
    account = f"system:serviceaccount:{namespace}:{fullname}"
    assert can_i(cluster, account, "create", "virtualmachines.kubevirt.io", "-n", vms)
    assert can_i(cluster, account, "create", "virtualmachines.kubevirt.io", "-n", "default") == (watch is None)
    assert can_i(cluster, account, "list", "namespaces") == (watch is not None), "kopf follows watched namespaces"
    # The session's cluster-wide operator is stopped meanwhile: the lifecycle's writes must be this one's.
    with operator.stopped():
        # The testbed's audit log attributes each write to a user; against another cluster, make sure no
        # other operator reconciles this namespace, or the lifecycle would not prove this one's writes.
        alone = cluster.plane is not None or not reconciled_elsewhere(cluster, vms)
        kubeconfig = token_kubeconfig(cluster, namespace, fullname, tmp_path / "kubeconfig")
        as_operator = [str(cluster.kubectl_path), f"--kubeconfig={kubeconfig}"]
        # Reads only: the audit log records writes, and every write of this account must be allowed (below).
        for outside in (
            ["get", "configmaps", "-n", vms],
            ["get", "clusterroles"],
            ["get", "leases", "-n", "kube-system"],
        ):
            denied = subprocess.run([*as_operator, *outside], capture_output=True, text=True, timeout=30, check=False)
            assert denied.returncode != 0 and "Forbidden" in denied.stderr, (outside, denied.stderr)
        config = tmp_path / "config.yaml"
        chart_config = yaml.safe_load(cluster.get("configmap", f"{fullname}-config", namespace)["data"]["config.yaml"])
        chart_config["metrics"]["port"] = free_port()  # the pod's own port; here, one free on this machine
        chart_config["maxSnapshotsPerVM"] = 1  # so that the lifecycle deletes a snapshot too
        config.write_text(yaml.safe_dump(chart_config))
        log_path = tmp_path / "operator.log"
        container = deployment(cluster, fullname, namespace)["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e["value"] for e in container["env"] if "value" in e}  # POD_* come from the downward API:
        env.update(POD_NAME=f"{fullname}-0", POD_NAMESPACE=namespace)  # what it would give this pod
        del env["VIRTSTACK_CONFIG"]
        with operator_process(kubeconfig, config, watch, log_path, env) as (chart_operator, port):
            try:
                returncode, output, run = helm_test_with_kubelet_stand_in(cluster, helm, release, namespace, port)
                assert run.returncode == 0, run.stderr
                assert returncode == 0, output
                assert re.search(rf"TEST SUITE:\s+{fullname}-test-liveness", output) and re.search(
                    r"Phase:\s+Succeeded", output
                )
                wait_for(
                    lambda: cluster.get("pod", f"{fullname}-test-liveness", namespace) is None,
                    30,
                    "the succeeded test pod deleted (hook-succeeded)",
                )

                vm_lifecycle(cluster, vms)
                assert_allowed_everything(cluster, log_path, account)
                lease = cluster.get("lease", f"{fullname}-leader", namespace)
                assert lease and lease["spec"]["holderIdentity"] == f"{fullname}-0", "it leads through the chart's Role"

                stop(chart_operator)
                returncode, output, run = helm_test_with_kubelet_stand_in(cluster, helm, release, namespace, port)
                assert run.returncode != 0 and "Connection refused" in run.stderr
                assert returncode != 0 and re.search(r"Phase:\s+Failed", output), (
                    "helm test fails when the operator is down"
                )
            finally:
                helm("uninstall", release, "-n", namespace, "--wait", "--timeout=60s", check=False)
                cluster.kubectl("delete", "namespace", vms, "--wait=false", check=False)
    if not alone:
        pytest.skip(
            "no RBAC denials and helm test passed, but another operator also reconciles this namespace and this "
            "cluster has no testbed audit log to tell their writes apart: run tests/e2e/test_helm.py alone"
        )


@pytest.mark.parametrize("block", [0, 1], ids=["testbed-profiles", "second-scheduler"])
def test_scheduling_doc_configurations_are_valid_for_kube_scheduler(cluster: Cluster, block: int, tmp_path: Path):
    """kube-scheduler itself loads each configuration in docs/scheduling.md (and exits: --write-config-to)."""
    if cluster.plane is None:
        pytest.skip("needs the testbed's kube-scheduler binary")
    blocks = re.findall(r"```yaml\n(.*?)```", (REPO / "docs" / "scheduling.md").read_text(), re.S)
    configuration = yaml.safe_load(textwrap.dedent(blocks[block]))
    configuration["clientConnection"] = {"kubeconfig": cluster.kubeconfig}
    path = tmp_path / "scheduler.yaml"
    path.write_text(yaml.safe_dump(configuration))
    result = subprocess.run(
        [str(cluster.plane.binaries["kube-scheduler"]), f"--config={path}", f"--write-config-to={tmp_path / 'out'}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    written = yaml.safe_load((tmp_path / "out").read_text())
    names = [profile["schedulerName"] for profile in written["profiles"]]
    assert "virtstack-pack" in names
