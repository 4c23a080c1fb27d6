"""The sandbox: the only user of Docker. Environment images, locked-down test runs, and their results.

`container/` holds the files copied into containers (the pytest report plugin, the benchmark runner).
"""
