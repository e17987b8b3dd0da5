#!/usr/bin/env python3
"""Every run side by side: dsrlb / ceiling at each flow count (by rate and by PMD
share), dsrlb / testpmd and dsrlb / Pen in the lab, and how often each of the issue's
targets was met. A run's row is computed from its raw CSVs where its results directory
is still there (bench/results/ keeps the latest full run), and read from the archive,
bench/history.csv, where it is not.

    bench/history.py [RESULTS_DIR] [--since STAMP] [--archive CSV]
    bench/history.py --write-archive CSV [RESULTS_DIR]

The archive is read by default only with the default results directory. --write-archive
writes every row (the archive's and the directories') to CSV, so that older results
directories can leave the tree. Ratios are those of the medians, as in each run's
summary.md (bench/analyze.py)."""
import csv
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


LAB_FIELDS = ["vs_testpmd", "vs_pen", "dsrlb_drops", "pen_drops", "testpmd_vs_pen"]
COLUMNS = (["run", "commit", "cpu", "quick", "reps"]
           + [f"{kind}_{f}" for f in FLOWS for kind in ("rate", "share")]
           + [f"{d}_{field}" for d in DRIVERS for field in LAB_FIELDS])


def measure(run):
    """A run's row from its results directory: {run, commit, cpu, quick, reps,
    rates: {flows: (by rate, by share)}, lab: {driver: LAB_FIELDS' values}}."""
    commit, cpu, quick = machine(run)
    rates = rate_ratios(run)
    return {"run": run.name, "commit": commit, "cpu": cpu, "quick": quick,
            "reps": max((r[2] for r in rates.values()), default=0),
            "rates": {f: r[:2] for f, r in rates.items()}, "lab": lab_ratios(run)}


def to_csv(row):
    out = {k: row[k] for k in ("run", "commit", "cpu", "reps")}
    out["quick"] = int(row["quick"])
    for f in FLOWS:
        out[f"rate_{f}"], out[f"share_{f}"] = row["rates"].get(f, ("", ""))
    for d in DRIVERS:
        for field, value in zip(LAB_FIELDS, row["lab"].get(d, [""] * len(LAB_FIELDS))):
            out[f"{d}_{field}"] = value
    return out


def from_csv(line):
    number = lambda text: float(text) if text not in ("", None) else NAN  # noqa: E731
    rates = {f: (number(line[f"rate_{f}"]), number(line[f"share_{f}"]))
             for f in FLOWS if line[f"rate_{f}"] != ""}
    lab = {d: tuple(number(line[f"{d}_{field}"]) for field in LAB_FIELDS)
           for d in DRIVERS if line[f"{d}_vs_testpmd"] != ""}
    return {"run": line["run"], "commit": line["commit"], "cpu": line["cpu"],
            "quick": line["quick"] == "1", "reps": int(line["reps"] or 0), "rates": rates, "lab": lab}


def read_archive(path):
    if not path or not Path(path).exists():
        return []
    with open(path) as f:
        return [from_csv(line) for line in csv.DictReader(f)]


def write_archive(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow(to_csv(row))


def all_rows(root, archive):
    """The archive's rows and the directories', by run; a directory's raw CSVs win."""
    rows = {row["run"]: row for row in read_archive(archive)}
    if root.is_dir():
        for run in sorted(p for p in root.iterdir() if p.is_dir()):
            row = measure(run)
            if row["rates"] or row["lab"]:
                rows[run.name] = row
    return [rows[name] for name in sorted(rows)]


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


def option(argv, name):
    """(the value of --name, argv without it), or (None, argv)."""
    if name not in argv:
        return None, argv
    at = argv.index(name)
    if at + 1 >= len(argv):
        sys.exit(f"{name} needs a value")
    return argv[at + 1], argv[:at] + argv[at + 2:]


def main(argv):
    since, argv = option(argv, "--since")
    archive, argv = option(argv, "--archive")
    write_to, argv = option(argv, "--write-archive")
    here = Path(__file__).resolve().parent
    root = Path(argv[0]) if argv else here / "results"
    if archive is None and not argv:
        archive = here / "history.csv"
    if not root.is_dir() and not archive:
        sys.exit(f"no results directory at {root}")
    rows = all_rows(root, archive)
    if write_to:
        write_archive(write_to, rows)
        print(f"{len(rows)} runs written to {write_to}")
        return
    print_table([row for row in rows if row["run"] >= (since or "")])


def print_table(rows):
    rate_names = {f: (f"{LABELS[f]}, >= {t} x testpmd by rate", f"{LABELS[f]}, >= {t} x testpmd by PMD share")
                  for f, t in TARGETS.items()}
    lab_names = {d: (f"lab {d}, >= {LAB_VS_TESTPMD} x testpmd", f"lab {d}, >= {LAB_VS_PEN} x Pen with fewer drops",
                     f"lab {d}, the ceiling's own: testpmd >= {LAB_VS_PEN} x Pen")
                 for d in DRIVERS}
    tally = Tally([n for names in list(rate_names.values()) + list(lab_names.values()) for n in names])
    print("| run | commit | cpu | reps | " + " | ".join(f"{LABELS[f]}: rate / share" for f in FLOWS)
          + " | lab / testpmd af_packet / af_xdp | lab / Pen af_packet / af_xdp |")
    print("|---|---|---|---:|" + "---:|" * len(FLOWS) + "---:|---:|")
    for row in rows:
        rates, lab, quick = row["rates"], row["lab"], row["quick"]
        cols = []
        for f in FLOWS:
            by_rate, by_share = rates.get(f, (NAN, NAN))
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
        print(f"| {row['run']} | {row['commit']} | {row['cpu']} | {row['reps'] or '-'}{' (quick)' if quick else ''} | "
              + " | ".join(cols) + f" | {vs_tp} | {vs_pen} |")
    print()
    print("Targets, over the runs above that measured them (smoke runs left out):")
    for line in tally.lines():
        print(line)


if __name__ == "__main__":
    main(sys.argv[1:])
