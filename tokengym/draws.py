"""The prompt draws of the vector env: sub-env i draws from its own generator, in the blocks
`TokenGenEnv` draws, so both envs see the same prompts for the same seeds."""

from __future__ import annotations

import numpy as np

from .env import PROMPT_DRAW_BLOCK
from .options import check_seeds


class PromptDraws:
    """Per-sub-env generators and their current block of prompt indices.

    Each row's block ends in a sentinel (the dtype's largest value, never a prompt index), so a
    draw is one gather at the row's cursor: reading the sentinel is what says "refill".
    """

    def __init__(self, num_envs: int, num_prompts: int) -> None:
        self.num_envs, self.num_prompts = num_envs, num_prompts
        self.rngs: list[np.random.Generator | None] = [None] * num_envs
        # A small dtype where it holds every prompt index and the sentinel: 51 MB for 100k
        # sub-envs.
        dtype = np.uint16 if num_prompts < np.iinfo(np.uint16).max else np.int64
        self.sentinel = np.iinfo(dtype).max
        self.width = PROMPT_DRAW_BLOCK + 1
        self.draws = np.full((num_envs, self.width), self.sentinel, dtype=dtype)
        self.row_offsets = np.arange(num_envs, dtype=np.int64) * self.width
        # Flat index of each row's next draw; at the sentinel until the row is seeded.
        self.cursor = self.row_offsets + PROMPT_DRAW_BLOCK
        self.flat_draws = self.draws.reshape(-1)  # a 1-D gather costs a fraction of a 2-D one

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
                self.cursor[i] = self.row_offsets[i] + PROMPT_DRAW_BLOCK

    def draw(self, rows: np.ndarray) -> np.ndarray:
        """The next prompt index of each row (an int array, uint16 for fewer than 65535
        prompts)."""
        cursor = self.cursor[rows]
        drawn = self.flat_draws.take(cursor)
        if np.maximum.reduce(drawn) == self.sentinel:  # once per 256 draws of a row
            stale = (drawn == self.sentinel).nonzero()[0]
            refill = rows[stale]
            rngs, prompts = self.rngs, self.num_prompts
            self.draws[refill, :PROMPT_DRAW_BLOCK] = [
                rngs[i].integers(0, prompts, size=PROMPT_DRAW_BLOCK)  # type: ignore[union-attr]
                for i in refill.tolist()
            ]
            cursor[stale] = self.row_offsets[refill]
            drawn[stale] = self.flat_draws.take(cursor[stale])
        self.cursor[rows] = cursor + 1
        return drawn
