"""Start and stop the testbed's processes by the PIDs we started, never by name."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import TestbedError


@dataclass(frozen=True)
class ProcessRecord:
    """What is needed to stop a process later, from another Python process if need be."""

    name: str
    pid: int
    start_time: int  # the kernel's start time of the PID: a reused PID has another
    log: str

    def is_running(self) -> bool:
        """True while this very process is alive (not a zombie, not a newer process with its PID)."""
        stat = _read_stat(self.pid)
        return stat is not None and stat[0] != "Z" and int(stat[19]) == self.start_time

    def stop(self, grace_seconds: float = 10.0) -> None:
        """SIGTERM the process group, then SIGKILL whatever is left after the grace period."""
        if not self.is_running():
            _reap(self.pid)
            return
        _signal_group(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_seconds
        while time.monotonic() < deadline:
            _reap(self.pid)
            if not self.is_running():
                return
            time.sleep(0.05)
        _signal_group(self.pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while self.is_running() and time.monotonic() < deadline:
            _reap(self.pid)
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL at once: how tests simulate a crashed process or a failed host."""
        if self.is_running():
            _signal_group(self.pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while self.is_running() and time.monotonic() < deadline:
            _reap(self.pid)
            time.sleep(0.05)


def start_process(name: str, args: list[str], log_dir: Path, env: dict[str, str] | None = None) -> ProcessRecord:
    """Start a daemon in its own session so it outlives the CLI that started it."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(  # noqa: S603 - arguments are ours
            args,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
    stat = _read_stat(process.pid)
    start_time = int(stat[19]) if stat is not None else 0
    return ProcessRecord(name=name, pid=process.pid, start_time=start_time, log=str(log_path))


def _read_stat(pid: int) -> list[str] | None:
    """/proc/PID/stat after the command name: state is [0], starttime is [19]."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def wait_until(predicate, timeout: float, what: str, record: ProcessRecord | None = None, interval: float = 0.1):
    """Poll until predicate() is truthy; fail early with the log's tail when the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        if record is not None and not record.is_running():
            raise TestbedError(f"{record.name} exited while {what}: {log_tail(record.log)}", f"read {record.log}")
        time.sleep(interval)
    detail = f": {log_tail(record.log)}" if record is not None else ""
    raise TestbedError(
        f"timed out after {timeout:.0f} s {what}{detail}", "see the log; a slow machine may need a retry"
    )


def log_tail(path: str, lines: int = 3) -> str:
    try:
        content = Path(path).read_text(errors="replace").strip().splitlines()
    except FileNotFoundError:
        return "(no log)"
    return " | ".join(line.strip()[:300] for line in content[-lines:])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_port_free(port: int, what: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise TestbedError(
                f"port {port} for {what} is already in use on 127.0.0.1",
                f"stop what listens there (ss -ltnp 'sport = :{port}') or choose another port",
            ) from None


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(pid, sig)


def _reap(pid: int) -> None:
    """Collect our own exited children so they do not linger as zombies."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
