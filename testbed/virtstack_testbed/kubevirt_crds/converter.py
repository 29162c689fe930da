"""Turn the TypeScript models of `@kubevirt-ui-ext/kubevirt-api` into CRD schemas.

The package is OpenAPI Generator output from KubeVirt's and CDI's OpenAPI specs, so
its interfaces mirror the Go types, but generation lost information the API server
needs. What can be recovered by rule is recovered here; the rest is in `patches.py`:
- JSON keys: the d.ts names are mangled (`_default`, `vSOCKCID`); the real keys are
  read from the FromJSON functions in `index.js`.
- Quantity, IntOrString, Time and Duration all became `string`; the description of
  the Go type, which the generator copied onto the field, tells them apart.
- TypeScript has only `number`; every number in these kinds is an integer upstream.
- Enums on Kubernetes core fields come from `+enum` markers that KubeVirt's CRD
  generator does not emit, so they become plain strings.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass

QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|"
    r"([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
OBJECT_META = "K8sIoApimachineryPkgApisMetaV1ObjectMeta"
# Map values under these keys are resource.Quantity (core ResourceList).
RESOURCE_LIST_KEYS = frozenset({"requests", "limits", "capacity"})

_MEMBER = re.compile(
    r"/\*\*(?P<doc>.*?)\*/\s*(?P<name>[\w$]+)(?P<optional>\?)?:\s*(?P<type>\{[^}]*\}|[^;]+);",
    re.S,
)
_MAP_TYPE = re.compile(r"^\{\s*\[key: string\]: (?P<value>.+?);\s*\}$", re.S)


@dataclass(frozen=True)
class Field:
    """One property of a generated interface, keyed by its real JSON name."""

    json_key: str
    ts_type: str
    required: bool
    doc: str


def parse_models(dts: str, js: str) -> dict[str, list[Field]]:
    """Interfaces of the d.ts that have a FromJSON function, fields renamed to JSON keys."""
    keys_by_model = json_keys(js)
    models = {}
    for name, body in re.findall(r"^interface (\w+) \{\n(.*?)^\}", dts, re.M | re.S):
        if name not in keys_by_model:
            continue  # runtime and request types, not models
        keys = keys_by_model[name]
        models[name] = [
            Field(
                json_key=keys[m["name"]],
                ts_type=" ".join(m["type"].split()),
                required=not m["optional"],
                doc=" ".join(m["doc"].replace("*", " ").split()),
            )
            for m in _MEMBER.finditer(body)
        ]
    return models


def parse_enum_names(dts: str) -> set[str]:
    """Names of the string-enum types the generator declared (`declare const|enum XEnum`)."""
    return set(re.findall(r"^declare (?:const|enum) (\w+Enum)\b", dts, re.M))


def json_keys(js: str) -> dict[str, dict[str, str]]:
    """Map model -> {TypeScript property: JSON key}, read from the minified FromJSONTyped bodies."""
    exported = dict((public, private) for private, public in re.findall(r"([\w$]+) as (\w+)FromJSONTyped\b", js))
    keys = {}
    for model, function in exported.items():
        head = re.search(r"function " + re.escape(function) + r"\((\w+),\w+\)\{return \1==null\?\1:", js)
        if head is None:
            raise ValueError(f"FromJSONTyped of {model} not found in index.js")
        entries = _split_object_literal(js[head.end() :])
        keys[model] = dict(_entry_key(entry, head.group(1)) for entry in entries)
    return keys


def _split_object_literal(text: str) -> list[str]:
    """Top-level `key:value` entries of the object literal that `text` starts with."""
    if not text.startswith("{"):
        raise ValueError(f"expected an object literal in index.js at {text[:40]!r}")
    depth, start, entries, quote = 0, 1, [], None
    for index, char in enumerate(text):
        if quote:
            quote = None if char == quote and text[index - 1] != "\\" else quote
        elif char in "\"'`":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
            if depth == 0:
                entries.append(text[start:index])
                return [entry for entry in entries if entry]
        elif char == "," and depth == 1:
            entries.append(text[start:index])
            start = index + 1
    raise ValueError("unterminated object literal in index.js")


def _entry_key(entry: str, param: str) -> tuple[str, str]:
    """`tsName:exists(e,"jsonKey")?...:void 0` if optional, `tsName:...e.jsonKey...` if required."""
    ts_name, expression = entry.split(":", 1)
    p = re.escape(param)
    match = re.search(rf'[\w$]+\({p},"([^"]+)"\)|\b{p}\.([\w$]+)', expression)
    if match is None:
        raise ValueError(f"no JSON key in index.js entry {entry!r}")
    return ts_name, match[1] or match[2]


class SchemaBuilder:
    """Expands a model into an inline OpenAPI v3 structural schema, applying patches per type."""

    def __init__(self, models: dict[str, list[Field]], enum_names: set[str], patches: dict):
        self.models = models
        self.enum_names = enum_names
        self.patches = patches
        self.patched_models: set[str] = set()  # lets callers catch patches that match nothing

    def kind_schema(self, root: str) -> dict:
        """Schema of a top-level kind: metadata stays opaque, the API server owns it."""
        schema = self.model_schema(root, stack=())
        schema["properties"]["metadata"] = {"type": "object"}
        return schema

    def model_schema(self, name: str, stack: tuple[str, ...]) -> dict:
        """Object schema of an interface; `stack` is the chain of models that led here."""
        if name in stack:
            raise ValueError(f"recursive type {' -> '.join(stack + (name,))}")
        if name == OBJECT_META:
            schema = {"type": "object"}  # never expanded; nested ones are patched per field
        else:
            fields = self.models[name]
            schema = {"type": "object"}  # an empty Go struct keeps no properties: strict
            if fields:
                schema["properties"] = {f.json_key: self.field_schema(f, stack + (name,)) for f in fields}
            required = sorted(f.json_key for f in fields if f.required)
            if required:
                schema["required"] = required
        if name in self.patches:
            self.patched_models.add(name)
            schema = merge(schema, self.patches[name])
        return schema

    def field_schema(self, field: Field, stack: tuple[str, ...]) -> dict:
        """Strings and resource lists are refined by what the field documents or is named."""
        schema = self.type_schema(field.ts_type, stack)
        if schema.get("type") == "string":
            schema = _string_schema(field.doc)
        elif field.json_key in RESOURCE_LIST_KEYS and "additionalProperties" in schema:
            schema["additionalProperties"] = quantity()
        return schema

    def type_schema(self, ts_type: str, stack: tuple[str, ...]) -> dict:
        """Schema of a TypeScript type expression as the generator writes them."""
        if ts_type in ("string", "number", "boolean", "object"):
            return {"type": {"number": "integer"}.get(ts_type, ts_type)}
        if ts_type in self.enum_names:
            return {"type": "string"}
        if ts_type.startswith("Array<") and ts_type.endswith(">"):
            return {"type": "array", "items": self.type_schema(ts_type[6:-1], stack)}
        if map_type := _MAP_TYPE.match(ts_type):
            return {"type": "object", "additionalProperties": self.type_schema(map_type["value"], stack)}
        if ts_type in self.models:
            return self.model_schema(ts_type, stack)
        raise ValueError(f"unsupported TypeScript type {ts_type!r} in {stack[-1]}")


def _string_schema(doc: str) -> dict:
    """A Go string-like type is recognised by the type description the generator inlined."""
    if doc.startswith("Quantity is a fixed-point representation"):
        return quantity()
    if doc.startswith("IntOrString is a type that can hold"):
        return int_or_string()
    if doc.startswith("Time is a wrapper around time.Time"):
        return {"format": "date-time", "type": "string"}
    return {"type": "string"}  # includes Duration, which upstream leaves a plain string


def int_or_string() -> dict:
    return {"anyOf": [{"type": "integer"}, {"type": "string"}], "x-kubernetes-int-or-string": True}


def quantity() -> dict:
    return {**int_or_string(), "pattern": QUANTITY_PATTERN}


def merge(base: dict, patch: dict) -> dict:
    """Deep-merge `patch` into a copy of `base`; dicts merge, None removes, other values replace."""
    merged = dict(base)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)  # no shared nodes: YAML would emit aliases
    return merged
