"""Importing this package registers every kopf handler."""

from . import virtualmachine  # noqa: F401
