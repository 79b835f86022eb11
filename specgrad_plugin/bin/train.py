"""Train SpecGrad with ESPnet's machinery: ``python -m specgrad_plugin.bin.train --help``.

Accepts ESPnet's usual flags (--train_data_path_and_name_and_type wav.scp,speech,sound,
--collect_stats, --output_dir, --config, --max_epoch, --resume, --ngpu, --seed, the
distributed options, ...) plus the diffusion trainer's (--ema_decay, --num_samples,
--sample_interval, --sample_schedule, --sample_seconds).
"""

import sys
from typing import Optional, Sequence

from torch.multiprocessing import ProcessExitedException

from specgrad_plugin import runtime
from specgrad_plugin.espnet.task import USER_ERROR_EXIT, SpecGradTask


def main(cmd: Optional[Sequence[str]] = None) -> None:
    runtime.tune_cpu_allocator()  # the validation samples; $SPECGRAD_MALLOC=default opts out
    try:
        SpecGradTask.main(cmd=cmd)  # a user error ends its worker with one line (SpecGradTask.main_worker)
    except ProcessExitedException as e:
        if e.exit_code != USER_ERROR_EXIT:
            raise
        sys.exit(USER_ERROR_EXIT)  # a --multiprocessing_distributed rank has printed its line already


if __name__ == "__main__":
    main()
