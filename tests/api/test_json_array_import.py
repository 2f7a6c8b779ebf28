"""The JSON array import reader: strict grammar, any chunking, linear work.

Known answers come from ``json.loads`` of the same text. The reader is driven with tiny
chunks so that every kind of token (strings with brackets and escapes, multi-byte
characters, numbers, deep rows) is split across chunk boundaries somewhere.
"""

from __future__ import annotations

import io
import json
import random
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pymongo.database import Database

from fastinsight.errors import ValidationFailed
from fastinsight.services.data import json_array
from fastinsight.services.data.json_array import TOO_DEEP, json_array_rows

JSON = {"Content-Type": "application/json"}


def _rows(text: str | bytes) -> list[Any]:
    raw = text.encode() if isinstance(text, str) else text
    return [value for _, value in json_array_rows(io.BytesIO(raw), lambda field, message: (field, message))]


def _random_row(rng: random.Random) -> dict[str, Any]:
    pieces = ['"', "\\", "]", "}", "[", "{", ",", "é", "€", "😀", " ", "a", "\n"]
    text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
    return {"user_id": text, "n": rng.choice([0, -1.5e-7, 12345678901, 3.25]),
            "attributes": {"deep": [[{"x": text}]] if rng.random() < 0.5 else [], "b": True},
            "tags": [text, None, False]}


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64 * 1024])
def test_any_chunking_gives_what_json_loads_gives(monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    monkeypatch.setattr(json_array, "CHUNK", chunk)
    rng = random.Random(chunk)
    rows = [_random_row(rng) for _ in range(40)]
    for separators in ((",", ":"), (" ,\n\t ", " : ")):
        text = "\ufeff \n[ " + json.dumps(rows, separators=separators) [1:-1] + "\r\n] \n"
        assert _rows(text) == rows
    assert _rows("[]") == [] and _rows(" [ \n ] ") == []
    assert _rows('[1, "s", [2], {"a": 1}]') == [("(row)", "must be a JSON object")] * 3 + [{"a": 1}]


@pytest.mark.parametrize(("body", "message"), [
    ('[{"a": 1} {"a": 2}]', "expected ',' or ']' after row 1"),
    ('[{"a": 1},, {"a": 2}]', "a row is missing after row 1"),
    ('[{"a": 1},]', "a row is missing after row 1"),
    ('[{"a": 1}] x', "unexpected text after the closing ']'"),
    ('[{"a": 1}]]', "unexpected text after the closing ']'"),
    ('[{"a": 1}][]', "unexpected text after the closing ']'"),
    ('[{"a": 1}', "not closed"),
    ('[{"a": 1},', "not closed"),
    ('[{"a": "unterminated', "not valid JSON after row 0"),
    ('[{"a": 1}, {"a": }]', "not valid JSON after row 1"),
    ('{"a": 1}', "must be an array"),
    ("", "empty body"),
    ("  \n", "empty body"),
])
def test_text_that_is_not_one_json_array_is_refused(
    monkeypatch: pytest.MonkeyPatch, body: str, message: str
) -> None:
    for chunk in (1, 5, 64 * 1024):
        monkeypatch.setattr(json_array, "CHUNK", chunk)
        with pytest.raises(ValidationFailed) as failure:
            _rows(body)
        assert message in str(failure.value), (chunk, str(failure.value))


def test_a_row_too_deep_to_decode_is_rejected_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(json_array, "CHUNK", 1000)
    deep = "[" * 10_000 + r'"]\\"' + "]" * 10_000
    assert _rows(f'[{{"a": 1}}, {deep}, {{"b": 2}}]') == [{"a": 1}, ("(row)", TOO_DEEP), {"b": 2}]


class _Counting(json.JSONDecoder):
    calls = 0

    def raw_decode(self, s: str, idx: int = 0) -> tuple[Any, int]:
        _Counting.calls += 1
        return super().raw_decode(s, idx)


def test_a_long_row_is_decoded_a_bounded_number_of_times(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 4 MB row spans 64 chunks: it used to be decoded again from its start on each new
    chunk (quadratic: 32 MB took 10 s); now it is measured as it arrives and decoded once."""
    monkeypatch.setattr(json_array.json, "JSONDecoder", _Counting)
    scanned: list[int] = []
    feed = json_array._ValueEnd.feed

    def counting_feed(self: json_array._ValueEnd, text: str, at: int) -> int | None:
        scanned.append(len(text) - at)
        return feed(self, text, at)

    monkeypatch.setattr(json_array._ValueEnd, "feed", counting_feed)
    big = "x\\\\" * (4 * 1024 * 1024 // 3)
    _Counting.calls = 0
    assert _rows(f'[{{"a": "{big}"}}, {{"b": 1}}]') == [{"a": big.replace("\\\\", "\\")}, {"b": 1}]
    assert _Counting.calls <= 3
    assert sum(scanned) <= len(big) + 2 * 64 * 1024
    _Counting.calls = 0
    with pytest.raises(ValidationFailed, match="not valid JSON"):
        _rows(f'[{{"a": "{big}')  # never terminated
    assert _Counting.calls <= 2


# ---- through HTTP ------------------------------------------------------------------------------
def test_a_json_import_with_a_byte_order_mark_is_read(client: TestClient, db: Database[dict[str, object]]) -> None:
    body = "\ufeff" + json.dumps([{"user_id": "bom-1"}, {"user_id": "bom-2"}])
    r = client.post("/v1/users/import", content=body.encode(), headers=JSON)
    assert r.status_code == 200 and r.json()["inserted"] == 2, r.text
    assert db["users"].count_documents({}) == 2


def test_a_json_import_missing_a_comma_is_a_clear_422(client: TestClient) -> None:
    r = client.post("/v1/users/import", content=b'[{"user_id": "a"} {"user_id": "b"}]', headers=JSON)
    assert r.status_code == 422 and "expected ',' or ']' after row 1" in r.json()["message"]
    r = client.post("/v1/users/import", content=b'[{"user_id": "a"}] trailing', headers=JSON)
    assert r.status_code == 422 and "after the closing" in r.json()["message"]
