import batchpool, tasks, pytest
from test_job_faults import dummy_pool, cluster  # noqa

@pytest.mark.parametrize("i", range(15))
def test_dbg(cluster, tmp_path, i):
    with dummy_pool(cluster, "slurm", tmp_path, max_num_resubmissions=0) as pool:
        with pytest.raises(batchpool.JobsLostError) as info:
            pool.map(tasks.noisy_then_exit, [1])
    msg = str(info.value)
    if "stderr:" not in msg:
        print(msg)
        for c in cluster.calls(): print(round(c["time"]%100, 3), c["program"], c["argv"][:3])
        for p in (tmp_path/"work").glob("2*/log.jsonl"): print(p.read_text())
        for p in (tmp_path/"work").glob("2*/chunks.jsonl"): print(p.read_text())
        for p in (tmp_path/"work").glob("pool*/claims/*"): print(p, p.read_text())
        for p in (tmp_path/"work").glob("pool*/workers/*"): print(p, p.read_text(), p.stat().st_mtime % 100)
        for j in cluster.jobs(): print(j)
        assert False
