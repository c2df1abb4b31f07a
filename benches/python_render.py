"""The reference's PDF and XLSX rendering measured apart, for pages and rows per second.

Runs the functions of `python_burst.py` (the script a team writes instead of a report
engine) for every value of a burst field, one format at a time, writing to a folder, and
prints one JSON line per format: order rows per second, and for the PDFs pages per second. Pages are counted after the clock stops, from the PDFs' page trees.

    python python_render.py PYTHON_BURST_DIR SUPERSTORE_CSV FIELD OUT_DIR
"""
import json
import os
import re
import sys
import time
from collections import defaultdict


def pages(path):
    counts = re.findall(rb"/Count (\d+)", open(path, "rb").read())
    return max(int(c) for c in counts)


def main():
    reference_dir, data, field, out = sys.argv[1:]
    sys.path.insert(0, reference_dir)
    import python_burst

    rows = python_burst.load(data)
    groups = defaultdict(list)
    for r in rows:
        groups[r[field]].append(r)
    ordered = sorted(groups.items())
    for fmt, render in (("pdf", python_burst.render_pdf), ("xlsx", python_burst.render_xlsx)):
        start = time.perf_counter()
        for i, (key, part) in enumerate(ordered):
            render(key, part, os.path.join(out, f"{i:04d}.{fmt}"))
        seconds = time.perf_counter() - start
        line = {"bench": "python_render", "field": field, "format": fmt,
                "recipients": len(ordered), "seconds": seconds}
        line["rows"] = len(rows)
        line["rows_per_s"] = len(rows) / seconds
        if fmt == "pdf":
            line["pages"] = sum(pages(os.path.join(out, f"{i:04d}.pdf")) for i in range(len(ordered)))
            line["pages_per_s"] = line["pages"] / seconds
        print(json.dumps(line))


if __name__ == "__main__":
    main()
