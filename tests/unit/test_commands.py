import sys

import pytest

from batchpool import SchedulerError
from batchpool.commands import CommandPolicy, run_command

FAST = CommandPolicy(timeout_s=5.0, num_retries=2, backoff_s=0.01)


def script(tmp_path, body):
    path = tmp_path / "program"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


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


def test_a_hanging_command_times_out_and_is_bounded(tmp_path):
    program = script(tmp_path, "sleep 30")
    policy = CommandPolicy(timeout_s=0.2, num_retries=1, backoff_s=0.01)
    with pytest.raises(SchedulerError, match="timed out after 0.2 s 2 times"):
        run_command([program], policy)


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
