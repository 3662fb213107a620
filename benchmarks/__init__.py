"""The tokengym benchmark suite (``python -m benchmarks run --suite quick``).

Modules: ``suites`` (the runs as plain data), ``runner`` (trains them, one JSONL row each,
resumable), ``report`` and ``plots`` (Markdown tables and PNGs), ``throughput`` and
``agent_speed`` (question 6), ``_agents`` (the one import of the agents package).
"""
