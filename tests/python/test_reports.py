# locus.energy, locus.decompose and locus.bench against the locus program's JSON (run from the test
# and parsed), and their errors.
import json
import os

import pytest

import locus
from conftest import MODEL, run_cli


def same_model(a, b):
    return os.path.samefile(a, b) if not a.startswith("builtin:") else a == b


@pytest.mark.parametrize("args,kwargs", [
    (["--buffer", "64K"], {"buffer": "64K"}),
    (["--buffer", "16K", "--schedule", "scan,fused-scan", "--dram", "lpddr4-3200-micron-x16"],
     {"buffer": 16384, "schedules": ["scan", "fused-scan"], "dram": "lpddr4-3200-micron-x16"}),
    (["--buffer", "128K", "--no-fuse"], {"buffer": "128K", "fuse": False}),
    (["--buffer", "64K", "--pacing", "dram"], {"buffer": "64K", "pacing": "dram"}),
])
def test_energy_equals_cli(locus_bin, args, kwargs):
    cli = json.loads(run_cli(locus_bin, "energy", MODEL, "--format", "json", *args))
    py = locus.energy(MODEL, **kwargs)
    assert same_model(py.pop("model"), cli.pop("model"))
    assert py == cli
    assert list(py) == list(cli)  # the same keys in the same order


def test_energy_builtin_decomposed_equals_cli(locus_bin):
    cli = json.loads(run_cli(locus_bin, "energy", "builtin:mobilenetv2", "--format", "json", "--buffer", "64K",
                             "--decompose", "rank=4", "--schedule", "fused-scan"))
    assert locus.energy("builtin:mobilenetv2", buffer="64K", decompose="rank=4", schedules="fused-scan") == cli


def test_energy_errors():
    with pytest.raises(locus.InputError) as e:
        locus.energy(MODEL, buffer="banana")
    assert str(e.value).startswith("option buffer: ")
    with pytest.raises(locus.InputError) as e:
        locus.energy(MODEL, schedules=["baseline", "zigzag"])
    assert str(e.value).startswith("option schedules: ")
    with pytest.raises(locus.Error) as e:
        locus.energy(MODEL, dram="ddr9")
    assert "ddr9" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(locus.FileError):
        locus.energy("no-such-model")


CONV = "/usr/share/libonnx-testdata/data/pytorch-converted/test_Conv2d"  # a 4x3x3x2 conv


def test_decompose_equals_cli(locus_bin, tmp_path):
    if not os.path.isdir(CONV):
        pytest.fail("libonnx-testdata is not installed (scripts/install-deps.sh)")
    cli = json.loads(run_cli(locus_bin, "decompose", CONV, "-o", str(tmp_path / "cli.onnx"), "--rank", "rank=2",
                             "--format", "json"))
    py = locus.decompose(CONV, str(tmp_path / "py.onnx"), rank=2)
    for d in (cli, py):
        d.pop("fit_seconds")
        d.pop("output")
    assert py == cli
    assert py["totals"]["decomposed"] == 1 and py["layers"][0]["rank"] == 2
    assert os.path.getsize(tmp_path / "py.onnx") == py["check"]["bytes"]
    with pytest.raises(locus.InputError):
        locus.decompose(CONV, str(tmp_path / "x.onnx"), rank="rank=zero")
    with pytest.raises(locus.FileError):
        locus.decompose(CONV, str(tmp_path / "no-such-folder" / "x.onnx"), rank=2)


def test_bench_returns_the_cli_json():
    j = locus.bench("builtin:mobilenetv2", threads=1, runs=2, warmup=1)
    assert j["schema"] == "locus-bench/1"
    assert [r["backend"] for r in j["results"]] == ["native"]
    with pytest.raises(locus.InputError) as e:
        locus.bench("builtin:mobilenetv2", runs=0)
    assert "--runs" in str(e.value)
