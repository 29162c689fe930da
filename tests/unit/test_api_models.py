"""The models round-trip every example without loss and agree with the CRDs on the basics."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError
from virtstack.api.crd import KINDS
from virtstack.api.virtualmachine import USER_DATA_MAX_BYTES, VirtualMachineSpec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MODELS = {kind.kind: kind.model for kind in KINDS}


def example_documents() -> list[tuple[str, dict]]:
    documents = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for index, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if doc and doc["apiVersion"].startswith("virtstack.io/"):
                documents.append((f"{path.stem}[{index}]", doc))
    return documents


@pytest.mark.parametrize(("name", "document"), example_documents(), ids=[n for n, _ in example_documents()])
def test_example_round_trips_through_its_model(name: str, document: dict) -> None:
    model = MODELS[document["kind"]].model_validate(document)
    assert model.model_dump(mode="json", exclude_unset=True) == document


def test_every_kind_has_an_example() -> None:
    assert {doc["kind"] for _, doc in example_documents()} == set(MODELS)


def test_models_refuse_unknown_fields_like_strict_validation() -> None:
    with pytest.raises(ValidationError, match="cpus"):
        VirtualMachineSpec.model_validate({"source": {"template": {"image": "x"}}, "cpus": 2})


def test_user_data_limit_is_32_kib_after_base64() -> None:
    assert 4 * -(-USER_DATA_MAX_BYTES // 3) == 32 * 1024
