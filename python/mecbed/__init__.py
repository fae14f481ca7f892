"""mecbed from Python: a thin layer over the mecbed command line.

Every function runs the ``mecbed`` binary with ``--json`` (or reads the files
a sweep writes) and returns plain Python data: dicts, lists of dicts
("records", one per row, numbers as int/float, empty fields as None), ready
for ``pandas.DataFrame(records)``. Nothing is compiled; the standard library
is enough; pandas is used only by :func:`to_dataframe`.

    import mecbed
    p = mecbed.plan("resnet18", "mincut", link="rate=20mbit,rtt=20ms")
    p["pred"]["latency_ms"]
    rows = mecbed.compare("vgg16", link="rtt=40ms", rates=[5.85, 18.88, 50])
    res = mecbed.sweep("experiments/bandwidth.conf", quick=True)
    res.records[0]["latency_ms"]

The binary: $MECBED (a path), else ``build/mecbed`` of the source tree this
package sits in, else ``mecbed`` on $PATH (see :func:`binary`).
"""

from .cli import MecbedError, binary, call, call_json, options_to_args
from .api import compare, infer, models, plan, policies, run, sweep, SweepResult
from .results import load_results, to_dataframe, parse_value

__all__ = [
    "MecbedError", "binary", "call", "call_json", "options_to_args",
    "compare", "infer", "models", "plan", "policies", "run", "sweep", "SweepResult",
    "load_results", "to_dataframe", "parse_value",
]
__version__ = "0.1.0"
