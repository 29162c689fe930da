"""CDI DataVolume import (issue 4 §8): an `http` source really fetched from a server on loopback, with
progress from the bytes read; a failing URL retried with a climbing restartCount; PVCs bound and sized."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from virtstack.objects import condition_of
from virtstack_testbed.testing import Cluster, kubevirt_vm, simulator_flags, wait_for

pytestmark = pytest.mark.simulator

IMAGE_BYTES = 6 * 1024 * 1024
CHUNK = 64 * 1024


class _Images(BaseHTTPRequestHandler):
    """Serves /disk.img slowly (so that progress can be watched) and 404 for anything else."""

    def do_GET(self) -> None:  # noqa: N802 - the http.server interface
        if self.path != "/disk.img":
            self.send_error(404, "Not Found")
            return
        self.send_response(200)
        self.send_header("Content-Length", str(IMAGE_BYTES))
        self.end_headers()
        block = b"\0" * CHUNK
        for _ in range(IMAGE_BYTES // CHUNK):
            self.wfile.write(block)
            time.sleep(0.04)  # the server's pace (~1.5 MiB/s), not a test wait

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def image_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Images)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module", autouse=True)
def fast_simulator(cluster: Cluster):
    with simulator_flags(cluster, "--heartbeat-seconds=1", "--import-backoff-seconds=0.5"):
        yield


def data_volume(name: str, source: dict | None = None, size: str = "2Gi", **spec) -> dict:
    body = {"storage": {"resources": {"requests": {"storage": size}}}, **spec}
    if source is not None:
        body["source"] = source
    return {"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume", "metadata": {"name": name}, "spec": body}


def dv_status(cluster: Cluster, namespace: str, name: str) -> dict:
    return (cluster.get("datavolumes.cdi.kubevirt.io", name, namespace) or {}).get("status") or {}


def test_http_import_reports_rising_progress_and_binds_a_sized_pvc(
    cluster: Cluster, namespace: str, image_server: str
) -> None:
    cluster.apply(data_volume("fedora", {"http": {"url": f"{image_server}/disk.img"}}), namespace=namespace)
    seen: list[str] = []

    def succeeded() -> bool:
        status = dv_status(cluster, namespace, "fedora")
        if status.get("progress") and (not seen or seen[-1] != status["progress"]):
            seen.append(status["progress"])
        return status.get("phase") == "Succeeded"

    wait_for(succeeded, 60, "the import Succeeded", interval=0.2)
    partial = [float(p.rstrip("%")) for p in seen if p not in ("N/A", "100.0%")]
    assert len(partial) >= 2 and partial == sorted(partial) and 0 < partial[0] < partial[-1] < 100, seen
    assert seen[-1] == "100.0%"
    status = dv_status(cluster, namespace, "fedora")
    assert condition_of({"status": status}, "Ready")["status"] == "True"
    assert condition_of({"status": status}, "Bound")["reason"] == "Bound"
    pvc = cluster.get("pvc", "fedora", namespace)
    assert pvc["status"]["phase"] == "Bound" and pvc["status"]["capacity"]["storage"] == "2Gi"
    assert pvc["metadata"]["ownerReferences"][0]["kind"] == "DataVolume"


def test_failing_url_retries_with_a_climbing_restart_count(cluster: Cluster, namespace: str, image_server: str) -> None:
    url = f"{image_server}/missing.img"
    template = data_volume("broken-disk", {"http": {"url": url}})
    vm = kubevirt_vm("broken", dataVolumeTemplates=[{"metadata": template["metadata"], "spec": template["spec"]}])
    vm["spec"]["template"]["spec"]["domain"]["devices"]["disks"].append({"name": "disk", "disk": {}})
    vm["spec"]["template"]["spec"]["volumes"].append({"name": "disk", "dataVolume": {"name": "broken-disk"}})
    cluster.apply(vm, namespace=namespace)
    status = wait_for(
        lambda: (s := dv_status(cluster, namespace, "broken-disk")).get("restartCount", 0) >= 2 and s,
        60,
        "the importer restarted twice",
    )
    assert status["phase"] in ("ImportScheduled", "ImportInProgress"), "a failing import never fails the DataVolume"
    running = condition_of({"status": status}, "Running")
    assert running["status"] == "False" and running["reason"] == "Error"
    assert "expected status code 200, got 404" in running["message"]
    wait_for(
        lambda: (
            (cluster.get("vm", "broken", namespace).get("status") or {}).get("printableStatus") == "DataVolumeError"
        ),
        30,
        "the VM shows DataVolumeError",
    )
    assert cluster.get("vmi", "broken", namespace) is None


def test_blank_and_data_source_volumes(cluster: Cluster, namespace: str) -> None:
    source = {
        "apiVersion": "cdi.kubevirt.io/v1beta1",
        "kind": "DataSource",
        "metadata": {"name": "golden"},
        "spec": {"source": {"pvc": {"namespace": namespace, "name": "base"}}},
    }
    cluster.apply(
        source,
        data_volume("base", {"blank": {}}),
        data_volume("copy", sourceRef={"kind": "DataSource", "name": "golden"}),
        namespace=namespace,
    )
    for name in ("base", "copy"):
        wait_for(lambda n=name: dv_status(cluster, namespace, n).get("phase") == "Succeeded", 60, f"{name} Succeeded")
        assert cluster.get("pvc", name, namespace)["status"]["phase"] == "Bound"
