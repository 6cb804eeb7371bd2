"""Run by every Python started below a unit test (:mod:`helpers.no_jobs` puts this
folder on ``PYTHONPATH``): one that is a batchpool worker or a dummy scheduler program
records itself in the test's log. Nothing else changes in the process."""

import os
import sys


def _command_line() -> list:
    argv = getattr(sys, "orig_argv", None)  # Python 3.10+
    if argv is None:
        with open("/proc/self/cmdline", "rb") as f:
            argv = [os.fsdecode(arg) for arg in f.read().split(b"\0")[:-1]]
    return argv


def _judge_this_process() -> None:
    log = os.environ.get("BATCHPOOL_TESTS_NO_JOBS_LOG")
    if not log:
        return
    argv = _command_line()
    if not any("batchpool.worker" in arg or "batchpool.testing" in arg for arg in argv):
        return  # most processes: fake programs, driver scripts
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "no_jobs.py")
    spec = importlib.util.spec_from_file_location("_batchpool_tests_no_jobs", path)
    no_jobs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(no_jobs)
    what = no_jobs.job_start(argv)
    if what is not None:
        no_jobs.record(log, f"{what} (pid {os.getpid()})")


_judge_this_process()
