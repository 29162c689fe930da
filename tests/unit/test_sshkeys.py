"""Key checking and fingerprints, against OpenSSH's own ssh-keygen."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path

import pytest
from virtstack.api.sshkeypair import KeyType
from virtstack.builders.sshkeys import InvalidPublicKey, build_private_key_secret, generate_key_pair, parse_public_key


def ssh_keygen_fingerprint(public_line: str, digest: str, tmp_path: Path) -> str:
    path = tmp_path / f"key-{digest}.pub"
    path.write_text(public_line + "\n")
    out = subprocess.run(
        ["ssh-keygen", "-l", "-E", digest, "-f", str(path)], capture_output=True, text=True, check=True
    ).stdout
    return out.split()[1]


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs ssh-keygen")
@pytest.mark.parametrize("key_type", list(KeyType))
def test_fingerprints_match_ssh_keygen(key_type: KeyType, tmp_path: Path) -> None:
    _, public_line = generate_key_pair(key_type)
    key = parse_public_key(public_line + " someone@example")
    assert key.fingerprint_md5 == ssh_keygen_fingerprint(public_line, "md5", tmp_path).removeprefix("MD5:")
    assert key.fingerprint_sha256 == ssh_keygen_fingerprint(public_line, "sha256", tmp_path)
    assert key.line == public_line and key.key_type == public_line.split()[0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ssh-ed25519", "one OpenSSH public key line"),
        ("ssh-ed25519 AAAA!!", "is not a valid ssh-ed25519 key"),
        ("ssh-ed25519 " + base64.b64encode(b"garbage").decode(), "is not a valid ssh-ed25519 key"),
    ],
)
def test_bad_public_keys_say_what_to_give(text: str, message: str) -> None:
    with pytest.raises(InvalidPublicKey, match=message):
        parse_public_key(text)


def test_small_rsa_keys_are_refused() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    small = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    line = small.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    with pytest.raises(InvalidPublicKey, match="1024-bit RSA key: use at least 2048"):
        parse_public_key(line)


def test_private_key_secret_is_owned_immutable_and_holds_both_halves() -> None:
    pem, public_line = generate_key_pair(KeyType.ED25519)
    secret = build_private_key_secret("deploy", "ns", "uid-9", KeyType.ED25519, pem, public_line)
    assert secret["immutable"] is True
    assert secret["metadata"]["ownerReferences"][0] == {
        "apiVersion": "virtstack.io/v1alpha1",
        "kind": "SSHKeyPair",
        "name": "deploy",
        "uid": "uid-9",
        "controller": True,
        "blockOwnerDeletion": True,
    }
    assert base64.b64decode(secret["data"]["id_ed25519"]) == pem
    assert base64.b64decode(secret["data"]["id_ed25519.pub"]).decode().strip() == public_line
