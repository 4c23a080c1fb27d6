"""The GitHub App: the job handler, the job queue, the workers that drain it, and the reports it posts."""
