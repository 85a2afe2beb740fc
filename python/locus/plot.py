"""locus.plot_energy_sweep: DRAM energy against on-chip buffer size, one line per schedule (the
plot `locus energy --sweep LO:HI --svg FILE` draws), from locus.sweep rows. matplotlib is imported
only when a plot is drawn (python3-matplotlib; it is not a dependency of the rest of the package)."""


def _rows(rows):
    if hasattr(rows, "to_dict"):
        return rows.to_dict("records")
    return list(rows)


def plot_energy_sweep(rows, path=None, ax=None, title=None, energy="dram_energy_uj"):
    """Draws `energy` (default DRAM energy, uJ) against buffer_entries for each schedule (log2 x
    axis) from sweep rows (error rows are skipped); saves it to `path` when given (.svg, .png,
    ...). Returns the matplotlib Axes. Raises ImportError naming the package when matplotlib is
    not installed."""
    try:
        import matplotlib
        if ax is None and path is not None:
            matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError("locus.plot_energy_sweep needs matplotlib, which is not installed "
                          "(apt-get install python3-matplotlib)") from e
    series = {}
    for r in _rows(rows):
        if r.get("error") or r.get(energy) is None:
            continue
        series.setdefault(r["schedule"], []).append((r["buffer_entries"], r[energy]))
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.5))
    for name, pts in series.items():
        pts.sort()
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=name)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("on-chip buffer (entries)")
    ax.set_ylabel("DRAM energy (uJ)" if energy == "dram_energy_uj" else energy)
    ax.set_title(title or "Projected DRAM energy per inference")
    ax.legend()
    ax.grid(True, alpha=0.3)
    if path is not None:
        ax.figure.savefig(path)
    return ax
