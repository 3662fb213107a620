"""tokengym.bench: the benchmark suite (``tokengym-bench run --suite quick``).

Modules: ``suites`` (the runs as plain data), ``runner`` (trains them with
``tokengym.agents.train``, one JSONL row each, resumable), ``ray_executor`` (the runs as Ray
tasks: ``--executor ray``), ``report`` and ``plots`` (Markdown tables and PNGs), ``throughput``
and ``agent_speed`` (question 7).
"""

from __future__ import annotations

from tokengym._requires import require

require("torch", "tqdm", "matplotlib", extra="bench", package=__name__)
