"""`python -m bench [--vms N | --resync N]`: VMs at scale on the local control plane.

--vms N (default 100), the operator against its floor:
1. The floor: N KubeVirt VMs created directly, brought to Running by the simulator (no operator).
2. The product: N virtstack VMs, reconciled by the operator into KubeVirt VMs, until Ready.
--resync N, the operator holding many VMs: N virtstack VMs created Stopped (no guests, so the two
cores go to the API server and the operator), the operator's RSS with them, then a restart: time
to reconcile every VM and the writes it made (nothing changed, so the goal is none).
Times come from watch events seen by this process (create sent -> event observed). Writes per VM
come from the API server's audit log. Prints figures; asserts nothing (goals are stated beside them).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiohttp
from kubernetes_asyncio import client, config, watch
from virtstack.cli import ADMISSION_POLICIES
from virtstack_testbed.audit import writes
from virtstack_testbed.cli import default_topology
from virtstack_testbed.processes import free_port
from virtstack_testbed.simulator.bench import percentile
from virtstack_testbed.stack import start_stack
from virtstack_testbed.testing import kubevirt_vm
from virtstack_testbed.topology import Topology, load_topology

REPO = Path(__file__).resolve().parents[1]
IMAGE = "quay.io/containerdisks/cirros:0.6.2"
RATIO_GOAL = 1.3
# Four hosts: the (N-1) x maxVMsPerHost capacity rule would hold back all but 150 VMs.
OPERATOR_SETTINGS = {"maxVMsPerHost": 0}
WRITES_GOAL = 3


RSS_GOAL_MIB = 250
RESYNC_GOAL_SECONDS = 60


def virtstack_vm(name: str, state: str = "Running") -> dict:
    return {
        "apiVersion": "virtstack.io/v1alpha1",
        "kind": "VirtualMachine",
        "metadata": {"name": name},
        "spec": {
            "state": state,
            "resources": {"cpu": 1, "memory": "64Mi"},
            "source": {"template": {"image": IMAGE}},
        },
    }


def percentiles(values: list[float]) -> str:
    if not values:
        return "none"
    return "  ".join(
        f"{label} {percentile(values, share):6.2f} s"
        for label, share in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("max", 1.0))
    )


async def run_wave(
    api: client.ApiClient, namespace: str, group: str, plural: str, bodies: list[dict], done
) -> tuple[dict[str, float], float]:
    """Create every body, watching until `done(obj)` holds for all; seconds from each create to done."""
    custom = client.CustomObjectsApi(api)
    version = bodies[0]["apiVersion"].split("/")[1]

    async def create(body: dict) -> None:
        await custom.create_namespaced_custom_object(group, version, namespace, plural, body, field_validation="Strict")

    return await timed(api, namespace, group, version, plural, {b["metadata"]["name"]: b for b in bodies}, create, done)


async def timed(
    api: client.ApiClient, namespace: str, group: str, version: str, plural: str, bodies: dict, send, done
) -> tuple[dict[str, float], float]:
    """`send(body)` for every body (16 at a time), watching until `done(obj)` holds for each; seconds to done."""
    custom = client.CustomObjectsApi(api)
    sent: dict[str, float] = {}
    finished: dict[str, float] = {}
    started = time.monotonic()

    async def watcher() -> None:
        while True:  # a watch the API server ends is opened again; it starts with every object as it is
            async with watch.Watch() as stream:  # closes its response when left, returning included
                async for event in stream.stream(
                    custom.list_namespaced_custom_object, group, version, namespace, plural, timeout_seconds=3600
                ):
                    obj = event["object"]  # custom objects arrive as plain dicts
                    name = obj["metadata"]["name"]
                    if name in sent and name not in finished and done(obj):
                        finished[name] = time.monotonic()
                        if len(finished) == len(bodies):
                            return

    watching = asyncio.create_task(watcher())
    await asyncio.sleep(0.5)
    semaphore = asyncio.Semaphore(16)

    async def one(name: str, body: dict) -> None:
        async with semaphore:
            sent[name] = time.monotonic()
            await send(body)

    await asyncio.gather(*(one(name, body) for name, body in bodies.items()))
    await asyncio.wait_for(watching, timeout=1800)
    return {name: finished[name] - sent[name] for name in finished}, time.monotonic() - started


def stopped_as_asked(obj: dict) -> bool:
    status = obj.get("status", {})
    return (
        status.get("state") == "Stopped"
        and status.get("observedGeneration") == obj["metadata"]["generation"]
        and ready(obj)
    )


def ready(obj: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in obj.get("status", {}).get("conditions", []))


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cost(plane, count: int, since: int) -> str:
    """The operator's writes per VM since the `since`-th, by kind; object writes (without Events) first."""
    done = [w for w in writes(plane, "virtstack/") if w.namespace == "bench-operator"][since:]
    kinds = Counter(f"{w.verb} {w.resource}{'/' + w.subresource if w.subresource else ''}" for w in done)
    objects = sum(n for kind, n in kinds.items() if kind != "create events")
    detail = ", ".join(f"{k}: {v / count:.2f}" for k, v in sorted(kinds.items()))
    return f"{objects / count:.2f} without Events, {len(done) / count:.2f} with  ({detail})"


async def reconciles(port: int) -> float:
    """VM reconciles the operator has finished, from its metrics (0 until it serves them)."""
    try:
        async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/metrics") as response:
            text = await response.text()
    except aiohttp.ClientError:
        return 0
    prefix = 'virtstack_reconcile_duration_seconds_count{kind="virtualmachine"}'
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(prefix))


def operator_writes(plane) -> int:
    return sum(1 for w in writes(plane, "virtstack/") if w.namespace == "bench-operator")


async def bench(count: int, plane) -> None:
    await config.load_kube_config(config_file=plane.kubeconfig)
    async with client.ApiClient() as api:
        core = client.CoreV1Api(api)
        for namespace in ("bench-floor", "bench-operator"):
            await core.create_namespace({"metadata": {"name": namespace}})
        print(f"== {count} VMs, {len(plane.node_names())} hosts, load average {os.getloadavg()[0]:.1f} ==")
        floor, floor_total = await run_wave(
            api,
            "bench-floor",
            "kubevirt.io",
            "virtualmachines",
            [kubevirt_vm(f"f-{i}", memory="64Mi") for i in range(count)],
            lambda vm: vm.get("status", {}).get("printableStatus") == "Running",
        )
        print(f"floor (KubeVirt VMs, simulator only)   to Running: {percentiles(list(floor.values()))}")
        print(f"floor total                            {floor_total:7.1f} s")
        operator, port = start_operator(plane)
        await asyncio.sleep(5)
        idle_rss, cpu_before = rss_mib(operator.pid), cpu_seconds(operator.pid)
        product, total = await run_wave(
            api,
            "bench-operator",
            "virtstack.io",
            "virtualmachines",
            [virtstack_vm(f"v-{i}") for i in range(count)],
            ready,
        )
        print(f"virtstack VMs (operator + simulator)   to Ready:   {percentiles(list(product.values()))}")
        print(
            f"operator total                         {total:7.1f} s   ratio to the floor "
            f"{total / floor_total:4.2f} (goal <= {RATIO_GOAL})"
        )
        wave_cpu = cpu_seconds(operator.pid) - cpu_before
        print(f"operator CPU during the wave             {wave_cpu:7.1f} s ({wave_cpu / total:.0%} of one core)")
        print(f"operator writes per VM, create to Ready: {cost(plane, count, 0)}  (goal <= {WRITES_GOAL})")
        before = len(writes(plane, "virtstack/"))
        await asyncio.sleep(15)
        print(f"operator writes in 15 s of quiet:        {len(writes(plane, 'virtstack/')) - before}  (goal 0)")
        print(f"operator RSS idle / with {count} VMs:       {idle_rss:.0f} / {rss_mib(operator.pid):.0f} MiB")
        before = operator_writes(plane)
        custom = client.CustomObjectsApi(api)

        async def stop(name: str) -> None:
            patch = {"spec": {"state": "Stopped"}}
            await custom.patch_namespaced_custom_object(
                "virtstack.io",
                "v1alpha1",
                "bench-operator",
                "virtualmachines",
                name,
                patch,
                _content_type="application/merge-patch+json",
            )

        names = {f"v-{i}": f"v-{i}" for i in range(count)}
        stopped, stop_total = await timed(
            api, "bench-operator", "virtstack.io", "v1alpha1", "virtualmachines", names, stop, stopped_as_asked
        )
        print(
            f"a stop of every VM, to Ready as Stopped: {percentiles(list(stopped.values()))}  total {stop_total:.1f} s"
        )
        print(f"operator writes per VM for the stop:     {cost(plane, count, before)}")
        await asyncio.sleep(10)  # the last status writes land before the restart
        await restart(plane, port, count)


def start_operator(plane):
    """The operator as a process of the plane, metrics on (the settings are written once, so a
    restart keeps the port); returns the process and its metrics port."""
    settings = Path(plane.run_dir) / "operator.yaml"
    if not settings.exists():
        settings.write_text(json.dumps(OPERATOR_SETTINGS | {"metrics": {"enabled": True, "port": free_port()}}))
    env = {"KUBECONFIG": plane.kubeconfig, "VIRTSTACK_CONFIG": str(settings)}
    record = plane.start("virtstack-operator", [sys.executable, "-m", "virtstack", "run"], env=env)
    return record, json.loads(settings.read_text())["metrics"]["port"]


async def restart(plane, port: int, count: int) -> None:
    """Stop the operator, start it again; time until it has reconciled every VM, and what it wrote."""
    plane.stop_process("virtstack-operator")
    before = operator_writes(plane)
    started = time.monotonic()
    operator, _ = start_operator(plane)
    while await reconciles(port) < count:
        await asyncio.sleep(0.2)
    print(
        f"restart: every VM reconciled after      {time.monotonic() - started:7.1f} s "
        f"(goal < {RESYNC_GOAL_SECONDS} s at 10,000)"
    )
    await asyncio.sleep(10)
    print(f"restart: writes with nothing changed     {operator_writes(plane) - before}  (goal 0)")
    print(
        f"restart: operator RSS with {count} VMs     {rss_mib(operator.pid):.0f} MiB "
        f"(goal < {RSS_GOAL_MIB} MiB at 10,000)"
    )


async def resync(count: int, plane) -> None:
    await config.load_kube_config(config_file=plane.kubeconfig)
    async with client.ApiClient() as api:
        await client.CoreV1Api(api).create_namespace({"metadata": {"name": "bench-operator"}})
        print(f"== {count} stopped VMs, load average {os.getloadavg()[0]:.1f} ==")
        operator, port = start_operator(plane)
        await asyncio.sleep(5)
        idle_rss, cpu_before = rss_mib(operator.pid), cpu_seconds(operator.pid)
        created, total = await run_wave(
            api,
            "bench-operator",
            "virtstack.io",
            "virtualmachines",
            [virtstack_vm(f"v-{i}", state="Stopped") for i in range(count)],
            stopped_as_asked,
        )
        print(f"created Stopped, to Ready:             {percentiles(list(created.values()))}  total {total:.1f} s")
        print(f"operator CPU during the wave             {cpu_seconds(operator.pid) - cpu_before:7.1f} s")
        print(f"operator writes per VM, create:          {cost(plane, count, 0)}")
        await asyncio.sleep(10)
        print(
            f"operator RSS idle / with {count} VMs:       {idle_rss:.0f} / {rss_mib(operator.pid):.0f} MiB "
            f"(goal < {RSS_GOAL_MIB} MiB at 10,000)"
        )
        await restart(plane, port, count)


def topology_for(count: int) -> Topology:
    """The default hosts, grown to hold both waves (2N VMs): pods, and CPU and memory at KubeVirt's requests."""
    topology = load_topology(default_topology())
    per_host = 2 * count // len(topology.nodes) + 10
    for host in topology.nodes:
        host.pods = max(host.pods, per_host)
        host.cpu = str(max(int(host.cpu), per_host // 5))  # 100m per vCPU (cpuAllocationRatio 10), with room
        host.memory = f"{max(64, per_host // 2)}Gi"  # a launcher pod asks about 250 MiB for a 64 MiB guest
    return topology


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    waves = parser.add_mutually_exclusive_group()
    waves.add_argument("--vms", type=int, default=100, help="how many VMs per wave (default 100)")
    waves.add_argument("--resync", type=int, metavar="N", help="N stopped VMs: RSS and a restart's resync")
    args = parser.parse_args()
    count = args.resync or args.vms
    run_dir = Path(tempfile.mkdtemp(prefix="virtstack-bench-"))
    plane = start_stack(run_dir / "plane", topology_for(0 if args.resync else count), log=lambda _: None)
    try:
        plane.apply_files(REPO / "crds", REPO / ADMISSION_POLICIES)
        asyncio.run(resync(count, plane) if args.resync else bench(count, plane))
    finally:
        plane.stop()
    machine = {
        "machine": "2 cores, 24 GiB (see README)",
        "vms": count,
        "mode": "resync" if args.resync else "waves",
        "load average at the end": os.getloadavg()[0],
    }
    print(json.dumps(machine))


if __name__ == "__main__":
    main()
