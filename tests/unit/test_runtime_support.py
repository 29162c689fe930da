"""Leader election decisions, metric labels from requests and indexes, the log formats, and what indexes keep."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest
from virtstack.handlers import kept
from virtstack.leader import LEASE_DURATION, Observation, claim, released
from virtstack.logs import REDACTED, JsonFormatter, TextFormatter, reconciling
from virtstack.metrics import describe_request, gpu_figures, snapshot_phases, vm_states

NOW = datetime(2026, 11, 25, 12, 0, 0, 123456, tzinfo=UTC)
HELD = {
    "holderIdentity": "pod-a",
    "leaseDurationSeconds": 15,
    "acquireTime": "2026-11-25T11:00:00.000000Z",
    "renewTime": "2026-11-25T11:59:58.000000Z",
    "leaseTransitions": 3,
}


def test_a_free_lease_is_acquired() -> None:
    spec = claim(None, "pod-a", NOW, expired=True)
    assert spec == {
        "holderIdentity": "pod-a",
        "leaseDurationSeconds": LEASE_DURATION,
        "acquireTime": "2026-11-25T12:00:00.123456Z",
        "renewTime": "2026-11-25T12:00:00.123456Z",
        "leaseTransitions": 0,
    }


def test_the_holder_renews_keeping_its_term() -> None:
    spec = claim(HELD, "pod-a", NOW, expired=False)
    assert spec["acquireTime"] == HELD["acquireTime"] and spec["leaseTransitions"] == 3
    assert spec["renewTime"] == "2026-11-25T12:00:00.123456Z"


def test_another_holders_valid_lease_is_left_alone() -> None:
    assert claim(HELD, "pod-b", NOW, expired=False) is None


def test_an_expired_lease_is_taken_over_as_a_new_term() -> None:
    spec = claim(HELD, "pod-b", NOW, expired=True)
    assert spec["holderIdentity"] == "pod-b" and spec["leaseTransitions"] == 4
    assert spec["acquireTime"] == spec["renewTime"]


def test_a_released_lease_is_taken_at_once_without_counting_a_transition_twice() -> None:
    free = released(HELD, NOW)
    assert free["holderIdentity"] == "" and free["leaseDurationSeconds"] == 1
    observation = Observation(clock=lambda: 0.0)
    observation.see(free)
    assert observation.expired()
    assert claim(free, "pod-b", NOW, observation.expired())["leaseTransitions"] == 3


def test_expiry_is_measured_on_the_local_clock_from_the_last_change_seen() -> None:
    now = [100.0]
    observation = Observation(clock=lambda: now[0])
    observation.see(HELD)
    now[0] = 114.0
    observation.see(dict(HELD))  # the same record again: no renewal seen
    assert not observation.expired()
    now[0] = 115.5
    assert observation.expired(), "15 s without a change"
    observation.see({**HELD, "renewTime": "2026-11-25T12:00:10.000000Z"})
    assert not observation.expired(), "a renewal restarts the wait"


@pytest.mark.parametrize(
    ("method", "url", "query", "content_type", "expected"),
    [
        ("GET", "https://h/api/v1/nodes", [], "", ("list", "nodes")),
        ("GET", "https://h/api/v1/namespaces/ns/secrets/k", [], "", ("get", "secrets")),
        ("GET", "https://h/apis/kubevirt.io/v1/virtualmachines", [("watch", True)], "",
         ("watch", "virtualmachines.kubevirt.io")),
        ("PATCH", "https://h/apis/kubevirt.io/v1/namespaces/ns/virtualmachines/vm", [], "application/apply-patch+yaml",
         ("apply", "virtualmachines.kubevirt.io")),
        ("PATCH", "https://h/apis/virtstack.io/v1alpha1/namespaces/ns/virtualmachines/vm/status", [],
         "application/merge-patch+json", ("patch", "virtualmachines.virtstack.io/status")),
        ("POST", "https://h/apis/events.k8s.io/v1/namespaces/ns/events", [], "", ("create", "events.events.k8s.io")),
        ("PUT", "https://h/apis/coordination.k8s.io/v1/namespaces/ns/leases/l", [], "",
         ("update", "leases.coordination.k8s.io")),
        ("DELETE", "https://h/api/v1/namespaces/ns/pods/p", [], "", ("delete", "pods")),
        ("GET", "https://h/api/v1/namespaces/ns", [], "", ("get", "namespaces")),
        ("GET", "https://h/version", [], "", ("get", "nonresource")),
    ],
)  # fmt: skip
def test_requests_are_described_in_the_api_servers_words(method, url, query, content_type, expected) -> None:
    assert describe_request(method, url, query, content_type) == expected


def test_inventory_figures_from_the_indexes() -> None:
    vms = {
        ("a", "one"): [{"status": {"state": "Running"}}],
        ("a", "two"): [{"status": {"state": "Running"}}],
        ("b", "three"): [{"spec": {}}],
    }
    assert vm_states(vms) == {("a", "Running"): 2, ("b", "Unknown"): 1}
    profiles = {"k240q": [{"status": {"capacity": 2, "allocated": 1, "available": 1}}], "new": [{}]}
    assert gpu_figures(profiles) == {"k240q": {"capacity": 2, "allocated": 1, "available": 1}, "new": {}}
    assert snapshot_phases({("a", "s1"): ["Ready"], ("a", "s2"): [None]}) == {("a", "Ready"): 1, ("a", "Unknown"): 1}


def record(message: str, **extra: object) -> logging.LogRecord:
    entry = logging.LogRecord("virtstack.kube", logging.INFO, __file__, 1, message, (), None)
    entry.__dict__.update(extra)
    return entry


def test_json_lines_name_the_object_being_reconciled() -> None:
    with reconciling("virtualmachine", ("team-a", "web-1")):
        line = JsonFormatter().format(record("apply virtualmachines.kubevirt.io: 200"))
    entry = json.loads(line)
    assert entry["object"] == {"kind": "VirtualMachine", "namespace": "team-a", "name": "web-1"}
    assert entry["level"] == "info" and entry["logger"] == "virtstack.kube" and entry["time"].endswith("Z")
    assert "\n" not in line
    with reconciling("gpuprofile", ("", "k240q")):
        assert json.loads(JsonFormatter().format(record("x")))["object"] == {"kind": "GPUProfile", "name": "k240q"}
    assert "object" not in json.loads(JsonFormatter().format(record("outside any reconcile")))


def test_kopfs_own_object_references_are_used() -> None:
    ref = {"apiVersion": "virtstack.io/v1alpha1", "kind": "SSHKeyPair", "name": "k", "namespace": "n", "uid": "u"}
    entry = json.loads(JsonFormatter().format(record("Handler failed", k8s_ref=ref)))
    assert entry["object"] == {"kind": "SSHKeyPair", "namespace": "n", "name": "k"}
    assert "[SSHKeyPair n/k] Handler failed" in TextFormatter().format(record("Handler failed", k8s_ref=ref))


def test_private_keys_never_reach_a_log_line() -> None:
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----"
    for formatter in (JsonFormatter(), TextFormatter()):
        line = formatter.format(record(f"refused body: {key} and more"))
        assert "b3BlbnNzaC1rZXktdjEAAAAA" not in line and REDACTED in line and "and more" in line
    truncated = JsonFormatter().format(record("body: -----BEGIN RSA PRIVATE KEY-----\nMIIEow"))
    assert "MIIEow" not in truncated, "a key cut off mid-way is masked too"


def test_plugin_requests_always_differ_from_the_previous_one() -> None:
    from virtstack.plugin.cli import request_time

    assert request_time(None, NOW) == "2026-11-25T12:00:00Z"
    assert request_time("2026-11-25T11:00:00Z", NOW) == "2026-11-25T12:00:00Z"
    assert request_time("2026-11-25T12:00:00Z", NOW) == "2026-11-25T12:00:01Z", "the same second: one later"
    assert request_time("2026-11-25T12:00:05Z", NOW) == "2026-11-25T12:00:06Z", "a clock behind the last request"


def test_plugin_list_columns_and_ages() -> None:
    from virtstack.plugin.cli import age, table, vm_row

    vm = {
        "metadata": {"name": "web", "creationTimestamp": "2026-11-25T09:00:00Z"},
        "status": {"state": "Running", "host": "host-a", "zone": "a", "ipAddresses": ["10.0.0.5", "fd00::5"],
                   "instanceName": "i-1a2b3c4d", "conditions": [{"type": "Ready", "status": "True"}]},
    }  # fmt: skip
    assert vm_row(vm, NOW) == ["web", "Running", "host-a", "a", "10.0.0.5,fd00::5", "i-1a2b3c4d", "True", "3h"]
    assert vm_row({"metadata": {"name": "new"}}, NOW)[1:] == ["", "", "", "", "", "", "<unknown>"]
    assert [age(t, NOW) for t in ("2026-11-25T11:59:30Z", "2026-11-25T11:48:00Z", "2026-11-20T12:00:00Z")] == [
        "30s",
        "12m",
        "5d",
    ]
    assert table(["NAME", "STATE"], [["web", "Running"], ["db", ""]]) == ("NAME   STATE\nweb    Running\ndb     <none>")


def test_indexes_keep_copies() -> None:
    body = {"metadata": {"name": "web", "labels": {"virtstack.io/vm": "web"}}, "spec": {"state": "Running"}}
    copied = kept.whole(body)
    assert copied == body
    copied["spec"]["state"] = "Stopped"
    copied["metadata"]["labels"]["x"] = "y"
    assert body["spec"]["state"] == "Running" and "x" not in body["metadata"]["labels"], "a copy, not a view"


def test_what_indexes_keep_shares_each_string_between_objects() -> None:
    """Thousands of VMs repeat the same keys and values: the copies hold one of each, not one per VM."""

    def listed(name: str) -> dict:  # as two JSON documents parse: equal strings, distinct objects
        return json.loads(json.dumps({"metadata": {"name": name}, "status": {"printableStatus": "Stopped"}}))

    first, second = kept.whole(listed("web")), kept.whole(listed("db"))
    (key_1,), (key_2,) = first["status"], second["status"]
    assert key_1 is key_2 and first["status"][key_1] is second["status"][key_2]
    uids = [kept.metadata(json.loads('{"metadata": {"uid": "u-1"}}'))["uid"] for _ in range(2)]
    assert uids[0] is not uids[1], "a value that differs in every object is not interned"
    assert kept.fields(listed("web"), "status", "spec") == {
        "metadata": {"name": "web"},
        "status": {"printableStatus": "Stopped"},
        "spec": {},
    }
