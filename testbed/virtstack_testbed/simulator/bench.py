"""`python -m virtstack_testbed.simulator.bench --vms N`: the simulator under load, as a figure.

Starts its own testbed (hosts sized for N launcher pods), creates N KubeVirt VMs (runStrategy
Always) as fast as the API server takes them, and reports the time from each VM's creation to its
VMI reaching Running, p50 / p99, and the total. Not a timed test: a benchmark to read.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import shutil
import tempfile
import time
from pathlib import Path

from kubernetes_asyncio import client, config

from ..stack import start_stack
from ..testing import kubevirt_vm
from ..topology import HostSpec, Topology

PODS_PER_HOST = 250  # each host's pod CIDR is a /24


def _topology(vms: int) -> Topology:
    hosts = max(2, math.ceil(vms / PODS_PER_HOST * 1.1))
    return Topology(
        nodes=[
            HostSpec(name=f"bench-{i}", cpu="256", memory="1Ti", pods=PODS_PER_HOST, ephemeralStorage="2Ti")
            for i in range(hosts)
        ]
    )


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile: a value that was measured, never an interpolation."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


async def _measure(kubeconfig: str, vms: int, namespace: str, timeout: float) -> dict:
    configuration = client.Configuration()
    await config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    configuration.connection_pool_maxsize = 64
    async with client.ApiClient(configuration) as api:
        core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
        await core.create_namespace({"metadata": {"name": namespace}}, field_validation="Strict")
        created: dict[str, float] = {}
        running: dict[str, float] = {}
        watcher = asyncio.create_task(_watch_running(api, namespace, running))
        semaphore = asyncio.Semaphore(32)
        start = time.monotonic()

        async def create(name: str) -> None:
            async with semaphore:
                created[name] = time.monotonic()
                await custom.create_namespaced_custom_object(
                    "kubevirt.io", "v1", namespace, "virtualmachines", kubevirt_vm(name), field_validation="Strict"
                )

        await asyncio.gather(*(create(f"vm-{i:05d}") for i in range(vms)))
        submitted = time.monotonic() - start
        deadline = time.monotonic() + timeout
        while len(running) < vms and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        watcher.cancel()
        latencies = [running[n] - created[n] for n in created if n in running]
        return {
            "vms": vms,
            "running": len(latencies),
            "submitted_s": round(submitted, 1),
            "p50_s": round(percentile(latencies, 0.5), 1) if latencies else None,
            "p99_s": round(percentile(latencies, 0.99), 1) if latencies else None,
            "total_s": round(max(running.values()) - start, 1) if running else None,
        }


async def _watch_running(api: client.ApiClient, namespace: str, running: dict[str, float]) -> None:
    path = f"/apis/kubevirt.io/v1/namespaces/{namespace}/virtualmachineinstances"
    while True:
        response = await api.call_api(
            path,
            "GET",
            query_params=[("watch", "true"), ("timeoutSeconds", "600")],
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
            _preload_content=False,
            _request_timeout=None,
        )
        async with response:
            buffer = b""
            async for chunk in response.content.iter_any():
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    obj = json.loads(line).get("object") or {}
                    name = (obj.get("metadata") or {}).get("name")
                    if name and (obj.get("status") or {}).get("phase") == "Running" and name not in running:
                        running[name] = time.monotonic()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m virtstack_testbed.simulator.bench", description=__doc__)
    parser.add_argument("--vms", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for every VMI to run")
    args = parser.parse_args()
    run_dir = Path(tempfile.mkdtemp(prefix="virtstack-simbench-"))
    plane = start_stack(run_dir / "plane", _topology(args.vms))
    try:
        result = asyncio.run(_measure(plane.kubeconfig, args.vms, "simbench", args.timeout))
    finally:
        plane.stop()
        shutil.rmtree(run_dir, ignore_errors=True)
    print(
        f"{result['running']}/{result['vms']} VMs Running; created in {result['submitted_s']} s; "
        f"VM created -> VMI Running p50 {result['p50_s']} s, p99 {result['p99_s']} s; "
        f"all Running after {result['total_s']} s"
    )


if __name__ == "__main__":
    main()
