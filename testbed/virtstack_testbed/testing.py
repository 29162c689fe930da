"""For tests against a cluster: kubectl-backed access, deadline polling, and the pytest fixtures.

Registered as a pytest plugin by the repository's conftest.py, so the operator's end-to-end
tests and the simulator's tests share one control plane per session.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import yaml
from virtstack.objects import condition_of

from .plane import Plane
from .simulator.guest import AGENT_ANNOTATION, GUEST_ANNOTATION
from .stack import SIMULATOR, start_simulator


@dataclass
class Cluster:
    kubeconfig: str
    kubectl_path: str
    plane: Plane | None  # None against an existing cluster: no fault injection there

    def kubectl(self, *args: str, input_text: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [self.kubectl_path, f"--kubeconfig={self.kubeconfig}", *args],
            input=input_text,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
        return result

    def apply(self, *manifests: dict, namespace: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        """Server-side apply with strict field validation, as a user's GitOps tool would."""
        args = ["apply", "--server-side", "--field-manager=e2e", "--validate=strict", "-f", "-"]
        if namespace:
            args += ["-n", namespace]
        return self.kubectl(*args, input_text=yaml.safe_dump_all(manifests), check=check)

    def get(self, resource: str, name: str, namespace: str | None = None) -> dict | None:
        args = ["get", resource, name, "-o", "json"]
        if namespace:
            args += ["-n", namespace]
        result = self.kubectl(*args, check=False)
        if result.returncode != 0:
            if "NotFound" in result.stderr:
                return None
            raise AssertionError(result.stderr)
        return json.loads(result.stdout)

    def list(self, resource: str, namespace: str | None = None, selector: str | None = None) -> list[dict]:
        args = ["get", resource, "-o", "json"]
        args += ["-n", namespace] if namespace else ["-A"]
        if selector:
            args += ["-l", selector]
        return json.loads(self.kubectl(*args).stdout)["items"]


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
    """Poll against a deadline; the failure says what was awaited and what was last seen."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last seen: {last!r}")


def wait_condition(
    cluster: Cluster, resource: str, name: str, namespace: str, kind: str, timeout: float, what: str, **fields: str
) -> dict:
    """Wait until the object's condition `kind` has these fields (status="False", reason=...); it is returned."""

    def matching() -> dict | None:
        found = condition_of(cluster.get(resource, name, namespace), kind)
        return found if found and all(found.get(key) == value for key, value in fields.items()) else None

    return wait_for(matching, timeout, f"{what} ({kind} with {fields})")


# --- the simulator's fault injection (tests marked `simulator`; see testbed/README.md) ---------------


def restart_simulator(cluster: Cluster, *flags: str) -> None:
    """Stop the KubeVirt simulator and start it again with these flags (none: its defaults)."""
    assert cluster.plane is not None, "restarting the simulator needs the local testbed"
    cluster.plane.stop_process(SIMULATOR)
    start_simulator(cluster.plane, flags)


@contextmanager
def simulator_flags(cluster: Cluster, *flags: str) -> Iterator[None]:
    """Run the simulator with these flags inside the block, with its defaults again afterwards."""
    restart_simulator(cluster, *flags)
    try:
        yield
    finally:
        restart_simulator(cluster)


def guest_event(cluster: Cluster, namespace: str, vmi: str, event: str) -> None:
    """Make the VMI's guest `shutdown`, `crash` or `boot-failure` (simulator/guest.py)."""
    cluster.kubectl("annotate", "--overwrite", "-n", namespace, f"vmi/{vmi}", f"{GUEST_ANNOTATION}={event}")


def guest_agent(cluster: Cluster, namespace: str, vmi: str, connected: bool) -> None:
    """Connect or disconnect the VMI's QEMU guest agent (condition AgentConnected)."""
    value = f"{AGENT_ANNOTATION}=true" if connected else f"{AGENT_ANNOTATION}-"
    cluster.kubectl("annotate", "--overwrite", "-n", namespace, f"vmi/{vmi}", value)


def kubevirt_vm(
    name: str,
    run_strategy: str | None = "Always",
    annotations: dict[str, str] | None = None,
    memory: str = "128Mi",
    **spec: Any,
) -> dict:
    """A minimal valid KubeVirt VirtualMachine (container disk, pod network); `spec` adds VM spec fields."""
    vm_spec: dict[str, Any] = {
        "template": {
            "metadata": {"annotations": dict(annotations or {})},
            "spec": {
                "domain": {
                    "memory": {"guest": memory},
                    "devices": {
                        "disks": [{"name": "root", "disk": {"bus": "virtio"}}],
                        "interfaces": [{"name": "default", "masquerade": {}}],
                    },
                },
                "networks": [{"name": "default", "pod": {}}],
                "volumes": [{"name": "root", "containerDisk": {"image": "quay.io/containerdisks/fedora:41"}}],
            },
        },
        **spec,
    }
    if run_strategy is not None:
        vm_spec["runStrategy"] = run_strategy
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": name}, "spec": vm_spec}
