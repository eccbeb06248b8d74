"""Training engines: who runs the GRPO loop. One table; `dump train` looks the engine up here.

    dump train --engine dump ...    # dumpcli.train: our trainer, one device (the default)
    dump train --engine trl ...     # TRL's GRPOTrainer driven by dump's schedulers (dumpcli.engines.trl)

An engine is a function `(cfg: TrainConfig, *, resume: bool) -> trainer`; the trainer has `fit()`,
`step`, `cfg`, `data`, `scheduler`, `run`, `names`, `on_step`, `on_eval` and `is_main_process`
(what `dump train` shows and prints). Nothing heavy is imported here: config.py reads the names.
"""

from __future__ import annotations

import importlib
from typing import Any

ENGINES: dict[str, str] = {
    "dump": "dumpcli.train.setup:build_trainer",
    "trl": "dumpcli.engines.trl:build_trl_trainer",
}


def build_engine(cfg: Any, *, resume: bool = False) -> Any:
    """The trainer of `cfg.run.engine`, built (and its run dir created or reopened)."""
    from dumpcli.config import validate_config

    validate_config(cfg)  # an unknown engine is a one-line error, before anything loads
    module, _, function = ENGINES[cfg.run.engine].partition(":")
    return getattr(importlib.import_module(module), function)(cfg, resume=resume)
