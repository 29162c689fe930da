"""The API server itself refuses bad input, with a message naming the field; the examples are accepted.

Each case changes one thing in a valid manifest and names what the error must mention.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from virtstack.api.crd import KINDS
from virtstack_testbed.testing import Cluster

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
API = "virtstack.io/v1alpha1"

VM = {
    "apiVersion": API,
    "kind": "VirtualMachine",
    "metadata": {"name": "vm"},
    "spec": {"source": {"template": {"image": "quay.io/containerdisks/fedora:41"}}},
}
ISO = {"apiVersion": API, "kind": "ISO", "metadata": {"name": "iso"}, "spec": {"url": "https://example.org/a.iso"}}
GROUP = {"apiVersion": API, "kind": "AffinityGroup", "metadata": {"name": "ag"}, "spec": {"type": "HostAntiAffinity"}}
SNAPSHOT = {"apiVersion": API, "kind": "VMSnapshot", "metadata": {"name": "snap"}, "spec": {"virtualMachine": "vm"}}
KEY = {"apiVersion": API, "kind": "SSHKeyPair", "metadata": {"name": "key"}, "spec": {}}
GPU = {
    "apiVersion": API,
    "kind": "GPUProfile",
    "metadata": {"name": "gpu"},
    "spec": {"type": "VGPU", "resourceName": "nvidia.com/GRID_K240Q"},
}


def changed(base: dict, change: Callable[[dict], None]) -> dict:
    manifest = copy.deepcopy(base)
    change(manifest["spec"])
    return manifest


def setter(path: str, value: object) -> Callable[[dict], None]:
    def apply(spec: dict) -> None:
        *parents, leaf = path.split(".")
        node = spec
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value

    return apply


INVALID = [
    ("vm-no-source", changed(VM, lambda s: s.pop("source")), "spec.source: Required value"),
    (
        "vm-two-sources",
        changed(VM, setter("source.iso", {"name": "x"})),
        "spec.source needs exactly one of template or iso",
    ),
    ("vm-empty-source", changed(VM, setter("source", {})), "spec.source needs exactly one of template or iso"),
    (
        "vm-two-template-kinds",
        changed(VM, setter("source.template.url", "https://example.org/d.qcow2")),
        "spec.source.template needs exactly one of image, url, pvc or dataSource",
    ),
    (
        "vm-template-url-ftp",
        changed(VM, setter("source.template", {"url": "ftp://example.org/d.qcow2"})),
        "spec.source.template.url must be an http or https URL",
    ),
    (
        "vm-url-without-size",
        changed(VM, setter("source.template", {"url": "https://example.org/d.qcow2"})),
        "spec.rootDisk.size is required with spec.source.template.url",
    ),
    (
        "vm-iso-without-size",
        changed(VM, setter("source", {"iso": {"name": "netinst"}})),
        "spec.rootDisk.size is required when booting from an ISO",
    ),
    ("vm-hostname-uppercase", changed(VM, setter("hostname", "Web_1")), "spec.hostname must be an RFC 1123 label"),
    ("vm-hostname-too-long", changed(VM, setter("hostname", "a" * 64)), "spec.hostname"),
    ("vm-cpu-zero", changed(VM, setter("resources.cpu", 0)), "spec.resources.cpu"),
    ("vm-cpu-too-many", changed(VM, setter("resources.cpu", 65)), "spec.resources.cpu"),
    ("vm-memory-unit", changed(VM, setter("resources.memory", "4GB")), "spec.resources.memory"),
    (
        "vm-memory-too-small",
        changed(VM, setter("resources.memory", "32Mi")),
        "spec.resources.memory must be between 64Mi and 1Ti",
    ),
    (
        "vm-memory-too-large",
        changed(VM, setter("resources.memory", "2Ti")),
        "spec.resources.memory must be between 64Mi and 1Ti",
    ),
    ("vm-state-unknown", changed(VM, setter("state", "Paused")), 'spec.state: Unsupported value: "Paused"'),
    (
        "vm-user-data-both",
        changed(VM, setter("userData", {"inline": "#cloud-config", "secretRef": {"name": "s"}})),
        "spec.userData needs exactly one of inline or secretRef",
    ),
    ("vm-user-data-too-large", changed(VM, setter("userData", {"inline": "x" * 24577})), "spec.userData.inline"),
    ("vm-gpu-count-zero", changed(VM, setter("gpu", {"profile": "grid", "count": 0})), "spec.gpu.count"),
    (
        "vm-allocation-unknown",
        changed(VM, setter("placement", {"allocation": "Random"})),
        'spec.placement.allocation: Unsupported value: "Random"',
    ),
    (
        "vm-host-tag-pins-a-host",
        changed(VM, setter("placement", {"hostTags": {"kubernetes.io/hostname": "host-a"}})),
        "spec.placement.hostTags keys must start with virtstack.io/host-tag.",
    ),
    ("vm-expose-port-range", changed(VM, setter("expose", {"ports": [{"port": 70000}]})), "spec.expose.ports[0].port"),
    ("vm-expose-no-ports", changed(VM, setter("expose", {"ports": []})), "spec.expose.ports"),
    ("vm-duplicate-key-pairs", changed(VM, setter("sshKeyPairs", ["a", "a"])), ".spec.sshKeyPairs: duplicate entries"),
    ("vm-reboot-not-a-time", changed(VM, setter("rebootRequestedAt", "yesterday")), "spec.rebootRequestedAt"),
    ("vm-unknown-field", changed(VM, setter("cpus", 2)), ".spec.cpus: field not declared in schema"),
    ("iso-scheme-file", changed(ISO, setter("url", "file:///etc/passwd")), "spec.url must be an http or https URL"),
    ("iso-no-url", changed(ISO, lambda s: s.pop("url")), "spec.url: Required value"),
    ("iso-bad-checksum", changed(ISO, setter("checksum", "sha256:xyz")), "spec.checksum must be md5:, sha1:"),
    (
        "group-type-unknown",
        changed(GROUP, setter("type", "SoftAntiAffinity")),
        'spec.type: Unsupported value: "SoftAntiAffinity"',
    ),
    ("group-enforcement-unknown", changed(GROUP, setter("enforcement", "Maybe")), "spec.enforcement"),
    ("group-topology-unknown", changed(GROUP, setter("topology", "Rack")), "spec.topology"),
    ("snapshot-no-vm", changed(SNAPSHOT, lambda s: s.pop("virtualMachine")), "spec.virtualMachine: Required value"),
    ("snapshot-bad-timeout", changed(SNAPSHOT, setter("timeout", "5 minutes")), "spec.timeout"),
    ("key-bad-public-key", changed(KEY, setter("publicKey", "not a key")), "spec.publicKey must be one OpenSSH"),
    (
        "key-type-with-public-key",
        changed(
            KEY,
            lambda s: s.update(
                publicKey="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINJDdxazqJDEC7m/mjeX5/dWxQ1H96jjyosCkxpS5q0t",
                keyType="rsa",
            ),
        ),
        "spec.keyType is only for generated key pairs",
    ),
    ("key-type-unknown", changed(KEY, setter("keyType", "dsa")), 'spec.keyType: Unsupported value: "dsa"'),
    (
        "gpu-bad-resource-name",
        changed(GPU, setter("resourceName", "GRID K240Q")),
        "spec.resourceName must be an extended resource name",
    ),
    ("gpu-type-unknown", changed(GPU, setter("type", "MIG")), 'spec.type: Unsupported value: "MIG"'),
    ("gpu-bad-resolution", changed(GPU, setter("maxResolution", "4k")), "spec.maxResolution"),
]

# Transition rules: an update that changes an immutable field. (manifest, change, message)
IMMUTABLE = [
    ("iso-url", ISO, setter("url", "https://example.org/b.iso"), "spec.url is immutable"),
    ("snapshot-vm", SNAPSHOT, setter("virtualMachine", "other"), "spec.virtualMachine is immutable"),
    ("group-type", GROUP, setter("type", "HostAffinity"), "spec.type is immutable"),
    ("gpu-resource", GPU, setter("resourceName", "nvidia.com/GRID_K260Q"), "spec.resourceName is immutable"),
    (
        "key-public-key",
        KEY,
        setter("publicKey", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINJDdxazqJDEC7m/mjeX5/dWxQ1H96jjyosCkxpS5q0t"),
        "spec.publicKey is immutable",
    ),
]


def dry_run(cluster: Cluster, manifest: dict, namespace: str):
    return cluster.kubectl(
        "apply",
        "--dry-run=server",
        "--server-side",
        "--field-manager=e2e",
        "--validate=strict",
        "-n",
        namespace,
        "-f",
        "-",
        input_text=yaml.safe_dump(manifest),
        check=False,
    )


@pytest.mark.usefixtures("virtstack_crds")
@pytest.mark.parametrize(("manifest", "message"), [pytest.param(m, msg, id=case) for case, m, msg in INVALID])
def test_invalid_manifest_is_rejected_naming_the_field(
    cluster: Cluster, namespace: str, manifest: dict, message: str
) -> None:
    result = dry_run(cluster, manifest, namespace)
    assert result.returncode != 0, f"accepted: {manifest}"
    assert message in result.stderr


@pytest.mark.usefixtures("virtstack_crds")
@pytest.mark.parametrize(("base", "change", "message"), [pytest.param(b, c, m, id=case) for case, b, c, m in IMMUTABLE])
def test_immutable_field_cannot_change(cluster: Cluster, namespace: str, base: dict, change, message: str) -> None:
    assert cluster.apply(base, namespace=namespace, check=False).returncode == 0
    result = dry_run(cluster, changed(base, change), namespace)
    assert result.returncode != 0
    assert message in result.stderr


@pytest.mark.usefixtures("virtstack_crds")
@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.stem)
def test_example_is_accepted(cluster: Cluster, namespace: str, example: Path) -> None:
    result = cluster.kubectl(
        "apply",
        "--dry-run=server",
        "--server-side",
        "--field-manager=e2e",
        "--validate=strict",
        "-n",
        namespace,
        "-f",
        str(example),
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.usefixtures("virtstack_crds")
def test_every_kind_is_listed_in_the_virtstack_category_and_explained(cluster: Cluster, namespace: str) -> None:
    for manifest in (VM, ISO, GROUP, SNAPSHOT, KEY, GPU):
        cluster.apply(manifest, namespace=namespace)
    try:
        listed = cluster.kubectl("get", "virtstack", "-A").stdout
        for kind in KINDS:
            assert f"{kind.kind.lower()}.virtstack.io/" in listed, f"{kind.kind} missing from `kubectl get virtstack`"
        for kind in KINDS:
            explained = cluster.kubectl("explain", f"{kind.plural}.spec").stdout
            assert "DESCRIPTION" in explained and "FIELDS" in explained
        assert "Restart the VM after any stop" in cluster.kubectl("explain", "vsvm.spec.highAvailability").stdout
    finally:
        cluster.kubectl("delete", "gpuprofile", "gpu", "--ignore-not-found")
