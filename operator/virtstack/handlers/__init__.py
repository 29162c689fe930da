"""Importing this package registers every kopf handler."""

from . import inventory, lifecycle, sshkeypair, virtualmachine, vmsnapshot  # noqa: F401
