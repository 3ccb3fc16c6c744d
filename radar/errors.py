"""The CLI's last word on an error nobody caught: one line and exit 1, never a traceback.

Each command turns the errors it expects (bad input, a missing file) into a clear message
itself. What is left (a full disk, a damaged file a library trips over, a store another
process is creating at the same moment) used to print 86 to 321 lines of traceback. Here it is
one line naming what happened and where (the file, for an OS error); ``--verbose`` adds the
traceback for a bug report. Nothing is half-written either way: outputs are atomic.
"""

from __future__ import annotations

import errno
import sys
import traceback
from types import TracebackType

from rich.console import Console
from rich.markup import escape

OS_WORDS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
}


def one_line(exc: BaseException) -> str:
    """What ``exc`` means, in one line, naming the file where there is one."""
    if isinstance(exc, OSError) and exc.errno is not None:
        words = OS_WORDS.get(exc.errno, exc.strerror or type(exc).__name__)
        where = f" writing or reading {exc.filename}" if exc.filename else ""
        return f"{words}{where} (nothing was half-written: outputs are replaced whole)"
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, KeyError):
        text = f"a column or key is missing: {text}"
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{text} ({type(exc).__name__})"


def install(console: Console, verbose: bool) -> None:
    """Print uncaught errors of this process as one line (and the traceback if ``verbose``).

    Set from the command's callback, after Typer installed its own hook for the call.
    """

    def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            console.print("[bold red]error:[/] interrupted", highlight=False)
            return
        if verbose:
            console.print("".join(traceback.format_exception(kind, exc, tb)), markup=False)
        console.print(f"[bold red]error:[/] {escape(one_line(exc))}", highlight=False)

    sys.excepthook = hook
