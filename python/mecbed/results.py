"""Result files as records: results.csv / results.json of a sweep, or any
CSV mecbed writes (profiles, frames.csv), as a list of dicts."""

import csv
import json
import os


def parse_value(s):
    """A CSV field as Python: '' -> None, '12' -> 12, '1.5' / '1e-3' -> float,
    anything else unchanged (text)."""
    if s is None or s == "":
        return None
    try:
        return int(s)
    except ValueError:
        pass
    try:
        return float(s)
    except ValueError:
        return s


def _resolve(path):
    if os.path.isdir(path):
        for name in ("results.csv", "results.json"):
            p = os.path.join(path, name)
            if os.path.exists(p):
                return p
        raise FileNotFoundError("%s: no results.csv or results.json" % path)
    return path


def load_results(path, keep_text=("key", "plan_sig", "x", "x_unit", "link", "node_types", "variant", "policy",
                                  "cut_after", "note", "topology", "model", "experiment")):
    """Records from a sweep's output folder, its results.csv or results.json,
    or any mecbed CSV. Numbers become int/float and empty fields None, except
    the columns in keep_text, which stay text (an x of "18.88" is a label as
    much as a number; a plan signature is an identifier)."""
    path = _resolve(path)
    if path.endswith(".json"):
        with open(path) as f:
            data = json.load(f)
        rows = data["rows"] if isinstance(data, dict) and "rows" in data else data
        return [dict(r) for r in rows]
    with open(path, newline="") as f:
        out = []
        for row in csv.DictReader(f):
            out.append({k: (v if k in keep_text else parse_value(v)) for k, v in row.items()})
        return out


def to_dataframe(records):
    """A pandas DataFrame of the records (pandas is optional: ImportError with
    a hint when it is missing; Debian: apt-get install python3-pandas)."""
    try:
        import pandas
    except ImportError as e:
        raise ImportError("to_dataframe needs pandas (Debian: apt-get install python3-pandas); "
                          "the records themselves are plain dicts") from e
    return pandas.DataFrame.from_records(records)
