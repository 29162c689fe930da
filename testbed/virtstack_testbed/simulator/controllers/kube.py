"""The simulator's writes. Every write sends fieldValidation=Strict and every patch names its content type."""

from __future__ import annotations

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

STRICT = "Strict"
MERGE_PATCH = "application/merge-patch+json"
KUBEVIRT = ("kubevirt.io", "v1")
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
