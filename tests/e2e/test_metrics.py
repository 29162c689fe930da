"""The operator's Prometheus endpoint serves every named metric, with figures that match the cluster."""

from __future__ import annotations

import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families
from virtstack_testbed.testing import Cluster, wait_for

from .conftest import Operator
from .test_walking_skeleton import vsvm

pytestmark = pytest.mark.simulator


def scrape(port: int) -> dict[tuple[str, frozenset], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:  # noqa: S310
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def total(samples: dict, name: str, **labels: str) -> float:
    """The sum over every series of `name` that has these labels (whatever its others)."""
    return sum(v for (n, have), v in samples.items() if n == name and set(labels.items()) <= have)


def test_metrics_endpoint_serves_the_named_metrics(cluster: Cluster, namespace: str, operator: Operator) -> None:
    profile = f"metrics-{namespace}"
    cluster.apply(
        {
            "apiVersion": "virtstack.io/v1alpha1",
            "kind": "GPUProfile",
            "metadata": {"name": profile},
            "spec": {"type": "VGPU", "resourceName": "nvidia.com/GRID_K240Q", "vgpuType": "GRID K240Q"},
        }
    )
    try:
        cluster.apply(vsvm("measured"), namespace=namespace)
        cluster.apply(
            {
                "apiVersion": "virtstack.io/v1alpha1",
                "kind": "VMSnapshot",
                "metadata": {"name": "measured-1"},
                "spec": {"virtualMachine": "measured"},
            },
            namespace=namespace,
        )
        samples = wait_for(
            lambda: (
                (s := scrape(operator.metrics_port))
                and value(s, "virtstack_virtual_machines", namespace=namespace, state="Running") == 1
                and value(s, "virtstack_gpu_capacity", profile=profile) == 2
                and s
            ),
            60,
            "the VM Running and the profile's capacity in the metrics",
        )
        assert value(samples, "virtstack_gpu_allocated", profile=profile) == 0
        assert value(samples, "virtstack_gpu_available", profile=profile) == 2
        snapshots = total(samples, "virtstack_vm_snapshots", namespace=namespace)
        assert snapshots == 1, "the VMSnapshot is counted, in whatever phase its status says"
        assert value(samples, "virtstack_leader") == 1, "a single operator reconciles"
        for kind in ("virtualmachine", "gpuprofile", "sshkeypair", "affinitygroup"):
            assert value(samples, "virtstack_reconcile_errors_total", kind=kind) is not None, kind
        assert value(samples, "virtstack_reconcile_duration_seconds_count", kind="virtualmachine") >= 1
        assert value(samples, "virtstack_reconcile_duration_seconds_count", kind="gpuprofile") >= 1
        applied = total(samples, "virtstack_api_requests_total", verb="apply", resource="virtualmachines.kubevirt.io")
        assert applied >= 1, "the KubeVirt VM was applied (server-side apply)"
        status = total(
            samples, "virtstack_api_requests_total", verb="patch", resource="virtualmachines.virtstack.io/status"
        )
        assert status >= 1, "the VM's status was written"
        assert total(samples, "virtstack_api_requests_total", verb="watch") == 0, "kopf's watches are not ours to count"
    finally:
        cluster.kubectl("delete", "gpuprofile", profile, "--ignore-not-found")
