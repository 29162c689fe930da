"""Write-avoidance helpers, the work queue, and the CRDs generated from the models."""

from __future__ import annotations

import asyncio
from pathlib import Path

import yaml
from virtstack.api.crd import all_crds
from virtstack.api.reference import render_reference
from virtstack.cli import (
    ADMISSION_POLICIES,
    API_REFERENCE,
    CRD_DIRECTORIES,
    URL_RULES_TEMPLATE,
    render_crd,
    render_policies,
    render_url_rules_template,
)
from virtstack.objects import is_subset, merge_patch, needs_apply, stamped
from virtstack.workqueue import WorkQueue

REPO = Path(__file__).resolve().parents[2]


def test_is_subset_ignores_fields_others_add() -> None:
    desired = {"spec": {"a": 1, "list": [{"name": "x"}]}}
    assert is_subset(desired, {"spec": {"a": 1, "b": 2, "list": [{"name": "x", "default": True}]}, "status": {}})
    assert not is_subset(desired, {"spec": {"a": 2, "list": [{"name": "x"}]}})
    assert not is_subset(desired, {"spec": {"a": 1, "list": [{"name": "x"}, {"name": "y"}]}})
    assert not is_subset(desired, None)


def test_merge_patch_sets_changes_and_nulls_removed_keys() -> None:
    current = {"state": "Running", "host": "h1", "nested": {"a": 1, "b": 2}}
    desired = {"state": "Stopped", "nested": {"a": 1}}
    assert merge_patch(current, desired) == {"state": "Stopped", "host": None, "nested": {"b": None}}
    assert merge_patch(desired, desired) == {}
    assert merge_patch({"kopf": {"x": 1}}, {}, keep=("kopf",)) == {}


def test_work_queue_serialises_a_key_and_retries_failures() -> None:
    seen: list[str] = []
    attempts = {"flaky": 0}

    async def sync(key: str) -> None:
        seen.append(key)
        if key == "flaky":
            attempts["flaky"] += 1
            if attempts["flaky"] < 3:
                raise RuntimeError("transient")

    async def scenario() -> None:
        queue = WorkQueue("test", sync, workers=2)
        runner = asyncio.create_task(queue.run())
        for key in ("a", "a", "a", "flaky"):
            queue.add(key)
        for _ in range(200):
            if attempts["flaky"] >= 3:
                break
            await asyncio.sleep(0.01)
        runner.cancel()

    asyncio.run(scenario())
    assert seen.count("a") == 1, "duplicates of a queued key collapse into one run"
    assert attempts["flaky"] == 3, "a failing key is retried until it succeeds"


def test_crds_are_structural_with_status_subresource_and_category() -> None:
    for crd in all_crds():
        version = crd["spec"]["versions"][0]
        assert version["subresources"] == {"status": {}}
        assert "virtstack" in crd["spec"]["names"]["categories"]
        _assert_structural(version["schema"]["openAPIV3Schema"], crd["metadata"]["name"])


def test_committed_crds_equal_the_generated_ones() -> None:
    for directory in CRD_DIRECTORIES:
        expected = {f"{crd['metadata']['name']}.yaml": crd for crd in all_crds()}
        committed = sorted(p.name for p in (REPO / directory).glob("*.yaml"))
        assert committed == sorted(expected), f"stale or missing files in {directory}: run `virtstack crds`"
        for name, crd in expected.items():
            path = REPO / directory / name
            assert path.read_text() == render_crd(crd), f"{path} drifted from the models: run `virtstack crds`"
            assert yaml.safe_load(path.read_text()) == crd


def _assert_structural(node: dict, where: str) -> None:
    assert (
        "type" in node or node.get("x-kubernetes-int-or-string") or node.get("x-kubernetes-preserve-unknown-fields")
    ), f"{where} has no type"
    for name, child in node.get("properties", {}).items():
        _assert_structural(child, f"{where}.{name}")
    if "items" in node:
        _assert_structural(node["items"], f"{where}[]")


def test_committed_api_reference_equals_the_generated_one() -> None:
    assert (REPO / API_REFERENCE).read_text() == render_reference(), "docs/api.md drifted: run `virtstack crds`"


def test_committed_admission_policies_equal_the_generated_ones() -> None:
    assert (REPO / ADMISSION_POLICIES).read_text() == render_policies(), "policies drifted: run `virtstack crds`"
    assert (REPO / URL_RULES_TEMPLATE).read_text() == render_url_rules_template(), "drifted: run `virtstack crds`"


def test_a_removed_field_is_applied_although_what_remains_is_a_subset() -> None:
    before = {"metadata": {"name": "vm"}, "spec": {"affinity": {"x": 1}, "cpu": 2}}
    after = {"metadata": {"name": "vm"}, "spec": {"cpu": 2}}
    live = stamped(before)
    assert not needs_apply(before, live)
    assert is_subset(after, live), "the plain subset check cannot see the removal"
    assert needs_apply(after, live)
    drifted = {**live, "spec": {"affinity": {"x": 1}, "cpu": 4}}
    assert needs_apply(before, drifted), "someone changed a field we own"
