"""The command-line entry points (python -m specgrad_plugin.bin.<tool>)."""

import functools
import sys

import soundfile


def one_line_write_errors(main):
    """A CLI main whose failure to write (an output path that is a file or under one, a folder
    it may not write to, a full disk) is one line on stderr and exit status 2, not a traceback.
    Inputs are checked before anything is written, each with its own message."""

    @functools.wraps(main)
    def run(argv=None):
        try:
            return main(argv)
        except (OSError, soundfile.LibsndfileError) as e:  # the message names the path
            print(f"error: cannot write: {e}", file=sys.stderr)
            return 2

    return run
