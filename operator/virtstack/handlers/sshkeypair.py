"""kopf wiring for SSHKeyPair: the key pairs and the Secrets holding generated private keys, indexed."""

from __future__ import annotations

from typing import Any

import kopf

from ..api.crd import GROUP, VERSION
from ..builders.sshkeys import KEYPAIR_LABEL
from ..controllers.base import vms_listing
from . import kept
from .virtualmachine import indexes_from

OWNED = {KEYPAIR_LABEL: kopf.PRESENT}


@kopf.index(GROUP, VERSION, "sshkeypairs")
async def keypairs(namespace: str, name: str, body: kopf.Body, **_: Any) -> dict:
    return {(namespace, name): kept.fields(body, "spec", "status")}


@kopf.index("", "v1", "secrets", labels=OWNED)
async def keypair_secrets(namespace: str, name: str, body: kopf.Body, **_: Any) -> dict:
    """Metadata and public keys only: the private key is never held in the operator's memory."""
    public = {key: value for key, value in (body.get("data") or {}).items() if key.endswith(".pub")}
    return {(namespace, name): {"metadata": kept.metadata(body), "data": kept.compact(public)}}


def _enqueue(key: tuple[str, str], memo: kopf.Memo, kwargs: dict) -> None:
    memo.keypair_controller.enqueue(key, {"keypairs": kwargs["keypairs"], "secrets": kwargs["keypair_secrets"]})


@kopf.on.event(GROUP, VERSION, "sshkeypairs", id="sshkeypair-changed")
async def keypair_changed(namespace: str, name: str, memo: kopf.Memo, **kwargs: Any) -> None:
    """The key pair, and the VMs that list it (their keys, or their wait for it, change)."""
    _enqueue((namespace, name), memo, kwargs)
    indexes = indexes_from(kwargs)
    for key in vms_listing(indexes.vms, namespace, "sshKeyPairs", name):
        memo.vm_controller.enqueue(key, indexes)


@kopf.on.event("", "v1", "secrets", labels=OWNED, id="keypair-secret-changed")
async def keypair_secret_changed(namespace: str, labels: kopf.Labels, memo: kopf.Memo, **kwargs: Any) -> None:
    _enqueue((namespace, labels[KEYPAIR_LABEL]), memo, kwargs)
