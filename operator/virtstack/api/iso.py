"""virtstack.io/v1alpha1 ISO: an ISO image registered from a URL and imported by CDI."""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, Field

from .common import Resource, Spec, Status, immutable, rule, rules


class IsoPhase(StrEnum):
    PENDING = "Pending"
    DOWNLOADING = "Downloading"
    READY = "Ready"
    FAILED = "Failed"


class ISOSpec(Spec):
    model_config = Spec.model_config | {
        "json_schema_extra": rules(immutable("url", "spec", "register a new ISO for another URL"))
    }

    url: str = Field(
        max_length=2048,
        description="Where to download the ISO: an http or https URL the cluster can reach, not an internal address.",
        json_schema_extra=rules(
            rule(
                "isURL(self) && url(self).getScheme() in ['http', 'https']",
                "spec.url must be an http or https URL, e.g. https://mirror.example.org/os.iso",
            )
        ),
    )
    description: str | None = Field(default=None, max_length=1024, description="What the ISO holds.")
    bootable: bool = Field(default=True, description="VMs may boot from it.")
    osType: str | None = Field(default=None, max_length=128, description="The OS type of what it installs.")
    public: bool = Field(default=False, description="Usable from every namespace, not only this one.")
    featured: bool = Field(default=False, description="Shown first to users. Administrators only.")
    extractable: bool = Field(default=False, description="Users may download it again.")
    checksum: str | None = Field(
        default=None,
        max_length=140,
        description="md5:, sha1:, sha256: or sha512: and the hex digest; a mismatch fails the ISO.",
        json_schema_extra=rules(
            rule(
                "self.matches('^(md5:[0-9a-f]{32}|sha1:[0-9a-f]{40}|sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$')",
                "spec.checksum must be md5:, sha1:, sha256: or sha512: followed by the lower-case hex digest",
            )
        ),
    )
    zones: list[str] = Field(default_factory=list, max_length=32, description="Zones to offer it in; default: all.")
    retryRequestedAt: AwareDatetime | None = Field(default=None, description="A new time retries a Failed import.")


class ISOStatus(Status):
    phase: IsoPhase | None = Field(default=None, description="Pending, Downloading, Ready or Failed.")
    progress: str | None = Field(default=None, description="How much is downloaded, in percent.")
    size: str | None = Field(default=None, description="The ISO's size in bytes, once known.")
    usedBy: list[str] = Field(default_factory=list, description="VMs (namespace/name) that boot from or attach it.")
    startedAt: AwareDatetime | None = Field(default=None, description="When the current download began.")
    failedAttempts: int | None = Field(
        default=None, description="Failed download attempts so far (the operator's and CDI's importer's)."
    )
    verifiedChecksum: str | None = Field(
        default=None, description="The spec.checksum the download was verified against."
    )
    lastRetriedAt: AwareDatetime | None = Field(default=None, description="The retryRequestedAt last carried out.")


class ISO(Resource):
    spec: ISOSpec
    status: ISOStatus | None = None
