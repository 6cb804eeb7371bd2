"""The pytest plugin's pools, as a user meets them: a test file of theirs on the dummy
cluster, run by pytest in a subprocess (the fixtures are listed by the unit tests)."""

import textwrap

pytest_plugins = ["pytester"]

USER_TESTS = textwrap.dedent(
    """
    import time

    import pytest

    import batchpool
    from batchpool.testing import DummyCluster, Fault, FaultKind, Phase


    def double(x):
        return 2 * x


    def test_the_cluster_is_installed(dummy_cluster, tmp_path):
        assert isinstance(dummy_cluster, DummyCluster)
        assert dummy_cluster.directory.is_relative_to(tmp_path.resolve())


    def test_slurm(dummy_cluster, dummy_slurm_pool):
        pool = dummy_slurm_pool()
        assert isinstance(pool, batchpool.slurm.Pool)
        # the default polling (seconds): the dummy cluster moves on by itself
        assert pool.settings.polling_interval >= 1
        assert pool.map(double, range(3)) == [0, 2, 4]
        assert 1 <= len(dummy_cluster.calls("sbatch")) <= 3  # a worker per task at most


    def test_a_node_failure_is_survived(dummy_cluster, dummy_slurm_pool):
        fault = Fault(FaultKind.ERROR_STATE, job=0, times=2, state="NODE_FAIL")
        dummy_cluster.add_fault(fault)
        pool = dummy_slurm_pool(processes=1, max_num_resubmissions=3)
        assert pool.map(double, range(3), chunksize=1) == [0, 2, 4]
        assert dummy_cluster.times_fired(fault) == 2
        assert len(dummy_cluster.calls("sbatch")) == 3


    def test_slurm_array(dummy_cluster, dummy_slurm_array_pool):
        pool = dummy_slurm_array_pool(2)
        assert isinstance(pool, batchpool.slurm.array.Pool)
        assert pool.map(double, [5]) == [10]
        assert len(dummy_cluster.calls("sbatch")) == 1


    def test_sge(dummy_cluster, dummy_sge_pool, tmp_path):
        pool = dummy_sge_pool(work_dir=tmp_path / "mine")
        assert isinstance(pool, batchpool.sge.Pool)
        assert pool.work_dir == tmp_path / "mine"
        assert pool.map(double, [1, 2]) == [2, 4]
        assert dummy_cluster.calls("qsub")


    def sleep_long(x):
        time.sleep(60)


    LEFT_BEHIND = []


    def test_teardown_part_1(dummy_cluster, dummy_slurm_pool):
        pool = dummy_slurm_pool()
        pool.map_async(sleep_long, [1])
        for _ in range(200):
            if any(j.phase is Phase.RUNNING for j in dummy_cluster.jobs()):
                break
            time.sleep(0.05)
        else:
            pytest.fail("the job never started")
        LEFT_BEHIND.append((pool, dummy_cluster))


    def test_teardown_part_2():
        pool, cluster = LEFT_BEHIND[0]
        with pytest.raises(ValueError, match="not running"):
            pool.map(double, [1])
        assert not [j for j in cluster.jobs() if j.phase is Phase.RUNNING]
    """
)


def test_a_users_tests_on_the_dummies(pytester):
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=240)
    result.assert_outcomes(passed=7)
