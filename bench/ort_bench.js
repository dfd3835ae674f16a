// ONNX Runtime's side of bench.py: the same measurements as `kiln bench --json`, with the same random-input
// convention (uniform [0, 1) floats, small integers), printed as one JSON line.
//   node ort_bench.js MODEL THREADS ITERATIONS WARMUP [NAME=1x3x224x224 ...]
// With ITERATIONS "serve" it is bench.py's ORT side of the interleaved latency measurement instead: after
// {"session_ms": ...} it answers each line "N W" on stdin with {"lat": [N latencies in ms]}: W untimed runs,
// then N timed ones.
const ort = require(process.env.KILN_ORT_MODULE || 'onnxruntime-node');

async function main() {
  const [model, threads, iterations, warmup, ...shapeSpecs] = process.argv.slice(2);
  const shapes = {};
  for (const s of shapeSpecs) {
    const [name, dims] = s.split('=');
    shapes[name] = dims.split('x').map(Number);
  }
  const t0 = process.hrtime.bigint();
  const session = await ort.InferenceSession.create(model, {
    graphOptimizationLevel: 'all', intraOpNumThreads: Number(threads), interOpNumThreads: 1,
    executionMode: 'sequential'});
  const sessionMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const feeds = {};
  for (const name of session.inputNames) {
    const meta = session.inputMetadata.find(m => m.name === name);
    const dims = shapes[name] || meta.shape;
    if (dims.some(d => typeof d !== 'number')) throw new Error(`input ${name} needs a shape`);
    const n = dims.reduce((a, b) => a * b, 1);
    const type = meta.type || 'float32';
    let data;
    if (type === 'float32') data = Float32Array.from({length: n}, () => Math.random());
    // float16: values in [0.5, 1) (bits 0x3800 to 0x3bff), random bits rather than rounded floats.
    else if (type === 'float16') data = Uint16Array.from({length: n}, () => 0x3800 + Math.floor(Math.random() * 1024));
    else if (type === 'int64') data = BigInt64Array.from({length: n}, () => BigInt(Math.floor(Math.random() * 4)));
    else if (type === 'int32') data = Int32Array.from({length: n}, () => Math.floor(Math.random() * 4));
    else throw new Error(`input ${name}: no data for ${type}`);
    feeds[name] = new ort.Tensor(type, data, dims);
  }
  if (iterations === 'serve') return serve(session, feeds, sessionMs);
  let peak = process.memoryUsage().rss;
  let firstRunMs = 0;
  for (let i = 0; i < Number(warmup); ++i) {
    const t = process.hrtime.bigint();
    await session.run(feeds);
    if (i === 0) firstRunMs = Number(process.hrtime.bigint() - t) / 1e6;
  }
  const lat = [];
  for (let i = 0; i < Number(iterations); ++i) {
    const t = process.hrtime.bigint();
    await session.run(feeds);
    lat.push(Number(process.hrtime.bigint() - t) / 1e6);
    peak = Math.max(peak, process.memoryUsage().rss);
  }
  if (Number(warmup) === 0) firstRunMs = lat[0];
  const sorted = [...lat].sort((a, b) => a - b);
  const pct = p => { const pos = p * (sorted.length - 1), lo = Math.floor(pos), hi = Math.min(lo + 1, sorted.length - 1);
                     return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo); };
  console.log(JSON.stringify({median_ms: pct(0.5), p90_ms: pct(0.9), p99_ms: pct(0.99),
                              mean_ms: lat.reduce((a, b) => a + b, 0) / lat.length, min_ms: sorted[0],
                              iterations: lat.length, session_ms: sessionMs, first_run_ms: firstRunMs, peak_rss_mb: peak / (1 << 20)}));
}
async function serve(session, feeds, sessionMs) {
  console.log(JSON.stringify({session_ms: sessionMs}));
  const lines = require('readline').createInterface({input: process.stdin});
  for await (const line of lines) {
    const [n, warmup] = line.split(' ').map(Number);
    for (let i = 0; i < warmup; ++i) await session.run(feeds);
    const lat = [];
    for (let i = 0; i < n; ++i) {
      const t = process.hrtime.bigint();
      await session.run(feeds);
      lat.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    console.log(JSON.stringify({lat}));
  }
}

main().catch(e => { console.error(e.message); process.exit(1); });
