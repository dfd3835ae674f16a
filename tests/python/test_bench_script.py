"""bench/bench.py, the side-by-side benchmark against ONNX Runtime: one short run on SRCNN, and its servers.

Environment: KILN_BIN, KILN_TMP, KILN_ORT_DIR, KILN_PYTHONPATH (the build's Python module).
"""
import json
import os
import subprocess
import sys
import unittest

import kiln_test_util as u

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SRCNN = os.path.join(ROOT, "examples", "srcnn", "srcnn.onnx")


class BenchScript(u.KilnTestCase):
    def test_python_api_bench_reports_the_three_ways(self):
        build = os.path.dirname(os.environ["KILN_PYTHONPATH"])
        res = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "python_api.py"), "--build", build, "--only",
                              "tiny", "--rounds", "3", "--block", "3"], capture_output=True, text=True, timeout=300)
        self.assertEqual(res.returncode, 0, res.stderr)
        # "tiny (Relu, 1x1000)", then way, median ms, ratio to run, allocations and KiB per run
        rows = [line.split() for line in res.stdout.splitlines() if line.startswith("tiny")]
        self.assertEqual([r[3] for r in rows], ["run", "run_with_ort_values", "run_with_iobinding"], res.stdout)
        self.assertEqual(float(rows[0][5]), 1.0)  # run's ratio to itself
        allocs = [float(r[6]) for r in rows]
        self.assertEqual(allocs, [1.0, 1.0, 0.0], res.stdout)  # the output each run allocates; none when bound

    def test_short_run_prints_a_row(self):
        u.ort_env()  # skips without the peer
        build = os.path.dirname(os.environ["KILN_ORT_DIR"])
        res = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "bench.py"), "--build", build, "--only",
                              "srcnn", "--rounds", "2", "--processes", "1", "--iterations", "1", "--warmup", "1",
                              "--block-ms", "1"], capture_output=True, text=True, timeout=600)
        self.assertEqual(res.returncode, 0, res.stderr)
        lines = res.stdout.strip().splitlines()
        # The CPU and its ISA flags head the table (kiln's kernels depend on them).
        self.assertTrue(lines[0].startswith("cpu: "), res.stdout)
        self.assertTrue(lines[1].startswith("isa: "), res.stdout)
        lines = [line for line in lines[2:] if not line.startswith("KILN_MAX_ISA=")]
        self.assertEqual(len(lines), 2, res.stdout)
        self.assertIn("middle half", lines[0])
        cols = lines[1].split()
        # model name (3 words), kiln ms, ORT ms, ratio, middle half, sessions, first runs, peak RSS
        kiln_ms, ort_ms, ratio = float(cols[3]), float(cols[4]), float(cols[5])
        lo, hi = (float(v) for v in cols[6].split("-"))
        self.assertGreater(kiln_ms, 0)
        self.assertGreater(ort_ms, 0)
        self.assertTrue(lo <= ratio <= hi, lines[1])
        self.assertGreater(float(cols[7]), 0)   # kiln session ms
        self.assertGreater(float(cols[9]), 0)   # kiln first run ms
        self.assertGreater(float(cols[12]), 1)  # kiln peak MiB
        self.assertIn("plan load", lines[0])
        self.assertEqual(len(cols), 16, lines[1])  # and the plan's load, first run and peak MiB
        self.assertGreater(float(cols[13]), 0)
        self.assertGreater(float(cols[14]), 0)
        self.assertGreater(float(cols[15]), 1)

    def serve(self, cmd, env):
        p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env)
        first = json.loads(p.stdout.readline())
        self.assertGreater(first["session_ms"], 0)
        p.stdin.write("3 1\n")
        p.stdin.flush()
        lat = json.loads(p.stdout.readline())["lat"]
        p.stdin.close()
        self.assertEqual(p.wait(timeout=60), 0)
        self.assertEqual(len(lat), 3)
        self.assertTrue(all(v > 0 for v in lat))

    def test_servers_answer_blocks(self):
        env = dict(u.ort_env(), KILN_PYTHON_DIR=os.environ.get("KILN_PYTHONPATH", ""))
        self.serve([sys.executable, os.path.join(ROOT, "bench", "kiln_serve.py"), SRCNN, "1"], env)
        self.serve(["node", os.path.join(ROOT, "bench", "ort_bench.js"), SRCNN, "1", "serve", "0"], env)

    def test_kiln_server_needs_shapes_for_symbolic_dims(self):
        env = dict(os.environ, KILN_PYTHON_DIR=os.environ.get("KILN_PYTHONPATH", ""))
        res = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "kiln_serve.py"),
                              os.path.join(ROOT, "examples", "srcnn", "srcnn_dynamic.onnx"), "1"],
                             capture_output=True, text=True, env=env, timeout=60)
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("needs a shape", res.stderr)


if __name__ == "__main__":
    unittest.main()
