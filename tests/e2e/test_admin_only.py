"""Administrator-only fields, enforced by the API server (ValidatingAdmissionPolicy) for a real non-admin user."""

from __future__ import annotations

import pytest
import yaml
from virtstack_testbed.testing import Cluster

from .test_vm_lifecycle import status_of, vm_with, wait_state

pytestmark = pytest.mark.usefixtures("virtstack_crds")
USER = ["--as=alice", "--as-group=developers"]


@pytest.fixture
def alice(cluster: Cluster, namespace: str) -> None:
    """A user who may do everything with virtstack.io objects in the namespace, and is no administrator."""
    cluster.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "virtstack-user"},
            "rules": [{"apiGroups": ["virtstack.io"], "resources": ["*"], "verbs": ["*"]}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "alice"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "virtstack-user"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}],
        },
        namespace=namespace,
    )


def apply_as_alice(cluster: Cluster, namespace: str, manifest: dict):
    return cluster.kubectl(
        *USER,
        "apply",
        "--server-side",
        "--field-manager=alice",
        "--validate=strict",
        "-n",
        namespace,
        "-f",
        "-",
        input_text=yaml.safe_dump(manifest),
        check=False,
    )


@pytest.mark.usefixtures("alice", "operator")
def test_only_administrators_pin_a_host(cluster: Cluster, namespace: str) -> None:
    pinned = vm_with("pinned", placement={"host": "host-b"})
    denied = apply_as_alice(cluster, namespace, pinned)
    assert denied.returncode != 0
    assert "spec.placement.host pins the VM to a host: only administrators (group virtstack:admins)" in denied.stderr

    assert cluster.apply(pinned, namespace=namespace).returncode == 0, "an administrator may"
    assert wait_state(cluster, namespace, "pinned", "Running")["host"] == "host-b"
    assert apply_as_alice(cluster, namespace, pinned).returncode == 0, "keeping the administrator's value is fine"
    moved = apply_as_alice(cluster, namespace, vm_with("pinned", placement={"host": "host-c"}))
    assert moved.returncode != 0 and "spec.placement.host" in moved.stderr
    assert status_of(cluster, namespace, "pinned")["host"] == "host-b"


@pytest.mark.usefixtures("alice")
def test_only_administrators_migrate_or_feature(cluster: Cluster, namespace: str) -> None:
    migrate = vm_with("mover", migration={"requestedAt": "2026-11-25T12:00:00Z"})
    denied = apply_as_alice(cluster, namespace, migrate)
    assert denied.returncode != 0 and "spec.migration live-migrates the VM" in denied.stderr
    iso = {
        "apiVersion": "virtstack.io/v1alpha1",
        "kind": "ISO",
        "metadata": {"name": "tools"},
        "spec": {"url": "https://example.org/tools.iso", "featured": True},
    }
    denied = apply_as_alice(cluster, namespace, iso)
    assert denied.returncode != 0 and "spec.featured features the ISO" in denied.stderr
    iso["spec"]["featured"] = False
    assert apply_as_alice(cluster, namespace, iso).returncode == 0, "a plain ISO is anyone's"
