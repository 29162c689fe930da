"""The testbed's cache: binaries, Go caches and generated CRDs, outside the repo, keyed by version."""

import os
from pathlib import Path


def cache_root() -> Path:
    """Shared by every clone; `VIRTSTACK_CACHE` moves it."""
    return Path(os.environ.get("VIRTSTACK_CACHE", Path.home() / ".cache" / "virtstack"))
