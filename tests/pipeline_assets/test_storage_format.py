"""The stored asset files' bytes (``storage.json_bytes``): strict JSON, sorted keys, one
top-level entry a line, the same bytes for the same content."""

import json
import math

import pytest

from impact_assets.assets.storage import json_bytes

RECORD = {
    "status": "ok",
    "initiative_id": "init-1",
    "effect_estimate": 0.1 + 0.2,
    "ci_lower": -1.5e-12,
    "ci_upper": 12345678.901234567,
    "p_value": None,
    "selected": True,
    "model_type": "synthetic_control",
    "reason": "café \u2013 not selected",
    "lineage": {"inputs": {"pilot": {"storage_id": 12, "run_id": "abc"}}, "manifest": None},
    "artifacts": [1, 2.5, None, {"b": 2, "a": 1}],
}


def test_a_record_is_one_sorted_entry_a_line_and_reads_back_exactly():
    text = json_bytes(RECORD).decode("utf-8")
    assert json.loads(text) == RECORD  # floats included, bit for bit
    lines = text.split("\n")
    assert lines[0] == "{" and lines[-2] == "}" and lines[-1] == ""
    entries = lines[1:-2]
    assert len(entries) == len(RECORD)
    keys = [json.loads("{" + line.strip().rstrip(",") + "}").popitem()[0] for line in entries]
    assert keys == sorted(RECORD)
    assert all(line.startswith("  ") for line in entries)
    assert '  "artifacts": [1, 2.5, null, {"a": 1, "b": 2}],' in entries


def test_the_same_content_gives_the_same_bytes_whatever_the_order():
    reordered = dict(reversed(list(RECORD.items())))
    reordered["lineage"] = dict(reversed(list(RECORD["lineage"].items())))
    assert json_bytes(reordered) == json_bytes(RECORD)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_are_refused(bad):
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        json_bytes({**RECORD, "ci_upper": bad})


@pytest.mark.parametrize("value", [{}, [], [1, {"b": 1, "a": 2}], "text", 3.5, None, {1: "a"}])
def test_other_values_are_compact_strict_json(value):
    data = json_bytes(value)
    assert data.endswith(b"\n") and data.count(b"\n") == 1
    assert json.loads(data) == json.loads(json.dumps(value))
