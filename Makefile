# Thin wrappers: every target calls a script or the CLI.
SHELL := /bin/bash
.DEFAULT_GOAL := help

.PHONY: help install db-start db-stop run test lint bench fuzz

help:
	@echo "make run    install, start the local database, load demo data, train, serve API + dashboard"
	@echo "make test   install, start the local database, run the test suite, stop what it started"
	@echo "make lint   ruff, mypy (server and Python client), tsc (browser client)"
	@echo "make bench  run the benchmarks in bench/ (results in bench/results/)"
	@echo "make fuzz   long schema fuzz of a real server, API and admin key (before a release)"

install:
	scripts/bootstrap.sh

db-start: install
	scripts/db.sh start

db-stop:
	scripts/db.sh stop

run:
	scripts/run.sh

test:
	scripts/test.sh

lint: install
	.venv/bin/ruff check src tests bench clients
	.venv/bin/mypy
	cd clients/python && ../../.venv/bin/mypy
	node clients/js/node_modules/typescript/bin/tsc -p clients/js/tsconfig.json --noEmit

bench: install
	scripts/bench.sh

fuzz: install
	scripts/fuzz.sh $(FUZZ_ARGS)
