"""The prompt draws of the vector env: sub-env i draws from its own generator, in the blocks
`TokenGenEnv` draws, so both envs see the same prompts for the same seeds."""

from __future__ import annotations

import numpy as np

from .env import PROMPT_DRAW_BLOCK
from .options import check_seeds


class PromptDraws:
    """Per-sub-env generators and their current block of prompt indices."""

    def __init__(self, num_envs: int, num_prompts: int) -> None:
        self.num_envs, self.num_prompts = num_envs, num_prompts
        self.rngs: list[np.random.Generator | None] = [None] * num_envs
        # A small dtype where it holds every prompt index: 51 MB for 100k sub-envs.
        dtype = np.uint16 if num_prompts <= 1 << 16 else np.int64
        self.draws = np.zeros((num_envs, PROMPT_DRAW_BLOCK), dtype=dtype)
        self.position = np.full(num_envs, PROMPT_DRAW_BLOCK, dtype=np.int64)
        # Flat indices of each row's block: a 1-D gather costs a fraction of a 2-D one.
        self.flat_draws = self.draws.reshape(-1)
        self.row_offsets = np.arange(num_envs, dtype=np.int64) * PROMPT_DRAW_BLOCK

    def __getstate__(self) -> dict[str, object]:
        # `flat_draws` is a view of `draws`: pickle and deepcopy would cut it from its base.
        return {k: v for k, v in self.__dict__.items() if k != "flat_draws"}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self.flat_draws = self.draws.reshape(-1)

    def seed(self, seed: object, rows: np.ndarray) -> None:
        """Seeds sub-env i with seed + i (an int) or seed[i] (a sequence), as `SyncVectorEnv`;
        a row with no seed keeps its generator (or gets a random one on the first reset)."""
        seeds = check_seeds(seed, self.num_envs)
        for i in rows.tolist():
            if seeds[i] is not None or self.rngs[i] is None:
                # What gymnasium's seeding.np_random(seed) builds, without its per-call checks.
                self.rngs[i] = np.random.Generator(np.random.PCG64(seeds[i]))
                self.position[i] = PROMPT_DRAW_BLOCK

    def draw(self, rows: np.ndarray) -> np.ndarray:
        """The next prompt index of each row (int64)."""
        position = self.position[rows]
        if np.maximum.reduce(position, initial=0) == PROMPT_DRAW_BLOCK:  # once per 256 a row
            refill = rows[position == PROMPT_DRAW_BLOCK]
            rngs, prompts = self.rngs, self.num_prompts
            self.draws[refill] = [
                rngs[i].integers(0, prompts, size=PROMPT_DRAW_BLOCK)  # type: ignore[union-attr]
                for i in refill.tolist()
            ]
            self.position[refill] = 0
            position = self.position[rows]
        self.position[rows] = position + 1
        return self.flat_draws.take(self.row_offsets[rows] + position).astype(np.int64)
