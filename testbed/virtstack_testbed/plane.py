"""A real Kubernetes control plane on 127.0.0.1: etcd, kube-apiserver, controller-manager, scheduler, kwok nodes.

Every process is started by PID and recorded in `<run_dir>/state.json`, so `testbed down` (another
process) stops exactly what `testbed up` started, in reverse order.
"""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from .binaries import Binaries, ensure_binaries
from .errors import TestbedError
from .pki import SERVICE_CIDR, Pki, create_pki, pki_at
from .processes import ProcessRecord, ensure_port_free, free_port, start_process, wait_until
from .simulator.node import node_ready
from .topology import Topology, node_ip, node_manifest, pod_cidr

FIELD_MANAGER = "virtstack-testbed"
# Seconds without a kwok heartbeat before the node-lifecycle controller marks a node NotReady.
NODE_MONITOR_GRACE_SECONDS = 20
PACK_SCHEDULER = "virtstack-pack"
AUDIT_LOG = "audit.log"


@dataclass
class Plane:
    """A running control plane; every field survives a round trip through state.json."""

    run_dir: str
    kubeconfig: str
    server: str
    binaries: dict[str, str]
    topology: list[dict]
    etcd_url: str = ""
    processes: dict[str, ProcessRecord] = field(default_factory=dict)
    commands: dict[str, list[str]] = field(default_factory=dict)  # how each process was started: restartable

    # --- persistence -------------------------------------------------------------------------
    @property
    def state_file(self) -> Path:
        return Path(self.run_dir) / "state.json"

    def save(self) -> None:
        data = asdict(self)
        self.state_file.write_text(json.dumps(data, indent=2))

    @classmethod
    def load(cls, run_dir: Path) -> Plane:
        state = run_dir / "state.json"
        if not state.exists():
            raise TestbedError(f"no testbed state in {run_dir}", "start one with 'testbed up'")
        data = json.loads(state.read_text())
        data["processes"] = {name: ProcessRecord(**record) for name, record in data["processes"].items()}
        return cls(**data)

    # --- processes ---------------------------------------------------------------------------
    def start(self, name: str, args: list[str], env: dict[str, str] | None = None) -> ProcessRecord:
        """Start and record a process; recorded at once so a failure later still stops it."""
        record = start_process(name, args, Path(self.run_dir) / "logs", env)
        self.processes[name] = record
        self.commands[name] = args
        self.save()
        return record

    def restart_control_plane(self, name: str, down_seconds: float = 0.0) -> None:
        """Stop etcd or kube-apiserver (SIGTERM), leave it down a while, start it as before, wait until it serves.

        Same command, ports and data: clients see the outage of a real restart and must reconnect.
        """
        health = {"etcd": f"{self.etcd_url}/health", "kube-apiserver": f"{self.server}/readyz"}[name]
        self.stop_process(name)
        time.sleep(down_seconds)
        record = self.start(name, self.commands[name])
        context = _client_ssl_context(pki_at(Path(self.run_dir) / "pki")) if name == "kube-apiserver" else None
        wait_until(lambda: _http_ok(health, context), 90, f"waiting for {name} after its restart", record)

    def stop_process(self, name: str) -> None:
        record = self.processes.pop(name, None)
        if record is not None:
            record.stop()
            self.save()

    def stop(self, keep_logs: bool = False) -> None:
        """Stop every recorded process, newest first; then remove the run directory, or all but its logs."""
        for name in reversed(list(self.processes)):
            self.processes[name].stop()
        self.processes.clear()
        if not keep_logs:
            shutil.rmtree(self.run_dir, ignore_errors=True)
            return
        for entry in Path(self.run_dir).iterdir():
            if entry.name != "logs":
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()

    # --- hosts -------------------------------------------------------------------------------
    def kwok_name(self, node: str) -> str:
        return f"kwok-{node}"

    def fail_node(self, node: str) -> None:
        """A host failure: its kwok stops heartbeating, as a dead kubelet would."""
        record = self.processes.get(self.kwok_name(node))
        if record is None:
            raise TestbedError(f"no kwok process for node {node}", f"nodes are: {', '.join(self.node_names())}")
        record.kill()
        del self.processes[self.kwok_name(node)]
        self.save()

    def recover_node(self, node: str) -> None:
        index = self.node_names().index(node)
        self._start_kwok(node, index)

    def node_names(self) -> list[str]:
        return [host["name"] for host in self.topology]

    def _start_kwok(self, node: str, index: int) -> None:
        self.start(
            self.kwok_name(node),
            [
                self.binaries["kwok"],
                f"--kubeconfig={self.kubeconfig}",
                "--manage-all-nodes=false",
                f"--manage-single-node={node}",
                "--node-lease-duration-seconds=40",
                f"--cidr={pod_cidr(index)}",
                f"--node-ip={node_ip(index)}",
                f"--server-address=127.0.0.1:{free_port()}",
            ],
        )

    # --- the API -----------------------------------------------------------------------------
    def kubectl(self, *args: str, input_text: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [self.binaries["kubectl"], f"--kubeconfig={self.kubeconfig}", *args],
            input=input_text,
            capture_output=True,
            text=True,
            check=False,
        )
        if check and result.returncode != 0:
            raise TestbedError(
                f"kubectl {' '.join(args[:2])} failed: {' '.join(result.stderr.split())[:500]}",
                "the API server's message above names the field to correct",
            )
        return result

    def apply(self, manifests: list[dict]) -> None:
        """Server-side apply with strict field validation: a misspelled field fails loudly."""
        text = yaml.safe_dump_all(manifests, sort_keys=False)
        self.kubectl(
            "apply",
            "--server-side",
            "--force-conflicts",
            f"--field-manager={FIELD_MANAGER}",
            "--validate=strict",
            "-f",
            "-",
            input_text=text,
        )

    def apply_files(self, *paths: Path) -> None:
        """Apply manifest files or directories (server-side, strict); CRDs among them are awaited."""
        for path in paths:
            self.kubectl(
                "apply", "--server-side", f"--field-manager={FIELD_MANAGER}", "--validate=strict", "-f", str(path)
            )
        crds = [
            doc["metadata"]["name"]
            for path in paths
            for file in (sorted(path.glob("*.yaml")) if path.is_dir() else [path])
            for doc in yaml.safe_load_all(file.read_text())
            if doc and doc["kind"] == "CustomResourceDefinition"
        ]
        if crds:
            self.wait_for_crds(crds)

    def wait_for_crds(self, names: list[str], timeout: float = 60) -> None:
        self.kubectl(
            "wait", "--for=condition=Established", f"--timeout={int(timeout)}s", *(f"crd/{name}" for name in names)
        )


def start_plane(run_dir: Path, topology: Topology, apiserver_port: int | None = None, log=print) -> Plane:
    """Build or reuse binaries, start every component, create the nodes; on failure stop what started."""
    if (run_dir / "state.json").exists():
        raise TestbedError(
            f"a testbed already runs from {run_dir}", "stop it with 'testbed down' or pick another --run-dir"
        )
    if apiserver_port is not None:
        ensure_port_free(apiserver_port, "kube-apiserver")
    binaries = ensure_binaries(log)
    run_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    pki = create_pki(run_dir / "pki")
    port = apiserver_port or free_port()
    plane = Plane(
        run_dir=str(run_dir),
        kubeconfig=str(run_dir / "kubeconfig"),
        server=f"https://127.0.0.1:{port}",
        binaries={name: str(path) for name, path in _binary_map(binaries).items()},
        topology=[host.model_dump(by_alias=True) for host in topology.nodes],
    )
    plane.save()
    try:
        _write_kubeconfig(Path(plane.kubeconfig), plane.server, pki)
        _start_etcd(plane)
        _start_apiserver(plane, pki, port)
        _start_controllers(plane, pki)
        _create_nodes(plane, topology)
    except BaseException:
        plane.stop(keep_logs=True)
        raise
    log(f"control plane up in {time.monotonic() - started:.1f} s: {plane.server} (kubeconfig {plane.kubeconfig})")
    return plane


def _binary_map(binaries: Binaries) -> dict[str, Path]:
    """kube_apiserver -> kube-apiserver: the command names, as log and process names."""
    return {name.replace("_", "-"): getattr(binaries, name) for name in binaries.__dataclass_fields__}


def _start_etcd(plane: Plane) -> None:
    client, peer = free_port(), free_port()
    record = plane.start(
        "etcd",
        [
            plane.binaries["etcd"],
            f"--data-dir={Path(plane.run_dir) / 'etcd'}",
            f"--listen-client-urls=http://127.0.0.1:{client}",
            f"--advertise-client-urls=http://127.0.0.1:{client}",
            f"--listen-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-cluster=default=http://127.0.0.1:{peer}",
            "--listen-metrics-urls=",
            "--unsafe-no-fsync",
            "--log-level=warn",
        ],
    )
    plane.etcd_url = f"http://127.0.0.1:{client}"
    wait_until(lambda: _http_ok(f"http://127.0.0.1:{client}/health"), 30, "waiting for etcd", record)


def _start_apiserver(plane: Plane, pki: Pki, port: int) -> None:
    record = plane.start(
        "kube-apiserver",
        [
            plane.binaries["kube-apiserver"],
            f"--etcd-servers={plane.etcd_url}",
            "--bind-address=127.0.0.1",
            f"--secure-port={port}",
            "--advertise-address=127.0.0.1",
            "--endpoint-reconciler-type=none",
            f"--tls-cert-file={pki.server_cert}",
            f"--tls-private-key-file={pki.server_key}",
            f"--client-ca-file={pki.ca_cert}",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={pki.service_account_pub}",
            f"--service-account-signing-key-file={pki.service_account_key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC",
            "--allow-privileged=true",
            f"--audit-policy-file={_write_audit_policy(Path(plane.run_dir))}",
            f"--audit-log-path={Path(plane.run_dir) / AUDIT_LOG}",
            "--audit-log-format=json",
            "--audit-log-mode=blocking",
        ],
    )
    context = _client_ssl_context(pki)
    wait_until(lambda: _http_ok(f"{plane.server}/readyz", context), 90, "waiting for kube-apiserver /readyz", record)


def _write_audit_policy(run_dir: Path) -> Path:
    """Record every write (no reads) with its user agent: how tests count what a client wrote."""
    policy = {
        "apiVersion": "audit.k8s.io/v1",
        "kind": "Policy",
        "omitStages": ["RequestReceived"],
        "rules": [
            {"level": "None", "verbs": ["get", "list", "watch"]},
            # Node heartbeats and the control plane's own leader elections; other Leases (an operator's) are kept.
            {
                "level": "None",
                "namespaces": ["kube-node-lease", "kube-system"],
                "resources": [{"group": "coordination.k8s.io", "resources": ["leases"]}],
            },
            {"level": "Metadata"},
        ],
    }
    path = run_dir / "audit-policy.yaml"
    path.write_text(yaml.safe_dump(policy, sort_keys=False))
    return path


def _start_controllers(plane: Plane, pki: Pki) -> None:
    kubeconfig = plane.kubeconfig
    plane.start(
        "kube-controller-manager",
        [
            plane.binaries["kube-controller-manager"],
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            "--secure-port=0",
            f"--service-account-private-key-file={pki.service_account_key}",
            f"--root-ca-file={pki.ca_cert}",
            f"--cluster-signing-cert-file={pki.ca_cert}",
            f"--cluster-signing-key-file={pki.ca_key}",
            "--use-service-account-credentials",
            "--controllers=*",
            f"--node-monitor-grace-period={NODE_MONITOR_GRACE_SECONDS}s",
        ],
    )
    config = Path(plane.run_dir) / "scheduler.yaml"
    config.write_text(yaml.safe_dump(scheduler_configuration(kubeconfig), sort_keys=False))
    record = plane.start(
        "kube-scheduler",
        [
            plane.binaries["kube-scheduler"],
            f"--config={config}",
            "--bind-address=127.0.0.1",
            "--secure-port=0",
        ],
    )
    wait_until(
        lambda: plane.kubectl("get", "serviceaccount", "default", "-n", "default", check=False).returncode == 0,
        60,
        "waiting for the controller-manager to create the default ServiceAccount",
        plane.processes["kube-controller-manager"],
    )
    if not record.is_running():
        raise TestbedError(f"kube-scheduler exited: see {record.log}", "check the scheduler configuration")


def scheduler_configuration(kubeconfig: str) -> dict:
    """The default (spread: LeastAllocated) profile and a pack profile (MostAllocated)."""
    return {
        "apiVersion": "kubescheduler.config.k8s.io/v1",
        "kind": "KubeSchedulerConfiguration",
        "clientConnection": {"kubeconfig": kubeconfig},
        "leaderElection": {"leaderElect": False},
        "profiles": [
            {"schedulerName": "default-scheduler"},
            {
                "schedulerName": PACK_SCHEDULER,
                "pluginConfig": [
                    {
                        "name": "NodeResourcesFit",
                        "args": {
                            "scoringStrategy": {
                                "type": "MostAllocated",
                                "resources": [{"name": "cpu", "weight": 1}, {"name": "memory", "weight": 1}],
                            }
                        },
                    }
                ],
            },
        ],
    }


def _create_nodes(plane: Plane, topology: Topology) -> None:
    try:
        plane.apply([node_manifest(host, index) for index, host in enumerate(topology.nodes)])
    except TestbedError as error:
        raise TestbedError(
            f"the API server refused the topology's nodes: {error.cause}",
            "correct the node values in the topology file (quantities look like 16, 500m, 64Gi)",
        ) from None
    for index, host in enumerate(topology.nodes):
        plane._start_kwok(host.name, index)
    names = [host.name for host in topology.nodes]
    wait_until(lambda: _nodes_ready_and_untainted(plane, names), 60, "waiting for kwok nodes to become Ready")


def nodes_status(plane: Plane) -> dict[str, dict]:
    result = plane.kubectl("get", "nodes", "-o", "json")
    return {item["metadata"]["name"]: item for item in json.loads(result.stdout)["items"]}


def _nodes_ready_and_untainted(plane: Plane, names: list[str]) -> bool:
    nodes = nodes_status(plane)
    return all(
        name in nodes and node_ready(nodes[name]) and not nodes[name].get("spec", {}).get("taints") for name in names
    )


def _write_kubeconfig(path: Path, server: str, pki: Pki) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "virtstack-testbed", "cluster": {"server": server, "certificate-authority": str(pki.ca_cert)}}
        ],
        "users": [
            {
                "name": "testbed-admin",
                "user": {"client-certificate": str(pki.admin_cert), "client-key": str(pki.admin_key)},
            }
        ],
        "contexts": [
            {"name": "virtstack-testbed", "context": {"cluster": "virtstack-testbed", "user": "testbed-admin"}}
        ],
        "current-context": "virtstack-testbed",
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)


def _client_ssl_context(pki: Pki) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    context.load_cert_chain(str(pki.admin_cert), str(pki.admin_key))
    return context


def _http_ok(url: str, context: ssl.SSLContext | None = None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as response:  # noqa: S310 - loopback only
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError, ssl.SSLError):
        return False
