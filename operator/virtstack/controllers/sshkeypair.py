"""Reconcile one SSHKeyPair: check a registered key, or generate a pair once; report the public half.

Generation is create-only: the private key's Secret is POSTed once and never rewritten. A crash
after the POST finds the Secret on the next run and reads the public key back from it.
"""

from __future__ import annotations

import base64
import logging
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException

from ..api.sshkeypair import KeyType, SSHKeyPairSpec, SSHKeyPairStatus
from ..builders.sshkeys import (
    InvalidPublicKey,
    build_private_key_secret,
    generate_key_pair,
    parse_public_key,
    private_key_file,
    private_key_secret_name,
)
from ..status.sshkeypair import keypair_status
from .base import Controller, Key, one

log = logging.getLogger(__name__)
PLURAL = "sshkeypairs"


class SSHKeyPairController(Controller):
    name = "sshkeypair"
    plural = PLURAL

    def primary_index(self) -> Any:
        return self.indexes["keypairs"]

    async def reconcile(self, key: Key) -> None:
        keypair = self.fresh(key, one(self.indexes["keypairs"], key))
        if keypair is None or keypair["metadata"].get("deletionTimestamp"):
            return
        namespace, name = key
        spec = SSHKeyPairSpec.model_validate(keypair.get("spec") or {})
        current = keypair.get("status") or {}
        previous = SSHKeyPairStatus.model_validate(current)
        generation = keypair["metadata"].get("generation", 1)
        secret_name = None
        try:
            if spec.publicKey is not None:
                public = parse_public_key(spec.publicKey)
            else:
                secret_name = private_key_secret_name(name)
                public = parse_public_key(await self._generated_public_key(namespace, name, keypair, spec))
            status = keypair_status(generation, public, secret_name, None, previous)
        except InvalidPublicKey as error:
            status = keypair_status(generation, None, None, str(error), previous)
        await self.write_status(keypair, status)

    async def _generated_public_key(self, namespace: str, name: str, keypair: dict, spec: SSHKeyPairSpec) -> str:
        """The public half of the pair in the Secret; the pair is generated only when there is no Secret."""
        key_type = spec.keyType or KeyType.ED25519
        secret = one(self.indexes["secrets"], (namespace, private_key_secret_name(name)))
        if secret is None:
            private_pem, public_line = generate_key_pair(key_type)
            body = build_private_key_secret(
                name, namespace, keypair["metadata"]["uid"], key_type, private_pem, public_line
            )
            del private_pem
            try:
                await self.kube.create_core(body)
            except ApiException as error:
                if error.status != 409:
                    raise
                secret = await self.kube.read_secret(namespace, private_key_secret_name(name))
            if secret is None:
                return public_line
        public = (secret.get("data") or {}).get(f"{private_key_file(key_type)}.pub")
        if public is None:
            raise InvalidPublicKey(
                f"Secret {private_key_secret_name(name)} holds no {private_key_file(key_type)}.pub: "
                "delete the Secret to generate a new key pair"
            )
        return base64.b64decode(public).decode()
