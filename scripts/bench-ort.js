// bench-ort.js: ONNX Runtime's side of `make bench-ort` (scripts/bench-ort.sh).
// Run with NODE_PATH pointing at the node_modules holding onnxruntime-node.
//
//   node bench-ort.js run MODEL.onnx IN.npy THREADS RUNS OUTPREFIX
//       first writes IN.npy (seeded uniform values in [-1, 1), the model's
//       input shape) when it does not exist; runs 2 untimed warm-up runs and
//       RUNS timed runs with intra_op_num_threads = THREADS (sequential
//       execution, inter-op 1), writes output K to OUTPREFIX_K.npy and prints
//       one JSON line {"ms_median", "ms_min", "runs", "threads", "outputs"}.
//   node bench-ort.js profile MODEL.onnx THREADS RUNS OUTPREFIX
//       runs with ORT's profiler on (2 warm-ups, then RUNS runs; input:
//       seeded uniform values) and prints one JSON line per node, in graph
//       order: {"node", "op", "us"} with "us" the median of the node's
//       kernel time over the timed runs (ORT's node names after its graph
//       optimisations). ORT's own trace stays in PREFIX*.json.
//   node bench-ort.js diff A.npy B.npy
//       prints one JSON line {"max_abs_diff", "max_abs"} (B is the reference).
// Only float32 inputs and outputs of fixed shape; anything else is an error.
'use strict';
const fs = require('fs');

function die(msg) {
    process.stderr.write(`bench-ort.js: ${msg}\n`);
    process.exit(1);
}

// A model bench-ort cannot feed (not one float32 input of fixed shape):
// exit status 3, which bench-ort.sh reports as a skipped row.
function skip(msg) {
    process.stderr.write(`bench-ort.js: ${msg}\n`);
    process.exit(3);
}

function readNpy(path) {
    const buf = fs.readFileSync(path);
    if (buf.length < 10 || buf.toString('latin1', 0, 6) !== '\x93NUMPY')
        die(`${path}: not a .npy file`);
    const major = buf[6];
    const hlen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
    const hstart = major === 1 ? 10 : 12;
    const header = buf.toString('latin1', hstart, hstart + hlen);
    if (!/'descr':\s*'<f4'/.test(header) || /'fortran_order':\s*True/.test(header))
        die(`${path}: only little-endian float32 in C order is supported (header ${header.trim()})`);
    const m = header.match(/'shape':\s*\(([^)]*)\)/);
    if (!m)
        die(`${path}: no shape in header`);
    const dims = m[1].split(',').map((s) => s.trim()).filter((s) => s.length).map(Number);
    const n = dims.reduce((a, b) => a * b, 1);
    const off = hstart + hlen;
    if (buf.length - off !== n * 4)
        die(`${path}: ${buf.length - off} data bytes, shape [${dims}] needs ${n * 4}`);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++)
        data[i] = buf.readFloatLE(off + 4 * i);
    return { dims, data };
}

function writeNpy(path, dims, data) {
    const shape = dims.length === 1 ? `(${dims[0]},)` : `(${dims.join(', ')})`;
    let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shape}, }`;
    const pad = 64 - ((10 + header.length + 1) % 64);
    header += ' '.repeat(pad % 64) + '\n';
    const head = Buffer.alloc(10);
    head.write('\x93NUMPY', 0, 'latin1');
    head[6] = 1;
    head[7] = 0;
    head.writeUInt16LE(header.length, 8);
    const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    fs.writeFileSync(path, Buffer.concat([head, Buffer.from(header, 'latin1'), body]));
}

// xorshift64*: a seeded input that does not depend on Math.random.
function uniformInput(dims, seed) {
    const n = dims.reduce((a, b) => a * b, 1);
    const out = new Float32Array(n);
    let s = BigInt(seed) * 0x9e3779b97f4a7c15n + 1n;
    const mask = (1n << 64n) - 1n;
    for (let i = 0; i < n; i++) {
        s ^= s >> 12n;
        s ^= (s << 25n) & mask;
        s ^= s >> 27n;
        const r = (s * 0x2545f4914f6cdd1dn) & mask;
        out[i] = Number(r >> 40n) / 16777216 * 2 - 1;
    }
    return out;
}

function median(a) {
    const s = [...a].sort((x, y) => x - y);
    const h = s.length >> 1;
    return s.length % 2 ? s[h] : 0.5 * (s[h - 1] + s[h]);
}

async function run(model, inPath, threads, runs, outPrefix) {
    let ort;
    try {
        ort = require('onnxruntime-node');
    } catch (e) {
        die(`cannot load onnxruntime-node (NODE_PATH=${process.env.NODE_PATH || ''}): ${e.message}`);
    }
    const session = await ort.InferenceSession.create(model, {
        intraOpNumThreads: threads,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
    });
    if (session.inputNames.length !== 1)
        skip(`${model}: ${session.inputNames.length} inputs; bench-ort feeds one`);
    const meta = session.inputMetadata[0];
    if (!meta || meta.type !== 'float32' || !meta.shape.every((d) => typeof d === 'number' && d > 0))
        skip(`${model}: input '${session.inputNames[0]}' is not float32 of fixed shape`);
    if (!fs.existsSync(inPath))
        writeNpy(inPath, meta.shape, uniformInput(meta.shape, 1));
    const x = readNpy(inPath);
    if (x.dims.join('x') !== meta.shape.join('x'))
        die(`${inPath}: shape ${x.dims.join('x')}, model input is ${meta.shape.join('x')}`);
    const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', x.data, x.dims) };
    let res;
    for (let w = 0; w < 2; w++)
        res = await session.run(feeds);
    const times = [];
    for (let r = 0; r < runs; r++) {
        const t0 = process.hrtime.bigint();
        res = await session.run(feeds);
        times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    session.outputNames.forEach((name, k) => {
        const t = res[name];
        if (t.type !== 'float32')
            die(`${model}: output '${name}' is ${t.type}, not float32`);
        writeNpy(`${outPrefix}_${k}.npy`, t.dims, t.data);
    });
    console.log(JSON.stringify({
        ms_median: median(times), ms_min: Math.min(...times), runs, threads,
        outputs: session.outputNames.length,
    }));
}

async function profile(model, threads, runs, prefix) {
    let ort;
    try {
        ort = require('onnxruntime-node');
    } catch (e) {
        die(`cannot load onnxruntime-node (NODE_PATH=${process.env.NODE_PATH || ''}): ${e.message}`);
    }
    const session = await ort.InferenceSession.create(model, {
        intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential',
        graphOptimizationLevel: 'all', enableProfiling: true, profileFilePrefix: prefix,
    });
    const meta = session.inputMetadata[0];
    if (!meta || meta.type !== 'float32' || !meta.shape.every((d) => typeof d === 'number' && d > 0))
        die(`${model}: input is not float32 of fixed shape`);
    const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', uniformInput(meta.shape, 1), meta.shape) };
    for (let r = 0; r < runs + 2; r++)
        await session.run(feeds);
    session.endProfiling();
    const dir = require('path').dirname(prefix);
    const base = require('path').basename(prefix);
    const files = fs.readdirSync(dir).filter((f) => f.startsWith(base) && f.endsWith('.json'));
    if (files.length === 0)
        die(`${model}: ORT wrote no profile ${prefix}*.json`);
    const ev = JSON.parse(fs.readFileSync(`${dir}/${files[files.length - 1]}`, 'utf8'));
    const per = new Map();
    for (const e of ev) {
        if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time'))
            continue;
        const node = e.name.slice(0, -'_kernel_time'.length);
        if (!per.has(node))
            per.set(node, { op: e.args.op_name, us: [] });
        per.get(node).us.push(e.dur);
    }
    for (const [node, v] of per)
        console.log(JSON.stringify({ node, op: v.op, us: median(v.us.slice(2)) }));
}

function diff(a, b) {
    const x = readNpy(a), y = readNpy(b);
    if (x.dims.join('x') !== y.dims.join('x'))
        die(`${a} has shape ${x.dims.join('x')}, ${b} has ${y.dims.join('x')}`);
    let d = 0, m = 0;
    for (let i = 0; i < x.data.length; i++) {
        const e = Math.abs(x.data[i] - y.data[i]);
        d = e > d || Number.isNaN(e) ? e : d;
        m = Math.max(m, Math.abs(y.data[i]));
    }
    console.log(JSON.stringify({ max_abs_diff: d, max_abs: m }));
}

const [cmd, ...args] = process.argv.slice(2);
if (cmd === 'run' && args.length === 5) {
    const threads = Number(args[2]), runs = Number(args[3]);
    if (!(threads >= 1) || !(runs >= 1))
        die('THREADS and RUNS must be positive integers');
    run(args[0], args[1], threads, runs, args[4]).catch((e) => die(`${args[0]}: ${e.message}`));
} else if (cmd === 'profile' && args.length === 4) {
    profile(args[0], Number(args[1]), Number(args[2]), args[3]).catch((e) => die(`${args[0]}: ${e.message}`));
} else if (cmd === 'diff' && args.length === 2) {
    diff(args[0], args[1]);
} else {
    die('usage: bench-ort.js run MODEL.onnx IN.npy THREADS RUNS OUTPREFIX | profile MODEL.onnx THREADS RUNS OUTPREFIX | diff A.npy B.npy');
}
