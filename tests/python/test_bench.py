"""kiln bench: the JSON report, the Chrome trace, and the errors for inputs it cannot shape.

Environment: KILN_BIN, KILN_MODELS, KILN_TMP.
"""
import json
import unittest

import kiln_test_util as u


class Bench(u.KilnTestCase):
    def test_json_and_profile(self):
        res = self.kiln_ok("bench", self.model("srcnn.onnx"), "--iterations", "3", "--warmup", "1", "--threads", "1",
                           "--json", self.out("b.json"), "--profile", self.out("p.json"))
        self.assertIn("latency (ms)", res.stdout)
        self.assertIn("session created in", res.stdout)
        with open(self.out("b.json")) as f:
            j = json.load(f)
        for key in ("median_ms", "p90_ms", "p99_ms", "mean_ms", "min_ms", "iterations", "session_ms", "first_run_ms",
                    "peak_rss_mb"):
            self.assertIn(key, j)
        self.assertGreater(j["first_run_ms"], 0)
        self.assertIn("first run", res.stdout)
        self.assertEqual(j["iterations"], 3)
        self.assertTrue(0 < j["min_ms"] <= j["median_ms"] <= j["p90_ms"] <= j["p99_ms"])
        self.assertGreater(j["peak_rss_mb"], 1)
        with open(self.out("p.json")) as f:
            trace = json.load(f)
        runs = [e for e in trace if e["name"] == "model_run"]
        self.assertEqual(len(runs), 4)  # warm-up + timed runs
        self.assertTrue(all(e["ph"] == "X" and e["dur"] >= 0 for e in trace))
        nodes = [e for e in trace if e["cat"] == "node"]
        self.assertEqual(len(nodes) % 4, 0)  # the same spans in every run
        # At the default level (all) Conv + Relu run as one node, in the channel-blocked layout.
        self.assertIn("NchwcConv", {e["args"]["op"] for e in nodes})
        self.assertNotIn("Relu", {e["args"]["op"] for e in nodes})
        # --opt-level extended stops before the layout pass.
        self.kiln_ok("bench", self.model("srcnn.onnx"), "--iterations", "1", "--warmup", "0", "--opt-level", "extended",
                     "--profile", self.out("p2.json"))
        with open(self.out("p2.json")) as f:
            ops = {e["args"]["op"] for e in json.load(f) if e["cat"] == "node"}
        self.assertEqual(ops, {"Resize", "Conv", "FusedConv"})
        res = self.kiln("bench", self.model("srcnn.onnx"), "--opt-level", "fast", expect=[1, 2])
        self.assertIn("unknown optimization level 'fast'", res.stderr)

    def test_unwritable_json_leaves_nothing(self):
        target = self.out("no_such_dir/b.json")
        res = self.kiln("bench", self.model("srcnn.onnx"), "--iterations", "1", "--warmup", "0", "--json", target,
                        expect=2)
        self.assertIn("cannot write", res.stderr)
        import os
        self.assertFalse(os.path.exists(target))

    def test_dynamic_inputs_need_a_shape(self):
        res = self.kiln("bench", self.model("dynamic_conv.onnx"), "--iterations", "1", expect=2)
        self.assertIn("give its dims with --shape", res.stderr)
        name = res.stderr.split("input '")[1].split("'")[0]
        self.kiln_ok("bench", self.model("dynamic_conv.onnx"), "--iterations", "2", "--warmup", "0", "--shape",
                     name + "=1x3x16x16")
        res = self.kiln("bench", self.model("dynamic_conv.onnx"), "--shape", name + "=1x3xbad", expect=[1, 2])
        self.assertIn("must be dims separated by 'x'", res.stderr)
        res = self.kiln("bench", self.model("dynamic_conv.onnx"), "--shape", "nosuch=1x2", expect=2)
        self.assertIn("'nosuch' is not an input of the model", res.stderr)


if __name__ == "__main__":
    unittest.main()
