"""Bad input all at once: each case ends in a refusal or a condition naming the fix, and valid VMs
submitted alongside become Ready about as fast as without it.

The API's own refusals come from test_api_validation's catalogue; the cross-object cases (missing
or foreign references, oversized user-data, a GPU no host offers) need the operator.
"""

from __future__ import annotations

import base64
import time
import uuid

import pytest
import yaml
from virtstack.objects import condition_of
from virtstack_testbed.testing import Cluster, wait_for

from .test_api_validation import INVALID
from .test_vm_lifecycle import vm_with
from .test_walking_skeleton import vsvm

pytestmark = [pytest.mark.usefixtures("operator"), pytest.mark.simulator]
BATCH = 6
NOWHERE_PROFILE = "catalogue-nowhere"


def ready_all(cluster: Cluster, namespace: str, names: list[str], timeout: float = 120) -> None:
    def all_ready() -> bool:
        conditions = [condition_of(cluster.get("vsvm", name, namespace), "Ready") for name in names]
        return all(c and c["status"] == "True" for c in conditions)

    wait_for(all_ready, timeout, f"{len(names)} valid VMs Ready")


def timed_batch(cluster: Cluster, namespace: str, prefix: str, alongside=lambda: None) -> float:
    names = [f"{prefix}-{i}" for i in range(BATCH)]
    started = time.monotonic()
    cluster.apply(*(vsvm(name) for name in names), namespace=namespace)
    alongside()
    ready_all(cluster, namespace, names)
    return time.monotonic() - started


@pytest.fixture
def elsewhere(cluster: Cluster):
    """Another namespace holding objects of the right names: references never cross namespaces."""
    name = f"e2e-other-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", name)
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "foreign-userdata"},
            "stringData": {"userdata": "#"},
        },
        {"apiVersion": "virtstack.io/v1alpha1", "kind": "SSHKeyPair", "metadata": {"name": "foreign-key"}, "spec": {}},
        {
            "apiVersion": "virtstack.io/v1alpha1",
            "kind": "AffinityGroup",
            "metadata": {"name": "foreign-group"},
            "spec": {"type": "HostAntiAffinity"},
        },
        namespace=name,
    )
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def nowhere_profile(cluster: Cluster):
    cluster.apply(
        {
            "apiVersion": "virtstack.io/v1alpha1",
            "kind": "GPUProfile",
            "metadata": {"name": NOWHERE_PROFILE},
            "spec": {"type": "Passthrough", "resourceName": "nvidia.com/NO_SUCH_GPU"},
        }
    )
    yield NOWHERE_PROFILE
    cluster.kubectl("delete", "gpuprofile", NOWHERE_PROFILE, "--ignore-not-found")


# name -> (spec changes, condition type, reason, words its message must hold, whether the VM is built)
CROSS_OBJECT = {
    "key-missing": (
        {"sshKeyPairs": ["nope"]},
        "Ready",
        "SSHKeyPairNotReady",
        "SSHKeyPair nope (spec.sshKeyPairs)",
        False,
    ),
    "key-foreign": (
        {"sshKeyPairs": ["foreign-key"]},
        "Ready",
        "SSHKeyPairNotReady",
        "SSHKeyPair foreign-key (spec.sshKeyPairs) does not exist",
        False,
    ),
    "userdata-missing": (
        {"userData": {"secretRef": {"name": "nope"}}},
        "Ready",
        "UserDataInvalid",
        "Secret nope (spec.userData.secretRef) does not exist",
        False,
    ),
    "userdata-foreign": (
        {"userData": {"secretRef": {"name": "foreign-userdata"}}},
        "Ready",
        "UserDataInvalid",
        "Secret foreign-userdata (spec.userData.secretRef) does not exist",
        False,
    ),
    "userdata-oversized": (
        {"userData": {"secretRef": {"name": "oversized-userdata"}}},
        "Ready",
        "UserDataInvalid",
        "over the 32768-byte limit",
        False,
    ),
    "gpu-profile-missing": (
        {"gpu": {"profile": "nope"}},
        "Ready",
        "GPUProfileMissing",
        "GPUProfile nope (spec.gpu.profile) does not exist",
        False,
    ),
    "gpu-offered-nowhere": ({"gpu": {"profile": NOWHERE_PROFILE}}, "Scheduled", None, "NO_SUCH_GPU", True),
    "group-foreign": (
        {"affinityGroups": ["foreign-group"]},
        "AffinityGroups",
        "GroupMissing",
        "AffinityGroup foreign-group does not exist",
        True,
    ),
}


def test_bad_input_ends_in_clear_conditions_while_valid_vms_keep_their_speed(
    cluster: Cluster, namespace: str, elsewhere: str, nowhere_profile: str
) -> None:
    alone = timed_batch(cluster, namespace, "alone")
    oversized = base64.b64encode(b"x" * 40000).decode()
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "oversized-userdata"},
            "data": {"userdata": oversized},
        },
        namespace=namespace,
    )

    def flood() -> None:
        cluster.apply(*(vm_with(name, **case[0]) for name, case in CROSS_OBJECT.items()), namespace=namespace)
        refused = cluster.kubectl(
            "apply", "--server-side", "--validate=strict", "-n", namespace, "-f", "-",
            input_text=yaml.safe_dump_all([manifest for _, manifest, _ in INVALID]),
            check=False,
        )  # fmt: skip
        assert refused.returncode != 0
        missing = [case for case, _, message in INVALID if message not in refused.stderr]
        assert not missing, f"refused without naming the field: {missing}"

    alongside = timed_batch(cluster, namespace, "alongside", flood)
    print(f"valid VMs Ready alone {alone:.1f} s, alongside the bad input {alongside:.1f} s")
    assert alongside <= 2 * alone + 15, "bad input slowed the valid VMs down"

    for name, (_, kind, reason, words, built) in CROSS_OBJECT.items():
        found = wait_for(
            lambda n=name, k=kind, r=reason, w=words: (
                (c := condition_of(cluster.get("vsvm", n, namespace), k))
                and c["status"] == "False"
                and (r is None or c["reason"] == r)
                and w in c["message"]
                and c
            ),
            60,
            f"{name}: {kind} False{f' ({reason})' if reason else ''} saying {words!r}",
        )
        assert found["observedGeneration"] == 1
        exists = cluster.get("virtualmachines.kubevirt.io", name, namespace) is not None
        assert exists == built, f"{name}: KubeVirt VM {'missing' if built else 'half-made'}"
    accepted = {vm["metadata"]["name"] for vm in cluster.list("vsvm", namespace)}
    assert accepted == {*CROSS_OBJECT, *(f"{p}-{i}" for p in ("alone", "alongside") for i in range(BATCH))}
