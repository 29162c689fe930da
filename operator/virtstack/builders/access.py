"""SSH keys for the guest: the key pairs' public keys in a Secret the VM owns, given to KubeVirt (pure).

Propagation is cloud-init NoCloud: keys reach the guest at boot, on every cloud-init image, as
CloudStack's key reset needs a stopped VM. The template carries a hash of the keys; each VMI
inherits it, so a running VMI whose hash differs booted with other keys (the change waits for a start).
"""

from __future__ import annotations

import base64
import hashlib

from .owner import owned_secret

KEYS_HASH_ANNOTATION = "virtstack.io/ssh-keys-hash"


def keys_secret_name(vm_name: str) -> str:
    return f"{vm_name}-ssh-keys"


def keys_hash(public_keys: dict[str, str]) -> str:
    return hashlib.sha256("\n".join(f"{k}={v}" for k, v in sorted(public_keys.items())).encode()).hexdigest()[:16]


def build_keys_secret(vm_name: str, namespace: str, uid: str, public_keys: dict[str, str]) -> dict:
    """One data key per key pair: KubeVirt gives the guest every key in the Secret."""
    data = {name: base64.b64encode(f"{line}\n".encode()).decode() for name, line in sorted(public_keys.items())}
    return owned_secret(vm_name, namespace, uid, keys_secret_name(vm_name), data)


def access_credentials(vm_name: str) -> list[dict]:
    return [
        {
            "sshPublicKey": {
                "source": {"secret": {"secretName": keys_secret_name(vm_name)}},
                "propagationMethod": {"noCloud": {}},
            }
        }
    ]


def keys_pending(public_keys: dict[str, str], vmi: dict | None) -> bool:
    """The running guest booted with other keys than the VM now lists."""
    if vmi is None or (vmi.get("status") or {}).get("phase") != "Running":
        return False
    return (vmi["metadata"].get("annotations") or {}).get(KEYS_HASH_ANNOTATION) != keys_hash(public_keys)
