"""locus: a CNN inference runtime built around data locality, from Python.

    import locus
    s = locus.Session("mobilenetv2-12-fp32-from-int8")
    out = s.run({"input": locus.load_image("cat.jpg")})        # dict of numpy arrays
    print(out["output"][0].argsort()[::-1][:5])                 # top-5 class ids
    print(locus.energy("mobilenetv2-12-fp32-from-int8", buffer="64K")["schedules"][2]["total"]["energy_uj"])

Models are found as the `locus` program finds them: a path, a folder holding one .onnx file, a name
in `model_dir`, $LOCUS_MODEL_DIR or the nearest shared/models folder above this package, or
builtin:mobilenetv2 / builtin:resnet50. Errors are raised as locus.Error subclasses carrying the
CLI's one-line message: InputError and ModelError (also ValueError), FileError (also OSError),
Unsupported (also NotImplementedError).

Design-space sweeps on Dask: locus.sweep (locus/sweep.py); the plot: locus.plot_energy_sweep.
"""
import os as _os

# libgomp reads its wait policy when it loads (with _locus below, unless something loaded it
# first): unless the user chose one, use the `locus` program's short spin (docs/threads.md: the
# default spin makes 2-thread runs many times slower when another process shares the cores).
if "OMP_WAIT_POLICY" not in _os.environ and "GOMP_SPINCOUNT" not in _os.environ:
    _os.environ["GOMP_SPINCOUNT"] = "1000"
    _os.environ["LOCUS_OMP_SPIN"] = "1000"

from . import _locus  # noqa: E402
from ._locus import Error, FileError, InputError, ModelError, Unsupported  # noqa: E402

__all__ = ["Session", "load_image", "energy", "decompose", "bench", "sweep", "grid", "Point",
           "plot_energy_sweep", "Error", "InputError", "ModelError", "FileError", "Unsupported",
           "__version__"]

__version__ = _locus.version()


def _default_model_dir(model_dir):
    """model_dir if given; else "" when $LOCUS_MODEL_DIR is set (the runtime reads it); else the
    nearest shared/models folder above this package (as the CLI looks above its program)."""
    if model_dir is not None:
        return str(model_dir)
    if _os.environ.get("LOCUS_MODEL_DIR"):
        return ""
    d = _os.path.dirname(_os.path.abspath(__file__))
    while True:
        cand = _os.path.join(d, "shared", "models")
        if _os.path.isdir(cand):
            return cand
        parent = _os.path.dirname(d)
        if parent == d:
            return ""
        d = parent


def _policy(decompose):
    if decompose is None:
        return ""
    if isinstance(decompose, int) and not isinstance(decompose, bool):
        return "rank=%d" % decompose
    if not isinstance(decompose, str):
        raise InputError("option decompose expects a policy such as 'rank=16' or 'ratio=0.25', got %r" % (decompose,))
    return decompose


class Session:
    """A model loaded, optimised and compiled once, then run many times (runtime/session.h).

    Session(model, backend="native", threads=None, l2=None, fuse=True, decompose=None,
            model_dir=None, batch=1, max_memory=None)

    model      an .onnx path, a folder holding one, a name in the model search path, or
               builtin:mobilenetv2 / builtin:resnet50
    backend    "native" (default), "native-unfused", "onednn", "onednn-dwfused", "reference", "accel"
    threads    OpenMP threads per run (None: all cores)
    l2         the L2 size the 1x1 convolutions are cache-tiled for: bytes (int) or "512K", "1M";
               0 turns tiling off; None: $LOCUS_L2, then the OS (the CLI's --l2)
    fuse       fuse inverted-residual blocks (False: the CLI's --no-fuse)
    decompose  CP-decompose KxK convolutions: a policy "rank=16", "ratio=0.25", "error=0.05",
               "macs=0.3", or an int rank (the CLI's --decompose); None: no decomposition
    model_dir  searched first for a model name
    batch      value of a symbolic batch axis
    max_memory memory budget in bytes or "4G" (None: 75% of the machine's usable memory)

    Attributes: inputs / outputs, lists of {"name", "shape", "dtype"} dicts.
    Methods: run(dict of arrays) -> dict of arrays; explain() -> dict.

    Threads: run() releases the GIL. One session runs one inference at a time (concurrent calls
    wait for each other); make one session per thread to run in parallel.
    """

    def __init__(self, model, backend="native", threads=None, l2=None, fuse=True, decompose=None,
                 model_dir=None, batch=1, max_memory=None):
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise InputError("option threads expects a positive int or None, got %r" % (threads,))
        if not isinstance(backend, str):
            raise InputError("option backend expects a name such as 'native', got %r" % (backend,))
        self.model = str(model)
        self.backend = backend
        self._s = _locus._Session(self.model, backend, 0 if threads is None else threads, l2, bool(fuse),
                                  _policy(decompose), _default_model_dir(model_dir), int(batch), max_memory)

    @property
    def inputs(self):
        """The model's inputs: [{"name": str, "shape": tuple, "dtype": numpy dtype name}]."""
        return self._s.inputs

    @property
    def outputs(self):
        """The model's outputs, in the order run() returns them, as for inputs."""
        return self._s.outputs

    def run(self, inputs):
        """Runs one inference. `inputs` maps every input name to a C-contiguous numpy array of the
        input's dtype and shape (read in place, not copied); returns {output name: numpy array}.
        A missing or unknown name, a wrong dtype or shape, or a non-contiguous array raises
        locus.InputError with a one-line message. The GIL is released while it runs."""
        if not isinstance(inputs, dict):
            raise InputError("run expects a dict {input name: numpy array}, got %s" % type(inputs).__name__)
        return self._s.run(inputs)

    def explain(self):
        """How the graph was rewritten and planned: {"backend", "describe", "fused_blocks": [{"node",
        "fused_nodes", "residual"}], "remarks": [{"pass", "node", "kind", "message"}],
        "pointwise_plans": [...], "fused_block_plans": [...], "implementations": [...],
        "activation_bytes", "planned_memory_bytes"} (the CLI's run --explain and info --plans)."""
        return self._s.explain()

    def __repr__(self):
        return "locus.Session(%r, backend=%r)" % (self.model, self.backend)


def load_image(path, size=224):
    """A JPEG or PNG photo as `locus run --image` prepares it: float32 [1, 3, size, size], short
    side resized to size*256/224 (PIL bilinear), centre-cropped, ImageNet-normalised."""
    return _locus.load_image(str(path), int(size))


SCHEDULES = ("baseline", "scan", "fused-scan")


def energy(model, buffer="64K", schedules=SCHEDULES, accel="default", dram=None, decompose=None, fuse=True,
           model_dir=None, batch=1, pacing="both"):
    """Projected energy of one inference of `model` on the accelerator model: the document
    `locus energy MODEL --buffer B --format json` prints (schema locus-energy/1), as a dict.

    buffer     on-chip buffer in entries: int or "64K" (None: the accelerator config's)
    schedules  names among "baseline", "scan", "fused-scan" (a str is split at commas)
    accel      accelerator preset or JSON file; dram: DRAM preset overriding the config's
    decompose  CP decomposition policy ("rank=16", ...) or None; fuse=False is --no-fuse
    pacing     "compute", "dram" or "both" (--pacing): "schedules" holds the first pacing's results,
               "schedules_dram_paced" the DRAM-paced ones when both are evaluated
    """
    if isinstance(schedules, str):
        schedules = [s for s in schedules.split(",") if s]
    return _locus.energy(str(model), buffer, list(schedules), accel, dram, _policy(decompose), bool(fuse),
                         _default_model_dir(model_dir), int(batch), str(pacing))


def decompose(model, output, rank=None, form=3, layers=None, iterations=200, model_dir=None, batch=1,
              progress=False):
    """CP-decomposes the standard convolutions of `model`, writes `output` (standard ONNX), reloads it
    as a check, and returns the report of `locus decompose --format json` (locus-decompose/1).
    rank: a policy ("rank=16", "ratio=0.25", "error=0.05", "macs=0.3") or an int rank; None: the
    default (error-driven). form: 3 or 4. layers: only these Conv node names."""
    return _locus.decompose(str(model), str(output), _policy(rank), int(form), list(layers or []), int(iterations),
                            _default_model_dir(model_dir), int(batch), bool(progress))


def bench(model, backend="native", threads=None, runs=None, warmup=None, l2=None, fuse=True, decompose=None,
          model_dir=None, args=()):
    """`locus bench` run in this process: prints its table and returns its JSON (locus-bench/1) as a
    dict. backend: a name or a list of names; further CLI options in `args`."""
    a = [str(model), "--backend", backend if isinstance(backend, str) else ",".join(backend)]
    if threads is not None:
        a += ["--threads", str(threads)]
    if runs is not None:
        a += ["--runs", str(runs)]
    if warmup is not None:
        a += ["--warmup", str(warmup)]
    if l2 is not None:
        a += ["--l2", str(l2)]
    if not fuse:
        a += ["--no-fuse"]
    if decompose is not None:
        a += ["--decompose", _policy(decompose)]
    md = _default_model_dir(model_dir)
    if md:
        a += ["--model-dir", md]
    return _locus.bench(a + [str(x) for x in args])


from .sweep import Point, grid, sweep  # noqa: E402
from .plot import plot_energy_sweep  # noqa: E402
