"""The checks KubeVirt's admission webhooks make that a CRD schema cannot, as ValidatingAdmissionPolicies.

KubeVirt's virt-api validates in webhooks (kubevirt/kubevirt pkg/virt-api/webhooks/validating-webhook/
admitters/vms-admitter.go, vmi-create-admitter.go, vmi-update-admitter.go, pkg/storage/admitters/
disks.go, pkg/storage/admitters/vmsnapshot.go, vmrestore.go, and migration-update-admitter.go). The
testbed has no webhook server, so the rules CEL can express run in the API server as
ValidatingAdmissionPolicies (GA since Kubernetes 1.30). Messages follow KubeVirt's wording where it is
known. What CEL cannot check (rules needing other objects: a migration's VMI, one migration in flight)
the simulator checks before it acts and reports as a Failure condition (see testbed/README.md).

Pure data: `policies()` returns the manifests `stack.install_kubevirt_admission` applies.
"""

from __future__ import annotations

# The simulator acts as KubeVirt's own service account (controllers/__init__.py impersonates it);
# KubeVirt's webhooks likewise let virt-controller and virt-handler change what users may not.
KUBEVIRT_SERVICE_ACCOUNTS = "system:serviceaccount:kubevirt:"
CONTROLLER_USER = f"{KUBEVIRT_SERVICE_ACCOUNTS}kubevirt-controller"
POLICY_PREFIX = "kubevirt-testbed"
RUN_STRATEGIES = ("Always", "Halted", "Manual", "RerunOnFailure", "Once")
VOLUME_SOURCES = (
    "cloudInitConfigDrive",
    "cloudInitNoCloud",
    "configMap",
    "containerDisk",
    "containerPath",
    "dataVolume",
    "downwardAPI",
    "downwardMetrics",
    "emptyDisk",
    "ephemeral",
    "hostDisk",
    "memoryDump",
    "persistentVolumeClaim",
    "secret",
    "serviceAccount",
    "sysprep",
)
CLOUD_INIT_LIMIT = 2048  # vmi-create-admitter.go: userData / networkData, decoded


def _list(path: str, leaf: str) -> str:
    """A list field that may be absent, as a CEL expression (empty when absent)."""
    return f"has({path}.{leaf}) ? {path}.{leaf} : []"


def _one_of(var: str, fields: tuple[str, ...] | list[str]) -> str:
    return "[" + ", ".join(f"has({var}.{f})" for f in fields) + "].filter(x, x).size()"


def _decoded_size(text: str) -> str:
    """The byte length of base64 `text` once decoded, as CEL."""
    return f"(size({text}) / 4 * 3 - ({text}.endsWith('==') ? 2 : ({text}.endsWith('=') ? 1 : 0)))"


def _spec_variables(spec: str) -> list[dict]:
    """Variables over a VMI spec at CEL path `spec` (the VM's template spec, or a VMI's spec)."""
    devices = f"{spec}.domain.devices"
    return [
        {"name": "spec", "expression": spec},
        {"name": "volumes", "expression": _list(spec, "volumes")},
        {"name": "networks", "expression": _list(spec, "networks")},
        {"name": "accessCredentials", "expression": _list(spec, "accessCredentials")},
        {"name": "disks", "expression": f"has({devices}) && has({devices}.disks) ? {devices}.disks : []"},
        {
            "name": "interfaces",
            "expression": f"has({devices}) && has({devices}.interfaces) ? {devices}.interfaces : []",
        },
        {"name": "resources", "expression": f"has({spec}.domain.resources) ? {spec}.domain.resources : {{}}"},
        {"name": "requests", "expression": "has(variables.resources.requests) ? variables.resources.requests : {}"},
        {"name": "limits", "expression": "has(variables.resources.limits) ? variables.resources.limits : {}"},
        {"name": "memory", "expression": f"has({spec}.domain.memory) ? {spec}.domain.memory : {{}}"},
        {"name": "guest", "expression": "has(variables.memory.guest) ? string(variables.memory.guest) : ''"},
    ]


def _rule(expression: str, message: str | None = None, message_expression: str | None = None) -> dict:
    rule: dict = {"expression": expression, "reason": "Invalid"}
    if message_expression:
        rule["messageExpression"] = message_expression
    else:
        rule["message"] = message
    return rule


def _spec_validations(field: str, memory_optional: str = "false") -> list[dict]:
    """vmi-create-admitter.go / disks.go rules over the spec at user-facing path `field`.

    `memory_optional`: a CEL expression true when memory may come from elsewhere (an instancetype).
    """
    v = "variables"
    cloud_init = ("cloudInitNoCloud", "cloudInitConfigDrive")
    rules = [
        # disks.go: every disk has a volume of the same name
        _rule(
            f"{v}.disks.all(d, {v}.volumes.exists(w, w.name == d.name))",
            message_expression=f"'{field}.domain.devices.disks[].name \\'' + "
            f"{v}.disks.filter(d, !{v}.volumes.exists(w, w.name == d.name))[0].name + '\\' not found.'",
        ),
        _rule(
            f"{v}.disks.all(d, {v}.disks.filter(e, e.name == d.name).size() == 1)",
            message_expression=f"'{field}.domain.devices.disks[].name \\'' + "
            f"{v}.disks.filter(d, {v}.disks.filter(e, e.name == d.name).size() > 1)[0].name + '\\' must be unique.'",
        ),
        _rule(
            f"{v}.volumes.all(w, {v}.volumes.filter(x, x.name == w.name).size() == 1)",
            message_expression=f"'{field}.volumes[].name \\'' + "
            f"{v}.volumes.filter(w, {v}.volumes.filter(x, x.name == w.name).size() > 1)[0].name"
            " + '\\' must be unique.'",
        ),
        # volumes.go: exactly one source per volume
        _rule(
            f"{v}.volumes.all(w, {_one_of('w', VOLUME_SOURCES)} == 1)",
            message_expression=f"'{field}.volumes[].name \\'' + "
            f"{v}.volumes.filter(w, {_one_of('w', VOLUME_SOURCES)} != 1)[0].name + "
            "'\\' must have exactly one source type set'",
        ),
        # network admitter: interfaces and networks pair by name
        _rule(
            f"{v}.interfaces.all(i, {v}.networks.exists(n, n.name == i.name))",
            message_expression=f"'{field}.domain.devices.interfaces[].name \\'' + "
            f"{v}.interfaces.filter(i, !{v}.networks.exists(n, n.name == i.name))[0].name + '\\' not found.'",
        ),
        _rule(
            f"{v}.networks.all(n, {v}.interfaces.exists(i, i.name == n.name))",
            message_expression=f"'{field}.networks[].name \\'' + "
            f"{v}.networks.filter(n, !{v}.interfaces.exists(i, i.name == n.name))[0].name + '\\' not found.'",
        ),
        # vmi-create-admitter.go validateMemory*: memory must be requested, requests <= limits
        _rule(
            f"{memory_optional} || {v}.guest != '' || 'memory' in {v}.requests || 'memory' in {v}.limits"
            f" || has({v}.memory.hugepages)",
            message=f"no memory requested, at least one of '{field}.domain.memory.guest', "
            f"'{field}.domain.memory.hugepages.size' or '{field}.domain.resources.requests.memory' must be set",
        ),
        _rule(
            f"!('memory' in {v}.requests && 'memory' in {v}.limits) || "
            f"quantity(string({v}.requests.memory)).compareTo(quantity(string({v}.limits.memory))) <= 0",
            message_expression=f"'{field}.domain.resources.requests.memory \\'' + string({v}.requests.memory) + "
            f"'\\' is greater than {field}.domain.resources.limits.memory \\'' + string({v}.limits.memory) + '\\''",
        ),
        _rule(
            f"!('cpu' in {v}.requests && 'cpu' in {v}.limits) || "
            f"quantity(string({v}.requests.cpu)).compareTo(quantity(string({v}.limits.cpu))) <= 0",
            message_expression=f"'{field}.domain.resources.requests.cpu \\'' + string({v}.requests.cpu) + "
            f"'\\' is greater than {field}.domain.resources.limits.cpu \\'' + string({v}.limits.cpu) + '\\''",
        ),
        _rule(
            f"{v}.guest == '' || !('memory' in {v}.limits) || "
            f"quantity({v}.guest).compareTo(quantity(string({v}.limits.memory))) <= 0",
            message_expression=f"'{field}.domain.memory.guest \\'' + {v}.guest + '\\' must be equal to or less than "
            f"the memory limit {field}.domain.resources.limits.memory \\'' + string({v}.limits.memory) + '\\''",
        ),
    ]
    for source in cloud_init:
        s = f"w.{source}"
        rules += [
            _rule(
                f"{v}.volumes.all(w, !has({s}) || {_one_of(s, ('userData', 'userDataBase64', 'secretRef'))} <= 1)",
                message=f"{field}.volumes[].{source} must have only one of userData, userDataBase64 or secretRef",
            ),
            _rule(
                f"{v}.volumes.all(w, !has({s}) || !has({s}.userData) || "
                f"size(bytes({s}.userData)) <= {CLOUD_INIT_LIMIT})",
                message=f"{field}.volumes[].{source}.userData exceeds {CLOUD_INIT_LIMIT} byte limit "
                "(use userDataSecretRef for larger data)",
            ),
            _rule(
                f"{v}.volumes.all(w, !has({s}) || !has({s}.userDataBase64) || "
                f"({s}.userDataBase64.matches('^[A-Za-z0-9+/]*={{0,2}}$') && size({s}.userDataBase64) % 4 == 0))",
                message=f"{field}.volumes[].{source}.userDataBase64 is not valid base64",
            ),
            _rule(
                # the API server's CEL has no base64 library: the decoded size follows from the length
                f"{v}.volumes.all(w, !has({s}) || !has({s}.userDataBase64) || "
                f"{_decoded_size(s + '.userDataBase64')} <= {CLOUD_INIT_LIMIT})",
                message=f"{field}.volumes[].{source}.userDataBase64 exceeds {CLOUD_INIT_LIMIT} byte limit "
                "(use userDataSecretRef for larger data)",
            ),
            _rule(
                f"{v}.volumes.all(w, !has({s}) || !has({s}.networkData) || "
                f"size(bytes({s}.networkData)) <= {CLOUD_INIT_LIMIT})",
                message=f"{field}.volumes[].{source}.networkData exceeds {CLOUD_INIT_LIMIT} byte limit",
            ),
        ]
    # access credentials: one source, one propagation method, its cloud-init volume present
    rules += [
        _rule(
            f"{v}.accessCredentials.all(a, {_one_of('a', ('sshPublicKey', 'userPassword'))} == 1)",
            message=f"{field}.accessCredentials[] must have exactly one of sshPublicKey or userPassword",
        ),
        _rule(
            f"{v}.accessCredentials.all(a, !has(a.sshPublicKey) || "
            f"{_one_of('a.sshPublicKey.propagationMethod', ('noCloud', 'configDrive', 'qemuGuestAgent'))} == 1)",
            message=f"{field}.accessCredentials[].sshPublicKey.propagationMethod must have exactly one of "
            "noCloud, configDrive or qemuGuestAgent",
        ),
        _rule(
            f"{v}.accessCredentials.all(a, !has(a.sshPublicKey) || !has(a.sshPublicKey.propagationMethod.noCloud) || "
            f"{v}.volumes.exists(w, has(w.cloudInitNoCloud)))",
            message=f"{field}.accessCredentials[].sshPublicKey.propagationMethod.noCloud requires a "
            "cloudInitNoCloud volume",
        ),
        _rule(
            f"{v}.accessCredentials.all(a, !has(a.sshPublicKey) || "
            "!has(a.sshPublicKey.propagationMethod.configDrive) || "
            f"{v}.volumes.exists(w, has(w.cloudInitConfigDrive)))",
            message=f"{field}.accessCredentials[].sshPublicKey.propagationMethod.configDrive requires a "
            "cloudInitConfigDrive volume",
        ),
        _rule(
            f"{v}.accessCredentials.all(a, "
            "(!has(a.sshPublicKey) || !has(a.sshPublicKey.propagationMethod.qemuGuestAgent) || "
            "(has(a.sshPublicKey.propagationMethod.qemuGuestAgent.users) && "
            "size(a.sshPublicKey.propagationMethod.qemuGuestAgent.users) > 0)))",
            message=f"{field}.accessCredentials[].sshPublicKey.propagationMethod.qemuGuestAgent requires at "
            "least one user",
        ),
    ]
    return rules


def _policy(name: str, resources: list[tuple[str, str, list[str]]], validations: list[dict], **spec) -> dict:
    rules = [
        {"apiGroups": [group], "apiVersions": ["*"], "resources": [plural], "operations": operations}
        for group, plural, operations in resources
    ]
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": f"{POLICY_PREFIX}-{name}"},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": rules},
            "validations": validations,
            **spec,
        },
    }


def _binding(policy: dict) -> dict:
    name = policy["metadata"]["name"]
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {"policyName": name, "validationActions": ["Deny"]},
    }


def vm_policy() -> dict:
    """vms-admitter.go: the VM's run strategy, its template spec, its dataVolumeTemplates."""
    strategies = ", ".join(f"'{s}'" for s in RUN_STRATEGIES)
    validations = [
        _rule(
            "!(has(object.spec.running) && has(object.spec.runStrategy))",
            message="Running and RunStrategy are mutually exclusive. Note that Running is deprecated, "
            "please use RunStrategy instead",
        ),
        _rule(
            "has(object.spec.running) || has(object.spec.runStrategy)",
            message="One of Running or RunStrategy must be specified",
        ),
        _rule(
            f"!has(object.spec.runStrategy) || object.spec.runStrategy in [{strategies}]",
            message_expression="'Invalid RunStrategy (' + object.spec.runStrategy + ')'",
        ),
        _rule(
            "variables.dataVolumeTemplates.all(t, variables.volumes.exists(w, has(w.dataVolume) && "
            "w.dataVolume.name == t.metadata.name))",
            message_expression="'DataVolumeTemplate entry spec.dataVolumeTemplate \\'' + "
            "variables.dataVolumeTemplates.filter(t, !variables.volumes.exists(w, has(w.dataVolume) && "
            "w.dataVolume.name == t.metadata.name))[0].metadata.name + "
            "'\\' must be referenced in the VMI template\\'s \\'volumes\\' list'",
        ),
        *_spec_validations("spec.template.spec", memory_optional="has(object.spec.instancetype)"),
    ]
    variables = [
        *_spec_variables("object.spec.template.spec"),
        {"name": "dataVolumeTemplates", "expression": _list("object.spec", "dataVolumeTemplates")},
    ]
    return _policy(
        "virtualmachine",
        [("kubevirt.io", "virtualmachines", ["CREATE", "UPDATE"])],
        validations,
        variables=variables,
        # Only a new spec is judged: metadata-only updates (finalizers, labels) of a stored VM pass.
        matchConditions=[
            {"name": "spec-written", "expression": "request.operation == 'CREATE' || object.spec != oldObject.spec"}
        ],
    )


def vmi_create_policy() -> dict:
    """vmi-create-admitter.go: a VMI created directly by a user is judged like a VM's template."""
    return _policy(
        "vmi-create",
        [("kubevirt.io", "virtualmachineinstances", ["CREATE"])],
        _spec_validations("spec"),
        variables=_spec_variables("object.spec"),
    )


def immutable_spec_policy() -> dict:
    """vmi-update-admitter.go, vmsnapshot.go, vmrestore.go, migration-update-admitter.go: specs
    fixed at creation. KubeVirt's own service accounts may still change a VMI's (hotplug, live
    updates)."""
    validations = [
        _rule(
            "object.spec == oldObject.spec",
            message_expression="request.resource.resource == 'virtualmachineinstances' ? "
            "'update of VMI object is restricted' : "
            "(request.resource.resource == 'virtualmachineinstancemigrations' ? "
            "'update of Migration object\\'s spec is restricted' : 'spec is immutable after creation')",
        )
    ]
    resources = [
        ("kubevirt.io", "virtualmachineinstances", ["UPDATE"]),
        ("kubevirt.io", "virtualmachineinstancemigrations", ["UPDATE"]),
        ("snapshot.kubevirt.io", "virtualmachinesnapshots", ["UPDATE"]),
        ("snapshot.kubevirt.io", "virtualmachinesnapshotcontents", ["UPDATE"]),
        ("snapshot.kubevirt.io", "virtualmachinerestores", ["UPDATE"]),
    ]
    return _policy(
        "immutable-spec",
        resources,
        validations,
        matchConditions=[
            {
                "name": "not-kubevirt",
                "expression": f"!request.userInfo.username.startsWith('{KUBEVIRT_SERVICE_ACCOUNTS}')",
            }
        ],
    )


def policies() -> list[dict]:
    """Every policy and its binding, ready for server-side apply."""
    built = [vm_policy(), vmi_create_policy(), immutable_spec_policy()]
    return [*built, *(_binding(p) for p in built)]
