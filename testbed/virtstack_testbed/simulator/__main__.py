"""`python -m virtstack_testbed.simulator`: KubeVirt's controllers, simulated, as one process."""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

from kubernetes_asyncio import client, config

from .admission import CONTROLLER_USER
from .controllers import Simulator
from .options import Options


async def _run(args: argparse.Namespace) -> None:
    configuration = client.Configuration()
    await config.load_kube_config(config_file=args.kubeconfig, client_configuration=configuration)
    configuration.connection_pool_maxsize = 32
    async with client.ApiClient(configuration) as api:
        # Act as KubeVirt's controller service account (admission.py lets it change VMI specs, as
        # KubeVirt's webhooks let virt-controller); system:masters keeps the testbed admin's rights.
        api.set_default_header("Impersonate-User", CONTROLLER_USER)
        api.set_default_header("Impersonate-Group", "system:masters")
        options = Options(
            heartbeat_seconds=args.heartbeat_seconds,
            heartbeat_timeout_seconds=args.heartbeat_timeout_seconds,
            backoff_scale=args.backoff_scale,
            migration_unschedulable_timeout_seconds=args.migration_unschedulable_timeout_seconds,
            import_backoff_seconds=args.import_backoff_seconds,
        )
        simulator = Simulator(api, options)
        await simulator.run(on_synced=lambda: args.ready_file and Path(args.ready_file).touch())


def main() -> None:
    parser = argparse.ArgumentParser(prog="virtstack-kubevirt-simulator", description=__doc__)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--ready-file", help="touched once the caches are synced")
    defaults = Options()
    parser.add_argument(
        "--heartbeat-seconds",
        type=float,
        default=defaults.heartbeat_seconds,
        help="virt-handler heartbeat period (KubeVirt's: about 60 s, jittered)",
    )
    parser.add_argument(
        "--heartbeat-timeout-seconds",
        type=float,
        default=defaults.heartbeat_timeout_seconds,
        help="a node whose heartbeat is older is unresponsive (KubeVirt's: 300 s)",
    )
    parser.add_argument(
        "--backoff-scale",
        type=float,
        default=defaults.backoff_scale,
        help="multiplies the VM startFailure back-off, 10 s x count^2 capped at 300 s (KubeVirt's: 1)",
    )
    parser.add_argument(
        "--migration-unschedulable-timeout-seconds",
        type=float,
        default=defaults.migration_unschedulable_timeout_seconds,
        help="a migration whose target pod stays unschedulable this long fails (KubeVirt's: 300 s)",
    )
    parser.add_argument(
        "--import-backoff-seconds",
        type=float,
        default=defaults.import_backoff_seconds,
        help="first restart delay of a failing CDI importer, doubling up to 300 s (the kubelet's: 10 s)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(_run(args))


if __name__ == "__main__":
    main()
