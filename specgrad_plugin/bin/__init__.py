"""The command-line entry points (python -m specgrad_plugin.bin.<tool>)."""

import functools
import sys
from pathlib import Path
from typing import Optional


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
            blocking = file_in_the_way(e)
            if blocking:  # mkdir's "File exists" and open's "Not a directory" name a path part, or a temp file
                print(f"error: {blocking} is a file; expected a folder there for the output", file=sys.stderr)
            else:
                print(f"error: {e}", file=sys.stderr)  # the message names the path
            return 2

    return run


def file_in_the_way(error: BaseException) -> Optional[Path]:
    """The existing file that an output path runs through (NotADirectoryError, or mkdir's
    FileExistsError on a file), or None for any other error."""
    if not isinstance(error, (NotADirectoryError, FileExistsError)) or not getattr(error, "filename", None):
        return None
    path = Path(error.filename)
    for part in [path, *path.parents]:
        if part.is_file():
            return part
    return None
