"""cloud-init user-data for the guest (pure).

KubeVirt's inline `userData` holds 2,048 bytes; CloudStack allows 32 KiB after base64. Larger
data, and data from a user's Secret, travels in a Secret the operator owns, so the key name,
the size and the content the guest boots with are checked and fixed at one place.
"""

from __future__ import annotations

import base64

from ..api.virtualmachine import USER_DATA_MAX_BYTES
from .owner import owned_secret

KUBEVIRT_INLINE_LIMIT = 2048
CLOUD_INIT_DISK = "cloudinitdisk"
SECRET_KEY = "userdata"  # the key KubeVirt's userDataSecretRef reads


class UserDataError(ValueError):
    """User-data the guest cannot be given; the message names the object and the fix."""


def secret_name(vm_name: str) -> str:
    return f"{vm_name}-cloudinit"


def check_size(user_data: bytes, where: str) -> None:
    encoded = len(base64.b64encode(user_data))
    if len(user_data) > USER_DATA_MAX_BYTES:
        raise UserDataError(
            f"{where} is {encoded} bytes after base64, over the 32768-byte limit: shorten it or fetch the rest "
            "from the guest (e.g. #include a URL)"
        )


def user_data_from_secret(secret: dict | None, secret_name_: str, key: str) -> bytes:
    """The bytes of one key of the user's Secret, or an error naming what is wrong and how to fix it."""
    if secret is None:
        raise UserDataError(
            f"Secret {secret_name_} (spec.userData.secretRef) does not exist: create it or fix the name"
        )
    data = secret.get("data") or {}
    if key not in data:
        keys = ", ".join(sorted(data)) or "none"
        raise UserDataError(
            f"Secret {secret_name_} has no key {key!r} (spec.userData.secretRef.key; its keys: {keys}): "
            "add the key or name an existing one"
        )
    value = base64.b64decode(data[key])
    check_size(value, f"Secret {secret_name_} key {key!r}")
    return value


def cloud_init_volume(vm_name: str, user_data: bytes) -> tuple[dict, bool]:
    """The NoCloud volume, and whether it needs the operator's Secret (data over KubeVirt's inline limit)."""
    if len(user_data) <= KUBEVIRT_INLINE_LIMIT:
        try:
            return {"name": CLOUD_INIT_DISK, "cloudInitNoCloud": {"userData": user_data.decode()}}, False
        except UnicodeDecodeError:
            pass  # binary (e.g. gzip) user-data travels base64-encoded in the Secret
    return {"name": CLOUD_INIT_DISK, "cloudInitNoCloud": {"secretRef": {"name": secret_name(vm_name)}}}, True


def build_user_data_secret(vm_name: str, namespace: str, uid: str, user_data: bytes) -> dict:
    data = {SECRET_KEY: base64.b64encode(user_data).decode()}
    return owned_secret(vm_name, namespace, uid, secret_name(vm_name), data)
