"""The sandbox: the only user of Docker. Environment images, locked-down test runs, and their results.

`executor` runs suites; `environment` builds and prunes environment images; `setup_plan` decides the
zero-configuration setup; `containers` and `archives` are the Docker plumbing (everything through the
API: a tar on stdin, the report on stdout); `results` and `verdict` turn the report into a trusted result.
`container/` holds the files sent into containers (the pytest report plugin, the benchmark runner).
"""
