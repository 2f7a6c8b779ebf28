"""The multi-seed summary: means over seeds, headline chosen on validation, paired interval."""

import numpy as np
import pytest

from fastinsight.recsys.evaluation.experiment import EvaluationConfig, evaluate_dataset
from fastinsight.recsys.evaluation.seeds import (
    plot_seeds,
    seeds_markdown,
    stratified_interval,
    summarise_seeds,
)

from .helpers import blocks


def test_stratified_interval_known_answers():
    same = stratified_interval([np.full(50, 0.1), np.full(80, 0.3)])
    assert same["mean_diff"] == pytest.approx(0.2)  # mean of the seed means, not of users
    assert same["ci_low"] == pytest.approx(0.2) and same["ci_high"] == pytest.approx(0.2)
    assert same["p_not_better"] == 0.0
    rng = np.random.default_rng(0)
    noise = stratified_interval([rng.normal(0, 1, 400), rng.normal(0, 1, 400)])
    assert noise["ci_low"] < 0 < noise["ci_high"]
    assert stratified_interval([])["p_not_better"] == 1.0


def test_summary_over_seeds(tmp_path):
    data = blocks((12, 8), 10)
    runs = {
        seed: evaluate_dataset(data, EvaluationConfig(
            protocol="binary", seed=seed, ks=(10,), metric="ndcg@10", complete=True,
            algorithms=("popularity", "ease"), max_widenings=1))
        for seed in (0, 1)
    }
    summary = summarise_seeds(runs, reference="popularity")
    rows = {r["name"]: r for r in summary["models"]}
    assert set(rows) == {"popularity", "ease"}
    for name, row in rows.items():
        per_seed = [runs[s].report["models"][0 if name == "popularity" else 1]["test"]["ndcg@10"]
                    for s in (0, 1)]
        assert row["mean"]["ndcg@10"] == pytest.approx(np.mean(per_seed), abs=1e-5)
    head = summary["headline"]
    assert rows["popularity"]["vs_reference"]["mean_diff"] == 0.0  # the reference itself
    assert rows["ease"]["vs_reference"] == head["paired_interval"]  # every row, same pairing
    assert head["best"] == "ease"  # chosen on mean validation NDCG
    assert head["ratio"] > 1 and head["excludes_zero"]
    assert len(head["per_seed"]) == 2
    assert summary["ablations"] == []
    text = seeds_markdown(summary)
    assert "Headline" in text and "excludes 0" in text
    ci = head["paired_interval"]
    assert f"| {ci['mean_diff']:+.4f} [{ci['ci_low']:+.4f}, {ci['ci_high']:+.4f}] |" in text
    assert plot_seeds(summary, tmp_path / "p.png").is_file()


def test_ablations_over_seeds_pair_each_blend_with_its_ablation():
    data = blocks((12, 8), 10)
    runs = {
        seed: evaluate_dataset(data, EvaluationConfig(
            protocol="binary", seed=seed, ks=(10,), metric="ndcg@10", search=False,
            algorithms=("popularity", "itemknn", "ease", "stacked"), ablate=("ease", "als")))
        for seed in (0, 1)
    }
    summary = summarise_seeds(runs, reference="popularity")
    found = {a["without"]: a for a in summary["ablations"]}
    assert set(found) == {"ease", "als"} and found["ease"]["blend"] == "stacked (tuned components)"
    assert found["ease"]["used_on_seeds"] == [0, 1] and found["als"]["used_on_seeds"] == []
    assert found["als"]["paired_interval"]["mean_diff"] == 0.0  # not used: the blend itself
    expected = np.mean([
        np.mean(runs[s].results[3].test.per_user["ndcg@10"]
                - {r.candidate.label: r for r in runs[s].results}["stacked without ease"]
                .test.per_user["ndcg@10"]) for s in (0, 1)])
    assert found["ease"]["paired_interval"]["mean_diff"] == pytest.approx(expected, abs=1e-5)
    assert "**Ablations**" in seeds_markdown(summary)
    # An ablation is never the headline, even when it is the best of what is left.
    only = summarise_seeds(runs, reference="popularity",
                           exclude=["itemknn", "ease", "stacked (tuned components)"])
    assert only["headline"]["best"] == "popularity"
