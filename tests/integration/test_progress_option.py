"""``progress=False`` silences the progress bar on a terminal and the progress lines
elsewhere; a map's stderr is then empty."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import textwrap

DRIVER = textwrap.dedent(
    """
    import sys
    import batchpool.local
    progress = sys.argv[2] == "progress"
    with batchpool.local.Pool(2, work_dir=sys.argv[1], progress=progress) as pool:
        assert pool.map(abs, range(-8, 0), chunksize=1) == list(range(8, 0, -1))
    print("mapped")
    """
)


def run(tmp_path, show: str, stderr) -> subprocess.Popen:
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    return subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "work"), show],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=stderr,
    )


def test_no_progress_line_outside_a_terminal(tmp_path):
    shown = run(tmp_path, "progress", subprocess.PIPE)
    _, shown_stderr = shown.communicate(timeout=60)
    silent = run(tmp_path, "quiet", subprocess.PIPE)
    out, stderr = silent.communicate(timeout=60)
    assert shown.returncode == silent.returncode == 0
    assert b"tasks done" in shown_stderr  # the line the option silences
    assert (out, stderr) == (b"mapped\n", b"")


def test_no_progress_bar_on_a_terminal(tmp_path):
    main, secondary = pty.openpty()
    process = run(tmp_path, "quiet", secondary)
    os.close(secondary)
    out, _ = process.communicate(timeout=60)
    chunks = []
    while True:
        try:
            data = os.read(main, 4096)
        except OSError:  # the terminal closed with the process
            break
        if not data:
            break
        chunks.append(data)
    os.close(main)
    assert process.returncode == 0 and out == b"mapped\n"
    assert b"".join(chunks) == b""
