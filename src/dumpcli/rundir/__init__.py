"""The run dir: `dump train` writes it, `inspect`, `eval`, resume and the benchmarks read it.

    layout  file names, format version, what a complete checkpoint is; `RunDir` (paths, whole reads)
    writer  `RunWriter`: create, append logs, checkpoints (atomic), prune, reopen for resume
    reader  `RunReader`: incremental, column-wise reads for `dump inspect` (100k+ steps)
"""

from dumpcli.rundir.layout import RunDir, checkpoint_name, checkpoint_step, verify_checkpoint
from dumpcli.rundir.reader import Metrics, Run, RunReader, missing_dist, natural_key
from dumpcli.rundir.writer import RunWriter, check_new_run_dir, read_trainer_state, refuse_existing

__all__ = [
    "Metrics", "Run", "RunDir", "verify_checkpoint", "RunReader", "RunWriter", "checkpoint_name", "checkpoint_step", "missing_dist",
    "natural_key", "read_trainer_state", "refuse_existing", "check_new_run_dir",
]
