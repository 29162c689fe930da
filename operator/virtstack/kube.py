"""The operator's only way to write to the API: strict field validation, one field manager.

Strict validation makes a misspelled field an error instead of a silently dropped one.
"""

from __future__ import annotations

import json
import logging
import socket
from datetime import UTC, datetime

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from .metrics import API_REQUESTS, describe_request

log = logging.getLogger(__name__)

FIELD_MANAGER = "virtstack"
READ_VERBS = {"get", "list", "watch"}
LEASES = "leases.coordination.k8s.io"  # renewed every few seconds: not worth a line each
REPORTING_INSTANCE = socket.gethostname()[:128]
STRICT = "Strict"
APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"
# The API server gives up on a request after 60 s (--request-timeout): waiting longer means the
# connection is stalled, and a worker waiting forever would never reconcile its key again.
REQUEST_TIMEOUT_SECONDS = 60.0


def refused_as_invalid(error: ApiException) -> bool:
    """The API server refused what we sent as invalid: retrying the same thing cannot help."""
    return error.status in (400, 422) or (error.status == 500 and "typed patch" in str(error.body))


def refusal_message(error: ApiException) -> str:
    try:
        message = json.loads(error.body)["message"]
    except (TypeError, ValueError, KeyError):
        message = error.reason
    return f"the API server refused the KubeVirt objects built for this VM: {message}"


def _snake(kind: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in kind).lstrip("_")


def _split(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


class CountingApiClient(client.ApiClient):
    """Every request counted by verb, resource and response code (virtstack_api_requests_total), none unbounded."""

    async def request(self, method: str, url: str, query_params=None, headers=None, **kwargs):  # noqa: ANN001
        kwargs["_request_timeout"] = kwargs.get("_request_timeout") or REQUEST_TIMEOUT_SECONDS
        verb, resource = describe_request(method, url, query_params, (headers or {}).get("Content-Type", ""))
        try:
            response = await super().request(method, url, query_params=query_params, headers=headers, **kwargs)
        except Exception as error:
            API_REQUESTS.labels(verb, resource, str(getattr(error, "status", "error"))).inc()
            raise
        API_REQUESTS.labels(verb, resource, str(response.status)).inc()
        if verb not in READ_VERBS:  # what the operator changed, naming the object it reconciles (logs.reconciling)
            log.log(logging.DEBUG if resource == LEASES else logging.INFO, "%s %s: %s", verb, resource, response.status)
        return response


class Kube:
    """Writes through one shared ApiClient (one aiohttp session per process)."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.events = client.EventsV1Api(api)

    async def apply(self, obj: dict, plural: str) -> dict:
        """Server-side apply of a namespaced custom object we own; force takes fields back from others."""
        group, version = _split(obj["apiVersion"])
        meta = obj["metadata"]
        return await self.custom.patch_namespaced_custom_object(
            group,
            version,
            meta["namespace"],
            plural,
            meta["name"],
            obj,
            field_manager=FIELD_MANAGER,
            force=True,
            field_validation=STRICT,
            _content_type=APPLY_PATCH,
        )

    async def create_custom(self, obj: dict, plural: str) -> dict | None:
        """POST a namespaced custom object whose spec never changes (a KubeVirt snapshot, restore or
        migration); one that already exists (an earlier run made it) is left as it is: None."""
        group, version = _split(obj["apiVersion"])
        try:
            return await self.custom.create_namespaced_custom_object(
                group,
                version,
                obj["metadata"]["namespace"],
                plural,
                obj,
                field_manager=FIELD_MANAGER,
                field_validation=STRICT,
            )
        except ApiException as error:
            if error.status != 409:
                raise
            return None

    async def set_finalizers(self, api_version: str, plural: str, obj: dict, finalizers: list[str]) -> None:
        """Replace the object's finalizers, only if nobody changed it since it was read (409 otherwise)."""
        group, version = _split(api_version)
        meta = obj["metadata"]
        patch = {"metadata": {"finalizers": finalizers or None, "resourceVersion": meta["resourceVersion"]}}
        try:
            await self.custom.patch_namespaced_custom_object(
                group, version, meta["namespace"], plural, meta["name"], patch, _content_type=MERGE_PATCH
            )
        except ApiException as error:
            if error.status != 404:
                raise

    async def namespace_terminating(self, name: str) -> bool:
        try:
            namespace = await self.core.read_namespace(name)
        except ApiException as error:
            if error.status == 404:
                return True
            raise
        return namespace.metadata.deletion_timestamp is not None

    async def apply_core(self, obj: dict) -> dict:
        """Server-side apply of a core/v1 object we own (Secret, Service)."""
        meta = obj["metadata"]
        patch = getattr(self.core, f"patch_namespaced_{_snake(obj['kind'])}")
        applied = await patch(
            meta["name"],
            meta["namespace"],
            obj,
            field_manager=FIELD_MANAGER,
            force=True,
            field_validation=STRICT,
            _content_type=APPLY_PATCH,
        )
        return self.api.sanitize_for_serialization(applied)

    async def create_core(self, obj: dict) -> dict:
        """POST a core/v1 object once (a Secret that must never be rewritten)."""
        create = getattr(self.core, f"create_namespaced_{_snake(obj['kind'])}")
        created = await create(obj["metadata"]["namespace"], obj, field_manager=FIELD_MANAGER, field_validation=STRICT)
        return self.api.sanitize_for_serialization(created)

    async def delete_core(self, kind: str, namespace: str, name: str) -> None:
        try:
            await getattr(self.core, f"delete_namespaced_{_snake(kind)}")(name, namespace)
        except ApiException as error:
            if error.status != 404:
                raise

    async def force_delete_pods(self, namespace: str, label_selector: str, node: str) -> None:
        """Remove pods of a dead host at once (grace 0): their kubelet will never confirm a graceful end."""
        pods = await self.core.list_namespaced_pod(
            namespace, label_selector=label_selector, field_selector=f"spec.nodeName={node}"
        )
        for pod in pods.items:
            try:
                await self.core.delete_namespaced_pod(pod.metadata.name, namespace, grace_period_seconds=0)
            except ApiException as error:
                if error.status != 404:
                    raise

    async def list_pods(self, namespace: str, label_selector: str) -> list[dict]:
        pods = await self.core.list_namespaced_pod(namespace, label_selector=label_selector)
        return [self.api.sanitize_for_serialization(pod) for pod in pods.items]

    async def post_event(self, regarding: dict, kind: str, reason: str, note: str) -> None:
        """An events.k8s.io Event about one of our objects; best effort, like every controller's events."""
        meta = regarding["metadata"]
        event = {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}-", "namespace": meta["namespace"]},
            "eventTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "reportingController": "virtstack.io/operator",
            "reportingInstance": REPORTING_INSTANCE,
            "action": "Reconcile",
            "reason": reason,
            "note": note[:1024],
            "type": kind,
            "regarding": {
                "apiVersion": regarding["apiVersion"],
                "kind": regarding["kind"],
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
            },
        }
        try:
            await self.events.create_namespaced_event(meta["namespace"], event, field_validation=STRICT)
        except ApiException as error:
            log.warning(
                "event %s for %s/%s not posted: %s %s",
                reason,
                meta["namespace"],
                meta["name"],
                error.status,
                error.reason,
            )

    async def read_secret(self, namespace: str, name: str) -> dict | None:
        """A user's Secret as plain JSON, or None when it does not exist."""
        try:
            secret = await self.core.read_namespaced_secret(name, namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return self.api.sanitize_for_serialization(secret)

    async def delete_custom(
        self, api_version: str, plural: str, namespace: str, name: str, propagation: str | None = None
    ) -> bool:
        """False when it was already gone. `propagation="Foreground"` keeps it until its dependents are gone."""
        group, version = _split(api_version)
        options = {"propagation_policy": propagation} if propagation else {}
        try:
            await self.custom.delete_namespaced_custom_object(group, version, namespace, plural, name, **options)
        except ApiException as error:
            if error.status != 404:
                raise
            return False
        return True

    async def patch_cluster_status(self, api_version: str, plural: str, name: str, status: dict) -> dict | None:
        """The object as written; None when it is gone."""
        group, version = _split(api_version)
        try:
            return await self.custom.patch_cluster_custom_object_status(
                group, version, plural, name, {"status": status}, field_validation=STRICT, _content_type=MERGE_PATCH
            )
        except ApiException as error:
            if error.status != 404:
                raise
            return None

    async def patch_status(self, api_version: str, plural: str, namespace: str, name: str, status: dict) -> dict | None:
        """The object as written; None when it is gone."""
        group, version = _split(api_version)
        try:
            return await self.custom.patch_namespaced_custom_object_status(
                group,
                version,
                namespace,
                plural,
                name,
                {"status": status},
                field_validation=STRICT,
                _content_type=MERGE_PATCH,
            )
        except ApiException as error:
            if error.status != 404:  # deleted meanwhile: nothing left to report on
                raise
            return None
