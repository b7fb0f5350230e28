"""The published JSON Schema of flow files: generated from the format's model, committed, current, and
describing the files flowkernel reads (the examples) and not what it refuses."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from flowkernel.files import flow_file_schema
from flowkernel.files.source import read_document

ROOT = Path(__file__).resolve().parents[2]
PUBLISHED = ROOT / "docs" / "flow-file.schema.json"


def test_the_committed_schema_is_current() -> None:
    assert json.loads(PUBLISHED.read_text()) == flow_file_schema(), (
        "regenerate it: python -m flowkernel schema > docs/flow-file.schema.json"
    )


def test_the_schema_is_a_valid_schema_and_accepts_the_example_files() -> None:
    schema = flow_file_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    examples = sorted((ROOT / "examples").glob("*.yaml"))
    assert examples
    for example in examples:
        jsonschema.validate(read_document(example).data, schema)


@pytest.mark.parametrize(
    "data",
    [
        {"steps": []},
        {"name": "f", "steps": [{"id": "bad id", "tool": "t"}]},
        {"name": "f", "steps": [{"id": "a", "tool": "t", "retry": {"max_attempts": 0}}]},
        {"name": "f", "steps": [{"id": "a", "tool": "t", "on_error": "ignore"}]},
        {"name": "f", "steps": [{"id": "a", "tool": "t", "map": {"$step": "b"}}]},
        {"name": "f", "servers": {"s": {"command": "x", "port": 1}}, "steps": []},
        {"name": "f", "flowkernel": 2, "steps": []},
    ],
)
def test_the_schema_refuses_what_the_format_refuses(data: dict[str, object]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, flow_file_schema())
