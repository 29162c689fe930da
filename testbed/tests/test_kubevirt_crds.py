"""KubeVirt/CDI CRD generation: converter rules on small inline snippets, then the real CRDs."""

from pathlib import Path

import pytest
import yaml
from virtstack_testbed import errors
from virtstack_testbed.kubevirt_crds import KUBEVIRT_KINDS, converter, fidelity, generate_crds, npm_package

REFERENCE = Path(__file__).parents[3] / "shared/reference/kubevirt-v1.8.0-cdi-v1.63.0-crds.yaml"

# A miniature of the package: OpenAPI Generator d.ts plus minified FromJSONTyped functions.
DTS = """
interface V1Thing {
    /**
     * Mangled reserved word.
     * @type {string}
     * @memberof V1Thing
     */
    _default?: string;
    /**
     * @type {number}
     * @memberof V1Thing
     */
    vSOCKCID?: number;
    /**
     * Quantity is a fixed-point representation of a number.
     * @type {string}
     * @memberof V1Thing
     */
    guest: string;
    /**
     * IntOrString is a type that can hold an int32 or a string.
     * @type {string}
     * @memberof V1Thing
     */
    port?: string;
    /**
     * Time is a wrapper around time.Time which supports correct marshaling to YAML and JSON.
     * @type {string}
     * @memberof V1Thing
     */
    startTimestamp?: string;
    /**
     * Duration is a wrapper around time.Duration which supports correct marshaling to YAML and JSON.
     * @type {string}
     * @memberof V1Thing
     */
    timeout?: string;
    /**
     * @type {V1ThingModeEnum}
     * @memberof V1Thing
     */
    mode?: V1ThingModeEnum;
    /**
     * @type {Array<Array<V1Part>>}
     * @memberof V1Thing
     */
    parts?: Array<Array<V1Part>>;
    /**
     * @type {{ [key: string]: number; }}
     * @memberof V1Thing
     */
    counts?: {
        [key: string]: number;
    };
    /**
     * @type {{ [key: string]: string; }}
     * @memberof V1Thing
     */
    requests?: {
        [key: string]: string;
    };
    /**
     * @type {object}
     * @memberof V1Thing
     */
    masquerade?: object;
}
declare const V1ThingModeEnum: {
    readonly Fast: "fast";
};
declare type V1ThingModeEnum = typeof V1ThingModeEnum[keyof typeof V1ThingModeEnum];
interface V1Part {
    /**
     * @type {string}
     * @memberof V1Part
     */
    name: string;
    /**
     * @type {boolean}
     * @memberof V1Part
     */
    enabled?: boolean;
}
"""
JS = (
    'function Zq(e,n){return e==null?e:{_default:i(e,"default")?e.default:void 0,'
    'vSOCKCID:i(e,"VSOCKCID")?e.VSOCKCID:void 0,guest:e.guest,port:i(e,"port")?e.port:void 0,'
    'startTimestamp:i(e,"startTimestamp")?e.startTimestamp:void 0,timeout:i(e,"timeout")?e.timeout:void 0,'
    'mode:i(e,"mode")?e.mode:void 0,parts:i(e,"parts")?e.parts.map(r=>r.map(Y$)):void 0,'
    'counts:i(e,"counts")?e.counts:void 0,requests:i(e,"requests")?e.requests:void 0,'
    'masquerade:i(e,"masquerade")?e.masquerade:void 0}}'
    'function $a(e,n){return e==null?e:{name:e.name,enabled:i(e,"enabled")?e.enabled:void 0}}'
    "export{Zq as V1ThingFromJSONTyped,$a as V1PartFromJSONTyped};"
)


def thing_schema(patches=None):
    builder = converter.SchemaBuilder(converter.parse_models(DTS, JS), converter.parse_enum_names(DTS), patches or {})
    return builder.model_schema("V1Thing", stack=())


def test_json_keys_come_from_index_js_not_the_mangled_typescript_names():
    assert converter.json_keys(JS)["V1Thing"]["_default"] == "default"
    assert converter.json_keys(JS)["V1Thing"]["vSOCKCID"] == "VSOCKCID"
    assert set(thing_schema()["properties"]) >= {"default", "VSOCKCID"}


def test_required_follows_the_optional_marker():
    assert thing_schema()["required"] == ["guest"]
    assert converter.SchemaBuilder(converter.parse_models(DTS, JS), set(), {}).model_schema("V1Part", ())[
        "required"
    ] == ["name"]


def test_quantity_is_int_or_string_with_the_quantity_pattern():
    guest = thing_schema()["properties"]["guest"]
    assert guest["x-kubernetes-int-or-string"] is True
    assert guest["pattern"] == converter.QUANTITY_PATTERN
    assert "type" not in guest


def test_resource_list_values_are_quantities():
    assert thing_schema()["properties"]["requests"]["additionalProperties"] == converter.quantity()


def test_int_or_string_has_no_pattern():
    assert thing_schema()["properties"]["port"] == converter.int_or_string()


def test_time_is_date_time_and_duration_stays_a_string():
    properties = thing_schema()["properties"]
    assert properties["startTimestamp"] == {"format": "date-time", "type": "string"}
    assert properties["timeout"] == {"type": "string"}


def test_numbers_are_integers_also_inside_maps():
    properties = thing_schema()["properties"]
    assert properties["VSOCKCID"] == {"type": "integer"}
    assert properties["counts"] == {"type": "object", "additionalProperties": {"type": "integer"}}


def test_generated_enums_become_plain_strings_and_patches_add_real_ones():
    assert thing_schema()["properties"]["mode"] == {"type": "string"}
    patched = thing_schema({"V1Thing": {"properties": {"mode": {"enum": ["fast"]}}}})
    assert patched["properties"]["mode"] == {"type": "string", "enum": ["fast"]}


def test_nested_arrays_expand_to_item_objects():
    parts = thing_schema()["properties"]["parts"]
    assert parts["type"] == "array" and parts["items"]["type"] == "array"
    assert parts["items"]["items"]["properties"] == {"name": {"type": "string"}, "enabled": {"type": "boolean"}}


def test_empty_struct_is_an_object_without_properties():
    assert thing_schema()["properties"]["masquerade"] == {"type": "object"}


def test_patches_add_and_remove_properties_wherever_the_model_appears():
    patched = thing_schema({"V1Part": {"properties": {"enabled": None, "size": {"type": "integer"}}}})
    assert patched["properties"]["parts"]["items"]["items"]["properties"] == {
        "name": {"type": "string"},
        "size": {"type": "integer"},
    }


def test_fidelity_reports_missing_properties_and_ignores_inert_keywords(tmp_path):
    def crd(schema):
        version = {"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": schema}}
        return {"metadata": {"name": "things.example.io"}, "spec": {"versions": [version]}}

    ours = {
        "type": "object",
        "properties": {"n": {"type": "integer"}, "l": {"type": "array", "items": {"type": "string"}}},
    }
    theirs = {
        "type": "object",
        "description": "not compared",
        "properties": {
            "n": {"type": "integer", "format": "int64"},
            "l": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "atomic"},
            "extra": {"type": "string"},
        },
    }
    reference = tmp_path / "upstream.yaml"
    reference.write_text(yaml.safe_dump(crd(theirs)))
    assert fidelity.compare_with_reference([crd(ours)], reference) == [
        "things.example.io v1 .: property 'extra' is missing"
    ]


def test_missing_npm_is_a_testbed_error(monkeypatch, tmp_path):
    monkeypatch.setenv("VIRTSTACK_CACHE", str(tmp_path))
    monkeypatch.setattr(npm_package.shutil, "which", lambda name: None)
    with pytest.raises(errors.TestbedError, match="npm"):
        npm_package.ensure_package()


def test_a_tarball_with_other_bytes_is_rejected(tmp_path):
    tarball = tmp_path / "kubevirt-api-1.7.0.tgz"
    tarball.write_bytes(b"not the pinned package")
    with pytest.raises(errors.TestbedError, match="integrity"):
        npm_package._verify_integrity(tarball)


@pytest.fixture(scope="module")
def crds():
    return {crd["spec"]["names"]["kind"]: crd for crd in generate_crds()}


def walk(schema, path=""):
    yield path, schema
    for name, child in schema.get("properties", {}).items():
        yield from walk(child, f"{path}.{name}")
    for key, suffix in (("items", "[]"), ("additionalProperties", "{}")):
        if isinstance(schema.get(key), dict):
            yield from walk(schema[key], path + suffix)


def schema_of(crd):
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def test_every_kind_is_generated(crds):
    assert set(crds) == {spec.kind for spec in KUBEVIRT_KINDS}


def test_schemas_are_structural(crds):
    untyped = [
        f"{kind}{path}"
        for kind, crd in crds.items()
        for path, node in walk(schema_of(crd))
        if "type" not in node
        and not node.get("x-kubernetes-int-or-string")
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ]
    assert untyped == []


def test_unknown_fields_are_kept_only_where_kubevirt_keeps_them(crds):
    kept = [
        path
        for path, node in walk(schema_of(crds["VirtualMachine"]))
        if node.get("x-kubernetes-preserve-unknown-fields")
    ]
    assert kept == [
        ".spec.dataVolumeTemplates[].metadata",
        ".spec.template.metadata",
        ".spec.template.spec.domain.clock",
    ]


def test_a_misspelled_device_list_is_not_in_the_schema(crds):
    devices = schema_of(crds["VirtualMachine"])["properties"]["spec"]["properties"]["template"]["properties"]["spec"]
    devices = devices["properties"]["domain"]["properties"]["devices"]
    assert "disks" in devices["properties"] and "disk" not in devices["properties"]


def test_names_subresources_and_printer_columns(crds):
    vm, vmi = crds["VirtualMachine"], crds["VirtualMachineInstance"]
    assert vm["spec"]["names"]["shortNames"] == ["vm", "vms"]
    assert vm["spec"]["versions"][0]["subresources"] == {"status": {}}
    assert "subresources" not in vmi["spec"]["versions"][0]
    columns = {c["name"]: c["jsonPath"] for c in vmi["spec"]["versions"][0]["additionalPrinterColumns"]}
    assert columns["IP"] == ".status.interfaces[0].ipAddress"
    assert crds["DataSource"]["spec"]["names"]["shortNames"] == ["das"]


def test_matches_upstream_kubevirt_and_cdi_crds(crds):
    if not REFERENCE.exists():
        pytest.skip(f"upstream reference CRDs not present at {REFERENCE}")
    assert fidelity.compare_with_reference(list(crds.values()), REFERENCE) == []
