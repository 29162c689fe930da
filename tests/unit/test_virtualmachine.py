"""The VirtualMachine's pure pieces: the KubeVirt VM it builds and the status it reports."""

from __future__ import annotations

import base64

import pytest
from virtstack.api.conditions import Condition, ConditionStatus
from virtstack.api.settings import ServiceType, Settings
from virtstack.api.virtualmachine import VirtualMachineSpec, VirtualMachineStatus, VMState
from virtstack.builders.access import KeysDelivery, build_keys_secret, keys_delivery
from virtstack.builders.cloudinit import UserDataError, build_user_data_secret, cloud_init_volume, user_data_from_secret
from virtstack.builders.kubevirt_vm import VMInputs, build_kubevirt_vm, held_size, reboot_pending
from virtstack.builders.names import hostname, instance_name
from virtstack.builders.service import build_service, public_address
from virtstack.status.virtualmachine import Observed, compute_status, transition_event

NOW = "2026-11-25T12:00:00Z"
LATER = "2026-11-25T12:05:00Z"
IMAGE = {"template": {"image": "quay.io/containerdisks/fedora:41"}}


def spec(state: str = "Running", **fields: object) -> VirtualMachineSpec:
    return VirtualMachineSpec.model_validate(
        {"state": state, "resources": {"cpu": 2, "memory": "4Gi"}, "source": IMAGE, **fields}
    )


def build(vm_spec: VirtualMachineSpec, user_data: bytes | None = None, settings: Settings | None = None) -> dict:
    return build_kubevirt_vm(VMInputs("web", "team-a", "uid-1", vm_spec, settings or Settings(), "i-0001", user_data))


def template(built: dict) -> dict:
    return built["spec"]["template"]["spec"]


def volume(template_spec: dict, name: str) -> dict:
    return next(v for v in template_spec["volumes"] if v["name"] == name)


def kubevirt_vm(printable: str, strategy: str = "Once") -> dict:
    return {"spec": {"runStrategy": strategy}, "status": {"printableStatus": printable, "runStrategy": strategy}}


def vmi(phase: str = "Running", node: str | None = "host-a", ip: str = "10.244.1.7", reason: str | None = None) -> dict:
    status: dict = {"phase": phase, "interfaces": [{"name": "default", "ipAddress": ip}]}
    if node:
        status["nodeName"] = node
    if reason:
        status["reason"] = reason
    return {"metadata": {"name": "vm"}, "status": status}


def observed(kv: dict | None, instance: dict | None = None, **extra: object) -> Observed:
    return Observed(kubevirt_vm=kv, vmi=instance, instance_name="i-0001", **extra)


def ready(status: VirtualMachineStatus) -> Condition:
    return next(c for c in status.conditions if c.type == "Ready")


# --- the KubeVirt VM --------------------------------------------------------------------------


def test_kubevirt_vm_is_owned_labelled_and_named_like_ours() -> None:
    built = build(spec(group="frontend", displayName="Web server", osType="Fedora 41"))
    meta = built["metadata"]
    assert (meta["name"], meta["namespace"]) == ("web", "team-a")
    assert meta["labels"] == {
        "virtstack.io/vm": "web",
        "virtstack.io/group": "frontend",
        "app.kubernetes.io/managed-by": "virtstack",
    }
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "virtstack.io/v1alpha1",
            "kind": "VirtualMachine",
            "name": "web",
            "uid": "uid-1",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    template_meta = built["spec"]["template"]["metadata"]
    assert template_meta["labels"] == {"virtstack.io/vm": "web", "virtstack.io/group": "frontend"}
    assert template_meta["annotations"] == {
        "virtstack.io/instance-name": "i-0001",
        "virtstack.io/display-name": "Web server",
        "virtstack.io/os-type": "Fedora 41",
        "virtstack.io/hostname": "web",
        "virtstack.io/service-offering": "2vcpu-4Gi",
    }
    domain = template(built)["domain"]
    assert domain["cpu"]["sockets"] == 2 and domain["memory"]["guest"] == "4Gi"
    assert template(built)["hostname"] == "web"
    assert [d["name"] for d in domain["devices"]["disks"]] == [v["name"] for v in template(built)["volumes"]]


def test_guest_meta_data_disk_reads_cloudstacks_keys_from_the_launcher_pod() -> None:
    built = build(spec(hostname="web-01", resources={"cpu": 4, "memory": "8Gi"}))
    disks = template(built)["domain"]["devices"]["disks"]
    assert {"name": "metadata", "disk": {"bus": "virtio"}} in disks
    downward = volume(template(built), "metadata")["downwardAPI"]
    assert downward["volumeLabel"] == "VSMETA"
    files = {f["path"]: f["fieldRef"]["fieldPath"] for f in downward["fields"]}
    annotations = built["spec"]["template"]["metadata"]["annotations"]
    resolved = {
        path: annotations[field.split("'")[1]]
        for path, field in files.items()
        if field.startswith("metadata.annotations")
    }
    assert resolved == {"instance-id": "i-0001", "local-hostname": "web-01", "service-offering": "4vcpu-8Gi"}
    assert files["availability-zone"] == "metadata.labels['topology.kubernetes.io/zone']"


def test_meta_data_service_offering_is_the_size_the_guest_boots_with() -> None:
    """A live resize held back for the guest agent keeps the offering the guest has."""
    resized = spec(dynamicScaling=True, resources={"cpu": 4, "memory": "8Gi"})
    built = build_kubevirt_vm(VMInputs("web", "team-a", "uid-1", resized, Settings(), "i-0001", held_size=(2, "4Gi")))
    assert built["spec"]["template"]["metadata"]["annotations"]["virtstack.io/service-offering"] == "2vcpu-4Gi"


@pytest.mark.parametrize(
    ("state", "ha", "strategy"),
    [
        ("Running", True, "Always"),  # HA: restarted after any stop it did not ask for
        ("Running", False, "Once"),  # non-HA: an ended VMI is kept, so the VM stays Stopped or Down
        ("Stopped", True, "Halted"),
        ("Stopped", False, "Halted"),
    ],
)
def test_power_state_and_ha_map_to_run_strategy(state: str, ha: bool, strategy: str) -> None:
    assert build(spec(state, highAvailability=ha))["spec"]["runStrategy"] == strategy


@pytest.mark.parametrize(
    ("source", "expected_volume", "data_volume_source"),
    [
        (
            {"template": {"url": "https://example.org/d.qcow2"}},
            {"dataVolume": {"name": "web-rootdisk"}},
            {"source": {"http": {"url": "https://example.org/d.qcow2"}}},
        ),
        (
            {"template": {"pvc": {"name": "golden"}}},
            {"dataVolume": {"name": "web-rootdisk"}},
            {"source": {"pvc": {"namespace": "team-a", "name": "golden"}}},
        ),
        (
            {"template": {"dataSource": {"name": "fedora", "namespace": "os-images"}}},
            {"dataVolume": {"name": "web-rootdisk"}},
            {"sourceRef": {"kind": "DataSource", "name": "fedora", "namespace": "os-images"}},
        ),
    ],
)
def test_template_sources_become_data_volume_templates(
    source: dict, expected_volume: dict, data_volume_source: dict
) -> None:
    built = build(spec(source=source, rootDisk={"size": "20Gi"}), settings=Settings(defaultStorageClass="fast"))
    assert template(built)["volumes"][0] == {"name": "rootdisk", **expected_volume}
    (data_volume,) = built["spec"]["dataVolumeTemplates"]
    assert data_volume["metadata"]["name"] == "web-rootdisk"
    assert data_volume["spec"] == {
        **data_volume_source,
        "storage": {"resources": {"requests": {"storage": "20Gi"}}, "storageClassName": "fast"},
    }


def test_placement_becomes_scheduler_constraints() -> None:
    placement = {
        "zone": "zone-b",
        "hostTags": {"virtstack.io/host-tag.ssd": "true"},
        "osPreference": "windows",
        "allocation": "Pack",
    }
    built = template(build(spec(placement=placement)))
    assert built["nodeSelector"] == {"virtstack.io/host-tag.ssd": "true", "topology.kubernetes.io/zone": "zone-b"}
    preferred = built["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert preferred[0]["preference"]["matchExpressions"][0]["values"] == ["windows"]
    assert built["schedulerName"] == "virtstack-pack"
    assert template(build(spec()))["schedulerName"] == "default-scheduler"
    assert "nodeSelector" not in template(build(spec()))


def test_small_user_data_is_inline_large_goes_through_the_operators_secret() -> None:
    small = template(build(spec(), user_data=b"#cloud-config\n"))
    assert volume(small, "cloudinitdisk")["cloudInitNoCloud"] == {"userData": "#cloud-config\n"}
    assert small["domain"]["devices"]["disks"][1]["name"] == "cloudinitdisk"
    large = template(build(spec(), user_data=b"x" * 3000))
    assert volume(large, "cloudinitdisk")["cloudInitNoCloud"] == {"secretRef": {"name": "web-cloudinit"}}
    assert cloud_init_volume("web", b"x" * 3000)[1] is True
    secret = build_user_data_secret("web", "team-a", "uid-1", b"x" * 3000)
    assert base64.b64decode(secret["data"]["userdata"]) == b"x" * 3000
    assert secret["metadata"]["ownerReferences"][0]["uid"] == "uid-1"


def test_user_data_from_a_secret_names_the_problem_and_the_fix() -> None:
    encoded = base64.b64encode(b"#cloud-config").decode()
    assert user_data_from_secret({"data": {"userdata": encoded}}, "s", "userdata") == b"#cloud-config"
    with pytest.raises(UserDataError, match="Secret s .* does not exist: create it"):
        user_data_from_secret(None, "s", "userdata")
    with pytest.raises(UserDataError, match="no key 'userdata'.*its keys: other"):
        user_data_from_secret({"data": {"other": encoded}}, "s", "userdata")
    too_big = base64.b64encode(b"x" * 24577).decode()
    with pytest.raises(UserDataError, match="over the 32768-byte limit"):
        user_data_from_secret({"data": {"userdata": too_big}}, "s", "userdata")


def test_expose_builds_a_service_selecting_the_vms_pods() -> None:
    expose = spec(expose={"ports": [{"port": 80}, {"port": 443, "name": "https"}]}).expose
    service = build_service("web", "team-a", "uid-1", expose, ServiceType.NODE_PORT)
    assert service["spec"]["selector"] == {"virtstack.io/vm": "web"}
    assert service["spec"]["type"] == "NodePort"
    assert [p["name"] for p in service["spec"]["ports"]] == ["tcp-80", "https"]
    live = {**service, "spec": {**service["spec"], "ports": [{"port": 80, "nodePort": 31080}]}}
    assert public_address(live, {"host-a": "10.240.0.10"}, "host-a") == "10.240.0.10:31080"
    balanced = {**service, "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}]}}}
    assert public_address(balanced, {}, None) == "203.0.113.7"


def test_instance_name_is_an_rfc1123_label_with_optional_display_name() -> None:
    uid = "3f2a9c1e-0000-4000-8000-000000000000"
    assert instance_name(uid, "Web Server #1", False) == "i-3f2a9c1e"
    assert instance_name(uid, "Web Server #1", True) == "i-3f2a9c1e-web-server-1"
    assert len(instance_name(uid, "x" * 100, True)) == 63
    assert hostname("My.VM", spec()) == "my-vm"
    assert hostname("web", spec(hostname="front")) == "front"


# --- status -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wanted", "kv", "instance", "state", "is_ready"),
    [
        ("Running", None, None, VMState.CREATING, False),
        ("Running", kubevirt_vm("Starting"), None, VMState.STARTING, False),
        ("Running", kubevirt_vm("ErrorUnschedulable"), vmi("Scheduling", node=None), VMState.STARTING, False),
        ("Running", kubevirt_vm("Running"), vmi(), VMState.RUNNING, True),
        ("Running", kubevirt_vm("Stopped"), None, VMState.STARTING, False),
        ("Running", kubevirt_vm("Stopped"), vmi("Succeeded"), VMState.STOPPED, False),  # guest shut down (Once)
        ("Running", kubevirt_vm("Stopped"), vmi("Failed", reason="NodeUnresponsive"), VMState.DOWN, False),
        ("Running", kubevirt_vm("CrashLoopBackOff"), None, VMState.ERROR, False),
        ("Stopped", kubevirt_vm("Running", "Once"), vmi(), VMState.STOPPING, False),
        ("Stopped", kubevirt_vm("Stopped", "Halted"), None, VMState.STOPPED, True),
        ("Running", kubevirt_vm("Terminating"), None, VMState.DESTROYING, False),
    ],
)
def test_state_and_ready(wanted: str, kv: dict | None, instance: dict | None, state: VMState, is_ready: bool) -> None:
    status = compute_status(4, spec(wanted), observed(kv, instance), VirtualMachineStatus(), NOW)
    assert status.state is state
    assert (ready(status).status is ConditionStatus.TRUE) is is_ready
    assert ready(status).observedGeneration == status.observedGeneration == 4


def test_down_and_guest_shutdown_say_why_and_how_to_start_again() -> None:
    down = compute_status(
        1,
        spec(),
        observed(kubevirt_vm("Stopped"), vmi("Failed", reason="NodeUnresponsive")),
        VirtualMachineStatus(),
        NOW,
    )
    assert ready(down).reason == "Down" and "NodeUnresponsive" in ready(down).message
    assert down.host is None and down.ipAddresses == []
    shutdown = compute_status(
        1, spec(), observed(kubevirt_vm("Stopped"), vmi("Succeeded")), VirtualMachineStatus(), NOW
    )
    assert ready(shutdown).reason == "GuestShutdown" and "Stopped and back to Running" in ready(shutdown).message


def test_ready_is_false_until_kubevirt_has_seen_the_new_run_strategy() -> None:
    stale = {"spec": {"runStrategy": "Halted"}, "status": {"printableStatus": "Stopped", "runStrategy": "Once"}}
    status = compute_status(2, spec("Stopped"), observed(stale), VirtualMachineStatus(), NOW)
    assert ready(status).status is ConditionStatus.FALSE


def test_running_vm_reports_host_zone_ip_address_and_names() -> None:
    status = compute_status(
        1,
        spec(),
        observed(
            kubevirt_vm("Running"),
            vmi("Running", "host-b", "10.244.2.9"),
            zone="zone-a",
            public_address="10.240.0.11:31080",
        ),
        VirtualMachineStatus(),
        NOW,
    )
    assert (status.host, status.zone, status.ipAddresses) == ("host-b", "zone-a", ["10.244.2.9"])
    assert status.publicAddress == "10.240.0.11:31080" and status.instanceName == "i-0001"
    scheduled = next(c for c in status.conditions if c.type == "Scheduled")
    assert scheduled.status is ConditionStatus.TRUE and "host-b" in scheduled.message


def test_unschedulable_vmi_gives_scheduled_false_insufficient_capacity() -> None:
    unschedulable = {
        "status": {
            "phase": "Scheduling",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/3 nodes are available: 3 Insufficient nvidia.com/GRID_K240Q.",
                }
            ],
        },
        "metadata": {},
    }
    status = compute_status(
        1, spec(), observed(kubevirt_vm("ErrorUnschedulable"), unschedulable), VirtualMachineStatus(), NOW
    )
    scheduled = next(c for c in status.conditions if c.type == "Scheduled")
    assert (scheduled.status, scheduled.reason) == (ConditionStatus.FALSE, "InsufficientCapacity")
    assert "Insufficient nvidia.com/GRID_K240Q" in scheduled.message


def test_transition_time_kept_while_status_unchanged_so_a_resync_writes_nothing() -> None:
    running = observed(kubevirt_vm("Running"), vmi())
    first = compute_status(1, spec(), running, VirtualMachineStatus(), NOW)
    second = compute_status(1, spec(), running, first, LATER)
    assert second == first
    stopped = compute_status(2, spec("Stopped"), observed(kubevirt_vm("Stopped", "Halted")), first, LATER)
    assert ready(stopped).lastTransitionTime == NOW, "Ready stayed True: no transition"
    starting = compute_status(3, spec(), observed(kubevirt_vm("Starting")), stopped, LATER)
    assert ready(starting).lastTransitionTime == LATER


def test_a_state_change_makes_one_event_and_a_steady_state_none() -> None:
    starting = VirtualMachineStatus(state=VMState.STARTING)
    running = compute_status(1, spec(), observed(kubevirt_vm("Running"), vmi()), starting, NOW)
    assert transition_event(starting, running) == (
        "Normal",
        "Running",
        "Starting -> Running: the VM is running as asked",
    )
    assert transition_event(running, running) is None
    down = VirtualMachineStatus(state=VMState.DOWN)
    assert transition_event(running, down)[:2] == ("Warning", "Down")
    assert transition_event(VirtualMachineStatus(), running)[2] == "new -> Running: the VM is running as asked"
    assert transition_event(VirtualMachineStatus(), starting) is None, "a state on the way makes no Event"


def test_reboot_is_pending_until_a_vmi_started_under_the_request_runs() -> None:
    requested = spec(rebootRequestedAt="2026-11-25T12:00:00Z")
    annotation = build(requested)["spec"]["template"]["metadata"]["annotations"]["virtstack.io/reboot-requested-at"]
    assert annotation == "2026-11-25T12:00:00Z"
    old_vmi = {**vmi(), "metadata": {"annotations": {}}}
    new_vmi = {**vmi(), "metadata": {"annotations": {"virtstack.io/reboot-requested-at": annotation}}}
    assert reboot_pending(requested, old_vmi) and not reboot_pending(requested, new_vmi)
    assert not reboot_pending(spec(), old_vmi), "no request, nothing to do"
    before = compute_status(1, requested, observed(kubevirt_vm("Running"), old_vmi), VirtualMachineStatus(), NOW)
    assert before.lastRebootedAt is None
    after = compute_status(1, requested, observed(kubevirt_vm("Running"), new_vmi), before, NOW)
    assert after.lastRebootedAt == requested.rebootRequestedAt


def test_without_dynamic_scaling_the_size_is_pinned_so_kubevirt_restarts_for_changes() -> None:
    pinned = template(build(spec()))["domain"]
    assert pinned["cpu"]["maxSockets"] == 2 and pinned["memory"]["maxGuest"] == "4Gi"
    dynamic = template(build(spec(dynamicScaling=True)))["domain"]
    assert "maxSockets" not in dynamic["cpu"] and "maxGuest" not in dynamic["memory"]


def kubevirt_vm_sized(cpu: int, memory: str) -> dict:
    return {"spec": {"template": {"spec": {"domain": {"cpu": {"sockets": cpu}, "memory": {"guest": memory}}}}}}


def agent_vmi(connected: bool) -> dict:
    conditions = [{"type": "AgentConnected", "status": "True"}] if connected else []
    return {"metadata": {}, "status": {"phase": "Running", "conditions": conditions}}


@pytest.mark.parametrize(
    ("dynamic", "instance", "held"),
    [
        (True, agent_vmi(False), (1, "2Gi")),  # no agent: the running size stays until the next start
        (True, agent_vmi(True), None),  # agent: the new size goes to KubeVirt, which hotplugs it
        (False, agent_vmi(False), None),  # not dynamic: pinned size, KubeVirt says RestartRequired
        (True, None, None),  # not running: the next start takes the new size
    ],
)
def test_dynamic_resize_waits_for_the_guest_agent(dynamic: bool, instance: dict | None, held: tuple | None) -> None:
    assert held_size(spec(dynamicScaling=dynamic), kubevirt_vm_sized(1, "2Gi"), instance) == held


def test_restart_required_is_mirrored_with_what_to_do() -> None:
    kv = {
        **kubevirt_vm("Running"),
        "status": {
            **kubevirt_vm("Running")["status"],
            "conditions": [
                {"type": "RestartRequired", "status": "True", "message": "a non-live-updatable field was changed"}
            ],
        },
    }
    status = compute_status(2, spec(), observed(kv, vmi()), VirtualMachineStatus(), NOW)
    restart = next(c for c in status.conditions if c.type == "RestartRequired")
    assert restart.reason == "RestartRequired" and "next starts" in restart.message and "non-live" in restart.message
    held = compute_status(
        2, spec(), observed(kubevirt_vm("Running"), vmi(), resize_held=True), VirtualMachineStatus(), NOW
    )
    assert next(c for c in held.conditions if c.type == "RestartRequired").reason == "GuestAgentMissing"
    assert ready(held).status is ConditionStatus.TRUE, "the VM still runs as asked"


def test_ssh_keys_reach_kubevirt_through_an_owned_secret_and_nocloud() -> None:
    keys = {"alice": "ssh-ed25519 AAAA1", "deploy": "ssh-ed25519 AAAA2"}
    built = build_kubevirt_vm(
        VMInputs(
            "web", "team-a", "uid-1", spec(sshKeyPairs=["alice", "deploy"]), Settings(), "i-0001", public_keys=keys
        )
    )
    spec_ = built["spec"]["template"]["spec"]
    assert spec_["accessCredentials"] == [
        {"sshPublicKey": {"source": {"secret": {"secretName": "web-ssh-keys"}}, "propagationMethod": {"noCloud": {}}}}
    ]
    assert volume(spec_, "cloudinitdisk")["cloudInitNoCloud"] == {"userData": "#cloud-config\n"}
    secret = build_keys_secret("web", "team-a", "uid-1", keys)
    assert base64.b64decode(secret["data"]["alice"]).decode() == "ssh-ed25519 AAAA1\n"
    booted = booted_from(built)
    assert keys_delivery("web", keys, [], booted) == (KeysDelivery.AT_BOOT, "")
    removed = keys_delivery("web", {"alice": "ssh-ed25519 AAAA1"}, [], booted)
    assert removed[0] is KeysDelivery.PENDING_RESTART, "a removed key waits for the next start"


def booted_from(built: dict, *conditions: dict) -> dict:
    """The VMI KubeVirt starts from a built KubeVirt VM: its template's annotations and spec."""
    template_ = built["spec"]["template"]
    return {
        "metadata": {"annotations": template_["metadata"]["annotations"]},
        "spec": template_["spec"],
        "status": {"phase": "Running", "conditions": list(conditions)},
    }


def test_ssh_keys_for_guest_agent_users_go_in_live_and_the_status_says_where_they_stand() -> None:
    keys = {"alice": "ssh-ed25519 AAAA1"}
    agent = spec(sshKeyPairs=["alice"], sshKeyGuestAgentUsers=["fedora"])
    built = build_kubevirt_vm(VMInputs("web", "team-a", "uid-1", agent, Settings(), "i-0001", public_keys=keys))
    spec_ = template(built)
    assert spec_["accessCredentials"][0]["sshPublicKey"]["propagationMethod"] == {
        "qemuGuestAgent": {"users": ["fedora"]}
    }
    assert "cloudinitdisk" not in [v["name"] for v in spec_["volumes"]], "no cloud-init needed for the keys"
    assert "virtstack.io/ssh-keys-hash" not in built["spec"]["template"]["metadata"]["annotations"]

    synced = {"type": "AccessCredentialsSynchronized", "status": "True", "message": ""}
    failed = {"type": "AccessCredentialsSynchronized", "status": "False", "message": "guest agent not connected"}
    more_keys = {**keys, "bob": "ssh-ed25519 AAAA2"}
    assert keys_delivery("web", more_keys, ["fedora"], booted_from(built, synced)) == (KeysDelivery.LIVE, "")
    assert keys_delivery("web", keys, ["fedora"], booted_from(built, failed)) == (
        KeysDelivery.WAITING_FOR_AGENT,
        "guest agent not connected",
    )
    assert keys_delivery("web", keys, ["fedora"], booted_from(built))[0] is KeysDelivery.WAITING_FOR_AGENT
    assert keys_delivery("web", keys, ["fedora", "admin"], booted_from(built, synced))[0] is (
        KeysDelivery.PENDING_RESTART
    ), "other users change accessCredentials: KubeVirt applies that at the next start"
    assert keys_delivery("web", keys, [], booted_from(built, synced))[0] is KeysDelivery.PENDING_RESTART

    def ssh_keys(delivery: tuple[KeysDelivery, str]) -> Condition:
        running = observed(kubevirt_vm("Running"), vmi(), keys=delivery)
        status = compute_status(1, agent, running, VirtualMachineStatus(), NOW)
        return next(c for c in status.conditions if c.type == "SSHKeys")

    live = ssh_keys((KeysDelivery.LIVE, ""))
    assert (live.status, live.reason) == (ConditionStatus.TRUE, "GuestAgent")
    waiting = ssh_keys((KeysDelivery.WAITING_FOR_AGENT, "guest agent not connected"))
    assert (waiting.status, waiting.reason) == (ConditionStatus.FALSE, "WaitingForGuestAgent")
    assert "KubeVirt: guest agent not connected" in waiting.message


@pytest.mark.parametrize(
    ("printable", "reason", "says"),
    [
        ("Provisioning", "Provisioning", "CDI is preparing the root disk (DataVolume web-rootdisk)"),
        ("DataVolumeError", "RootDiskImportFailing", "kubectl describe dv web-rootdisk"),
    ],
)
def test_a_vm_waiting_for_its_root_disk_says_so(printable: str, reason: str, says: str) -> None:
    waiting = Observed(kubevirt_vm=kubevirt_vm(printable), vmi=None, instance_name="i-1", vm_name="web")
    status = compute_status(1, spec(), waiting, VirtualMachineStatus(), NOW)
    assert status.state is VMState.STARTING
    assert ready(status).reason == reason and says in ready(status).message
