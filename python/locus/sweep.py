"""locus.sweep: design-space exploration of the accelerator model on Dask.

Each point names a model, an on-chip buffer size, a DRAM part, an accelerator, a schedule and a
decomposition policy; sweep() evaluates them in parallel (locus.energy per point) on a
dask.distributed.Client if one is given, else on a local process pool (Dask's "processes"
scheduler), and returns one row per point, in the order given: a pandas DataFrame when pandas is
installed, else a list of dicts. A point that fails (a bad option, a missing model) comes back as
a row whose "error" column holds the one-line message; the other points are unaffected.

    import locus
    pts = locus.grid(model="mobilenetv2-12-fp32-from-int8", buffer=["8K", "64K", "512K"],
                     schedule=["baseline", "scan", "fused-scan"])
    rows = locus.sweep(pts)                           # local processes
    rows = locus.sweep(pts, client=Client(cluster))   # a Dask cluster
"""
import dataclasses
import itertools
import sys

FIELDS = ("model", "buffer", "dram", "accel", "schedule", "decompose", "fuse")
RESULTS = ("buffer_entries", "dram_name", "dram_energy_uj", "total_energy_uj", "dram_read_bytes",
           "dram_write_bytes", "row_hit_rate", "macs", "error")


@dataclasses.dataclass(frozen=True)
class Point:
    """One design point. buffer: entries (int or "64K"); dram: a DRAM preset or None (the
    accelerator's); accel: a preset or JSON file; schedule: baseline, scan or fused-scan;
    decompose: a CP policy ("rank=16", ...) or None; fuse: fuse inverted-residual blocks."""
    model: str
    buffer: object = "64K"
    dram: object = None
    accel: str = "default"
    schedule: str = "fused-scan"
    decompose: object = None
    fuse: bool = True


def grid(model, buffer="64K", dram=None, accel="default", schedule="fused-scan", decompose=None, fuse=True):
    """Every combination of the values given (each argument a value or a list of values), as Points,
    in the order of itertools.product (model outermost, fuse innermost)."""
    def as_list(v):
        return list(v) if isinstance(v, (list, tuple)) else [v]
    axes = [as_list(v) for v in (model, buffer, dram, accel, schedule, decompose, fuse)]
    return [Point(*vals) for vals in itertools.product(*axes)]


def _as_fields(point):
    if isinstance(point, Point):
        return dataclasses.asdict(point)
    if isinstance(point, dict):
        unknown = sorted(set(point) - set(FIELDS))
        d = {f.name: f.default for f in dataclasses.fields(Point) if f.default is not dataclasses.MISSING}
        d.update({k: v for k, v in point.items() if k in FIELDS})
        d.setdefault("model", None)
        if unknown:
            d["_unknown"] = unknown
        return d
    raise TypeError("a sweep point must be a locus.Point or a dict, got %s" % type(point).__name__)


def evaluate_point(point):
    """One row: the point's fields and its energy figures, or its error (never raises)."""
    try:
        fields = _as_fields(point)
    except TypeError as e:
        return dict({f: None for f in FIELDS}, **{r: None for r in RESULTS[:-1]}, error=str(e))
    row = {f: fields.get(f) for f in FIELDS}
    row.update({r: None for r in RESULTS})
    try:
        if fields.get("_unknown"):
            raise ValueError("unknown point option %s (known: %s)" % (", ".join(fields["_unknown"]), ", ".join(FIELDS)))
        if fields.get("model") is None:
            raise ValueError("a sweep point needs a model")
        import locus
        doc = locus.energy(fields["model"], buffer=fields["buffer"], schedules=[fields["schedule"]],
                           accel=fields["accel"], dram=fields["dram"], decompose=fields["decompose"],
                           fuse=fields["fuse"])
        sched = doc["schedules"][0]
        total = sched["total"]
        row.update(buffer_entries=sched["buffer_entries"], dram_name=doc["config"]["dram"],
                   dram_energy_uj=total["energy_uj"]["dram"], total_energy_uj=total["energy_uj"]["total"],
                   dram_read_bytes=total["dram_read_bytes"], dram_write_bytes=total["dram_write_bytes"],
                   row_hit_rate=total["row_hit_rate"], macs=total["macs"])
    except Exception as e:  # a per-point failure is a row, never a lost sweep
        row["error"] = str(e) or type(e).__name__
    return row


def _frame(rows, as_frame):
    if as_frame is False:
        return rows
    try:
        import pandas
    except ImportError:
        if as_frame:
            raise
        return rows
    return pandas.DataFrame(rows, columns=list(FIELDS) + list(RESULTS))


def sweep(points, client=None, workers=None, scheduler="processes", progress=True, as_frame=None):
    """Evaluates every point (locus.Point or dict with the Point fields) and returns the rows in the
    order of `points`.

    client     a dask.distributed.Client: the points are mapped over its workers
    workers    without a client: processes of the local pool (None: Dask's default, the cores)
    scheduler  without a client: "processes" (default), "threads" or "sync" (one after another)
    progress   a progress line per finished point on stderr (client) or Dask's progress bar
    as_frame   None: a pandas DataFrame if pandas imports, else a list of dicts; True / False force
    """
    points = list(points)
    n = len(points)
    if n == 0:
        return _frame([], as_frame)
    if client is not None:
        from distributed import as_completed
        futures = client.map(evaluate_point, points, pure=False)
        if progress:
            for done, _ in enumerate(as_completed(futures), 1):
                print("sweep: %d/%d points" % (done, n), file=sys.stderr, flush=True)
        rows = client.gather(futures)
    elif scheduler == "sync" and not progress:
        rows = [evaluate_point(p) for p in points]
    else:
        import dask
        tasks = [dask.delayed(evaluate_point, pure=False)(p) for p in points]
        kwargs = {"scheduler": scheduler}
        if workers is not None and scheduler != "sync":
            kwargs["num_workers"] = int(workers)
        if progress:
            from dask.diagnostics import ProgressBar
            with ProgressBar(out=sys.stderr):
                rows = list(dask.compute(*tasks, **kwargs))
        else:
            rows = list(dask.compute(*tasks, **kwargs))
    return _frame(list(rows), as_frame)
