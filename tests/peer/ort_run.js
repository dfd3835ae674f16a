// Runs a model with ONNX Runtime (npm onnxruntime-node, CPU) for reference outputs and side-by-side numbers.
//   node ort_run.js MODEL OUT_DIR NAME=FILE.npy ...
// Writes OUT_DIR/<output name with '/' and ':' as '_'>.npy for every output.
const fs = require('fs');
const path = require('path');
const ort = require(process.env.KILN_ORT_MODULE || 'onnxruntime-node');

const DTYPES = {'<f4': ['float32', Float32Array], '<f2': ['float16', Uint16Array], '<f8': ['float64', Float64Array],
                '<i8': ['int64', BigInt64Array],
                '<i4': ['int32', Int32Array], '|u1': ['uint8', Uint8Array], '|i1': ['int8', Int8Array],
                '|b1': ['bool', Uint8Array]};

function readNpy(file) {
  const buf = fs.readFileSync(file);
  const major = buf[6];
  const hlen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', start, start + hlen);
  const descr = /'descr':\s*'([^']+)'/.exec(header)[1];
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)[1].split(',').map(s => s.trim()).filter(s => s).map(Number);
  const [type, Ctor] = DTYPES[descr];
  const data = buf.subarray(start + hlen);
  const copy = new Uint8Array(data.length);
  copy.set(data);
  let arr = new Ctor(copy.buffer, 0, data.length / Ctor.BYTES_PER_ELEMENT);
  if (type === 'bool') arr = Uint8Array.from(arr);
  return new ort.Tensor(type, arr, shape);
}

function writeNpy(file, tensor) {
  const descr = Object.keys(DTYPES).find(k => DTYPES[k][0] === tensor.type);
  const dims = tensor.dims;
  const shape = dims.length === 1 ? `(${dims[0]},)` : `(${dims.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  header += ' '.repeat((64 - ((10 + header.length + 1) % 64)) % 64) + '\n';
  const pre = Buffer.alloc(10);
  pre.write('\x93NUMPY', 0, 'latin1');
  pre[6] = 1; pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  const data = Buffer.from(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
  fs.writeFileSync(file, Buffer.concat([pre, Buffer.from(header, 'latin1'), data]));
}

(async () => {
  const [model, outDir, ...specs] = process.argv.slice(2);
  const session = await ort.InferenceSession.create(model, {graphOptimizationLevel: 'all', intraOpNumThreads: 2});
  const feeds = {};
  for (const s of specs) {
    const eq = s.indexOf('=');
    feeds[s.slice(0, eq)] = readNpy(s.slice(eq + 1));
  }
  const results = await session.run(feeds);
  fs.mkdirSync(outDir, {recursive: true});
  for (const name of session.outputNames) {
    writeNpy(path.join(outDir, name.replace(/[/:]/g, '_') + '.npy'), results[name]);
  }
})().catch(e => { console.error('ort_run: ' + e.message); process.exit(1); });
