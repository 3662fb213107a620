"""tokengym: language-model token generation as a Gymnasium MDP.

Example:
    >>> import gymnasium as gym, tokengym
    >>> env = gym.make("TokenGen-v0", task="copy")
    >>> obs, info = env.reset(seed=0)
"""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

from ._version import __version__
from .env import TokenGenEnv
from .errors import (
    ConfigError,
    DatasetError,
    InvalidActionError,
    RenderModeError,
    ResetNeeded,
    RewardError,
    TokenGymError,
    TokenizerError,
    UnknownArgumentError,
    UnknownNameError,
)
from .problem import ENTRY_POINT
from .rewards import (
    REGISTERED_REWARD_THRESHOLD,
    REWARDS,
    edit_similarity,
    exact_match,
    prefix_match,
)
from .tasks import TASKS, Example, Task, make_task
from .tokenizer import CharTokenizer, Tokenizer, TokenizerLike
from .vector import TokenGenVectorEnv

if "TokenGen-v0" not in registry:
    register(
        id="TokenGen-v0",
        entry_point=ENTRY_POINT,
        vector_entry_point="tokengym.vector:TokenGenVectorEnv",
        # 90% exact answers in the terminal mode; a made env's spec holds the threshold with
        # that meaning in its own reward mode (rewards.exact_answer_threshold).
        reward_threshold=REGISTERED_REWARD_THRESHOLD,
        # The env raises ResetNeeded (a gymnasium.error.ResetNeeded) itself for a step or a
        # render before reset, so gymnasium's OrderEnforcing wrapper would only check it twice:
        # it cost 8% of a step.
        order_enforce=False,
    )

__all__ = [
    "REWARDS",
    "TASKS",
    "CharTokenizer",
    "ConfigError",
    "DatasetError",
    "Example",
    "InvalidActionError",
    "RenderModeError",
    "ResetNeeded",
    "RewardError",
    "Task",
    "TokenGenEnv",
    "TokenGenVectorEnv",
    "TokenGymError",
    "Tokenizer",
    "TokenizerError",
    "TokenizerLike",
    "UnknownArgumentError",
    "UnknownNameError",
    "__version__",
    "edit_similarity",
    "exact_match",
    "make_task",
    "prefix_match",
]
