"""The simulator's writes. Every write sends fieldValidation=Strict and every patch names its content type."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

STRICT = "Strict"
MERGE_PATCH = "application/merge-patch+json"
KUBEVIRT = ("kubevirt.io", "v1")
EVENT_SOURCE = "virtualmachine-controller"  # the component virt-controller's event recorder names
CDI = ("cdi.kubevirt.io", "v1beta1")


class Kube:
    def __init__(self, api: client.ApiClient) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)

    async def create(self, group_version: tuple[str, str], namespace: str, plural: str, body: dict) -> None:
        """Create; an object that already exists (a stale cache) is not an error."""
        try:
            await self.custom.create_namespaced_custom_object(
                *group_version, namespace, plural, body, field_validation=STRICT
            )
        except ApiException as error:
            if error.status != 409:
                raise

    async def delete(
        self, group_version: tuple[str, str], namespace: str, plural: str, name: str, uid: str | None = None
    ) -> None:
        """Delete; with `uid`, only that incarnation (a precondition: a newer one answers 409)."""
        body = client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=uid)) if uid else None
        await ignore_not_found(
            self.custom.delete_namespaced_custom_object(*group_version, namespace, plural, name, body=body)
        )

    async def patch(
        self, group_version: tuple[str, str], namespace: str, plural: str, name: str, body: dict, status: bool = False
    ) -> None:
        """A JSON merge patch, of the object or of its status subresource."""
        call = (
            self.custom.patch_namespaced_custom_object_status if status else self.custom.patch_namespaced_custom_object
        )
        await ignore_not_found(
            call(*group_version, namespace, plural, name, body, field_validation=STRICT, _content_type=MERGE_PATCH)
        )

    async def warn(self, obj: dict, reason: str, message: str) -> None:
        """A Warning Event about a KubeVirt object, as virt-controller's event recorder writes it."""
        meta = obj["metadata"]
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{meta['name']}.{time.time_ns():x}", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": obj.get("apiVersion", "kubevirt.io/v1"),
                "kind": obj.get("kind", "VirtualMachineInstance"),
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
            },
            "type": "Warning",
            "reason": reason,
            "message": message,
            "source": {"component": EVENT_SOURCE},
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        await self.core.create_namespaced_event(meta["namespace"], event, field_validation=STRICT)


def api_error_message(error: ApiException) -> str:
    """The API server's message, as a Go client's error prints it (e.g. "... is forbidden: exceeded quota: ...")."""
    try:
        return json.loads(error.body)["message"]
    except (TypeError, ValueError, KeyError):
        return f"{error.status} {error.reason}"


async def ignore_not_found(call) -> None:
    try:
        await call
    except ApiException as error:
        if error.status != 404:
            raise


def merge_patch_for(old: dict, new: dict) -> dict:
    """The JSON merge patch turning `old` into `new` at the top level of a dict (removed keys -> null)."""
    patch = {key: value for key, value in new.items() if old.get(key) != value}
    patch.update({key: None for key in old.keys() - new.keys()})
    return patch
