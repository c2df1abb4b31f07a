"""An independent QVD reader and writer for the tests of the QVD source, built on PyQvd.

    qvd_reference.py dump FILE.qvd   prints the table as one JSON object on stdout
    qvd_reference.py write FILE.qvd  writes a sample table with nulls, dates, times,
                                     timestamps, intervals, money, mixed and unicode values

The dump is {"columns": [...], "rows": [[cell, ...], ...]} where a cell is null, ["n", bits]
for a number, ["s", text] for a text or ["d", bits, text] for a dual; bits is the number's
IEEE 754 bit pattern as an unsigned integer, so the comparison is exact.
"""

import datetime as dt
import json
import struct
import sys
from decimal import Decimal

from pyqvd import QvdTable
from pyqvd.qvd import (
    DoubleValue,
    DualDoubleValue,
    DualIntegerValue,
    IntegerValue,
    StringValue,
)


def bits(number):
    return struct.unpack("<Q", struct.pack("<d", float(number)))[0]


def cell(value):
    if value is None:
        return None
    if isinstance(value, (DualIntegerValue, DualDoubleValue)):
        return ["d", bits(value.calculation_value), value.display_value]
    if isinstance(value, (IntegerValue, DoubleValue)):
        return ["n", bits(value.calculation_value)]
    if isinstance(value, StringValue):
        return ["s", value.calculation_value]
    raise TypeError(f"unexpected value type {type(value).__name__}")


def dump(path):
    table = QvdTable.from_qvd(path)
    rows = [[cell(v) for v in row] for row in table.data]
    json.dump({"columns": table.columns, "rows": rows}, sys.stdout, ensure_ascii=False)


def write(path):
    columns = [
        "id", "amount", "label", "day", "moment", "clock", "duration", "price", "mixed",
        "nothing",
    ]
    data = []
    for i in range(300):
        day = dt.date(1899, 12, 30) + dt.timedelta(days=40000 + i * 37)
        data.append([
            i - 100,
            None if i % 7 == 0 else i * 0.25 - 3.5,
            None if i % 11 == 0 else f"Zürich {i % 13} ✓",
            None if i % 5 == 0 else day,
            dt.datetime(2020, 1, 1, 8, 30) + dt.timedelta(hours=i * 5, seconds=i),
            dt.time(i % 24, (i * 7) % 60, (i * 13) % 60),
            dt.timedelta(days=i % 3, hours=i % 24, minutes=i % 60),
            Decimal(i * 125) / Decimal(100),
            str(i) if i % 2 else i,
            None,
        ])
    QvdTable.from_dict({"columns": columns, "data": data}).to_qvd(path)


def main():
    command, path = sys.argv[1], sys.argv[2]
    {"dump": dump, "write": write}[command](path)


if __name__ == "__main__":
    main()
