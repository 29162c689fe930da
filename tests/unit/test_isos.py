"""ISOs: the SSRF guard, the status decisions, and what VMs are built with (pure logic)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address, ip_network

import pytest
from virtstack.api.iso import IsoPhase, ISOSpec, ISOStatus
from virtstack.api.settings import IsoUrlRules, Settings
from virtstack.api.virtualmachine import VirtualMachineSpec, VirtualMachineStatus, VMState
from virtstack.builders.iso import (
    DOWNLOAD_ANNOTATION,
    IsoUnusable,
    ResolvedIso,
    build_import,
    download_mark,
    download_of,
    iso_users,
    requested_size,
    resolve_isos,
)
from virtstack.builders.kubevirt_vm import VMInputs, build_kubevirt_vm, imported_urls
from virtstack.status.iso import GiveUp, IsoObserved, iso_status, started, still_failed
from virtstack.status.virtualmachine import blocked_status
from virtstack.urlguard import ReadFailed, UrlRefused, UrlRules, address_refusal, checked_addresses

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
RULES = UrlRules(allowed=(ip_network("127.0.0.1/32"),), cluster=(ip_network("10.96.0.0/12"),))
GIVE_UP = GiveUp(max_attempts=3, fail_after=600)


# --- SSRF guard -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "refused_because"),
    [
        ("127.0.0.1", None),  # allowed explicitly
        ("127.0.0.2", "loopback"),
        ("169.254.169.254", "link-local (cloud metadata)"),
        ("10.96.0.10", "cluster's own range"),
        ("10.20.0.1", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "shared address space"),
        ("0.0.0.0", "this host"),
        ("::1", "loopback"),
        ("fe80::1", "link-local"),
        ("fd00::1", "unique local"),
        ("::ffff:169.254.169.254", "link-local (cloud metadata)"),  # IPv4-mapped: judged as IPv4
        ("93.184.215.14", None),
        ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", None),
    ],
)
def test_internal_addresses_are_refused_unless_allowed(address: str, refused_because: str | None) -> None:
    refusal = address_refusal(ip_address(address), RULES)
    if refused_because is None:
        assert refusal is None
    else:
        assert refusal is not None and refused_because in refusal


def test_cluster_ranges_are_refused_even_inside_an_allowed_range() -> None:
    rules = UrlRules(allowed=(ip_network("10.0.0.0/8"),), cluster=(ip_network("10.96.0.0/12"),))
    assert address_refusal(ip_address("10.20.0.1"), rules) is None
    assert "isoUrlRules.clusterCIDRs" in address_refusal(ip_address("10.96.0.1"), rules)


def test_settings_give_the_rules() -> None:
    rules = UrlRules.from_settings(IsoUrlRules(allowedCIDRs=["127.0.0.0/8"]))
    assert rules.allowed == (ip_network("127.0.0.0/8"),)
    assert ip_network("10.96.0.0/12") in rules.cluster


def resolver(answers: dict[str, list[str]]):
    async def resolve(host: str) -> list[str]:
        if host not in answers:
            raise OSError("Name or service not known")
        return answers[host]

    return resolve


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://metadata.internal/x", "resolves to 169.254.169.254 is a link-local"),
        ("http://mixed.example/x", "resolves to 10.0.0.5 is a private"),  # one bad address is enough
        ("http://LOCALHOST./x", "is this machine"),
        ("http://a.localhost/x", "is this machine"),
        ("ftp://mirror.example/x", "not an http or https URL"),
        ("http:///x", "names no host"),
    ],
)
def test_urls_resolving_inside_are_refused(url: str, message: str) -> None:
    resolve = resolver({"metadata.internal": ["169.254.169.254"], "mixed.example": ["93.184.215.14", "10.0.0.5"]})
    with pytest.raises(UrlRefused, match=message):
        asyncio.run(checked_addresses(url, RULES, resolve))


def test_public_names_pass_and_unresolvable_ones_are_retried() -> None:
    resolve = resolver({"mirror.example": ["93.184.215.14"]})
    assert asyncio.run(checked_addresses("https://mirror.example/a.iso", RULES, resolve)) == ["93.184.215.14"]
    with pytest.raises(ReadFailed, match="does not resolve"):
        asyncio.run(checked_addresses("https://gone.example/a.iso", RULES, resolve))


def test_a_host_name_the_resolver_cannot_encode_is_refused_not_raised() -> None:
    """An empty label passes the CRD's URL check; the system resolver's IDNA encoding refuses it."""
    with pytest.raises(UrlRefused, match="is not a valid host name"):
        asyncio.run(checked_addresses("https://a..example/a.iso", RULES))


# --- ISO status -------------------------------------------------------------------------------


def spec(**fields: object) -> ISOSpec:
    return ISOSpec.model_validate({"url": "https://mirror.example/a.iso", **fields})


def data_volume(phase: str, progress: str = "N/A", restarts: int = 0, error: str | None = None) -> dict:
    running = {"type": "Running", "status": "False", "reason": "Error", "message": error} if error else {}
    status: dict = {"phase": phase, "progress": progress, "conditions": [running] if running else []}
    if restarts:
        status["restartCount"] = restarts
    return {"metadata": {"name": "a-iso"}, "status": status}


def observed(**fields: object) -> IsoObserved:
    return IsoObserved(started_at=fields.pop("started_at", NOW), users=fields.pop("users", []), **fields)


def ready_of(status: ISOStatus):
    return next(c for c in status.conditions if c.type == "Ready")


def test_progress_then_ready() -> None:
    downloading = iso_status(
        1, spec(), observed(data_volume=data_volume("ImportInProgress", "42.17%"), size=100), ISOStatus(), GIVE_UP, NOW
    )
    assert (downloading.phase, downloading.progress, downloading.size) == (IsoPhase.DOWNLOADING, "42.17%", "100")
    ready = iso_status(1, spec(), observed(data_volume=data_volume("Succeeded", "100.0%")), downloading, GIVE_UP, NOW)
    assert (ready.phase, ready.progress, ready.size) == (IsoPhase.READY, "100%", "100")
    assert ready_of(ready).status == "True"


def test_checksum_must_match_before_ready() -> None:
    checksum = "sha256:" + "a" * 64
    dv = data_volume("Succeeded", "100.0%")
    verifying = iso_status(1, spec(checksum=checksum), observed(data_volume=dv), ISOStatus(), GIVE_UP, NOW)
    assert verifying.phase is IsoPhase.DOWNLOADING and ready_of(verifying).reason == "Verifying"
    verified = iso_status(
        1, spec(checksum=checksum), observed(data_volume=dv, digest=checksum), verifying, GIVE_UP, NOW
    )
    assert verified.phase is IsoPhase.READY and verified.verifiedChecksum == checksum
    # After a restart the digest is gone from memory; the status remembers it was verified.
    again = iso_status(1, spec(checksum=checksum), observed(data_volume=dv), verified, GIVE_UP, NOW)
    assert again.phase is IsoPhase.READY
    wrong = iso_status(1, spec(checksum=checksum), observed(digest="sha256:" + "b" * 64), ISOStatus(), GIVE_UP, NOW)
    assert wrong.phase is IsoPhase.FAILED and ready_of(wrong).reason == "ChecksumMismatch"


def test_a_failing_download_reports_then_fails_by_attempts_or_time() -> None:
    error = "Unable to connect to http data source: expected status code 200, got 404"
    retrying = iso_status(
        1,
        spec(),
        observed(data_volume=data_volume("ImportInProgress", restarts=1, error=error)),
        ISOStatus(),
        GIVE_UP,
        NOW,
    )
    assert retrying.phase is IsoPhase.DOWNLOADING and ready_of(retrying).reason == "DownloadFailing"
    assert "attempt 1 of 3" in ready_of(retrying).message and error in ready_of(retrying).message
    # The operator's failed reads count with CDI's restarts.
    by_attempts = iso_status(
        1,
        spec(),
        observed(data_volume=data_volume("ImportInProgress", restarts=1, error=error), failed_reads=2),
        retrying,
        GIVE_UP,
        NOW,
    )
    assert by_attempts.phase is IsoPhase.FAILED and ready_of(by_attempts).reason == "DownloadFailed"
    by_time = iso_status(
        1,
        spec(),
        observed(read_error="connection refused", failed_reads=1, started_at=NOW - timedelta(minutes=11)),
        ISOStatus(),
        GIVE_UP,
        NOW,
    )
    assert by_time.phase is IsoPhase.FAILED and "connection refused" in ready_of(by_time).message
    slow = iso_status(
        1, spec(), observed(data_volume=data_volume("ImportInProgress", "3.00%"), started_at=NOW - timedelta(hours=5)),
        ISOStatus(), GIVE_UP, NOW,
    )  # fmt: skip
    assert slow.phase is IsoPhase.DOWNLOADING, "a slow download that does not fail never gives up"


def test_refused_urls_fail_at_once_and_failed_stays_failed() -> None:
    refused = iso_status(1, spec(), observed(refusal="x resolves to 127.0.0.2"), ISOStatus(), GIVE_UP, NOW)
    assert refused.phase is IsoPhase.FAILED and ready_of(refused).reason == "UrlRefused"
    kept = still_failed(2, refused, ["ns/vm"])
    assert kept.phase is IsoPhase.FAILED and kept.usedBy == ["ns/vm"] and ready_of(kept).observedGeneration == 2
    fresh = started(2, ISOStatus(lastRetriedAt=NOW), [], NOW)
    assert fresh.phase is IsoPhase.PENDING and fresh.startedAt == NOW and fresh.lastRetriedAt == NOW


def test_import_data_volume_is_owned_sized_and_marked_with_its_download() -> None:
    body = build_import("a", "ns", "uid-1", "https://mirror.example/a.iso", 5 * 1024 * 1024 + 1, "fast")
    assert body["metadata"]["name"] == "a-iso" and body["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert body["spec"]["storage"] == {"resources": {"requests": {"storage": "6Mi"}}, "storageClassName": "fast"}
    assert requested_size(1) == "1Mi"
    marked = {"metadata": {"annotations": {DOWNLOAD_ANNOTATION: download_mark(NOW)}}}
    assert download_of(marked) == NOW and download_of({"metadata": {}}) is None


# --- VMs using ISOs ---------------------------------------------------------------------------


def iso_object(namespace: str, name: str, phase: str = "Ready", **spec_fields: object) -> dict:
    return {
        "metadata": {"namespace": namespace, "name": name, "uid": f"{name}-0000-uid"},
        "spec": {"url": "https://mirror.example/a.iso", **spec_fields},
        "status": {"phase": phase, "size": "1048576", "progress": "12.00%" if phase == "Downloading" else "100%"},
    }


def lookup(*isos: dict):
    table = {(i["metadata"]["namespace"], i["metadata"]["name"]): i for i in isos}
    return lambda namespace, name: table.get((namespace, name))


def vm_spec(**fields: object) -> VirtualMachineSpec:
    source = fields.pop("source", {"template": {"image": "quay.io/containerdisks/fedora:41"}})
    return VirtualMachineSpec.model_validate({"source": source, "rootDisk": {"size": "20Gi"}, **fields})


def test_vms_use_ready_isos_of_their_namespace_or_public_ones() -> None:
    found = lookup(
        iso_object("a", "os"), iso_object("b", "tools", public=True, bootable=False), iso_object("b", "mine")
    )
    boot, attached = resolve_isos(found, "a", vm_spec(source={"iso": {"name": "os"}}, attachedISO="b/tools"))
    assert (boot.namespace, boot.name, boot.size) == ("a", "os", 1048576) and attached.namespace == "b"
    for spec_fields, message, waiting in [
        ({"attachedISO": "b/mine"}, "is private to namespace b", False),
        ({"source": {"iso": {"name": "tools", "namespace": "b"}}}, "is not bootable", False),
        ({"attachedISO": "nothing"}, r"ISO a/nothing \(spec.attachedISO\) does not exist", False),
    ]:
        with pytest.raises(IsoUnusable, match=message) as caught:
            resolve_isos(found, "a", vm_spec(**spec_fields))
        assert caught.value.waiting is waiting
    with pytest.raises(IsoUnusable, match="is Downloading 12.00%: the VM waits") as caught:
        resolve_isos(lookup(iso_object("a", "os", "Downloading")), "a", vm_spec(attachedISO="os"))
    assert caught.value.waiting


def test_iso_users_are_the_vms_naming_it_and_allowed_to() -> None:
    def vm(namespace: str, name: str, spec: dict, deleting: bool = False) -> dict:
        meta = {"namespace": namespace, "name": name, **({"deletionTimestamp": "now"} if deleting else {})}
        return {"metadata": meta, "spec": spec}

    vms = {
        ("a", "boot"): [vm("a", "boot", {"source": {"iso": {"name": "os"}}})],
        ("a", "gone"): [vm("a", "gone", {"attachedISO": "os"}, deleting=True)],
        ("b", "foreign"): [vm("b", "foreign", {"attachedISO": "a/os"})],
        ("b", "other"): [vm("b", "other", {"attachedISO": "os"})],
    }
    assert iso_users(vms, "a", "os", public=False) == ["a/boot"]
    assert iso_users(vms, "a", "os", public=True) == ["a/boot", "b/foreign"]


def test_boot_from_an_iso_is_a_blank_root_disk_and_a_first_cdrom() -> None:
    iso = ResolvedIso("isos", "os", "abcdef12-3456", 1048576)
    tools = ResolvedIso("isos", "tools", "99999999-0000", 2 * 1048576)
    spec = vm_spec(source={"iso": {"name": "os", "namespace": "isos"}}, attachedISO="isos/tools")
    built = build_kubevirt_vm(VMInputs("web", "team", "uid", spec, Settings(), "i-1", boot_iso=iso, attached_iso=tools))
    disks = built["spec"]["template"]["spec"]["domain"]["devices"]["disks"]
    assert disks[0] == {"name": "rootdisk", "disk": {"bus": "virtio"}, "bootOrder": 2}
    assert {"name": "web-iso-abcdef12", "cdrom": {"bus": "sata"}, "bootOrder": 1} in disks
    assert {"name": "web-iso-99999999", "cdrom": {"bus": "sata"}} in disks
    templates = {t["metadata"]["name"]: t["spec"] for t in built["spec"]["dataVolumeTemplates"]}
    assert templates["web-rootdisk"]["source"] == {"blank": {}}
    assert templates["web-rootdisk"]["storage"]["resources"]["requests"]["storage"] == "20Gi"
    assert templates["web-iso-abcdef12"]["source"] == {"pvc": {"namespace": "isos", "name": "os-iso"}}
    assert templates["web-iso-99999999"]["storage"]["resources"]["requests"]["storage"] == "2Mi"
    assert imported_urls(built) == set()
    same = build_kubevirt_vm(VMInputs("web", "team", "uid", spec, Settings(), "i-1", boot_iso=iso, attached_iso=iso))
    cdroms = [d for d in same["spec"]["template"]["spec"]["domain"]["devices"]["disks"] if "cdrom" in d]
    assert len(cdroms) == 1, "one CD-ROM for the same ISO"


def test_a_vm_waiting_for_its_iso_is_creating_while_one_needing_a_fix_is_in_error() -> None:
    never_built = VirtualMachineStatus()
    waiting = blocked_status(1, "ISONotReady", "downloading", never_built, "i-1", "2030-01-01T12:00:00Z", waiting=True)
    assert waiting.state is VMState.CREATING
    refused = blocked_status(1, "ISOUnusable", "private", never_built, "i-1", "2030-01-01T12:00:00Z")
    assert refused.state is VMState.ERROR
    retried = blocked_status(2, "ISONotReady", "downloading again", refused, "i-1", waiting=True)
    assert retried.state is VMState.CREATING, "a fixed VM that now only waits is no longer in Error"
    running = VirtualMachineStatus(state=VMState.RUNNING)
    assert blocked_status(3, "ISONotReady", "downloading", running, "i-1", waiting=True).state is VMState.RUNNING
