"""Day files in the real format (gzip CSV ``user,text``) written by tests."""

import csv
import gzip
import io

import numpy as np


def chinese_texts(n, seed=0, length=12):
    """``n`` distinct texts of random common CJK characters."""
    rng = np.random.default_rng(seed)
    return [f"第{i}条" + "".join(chr(0x4E00 + int(c)) for c in rng.integers(0, 3000, length)) for i in range(n)]


def csv_row(user, text):
    line = io.StringIO()
    csv.writer(line, lineterminator="\n").writerow([user, text])
    return line.getvalue().encode("utf-8")


def write_day_file(path, rows):
    """A gzip (``*.gz``) or plain CSV day file: the header, then each row: a text (user ``u1``) or raw bytes."""
    data = b"user,text\n" + b"".join(row if isinstance(row, bytes) else csv_row("u1", row) for row in rows)
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path
