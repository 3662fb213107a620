"""Per-row constants of `TokenGenVectorEnv`: the fields of a row's integer state and each
prompt's starting values, so that a reset is one gather."""

from __future__ import annotations

import numpy as np

from .problem import Problem

# The fields of a row's integer state (`TokenGenVectorEnv._state`), in order; the env's view
# of each is the attribute `_<field>`.
STATE_FIELDS = (
    "index",
    "start",
    "base",
    "ref_base",
    "reference_length",
    "generated",
    "matched",
    "elapsed",
)
FIELD = {name: i for i, name in enumerate(STATE_FIELDS)}  # a field's row in `_state`


def starting_state(p: Problem) -> np.ndarray:
    """(fields, prompts) int64: each prompt's state at reset, `base` less the row's offset."""
    prompts = np.arange(p.num_prompts)
    columns = {
        "index": prompts,
        "start": p.generation_start,
        "base": p.generation_start,
        "ref_base": prompts * p.reference_table.shape[1],
        "reference_length": p.reference_lengths,
    }
    zeros = np.zeros(p.num_prompts, dtype=np.int64)
    return np.stack([columns.get(name, zeros) for name in STATE_FIELDS]).astype(np.int64)
