"""A task's traceback names the user's file, line and source line, as multiprocessing's.

The function is defined in the script that runs the map (``__main__``), so cloudpickle
sends it by value; cloudpickle 3 blanks its code's file name on the way
(``<dynamic-code>``), which :mod:`batchpool._code` undoes."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import batchpool.local

    def divide(x):
        offset = 3
        return 1 / (x - offset)  # the failing line

    if __name__ == "__main__":
        with batchpool.local.Pool(2, work_dir=WORK) as pool:
            pool.map(divide, range(5))
    """
)


def test_the_remote_traceback_of_a_script_function_names_its_file_and_line(tmp_path):
    script = tmp_path / "analysis.py"
    script.write_text(SCRIPT.replace("WORK", repr(str(tmp_path / "work"))))
    run = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120
    )
    assert run.returncode != 0 and "ZeroDivisionError" in run.stderr
    assert f'File "{script}", line 6, in divide' in run.stderr, run.stderr
    assert "return 1 / (x - offset)  # the failing line" in run.stderr
    assert "<dynamic-code>" not in run.stderr
    assert "batchpool: task 3 (argument 3) raised it." in run.stderr  # which task, with what


def test_code_sent_by_value_keeps_its_file_name():
    import pickle

    from batchpool.calls import pickle_for_jobs

    namespace = {"__name__": "__main__"}  # as in a user's script: sent by value
    code = compile("def f(x):\n    return x + 1\n", "/home/user/analysis.py", "exec")
    exec(code, namespace)
    again = pickle.loads(pickle_for_jobs("f", namespace["f"]))
    assert again.__code__.co_filename == "/home/user/analysis.py" and again(1) == 2
