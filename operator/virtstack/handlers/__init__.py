"""Importing this package registers every kopf handler."""

from . import inventory, sshkeypair, virtualmachine, vmsnapshot  # noqa: F401
