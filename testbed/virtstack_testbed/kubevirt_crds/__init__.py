"""KubeVirt and CDI CRDs for the test control plane, generated from a pinned npm package.

`generate_crds()` returns CustomResourceDefinition dicts whose schemas reject a wrong
field, type or enum the way KubeVirt v1.8.0 / CDI v1.63.0 do. The result is cached
per package version and per source of the modules that shape it.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ..cache import cache_root
from . import converter, kinds, patches
from .kinds import KUBEVIRT_KINDS, KindSpec
from .npm_package import PACKAGE_VERSION, ensure_package

__all__ = ["KUBEVIRT_KINDS", "KindSpec", "build_crds", "generate_crds"]


def generate_crds() -> list[dict]:
    """The CRDs of `KUBEVIRT_KINDS`; a warm cache answers without npm or parsing."""
    cached = _cache_path()
    if cached.exists():
        return json.loads(cached.read_text())
    crds = build_crds(ensure_package())
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(json.dumps(crds))
    partial.replace(cached)
    return crds


def build_crds(package: Path) -> list[dict]:
    """Convert the extracted npm package into one CRD per kind."""
    builders = {}
    for spec in KUBEVIRT_KINDS:
        if spec.package_dir not in builders:
            dist = package / "dist" / spec.package_dir
            dts = (dist / "index.d.ts").read_text()
            builders[spec.package_dir] = converter.SchemaBuilder(
                converter.parse_models(dts, (dist / "index.js").read_text()),
                converter.parse_enum_names(dts),
                patches.PATCHES,
            )
    crds = [crd(spec, builders[spec.package_dir].kind_schema(spec.model)) for spec in KUBEVIRT_KINDS]
    unused = patches.PATCHES.keys() - set().union(*(b.patched_models for b in builders.values()))
    if unused:
        raise ValueError(f"patches for models the kinds do not use: {sorted(unused)}")
    return crds


def crd(spec: KindSpec, schema: dict) -> dict:
    """A CustomResourceDefinition serving one version of `spec` with `schema`."""
    version = {"name": spec.version, "served": True, "storage": True, "schema": {"openAPIV3Schema": schema}}
    if spec.status_subresource:
        version["subresources"] = {"status": {}}
    if spec.printer_columns:
        version["additionalPrinterColumns"] = [dict(column) for column in spec.printer_columns]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": spec.crd_name},
        "spec": {
            "group": spec.group,
            "names": {
                "kind": spec.kind,
                "listKind": f"{spec.kind}List",
                "plural": spec.plural,
                "singular": spec.kind.lower(),
                "shortNames": list(spec.short_names),
                "categories": list(spec.categories),
            },
            "scope": "Namespaced",
            "versions": [version],
        },
    }


def _cache_path() -> Path:
    digest = hashlib.sha256()
    for module in (converter, patches, kinds):
        digest.update(Path(module.__file__).read_bytes())
    name = f"kubevirt-{PACKAGE_VERSION}-{digest.hexdigest()[:16]}.json"
    return cache_root() / "crds" / name
