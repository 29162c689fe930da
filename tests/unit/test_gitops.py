"""GitOps readiness: kopf keeps no bookkeeping on our objects, and the Argo CD health checks judge statuses right."""

from __future__ import annotations

from pathlib import Path

import kopf
import pytest
import yaml
from virtstack.api.crd import GROUP, KINDS
from virtstack.argocd import health_check, render_argocd_cm

REPO = Path(__file__).resolve().parents[2]
ARGOCD = REPO / "docs" / "argocd"
lua51 = pytest.importorskip("lupa.lua51", reason="the dev dependency lupa runs Lua 5.1, as Argo CD's gopher-lua")


def test_kopf_has_no_handler_that_would_write_annotations_or_finalizers() -> None:
    """Only indexes and on.event: kopf's progress and diff-base storage (annotations) and finalizers stay unused."""
    import virtstack.runtime  # noqa: F401 - registers every handler

    registry = kopf.get_default_registry()
    assert registry._changing.get_all_handlers() == [], "on.create/update/delete/resume store kopf annotations"
    assert registry._spawning.get_all_handlers() == [], "daemons and timers add kopf finalizers"
    assert registry._webhooks.get_all_handlers() == []
    assert registry._indexing.get_all_handlers() and registry._watching.get_all_handlers()


def health(kind: str, obj: dict) -> tuple[str, str]:
    lua = lua51.LuaRuntime(unpack_returned_tuples=True)
    check = lua.eval(f"function(obj) {(ARGOCD / f'{GROUP}_{kind}.lua').read_text()} end")
    result = check(lua.table_from(obj, recursive=True))
    return result["status"], result["message"]


def sample(kind: str, generation: int = 2, status: dict | None = None, ready: dict | None = None) -> dict:
    """An object at `generation` whose status (if any) was computed for generation 2."""
    obj = {"apiVersion": f"{GROUP}/v1alpha1", "kind": kind, "metadata": {"name": "x", "generation": generation}}
    if status is not None:
        conditions = [{"type": "Ready", "observedGeneration": 2, **ready}] if ready else []
        obj["status"] = {"observedGeneration": 2, "conditions": conditions, **status}
    return obj


def test_every_kind_has_a_health_check() -> None:
    assert {path.stem for path in ARGOCD.glob("*.lua")} == {f"{GROUP}_{kind.kind}" for kind in KINDS}


@pytest.mark.parametrize("kind", [kind.kind for kind in KINDS])
def test_not_yet_seen_or_stale_is_progressing_and_ready_is_healthy(kind: str) -> None:
    good = {"status": "True", "reason": "Ready", "message": "all good"}
    assert health(kind, sample(kind)) == ("Progressing", "Waiting for the operator to report")
    stale = sample(kind, generation=3, status={}, ready=good)
    assert health(kind, stale) == ("Progressing", "Waiting for the operator to observe generation 3")
    assert health(kind, sample(kind, status={}))[0] == "Progressing", "no Ready condition yet"
    assert health(kind, sample(kind, status={}, ready=good)) == ("Healthy", "all good")


@pytest.mark.parametrize(
    ("kind", "reason", "status", "verdict"),
    [
        ("VirtualMachine", "Starting", {"state": "Starting"}, "Progressing"),
        ("VirtualMachine", "Provisioning", {"state": "Starting"}, "Progressing"),
        ("VirtualMachine", "CapacityLimit", {"state": "Stopped"}, "Progressing"),
        ("VirtualMachine", "Migrating", {"state": "Migrating"}, "Progressing"),
        ("VirtualMachine", "Down", {"state": "Down"}, "Degraded"),
        ("VirtualMachine", "HostDown", {"state": "Running"}, "Degraded"),
        ("VirtualMachine", "Error", {"state": "Error"}, "Degraded"),
        ("VirtualMachine", "GuestShutdown", {"state": "Stopped"}, "Degraded"),
        ("VirtualMachine", "RootDiskImportFailing", {"state": "Starting"}, "Degraded"),
        ("VirtualMachine", "GroupMissing", {"state": "Error"}, "Degraded"),
        ("SSHKeyPair", "InvalidPublicKey", {}, "Degraded"),
        ("AffinityGroup", "Violated", {}, "Degraded"),
        ("GPUProfile", "NoCapacity", {}, "Degraded"),
        ("VMSnapshot", "Creating", {"phase": "Creating"}, "Progressing"),
        ("VMSnapshot", "Reverting", {"phase": "Reverting"}, "Progressing"),
        ("VMSnapshot", "Timeout", {"phase": "Failed"}, "Degraded"),
        ("VMSnapshot", "RevertFailed", {"phase": "Ready"}, "Degraded"),
        ("ISO", "Downloading", {"phase": "Downloading"}, "Progressing"),
        ("ISO", "Verifying", {"phase": "Downloading"}, "Progressing"),
        ("ISO", "DownloadFailing", {"phase": "Downloading"}, "Degraded"),
        ("ISO", "ChecksumMismatch", {"phase": "Failed"}, "Degraded"),
        ("ISO", "UrlRefused", {"phase": "Failed"}, "Degraded"),
        ("VirtualMachine", "ISONotReady", {"state": "Creating"}, "Progressing"),
        ("VirtualMachine", "ISOUnusable", {"state": "Error"}, "Degraded"),
    ],
)
def test_failures_are_degraded_and_work_in_progress_is_progressing(kind, reason, status, verdict) -> None:
    obj = sample(kind, status=status, ready={"status": "False", "reason": reason, "message": "the message"})
    assert health(kind, obj) == (verdict, f"{reason}: the message")


def test_the_committed_scripts_and_the_argocd_cm_patch_are_the_generated_ones() -> None:
    """docs/argocd is what users apply; the scripts tested here are the ones in the patch."""
    for kind in KINDS:
        assert (ARGOCD / f"{GROUP}_{kind.kind}.lua").read_text() == health_check(kind.kind), "run `virtstack crds`"
    assert (ARGOCD / "argocd-cm.yaml").read_text() == render_argocd_cm(), "run `virtstack crds`"
    patch = yaml.safe_load(render_argocd_cm())["data"]
    assert patch == {f"resource.customizations.health.{GROUP}_{kind.kind}": health_check(kind.kind) for kind in KINDS}
