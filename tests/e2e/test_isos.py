"""ISOs: imported by CDI from a local HTTP server, verified, guarded against SSRF, booted and attached by VMs."""

from __future__ import annotations

import hashlib
import http.server
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from virtstack.objects import condition_of
from virtstack_testbed.testing import Cluster, wait_condition, wait_for

API = "virtstack.io/v1alpha1"
pytestmark = pytest.mark.usefixtures("virtstack_crds", "operator")
CHUNK = 32 * 1024


@dataclass
class Server:
    base: str  # http://127.0.0.1:PORT
    content: bytes
    sha256: str

    def url(self, path: str) -> str:
        return f"{self.base}/{path}"


@pytest.fixture(scope="module")
def http_server() -> Iterator[Server]:
    """A generated 4 MiB file served slowly (so progress can be seen), a missing one, and one that
    only the operator's reader gets (CDI's importer gets 404: its retries are then CDI's)."""
    content = os.urandom(4 * 1024 * 1024)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            operator = self.headers.get("User-Agent", "").startswith("virtstack/")
            if self.path not in ("/installer.iso", "/operator-only.iso") or (
                self.path == "/operator-only.iso" and not operator
            ):
                self.send_error(404, "Not Found")
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            for start in range(0, len(content), CHUNK):
                self.wfile.write(content[start : start + CHUNK])
                time.sleep(0.04)  # 4 MiB in about 5 s

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield Server(f"http://127.0.0.1:{server.server_address[1]}", content, hashlib.sha256(content).hexdigest())
    server.shutdown()


def iso(name: str, url: str, **spec: object) -> dict:
    return {"apiVersion": API, "kind": "ISO", "metadata": {"name": name}, "spec": {"url": url, **spec}}


def vm(name: str, source: dict, **spec: object) -> dict:
    return {
        "apiVersion": API,
        "kind": "VirtualMachine",
        "metadata": {"name": name},
        "spec": {"source": source, "rootDisk": {"size": "2Gi"}, **spec},
    }


def phase_of(cluster: Cluster, namespace: str, name: str) -> str | None:
    return ((cluster.get("iso", name, namespace) or {}).get("status") or {}).get("phase")


def wait_phase(cluster: Cluster, namespace: str, name: str, phase: str, timeout: float = 90) -> dict:
    return wait_for(
        lambda: (
            (obj := cluster.get("iso", name, namespace)) and (obj.get("status") or {}).get("phase") == phase and obj
        ),
        timeout,
        f"ISO {name} {phase}",
    )


def vm_ready(cluster: Cluster, namespace: str, name: str) -> dict | None:
    return condition_of(cluster.get("vsvm", name, namespace), "Ready")


def wait_vm_reason(cluster: Cluster, namespace: str, name: str, reason: str) -> dict:
    return wait_for(
        lambda: (c := vm_ready(cluster, namespace, name)) and c["reason"] == reason and c,
        60,
        f"vsvm {name} Ready reason {reason}",
    )


def kubevirt_vm(cluster: Cluster, namespace: str, name: str) -> dict | None:
    return cluster.get("virtualmachines.kubevirt.io", name, namespace)


def test_import_reports_rising_progress_then_a_vm_boots_from_it_and_holds_its_deletion(
    cluster: Cluster, namespace: str, http_server: Server
) -> None:
    cluster.apply(
        iso("installer", http_server.url("installer.iso"), checksum=f"sha256:{http_server.sha256}"),
        namespace=namespace,
    )
    seen: list[float] = []

    def ready() -> bool:
        status = (cluster.get("iso", "installer", namespace) or {}).get("status") or {}
        if status.get("phase") == "Downloading" and status.get("progress", "").endswith("%"):
            value = float(status["progress"].rstrip("%"))
            if not seen or seen[-1] != value:
                seen.append(value)
        return status.get("phase") == "Ready"

    wait_for(ready, 90, "ISO installer Ready", interval=0.2)
    assert len(seen) >= 2 and seen == sorted(seen) and seen[0] < 100, f"progress seen while downloading: {seen}"
    obj = cluster.get("iso", "installer", namespace)
    assert obj["status"]["progress"] == "100%" and obj["status"]["size"] == str(len(http_server.content))
    assert obj["status"]["verifiedChecksum"] == f"sha256:{http_server.sha256}"
    assert condition_of(obj, "Ready")["status"] == "True"
    data_volume = cluster.get("datavolumes.cdi.kubevirt.io", "installer-iso", namespace)
    assert data_volume["spec"]["source"]["http"]["url"] == http_server.url("installer.iso")
    assert data_volume["metadata"]["ownerReferences"][0]["uid"] == obj["metadata"]["uid"]

    cluster.apply(vm("fresh", {"iso": {"name": "installer"}}), namespace=namespace)
    wait_for(
        lambda: (cluster.get("vsvm", "fresh", namespace) or {}).get("status", {}).get("state") == "Running",
        90,
        "fresh Running from the ISO",
    )
    template = kubevirt_vm(cluster, namespace, "fresh")["spec"]
    disks = {d["name"]: d for d in template["template"]["spec"]["domain"]["devices"]["disks"]}
    copy = f"fresh-iso-{obj['metadata']['uid'][:8]}"
    assert disks[copy] == {"name": copy, "cdrom": {"bus": "sata"}, "bootOrder": 1}
    assert disks["rootdisk"]["bootOrder"] == 2
    sources = {t["metadata"]["name"]: t["spec"]["source"] for t in template["dataVolumeTemplates"]}
    assert sources == {
        "fresh-rootdisk": {"blank": {}},
        copy: {"pvc": {"namespace": namespace, "name": "installer-iso"}},
    }
    wait_for(
        lambda: cluster.get("iso", "installer", namespace)["status"].get("usedBy") == [f"{namespace}/fresh"],
        30,
        "the ISO lists its user",
    )

    cluster.kubectl("delete", "iso", "installer", "-n", namespace, "--wait=false")
    held = wait_condition(
        cluster, "iso", "installer", namespace, "Ready", 30, "the deletion is held", reason="DeletionHeld"
    )
    assert f"{namespace}/fresh" in held["message"]
    time.sleep(2)
    assert cluster.get("iso", "installer", namespace) is not None
    cluster.kubectl("delete", "vsvm", "fresh", "-n", namespace, "--wait=false")
    wait_for(lambda: cluster.get("iso", "installer", namespace) is None, 60, "the ISO goes once no VM uses it")


def test_a_bad_url_reports_its_error_fails_and_can_be_retried(
    cluster: Cluster, namespace: str, http_server: Server
) -> None:
    cluster.apply(iso("missing", http_server.url("missing.iso")), namespace=namespace)
    failing = wait_condition(
        cluster, "iso", "missing", namespace, "Ready", 30, "the error while retrying", reason="DownloadFailing"
    )
    assert "expected status code 200, got 404" in failing["message"] and "attempt 1 of 2" in failing["message"]
    failed = wait_phase(cluster, namespace, "missing", "Failed", 60)
    assert (
        condition_of(failed, "Ready")["reason"] == "DownloadFailed"
        and "404" in condition_of(failed, "Ready")["message"]
    )
    assert cluster.get("datavolumes.cdi.kubevirt.io", "missing-iso", namespace) is None

    # CDI's own retries: the operator's read succeeds, CDI's importer gets 404 and restarts.
    cluster.apply(iso("importer-fails", http_server.url("operator-only.iso")), namespace=namespace)
    failing = wait_condition(
        cluster,
        "iso",
        "importer-fails",
        namespace,
        "Ready",
        60,
        "CDI's importer error while it retries",
        reason="DownloadFailing",
    )
    assert "Unable to connect to http data source" in failing["message"], failing
    wait_phase(cluster, namespace, "importer-fails", "Failed", 90)
    wait_for(
        lambda: cluster.get("datavolumes.cdi.kubevirt.io", "importer-fails-iso", namespace) is None,
        30,
        "a failed import's DataVolume is removed (CDI would retry it forever)",
    )

    failed["spec"]["retryRequestedAt"] = "2030-01-01T00:00:00Z"
    cluster.kubectl(
        "patch", "iso", "missing", "-n", namespace, "--type=merge",
        "-p", '{"spec":{"retryRequestedAt":"2030-01-01T00:00:00Z"}}',
    )  # fmt: skip
    retried = wait_for(
        lambda: (obj := cluster.get("iso", "missing", namespace))["status"].get("lastRetriedAt") and obj,
        30,
        "the retry is carried out",
    )
    assert retried["status"]["phase"] in ("Pending", "Downloading", "Failed")
    wait_phase(cluster, namespace, "missing", "Failed", 60)  # still missing: fails again, after two attempts


def test_a_checksum_mismatch_fails_the_iso(cluster: Cluster, namespace: str, http_server: Server) -> None:
    wrong = "sha256:" + "0" * 64
    cluster.apply(iso("tampered", http_server.url("installer.iso"), checksum=wrong), namespace=namespace)
    failed = wait_phase(cluster, namespace, "tampered", "Failed")
    ready = condition_of(failed, "Ready")
    assert ready["reason"] == "ChecksumMismatch"
    assert f"sha256:{http_server.sha256}" in ready["message"] and wrong in ready["message"]
    wait_for(
        lambda: cluster.get("datavolumes.cdi.kubevirt.io", "tampered-iso", namespace) is None,
        30,
        "the mismatching import is removed",
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://169.254.169.254/latest/meta-data/", "points at an internal address"),
        ("http://127.0.0.2:8080/a.iso", "points at an internal address"),
        ("http://10.0.0.1/a.iso", "points into the cluster Service or Pod range"),
        ("http://10.20.0.1/a.iso", "points at an internal address"),
        ("https://[::1]/a.iso", "points at an internal address"),
        ("https://[::ffff:127.0.0.1]/a.iso", "is not a plain IPv6 address"),
        ("http://localhost:8080/a.iso", "points at this machine"),
        ("http://Files.LOCALHOST./a.iso", "points at this machine"),
        ("file:///etc/passwd", "spec.url must be an http or https URL"),
        ("gopher://example.org/a.iso", "spec.url must be an http or https URL"),
    ],
)
def test_ssrf_urls_are_refused_at_admission(cluster: Cluster, namespace: str, url: str, message: str) -> None:
    refused = cluster.apply(iso("ssrf", url), namespace=namespace, check=False)
    assert refused.returncode != 0 and message in refused.stderr, refused.stderr
    if url.startswith("http"):
        refused = cluster.apply(vm("ssrf", {"template": {"url": url}}), namespace=namespace, check=False)
        assert refused.returncode != 0 and "spec.source.template.url" in refused.stderr, refused.stderr


def test_ssrf_urls_are_refused_after_resolution(cluster: Cluster, namespace: str, http_server: Server) -> None:
    """127.2 is no IP address to the API server, but the resolver reads it as 127.0.0.2 (not allowed)."""
    port = http_server.base.rsplit(":", 1)[1]
    url = f"http://127.2:{port}/installer.iso"
    cluster.apply(iso("sneaky", url), vm("sneaky", {"template": {"url": url}}), namespace=namespace)
    failed = wait_phase(cluster, namespace, "sneaky", "Failed", 30)
    ready = condition_of(failed, "Ready")
    assert ready["reason"] == "UrlRefused" and "127.0.0.2 is a loopback address" in ready["message"]
    assert cluster.get("datavolumes.cdi.kubevirt.io", "sneaky-iso", namespace) is None
    blocked = wait_vm_reason(cluster, namespace, "sneaky", "UrlRefused")
    assert "spec.source.template.url is refused" in blocked["message"]
    assert kubevirt_vm(cluster, namespace, "sneaky") is None


@pytest.fixture
def other_namespace(cluster: Cluster) -> Iterator[str]:
    name = f"e2e-other-{os.urandom(4).hex()}"
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def test_private_isos_stay_in_their_namespace_public_ones_are_copied_and_attach_waits_for_a_start(
    cluster: Cluster, namespace: str, other_namespace: str, http_server: Server
) -> None:
    url = http_server.url("installer.iso")
    cluster.apply(iso("private", url), iso("shared", url, public=True, bootable=False), namespace=namespace)
    cluster.apply(vm("early", {"iso": {"name": "private"}}), namespace=namespace)
    waiting = wait_vm_reason(cluster, namespace, "early", "ISONotReady")
    assert (
        f"ISO {namespace}/private (spec.source.iso)" in waiting["message"]
        and "waits until it is Ready" in waiting["message"]
    )
    assert kubevirt_vm(cluster, namespace, "early") is None
    assert cluster.get("vsvm", "early", namespace)["status"]["state"] == "Creating", "waiting is not an error"
    cluster.apply(vm("nothing", {"iso": {"name": "nonexistent"}}), namespace=namespace)
    unknown = wait_vm_reason(cluster, namespace, "nothing", "ISOUnusable")
    assert "nonexistent (spec.source.iso) does not exist: register it" in unknown["message"]
    assert cluster.get("vsvm", "nothing", namespace)["status"]["state"] == "Error"
    wait_phase(cluster, namespace, "private", "Ready")
    shared = wait_phase(cluster, namespace, "shared", "Ready")
    wait_for(lambda: kubevirt_vm(cluster, namespace, "early") is not None, 30, "early built once its ISO is Ready")

    cluster.apply(vm("foreign", {"iso": {"name": "private", "namespace": namespace}}), namespace=other_namespace)
    refused = wait_vm_reason(cluster, other_namespace, "foreign", "ISOUnusable")
    assert f"is private to namespace {namespace}" in refused["message"]
    assert kubevirt_vm(cluster, other_namespace, "foreign") is None
    cluster.apply(vm("notboot", {"iso": {"name": "shared", "namespace": namespace}}), namespace=other_namespace)
    assert "is not bootable" in wait_vm_reason(cluster, other_namespace, "notboot", "ISOUnusable")["message"]

    user = vm("user", {"template": {"image": "quay.io/containerdisks/fedora:41"}})
    cluster.apply(user, namespace=other_namespace)
    wait_for(
        lambda: (cluster.get("vsvm", "user", other_namespace) or {}).get("status", {}).get("state") == "Running",
        60,
        "user Running",
    )
    user["spec"]["attachedISO"] = f"{namespace}/shared"
    cluster.apply(user, namespace=other_namespace)
    copy = f"user-iso-{shared['metadata']['uid'][:8]}"

    def attached() -> dict | None:
        spec = (kubevirt_vm(cluster, other_namespace, "user") or {}).get("spec", {})
        templates = {t["metadata"]["name"]: t for t in spec.get("dataVolumeTemplates", [])}
        return templates.get(copy)

    template = wait_for(attached, 30, "the public ISO copied into the VM's namespace")
    assert template["spec"]["source"] == {"pvc": {"namespace": namespace, "name": "shared-iso"}}
    restart = wait_for(
        lambda: condition_of(cluster.get("vsvm", "user", other_namespace), "RestartRequired"),
        30,
        "attaching to a running VM waits for its next start",
    )
    assert restart["status"] == "True"
    disks = kubevirt_vm(cluster, other_namespace, "user")["spec"]["template"]["spec"]["domain"]["devices"]["disks"]
    assert {"name": copy, "cdrom": {"bus": "sata"}} in disks
    wait_for(
        lambda: f"{other_namespace}/user" in cluster.get("iso", "shared", namespace)["status"].get("usedBy", []),
        30,
        "the public ISO lists its user in the other namespace",
    )

    del user["spec"]["attachedISO"]
    cluster.apply(user, namespace=other_namespace)
    wait_for(
        lambda: all(
            d["name"] != copy
            for d in kubevirt_vm(cluster, other_namespace, "user")["spec"]["template"]["spec"]["domain"]["devices"][
                "disks"
            ]
        ),
        30,
        "detached",
    )
    wait_for(
        lambda: cluster.get("iso", "shared", namespace)["status"].get("usedBy") == [f"{other_namespace}/notboot"],
        30,
        "user no longer listed (notboot still names it)",
    )
