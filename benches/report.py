"""Turns the JSON lines of benches/run into BENCHMARKS.md and the cost-curve chart (SVG)."""
import json
import math
import os
import platform
import statistics
import subprocess
import sys
from datetime import datetime, timezone

TARGET_RATIO = 30


def machine():
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    except OSError:
        pass
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    return (f"{os.cpu_count()} cores ({cpu}), {memory} memory, Linux {platform.release()}; "
            f"{rustc}; Python {platform.python_version()}")


def svg_chart(points, path):
    """Two panels over the recipients (log scale): run time and peak memory."""
    width, height, pad = 360, 240, 48
    xs = [p["recipients"] for p in points]
    lo, hi = math.log10(min(xs)), math.log10(max(xs))

    def x_of(n):
        return pad + (math.log10(n) - lo) / max(hi - lo, 1e-9) * (width - 2 * pad)

    parts = []
    panels = [("seconds", "Run time (s, log scale)", True), ("peak_mb", "Peak memory (MB)", False)]
    for i, (key, label, log) in enumerate(panels):
        ox = i * (width + 20)
        ys = [p[key] for p in points]
        if log:
            y_lo = math.floor(math.log10(min(ys)))
            y_hi = math.ceil(math.log10(max(ys)))
            ticks = [10 ** e for e in range(y_lo, y_hi + 1)]

            def y_of(v, y_lo=y_lo, y_hi=y_hi):
                return height - pad - (math.log10(v) - y_lo) / max(y_hi - y_lo, 1e-9) * (height - 2 * pad)
        else:
            top = max(500.0, max(ys) * 1.1)
            ticks = [0, top / 4, top / 2, 3 * top / 4, top]

            def y_of(v, top=top):
                return height - pad - v / top * (height - 2 * pad)
        parts.append(f'<g transform="translate({ox},0)">')
        parts.append(f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="13">{label}</text>')
        parts.append(f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="#444"/>')
        parts.append(f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="#444"/>')
        for t in ticks:
            y = y_of(t)
            text = f"{t:g}" if log else f"{t:.0f}"
            parts.append(f'<line x1="{pad - 4}" y1="{y:.1f}" x2="{width - pad}" y2="{y:.1f}" stroke="#ddd"/>')
            parts.append(f'<text x="{pad - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="10">{text}</text>')
        for n in xs:
            parts.append(f'<text x="{x_of(n):.1f}" y="{height - pad + 14}" text-anchor="middle" font-size="10">{n:,}</text>')
        parts.append(f'<text x="{width / 2}" y="{height - 10}" text-anchor="middle" font-size="11">recipients (log scale)</text>')
        if not log:
            y = y_of(500)
            parts.append(f'<line x1="{pad}" y1="{y:.1f}" x2="{width - pad}" y2="{y:.1f}" stroke="#c00" stroke-dasharray="4 3"/>')
            parts.append(f'<text x="{width - pad}" y="{y - 4:.1f}" text-anchor="end" font-size="10" fill="#c00">500 MB target</text>')
        line = " ".join(f"{x_of(p['recipients']):.1f},{y_of(p[key]):.1f}" for p in points)
        parts.append(f'<polyline points="{line}" fill="none" stroke="#1f5fbf" stroke-width="2"/>')
        for p in points:
            parts.append(f'<circle cx="{x_of(p["recipients"]):.1f}" cy="{y_of(p[key]):.1f}" r="3" fill="#1f5fbf"/>')
        parts.append("</g>")
    total = 2 * width + 20
    with open(path, "w") as f:
        f.write(f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="{height}" '
                f'viewBox="0 0 {total} {height}" font-family="sans-serif">'
                f'<rect width="100%" height="100%" fill="white"/>{"".join(parts)}</svg>\n')


def main():
    results_path, markdown_path, svg_path = sys.argv[1:]
    rows = [json.loads(line) for line in open(results_path) if line.strip().startswith("{")]
    by = lambda bench, **kw: [r for r in rows if r["bench"] == bench and all(r.get(k) == v for k, v in kw.items())]

    out = ["# Benchmarks", ""]
    out.append(f"Measured {datetime.now(timezone.utc):%Y-%m-%d} on {machine()}.")
    out.append("")
    out.append("Reproduce with `benches/run` (`ROUNDS=5 benches/run` for more rounds). It builds the "
               "benchmarks in release mode, alternates each burst with the Python reference "
               "(`../shared/bench/python_burst.py`, reportlab + xlsxwriter, in a virtual environment "
               "it makes) in the same run, and writes this page and `benches/cost-curve.svg`. "
               "Both write their files to memory (`/dev/shm`); see the notes below.")
    out.append("")

    out.append("## Bursts against the reference")
    out.append("")
    out.append("Superstore orders (9,994 rows), a PDF (title, KPI line, order table with repeated "
               "header, grand total, page X of Y) and an XLSX (typed cells, number formats, totals "
               "row) per recipient, written to a folder. A PDF and an XLSX count as two reports. "
               "Medians of the rounds; the ratio is the median of the per-round ratios, each round "
               "running the reference and then mad one after the other.")
    out.append("")
    out.append("| Burst | Recipients | Python reports/s | mad reports/s | Ratio | Target | mad peak MB | Python peak MB |")
    out.append("|---|---|---|---|---|---|---|---|")
    for field in ["State", "Customer Name"]:
        ref, ours = by("python_burst", field=field), by("burst", field=field)
        if not ref or not ours:
            continue
        ratios = [o["reports_per_s"] / r["reports_per_s"] for r, o in zip(ref, ours)]
        ratio = statistics.median(ratios)
        out.append(
            f"| {field} | {ours[0]['recipients']:,} | {statistics.median(r['reports_per_s'] for r in ref):,.1f} "
            f"| {statistics.median(o['reports_per_s'] for o in ours):,.0f} | {ratio:.1f}× "
            f"(rounds: {', '.join(f'{x:.1f}' for x in ratios)}) | {TARGET_RATIO}× {'met' if ratio >= TARGET_RATIO else 'missed'} "
            f"| {max(o['peak_mb'] for o in ours):.0f} | {max(r['peak_mb'] for r in ref):.0f} |")
    out.append("")

    apart = [(fmt, by("python_render", format=fmt), by("render", format=fmt)) for fmt in ("pdf", "xlsx")]
    if all(ref and ours for _, ref, ours in apart):
        out.append("## PDF pages and XLSX rows per second against the reference")
        out.append("")
        out.append("Each format made alone for the State burst (49 reports, 9,994 order rows): the "
                   "reference's own `render_pdf` and `render_xlsx` functions one after the other "
                   "(`benches/python_render.py`, one process, one core), and mad's engine with one "
                   "format (all cores), both writing to memory. Pages are counted from the PDFs' "
                   "page trees after the clock stops; mad's tables use a larger font with wrapped "
                   "cells, so its PDFs have more pages for the same rows, and order rows per second "
                   "is the fairer figure. Medians of the rounds.")
        out.append("")
        out.append("| Format | Python pages | mad pages | Python pages/s | mad pages/s | Python rows/s | mad rows/s | Rows/s ratio |")
        out.append("|---|---|---|---|---|---|---|---|")
        for fmt, ref, ours in apart:
            med = lambda rs, k: statistics.median(r[k] for r in rs)
            pages = lambda rs: f"{rs[0]['pages']:,}" if "pages" in rs[0] else "–"
            rate = lambda rs: f"{med(rs, 'pages_per_s'):,.0f}" if "pages_per_s" in rs[0] else "–"
            ratios = [o["rows_per_s"] / r["rows_per_s"] for r, o in zip(ref, ours)]
            out.append(f"| {fmt.upper()} | {pages(ref)} | {pages(ours)} | {rate(ref)} | {rate(ours)} "
                       f"| {med(ref, 'rows_per_s'):,.0f} | {med(ours, 'rows_per_s'):,.0f} "
                       f"| {statistics.median(ratios):.1f}× (rounds: {', '.join(f'{x:.1f}' for x in ratios)}) |")
        out.append("")

    scale = sorted(by("scale"), key=lambda r: r["recipients"])
    if scale:
        out.append("## Scale: the flights table")
        out.append("")
        out.append("336,776 flights loaded from CSV; each recipient sees one carrier at one airport on "
                   "one day (carrier × origin × month × day), a PDF and an XLSX each. The load is "
                   "outside the run time; peak memory is the whole process's, table included.")
        out.append("")
        out.append("| Recipients | Fetches (distinct filter sets) | Documents | Run time s | Reports/s | Peak MB |")
        out.append("|---|---|---|---|---|---|")
        for r in scale:
            out.append(f"| {r['recipients']:,} | {r['fetches']:,} | {r['documents']:,} | {r['seconds']:.2f} "
                       f"| {r['reports_per_s']:,.0f} | {r['peak_mb']:.0f} |")
        out.append("")
        svg_chart(scale, svg_path)
        out.append(f"![Cost curve: run time and peak memory by recipients]({os.path.relpath(svg_path, os.path.dirname(markdown_path) or '.')})")
        out.append("")
        if len(scale) >= 2:
            a, b = scale[-2], scale[-1]
            growth = (b["seconds"] / a["seconds"]) / (b["recipients"] / a["recipients"])
            out.append(f"From {a['recipients']:,} to {b['recipients']:,} recipients the run time grows "
                       f"{b['seconds'] / a['seconds']:.1f}× for {b['recipients'] / a['recipients']:.0f}× the "
                       f"recipients ({growth:.2f} of linear); peak memory goes from {a['peak_mb']:.0f} MB "
                       f"to {b['peak_mb']:.0f} MB.")
            out.append("")

    qlik = by("qlik_burst")
    if qlik:
        q = qlik[-1]
        out.append("## Through Qlik: the engine double")
        out.append("")
        out.append("The State burst with the Superstore orders served by the Qlik engine double over "
                   "TLS on localhost: each State is a selection, verified, then the hypercube is paged.")
        out.append("")
        out.append("| Recipients | Fetches (one per filter set) | Selections | Layouts + data pages | Rows fetched | Rows/s per fetch | Rows/s over the run | Reports/s | Peak MB |")
        out.append("|---|---|---|---|---|---|---|---|---|")
        out.append(f"| {q['recipients']} | {q['fetches']} | {q['selections']} | {q['layouts']} + {q['hypercube_pages']} | {q['rows_fetched']:,} "
                   f"| {q['rows_per_s_fetching']:,.0f} | {q['rows_per_s']:,.0f} | {q['reports_per_s']:,.0f} | {q['peak_mb']:.0f} |")
        out.append("")
        out.append("The first page of each hypercube comes with its layout; only slices larger than "
                   "that page need GetHyperCubeData requests.")
        out.append("")

    fetch = by("qlik_fetch")
    if fetch:
        f = fetch[-1]
        out.append("## A 100,000-row fetch from the engine double")
        out.append("")
        out.append(f"{f['rows']:,} rows × {f['columns']} columns fetched through the `qlik` source from "
                   "the engine double over TLS on localhost, paged within the engine's 10,000-cell "
                   f"limit ({f['pages']} data pages per fetch). The double runs in the same process, so "
                   "the peak includes its copy of the data; the peak before the first fetch is given "
                   "beside it.")
        out.append("")
        out.append("| Rows/s | Peak MB | Peak MB before fetching |")
        out.append("|---|---|---|")
        out.append(f"| {f['rows_per_s']:,.0f} | {f['peak_mb']:.0f} | {f['before_mb']:.0f} |")
        out.append("")

    big = by("big_pdf") + by("big_xlsx") + by("big_xlsx_streaming")
    if big:
        out.append("## Big single reports")
        out.append("")
        out.append("One report of 100,000 rows of the flights table. Growth is the peak resident memory "
                   "above what the process held just before rendering (the table loaded); the bound "
                   "the benchmark asserts is the output's size plus 30 MB, so memory does not grow "
                   "with the rows beyond the document itself.")
        out.append("")
        out.append("| Report | Rows | Seconds | Size MB | Growth MB | Bound MB | Peak MB (process) |")
        out.append("|---|---|---|---|---|---|---|")
        for r in big:
            name = {"big_pdf": f"PDF, {r.get('pages', 0):,} pages",
                    "big_xlsx": f"XLSX with charts (rust_xlsxwriter), {r.get('columns', 0)} columns",
                    "big_xlsx_streaming": f"XLSX, streaming writer, {r.get('columns', 0)} columns"}[r["bench"]]
            bound = r["size_mb"] + 30
            out.append(f"| {name} | {r['rows']:,} | {r['seconds']:.2f} | {r['size_mb']:.1f} "
                       f"| {r['growth_mb']:.1f} | {bound:.0f}: {'met' if r['growth_mb'] < bound else 'missed'} "
                       f"| {r['peak_mb']:.0f} |")
        out.append("")

    notes = os.path.join(os.path.dirname(os.path.abspath(__file__)), "NOTES.md")
    if os.path.exists(notes):
        out.append(open(notes).read().rstrip())
        out.append("")
    with open(markdown_path, "w") as f:
        f.write("\n".join(out))


if __name__ == "__main__":
    main()
