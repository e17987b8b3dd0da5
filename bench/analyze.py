#!/usr/bin/env python3
"""Summarises a bench/run.sh results directory: medians and ratios as a Markdown
table, and SVG bar charts (no plotting library needed)."""
import csv
import statistics
import sys
from pathlib import Path


def medians(path, key_fields, value_field):
    groups = {}
    if not Path(path).exists():
        return {}
    with open(path) as f:
        for row in csv.DictReader(f):
            try:
                v = float(row[value_field])
            except (KeyError, TypeError, ValueError):  # no such column, or no value
                continue
            if v == v:  # not NaN
                groups.setdefault(tuple(row[k] for k in key_fields), []).append(v)
    return {k: (statistics.median(v), len(v)) for k, v in groups.items()}


def ratio(a, b):
    return a / b if b else float("nan")


def forwarder_at(pps, share, impl, flows):
    """(median Mpps, runs, median PMD share %) of one forwarder at one flow count, from
    the medians of pps.csv and share.csv; nan where it was not measured."""
    rate, runs = pps.get((impl, str(flows)), (float("nan"), 0))
    return rate, runs, share.get((impl, str(flows)), (float("nan"), 0))[0]


# The targets, dsrlb / ceiling, by flow count.
TARGETS = {1: 0.95, 1_000_000: 0.85}


def time_budget(flows, tp_mpps, lb_mpps):
    """Where the time goes against the target: ns a frame for the ceiling, dsrlb's extra
    over it, and the extra the target allows (1 / target - 1 of the ceiling's)."""
    if not (tp_mpps > 0 and lb_mpps > 0):
        return "n/a"
    ceiling_ns = 1000 / tp_mpps
    text = f"{ceiling_ns:.1f} / {1000 / lb_mpps - ceiling_ns:.1f}"
    target = TARGETS.get(flows)
    return text + (f" / {ceiling_ns * (1 / target - 1):.1f}" if target else " / -")


def bar_svg(title, groups, series, values, unit, path):
    """groups: x labels; series: names; values[(group, series)] -> number."""
    colors = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3"]
    w, h, left, bottom, top = 720, 360, 60, 50, 40
    peak = max([v for v in values.values()] + [1e-9]) * 1.1
    gw = (w - left - 20) / max(len(groups), 1)
    bw = gw * 0.8 / max(len(series), 1)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
           f'<text x="{w/2}" y="20" text-anchor="middle" font-size="14">{title}</text>',
           f'<line x1="{left}" y1="{h-bottom}" x2="{w-10}" y2="{h-bottom}" stroke="black"/>',
           f'<text x="15" y="{top + 10}" >{unit}</text>']
    for i, g in enumerate(groups):
        x0 = left + i * gw + gw * 0.1
        out.append(f'<text x="{x0 + gw*0.4}" y="{h-bottom+18}" text-anchor="middle">{g}</text>')
        for j, s in enumerate(series):
            v = values.get((g, s))
            if v is None:
                continue
            bh = (h - bottom - top) * v / peak
            x = x0 + j * bw
            out.append(f'<rect x="{x:.1f}" y="{h-bottom-bh:.1f}" width="{bw-2:.1f}" height="{bh:.1f}" fill="{colors[j % len(colors)]}"/>')
            out.append(f'<text x="{x + bw/2:.1f}" y="{h-bottom-bh-4:.1f}" text-anchor="middle" font-size="10">{v:.2f}</text>')
    for j, s in enumerate(series):
        out.append(f'<rect x="{left + j*130}" y="{h-18}" width="10" height="10" fill="{colors[j % len(colors)]}"/>'
                   f'<text x="{left + j*130 + 14}" y="{h-9}">{s}</text>')
    out.append("</svg>")
    Path(path).write_text("\n".join(out))


def main():
    out = Path(sys.argv[1])
    print(f"# dsrlb benchmark summary ({out.name})\n")
    machine = out / "machine.txt"
    if machine.exists():
        print("```\n" + machine.read_text().strip() + "\n```\n")
    pps = medians(out / "pps.csv", ["impl", "flows"], "mpps")
    share = medians(out / "share.csv", ["impl", "flows"], "pmd_share_pct")
    flows = sorted({int(k[1]) for k in pps})
    if flows:
        print("## Packet rate per worker core (64-byte frames, 1 VIP, 16 targets; TCP: a SYN, then seven data frames a flow)\n")
        print("| flows | testpmd mac-fwd (ceiling) Mpps | dsrlb Mpps | dsrlb / ceiling "
              "| PMD share testpmd / dsrlb % | dsrlb / ceiling by PMD share "
              "| ns a frame: ceiling / dsrlb's extra / the target allows | runs |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
        values = {}
        for f in flows:
            tp, n1, tp_share = forwarder_at(pps, share, "testpmd", f)
            lb, n2, lb_share = forwarder_at(pps, share, "dsrlb", f)
            print(f"| {f} | {tp:.2f} | {lb:.2f} | {ratio(lb, tp):.2f} | {tp_share:.1f} / {lb_share:.1f} "
                  f"| {ratio(lb_share, tp_share):.3f} | {time_budget(f, tp, lb)} | {min(n1, n2)} |")
            values[(str(f), "testpmd mac-fwd")] = tp
            values[(str(f), "dsrlb")] = lb
        print()
        for f in flows:
            ch, n3, ch_share = forwarder_at(pps, share, "dsrlb-change", f)
            if n3:
                tp, _, tp_share = forwarder_at(pps, share, "testpmd", f)
                print(f"During a change at {f} flows (a 17th target added by a reload: about 1/17 "
                      f"of the Maglev slots marked): dsrlb {ch:.2f} Mpps, {ratio(ch, tp):.2f} x the "
                      f"ceiling by rate, {ratio(ch_share, tp_share):.3f} by PMD share ({n3} runs).\n")
        for f in flows:
            v6, n4, v6_share = forwarder_at(pps, share, "dsrlb-ipv6", f)
            if n4:
                lb, _, lb_share = forwarder_at(pps, share, "dsrlb", f)
                tp, _, tp_share = forwarder_at(pps, share, "testpmd", f)
                print(f"IPv6 at {f} flows (the same flows as TCP over IPv6, 74-byte frames): dsrlb "
                      f"{v6:.2f} Mpps, {ratio(v6, lb):.2f} x its IPv4 rate, {ratio(v6_share, lb_share):.3f} "
                      f"by PMD share; {ratio(v6_share, tp_share):.3f} x the ceiling by PMD share ({n4} runs).\n")
        print("PMD share: the share of the forwarding core's perf samples spent in the pcap PMD,")
        print("which does the same work a frame for both; its ratio estimates dsrlb / ceiling")
        print("without the host's noise in the rates (assuming that work costs both the same).")
        print("ns a frame, from the median rates: the ceiling's time a frame, the time dsrlb takes")
        print("on top of it, and the most it may take on top to meet the issue's target there")
        print("(0.95x at 1 flow, 0.85x at 1M flows).\n")
        bar_svg("Packet rate per worker core, net_pcap replay (median Mpps)", [str(f) for f in flows],
                ["testpmd mac-fwd", "dsrlb"], values, "Mpps", out / "pps.svg")
        # dsrlb-floor's modes (bench/run.sh --floors), in the order they ran.
        floors = list(dict.fromkeys(k[0] for k in pps if k[0].startswith("floor-")))
        if floors:
            # dsrlb against the floor of its own design: packet path v2's work
            # (floor-checked), or in older results the connection table's.
            own = "floor-checked" if "floor-checked" in floors else "floor-table"
            print("## Floors: the least a balancer can do a frame (`dsrlb-floor`, same port and core)\n")
            print("| flows | " + " | ".join(f"{m} / ceiling" for m in floors)
                  + f" | dsrlb / ceiling | dsrlb / {own} |")
            print("|---:|" + "---:|" * (len(floors) + 2))
            for f in flows:
                at = {impl: forwarder_at(pps, share, impl, f)
                      for impl in floors + ["testpmd", "dsrlb"]}
                pairs = [(m, "testpmd") for m in floors] + [("dsrlb", "testpmd"), ("dsrlb", own)]
                cells = [f"{ratio(at[a][0], at[b][0]):.2f} / {ratio(at[a][2], at[b][2]):.3f}"
                         for a, b in pairs]
                print(f"| {f} | " + " | ".join(cells) + " |")
            print()
            print("Each cell: by rate / by PMD share. swap: every frame to one MAC (testpmd's work, the")
            print("tool's own overhead); maglev: CRC32C of addresses and ports and a 65537-entry lookup")
            print("table, no connection table; table: the same hash into a direct-mapped connection")
            print("table of 16-byte entries (twice the flows), key compared, burst prefetched; none of")
            print("these three checks the frame or counts anything. checked: packet path v2's work")
            print("for these frames written straight, with nothing else: the fast path's header")
            print("checks, the service, the hash, a 4-byte steering entry, the target usable, bare")
            print("SYNs recorded in `table`'s table (prefetched), the MAC rewrite, the target's")
            print("packet and byte counts.\n")
    lab = out / "lab.csv"
    if lab.exists():
        fwd = medians(lab, ["impl"], "forwarded_pps")
        drop = medians(lab, ["impl"], "drop_pct")
        # Older result directories have no such column: shown as "n/a".
        at_forwarder = medians(lab, ["impl"], "lost_at_forwarder_pct")
        with open(lab) as f:
            impls = list(dict.fromkeys(row["impl"] for row in csv.DictReader(f)))
        pen = fwd.get(("pen",), (float("nan"), 0))[0]
        print("## In the namespace lab (dsr-lb's data veth; generator in dsr-client)\n")
        print("| forwarder | forwarded pps at the targets | drops % | of which at the forwarder % "
              "| / testpmd, same driver | / Pen | runs |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        values = {}
        for impl in impls:
            # No figure (a rep too short for the generator's per-second rate): nan, not a crash.
            v, n = fwd.get((impl,), (float("nan"), 0))
            d, _ = drop.get((impl,), (float("nan"), 0))
            at = at_forwarder.get((impl,))
            at_text = f"{at[0]:.1f}" if at else "n/a"
            driver = impl.partition("/")[2]
            ceiling = fwd.get((f"testpmd/{driver}",), (float("nan"), 0))[0] if driver else float("nan")
            vs_ceiling = f"{v / ceiling:.2f}" if impl.startswith("dsrlb") else ""
            vs_pen = f"{v / pen:.2f}" if impl != "pen" else ""
            print(f"| {impl} | {v:,.0f} | {d:.1f} | {at_text} | {vs_ceiling} | {vs_pen} | {n} |")
            values[("forwarded", impl)] = v / 1e6
        print()
        print("At the forwarder: frames that reached dsr-lb's data0 (its receive counter) but were")
        print("not forwarded: the forwarder did not take them off its ring or socket in time. The")
        print("rest of the drops were lost before data0, in the generator or the switch.\n")
        bar_svg("Lab: forwarded packets per second at the targets (median, Mpps)", ["forwarded"],
                impls, values, "Mpps", out / "lab.svg")
    latency = out / "latency.csv"
    if latency.exists():
        print("## Latency through the forwarder (UDP round trips in the lab, microseconds)\n")
        with open(latency) as f:
            rows = list(csv.DictReader(f))
        # Results from before dsrlb-rtt have no direct round trips (and Python's times).
        direct = bool(rows) and "direct_p50_us" in rows[0]
        print("| forwarder | p50 | p99 | lost | direct to t1 p50 / p99 | the forwarder's hop adds at p50 |")
        print("|---|---:|---:|---:|---:|---:|")
        for row in rows:
            if direct:
                added = f"{float(row['p50_us']) - float(row['direct_p50_us']):.1f}"
                alone = f"{row['direct_p50_us']} / {row['direct_p99_us']}"
                # (direct_lost came a run after the direct columns)
                alone += f" ({row['direct_lost']} lost)" if row.get("direct_lost") else ""
            else:
                added = alone = "n/a"
            print(f"| {row['impl']} | {row['p50_us']} | {row['p99_us']} | {row['lost']} | {alone} | {added} |")
        if direct:
            print("\nClient and echo are dsrlb-rtt (compiled) on a shared 2-vCPU VM; direct: the same client to")
            print("t1's own address under the same forwarder, one hop (two veth crossings and the forwarder) shorter.\n")
        else:
            print("\nClient and echo are Python on a shared 2-vCPU VM: compare rows, do not read absolutes.\n")
    for name in ["micro.txt", "probe-schedule.txt"]:
        p = out / name
        if p.exists():
            print(f"## {name}\n\n```\n" + "\n".join(l for l in p.read_text().splitlines() if not l.startswith("json ")) + "\n```\n")


if __name__ == "__main__":
    main()
