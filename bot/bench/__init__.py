"""Benchmarks of the paper's protocol (HumanEval, MBPP) and their task data."""
