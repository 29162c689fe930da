"""Rules the API server enforces that need the requesting user: ValidatingAdmissionPolicies (CEL, no webhook).

CloudStack keeps some actions to its root administrators. Here they are the members of
ADMIN_GROUP (and system:masters): others may not set or change these fields, but may keep a value an
administrator set (a GitOps re-apply of an unchanged manifest passes).
"""

from __future__ import annotations

import json

from ..urlguard import INTERNAL_RANGES, LOCAL_NAMES
from .crd import GROUP
from .settings import IsoUrlRules

ADMIN_GROUP = "virtstack:admins"
POLICY_NAME = "virtstack-administrator-fields"
NOT_ADMIN = f"!request.userInfo.groups.exists(g, g == 'system:masters' || g == '{ADMIN_GROUP}')"


def _unchanged_or_absent(path: str, absent: str) -> str:
    """The field is absent (or at its harmless value), or the same as before this request."""
    parent, _, leaf = path.rpartition(".")
    old_has = f"has(oldObject.{path})" if not parent else f"has(oldObject.{parent}) && has(oldObject.{path})"
    return f"{absent} || (oldObject != null && {old_has} && oldObject.{path} == object.{path})"


def _has(path: str) -> str:
    parent, _, _ = path.rpartition(".")
    return f"has(object.{path})" if not parent else f"(has(object.{parent}) && has(object.{path}))"


def _admin_only(kind_plural: str, path: str, what: str, absent: str | None = None) -> dict:
    absent = absent or f"!{_has(path)}"
    return {
        "expression": f"request.resource.resource != '{kind_plural}' || {_unchanged_or_absent(path, absent)}",
        "message": f"{path} {what}: only administrators (group {ADMIN_GROUP}) may set or change it",
        "reason": "Forbidden",
    }


def admission_policies() -> list[dict]:
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": POLICY_NAME},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [GROUP],
                        "apiVersions": ["*"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": ["virtualmachines", "isos"],
                    }
                ]
            },
            "matchConditions": [{"name": "not-an-administrator", "expression": NOT_ADMIN}],
            "validations": [
                _admin_only("virtualmachines", "spec.placement.host", "pins the VM to a host"),
                _admin_only("virtualmachines", "spec.migration", "live-migrates the VM"),
                _admin_only(
                    "isos",
                    "spec.featured",
                    "features the ISO for every user",
                    absent="!has(object.spec.featured) || object.spec.featured == false",
                ),
            ],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": POLICY_NAME},
        "spec": {"policyName": POLICY_NAME, "validationActions": ["Deny"]},
    }
    return [policy, binding]


def _url_of(obj: str) -> str:
    """The URL CDI would import for an ISO or a VM, '' when it has none."""
    return (
        f"request.resource.resource == 'isos' ? {obj}.spec.url : "
        f"(has({obj}.spec.source) && has({obj}.spec.source.template) && has({obj}.spec.source.template.url) "
        f"? {obj}.spec.source.template.url : '')"
    )


def url_rules_policy(rules: IsoUrlRules, name: str) -> list[dict]:
    """The SSRF guard at admission for these settings: the policy and its binding, both named `name`."""
    return url_policy(name, _cel_list(rules.allowedCIDRs), _cel_list(rules.clusterCIDRs))


def _cel_list(cidrs: list) -> str:
    """A JSON array of strings, written as Helm's toJson writes it: also a CEL list literal."""
    return json.dumps([str(c) for c in cidrs], separators=(",", ":"))


def url_policy(name: str, allowed: str, cluster: str) -> list[dict]:
    """The SSRF guard at admission, for what the API server can judge without DNS (urlguard.py does the rest).

    A URL whose host is a literal address in an internal range (unless allowed), in the cluster's
    own ranges, an IPv6 literal CEL cannot read plainly (IPv4-mapped, zoned), or localhost is
    refused. Only a new or changed URL is judged, so finalizer and status updates of stored objects pass.

    `allowed` and `cluster` are CEL lists of CIDR strings (JSON arrays are CEL literals): the settings'
    ranges are written into the policy, not read from a ConfigMap parameter, because the API server
    stops resolving a core-type paramKind for good once no binding names it for a moment (an
    uninstall and reinstall), until it restarts (kubernetes/kubernetes#130887).
    """
    field = "variables.field + ' (' + variables.url + ')'"
    judged = "!variables.judged || "
    internal = ", ".join(f"'{cidr}'" for cidr, _ in INTERNAL_RANGES)
    in_list = "variables.{}.exists(c, isCIDR(c) && cidr(c).containsIP(ip(variables.host)))"
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [GROUP],
                        "apiVersions": ["*"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": ["virtualmachines", "isos"],
                    }
                ]
            },
            "variables": [
                {"name": "url", "expression": _url_of("object")},
                {"name": "oldUrl", "expression": f"oldObject == null ? '' : ({_url_of('oldObject')})"},
                {"name": "judged", "expression": "variables.url != '' && variables.url != variables.oldUrl"},
                {
                    "name": "field",
                    "expression": "request.resource.resource == 'isos' ? 'spec.url' : 'spec.source.template.url'",
                },
                {
                    "name": "hostname",
                    "expression": "variables.judged && isURL(variables.url) ? "
                    "url(variables.url).getHostname().lowerAscii() : ''",
                },
                {
                    "name": "host",
                    "expression": "variables.hostname.endsWith('.') ? "
                    "variables.hostname.substring(0, variables.hostname.size() - 1) : variables.hostname",
                },
                {"name": "literal", "expression": "variables.host != '' && isIP(variables.host)"},
                {"name": "allowed", "expression": allowed},
                {"name": "cluster", "expression": cluster},
                {"name": "internal", "expression": f"[{internal}]"},
            ],
            "validations": [
                {
                    "expression": judged
                    + "!("
                    + " || ".join(f"variables.host == '{n}' || variables.host.endsWith('.{n}')" for n in LOCAL_NAMES)
                    + ")",
                    "messageExpression": field + " + ' points at this machine (loopback): use a public address'",
                    "reason": "Invalid",
                },
                {
                    "expression": judged + "!variables.host.contains(':') || variables.literal",
                    "messageExpression": field + " + ' is not a plain IPv6 address (IPv4-mapped and zoned "
                    "addresses are refused): use a public address'",
                    "reason": "Invalid",
                },
                {
                    "expression": judged + "!variables.literal || !" + in_list.format("cluster"),
                    "messageExpression": field + " + ' points into the cluster Service or Pod range "
                    "(setting isoUrlRules.clusterCIDRs): use an address outside the cluster'",
                    "reason": "Invalid",
                },
                {
                    "expression": judged
                    + "!variables.literal || !"
                    + in_list.format("internal")
                    + " || "
                    + in_list.format("allowed"),
                    "messageExpression": field + " + ' points at an internal address (loopback, link-local, "
                    "private or reserved), which the importer inside the cluster must not reach: use a public "
                    "address, or ask an administrator to allow its range (setting isoUrlRules.allowedCIDRs)'",
                    "reason": "Invalid",
                },
            ],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {"policyName": name, "validationActions": ["Deny"]},
    }
    return [policy, binding]
