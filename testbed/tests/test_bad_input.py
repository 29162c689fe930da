"""Bad input to the testbed ends with one line naming the cause and the fix, and leaves no process behind."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from virtstack_testbed.binaries import expected_binaries


def run_testbed(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "virtstack_testbed.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        check=False,
    )


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("testbed: error: ") and "(fix: " in lines[0], lines[0]
    return lines[0]


def processes_mentioning(text: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if text.encode() in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def write_topology(path: Path, nodes: list[dict]) -> Path:
    path.write_text(yaml.safe_dump({"nodes": nodes}))
    return path


def test_topology_with_an_unknown_field_names_the_field(tmp_path: Path) -> None:
    topology = write_topology(tmp_path / "t.yaml", [{"name": "h1", "gpus": 2}])
    line = one_line_error(run_testbed("--run-dir", str(tmp_path / "run"), "up", "--topology", str(topology)))
    assert "nodes.0.gpus" in line and "Extra inputs are not permitted" in line
    assert not (tmp_path / "run").exists()


def test_port_taken_names_the_port_and_starts_nothing(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        line = one_line_error(run_testbed("--run-dir", str(tmp_path / "run"), "up", "--port", str(port)))
    assert f"port {port}" in line and "already in use" in line
    assert not (tmp_path / "run" / "state.json").exists()
    assert processes_mentioning(str(tmp_path)) == []


def test_missing_go_says_to_install_it(tmp_path: Path) -> None:
    bare_path = tmp_path / "bin"
    bare_path.mkdir()
    line = one_line_error(run_testbed("build", env={"PATH": str(bare_path), "VIRTSTACK_CACHE": str(tmp_path)}))
    assert "Go is not installed" in line and "install Go" in line


@pytest.mark.skipif(shutil.which("go") is None, reason="needs Go to reach the build step")
def test_build_failure_names_the_component_and_log(tmp_path: Path) -> None:
    line = one_line_error(run_testbed("build", env={"VIRTSTACK_CACHE": str(tmp_path), "GOPROXY": "off"}))
    assert "building kubernetes" in line and str(tmp_path / "build-logs") in line


@pytest.mark.skipif(not all(p.exists() for p in expected_binaries().all()), reason="needs the built binaries")
def test_failure_after_start_stops_every_process_it_started(tmp_path: Path) -> None:
    # Passes the topology model but the API server refuses the Node's quantity: etcd, kube-apiserver
    # and the controllers are already running when it fails.
    topology = write_topology(tmp_path / "t.yaml", [{"name": "h1", "cpu": "lots"}])
    run_dir = tmp_path / "run"
    try:
        result = run_testbed("--run-dir", str(run_dir), "up", "--no-simulator", "--topology", str(topology))
        line = one_line_error(result)
    finally:
        if (run_dir / "state.json").exists():
            run_testbed("--run-dir", str(run_dir), "down")
    assert "refused the topology's nodes" in line and "quantities must match" in line
    assert processes_mentioning(str(run_dir)) == []
    assert [entry.name for entry in run_dir.iterdir()] == ["logs"], "only the logs stay, for the error to point at"
