"""The operator's settings model reads what the Helm chart writes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError
from virtstack.api.settings import Settings, load_settings
from virtstack_testbed.binaries import expected_binaries

CHART = Path(__file__).resolve().parents[2] / "charts" / "virtstack"


def helm() -> str | None:
    built = expected_binaries().helm
    return str(built) if built.exists() else shutil.which("helm")


@pytest.mark.skipif(helm() is None, reason="needs helm")
@pytest.mark.parametrize("overrides", [[], ["--set", "settings.maxSnapshotsPerVM=3", "--set", "watchNamespaces={a,b}"]])
def test_chart_config_file_is_valid_settings(overrides: list[str]) -> None:
    rendered = subprocess.run(
        [
            helm(),
            "template",
            "vs",
            str(CHART),
            "--kube-version",
            "1.35.4",
            "--show-only",
            "templates/configmap.yaml",
            *overrides,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    config = yaml.safe_load(yaml.safe_load(rendered)["data"]["config.yaml"])
    settings = Settings.model_validate(config)
    if overrides:
        assert settings.maxSnapshotsPerVM == 3 and settings.watchNamespaces == ["a", "b"]


def test_defaults_without_a_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VIRTSTACK_CONFIG", raising=False)
    assert load_settings() == Settings()


def test_file_overrides_and_refuses_unknown_keys(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("hostDownAfter: 90s\nisoUrlRules: {allowedCIDRs: [127.0.0.0/8]}\n")
    settings = load_settings(str(path))
    assert settings.hostDownAfter == "90s" and str(settings.isoUrlRules.allowedCIDRs[0]) == "127.0.0.0/8"
    path.write_text("maxSnapshotPerVM: 3\n")
    with pytest.raises(ValidationError, match="maxSnapshotPerVM"):
        load_settings(str(path))
