"""Certificates for a loopback control plane, made with the openssl command line."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .errors import TestbedError

# The API server's own ClusterIP is the first address of --service-cluster-ip-range.
SERVICE_CIDR = "10.0.0.0/24"
KUBERNETES_SERVICE_IP = "10.0.0.1"


@dataclass(frozen=True)
class Pki:
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    admin_cert: Path
    admin_key: Path
    service_account_key: Path
    service_account_pub: Path


PKI_FILES = ("ca.crt", "ca.key", "apiserver.crt", "apiserver.key", "admin.crt", "admin.key", "sa.key", "sa.pub")


def pki_at(directory: Path) -> Pki:
    """Where create_pki writes (or wrote) each file of a run."""
    return Pki(*(directory / name for name in PKI_FILES))


def create_pki(directory: Path) -> Pki:
    """A CA, an API-server serving cert, a system:masters client cert and a service-account key pair."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise TestbedError("openssl is not installed", "apt-get install openssl")
    directory.mkdir(parents=True, exist_ok=True)
    pki = pki_at(directory)

    def run(*args: str) -> None:
        result = subprocess.run([openssl, *args], cwd=directory, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise TestbedError(
                f"openssl {args[0]} failed: {result.stderr.strip()[:300]}", "check the openssl installation"
            )

    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "3650",
        "-subj",
        "/CN=virtstack-testbed-ca",
        "-keyout",
        str(pki.ca_key),
        "-out",
        str(pki.ca_cert),
    )
    names = [
        "IP:127.0.0.1",
        "DNS:localhost",
        "DNS:kubernetes",
        "DNS:kubernetes.default.svc",
        f"IP:{KUBERNETES_SERVICE_IP}",
    ]
    sans = "subjectAltName=" + ",".join(names)
    _signed_cert(run, pki, pki.server_key, pki.server_cert, "/CN=kube-apiserver", sans)
    _signed_cert(run, pki, pki.admin_key, pki.admin_cert, "/O=system:masters/CN=testbed-admin", None)
    run("genrsa", "-out", str(pki.service_account_key), "2048")
    run("rsa", "-in", str(pki.service_account_key), "-pubout", "-out", str(pki.service_account_pub))
    return pki


def _signed_cert(run, pki: Pki, key: Path, cert: Path, subject: str, extension: str | None) -> None:
    csr = cert.with_suffix(".csr")
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", str(key), "-out", str(csr))
    args = [
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(pki.ca_cert),
        "-CAkey",
        str(pki.ca_key),
        "-CAcreateserial",
        "-days",
        "3650",
        "-out",
        str(cert),
    ]
    if extension:
        ext_file = cert.with_suffix(".ext")
        ext_file.write_text(extension + "\n")
        args += ["-extfile", str(ext_file)]
    run(*args)
