"""Functions defined in ``__main__``, lambdas and closures travel by value (cloudpickle);
results travel by pickle, so a lambda result is ``MaybeEncodingError`` as in
``multiprocessing``.

The driver is a script run in a subprocess, as a user's analysis script is."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import batchpool.local

    def cube(x):
        return x ** 3

    def make_adder(n):
        def add(x):
            return x + n
        return add

    class Scaler:
        def __init__(self, factor):
            self.factor = factor
        def __call__(self, x):
            return x * self.factor

    if __name__ == "__main__":
        from multiprocessing.pool import MaybeEncodingError

        with batchpool.local.Pool(2, work_dir=sys.argv[1]) as pool:
            try:  # results travel by pickle, as in multiprocessing
                pool.apply(lambda: (lambda y: 2 * y))
                lambda_result = "returned"
            except MaybeEncodingError:
                lambda_result = "MaybeEncodingError"
            print(json.dumps({
                "main_function": pool.map(cube, range(4)),
                "lambda": pool.map(lambda x: -x, range(4)),
                "closure": pool.map(make_adder(10), range(4)),
                "callable_object": pool.map(Scaler(3), range(4)),
                "lambda_result": lambda_result,
            }))
    """
)


def test_main_functions_lambdas_and_closures(tmp_path):
    script = tmp_path / "analysis.py"
    script.write_text(SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "work")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "main_function": [0, 1, 8, 27],
        "lambda": [0, -1, -2, -3],
        "closure": [10, 11, 12, 13],
        "callable_object": [0, 3, 6, 9],
        "lambda_result": "MaybeEncodingError",
    }


def test_multiprocessing_cannot_do_lambdas_which_is_why_we_use_cloudpickle():
    import multiprocessing

    with multiprocessing.Pool(1) as pool, pytest.raises(Exception, match="pickle"):
        pool.map(lambda x: x, [1])
