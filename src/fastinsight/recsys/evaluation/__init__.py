"""Offline evaluation: load interactions, split, tune on validation, score on test.

Entry points (import the submodule; this package imports nothing itself):

* ``data.load_movielens`` / ``data.load_interaction_file`` / ``data.load_mongo``
* ``experiment.run_evaluation(dataset, EvaluationConfig(...)) -> dict``
* ``report.write_report`` / ``report.store_evaluation``
* ``selection.select_model(matrix, candidates) -> Selection``

Protocol and metric definitions: ``docs/evaluation.md``.
"""
