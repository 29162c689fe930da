"""SSH keys for the guest: the key pairs' public keys in a Secret the VM owns, given to KubeVirt (pure).

Two ways in, as KubeVirt offers (kubevirt-behaviour.md §7):
- cloud-init NoCloud (the default): keys reach the guest at boot, on every cloud-init image, as
  CloudStack's key reset needs a stopped VM. The template carries a hash of the keys; each VMI
  inherits it, so a running VMI whose hash differs booted with other keys (the change waits for a start).
- the QEMU guest agent, for the users in spec.sshKeyGuestAgentUsers: KubeVirt writes the Secret's
  keys into those users' authorized_keys while the VM runs, so a change of keys (a change of the
  Secret's content) is applied live, and the VMI reports it (AccessCredentialsSynchronized).
  Switching between the two, or changing the users, changes accessCredentials: KubeVirt applies
  that only at the next start.
"""

from __future__ import annotations

import base64
import hashlib
from enum import StrEnum

from ..objects import condition_of
from .owner import owned_secret

KEYS_HASH_ANNOTATION = "virtstack.io/ssh-keys-hash"
SYNCHRONIZED = "AccessCredentialsSynchronized"


class KeysDelivery(StrEnum):
    """How the running guest stands with the keys the VM lists (the reason of condition SSHKeys)."""

    AT_BOOT = "Applied"  # the guest booted with them (cloud-init), or there is no running guest
    PENDING_RESTART = "PendingRestart"  # it booted with other keys or another way in: the next start brings them
    LIVE = "GuestAgent"  # the guest agent keeps them current; KubeVirt reports them in sync
    WAITING_FOR_AGENT = "WaitingForGuestAgent"  # the guest agent has not (yet) put them in


def keys_secret_name(vm_name: str) -> str:
    return f"{vm_name}-ssh-keys"


def keys_hash(public_keys: dict[str, str]) -> str:
    return hashlib.sha256("\n".join(f"{k}={v}" for k, v in sorted(public_keys.items())).encode()).hexdigest()[:16]


def build_keys_secret(vm_name: str, namespace: str, uid: str, public_keys: dict[str, str]) -> dict:
    """One data key per key pair: KubeVirt gives the guest every key in the Secret."""
    data = {name: base64.b64encode(f"{line}\n".encode()).decode() for name, line in sorted(public_keys.items())}
    return owned_secret(vm_name, namespace, uid, keys_secret_name(vm_name), data)


def access_credentials(vm_name: str, agent_users: list[str]) -> list[dict]:
    method = {"qemuGuestAgent": {"users": list(agent_users)}} if agent_users else {"noCloud": {}}
    return [
        {
            "sshPublicKey": {
                "source": {"secret": {"secretName": keys_secret_name(vm_name)}},
                "propagationMethod": method,
            }
        }
    ]


def keys_delivery(
    vm_name: str, public_keys: dict[str, str], agent_users: list[str], vmi: dict | None
) -> tuple[KeysDelivery, str]:
    """Where the running guest stands with the listed keys, and KubeVirt's word when the agent is behind."""
    if vmi is None or (vmi.get("status") or {}).get("phase") != "Running":
        return KeysDelivery.AT_BOOT, ""
    if (vmi.get("spec") or {}).get("accessCredentials") != access_credentials(vm_name, agent_users):
        return KeysDelivery.PENDING_RESTART, ""
    if not agent_users:
        booted_with = (vmi["metadata"].get("annotations") or {}).get(KEYS_HASH_ANNOTATION)
        return (KeysDelivery.AT_BOOT if booted_with == keys_hash(public_keys) else KeysDelivery.PENDING_RESTART), ""
    synchronized = condition_of(vmi, SYNCHRONIZED)
    if synchronized is not None and synchronized["status"] == "True":
        return KeysDelivery.LIVE, ""
    return KeysDelivery.WAITING_FOR_AGENT, (synchronized or {}).get("message", "")
