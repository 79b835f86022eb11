"""Train SpecGrad with ESPnet's machinery: ``python -m specgrad_plugin.bin.train --help``.

Accepts ESPnet's usual flags (--train_data_path_and_name_and_type wav.scp,speech,sound,
--collect_stats, --output_dir, --config, --max_epoch, --resume, --ngpu, --seed, the
distributed options, ...) plus the diffusion trainer's (--ema_decay, --num_samples,
--sample_interval, --sample_schedule, --sample_seconds).
"""

import sys
from typing import Optional, Sequence

from specgrad_plugin import runtime
from specgrad_plugin.checkpoints import CheckpointError
from specgrad_plugin.checks import SpecGradInputError
from specgrad_plugin.config import ConfigError
from specgrad_plugin.espnet.task import SpecGradTask


def main(cmd: Optional[Sequence[str]] = None) -> None:
    runtime.tune_cpu_allocator()  # the validation samples; $SPECGRAD_MALLOC=default opts out
    try:
        SpecGradTask.main(cmd=cmd)
    except (SpecGradInputError, ConfigError, CheckpointError) as e:  # bad data, config or checkpoint: one line
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
