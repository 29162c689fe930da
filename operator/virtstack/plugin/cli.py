"""`kubectl virtstack ACTION`: each action is a merge patch of the user's spec (field manager kubectl-virtstack).

The plugin never touches status or the KubeVirt objects: it asks, as the user would with
`kubectl patch`, and the operator carries it out. Requests are times (rebootRequestedAt, ...), so
asking again asks again. Exit codes: 0 done, 1 the API server refused (its message is printed),
2 wrong usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from ..api.crd import GROUP, KINDS, VERSION
from ..objects import condition_of

FIELD_MANAGER = "kubectl-virtstack"
MERGE_PATCH = "application/merge-patch+json"
PLURALS = {kind.kind: kind.plural for kind in KINDS}
VMS, SNAPSHOTS = PLURALS["VirtualMachine"], PLURALS["VMSnapshot"]
LIST_COLUMNS = ("NAME", "STATE", "HOST", "ZONE", "IP", "INSTANCE", "READY", "AGE")


class Refused(Exception):
    """The API server said no; its message is what the user needs."""


@dataclass(frozen=True)
class Target:
    namespace: str
    name: str


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def request_time(previous: str | None, now: datetime) -> str:
    """Now, or one second after the previous request when that is not earlier: a new request must differ."""
    if previous:
        earlier = datetime.fromisoformat(previous.replace("Z", "+00:00"))
        if earlier >= now.replace(microsecond=0):
            return rfc3339(earlier + timedelta(seconds=1))
    return rfc3339(now)


def age(created: str | None, now: datetime) -> str:
    """kubectl's short age: 45s, 12m, 5h, 3d."""
    if not created:
        return "<unknown>"
    seconds = int((now - datetime.fromisoformat(created.replace("Z", "+00:00"))).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def vm_row(vm: dict, now: datetime) -> list[str]:
    status = vm.get("status") or {}
    ready = (condition_of(vm, "Ready") or {}).get("status", "")
    return [
        vm["metadata"]["name"],
        status.get("state") or "",
        status.get("host") or "",
        status.get("zone") or "",
        ",".join(status.get("ipAddresses") or []),
        status.get("instanceName") or "",
        ready,
        age(vm["metadata"].get("creationTimestamp"), now),
    ]


def table(header: list[str], rows: list[list[str]]) -> str:
    """kubectl's plain table: columns three spaces apart, empty cells as <none>."""
    cells = [header] + [[cell or "<none>" for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join(
        "   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in cells
    )


# Each VM action: the spec patch it makes from the VM as it is now, and what it says when done.
def start(vm: dict, args: argparse.Namespace, now: datetime) -> dict:
    return {"spec": {"state": "Running"}}


def stop(vm: dict, args: argparse.Namespace, now: datetime) -> dict:
    return {"spec": {"state": "Stopped"}}


def reboot(vm: dict, args: argparse.Namespace, now: datetime) -> dict:
    return {"spec": {"rebootRequestedAt": request_time(vm["spec"].get("rebootRequestedAt"), now)}}


def reinstall(vm: dict, args: argparse.Namespace, now: datetime) -> dict:
    return {"spec": {"reinstallRequestedAt": request_time(vm["spec"].get("reinstallRequestedAt"), now)}}


def migrate(vm: dict, args: argparse.Namespace, now: datetime) -> dict:
    previous = (vm["spec"].get("migration") or {}).get("requestedAt")
    return {"spec": {"migration": {"requestedAt": request_time(previous, now), "host": args.host}}}


def reset_keys(vm: dict, args: argparse.Namespace, now: datetime) -> dict:
    return {"spec": {"sshKeyPairs": args.keypairs}}


def attach_iso(vm: dict, args: argparse.Namespace, now: datetime) -> dict:
    return {"spec": {"attachedISO": args.iso}}


def detach_iso(vm: dict, args: argparse.Namespace, now: datetime) -> dict:
    return {"spec": {"attachedISO": None}}


VM_ACTIONS: dict[str, tuple[Callable[[dict, argparse.Namespace, datetime], dict], str]] = {
    "start": (start, "start requested (spec.state: Running)"),
    "stop": (stop, "stop requested (spec.state: Stopped)"),
    "reboot": (reboot, "reboot requested (spec.rebootRequestedAt)"),
    "reinstall": (reinstall, "reinstall requested (spec.reinstallRequestedAt): the root disk is rebuilt"),
    "migrate": (migrate, "live migration requested (spec.migration)"),
    "reset-keys": (reset_keys, "SSH key pairs set (spec.sshKeyPairs)"),
    "attach-iso": (attach_iso, "ISO attached (spec.attachedISO)"),
    "detach-iso": (detach_iso, "ISO detached (spec.attachedISO)"),
}


class Client:
    """virtstack objects through one ApiClient, errors turned into the API server's message."""

    def __init__(self, api: client.ApiClient) -> None:
        self.custom = client.CustomObjectsApi(api)

    async def call(self, method: str, *args: object, **kwargs: object) -> dict:
        try:
            return await getattr(self.custom, method)(GROUP, VERSION, *args, **kwargs)
        except ApiException as error:
            raise Refused(api_message(error)) from None

    async def get(self, plural: str, target: Target) -> dict:
        return await self.call("get_namespaced_custom_object", target.namespace, plural, target.name)

    async def patch(self, plural: str, target: Target, patch: dict) -> dict:
        return await self.call(
            "patch_namespaced_custom_object",
            target.namespace,
            plural,
            target.name,
            patch,
            field_manager=FIELD_MANAGER,
            _content_type=MERGE_PATCH,
        )


def api_message(error: ApiException) -> str:
    try:
        return json.loads(error.body)["message"]
    except (TypeError, ValueError, KeyError):
        return f"{error.status} {error.reason}"


async def run_vm_action(virtstack: Client, args: argparse.Namespace) -> str:
    target = Target(args.namespace, args.vm)
    vm = await virtstack.get(VMS, target)
    make_patch, done = VM_ACTIONS[args.command]
    await virtstack.patch(VMS, target, make_patch(vm, args, datetime.now(UTC)))
    return f"{VMS}.{GROUP}/{args.vm} {done}"


async def run_snapshot(virtstack: Client, args: argparse.Namespace) -> str:
    await virtstack.get(VMS, Target(args.namespace, args.vm))  # a clear "not found" before anything is created
    name = args.name or f"{args.vm}-{datetime.now(UTC):%Y%m%d%H%M%S}"
    spec = {"virtualMachine": args.vm, "memory": args.memory, "quiesce": args.quiesce}
    if args.description:
        spec["description"] = args.description
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "VMSnapshot", "metadata": {"name": name}, "spec": spec}
    await virtstack.call(
        "create_namespaced_custom_object", args.namespace, SNAPSHOTS, body, field_manager=FIELD_MANAGER
    )
    return f"{SNAPSHOTS}.{GROUP}/{name} created for virtualmachine {args.vm}"


async def run_revert(virtstack: Client, args: argparse.Namespace) -> str:
    target = Target(args.namespace, args.snapshot)
    snapshot = await virtstack.get(SNAPSHOTS, target)
    when = request_time(snapshot["spec"].get("revertRequestedAt"), datetime.now(UTC))
    await virtstack.patch(SNAPSHOTS, target, {"spec": {"revertRequestedAt": when}})
    vm = snapshot["spec"]["virtualMachine"]
    return f"{SNAPSHOTS}.{GROUP}/{args.snapshot} revert of virtualmachine {vm} requested (spec.revertRequestedAt)"


async def run_list(virtstack: Client, args: argparse.Namespace) -> str:
    if args.all_namespaces:
        found = await virtstack.call("list_cluster_custom_object", VMS)
    else:
        found = await virtstack.call("list_namespaced_custom_object", args.namespace, VMS)
    items = sorted(found["items"], key=lambda vm: (vm["metadata"]["namespace"], vm["metadata"]["name"]))
    if not items:
        where = "any namespace" if args.all_namespaces else f"{args.namespace} namespace"
        return f"No virtual machines found in {where}."
    now = datetime.now(UTC)
    header, rows = list(LIST_COLUMNS), [vm_row(vm, now) for vm in items]
    if args.all_namespaces:
        header, rows = (
            ["NAMESPACE", *header],
            [[vm["metadata"]["namespace"], *r] for vm, r in zip(items, rows, strict=True)],
        )
    return table(header, rows)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="kubectl virtstack", description="CloudStack's VM actions on virtstack VirtualMachines."
    )
    top.add_argument("-n", "--namespace", help="the namespace; default: the kubeconfig context's, else default")
    top.add_argument("--kubeconfig", help="path to the kubeconfig; default: $KUBECONFIG or ~/.kube/config")
    top.add_argument("--context", help="the kubeconfig context to use")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    listing = commands.add_parser("list", help="VMs with state, host, zone, IP, instance name, Ready and age")
    listing.add_argument("-A", "--all-namespaces", action="store_true", help="in every namespace")
    listing.set_defaults(run=run_list)

    helps = {
        "start": "start a VM",
        "stop": "stop a VM (graceful shutdown)",
        "reboot": "reboot a running VM",
        "reinstall": "rebuild a VM's root disk from its source (the disk's data is lost)",
        "migrate": "live-migrate a running VM (administrators)",
        "reset-keys": "replace a VM's SSH key pairs",
        "attach-iso": "attach an ISO as a CD-ROM",
        "detach-iso": "detach the ISO",
    }
    for name, text in helps.items():
        action = commands.add_parser(name, help=text)
        action.add_argument("vm", help="the VirtualMachine")
        if name == "migrate":
            action.add_argument("--host", help="the destination host; default: the scheduler chooses")
        if name == "reset-keys":
            action.add_argument("keypairs", nargs="+", metavar="KEYPAIR", help="SSHKeyPair names")
        if name == "attach-iso":
            action.add_argument(
                "iso", help="the ISO: its name, or namespace/name for a public ISO of another namespace"
            )
        action.set_defaults(run=run_vm_action)

    snapshot = commands.add_parser("snapshot", help="take a VM snapshot (a VMSnapshot)")
    snapshot.add_argument("vm", help="the VirtualMachine")
    snapshot.add_argument("name", nargs="?", help="the VMSnapshot's name; default: <vm>-<UTC time>")
    snapshot.add_argument("--description", help="what the snapshot is for")
    snapshot.add_argument("--memory", action="store_true", help="also keep memory (KubeVirt cannot: said in status)")
    snapshot.add_argument("--quiesce", action="store_true", help="freeze the guest's file systems (guest agent)")
    snapshot.set_defaults(run=run_snapshot)

    revert = commands.add_parser("revert", help="revert a VM to a VMSnapshot")
    revert.add_argument("snapshot", help="the VMSnapshot")
    revert.set_defaults(run=run_revert)
    return top


async def _main(args: argparse.Namespace) -> str:
    await config.load_kube_config(config_file=args.kubeconfig, context=args.context)
    if not args.namespace:
        contexts, active = config.list_kube_config_contexts(config_file=args.kubeconfig)
        chosen = next((c for c in contexts if c["name"] == args.context), active)
        args.namespace = chosen["context"].get("namespace") or "default"
    async with client.ApiClient() as api:
        api.user_agent = FIELD_MANAGER
        return await args.run(Client(api), args)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        print(asyncio.run(_main(args)))
    except Refused as refusal:
        print(f"Error from server: {refusal}", file=sys.stderr)
        return 1
    except (config.ConfigException, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0
