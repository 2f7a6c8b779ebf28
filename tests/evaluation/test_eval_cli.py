import json

import typer
from typer.testing import CliRunner

from fastinsight.cli.evaluate import register


def app() -> typer.Typer:
    a = typer.Typer()
    register(a)

    @a.command("noop")
    def noop() -> None:  # a second command keeps "evaluate" a named sub-command
        pass

    return a


def write_blocks(path):
    with path.open("w") as fh:
        for u in range(16):
            block = 0 if u < 10 else 1
            for i in range(6):
                fh.write(json.dumps({"user_id": f"u{u}", "item_id": f"i{block * 6 + i}",
                                     "type": "view", "timestamp": 1000 + (i + u) % 6}) + "\n")


def test_evaluate_file_writes_results(tmp_path):
    src = tmp_path / "events.jsonl"
    write_blocks(src)
    out = tmp_path / "out"
    result = CliRunner().invoke(app(), [
        "evaluate", "--file", str(src), "-a", "popularity,itemknn", "--k", "2", "--k", "5",
        "--no-search", "--out", str(out), "--name", "t", "--split", "temporal",
    ])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "t.json").read_text())
    assert [m["name"] for m in report["models"]] == ["popularity", "itemknn"]
    assert report["protocol"]["split"] == "temporal"
    assert report["protocol"]["metric"] == "ndcg@2"
    assert report["models"][1]["test"]["ndcg@2"] == 1.0
    assert (out / "plots" / "t_ndcg_by_activity.png").is_file()
    assert "| itemknn | ours |" in result.stdout
    assert report["protocol"]["use_times"] is True
    result = CliRunner().invoke(app(), [
        "evaluate", "--file", str(src), "-a", "popularity", "--k", "2", "--no-search",
        "--no-times", "--out", str(out), "--name", "t2",
    ])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "t2.json").read_text())["protocol"]["use_times"] is False


def test_evaluate_needs_exactly_one_source(tmp_path):
    result = CliRunner().invoke(app(), ["evaluate", "--out", str(tmp_path)])
    assert result.exit_code != 0
    assert "exactly one of" in result.output


def test_evaluate_positives_only_drops_low_ratings(tmp_path):
    src = tmp_path / "events.jsonl"
    write_blocks(src)
    with src.open("a") as fh:  # every user also rated item i0 or i6 low: context, never relevant
        for u in range(16):
            fh.write(json.dumps({"user_id": f"u{u}", "item_id": "i6" if u < 10 else "i0",
                                 "type": "rating", "value": 1, "timestamp": 900}) + "\n")
    sizes = {}
    for flag in ([], ["--positives-only"]):
        out = tmp_path / ("p" if flag else "c")
        result = CliRunner().invoke(app(), [
            "evaluate", "--file", str(src), "-a", "popularity", "--k", "2", "--no-search",
            "--out", str(out), "--name", "t", *flag,
        ])
        assert result.exit_code == 0, result.output
        report = json.loads((out / "t.json").read_text())
        sizes[bool(flag)] = report["protocol"]["split_sizes"]
        assert report["protocol"]["context"] is not bool(flag)
    assert sizes[False]["train_context"] == 16  # one low rating per user stays in training
    assert sizes[True]["train_context"] == 0
    assert sizes[True]["test"] == sizes[False]["test"]
