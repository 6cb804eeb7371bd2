"""Code objects that keep their file name on the way to the workers.

cloudpickle 3 sends a function defined in the user's script by value and blanks its
code's ``co_filename`` (``"<dynamic-code>"``, for deterministic payloads), so a task's
traceback on a compute node names no file and shows no source line, where
``multiprocessing`` shows both. :class:`batchpool.calls._JobPickler` sends the name
along and the workers rebuild the code with :func:`with_filename`; the source line is
then read from the script itself, which on a cluster sits on the shared filesystem.
Kept apart so that a worker unpickling a task imports nothing more.
"""

from __future__ import annotations

import types
from typing import Any, Callable


def with_filename(build: Callable[..., types.CodeType], args: tuple, filename: str) -> Any:
    """The code object ``build(*args)``, with ``co_filename`` set to ``filename``."""
    return build(*args).replace(co_filename=filename)
