"""The policy: load a model (built-in, local folder or hub id) with LoRA, sample rollouts, score log-probs.

    from dumpcli.config import ModelConfig
    from dumpcli.policy import generate, load_policy, render_prompts
    loaded = load_policy(ModelConfig(name="tiny-random", lora=False), seed=0)

Nothing here imports torch at module level; `dumpcli.policy.load` does that inside functions.
"""

from dumpcli.policy.load import *  # noqa: F403 - the public names are load.__all__
from dumpcli.policy.load import __all__  # noqa: F401
