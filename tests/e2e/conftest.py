"""The operator's end-to-end fixtures: our CRDs installed and the operator running as a process."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from virtstack.api.crd import all_crds
from virtstack.api.policies import url_rules_policy
from virtstack.api.settings import IsoUrlRules
from virtstack.cli import ADMISSION_POLICIES
from virtstack_testbed.pki import SERVICE_CIDR
from virtstack_testbed.processes import free_port, log_tail
from virtstack_testbed.testing import Cluster, wait_for
from virtstack_testbed.topology import POD_CIDR_BASE

REPO = Path(__file__).resolve().parents[2]
# NodePort: a LoadBalancer never gets an address without a cloud controller. hostDownAfter: seconds, not minutes.
# ISO URLs may point at the tests' HTTP server on 127.0.0.1 (only that address of the loopback range),
# and a failing download gives up after two attempts.
OPERATOR_SETTINGS = {
    "exposeServiceType": "NodePort",
    "hostDownAfter": "10s",
    "isoUrlRules": {"allowedCIDRs": ["127.0.0.1/32"], "clusterCIDRs": [SERVICE_CIDR, str(POD_CIDR_BASE)]},
    "isoImport": {"maxAttempts": 2},
}
URL_RULES = "virtstack-e2e-url-rules"  # the admission side of the same isoUrlRules


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e" in str(item.path):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def virtstack_crds(cluster: Cluster) -> None:
    cluster.kubectl(
        "apply", "--server-side", "--field-manager=virtstack-e2e", "--validate=strict", "-f", str(REPO / "crds")
    )
    names = [f"crd/{crd['metadata']['name']}" for crd in all_crds()]
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", *names)
    cluster.kubectl(
        "apply",
        "--server-side",
        "--field-manager=virtstack-e2e",
        "--validate=strict",
        "-f",
        str(REPO / ADMISSION_POLICIES),
    )
    rules = IsoUrlRules.model_validate(OPERATOR_SETTINGS["isoUrlRules"])
    cluster.apply(*url_rules_policy(rules, URL_RULES))


class Operator:
    """The operator as a real process with its own event loop, as it runs in production; killable."""

    def __init__(
        self,
        cluster: Cluster,
        env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
        overrides: dict | None = None,
    ) -> None:
        self.cluster = cluster
        # e.g. leader election: VIRTSTACK_LEADER_ELECTION_LEASE, POD_NAME, POD_NAMESPACE; KUBECONFIG of a proxy
        self.env = env or {}
        self.args = args
        work = Path(tempfile.mkdtemp(prefix="virtstack-operator-"))
        self.log_path = work / "operator.log"  # tests read it, e.g. to prove a secret never reached it
        self.config = work / "config.yaml"
        self.metrics_port = free_port()  # every operator on this machine serves its own
        metrics = {"enabled": True, "port": self.metrics_port}
        self.base_settings = {**OPERATOR_SETTINGS, "metrics": metrics, **(overrides or {})}
        self.config.write_text(yaml.safe_dump(self.base_settings))
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        port = free_port()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "virtstack", "run", f"--liveness=http://127.0.0.1:{port}/healthz", *self.args],
                env={
                    **os.environ,
                    "KUBECONFIG": self.cluster.kubeconfig,
                    "VIRTSTACK_CONFIG": str(self.config),
                    **self.env,
                },
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process = self.process
        wait_for(lambda: process.poll() is not None or _healthy(port), 60, "the operator's liveness endpoint")
        assert process.poll() is None, f"operator exited: {log_tail(str(self.log_path), 20)}"

    @contextmanager
    def settings(self, **overrides: object) -> Iterator[None]:
        """Run with these settings inside the block (a restart: settings are read at start), the usual after."""
        self._restart({**self.base_settings, **overrides})
        try:
            yield
        finally:
            self._restart(self.base_settings)

    def _restart(self, settings: dict) -> None:
        self.stop()
        self.config.write_text(yaml.safe_dump(settings))
        self.start()

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, as a crash or an OOM kill."""
        self.process.kill()
        self.process.wait()

    @contextmanager
    def stopped(self) -> Iterator[None]:
        """Not running inside the block, so that another operator works alone; started again (listing afresh) after."""
        self.stop()
        try:
            yield
        finally:
            self.start()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()


@pytest.fixture(scope="session")
def operator(cluster: Cluster, virtstack_crds: None):
    running = Operator(cluster)
    running.start()
    try:
        yield running
    finally:
        running.stop()
        if running.process.returncode not in (0, -15):
            print(f"operator log: {running.log_path}")


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:  # noqa: S310
            return response.status == 200
    except OSError:
        return False
