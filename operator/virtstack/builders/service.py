"""The Service that gives a VM a public address: CloudStack's public IP with static NAT (pure)."""

from __future__ import annotations

from ..api.settings import ServiceType
from ..api.virtualmachine import Expose
from .labels import MANAGED_BY, VM_LABEL
from .owner import owner_reference


def build_service(vm_name: str, namespace: str, uid: str, expose: Expose, service_type: ServiceType) -> dict:
    """Selects the VM's launcher pod by the label every VMI of the VM carries."""
    ports = [
        {
            "name": port.name or f"{port.protocol.value.lower()}-{port.port}",
            "port": port.port,
            "targetPort": port.targetPort or port.port,
            "protocol": port.protocol.value,
        }
        for port in expose.ports
    ]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": vm_name,
            "namespace": namespace,
            "labels": {VM_LABEL: vm_name, **MANAGED_BY},
            "ownerReferences": [owner_reference(vm_name, uid)],
        },
        "spec": {"type": service_type.value, "selector": {VM_LABEL: vm_name}, "ports": ports},
    }


def public_address(service: dict | None, node_addresses: dict[str, str], host: str | None) -> str | None:
    """LoadBalancer: its ingress address; NodePort: the VM's host address and the node port."""
    if service is None:
        return None
    ingress = (service.get("status") or {}).get("loadBalancer", {}).get("ingress") or []
    if ingress:
        return ingress[0].get("ip") or ingress[0].get("hostname")
    node_port = next((p.get("nodePort") for p in service["spec"].get("ports", []) if p.get("nodePort")), None)
    if service["spec"].get("type") == "NodePort" and node_port and host in node_addresses:
        return f"{node_addresses[host]}:{node_port}"
    return None
