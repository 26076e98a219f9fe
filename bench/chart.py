"""Draw the side-by-side benchmark results as one SVG chart.

Reads the JSON files that the measures write to bench/results (batch.json,
size.json, drain-ours.json with drain-same.json and drain-seed.json if present,
core.json) and draws one panel per measure that has a result. Panels whose
values span orders of magnitude use a log scale.
Needs matplotlib (`pip install matplotlib`).

Usage: python3 chart.py RESULTS_DIR OUTPUT.svg
"""

import json
import sys
from pathlib import Path

try:
    import matplotlib

    matplotlib.use("agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
except ImportError:
    sys.exit("chart: matplotlib is missing; install it with `pip install matplotlib`")

OURS = "#d9480f"
PEER = "#868e96"
LABELS = {"seed": "seed (JS)", "same": "same alg. (JS)", "ours": "ours (Rust)"}


def load(results_dir, name):
    """Return the parsed result file NAME.json, or None if it is missing."""
    path = results_dir / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def readable(value):
    """Format a value: from 100 up as a whole number with thousands separators, below with three significant digits."""
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def bars(axis, labels, values, title, unit, log=False, goal=None):
    """Draw one horizontal bar panel with the value printed at each bar."""
    colors = [OURS if "ours" in label or "native" in label or "core" in label else PEER for label in labels]
    axis.barh(labels, values, color=colors)
    axis.invert_yaxis()
    axis.set_title(title, fontsize=10, loc="left")
    axis.set_xlabel(unit, fontsize=8)
    axis.tick_params(labelsize=8)
    if log:
        axis.set_xscale("log")
        axis.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    for index, value in enumerate(values):
        axis.text(value, index, f" {readable(value)}", va="center", fontsize=8)
    if goal is not None:
        axis.axvline(goal, color="black", linestyle=":", linewidth=1)
    axis.margins(x=0.25)


def batch_panels(batch):
    """Return the panels of measures 1 and 2."""
    workers = batch["workers"]
    labels = [LABELS.get(worker["worker"], worker["worker"]) for worker in workers]
    calls = [worker["count_total"] for worker in workers]
    warm = [worker["warm_batch_ms"] for worker in workers]
    return [
        (labels, calls, "1. Binding calls, batch of 10 events x 5 formats", "calls (log)", True, 2),
        (labels, warm, "2. Warm batch, 100 events x 5 formats", "ms in Miniflare (log)", True, None),
    ]


def size_panel(size):
    """Return the panel of measure 3, with the minified JS bundles."""
    rows = [row for row in size["workers"] if row["build"] != "esbuild bundle"]
    labels = [row["worker"].replace(" algorithm", " alg.") for row in rows]
    return [(labels, [row["gzip"] / 1024 for row in rows], "3. Worker size, gzip", "KiB", False, None)]


def drain_panel(drain, peers=()):
    """Return the panel of measure 4, if both runners finished, with any peer drains."""
    if drain.get("native") is None or drain.get("miniflare") is None:
        return []
    labels = ["native runner", "Miniflare + our Worker"]
    values = [drain["native"]["wall_secs"], drain["miniflare"]["wall_secs"]]
    for name, peer in peers:
        labels.append(f"Miniflare + {name} (JS)")
        values.append(peer["miniflare"]["wall_secs"])
    return [(labels, values, f"4. Drain of {drain['events']:,} events", "wall seconds (log)", True, None)]


def core_panel(core):
    """Return the panel of measure 5, both KV sets."""
    labels, values = [], []
    for run, name in zip(core["runs"], ("real KV", "5 formats")):
        labels += [f"core (Rust), {name}", f"seed (Python), {name}"]
        values += [run["ours"]["events_per_sec_median"], run["seed"]["events_per_sec_median"]]
    return [(labels, values, "5. Core throughput, batches of 10", "events/s (log)", True, None)]


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[-1])
    results_dir, output = Path(sys.argv[1]), Path(sys.argv[2])

    panels = []
    for name, make in (("batch", batch_panels), ("size", size_panel), ("core", core_panel)):
        result = load(results_dir, name)
        if result is not None:
            panels.extend(make(result))

    drain = load(results_dir, "drain-ours")
    if drain is not None:
        peers = [(label, load(results_dir, f"drain-{key}")) for key, label in (("same", "same alg."), ("seed", "seed"))]
        finished = [(label, peer) for label, peer in peers if peer is not None and peer.get("miniflare")]
        # Measure 4 goes after the panels of measures 1 to 3.
        position = min(3, len(panels))
        panels[position:position] = drain_panel(drain, finished)
    if not panels:
        sys.exit(f"chart: no results in {results_dir}; run `bash bench/run.sh` first")

    columns = 2
    rows = (len(panels) + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(11, 2.6 * rows), squeeze=False)
    for axis, panel in zip(axes.flat, panels):
        bars(axis, *panel)
    for axis in list(axes.flat)[len(panels) :]:
        axis.axis("off")
    figure.suptitle("landscape-dispatcher side by side (orange: ours)", fontsize=11)
    figure.tight_layout()
    figure.savefig(output, metadata={"Date": None} if output.suffix == ".svg" else None)
    print(f"chart: wrote {output}")


if __name__ == "__main__":
    main()
