"""Rules the API server enforces that need the requesting user: ValidatingAdmissionPolicies (CEL, no webhook).

CloudStack keeps some actions to its root administrators. Here they are the members of
ADMIN_GROUP (and system:masters): others may not set or change these fields, but may keep a value an
administrator set (a GitOps re-apply of an unchanged manifest passes).
"""

from __future__ import annotations

from .crd import GROUP

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
