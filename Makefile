# Shortcuts; ./dev does the setting up (see README).
.PHONY: run test bench bench-quick

run:
	./dev run

test:
	./dev test

# Every scale benchmark (about 50 minutes on 2 cores, plus 3 to make the synthetic data once: imports, training, HTTP,
# Celery); writes benchmarks/results/scale.json and scale.md. Needs PostgreSQL, Redis and wrk (see benchmarks/RESULTS.md).
bench:
	./dev setup
	.venv/bin/python benchmarks/run_all.py $(ARGS)

# The same at a tiny size in under a minute, results in a scratch folder: checks that every benchmark works.
bench-quick:
	./dev setup
	.venv/bin/python benchmarks/run_all.py --quick $(ARGS)
