"""Structured logs: with the default logFormat json every line is one JSON object, and the lines written
while an object is reconciled name it."""

from __future__ import annotations

import json

from virtstack_testbed.testing import Cluster

from .conftest import Operator
from .test_vm_lifecycle import vm_with, wait_state


def test_json_lines_name_the_objects_they_are_about(cluster: Cluster, namespace: str, operator: Operator) -> None:
    cluster.apply(vm_with("logged"), namespace=namespace)
    wait_state(cluster, namespace, "logged", "Running")
    lines = [line for line in operator.log_path.read_text().splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # fails on any line that is not one JSON object
    assert all({"time", "level", "logger", "message"} <= entry.keys() for entry in entries)
    about = [e for e in entries if e.get("object") == {"kind": "VirtualMachine", "namespace": namespace,
                                                       "name": "logged"}]  # fmt: skip
    messages = {e["message"] for e in about}
    assert "apply virtualmachines.kubevirt.io: 201" in messages or "apply virtualmachines.kubevirt.io: 200" in messages
    assert any(m.startswith("patch virtualmachines.virtstack.io/status: 200") for m in messages), messages
