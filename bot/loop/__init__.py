"""The AgentCoder paper's loop and its agents: programmer, test designer, and the executor's verdicts.

Pure of I/O but for the collaborators it is handed (a test runner, chat models, a working copy, a clock).
Start at `agent_loop.AgentLoop.run`.
"""
