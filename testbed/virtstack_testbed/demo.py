"""The demo: the testbed, our CRDs, the operator as a process, the examples applied, the VMs shown Running."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import yaml
from virtstack.objects import condition_of

from .errors import TestbedError
from .plane import Plane
from .stack import start_stack
from .topology import Topology

OPERATOR = "virtstack-operator"
DEMO_NAMESPACE = "demo"
EXPLAINED_WAITS = ("ISONotReady", "ISOUnusable", "Provisioning", "RootDiskImportFailing")


def run_demo(run_dir: Path, topology: Topology, repo: Path, timeout: float = 120, log=print) -> Plane:
    plane = Plane.load(run_dir) if (run_dir / "state.json").exists() else start_stack(run_dir, topology, log=log)
    plane.apply_files(repo / "crds", repo / "charts" / "virtstack" / "templates" / "admission-policies.yaml")
    if OPERATOR not in plane.processes or not plane.processes[OPERATOR].is_running():
        plane.start(OPERATOR, [sys.executable, "-m", "virtstack", "run"], env={"KUBECONFIG": plane.kubeconfig})
    examples = sorted((repo / "examples").glob("*.yaml"))
    wanted = _wanted_states(examples)
    plane.kubectl("create", "namespace", DEMO_NAMESPACE, check=False)
    for example in examples:
        plane.kubectl(
            "apply",
            "--server-side",
            "--field-manager=demo",
            "--validate=strict",
            "-n",
            DEMO_NAMESPACE,
            "-f",
            str(example),
        )
    log(f"applied {len(examples)} examples into namespace {DEMO_NAMESPACE}; waiting for the VMs")
    deadline = time.monotonic() + timeout
    while (lagging := _lagging(plane, wanted)) and time.monotonic() < deadline:
        time.sleep(1)
    log(plane.kubectl("get", "vsvm,vm,vmi", "-A").stdout)
    for name, message in _explained_waits(plane).items():
        log(f"note: {name}: {message}")
    if lagging:
        raise TestbedError(
            f"VMs not in their wanted state after {timeout:.0f} s: {', '.join(lagging)}",
            f"read the operator's log {plane.processes[OPERATOR].log}",
        )
    log(f"demo ready; stop it with 'testbed down'. kubectl: export KUBECONFIG={plane.kubeconfig}")
    return plane


def _wanted_states(examples: list[Path]) -> dict[str, str]:
    wanted = {}
    for path in examples:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "VirtualMachine" and doc["apiVersion"].startswith("virtstack.io/"):
                wanted[doc["metadata"]["name"]] = doc.get("spec", {}).get("state", "Running")
    return wanted


def _vms(plane: Plane) -> list[dict]:
    return json.loads(plane.kubectl("get", "vsvm", "-n", DEMO_NAMESPACE, "-o", "json").stdout)["items"]


def _ready(vm: dict) -> dict:
    return condition_of(vm, "Ready") or {}


def _lagging(plane: Plane, wanted: dict[str, str]) -> list[str]:
    """VMs not yet reconciled for their generation, or reconciled but not in the wanted state.

    A VM that waits for a reason it states is settled too: an ISO that is not Ready, or a root disk
    CDI is still preparing or failing to import (the demo's example URLs are not reachable from a
    machine without a network).
    """
    vms = {vm["metadata"]["name"]: vm for vm in _vms(plane)}
    lagging = []
    for name, state in wanted.items():
        vm = vms.get(name, {})
        status = vm.get("status", {})
        reconciled = status.get("observedGeneration") == vm.get("metadata", {}).get("generation")
        settled = status.get("state") == state or _ready(vm).get("reason") in EXPLAINED_WAITS
        if not (reconciled and settled):
            lagging.append(f"{name} ({status.get('state')}, wanted {state})")
    return lagging


def _explained_waits(plane: Plane) -> dict[str, str]:
    return {
        vm["metadata"]["name"]: _ready(vm)["message"]
        for vm in _vms(plane)
        if _ready(vm).get("reason") in ("ISONotReady", "ISOUnusable")
    }
