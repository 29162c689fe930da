"""A reconcile right after a status write sees that status, though the index has not caught up yet."""

from __future__ import annotations

import asyncio

from virtstack.api.sshkeypair import SSHKeyPairStatus
from virtstack.controllers.base import Controller


class Recorder:
    """Stands where the API client would: answers a status patch with the object as written."""

    def __init__(self) -> None:
        self.patches: list[dict] = []

    async def patch_status(self, api_version: str, plural: str, namespace: str, name: str, status: dict) -> dict:
        self.patches.append(status)
        return {"metadata": {"name": name, "namespace": namespace, "resourceVersion": "8"}, "status": status}


def indexed(resource_version: str, status: dict) -> dict:
    return {"metadata": {"name": "key", "namespace": "ns", "resourceVersion": resource_version}, "status": status}


def test_the_status_written_stands_in_until_the_index_shows_a_later_version() -> None:
    kube = Recorder()
    controller = Controller(kube)
    controller.plural = "sshkeypairs"
    before = indexed("7", {})
    written = SSHKeyPairStatus(fingerprintSHA256="SHA256:abc", observedGeneration=1)

    assert asyncio.run(controller.write_status(before, written))
    stale = controller.fresh(("ns", "key"), indexed("7", {}))
    assert stale["status"] == written.model_dump(mode="json", exclude_none=True), "the write, not the stale index"
    assert not asyncio.run(controller.write_status(stale, written)), "so the same status is not written twice"
    assert len(kube.patches) == 1

    caught_up = indexed("8", {"fingerprintSHA256": "SHA256:abc", "observedGeneration": 1, "extra": "from the server"})
    assert controller.fresh(("ns", "key"), caught_up) is caught_up, "once the index moves on, it is the truth"
    assert controller.fresh(("ns", "key"), indexed("7", {})) == indexed("7", {}), "the record is gone"
    assert controller.fresh(("ns", "key"), None) is None
