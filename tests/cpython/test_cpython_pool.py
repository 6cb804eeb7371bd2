"""CPython's own pool tests, run against ``batchpool.local.Pool``.

The stdlib's ``test._test_multiprocessing`` keeps its pool tests in mixins:
``_TestPool``, ``_TestPoolWorkerErrors`` and ``_TestPoolWorkerLifetime``.
CPython's ``test_multiprocessing_*`` modules turn them into test cases with
``install_tests_in_module_dict``: for each type in a mixin's ``ALLOWED_TYPES``
it makes ``class WithProcessesTestPool(_TestPool, ProcessesMixin, TestCase)``,
where ``ProcessesMixin`` supplies ``Pool``, ``Process``, ``Queue``, ``Event``...
from ``multiprocessing`` and ``TYPE = "processes"`` picks the tests' branches.

Here the same is done for those three mixins only, with ``BatchpoolMixin``: a
``ProcessesMixin`` whose ``Pool`` makes a ``batchpool.local.Pool`` with its
``work_dir`` in a temporary directory of the class. Everything else stays
``multiprocessing``'s, so that only the pool is replaced. The classes are
``WithBatchpoolTestPool``, ``WithBatchpoolTestPoolWorkerErrors`` and
``WithBatchpoolTestPoolWorkerLifetime``.

No test may pass without batchpool:

- the last two mixins call ``multiprocessing.Pool`` itself, not ``self.Pool``,
  so during every test ``multiprocessing.Pool`` is the same factory, and
  ``multiprocessing.pool.Pool`` (which a context's ``Pool`` calls) raises
  ``AssertionError``;
- ``test_worker_finalization_via_atexit_handler_of_multiprocessing`` makes its
  pool in a new interpreter (``from multiprocessing import Pool`` in a ``-c``
  script): the script is run with ``multiprocessing.Pool`` set to batchpool's
  pool first, and the test fails unless that pool was made;
- ``test_pool_is_batchpool``, added to each class, checks all of the above.

``EXCLUDED`` tests are skipped with their reason. They are only the ones that
read private attributes of ``multiprocessing.pool.Pool``; with ``TYPE =
"processes"`` no test needs a ``Manager``. Any other failure is a way in which
batchpool does not behave like ``multiprocessing.Pool``.

The exclusions were read from CPython 3.11's tests; with them, the tests of
3.9, 3.10, 3.11, 3.12 and 3.13 pass. The module is skipped where the ``test``
package is missing (Debian's ``python3`` ships it separately, in
``libpython3.11-testsuite``).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.pool
import shutil
import sys
import tempfile
import unittest
from unittest import mock

import pytest

mp_tests = pytest.importorskip("test._test_multiprocessing", reason="no CPython test package")

from test.support import script_helper  # noqa: E402

import batchpool.local  # noqa: E402

pytestmark = pytest.mark.timeout(120)

MIXINS = ("_TestPool", "_TestPoolWorkerErrors", "_TestPoolWorkerLifetime")

EXCLUDED = {
    "test_make_pool": "reads len(pool._pool), multiprocessing's list of worker processes",
    "test_resource_warning": "sets pool._state to multiprocessing.pool.RUN before __del__",
    "test_pool_worker_lifetime": "reads pool._pool's worker pids and calls pool._repopulate_pool()",
}

CHILD_PRELUDE = """\
import sys
sys.path[:0] = {sys_path!r}
import multiprocessing
import batchpool.local
def _batchpool_pool(processes=None, initializer=None, initargs=(), maxtasksperchild=None):
    print({marker!r}, flush=True)
    return batchpool.local.Pool(
        processes, initializer, initargs, maxtasksperchild, work_dir={work_dir!r}
    )
multiprocessing.Pool = _batchpool_pool
"""
CHILD_MARKER = "made a batchpool.local.Pool"


def batchpool_pool_factory(work_dir):
    """``multiprocessing.Pool``'s signature, making a ``batchpool.local.Pool`` in ``work_dir``."""

    def make_pool(
        processes=None, initializer=None, initargs=(), maxtasksperchild=None, context=None
    ):
        return batchpool.local.Pool(
            processes, initializer, initargs, maxtasksperchild, work_dir=work_dir
        )

    return make_pool


def refuse_multiprocessing_pool(*args, **kwargs):
    raise AssertionError("a multiprocessing.pool.Pool was made: batchpool would go untested")


def assert_python_ok_with_batchpool(work_dir):
    """``script_helper.assert_python_ok`` for a ``-c`` script whose pool is batchpool's."""
    assert_python_ok = script_helper.assert_python_ok

    def run(flag, script, **env_vars):
        assert flag == "-c", flag
        prelude = CHILD_PRELUDE.format(sys_path=sys.path, marker=CHILD_MARKER, work_dir=work_dir)
        rc, out, err = assert_python_ok(flag, prelude + script, **env_vars)
        assert CHILD_MARKER.encode() in out, (out, err)
        return rc, out, err

    return run


class BatchpoolMixin(mp_tests.ProcessesMixin):
    """``ProcessesMixin`` with ``batchpool.local.Pool`` as the pool."""

    @classmethod
    def setUpClass(cls):
        cls.work_dir = tempfile.mkdtemp(prefix="batchpool-cpython-")
        cls.Pool = staticmethod(batchpool_pool_factory(cls.work_dir))
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(cls.work_dir, ignore_errors=True)

    def setUp(self):
        super().setUp()
        patches = [
            mock.patch.object(multiprocessing, "Pool", self.Pool),
            mock.patch.object(multiprocessing.pool, "Pool", refuse_multiprocessing_pool),
            mock.patch.object(
                script_helper, "assert_python_ok", assert_python_ok_with_batchpool(self.work_dir)
            ),
        ]
        for patch in patches:
            patch.start()
            self.addCleanup(patch.stop)

    def test_pool_is_batchpool(self):
        pools = [self.Pool(1), multiprocessing.Pool(1)]
        try:
            class_pool = getattr(self, "pool", pools[0])  # _TestPool's, made in setUpClass
            for pool in [*pools, class_pool]:
                self.assertIs(type(pool), batchpool.local.Pool)
            for refused in (multiprocessing.pool.Pool, multiprocessing.get_context().Pool):
                self.assertRaises(AssertionError, refused, 1)
            _, out, _ = script_helper.assert_python_ok(
                "-c", "import multiprocessing; multiprocessing.Pool(1).terminate()"
            )
            self.assertIn(CHILD_MARKER.encode(), out)
        finally:
            for pool in pools:
                pool.terminate()
                pool.join()


def install(name):
    """Make the test case of mixin ``name`` as ``install_tests_in_module_dict`` does,
    ``_TestPool`` -> ``WithBatchpoolTestPool``; return the names of its tests that are skipped."""
    mixin = getattr(mp_tests, name)
    assert "processes" in mixin.ALLOWED_TYPES, name

    class Temp(mixin, BatchpoolMixin, unittest.TestCase):
        pass

    excluded = {test_name for test_name in EXCLUDED if hasattr(mixin, test_name)}
    for test_name in excluded:
        setattr(Temp, test_name, unittest.skip(EXCLUDED[test_name])(getattr(mixin, test_name)))
    Temp.__name__ = Temp.__qualname__ = "WithBatchpool" + name[1:]
    Temp.__module__ = __name__
    globals()[Temp.__name__] = Temp
    return excluded


_excluded = set().union(*(install(name) for name in MIXINS))
assert _excluded == set(EXCLUDED), f"EXCLUDED names no test: {set(EXCLUDED) - _excluded}"
