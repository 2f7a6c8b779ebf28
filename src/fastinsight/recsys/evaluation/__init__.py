"""Offline evaluation: load interactions, split, tune on validation, score on test.

Entry points (import the submodule; this package imports nothing itself):

* ``data.load_movielens`` / ``data.load_interaction_file`` / ``data.from_records``
* ``experiment.run_evaluation(dataset, EvaluationConfig(...)) -> dict``
* ``report.write_report`` / ``report.evaluation_document``

Reading the stored interactions and storing a report go through the storage layer:
:mod:`fastinsight.services.training.evaluation`.
* ``selection.select_model(matrix, candidates) -> Selection``

Protocol and metric definitions: ``docs/evaluation.md``.
"""
