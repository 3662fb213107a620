"""The infos of `TokenGenVectorEnv`: Gymnasium's vector layout, built with little per-step work.

Every info holds every key for every sub-env, as a `SyncVectorEnv` of `TokenGenEnv` builds it: a
value array and a `_key` bool array per key. What never changes is built once and handed out
read-only: the two action masks are (num_envs, V) broadcast views of the env's one (V,) mask (no
copy at any V), and the `_key` arrays and `gamma` are shared read-only arrays. Writing through
any of them raises `ValueError: assignment destination is read-only`; copy them to change them.
The values of the other keys are fresh arrays on every step.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .env import STOP_REASONS
from .problem import Problem


def _constant(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


class VectorInfos:
    """Builds the infos of `num_envs` sub-envs of one problem."""

    def __init__(self, problem: Problem, num_envs: int) -> None:
        self.num_envs, self.text = num_envs, problem.text_infos
        self.stop_names = np.array(STOP_REASONS, dtype=object)
        vocab = problem.vocab_size
        self.masks = np.broadcast_to(problem.action_mask, (num_envs, vocab))
        self.masks_bool = np.broadcast_to(
            _constant(problem.action_mask.astype(bool)), (num_envs, vocab)
        )
        self.everyone = _constant(np.ones(num_envs, dtype=bool))
        self.prompts = np.array(problem.prompts, dtype=object)
        self.references = np.array([r or "" for r in problem.references], dtype=object)
        self.blank_strings = _constant(np.full(num_envs, "", dtype=object))
        self.zeros = _constant(np.zeros(num_envs))
        self.falses = _constant(np.zeros(num_envs, dtype=bool))
        self.no_stops = _constant(np.full(num_envs, -1, dtype=np.int64))
        everyone = self.everyone
        self.constants = {  # the same read-only arrays in every info
            "gamma": _constant(np.full(num_envs, problem.gamma)),
            "_gamma": everyone,
            "action_mask": self.masks,
            "_action_mask": everyone,
            "action_mask_bool": self.masks_bool,
            "_action_mask_bool": everyone,
        }

    def build(self, index: np.ndarray, end: tuple[np.ndarray, ...] | None = None) -> dict[str, Any]:
        """The infos for sub-envs on prompts `index`; `end` holds the rows, completions (None
        without text infos), sequence rewards, successes and stop codes (indices of
        STOP_REASONS) of the episodes that ended on this step."""
        sequence, success = self.zeros.copy(), self.falses.copy()
        if not self.text:
            stop_code = self.no_stops.copy()
            if end is not None:
                sequence[end[0]], success[end[0]], stop_code[end[0]] = end[2:]
            return {
                "prompt_index": index.copy(),
                "_prompt_index": self.everyone,
                "sequence_reward": sequence,
                "_sequence_reward": self.everyone,
                "success": success,
                "_success": self.everyone,
                "stop_code": stop_code,
                "_stop_code": self.everyone,
                **self.constants,
            }
        completion, stop_reason = self.blank_strings.copy(), self.blank_strings.copy()
        if end is not None:
            rows = end[0]
            completion[rows], sequence[rows], success[rows] = end[1:4]
            stop_reason[rows] = self.stop_names[end[4]]
        everyone = self.everyone
        return {
            "prompt": self.prompts[index],  # a gather costs what a copy of per-row texts does
            "_prompt": everyone,
            "reference": self.references[index],
            "_reference": everyone,
            "prompt_index": index.copy(),
            "_prompt_index": everyone,
            "completion": completion,
            "_completion": everyone,
            "sequence_reward": sequence,
            "_sequence_reward": everyone,
            "success": success,
            "_success": everyone,
            "stop_reason": stop_reason,
            "_stop_reason": everyone,
            **self.constants,
        }

    @staticmethod
    def only(infos: dict[str, Any], rows: np.ndarray) -> dict[str, Any]:
        """`infos` for the sub-envs in the bool array `rows`; the others get Gymnasium's blanks
        (None in object arrays, 0 elsewhere) and False in the `_key` masks."""
        out: dict[str, Any] = {}
        for key, value in infos.items():
            if key.startswith("_"):
                out[key] = rows.copy()
            else:
                blank = np.zeros_like(value) if value.dtype != object else value.copy()
                if value.dtype == object:
                    blank[~rows] = None
                else:
                    blank[rows] = value[rows]
                out[key] = blank
        return out
