# locus.sweep: the same rows sequentially, on a local process pool and on a
# dask.distributed.LocalCluster with two worker processes; bad points come back as error rows;
# rows equal locus.energy of each point; the plot helper without matplotlib.
import pytest

import locus
from conftest import MODEL

POINTS = locus.grid(model="builtin:mobilenetv2", buffer=["16K", "64K"], schedule=["baseline", "fused-scan"]) + [
    locus.Point(model="builtin:mobilenetv2", buffer="64K", schedule="zigzag"),        # bad schedule
    {"model": "builtin:mobilenetv2", "buffer": "banana"},                              # bad buffer
    {"model": "builtin:mobilenetv2", "buffer": "64K", "colour": "red"},                # unknown option
    locus.Point(model=MODEL, buffer="64K", dram="lpddr4-3200-micron-x16", schedule="scan"),
]
N_GOOD = 5


@pytest.fixture(scope="module")
def sequential():
    return locus.sweep(POINTS, scheduler="sync", progress=False, as_frame=False)


def check_rows(rows):
    assert len(rows) == len(POINTS)
    good = [r for r in rows if r["error"] is None]
    assert len(good) == N_GOOD
    for r in good:
        assert r["dram_energy_uj"] > 0 and r["total_energy_uj"] > r["dram_energy_uj"]
    bad = rows[4:7]
    assert bad[0]["error"].startswith("option schedules: ") and "zigzag" in bad[0]["error"]
    assert bad[1]["error"].startswith("option buffer: ")
    assert bad[2]["error"].startswith("unknown point option colour")
    for r in bad:
        assert r["dram_energy_uj"] is None and "\n" not in r["error"]


def test_sequential_rows_equal_energy(sequential):
    check_rows(sequential)
    for p, r in zip(POINTS[:4], sequential[:4]):
        doc = locus.energy(p.model, buffer=p.buffer, schedules=[p.schedule])
        assert r["dram_energy_uj"] == doc["schedules"][0]["total"]["energy_uj"]["dram"]
        assert r["buffer_entries"] == {"16K": 16384, "64K": 65536}[p.buffer]
    # fused-scan saves DRAM energy over baseline at the same buffer (the method's claim, by a margin)
    assert sequential[1]["dram_energy_uj"] < sequential[0]["dram_energy_uj"]
    assert sequential[7]["dram_name"] == "lpddr4-3200-micron-x16"


def test_local_cluster_two_processes(sequential):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as cluster, distributed.Client(cluster, timeout=120) as client:
        client.wait_for_workers(2, timeout=300)
        rows = locus.sweep(POINTS, client=client, as_frame=False)
    assert rows == sequential


def test_local_process_pool(sequential):
    rows = locus.sweep(POINTS, workers=2, as_frame=False)
    assert rows == sequential


def test_dataframe_when_pandas(sequential):
    pd = pytest.importorskip("pandas")
    df = locus.sweep(POINTS[:2], scheduler="sync", progress=False)
    assert isinstance(df, pd.DataFrame) and len(df) == 2
    assert df["dram_energy_uj"].tolist() == [r["dram_energy_uj"] for r in sequential[:2]]


def test_plot_helper(sequential, tmp_path):
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError) as e:
            locus.plot_energy_sweep(sequential, path=str(tmp_path / "p.svg"))
        assert "needs matplotlib" in str(e.value)
        return
    locus.plot_energy_sweep(sequential, path=str(tmp_path / "p.svg"))
    assert (tmp_path / "p.svg").stat().st_size > 0
