import json

import pytest

from fastinsight.errors import ValidationFailed
from fastinsight.recsys.evaluation.experiment import EvaluationConfig, run_evaluation
from fastinsight.recsys.evaluation.report import markdown, write_report
from fastinsight.recsys.evaluation.selection import select_model
from fastinsight.services.training.evaluation import store_evaluation

from .helpers import blocks, csr

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def report():
    config = EvaluationConfig(
        algorithms=("popularity", "itemknn", "implicit_als"), ks=(2, 5), metric="ndcg@2",
        search=True, budget_seconds=5, max_trials=2, use_content=False,
        min_positives=5,
    )
    return run_evaluation(blocks((12, 8), 10), config)


def test_report_structure_and_comparison(report):
    names = [m["name"] for m in report["models"]]
    assert names == ["popularity", "itemknn", "implicit_als"]
    assert report["protocol"]["split_sizes"]["test"] == 20  # one of ten per user
    assert report["protocol"]["evaluated_users_test"] == 20
    knn = report["models"][1]
    assert knn["test"]["ndcg@2"] == 1.0
    assert knn["search"]["trials_run"] == 2
    assert set(knn["test_ci95"]) >= {"ndcg@2", "recall@5"}
    comp = report["comparison"]
    assert comp["best_ours"] == "itemknn"
    assert comp["best_external"] == "implicit_als"
    assert comp["chosen_on"] == "validation"
    json.dumps(report)  # serialisable as is


def test_write_report_files(report, tmp_path):
    paths = write_report(report, tmp_path, name="demo")
    assert [p.name for p in paths] == [
        "demo.json", "demo.md", "demo_ndcg_vs_k.png", "demo_recall_vs_k.png",
        "demo_ndcg_by_activity.png",
    ]
    for p in paths[2:]:
        assert p.read_bytes()[:8] == PNG
    assert json.loads(paths[0].read_text())["models"][1]["name"] == "itemknn"
    md = paths[1].read_text()
    assert "| itemknn | ours |" in md
    assert "NDCG@2 by user activity" in md
    assert md == markdown(report)


def test_store_evaluation(report, db):
    inserted = store_evaluation(db, report, model_version="v42")
    doc = db.evaluations.find_one({"_id": inserted})
    assert doc["model_version"] == "v42"
    assert doc["models"][1]["test"]["ndcg@2"] == 1.0
    assert "trials" not in doc["models"][1]["search"]


def test_metric_must_use_a_listed_k():
    with pytest.raises(ValueError):
        EvaluationConfig(ks=(5,), metric="ndcg@10")


def test_select_model_picks_itemknn_on_blocks_with_reasons():
    data = blocks((12, 4), 6)
    sel = select_model(data.matrix(), ["popularity", "itemknn"], metric="ndcg@2",
                       holdout_fraction=0.2, min_positives=5, seed=0)
    assert sel.winner == "itemknn"
    assert sel.scores["itemknn"]["ndcg@2"] == 1.0
    # The 4 users of the small block get the big block's items from popularity: NDCG 0.
    assert sel.scores["popularity"]["ndcg@2"] <= 12 / 16
    assert sel.reasons[0].startswith("itemknn has the highest holdout ndcg@2")
    assert any(r.startswith("popularity:") for r in sel.reasons)
    assert sel.params["k"] == 100


def test_select_model_needs_holdout_users():
    with pytest.raises(ValidationFailed):
        select_model(csr([[0, 1], [1]], 3), ["popularity"], min_positives=5)
    with pytest.raises(ValidationFailed):
        select_model(csr([[0, 1]], 3), [])


def test_hybrid_is_built_from_the_tuned_single_models():
    config = EvaluationConfig(
        algorithms=("popularity", "itemknn", "ease", "hybrid"), ks=(2,), metric="ndcg@2",
        search=True, budget_seconds=30, max_trials=2, use_content=False,
    )
    report = run_evaluation(blocks((12, 8), 10), config)
    by_name = {m["name"]: m for m in report["models"]}
    hybrid = by_name["hybrid (tuned components)"]
    components = hybrid["params"]["components"]
    assert sorted(c["algorithm"] for c in components) == ["ease", "itemknn"]
    for c in components:  # each component keeps what its own search chose
        assert c["params"] == by_name[c["algorithm"]]["params"]
    assert hybrid["search"]["trials_run"] == 1  # one option: the best two
    assert set(hybrid["model_info"]["weights"]) == {"0_ease", "1_itemknn"} or set(
        hybrid["model_info"]["weights"]) == {"0_itemknn", "1_ease"}
    assert hybrid["test"]["ndcg@2"] == 1.0
