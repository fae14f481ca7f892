"""The Python package against the built binary ($MECBED, set by
tests/cli_python.sh): every function returns what the command computes."""

import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import mecbed  # noqa: E402

LINK = "rate=20mbit,rtt=20ms"


class Options(unittest.TestCase):
    def test_options_to_args(self):
        self.assertEqual(mecbed.options_to_args(device_type="rpi4", verify=True, json=False, out=None),
                         ["--device-type", "rpi4", "--verify"])
        self.assertEqual(mecbed.options_to_args(policy_plugin=["a.so", "b"]),
                         ["--policy-plugin", "a.so", "--policy-plugin", "b"])
        self.assertEqual(mecbed.options_to_args(policy_opt={"frac": 0.25, "server": "edge0"}),
                         ["--policy-opt", "frac=0.25,server=edge0"])

    def test_parse_value(self):
        self.assertEqual(mecbed.parse_value(""), None)
        self.assertEqual(mecbed.parse_value("12"), 12)
        self.assertEqual(mecbed.parse_value("1e-3"), 0.001)
        self.assertEqual(mecbed.parse_value("features.4"), "features.4")

    def test_binary_from_env(self):
        self.assertEqual(mecbed.binary(), os.environ["MECBED"])
        old = os.environ["MECBED"]
        os.environ["MECBED"] = "/nonexistent/mecbed"
        try:
            with self.assertRaises(mecbed.MecbedError):
                mecbed.binary()
        finally:
            os.environ["MECBED"] = old


class Commands(unittest.TestCase):
    def test_policies(self):
        p = mecbed.policies()
        names = {x["name"]: x for x in p["policies"]}
        for b in ("local", "mincut", "oplevel", "dds"):
            self.assertEqual(names[b]["kind"], "builtin")
        self.assertEqual(names["half"]["kind"], "plugin")
        frac = [o for o in names["half"]["options"] if o["name"] == "frac"][0]
        self.assertEqual((frac["type"], frac["default"]), ("number", "0.5"))

    def test_models(self):
        m = {r["name"]: r for r in mecbed.models()}
        self.assertEqual(m["resnet50"]["ops"], 175)

    def test_plan_matches_cli(self):
        p = mecbed.plan("alexnet", "mincut", link=LINK)
        self.assertEqual(p["policy"], "mincut")
        raw = json.loads(subprocess.run([os.environ["MECBED"], "plan", "--model", "alexnet", "--policy",
                                         "mincut", "--link", LINK, "--json"], capture_output=True,
                                        text=True, check=True).stdout)
        self.assertAlmostEqual(p["pred"]["latency_ms"], raw["pred"]["latency_ms"], places=6)
        self.assertEqual(p["pred"]["bytes_up"], raw["pred"]["bytes_up"])

    def test_plan_plugin_options_and_errors(self):
        p = mecbed.plan("alexnet", "half", link=LINK, policy_opts={"frac": 1})
        self.assertEqual(p["pred"]["bytes_up"], 0)  # everything on the device
        with self.assertRaises(mecbed.MecbedError) as e:
            mecbed.plan("alexnet", "half", link=LINK, policy_opts="fracc=0.2")
        self.assertIn("unknown option 'fracc' (it takes: frac, server)", str(e.exception))
        self.assertEqual(e.exception.returncode, 1)
        with self.assertRaises(ValueError):
            mecbed.plan("alexnet", "local")

    def test_plan_verify(self):
        p = mecbed.plan("alexnet", "mincut", link=LINK, verify=True)
        self.assertTrue(p["verify"]["ok"])

    def test_compare_rates(self):
        rows = mecbed.compare("alexnet", link="rtt=20ms", policies=["local", "mincut"], rates=[1, 100])
        self.assertEqual(len(rows), 4)
        by = {(r["policy"], r["rate_mbps"]): r for r in rows}
        self.assertLessEqual(by[("mincut", 100)]["latency_ms"], by[("local", 100)]["latency_ms"] + 1e-9)
        self.assertEqual(by[("local", 1)]["bytes_sent"], 0)


class Sweeps(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="mecbed-py-")

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def test_sweep_records(self):
        conf = os.path.join(self.tmp, "e.conf")
        with open(conf, "w") as f:
            f.write("[sweep]\nname = py\nmode = plan\nmodels = alexnet\n"
                    "policies = local mincut half:frac=0.5\nx = 2 50\nlinks = rate={x}mbit,rtt=20ms\n")
        res = mecbed.sweep(conf, out=os.path.join(self.tmp, "out"))
        self.assertEqual(res.summary["points"], 6)
        self.assertEqual(res.summary["ok"], 6)
        recs = res.records
        self.assertEqual(len(recs), 6)
        self.assertIsInstance(recs[0]["latency_ms"], float)
        self.assertIsInstance(recs[0]["ops"], int)
        self.assertIsInstance(recs[0]["x"], str)
        self.assertIsNone(recs[0]["measured_ms"])  # plan mode: empty
        with open(res.file("results.csv"), newline="") as f:
            raw = list(csv.DictReader(f))
        for r, c in zip(recs, raw):
            self.assertEqual(r["policy"], c["policy"])
            self.assertAlmostEqual(r["latency_ms"], float(c["latency_ms"]))
        # results.json carries the same rows
        js = mecbed.load_results(res.file("results.json"))
        self.assertEqual([r["policy"] for r in js], [r["policy"] for r in recs])
        self.assertAlmostEqual(js[1]["latency_ms"], recs[1]["latency_ms"], places=5)

    def test_sweep_error(self):
        conf = os.path.join(self.tmp, "bad.conf")
        with open(conf, "w") as f:
            f.write("[sweep]\nname = py\nmodels = alexnet\npolicies = nosuch\nlinks = rate=1mbit\n")
        with self.assertRaises(mecbed.MecbedError) as e:
            mecbed.sweep(conf, out=os.path.join(self.tmp, "o"))
        self.assertIn("unknown policy 'nosuch'", str(e.exception))

    def test_dataframe(self):
        try:
            import pandas  # noqa: F401
        except ImportError:
            with self.assertRaises(ImportError):
                mecbed.to_dataframe([{"a": 1}])
            self.skipTest("pandas not installed (optional)")
        df = mecbed.to_dataframe([{"a": 1, "b": None}, {"a": 2, "b": 3.5}])
        self.assertEqual(list(df["a"]), [1, 2])


if __name__ == "__main__":
    unittest.main()
