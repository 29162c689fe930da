"""The operator's settings: the chart's `settings` values, mounted as a file (VIRTSTACK_CONFIG)."""

from __future__ import annotations

import os
from enum import StrEnum
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from .common import DURATION

CONFIG_ENV = "VIRTSTACK_CONFIG"


class ServiceType(StrEnum):
    LOAD_BALANCER = "LoadBalancer"
    NODE_PORT = "NodePort"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IsoUrlRules(Strict):
    allowedCIDRs: list[IPv4Network | IPv6Network] = Field(
        default_factory=list,
        description="Ranges ISO URLs may point into although they are internal (e.g. 127.0.0.0/8 for tests); "
        "loopback, link-local, private and reserved ranges are refused otherwise.",
    )
    clusterCIDRs: list[IPv4Network | IPv6Network] = Field(
        default_factory=lambda: [IPv4Network("10.96.0.0/12"), IPv4Network("10.244.0.0/16")],
        description="The cluster's Service and Pod ranges: refused even inside an allowed range.",
    )


class IsoImport(Strict):
    maxAttempts: int = Field(
        default=5, ge=1, description="A download failing this many times (CDI's retries included) makes the ISO Failed."
    )
    failAfter: str = Field(
        default="1h", pattern=DURATION, description="A download still failing this long after it began is Failed."
    )


class SchedulerNames(Strict):
    spread: str = Field(default="default-scheduler", description="The profile for allocation Spread.")
    pack: str = Field(default="virtstack-pack", description="The profile for allocation Pack (MostAllocated).")


class LogFormat(StrEnum):
    JSON = "json"
    TEXT = "text"


class Metrics(Strict):
    enabled: bool = Field(default=True, description="Serve Prometheus metrics.")
    port: int = Field(default=9090, ge=1, le=65535, description="Their port.")


class Settings(Strict):
    maxSnapshotsPerVM: int = Field(default=10, ge=1, description="CloudStack vmsnapshots.max: the oldest goes beyond.")
    snapshotCreateTimeout: str = Field(
        default="30m", pattern=DURATION, description="CloudStack vmsnapshot.create.wait: a snapshot fails after it."
    )
    appendDisplayNameToInstanceName: bool = Field(
        default=False, description="CloudStack vm.instancename.flag: the display name ends the instance name."
    )
    maxVMsPerHost: int = Field(
        default=50, ge=0, description="VMs per host; the cluster keeps one host's worth free (N-1). 0: no limit."
    )
    isoUrlRules: IsoUrlRules = Field(default_factory=IsoUrlRules, description="Where ISO URLs may point.")
    isoImport: IsoImport = Field(default_factory=IsoImport, description="When a failing ISO download gives up.")
    defaultStorageClass: str = Field(default="", description="For disks the operator creates; empty: the cluster's.")
    exposeServiceType: ServiceType = Field(default=ServiceType.LOAD_BALANCER, description="The Service type of expose.")
    hostDownAfter: str = Field(
        default="3m", pattern=DURATION, description="A VM whose host stopped reporting this long is Down."
    )
    watchInactivityTimeout: str = Field(
        default="70s",
        pattern=DURATION,
        description="A watch that brings no event (not even a bookmark, sent every minute) this long is reopened.",
    )
    schedulerNames: SchedulerNames = Field(default_factory=SchedulerNames, description="kube-scheduler profiles.")
    watchNamespaces: list[str] = Field(default_factory=list, description="Namespaces to serve; empty: all.")
    logFormat: LogFormat = Field(default=LogFormat.JSON, description="json or text.")
    metrics: Metrics = Field(default_factory=Metrics, description="Prometheus metrics.")


def load_settings(path: str | None = None) -> Settings:
    """Defaults, overridden by the YAML file VIRTSTACK_CONFIG names (when it does)."""
    path = path or os.environ.get(CONFIG_ENV)
    if not path:
        return Settings()
    return Settings.model_validate(yaml.safe_load(Path(path).read_text()) or {})
