"""Structured logs: with the default logFormat json every line is one JSON object, and the lines written
while an object is reconciled name it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import yaml
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


def test_a_taken_metrics_port_stops_the_operator_with_json_errors(tmp_path: Path) -> None:
    """A configuration error at start-up: exit 1, and the reason as JSON lines (no bare traceback)."""
    taken = socket.socket()
    taken.bind(("0.0.0.0", 0))  # noqa: S104 - the operator binds every address
    taken.listen()
    port = taken.getsockname()[1]
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"metrics": {"enabled": True, "port": port}}))
    try:
        result = subprocess.run(
            [sys.executable, "-m", "virtstack", "run"],
            env={**os.environ, "VIRTSTACK_CONFIG": str(config), "KUBECONFIG": str(tmp_path / "absent")},
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    finally:
        taken.close()
    assert result.returncode == 1
    entries = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    assert any(f"cannot serve metrics on port {port}" in e["message"] for e in entries), result.stderr
