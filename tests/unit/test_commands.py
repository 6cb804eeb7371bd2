import os
import sys
import threading
import time

import pytest

from batchpool import SchedulerError
from batchpool.commands import Cancelled, CommandPolicy, run_command

FAST = CommandPolicy(timeout_s=5.0, num_retries=2, backoff_s=0.01)
CANCEL_BOUND_S = 0.5
"""How soon after the cancel event run_command must have raised (it promises ~0.1 s)."""


def script(tmp_path, body, name="program"):
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


class CancelLater:
    """Sets ``event`` after ``delay_s`` from a timer thread and remembers when."""

    def __init__(self, delay_s: float) -> None:
        self.event = threading.Event()
        self.set_at: float | None = None
        self._timer = threading.Timer(delay_s, self._set)
        self._timer.start()

    def _set(self) -> None:
        self.set_at = time.monotonic()
        self.event.set()

    def seconds_since_set(self) -> float:
        assert self.set_at is not None, "run_command returned before the event was set"
        return time.monotonic() - self.set_at

    def stop(self) -> None:
        self._timer.cancel()


def test_success_returns_output(tmp_path):
    done = run_command([script(tmp_path, "echo hello")], FAST)
    assert done.stdout == "hello\n"


def test_transient_failure_is_retried(tmp_path):
    counter = tmp_path / "count"
    program = script(
        tmp_path,
        f"n=$(cat {counter} 2>/dev/null || echo 0); echo $((n+1)) > {counter}\n"
        f'[ "$n" -ge 2 ] && echo ok && exit 0\necho busy >&2; exit 1\n',
    )
    assert run_command([program], FAST).stdout == "ok\n"
    assert counter.read_text().strip() == "3"


def test_persistent_failure_raises_with_command_and_output(tmp_path):
    program = script(tmp_path, "echo out; echo 'sbatch: error: nope' >&2; exit 7")
    with pytest.raises(SchedulerError) as info:
        run_command([program, "--flag"], FAST)
    error = info.value
    assert (error.returncode, error.stdout, error.stderr) == (7, "out\n", "sbatch: error: nope\n")
    assert error.command == [program, "--flag"]
    assert "failed 3 times" in str(error) and "sbatch: error: nope" in str(error)


def test_a_hanging_program_times_out_and_is_bounded():
    policy = CommandPolicy(timeout_s=0.2, num_retries=1, backoff_s=0.01)
    start = time.monotonic()
    with pytest.raises(SchedulerError, match="timed out after 0.2 s 2 times"):
        run_command(["sleep", "30"], policy)
    assert time.monotonic() - start < 2.0


def test_a_hanging_command_times_out_and_is_bounded(tmp_path):
    # A wrapper script (sites wrap sbatch; the dummies are scripts) whose child holds
    # the output pipes: killing the script alone must not leave run_command waiting
    # for the child.
    program = script(tmp_path, "sleep 3\necho late\n")
    policy = CommandPolicy(timeout_s=0.2, num_retries=1, backoff_s=0.01)
    start = time.monotonic()
    with pytest.raises(SchedulerError, match="timed out after 0.2 s 2 times"):
        run_command([program], policy)
    assert time.monotonic() - start < 2.0


def test_accept_decides_what_counts_as_success(tmp_path):
    program = script(tmp_path, "echo 'denied: job \"9\" does not exist' >&2; exit 1")
    done = run_command([program], FAST, accept=lambda r: "does not exist" in r.stderr)
    assert done.returncode == 1


def test_missing_program_fails_at_once():
    with pytest.raises(SchedulerError, match="does not exist"):
        run_command(["/no/such/sbatch"], FAST)


def test_stdin_is_passed(tmp_path):
    assert (
        run_command(
            [sys.executable, "-c", "import sys; print(sys.stdin.read())"], FAST, stdin_text="script"
        ).stdout
        == "script\n"
    )


def test_env_replaces_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("BATCHPOOL_TEST_DRIVER_ONLY", "1")
    program = script(tmp_path, 'echo "$BATCHPOOL_TEST_GIVEN:${BATCHPOOL_TEST_DRIVER_ONLY-unset}"')
    done = run_command([program], FAST, env={"BATCHPOOL_TEST_GIVEN": "yes"})
    assert done.stdout == "yes:unset\n"


def test_files_a_command_creates_are_private(tmp_path):
    # Slurm creates a job's output files with the umask of the sbatch that submitted it.
    made = tmp_path / "made"
    run_command([script(tmp_path, f"touch {made}")], FAST)
    assert made.stat().st_mode & 0o077 == 0


# -- cancellation --------------------------------------------------------------------------


def test_an_unset_cancel_event_changes_nothing(tmp_path):
    done = run_command([script(tmp_path, "echo hello")], FAST, cancel=threading.Event())
    assert done.stdout == "hello\n"


def test_cancel_ends_a_running_program_at_once():
    cancel = CancelLater(0.3)
    try:
        with pytest.raises(Cancelled):
            run_command(["sleep", "5"], FAST, cancel=cancel.event)
        assert cancel.seconds_since_set() < CANCEL_BOUND_S
    finally:
        cancel.stop()


def test_cancel_ends_a_running_command_whose_child_holds_its_output(tmp_path):
    program = script(tmp_path, "sleep 5\necho late\n")
    cancel = CancelLater(0.3)
    try:
        with pytest.raises(Cancelled):
            run_command([program], FAST, cancel=cancel.event)
        assert cancel.seconds_since_set() < CANCEL_BOUND_S
    finally:
        cancel.stop()


def test_cancel_ends_the_wait_between_retries(tmp_path):
    calls = tmp_path / "calls"
    program = script(tmp_path, f"echo x >> {calls}\necho busy >&2\nexit 1\n")
    policy = CommandPolicy(timeout_s=5.0, num_retries=3, backoff_s=30.0)
    cancel = CancelLater(0.3)
    try:
        with pytest.raises(Cancelled):
            run_command([program], policy, cancel=cancel.event)
        assert cancel.seconds_since_set() < CANCEL_BOUND_S
    finally:
        cancel.stop()
    assert calls.read_text() == "x\n"  # no further try after the cancel


def test_a_cancel_set_before_the_call_gives_up_a_long_command_at_once():
    cancel = threading.Event()
    cancel.set()
    start = time.monotonic()
    with pytest.raises(Cancelled):
        run_command(["sleep", "5"], FAST, cancel=cancel)
    assert time.monotonic() - start < CANCEL_BOUND_S


def test_cancelled_is_not_a_scheduler_error():
    # The dispatcher gives up quietly on Cancelled but reports a SchedulerError.
    assert not issubclass(Cancelled, SchedulerError)


def test_a_cancelled_program_is_killed_and_reaped(tmp_path):
    pid_file = tmp_path / "pid"
    code = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(5)"
    cancel = CancelLater(0.3)
    try:
        with pytest.raises(Cancelled):
            run_command([sys.executable, "-c", code], FAST, cancel=cancel.event)
    finally:
        cancel.stop()
    pid = int(pid_file.read_text())
    assert not os.path.exists(f"/proc/{pid}")  # neither running nor a zombie
