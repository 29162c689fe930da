"""`testbed`: build, start, inspect, break and stop the local control plane."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

from .binaries import ensure_binaries
from .cache import cache_root
from .demo import run_demo
from .errors import TestbedError
from .plane import Plane, nodes_status
from .simulator.node import node_ready
from .stack import start_stack
from .topology import load_topology


def default_run_dir() -> Path:
    return cache_root() / "run" / "default"


def default_topology() -> Path:
    return Path(str(resources.files("virtstack_testbed") / "topology-default.yaml"))


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args) or 0
    except TestbedError as error:
        print(f"testbed: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="testbed", description=__doc__)
    parser.add_argument(
        "--run-dir", type=Path, default=default_run_dir(), help="where state, logs and the kubeconfig live"
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    build = commands.add_parser("build", help="build or reuse the control-plane binaries")
    build.set_defaults(handler=_build)

    up = commands.add_parser("up", help="start the control plane, kwok hosts and the KubeVirt simulator")
    up.add_argument("--topology", type=Path, default=None, help="YAML file of fake hosts (default: 3 hosts)")
    up.add_argument("--port", type=int, default=None, help="kube-apiserver port (default: a free one)")
    up.add_argument("--no-simulator", action="store_true", help="start only the control plane")
    up.set_defaults(handler=_up)

    down = commands.add_parser("down", help="stop everything 'up' started")
    down.set_defaults(handler=_down)

    status = commands.add_parser("status", help="processes and nodes")
    status.set_defaults(handler=_status)

    fail = commands.add_parser("fail-node", help="stop a host's kwok: its Node goes NotReady")
    fail.add_argument("node")
    fail.set_defaults(handler=lambda a: Plane.load(a.run_dir).fail_node(a.node))

    recover = commands.add_parser("recover-node", help="start a failed host's kwok again")
    recover.add_argument("node")
    recover.set_defaults(handler=lambda a: Plane.load(a.run_dir).recover_node(a.node))

    demo = commands.add_parser("demo", help="up, then run the operator and apply examples/ until the VMs run")
    demo.add_argument("--repo", type=Path, default=Path.cwd(), help="the virtstack checkout (default: here)")
    demo.add_argument("--topology", type=Path, default=None, help="YAML file of fake hosts (default: 3 hosts)")
    demo.set_defaults(handler=_demo)

    kubectl = commands.add_parser("kubectl", help="kubectl against the testbed", add_help=False)
    kubectl.add_argument("kubectl_args", nargs=argparse.REMAINDER)
    kubectl.set_defaults(handler=_kubectl)

    env = commands.add_parser("env", help="print shell exports for the testbed's kubeconfig and kubectl")
    env.set_defaults(handler=_env)
    return parser


def _build(args) -> None:
    for path in ensure_binaries().all():
        print(path)


def _up(args) -> None:
    topology = load_topology(args.topology or default_topology())
    plane = start_stack(args.run_dir, topology, apiserver_port=args.port, simulator=not args.no_simulator)
    print(f"export KUBECONFIG={plane.kubeconfig}")


def _demo(args) -> None:
    run_demo(args.run_dir, load_topology(args.topology or default_topology()), args.repo)


def _down(args) -> None:
    if not (args.run_dir / "state.json").exists():
        print(f"no testbed runs from {args.run_dir}")
        return
    Plane.load(args.run_dir).stop()
    print("testbed stopped")


def _status(args) -> None:
    plane = Plane.load(args.run_dir)
    print(f"server {plane.server}  kubeconfig {plane.kubeconfig}")
    for name, record in plane.processes.items():
        print(f"  {name:28} pid {record.pid:<8} {'running' if record.is_running() else 'EXITED'}  {record.log}")
    for name, node in nodes_status(plane).items():
        print(f"  node {name:23} {'Ready' if node_ready(node) else 'NotReady'}")


def _kubectl(args) -> int:
    plane = Plane.load(args.run_dir)
    return subprocess.call([plane.binaries["kubectl"], f"--kubeconfig={plane.kubeconfig}", *args.kubectl_args])


def _env(args) -> None:
    plane = Plane.load(args.run_dir)
    print(f"export KUBECONFIG={plane.kubeconfig}")
    print(
        f"export PATH={Path(plane.binaries['kubectl']).parent}{os.pathsep}{Path(plane.binaries['helm']).parent}"
        f"{os.pathsep}$PATH"
    )


if __name__ == "__main__":
    sys.exit(main())
