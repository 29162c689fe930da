"""Compare generated CRDs with upstream KubeVirt/CDI CRDs, path by path.

Development check: the upstream CRDs are reference data outside the repo. Every
schema keyword is compared except `description`, after two normalisations that
change neither what the API server accepts nor how server-side apply merges:
- `x-kubernetes-list-type: atomic` equals no list type (atomic is the default);
- integer `format` (int32/int64) is dropped: apiextensions does not enforce it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from . import generate_crds

DEFAULT_REFERENCE = Path(__file__).parents[4] / "shared/reference/kubevirt-v1.8.0-cdi-v1.63.0-crds.yaml"
_IGNORED_KEYS = frozenset({"description"})
_NESTED_KEYS = ("properties", "items", "additionalProperties")
_UNORDERED_KEYS = frozenset({"required", "enum", "x-kubernetes-list-map-keys"})


def compare_with_reference(generated: list[dict], reference_path: Path) -> list[str]:
    """Human-readable differences for every CRD in the reference file."""
    by_name = {crd["metadata"]["name"]: crd for crd in generated}
    differences = []
    for upstream in yaml.safe_load_all(reference_path.read_text()):
        if not upstream:
            continue
        name = upstream["metadata"]["name"]
        if name not in by_name:
            differences.append(f"{name}: not generated")
            continue
        differences += _compare_versions(name, by_name[name]["spec"], upstream["spec"])
    return differences


def _compare_versions(name: str, ours: dict, theirs: dict) -> list[str]:
    our_versions = {v["name"]: v for v in ours["versions"]}
    differences = []
    for version in theirs["versions"]:
        where = f"{name} {version['name']}"
        if version["name"] not in our_versions:
            differences.append(f"{where}: version not generated")
            continue
        ours_v = our_versions[version["name"]]
        for key in ("served", "storage", "subresources"):
            if ours_v.get(key) != version.get(key):
                differences.append(f"{where}: {key} is {ours_v.get(key)!r}, upstream {version.get(key)!r}")
        differences += _compare_schema(
            where, "", ours_v["schema"]["openAPIV3Schema"], version["schema"]["openAPIV3Schema"]
        )
    return differences


def _compare_schema(where: str, path: str, ours: dict, theirs: dict) -> list[str]:
    ours, theirs = _normalised(ours), _normalised(theirs)
    label = f"{where} {path or '.'}"
    differences = []
    for key in sorted((ours.keys() | theirs.keys()) - _IGNORED_KEYS - set(_NESTED_KEYS)):
        mine, upstream = ours.get(key), theirs.get(key)
        if key in _UNORDERED_KEYS:
            mine, upstream = _sorted(mine), _sorted(upstream)
        if mine != upstream:
            differences.append(f"{label}: {key} is {mine!r}, upstream {upstream!r}")
    our_props, their_props = ours.get("properties", {}), theirs.get("properties", {})
    for prop in sorted(our_props.keys() - their_props.keys()):
        differences.append(f"{label}: property {prop!r} is not upstream")
    for prop in sorted(their_props.keys() - our_props.keys()):
        differences.append(f"{label}: property {prop!r} is missing")
    for prop in sorted(our_props.keys() & their_props.keys()):
        differences += _compare_schema(where, f"{path}.{prop}", our_props[prop], their_props[prop])
    for key, suffix in (("items", "[]"), ("additionalProperties", "{}")):
        mine, upstream = ours.get(key), theirs.get(key)
        if isinstance(mine, dict) and isinstance(upstream, dict):
            differences += _compare_schema(where, path + suffix, mine, upstream)
        elif mine != upstream:
            differences.append(f"{label}: {key} is {_brief(mine)}, upstream {_brief(upstream)}")
    return differences


def _normalised(schema: dict) -> dict:
    schema = dict(schema)
    if schema.get("x-kubernetes-list-type") == "atomic":
        del schema["x-kubernetes-list-type"]
    if schema.get("type") == "integer" and schema.get("format") in ("int32", "int64"):
        del schema["format"]
    return schema


def _brief(value) -> str:
    return "a schema" if isinstance(value, dict) else repr(value)


def _sorted(values):
    return sorted(values, key=repr) if values is not None else None


def main(argv: list[str]) -> int:
    """Print the differences; exit status 1 if there are any."""
    reference = Path(argv[0]) if argv else DEFAULT_REFERENCE
    if not reference.exists():
        print(f"no upstream CRDs at {reference}; pass their path as the argument")
        return 2
    differences = compare_with_reference(generate_crds(), reference)
    for line in differences:
        print(line)
    print(f"{len(differences)} difference(s) against {reference}")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
