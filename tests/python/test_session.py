# locus.Session on the real MobileNetV2 against the stored reference outputs and the CLI's outputs,
# in one and in two Python threads; explain(); load_image; the errors of bad inputs and options.
import os
import threading

import numpy as np
import pytest
from onnx import load_tensor, numpy_helper

import locus
from conftest import MODEL, run_cli

SETS = range(5)


def read_pb(path):
    return numpy_helper.to_array(load_tensor(path))


@pytest.fixture(scope="module")
def session():
    return locus.Session(MODEL)


@pytest.fixture(scope="module")
def data(model_dir):
    return [(read_pb(os.path.join(model_dir, "test_data_set_%d" % k, "input_0.pb")),
             read_pb(os.path.join(model_dir, "test_data_set_%d" % k, "output_0.pb"))) for k in SETS]


def test_inputs_and_outputs(session):
    assert session.inputs == [{"name": "input", "shape": (1, 3, 224, 224), "dtype": "float32"}]
    assert session.outputs == [{"name": "output", "shape": (1, 1000), "dtype": "float32"}]


def test_run_matches_stored_outputs_and_cli(session, data, model_dir, locus_bin, tmp_path):
    for k, (x, want) in zip(SETS, data):
        before = x.copy()
        got = session.run({"input": x})["output"]
        assert np.array_equal(x, before)  # the input is read, never written
        assert got.dtype == np.float32 and got.shape == want.shape
        # locus check's tolerance: |got - want| <= atol + rtol |want|, atol 1e-4, rtol 1e-3
        assert np.all(np.abs(got - want) <= 1e-4 + 1e-3 * np.abs(want)), "set %d" % k
        out_dir = tmp_path / ("cli%d" % k)
        run_cli(locus_bin, "run", MODEL, "--input",
                "input=" + os.path.join(model_dir, "test_data_set_%d" % k, "input_0.pb"),
                "--output-dir", str(out_dir))
        cli = read_pb(str(out_dir / "output_0.pb"))
        np.testing.assert_array_equal(got, cli, err_msg="set %d: Session.run differs from locus run" % k)
        # the CLI's check agrees with the stored outputs too
    run_cli(locus_bin, "check", model_dir)


def test_read_only_input(session, data):
    x, want = data[0]
    ro = x.copy()
    ro.setflags(write=False)
    np.testing.assert_array_equal(session.run({"input": ro})["output"], session.run({"input": x})["output"])


def test_two_sessions_in_two_threads(data):
    one = locus.Session(MODEL)
    expected = [one.run({"input": x})["output"] for x, _ in data]
    sessions = [locus.Session(MODEL), locus.Session(MODEL)]
    results = [[None] * len(data) for _ in sessions]
    errors = []

    def work(t):
        try:
            for rep in range(2):
                for k in range(len(data)) if t == 0 else reversed(range(len(data))):
                    results[t][k] = sessions[t].run({"input": data[k][0]})["output"]
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    for t in range(2):
        for k in range(len(data)):
            np.testing.assert_array_equal(results[t][k], expected[k])


def test_load_image_is_the_stored_input(model_dir, data):
    # test_data_sets.tsv: set 0 is images/cat.jpg, prepared as `locus run --image` does
    x = locus.load_image(os.path.join(os.path.dirname(model_dir), "images", "cat.jpg"))
    assert x.shape == (1, 3, 224, 224) and x.dtype == np.float32
    np.testing.assert_allclose(x, data[0][0], atol=1e-6)


def test_explain(session):
    e = session.explain()
    assert len(e["fused_blocks"]) == 17  # every inverted-residual block of MobileNetV2 (README)
    assert all(b["fused_nodes"] for b in e["fused_blocks"])
    assert {r["kind"] for r in e["remarks"]} <= {"applied", "missed", "analysis"}
    assert e["implementations"] and e["activation_bytes"] > 0
    unfused = locus.Session(MODEL, fuse=False).explain()
    assert unfused["fused_blocks"] == []


def one_line(excinfo):
    m = str(excinfo.value)
    assert "\n" not in m and m
    return m


def test_wrong_shape(session):
    with pytest.raises(locus.InputError) as e:
        session.run({"input": np.zeros((1, 3, 224, 225), np.float32)})
    assert isinstance(e.value, ValueError) and isinstance(e.value, locus.Error)
    assert one_line(e) == "input 'input' has shape [1,3,224,225], the model expects [1,3,224,224]"


def test_wrong_dtype(session):
    with pytest.raises(locus.InputError) as e:
        session.run({"input": np.zeros((1, 3, 224, 224), np.float64)})
    assert one_line(e) == "input 'input' has type float64, the model expects float32"
    with pytest.raises(locus.InputError) as e:
        session.run({"input": np.zeros((1, 3, 224, 224), np.float16)})
    assert one_line(e).startswith("input 'input' has type float16, which locus does not take")


def test_non_contiguous(session, data):
    x = np.asfortranarray(data[0][0])
    assert not x.flags.c_contiguous
    with pytest.raises(locus.InputError) as e:
        session.run({"input": x})
    assert one_line(e) == "input 'input' is not a C-contiguous, aligned array (use numpy.ascontiguousarray)"
    y = np.zeros((1, 3, 224, 448), np.float32)[..., ::2]
    with pytest.raises(locus.InputError):
        session.run({"input": y})


def test_missing_and_unknown_names(session, data):
    with pytest.raises(locus.InputError) as e:
        session.run({})
    assert one_line(e) == "missing input 'input'"
    with pytest.raises(locus.InputError) as e:
        session.run({"input": data[0][0], "image": data[0][0]})
    assert one_line(e) == "the model has no input named 'image'"
    with pytest.raises(locus.InputError) as e:
        session.run({"input": [1.0, 2.0]})
    assert one_line(e) == "input 'input' must be a numpy.ndarray, got list"
    with pytest.raises(locus.InputError):
        session.run([data[0][0]])


def test_bad_options():
    with pytest.raises(TypeError) as e:  # an option Session does not have
        locus.Session(MODEL, tile_size=3)
    assert "tile_size" in one_line(e)
    with pytest.raises(locus.InputError) as e:
        locus.Session(MODEL, backend="tpu")
    assert one_line(e).startswith("option backend: unknown backend 'tpu' (known: ")
    with pytest.raises(locus.InputError) as e:
        locus.Session(MODEL, l2="banana")
    assert one_line(e).startswith("option l2: ")
    with pytest.raises(locus.InputError) as e:
        locus.Session(MODEL, decompose="rank=banana")
    assert one_line(e).startswith("option decompose: ")
    with pytest.raises(locus.InputError) as e:
        locus.Session(MODEL, threads=0)
    assert one_line(e) == "option threads expects a positive int or None, got 0"


def test_missing_model_is_an_oserror():
    with pytest.raises(locus.FileError) as e:
        locus.Session("no-such-model.onnx")
    assert isinstance(e.value, OSError)
    assert one_line(e).startswith("model 'no-such-model.onnx' not found (searched: ")


def test_bad_model_file(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not a protobuf")
    with pytest.raises(locus.ModelError) as e:
        locus.Session(str(bad))
    assert isinstance(e.value, ValueError)
    assert str(bad) in one_line(e)


def test_help_documents_the_api():
    doc = locus.Session.__doc__
    for word in ("backend", "threads", "l2", "fuse", "decompose", "run", "explain", "GIL"):
        assert word in doc
    assert "numpy" in locus.Session.run.__doc__


def test_import_sets_the_short_spin_unless_a_policy_is_set():
    # locus/__init__.py sets GOMP_SPINCOUNT (the `locus` program's default, docs/threads.md) before
    # the extension loads libgomp, and leaves a policy the user chose alone.
    import subprocess
    import sys
    code = "import os, locus; print(os.environ.get('GOMP_SPINCOUNT'), os.environ.get('OMP_WAIT_POLICY'))"
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY", "LOCUS_OMP_SPIN")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["1000", "None"], out
    env["OMP_WAIT_POLICY"] = "passive"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["None", "passive"], out
