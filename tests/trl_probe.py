"""Train with `--engine trl` and record what this process saw, for tests/test_trl_engine.py.

    python tests/trl_probe.py CONFIG.yaml PROBE_DIR [--kill-after-step N]
    torchrun --standalone --nproc_per_node 2 tests/trl_probe.py CONFIG.yaml PROBE_DIR

Writes PROBE_DIR/rank-<R>.json: every draw of this process's scheduler sampler, its scheduler's
final state, and per generation round the distribution of each completion this process trained on
with the advantage TRL computed for it (read from `_generate_and_score_completions`' output; the
engine's own bookkeeping is not used). `--kill-after-step N` SIGKILLs the process right after
step N is logged: a hard crash at a known point.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any


def train_and_record(config: Path, probe_dir: Path, kill_after_step: int | None = None) -> dict[str, Any]:
    from transformers import TrainerCallback

    from dumpcli.config import load_config_file
    from dumpcli.engines import build_engine

    engine = build_engine(load_config_file(config))
    trainer, seen = engine.trainer, []
    generate = trainer._generate_and_score_completions

    def recording(inputs: list[dict[str, Any]]) -> dict[str, Any]:
        output = generate(inputs)
        seen.append({"distribution": [int(x["distribution"]) for x in inputs], "advantages": output["advantages"].tolist()})
        return output

    trainer._generate_and_score_completions = recording

    class Kill(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if engine.step == kill_after_step:
                os.kill(os.getpid(), signal.SIGKILL)

    if kill_after_step is not None:
        trainer.add_callback(Kill())  # after dump's callback: step N is logged first
    engine.fit()
    record = {"rank": trainer.accelerator.process_index, "draws": [dataclasses.asdict(d) for d in trainer.dump_sampler.history],
              "scheduler": trainer.scheduler.state_dict(), "rounds": seen}
    probe_dir.mkdir(parents=True, exist_ok=True)
    (probe_dir / f"rank-{record['rank']}.json").write_text(json.dumps(record))
    return record


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("config", type=Path)
    parser.add_argument("probe_dir", type=Path)
    parser.add_argument("--kill-after-step", type=int)
    a = parser.parse_args()
    train_and_record(a.config, a.probe_dir, a.kill_after_step)
    sys.exit(0)
