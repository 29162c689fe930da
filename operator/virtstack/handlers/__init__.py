"""Importing this package registers every kopf handler."""

from . import sshkeypair, virtualmachine  # noqa: F401
