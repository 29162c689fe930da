"""CloudStack's VM lifecycle through KubeVirt: HA versus non-HA, names, guest data, public access, placement."""

from __future__ import annotations

import base64

import pytest
from virtstack.objects import condition_of
from virtstack_testbed.testing import Cluster, guest_event, wait_for

from .test_walking_skeleton import vsvm

pytestmark = pytest.mark.usefixtures("operator")


def vm_with(name: str, **spec: object) -> dict:
    manifest = vsvm(name)
    manifest["spec"].update(spec)
    return manifest


def status_of(cluster: Cluster, namespace: str, name: str) -> dict:
    return (cluster.get("vsvm", name, namespace) or {}).get("status", {})


def wait_state(cluster: Cluster, namespace: str, name: str, state: str, timeout: float = 60) -> dict:
    return wait_for(
        lambda: (s := status_of(cluster, namespace, name)).get("state") == state and s, timeout, f"{name} {state}"
    )


def vmi_uid(cluster: Cluster, namespace: str, name: str) -> str | None:
    vmi = cluster.get("virtualmachineinstances.kubevirt.io", name, namespace)
    return vmi["metadata"]["uid"] if vmi else None


def running_vmi_uid(cluster: Cluster, namespace: str, name: str) -> str:
    def running() -> str | None:
        vmi = cluster.get("virtualmachineinstances.kubevirt.io", name, namespace)
        return vmi["metadata"]["uid"] if vmi and vmi.get("status", {}).get("phase") == "Running" else None

    return wait_for(running, 60, f"{name}'s VMI Running")


@pytest.mark.simulator
@pytest.mark.parametrize("event", ["shutdown", "crash"])
def test_ha_vm_is_restarted_after_a_stop_it_did_not_ask_for(cluster: Cluster, namespace: str, event: str) -> None:
    cluster.apply(vm_with("ha", highAvailability=True), namespace=namespace)
    wait_state(cluster, namespace, "ha", "Running")
    first = running_vmi_uid(cluster, namespace, "ha")
    guest_event(cluster, namespace, "ha", event)
    wait_for(lambda: running_vmi_uid(cluster, namespace, "ha") != first, 60, "a new VMI for the HA VM")
    wait_state(cluster, namespace, "ha", "Running")
    assert condition_of(cluster.get("vsvm", "ha", namespace), "Ready")["status"] == "True"


@pytest.mark.simulator
def test_non_ha_vm_whose_guest_shuts_down_is_stopped_until_asked_to_start(cluster: Cluster, namespace: str) -> None:
    cluster.apply(vsvm("plain"), namespace=namespace)
    wait_state(cluster, namespace, "plain", "Running")
    first = running_vmi_uid(cluster, namespace, "plain")
    guest_event(cluster, namespace, "plain", "shutdown")
    stopped = wait_state(cluster, namespace, "plain", "Stopped")
    ready = condition_of({"status": stopped}, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "GuestShutdown")
    assert vmi_uid(cluster, namespace, "plain") == first, "the ended VMI stays: nothing restarts it"

    cluster.apply(vsvm("plain", state="Stopped"), namespace=namespace)
    wait_for(lambda: vmi_uid(cluster, namespace, "plain") is None, 60, "the ended VMI removed on stop")
    cluster.apply(vsvm("plain"), namespace=namespace)
    wait_state(cluster, namespace, "plain", "Running")
    assert running_vmi_uid(cluster, namespace, "plain") != first


@pytest.mark.simulator
def test_non_ha_vm_that_crashes_is_down(cluster: Cluster, namespace: str) -> None:
    cluster.apply(vsvm("fragile"), namespace=namespace)
    wait_state(cluster, namespace, "fragile", "Running")
    guest_event(cluster, namespace, "fragile", "crash")
    down = wait_state(cluster, namespace, "fragile", "Down")
    assert condition_of({"status": down}, "Ready")["reason"] == "Down"
    assert not down.get("host")


def test_names_hostname_group_and_os_type_reach_kubevirt(cluster: Cluster, namespace: str) -> None:
    cluster.apply(
        vm_with("named", displayName="Front end #1", hostname="front-1", group="web", osType="Fedora 41"),
        namespace=namespace,
    )
    status = wait_state(cluster, namespace, "named", "Running")
    assert status["instanceName"].startswith("i-") and len(status["instanceName"]) == 10
    kubevirt_vm = cluster.get("virtualmachines.kubevirt.io", "named", namespace)
    assert kubevirt_vm["metadata"]["labels"]["virtstack.io/group"] == "web"
    template = kubevirt_vm["spec"]["template"]
    assert template["spec"]["hostname"] == "front-1"
    assert template["metadata"]["annotations"]["virtstack.io/display-name"] == "Front end #1"
    assert template["metadata"]["annotations"]["virtstack.io/instance-name"] == status["instanceName"]
    pods = cluster.list("pods", namespace, selector="virtstack.io/vm=named")
    assert pods and pods[0]["spec"]["hostname"] == "front-1"

    cluster.apply(
        vm_with("named", displayName="Front end #2", hostname="front-1", group="web", osType="Fedora 41"),
        namespace=namespace,
    )
    wait_for(
        lambda: (
            cluster.get("virtualmachines.kubevirt.io", "named", namespace)["spec"]["template"]["metadata"][
                "annotations"
            ]["virtstack.io/display-name"]
            == "Front end #2"
        ),
        30,
        "the display name updated",
    )
    assert status_of(cluster, namespace, "named")["instanceName"] == status["instanceName"], "immutable"


def test_guest_meta_data_reaches_the_launcher_pod_with_the_hosts_zone(cluster: Cluster, namespace: str) -> None:
    """CloudStack's meta-data keys travel on a downward-API disk read from the launcher pod: the
    annotations KubeVirt copies from the VMI, and the zone label the API server copies from the node
    when the pod is bound (PodTopologyLabels, Kubernetes 1.35+)."""
    cluster.apply(vm_with("meta", hostname="meta-01", resources={"cpu": 2, "memory": "2Gi"}), namespace=namespace)
    status = wait_state(cluster, namespace, "meta", "Running")
    pod = cluster.list("pods", namespace, selector="virtstack.io/vm=meta")[0]
    annotations = pod["metadata"]["annotations"]
    files = {
        item["path"]: item["fieldRef"]["fieldPath"]
        for volume in pod["spec"].get("volumes", [])
        if volume["name"] == "metadata"
        for item in volume["downwardAPI"]["items"]
    }
    seen = {path: annotations.get(field.split("'")[1]) for path, field in files.items() if "annotations" in field}
    assert seen == {"instance-id": status["instanceName"], "local-hostname": "meta-01", "service-offering": "2vcpu-2Gi"}
    assert files["availability-zone"] == "metadata.labels['topology.kubernetes.io/zone']"
    assert status["zone"] and pod["metadata"]["labels"].get("topology.kubernetes.io/zone") == status["zone"]


def test_user_data_inline_and_from_a_secret(cluster: Cluster, namespace: str) -> None:
    cluster.apply(vm_with("small", userData={"inline": "#cloud-config\nhostname: small\n"}), namespace=namespace)
    large = "#cloud-config\nwrite_files:\n" + "  - {path: /tmp/x, content: " + "y" * 4000 + "}\n"
    cluster.apply(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "init"}, "stringData": {"user-data": large}},
        namespace=namespace,
    )
    cluster.apply(vm_with("large", userData={"secretRef": {"name": "init", "key": "user-data"}}), namespace=namespace)
    wait_state(cluster, namespace, "small", "Running")
    wait_state(cluster, namespace, "large", "Running")
    small_volumes = cluster.get("virtualmachines.kubevirt.io", "small", namespace)["spec"]["template"]["spec"][
        "volumes"
    ]
    assert small_volumes[1]["cloudInitNoCloud"] == {"userData": "#cloud-config\nhostname: small\n"}
    owned = cluster.get("secret", "large-cloudinit", namespace)
    assert base64.b64decode(owned["data"]["userdata"]).decode() == large
    assert owned["metadata"]["ownerReferences"][0]["name"] == "large"


def test_user_data_secret_problems_block_the_vm_with_a_clear_condition(cluster: Cluster, namespace: str) -> None:
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "wrong-key"},
            "stringData": {"cloud-init": "#cloud-config"},
        },
        namespace=namespace,
    )
    oversized = base64.b64encode(b"x" * 30000).decode()
    cluster.apply(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "huge"}, "data": {"userdata": oversized}},
        namespace=namespace,
    )
    cases = {
        "missing": ({"name": "nope"}, "Secret nope (spec.userData.secretRef) does not exist"),
        "keyless": ({"name": "wrong-key"}, "has no key 'userdata'"),
        "toolarge": ({"name": "huge"}, "over the 32768-byte limit"),
    }
    for name, (reference, _) in cases.items():
        cluster.apply(vm_with(name, userData={"secretRef": reference}), namespace=namespace)
    for name, (_, message) in cases.items():
        ready = wait_for(lambda n=name: condition_of(cluster.get("vsvm", n, namespace), "Ready"), 30, f"{name} status")
        wait_for(
            lambda n=name: condition_of(cluster.get("vsvm", n, namespace), "Ready")["reason"] == "UserDataInvalid",
            30,
            f"{name} UserDataInvalid",
        )
        ready = condition_of(cluster.get("vsvm", name, namespace), "Ready")
        assert message in ready["message"]
        assert cluster.get("virtualmachines.kubevirt.io", name, namespace) is None, "not half-created"


def test_expose_gives_a_public_address(cluster: Cluster, namespace: str) -> None:
    cluster.apply(vm_with("public", expose={"ports": [{"port": 80}]}), namespace=namespace)
    status = wait_for(
        lambda: (s := status_of(cluster, namespace, "public")).get("publicAddress") and s, 60, "a public address"
    )
    service = cluster.get("service", "public", namespace)
    assert service["spec"]["type"] == "NodePort"
    node_port = service["spec"]["ports"][0]["nodePort"]
    assert status["publicAddress"].endswith(f":{node_port}")
    endpoints = cluster.list("endpointslices.discovery.k8s.io", namespace, selector="kubernetes.io/service-name=public")
    assert endpoints and endpoints[0]["endpoints"], "the Service selects the VM's launcher pod"

    cluster.apply(vsvm("public"), namespace=namespace)
    wait_for(lambda: cluster.get("service", "public", namespace) is None, 30, "the Service removed with expose")
    wait_for(lambda: not status_of(cluster, namespace, "public").get("publicAddress"), 30, "no public address")


@pytest.mark.simulator
def test_pack_fills_one_host_and_spread_uses_every_non_gpu_host(cluster: Cluster, namespace: str) -> None:
    # Placement scores count every pod: let earlier tests' VMs (their namespaces are deleted
    # asynchronously) leave the hosts first, so only this test's VMs weigh.
    wait_for(
        lambda: (
            not [
                p
                for p in cluster.list("pods", selector="kubevirt.io=virt-launcher")
                if p["metadata"]["namespace"] != namespace
            ]
        ),
        120,
        "earlier tests' VMs gone",
    )
    big = {"cpu": 8, "memory": "8Gi"}
    for index in range(4):
        cluster.apply(vm_with(f"pack-{index}", resources=big, placement={"allocation": "Pack"}), namespace=namespace)
        wait_state(cluster, namespace, f"pack-{index}", "Running")
    packed = {status_of(cluster, namespace, f"pack-{i}")["host"] for i in range(4)}
    assert len(packed) == 1, f"Pack used {packed}"
    cluster.kubectl("delete", "vsvm", *[f"pack-{i}" for i in range(4)], "-n", namespace)
    wait_for(lambda: not cluster.list("pods", namespace), 60, "the packed VMs gone")

    # Spread (LeastAllocated) puts one VM on each host; GPU hosts come last for non-GPU VMs.
    non_gpu_hosts = [
        n["metadata"]["name"]
        for n in cluster.list("nodes")
        if n["metadata"]["labels"].get("nvidia.com/gpu.present") != "true"
    ]
    for index in range(len(non_gpu_hosts)):
        cluster.apply(vm_with(f"spread-{index}", resources=big), namespace=namespace)
        wait_state(cluster, namespace, f"spread-{index}", "Running")
    spread = {status_of(cluster, namespace, f"spread-{i}")["host"] for i in range(len(non_gpu_hosts))}
    assert spread == set(non_gpu_hosts), f"Spread used {spread}"


def test_zone_and_host_tags_constrain_placement(cluster: Cluster, namespace: str) -> None:
    cluster.apply(vm_with("zoned", placement={"zone": "zone-b"}), namespace=namespace)
    cluster.apply(vm_with("tagged", placement={"hostTags": {"virtstack.io/host-tag.ssd": "true"}}), namespace=namespace)
    zoned = wait_state(cluster, namespace, "zoned", "Running")
    assert zoned["zone"] == "zone-b" and zoned["host"] in ("host-c", "host-d")
    assert wait_state(cluster, namespace, "tagged", "Running")["host"] == "host-d"
    cluster.apply(vm_with("nowhere", placement={"zone": "zone-z"}), namespace=namespace)
    scheduled = wait_for(
        lambda: condition_of(cluster.get("vsvm", "nowhere", namespace), "Scheduled"),
        60,
        "nowhere's Scheduled condition",
    )
    assert (scheduled["status"], scheduled["reason"]) == ("False", "InsufficientCapacity")
    assert "node(s) didn't match Pod's node affinity/selector" in scheduled["message"]


@pytest.mark.parametrize("ha", [True, False])
def test_reboot_request_replaces_the_vmi_once(cluster: Cluster, namespace: str, ha: bool) -> None:
    cluster.apply(vm_with("rebooter", highAvailability=ha), namespace=namespace)
    wait_state(cluster, namespace, "rebooter", "Running")
    first = running_vmi_uid(cluster, namespace, "rebooter")
    cluster.apply(
        vm_with("rebooter", highAvailability=ha, rebootRequestedAt="2026-11-25T12:00:00Z"), namespace=namespace
    )
    wait_for(
        lambda: status_of(cluster, namespace, "rebooter").get("lastRebootedAt") == "2026-11-25T12:00:00Z",
        60,
        "the reboot carried out",
    )
    second = running_vmi_uid(cluster, namespace, "rebooter")
    assert second != first
    wait_state(cluster, namespace, "rebooter", "Running")
    assert running_vmi_uid(cluster, namespace, "rebooter") == second, "rebooted once, not again"


@pytest.mark.simulator
def test_reboot_request_starts_a_vm_whose_guest_shut_down(cluster: Cluster, namespace: str) -> None:
    cluster.apply(vsvm("sleeper"), namespace=namespace)
    wait_state(cluster, namespace, "sleeper", "Running")
    guest_event(cluster, namespace, "sleeper", "shutdown")
    wait_state(cluster, namespace, "sleeper", "Stopped")
    cluster.apply(vm_with("sleeper", rebootRequestedAt="2026-11-25T13:00:00Z"), namespace=namespace)
    wait_state(cluster, namespace, "sleeper", "Running")


def test_resize_without_dynamic_scaling_waits_for_the_next_start(cluster: Cluster, namespace: str) -> None:
    cluster.apply(vm_with("grower", resources={"cpu": 2, "memory": "2Gi"}), namespace=namespace)
    wait_state(cluster, namespace, "grower", "Running")
    first = running_vmi_uid(cluster, namespace, "grower")
    cluster.apply(vm_with("grower", resources={"cpu": 4, "memory": "4Gi"}), namespace=namespace)
    restart = wait_for(
        lambda: condition_of(cluster.get("vsvm", "grower", namespace), "RestartRequired"), 60, "RestartRequired"
    )
    assert restart["status"] == "True" and "next starts" in restart["message"]
    vmi = cluster.get("virtualmachineinstances.kubevirt.io", "grower", namespace)
    assert vmi["metadata"]["uid"] == first and vmi["spec"]["domain"]["cpu"]["sockets"] == 2, "still running as it was"
    assert status_of(cluster, namespace, "grower")["state"] == "Running"

    cluster.apply(
        vm_with("grower", resources={"cpu": 4, "memory": "4Gi"}, rebootRequestedAt="2026-11-25T14:00:00Z"),
        namespace=namespace,
    )
    wait_for(lambda: running_vmi_uid(cluster, namespace, "grower") != first, 60, "a new VMI")
    vmi = cluster.get("virtualmachineinstances.kubevirt.io", "grower", namespace)
    assert vmi["spec"]["domain"]["cpu"]["sockets"] == 4 and vmi["spec"]["domain"]["memory"]["guest"] == "4Gi"
    wait_for(
        lambda: condition_of(cluster.get("vsvm", "grower", namespace), "RestartRequired") is None,
        60,
        "RestartRequired cleared by the start",
    )
