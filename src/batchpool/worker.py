"""What runs on the compute node.

``python -m batchpool.worker SESSION_DIR CHUNKS [--index-var VAR]``

``CHUNKS`` is a list of chunk indices in range notation (``3``, ``0-99,105``).
Without ``--index-var`` it must name one chunk; with it, the worker runs
``CHUNKS[int($VAR)]`` (for array jobs, e.g. ``SLURM_ARRAY_TASK_ID``).

The worker

1. restores the driver's environment exactly, except the variables that belong
   to this job (``SLURM_*``, ``SGE_*``, ``JOB_ID``, ...), which it keeps from the
   job; if a variable that only takes effect at interpreter start differs
   (``LD_LIBRARY_PATH``, ...), it re-executes itself once with the full environment;
2. takes the driver's ``sys.path`` and working directory;
3. runs the chunk's tasks in series and writes one envelope per task,
   ``(True, result)`` or ``(False, (exception_pickle_or_None, type_name, message,
   traceback_text))``, into ``results/CHUNK.pkl`` under a temporary name, renamed
   when complete.

This module is imported on every job start: it imports nothing heavy.
"""

from __future__ import annotations

import os
import pickle
import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from collections.abc import Sequence

# Names of files inside a session directory that the worker touches. The
# session module owns the layout and uses the same names.
FUNCTION_FILE = "function.pkl"
TASKS_FILE = "tasks.pkl"
TASKS_INDEX_FILE = "tasks.idx"
ENVIRONMENT_FILE = "environment.pkl"
RESULTS_DIR = "results"

JOB_VARIABLE_PREFIXES = (b"SLURM_", b"SGE_", b"PBS_", b"LSB_", b"PMI_", b"PMIX_", b"OMPI_")
JOB_VARIABLES = frozenset(
    (
        b"JOB_ID",
        b"JOB_NAME",
        b"JOB_SCRIPT",
        b"TASK_ID",
        b"NSLOTS",
        b"NHOSTS",
        b"NQUEUES",
        b"QUEUE",
        b"PE",
        b"PE_HOSTFILE",
        b"RESTARTED",
        b"ENVIRONMENT",
        b"REQUEST",
        b"ARC",
        b"TMPDIR",
        b"TMP",
        b"HOSTNAME",
        b"CUDA_VISIBLE_DEVICES",
        b"ROCR_VISIBLE_DEVICES",
        b"GPU_DEVICE_ORDINAL",
    )
)
# Read by the interpreter or the dynamic loader at process start only.
STARTUP_VARIABLES = (
    b"LD_LIBRARY_PATH",
    b"LD_PRELOAD",
    b"PYTHONHOME",
    b"PYTHONPATH",
    b"PYTHONSAFEPATH",
    b"PYTHONNOUSERSITE",
    b"PYTHONUSERBASE",
)
REEXEC_MARK = b"BATCHPOOL_WORKER_REEXEC"


def format_chunks(chunks: Sequence[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2,5"``."""
    if not chunks:
        raise ValueError("no chunks")
    parts = []
    start = prev = chunks[0]
    for c in list(chunks[1:]) + [None]:
        if c is not None and c == prev + 1:
            prev = c
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if c is not None:
            start = prev = c
    return ",".join(parts)


def parse_chunks(text: str) -> list[int]:
    """``"0-2,5"`` -> ``[0, 1, 2, 5]``."""
    chunks: list[int] = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        chunks.extend(range(int(first), int(last or first) + 1))
    return chunks


def is_job_variable(name: bytes) -> bool:
    return name in JOB_VARIABLES or name.startswith(JOB_VARIABLE_PREFIXES)


def merge_environment(driver: dict, job: dict) -> dict:
    """The driver's variables, but the job's own variables from the job (all ``bytes``)."""
    merged = {k: v for k, v in driver.items() if not is_job_variable(k)}
    merged.update({k: v for k, v in job.items() if is_job_variable(k)})
    return merged


def _restore_environment(session_dir: str) -> None:
    with open(os.path.join(session_dir, ENVIRONMENT_FILE), "rb") as f:
        saved = pickle.load(f)
    target = merge_environment(saved["environ"], dict(os.environb))
    needs_reexec = any(os.environb.get(k) != target.get(k) for k in STARTUP_VARIABLES)
    if needs_reexec and REEXEC_MARK not in os.environb:
        target[REEXEC_MARK] = b"1"
        os.execve(sys.executable, [sys.executable, "-m", "batchpool.worker", *sys.argv[1:]], target)
    target.pop(REEXEC_MARK, None)
    os.environb.clear()
    os.environb.update(target)
    sys.path[:] = saved["sys_path"]
    if os.path.isdir(saved["cwd"]):
        os.chdir(saved["cwd"])


def _read_tasks(session_dir: str, chunk: int) -> list:
    with open(os.path.join(session_dir, TASKS_INDEX_FILE), "rb") as f:
        f.seek(16 * chunk)
        start, stop = int.from_bytes(f.read(8), "little"), int.from_bytes(f.read(8), "little")
    with open(os.path.join(session_dir, TASKS_FILE), "rb") as f:
        f.seek(start)
        return pickle.loads(f.read(stop - start))


def _failure(exc: BaseException) -> tuple:
    import traceback  # only when a task failed

    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    try:
        exc_pickle = pickle.dumps(exc)
        pickle.loads(exc_pickle)  # some exceptions pickle but cannot be rebuilt
    except Exception:
        exc_pickle = None
    return (False, (exc_pickle, type(exc).__qualname__, str(exc), text))


def starcall(function, args):
    """Runs a ``starmap`` task."""
    return function(*args)


def applycall(function, args_and_kwds):
    """Runs an ``apply`` task."""
    args, kwds = args_and_kwds
    return function(*args, **kwds)


def run_tasks(function, tasks: list) -> list:
    """Run every task, each to an envelope; a failing task does not stop the others."""
    envelopes = []
    for task in tasks:
        try:
            envelopes.append((True, function(task)))
        except Exception as exc:
            envelopes.append(_failure(exc))
    return envelopes


def _dump_envelopes(envelopes: list) -> bytes:
    try:
        return pickle.dumps(envelopes, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        # Results such as lambdas need cloudpickle (imported only then); a result
        # that nothing can pickle becomes that task's error, the others survive.
        import cloudpickle

        return cloudpickle.dumps([_sendable(e, cloudpickle) for e in envelopes])


def _sendable(envelope: tuple, cloudpickle) -> tuple:
    try:
        cloudpickle.dumps(envelope[1])
    except Exception as exc:
        from multiprocessing.pool import MaybeEncodingError  # what multiprocessing raises

        return _failure(MaybeEncodingError(exc, envelope[1]))
    return envelope


def write_atomically(path: str, payload: bytes) -> None:
    """Write under a temporary name in the same directory, then rename."""
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


def run_chunk(session_dir: str, chunk: int) -> None:
    with open(os.path.join(session_dir, FUNCTION_FILE), "rb") as f:
        initializer, initargs, function = pickle.load(f)
    if initializer is not None:
        initializer(*initargs)
    envelopes = run_tasks(function, _read_tasks(session_dir, chunk))
    path = os.path.join(session_dir, RESULTS_DIR, f"{chunk}.pkl")
    write_atomically(path, _dump_envelopes(envelopes))


def main(argv: Sequence[str]) -> int:
    args = list(argv)
    index_var = None
    if "--index-var" in args:
        i = args.index("--index-var")
        index_var = args[i + 1]
        del args[i : i + 2]
    if len(args) != 2:
        sys.stderr.write("usage: python -m batchpool.worker SESSION_DIR CHUNKS [--index-var VAR]\n")
        return 2
    session_dir, chunks = args[0], parse_chunks(args[1])
    if index_var is None:
        if len(chunks) != 1:
            sys.stderr.write("batchpool.worker: several chunks need --index-var\n")
            return 2
        chunk = chunks[0]
    else:
        chunk = chunks[int(os.environ[index_var])]
    os.umask(0o077)
    _restore_environment(session_dir)
    run_chunk(session_dir, chunk)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
