#!/usr/bin/env python3
"""Every kept run side by side: dsrlb / ceiling at each flow count (by rate and by PMD
share), dsrlb / testpmd and dsrlb / Pen in the lab, and how often each of the issue's
targets was met, all computed from the raw CSVs under bench/results/.

    bench/history.py [RESULTS_DIR] [--since STAMP]

Ratios are those of the medians, as in each run's summary.md (bench/analyze.py)."""
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from analyze import TARGETS, forwarder_at, medians, ratio  # noqa: E402

NAN = float("nan")
FLOWS = [1, 1000, 100000, 1000000]
LABELS = {1: "1 flow", 1000: "1k flows", 100000: "100k flows", 1000000: "1M flows"}
# The targets in the lab (those of the packet rate are analyze.TARGETS).
LAB_VS_TESTPMD, LAB_VS_PEN = 0.95, 1.5
DRIVERS = ["af_packet", "af_xdp"]


def machine(run):
    """commit, cpu and whether it was a --quick run, from machine.txt (lab-only runs
    have none)."""
    fields = {}
    path = run / "machine.txt"
    if path.exists():
        for line in path.read_text().splitlines():
            key, _, value = line.partition(": ")
            fields[key] = value.strip()
    cpu = fields.get("cpu", "-").replace("(R)", "").replace(" Processor", "")
    return fields.get("commit", "-"), cpu, fields.get("quick") == "1"


def rate_ratios(run):
    """{flows: (by rate, by PMD share, reps)}."""
    pps = medians(run / "pps.csv", ["impl", "flows"], "mpps")
    share = medians(run / "share.csv", ["impl", "flows"], "pmd_share_pct")
    out = {}
    for f in FLOWS:
        tp, n1, tp_share = forwarder_at(pps, share, "testpmd", f)
        lb, n2, lb_share = forwarder_at(pps, share, "dsrlb", f)
        if n1 and n2:
            out[f] = (ratio(lb, tp), ratio(lb_share, tp_share), min(n1, n2))
    return out


def lab_ratios(run):
    """{driver: (dsrlb / testpmd, dsrlb / Pen, dsrlb's drops %, Pen's drops %,
    testpmd / Pen)}. The first lab runs had af_packet only, named without the driver."""
    path = run / "lab.csv"
    if not path.exists():
        return {}
    fwd = medians(path, ["impl"], "forwarded_pps")
    drops = medians(path, ["impl"], "drop_pct")

    def get(table, impl, driver):
        value = table.get((f"{impl}/{driver}",)) or (table.get((impl,)) if driver == "af_packet" else None)
        return value[0] if value else NAN

    pen = fwd.get(("pen",), (NAN, 0))[0]
    pen_drops = drops.get(("pen",), (NAN, 0))[0]
    out = {}
    for driver in DRIVERS:
        lb, tp = get(fwd, "dsrlb", driver), get(fwd, "testpmd", driver)
        if lb == lb:
            out[driver] = (ratio(lb, tp), ratio(lb, pen), get(drops, "dsrlb", driver), pen_drops, ratio(tp, pen))
    return out


def cell(value, digits=2):
    return f"{value:.{digits}f}" if value == value else "-"


class Tally:
    """How often each target was met, over the runs that measured it."""

    def __init__(self, names):
        self.counts = {name: (0, []) for name in names}

    def add(self, name, value, met):
        if value == value:
            count, values = self.counts[name]
            self.counts[name] = (count + met, values + [value])

    def lines(self):
        for name, (met, values) in self.counts.items():
            if values:
                yield (f"- {name}: met in {met} of {len(values)}; "
                       f"{min(values):.3f}-{max(values):.3f}, median {statistics.median(values):.3f}")


def main(argv):
    since = ""
    if "--since" in argv:
        at = argv.index("--since")
        if at + 1 >= len(argv):
            sys.exit("--since needs a run's stamp, for example 20261206T094244Z")
        since = argv[at + 1]
        argv = argv[:at] + argv[at + 2:]
    root = Path(argv[0]) if argv else Path(__file__).resolve().parent / "results"
    if not root.is_dir():
        sys.exit(f"no results directory at {root}")
    runs = sorted(p for p in root.iterdir() if p.is_dir() and p.name >= since)
    rate_names = {f: (f"{LABELS[f]}, >= {t} x testpmd by rate", f"{LABELS[f]}, >= {t} x testpmd by PMD share")
                  for f, t in TARGETS.items()}
    lab_names = {d: (f"lab {d}, >= {LAB_VS_TESTPMD} x testpmd", f"lab {d}, >= {LAB_VS_PEN} x Pen with fewer drops",
                     f"lab {d}, the ceiling's own: testpmd >= {LAB_VS_PEN} x Pen")
                 for d in DRIVERS}
    tally = Tally([n for names in list(rate_names.values()) + list(lab_names.values()) for n in names])
    print("| run | commit | cpu | reps | " + " | ".join(f"{LABELS[f]}: rate / share" for f in FLOWS)
          + " | lab / testpmd af_packet / af_xdp | lab / Pen af_packet / af_xdp |")
    print("|---|---|---|---:|" + "---:|" * len(FLOWS) + "---:|---:|")
    for run in runs:
        commit, cpu, quick = machine(run)
        rates = rate_ratios(run)
        lab = lab_ratios(run)
        if not rates and not lab:
            continue
        reps = max((r[2] for r in rates.values()), default=0)
        cols = []
        for f in FLOWS:
            by_rate, by_share, _ = rates.get(f, (NAN, NAN, 0))
            cols.append(f"{cell(by_rate)} / {cell(by_share, 3)}")
            # A smoke run's 3 s reps are not a measurement of the target.
            if f in TARGETS and not quick:
                target = TARGETS[f]
                tally.add(rate_names[f][0], by_rate, by_rate >= target)
                tally.add(rate_names[f][1], by_share, by_share >= target)
        vs_tp = " / ".join(cell(lab.get(d, (NAN,) * 5)[0]) for d in DRIVERS)
        vs_pen = " / ".join(cell(lab.get(d, (NAN,) * 5)[1]) for d in DRIVERS)
        for d, (tp, pen, lb_drops, pen_drops, ceiling_vs_pen) in lab.items():
            tally.add(lab_names[d][0], tp, tp >= LAB_VS_TESTPMD)
            tally.add(lab_names[d][1], pen, pen >= LAB_VS_PEN and lb_drops < pen_drops)
            tally.add(lab_names[d][2], ceiling_vs_pen, ceiling_vs_pen >= LAB_VS_PEN)
        print(f"| {run.name} | {commit} | {cpu} | {reps or '-'}{' (quick)' if quick else ''} | "
              + " | ".join(cols) + f" | {vs_tp} | {vs_pen} |")
    print()
    print("Targets, over the runs above that measured them (smoke runs left out):")
    for line in tally.lines():
        print(line)


if __name__ == "__main__":
    main(sys.argv[1:])
