"""Test helpers, for every tier (``tests/`` is on ``sys.path``: ``from helpers.pools import
cluster_pool``).

- :mod:`helpers.pools`: the pool kinds of the contract suite, ``cluster_pool``,
  ``require_real``, the real PBS wrappers' paths;
- :mod:`helpers.fake_programs`: a scheduler program that logs its calls and answers
  from a script, for the backends' unit tests;
- :mod:`helpers.scripted_driver`: a map laid out on disk as the dispatcher lays it out,
  one step at a time, for what reads sessions afterwards;
- :mod:`helpers.dummy_programs`: running the dummy schedulers' programs and waiting for
  what they report (``tests/dummies``, ``tests/faults``);
- :mod:`helpers.pool_dirs`: pool and session directories laid out by hand, for the worker;
- :mod:`helpers.command`: the ``batchpool`` command run in the test's process;
- :mod:`helpers.profiles`: configuration files of profiles;
- :mod:`helpers.cluster_sim`: the cluster simulator of ``ci/cluster-sim/`` (real tier);
- :mod:`helpers.no_jobs`: the unit tier's guard (``tests/README.rst``).

Task modules that jobs import by name (``tests/contract/tasks.py``,
``tests/real/*_tasks.py``, ``tests/integration/detach_tasks.py``) stay beside their tests.
"""
