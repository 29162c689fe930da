"""Importing this package registers every kopf handler."""

from . import inventory, iso, lifecycle, sshkeypair, virtualmachine, vmsnapshot  # noqa: F401
