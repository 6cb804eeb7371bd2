"""The progress bar shows on a terminal only; verbose prints one line per state change."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import textwrap
import time

DRIVER = textwrap.dedent(
    """
    import sys
    import batchpool.local
    verbose = sys.argv[2] == "verbose"
    with batchpool.local.Pool(2, work_dir=sys.argv[1], verbose=verbose) as pool:
        pool.map(abs, range(-8, 0), chunksize=1)
    """
)


def run_driver(tmp_path, *args, stderr):
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    return subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "work"), *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )


def read_all(fd: int, process: subprocess.Popen, deadline_s: float = 60.0) -> str:
    chunks, deadline = [], time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                data = os.read(fd, 4096)
            except OSError:  # the terminal closed with the process
                break
            chunks.append(data)
        elif process.poll() is not None:
            break
    return b"".join(chunks).decode(errors="replace")


def test_a_terminal_gets_a_progress_bar(tmp_path):
    main, secondary = pty.openpty()
    process = run_driver(tmp_path, "quiet", stderr=secondary)
    os.close(secondary)
    text = read_all(main, process)
    assert process.wait(timeout=60) == 0
    assert "0/8 [" in text and "task/s" in text  # the bar, cleared when the map ends


def test_no_terminal_no_bar_but_a_time_stamped_line_at_the_end(tmp_path):
    process = run_driver(tmp_path, "quiet", stderr=subprocess.PIPE)
    _, stderr = process.communicate(timeout=60)
    (line,) = stderr.decode().splitlines()
    assert process.returncode == 0 and "\r" not in line
    assert re.fullmatch(r"\d\d:\d\d:\d\d batchpool: map of builtins.abs: 8/8 tasks done; .*", line)


def test_verbose_prints_state_changes(tmp_path):
    process = run_driver(tmp_path, "verbose", stderr=subprocess.PIPE)
    _, stderr = process.communicate(timeout=60)
    lines = stderr.decode().splitlines()
    assert any(": submitted " in line for line in lines)
    assert any(": collected " in line for line in lines)
    done = [i for i, line in enumerate(lines) if line.endswith(": done ")]
    collected = [i for i, line in enumerate(lines) if ": collected " in line]
    assert len(done) == 1 and done[0] > max(collected)  # then the pool's own lines
