"""The command-line entry points (python -m specgrad_plugin.bin.<tool>)."""

import functools
import sys


def one_line_write_errors(main):
    """A CLI main whose failure to write (an output path that is a file or under one, a folder
    it may not write to, a full disk) is one line on stderr and exit status 2, not a traceback.
    Inputs are checked before anything is written, each with its own message."""

    @functools.wraps(main)
    def run(argv=None):
        try:
            return main(argv)
        except Exception as e:
            import soundfile  # here, not at the top: the ONNX runner imports this module

            if not isinstance(e, (OSError, soundfile.LibsndfileError)):
                raise
            print(f"error: {e}", file=sys.stderr)  # the message names the path
            return 2

    return run
