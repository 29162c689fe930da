"""The whole testbed: the control plane, KubeVirt's CRDs and the KubeVirt simulator."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from .kubevirt_crds import generate_crds
from .plane import Plane, start_plane
from .processes import wait_until
from .simulator.admission import policies
from .topology import Topology

SIMULATOR = "kubevirt-simulator"


def start_stack(
    run_dir: Path, topology: Topology, apiserver_port: int | None = None, simulator: bool = True, log=print
) -> Plane:
    plane = start_plane(run_dir, topology, apiserver_port, log)
    try:
        install_kubevirt_crds(plane)
        install_kubevirt_admission(plane)
        if simulator:
            start_simulator(plane)
    except BaseException:
        plane.stop(keep_logs=True)
        raise
    return plane


def install_kubevirt_crds(plane: Plane) -> None:
    crds = generate_crds()
    plane.apply(crds)
    plane.wait_for_crds([crd["metadata"]["name"] for crd in crds])


def install_kubevirt_admission(plane: Plane, timeout: float = 30) -> None:
    """KubeVirt's webhook checks that CEL can express, as ValidatingAdmissionPolicies (simulator/admission.py).

    Returns once the API server enforces them: policies load asynchronously, so a VM breaking one
    rule is sent (dry run) until it is refused.
    """
    plane.apply(policies())
    probe = {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachine",
        "metadata": {"name": "admission-probe", "namespace": "default"},
        "spec": {"running": False, "runStrategy": "Halted", "template": {"spec": {"domain": {"devices": {}}}}},
    }
    text = yaml.safe_dump(probe)

    def enforced() -> bool:
        result = plane.kubectl("create", "--dry-run=server", "-f", "-", input_text=text, check=False)
        return result.returncode != 0 and "mutually exclusive" in result.stderr

    wait_until(enforced, timeout, "waiting for the KubeVirt admission policies to be enforced", interval=0.5)


def start_simulator(plane: Plane, flags: Sequence[str] = ()) -> None:
    """The simulator is a separate controller process, as KubeVirt's controllers are.

    `flags` are extra command-line flags (`python -m virtstack_testbed.simulator --help`), e.g.
    `--heartbeat-timeout-seconds=5` so that tests of node loss take seconds instead of minutes.
    """
    ready_file = Path(plane.run_dir) / "simulator.ready"
    ready_file.unlink(missing_ok=True)
    record = plane.start(
        SIMULATOR,
        [
            sys.executable,
            "-m",
            "virtstack_testbed.simulator",
            f"--kubeconfig={plane.kubeconfig}",
            f"--ready-file={ready_file}",
            *flags,
        ],
    )
    wait_until(ready_file.exists, 60, "waiting for the KubeVirt simulator to sync its caches", record)
