"""Session fixtures shared by every end-to-end suite: a cluster and a namespace per test."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

from .cli import default_topology
from .stack import start_stack
from .testing import Cluster
from .topology import load_topology

EXISTING_CLUSTER_ENV = "VIRTSTACK_E2E_KUBECONFIG"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: needs a control plane (the local testbed, or VIRTSTACK_E2E_KUBECONFIG)")
    config.addinivalue_line(
        "markers", "simulator: needs the local simulator's fault injection (skipped against an existing cluster)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if not os.environ.get(EXISTING_CLUSTER_ENV):
        return
    for item in items:
        if item.get_closest_marker("simulator"):
            item.add_marker(pytest.mark.skip(reason="needs the local testbed's fault injection"))


@pytest.fixture(scope="session")
def cluster():
    existing = os.environ.get(EXISTING_CLUSTER_ENV)
    if existing:
        kubectl = shutil.which("kubectl")
        assert kubectl, f"{EXISTING_CLUSTER_ENV} needs kubectl on PATH"
        yield Cluster(kubeconfig=existing, kubectl_path=kubectl, plane=None)
        return
    run_dir = Path(tempfile.mkdtemp(prefix="virtstack-e2e-"))
    plane = start_stack(run_dir / "plane", load_topology(default_topology()))
    try:
        yield Cluster(kubeconfig=plane.kubeconfig, kubectl_path=plane.binaries["kubectl"], plane=plane)
    finally:
        plane.stop()
        shutil.rmtree(run_dir, ignore_errors=True)


@pytest.fixture
def namespace(cluster: Cluster):
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
