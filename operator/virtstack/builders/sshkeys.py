"""SSH key pairs: validate a registered key, generate one, fingerprint it (pure; `cryptography` does the crypto).

The private key of a generated pair exists in exactly one place, the Secret built here; nothing
returned for status, logs or events carries it.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from ..api.sshkeypair import KeyType
from .labels import MANAGED_BY

KEYPAIR_LABEL = "virtstack.io/sshkeypair"
RSA_BITS = 3072
MIN_RSA_BITS = 2048


class InvalidPublicKey(ValueError):
    """A public key that cannot be used; the message says what is wrong and what to give instead."""


@dataclass(frozen=True)
class PublicKey:
    line: str  # "<type> <base64>" without the comment
    key_type: str
    fingerprint_md5: str
    fingerprint_sha256: str


def parse_public_key(text: str) -> PublicKey:
    """One OpenSSH public key line, checked the way sshd would: type, base64, and key size."""
    fields = text.strip().split()
    if len(fields) < 2:
        raise InvalidPublicKey("spec.publicKey must be '<type> <base64 key> [comment]', one OpenSSH public key line")
    try:
        blob = base64.b64decode(fields[1], validate=True)
        key = serialization.load_ssh_public_key(f"{fields[0]} {fields[1]}".encode())
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:
        raise InvalidPublicKey(
            f"spec.publicKey is not a valid {fields[0]} key ({error}): paste the whole .pub line"
        ) from None
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        raise InvalidPublicKey(
            f"spec.publicKey is a {key.key_size}-bit RSA key: use at least {MIN_RSA_BITS} bits or ed25519"
        )
    md5 = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    sha256 = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return PublicKey(
        line=f"{fields[0]} {fields[1]}",
        key_type=fields[0],
        fingerprint_md5=":".join(md5[i : i + 2] for i in range(0, 32, 2)),
        fingerprint_sha256=f"SHA256:{sha256}",
    )


def generate_key_pair(key_type: KeyType) -> tuple[bytes, str]:
    """(private key in OpenSSH PEM, public key line)."""
    private = (
        ed25519.Ed25519PrivateKey.generate()
        if key_type is KeyType.ED25519
        else rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    )
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    public = private.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return pem, public.decode()


def private_key_secret_name(keypair: str) -> str:
    return f"{keypair}-ssh-private-key"


def private_key_file(key_type: KeyType) -> str:
    return "id_ed25519" if key_type is KeyType.ED25519 else "id_rsa"


def build_private_key_secret(
    keypair: str, namespace: str, uid: str, key_type: KeyType, private_pem: bytes, public_line: str
) -> dict:
    """Owned by the SSHKeyPair (deleted with it); readable only through RBAC on Secrets."""
    name = private_key_file(key_type)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": private_key_secret_name(keypair),
            "namespace": namespace,
            "labels": {KEYPAIR_LABEL: keypair, **MANAGED_BY},
            "ownerReferences": [
                {
                    "apiVersion": "virtstack.io/v1alpha1",
                    "kind": "SSHKeyPair",
                    "name": keypair,
                    "uid": uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "type": "Opaque",
        "immutable": True,
        "data": {
            name: base64.b64encode(private_pem).decode(),
            f"{name}.pub": base64.b64encode(f"{public_line}\n".encode()).decode(),
        },
    }
