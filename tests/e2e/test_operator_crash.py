"""SIGKILL the operator in the middle of its work: after a restart everything converges, nothing doubles."""

from __future__ import annotations

from collections import Counter

import yaml
from virtstack_testbed.testing import Cluster, wait_for

from .test_walking_skeleton import vsvm

COUNT = 20


def kubevirt_vms_by_owner(cluster: Cluster, namespace: str) -> Counter:
    return Counter(
        ref["uid"]
        for vm in cluster.list("virtualmachines.kubevirt.io", namespace)
        for ref in vm["metadata"].get("ownerReferences", [])
    )


def test_sigkill_while_creating_and_deleting_converges_without_duplicates(
    cluster: Cluster, namespace: str, operator
) -> None:
    names = [f"crash-{i:02d}" for i in range(COUNT)]
    cluster.kubectl(
        "apply",
        "--server-side",
        "--validate=strict",
        "-n",
        namespace,
        "-f",
        "-",
        input_text=yaml.safe_dump_all([vsvm(name) for name in names]),
    )
    wait_for(
        lambda: len(cluster.list("virtualmachines.kubevirt.io", namespace)) >= COUNT // 4,
        60,
        "the operator part way through",
    )
    operator.kill()
    operator.start()

    def all_running() -> bool:
        vms = cluster.list("vsvm", namespace)
        return len(vms) == COUNT and all(vm.get("status", {}).get("state") == "Running" for vm in vms)

    wait_for(all_running, 180, f"all {COUNT} VMs Running after the restart")
    uids = {vm["metadata"]["uid"] for vm in cluster.list("vsvm", namespace)}
    owners = kubevirt_vms_by_owner(cluster, namespace)
    assert set(owners) == uids and set(owners.values()) == {1}, "exactly one KubeVirt VM per VM"
    assert len(cluster.list("virtualmachineinstances.kubevirt.io", namespace)) == COUNT
    pods = Counter(
        pod["metadata"]["labels"]["virtstack.io/vm"]
        for pod in cluster.list("pods", namespace)
        if not pod["metadata"].get("deletionTimestamp")
    )
    assert set(pods.values()) == {1} and len(pods) == COUNT, "one launcher pod per VM"

    doomed = names[: COUNT // 2]
    cluster.kubectl("delete", "vsvm", *doomed, "-n", namespace, "--wait=false")
    operator.kill()
    operator.start()
    wait_for(
        lambda: len(cluster.list("virtualmachines.kubevirt.io", namespace)) == COUNT - len(doomed),
        120,
        "the deleted VMs' KubeVirt VMs gone",
    )
    wait_for(lambda: len(cluster.list("vsvm", namespace)) == COUNT - len(doomed), 60, "the deleted VMs gone")
    kept = {vm["metadata"]["name"] for vm in cluster.list("vsvm", namespace)}
    assert kept == set(names[COUNT // 2 :])
    assert all(vm["status"]["state"] == "Running" for vm in cluster.list("vsvm", namespace))
