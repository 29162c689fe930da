"""An SSHKeyPair's status: the public half and its fingerprints, or why the key cannot be used (pure)."""

from __future__ import annotations

from ..api.conditions import Condition, ConditionStatus, merge_conditions, utc_now
from ..api.sshkeypair import SSHKeyPairStatus
from ..builders.sshkeys import PublicKey

READY = "Ready"


def keypair_status(
    generation: int,
    key: PublicKey | None,
    private_key_secret: str | None,
    error: str | None,
    previous: SSHKeyPairStatus,
    now: str | None = None,
) -> SSHKeyPairStatus:
    now = now or utc_now()
    if key is None:
        ready = Condition(
            type=READY,
            status=ConditionStatus.FALSE,
            reason="InvalidPublicKey",
            message=error or "no public key",
            observedGeneration=generation,
            lastTransitionTime=now,
        )
        return SSHKeyPairStatus(
            observedGeneration=generation, conditions=merge_conditions(previous.conditions, [ready])
        )
    how = f"generated; the private key is in Secret {private_key_secret}" if private_key_secret else "registered"
    ready = Condition(
        type=READY,
        status=ConditionStatus.TRUE,
        reason="Generated" if private_key_secret else "Registered",
        message=f"{key.key_type} key {how}",
        observedGeneration=generation,
        lastTransitionTime=now,
    )
    return SSHKeyPairStatus(
        publicKey=key.line,
        keyType=key.key_type,
        fingerprintMD5=key.fingerprint_md5,
        fingerprintSHA256=key.fingerprint_sha256,
        privateKeySecret=private_key_secret,
        observedGeneration=generation,
        conditions=merge_conditions(previous.conditions, [ready]),
    )
