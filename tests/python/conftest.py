# Shared fixtures of the Python module's tests (tests/python, run by ctest python_module and
# python_sweep with PYTHONPATH=build/python and LOCUS_BIN=build/locus).
import os
import subprocess

import pytest

import locus

MODEL = "mobilenetv2-12-fp32-from-int8"  # the real fp32 MobileNetV2 of the shared models


def model_root():
    """The model folder locus searches (model_dir default): $LOCUS_MODEL_DIR or shared/models above."""
    return os.environ.get("LOCUS_MODEL_DIR") or locus._default_model_dir(None)


@pytest.fixture(scope="session")
def locus_bin():
    path = os.environ.get("LOCUS_BIN")
    if not path or not os.access(path, os.X_OK):
        pytest.fail("LOCUS_BIN must name the built locus program (ctest sets it)")
    return path


@pytest.fixture(scope="session")
def model_dir():
    root = model_root()
    d = os.path.join(root, MODEL) if root else ""
    if not os.path.isdir(d):
        pytest.fail("the shared models are not found (%s): set LOCUS_MODEL_DIR" % (d or "no shared/models"))
    return d


def run_cli(locus_bin, *args):
    """Runs the locus program; returns its stdout (fails the test with its stderr otherwise)."""
    r = subprocess.run([locus_bin, *args], capture_output=True, text=True)
    assert r.returncode == 0, "locus %s failed: %s" % (" ".join(args), r.stderr)
    return r.stdout
