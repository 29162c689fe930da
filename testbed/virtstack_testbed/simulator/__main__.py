"""`python -m virtstack_testbed.simulator`: KubeVirt's controllers, simulated, as one process."""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

from kubernetes_asyncio import client, config

from .controllers import Simulator


async def _run(args: argparse.Namespace) -> None:
    configuration = client.Configuration()
    await config.load_kube_config(config_file=args.kubeconfig, client_configuration=configuration)
    configuration.connection_pool_maxsize = 32
    async with client.ApiClient(configuration) as api:
        simulator = Simulator(api, heartbeat_seconds=args.heartbeat_seconds)
        await simulator.run(on_synced=lambda: args.ready_file and Path(args.ready_file).touch())


def main() -> None:
    parser = argparse.ArgumentParser(prog="virtstack-kubevirt-simulator", description=__doc__)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--ready-file", help="touched once the caches are synced")
    parser.add_argument(
        "--heartbeat-seconds",
        type=float,
        default=15.0,
        help="virt-handler heartbeat period (KubeVirt: about 60 s, jittered)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(_run(args))


if __name__ == "__main__":
    main()
