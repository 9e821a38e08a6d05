// mtan-bench's ONNX Runtime peer: onnxruntime-node in its own process, which
// times its own runs in blocks so that mtan-bench can interleave them with
// its in-process engines without an IPC round trip inside a timed run.
//
//   node ort_peer.js            (mtan-bench starts it; one JSON request per
//                                line on stdin, one JSON reply per line on
//                                stdout; ORT's own log goes to stderr)
//
// Sessions: intra-op threads as asked (mtan-bench's --threads), one inter-op
// thread, sequential execution, graph optimization level "all", denormals
// flushed to zero (session.set_denormal_as_zero, which ORT applies to the
// thread that creates the first session: this process's only thread).
//
// A timed run is what a Node.js caller pays for one inference: a new
// ort.Tensor over the input rows, then the run, then reading the output's
// data. api "session": the public `await session.run(feeds)` (onnxruntime-
// common's checks, a setImmediate turn, the binding's run); api "binding":
// the binding's synchronous run that session.run calls (no event-loop turn).
//
// Requests ({"cmd": ...}) and replies ({"ok": true, ...} or {"ok": false,
// "error": "..."}):
//   hello                                  -> versions
//   open {key, path, threads, width, inspect?} -> load_us; with inspect (a path
//        prefix): a second, untimed session writes ORT's optimized graph to
//        <inspect>.optimized.onnx and profiles one run; the reply's kernels
//        counts the nodes of that run by the operator ORT ran (QGemm, ...).
//   input {key, rows (base64 float32), batch}
//   check {key}                            -> out (base64 float32 [batch, width])
//   time {key, n}                          -> us: n run times in microseconds
// Sessions live until the process ends (mtan-bench closes its input).
'use strict';

const fs = require('fs');
const path = require('path');
const readline = require('readline');

let ort, binding, initOrt;
try {
  ort = require('onnxruntime-node');
  ({ binding, initOrt } = require('onnxruntime-node/dist/binding'));
} catch (e) {
  process.stdout.write(JSON.stringify({
    ok: false,
    error: `cannot load onnxruntime-node (${e.message.split('\n')[0]}); install it with ` +
        'tools/setup.sh (ONNXRUNTIME_NODE_INSTALL=skip npm ci in tools/bench/onnx)',
  }) + '\n');
  process.exit(1);
}

const api = process.argv.includes('--api=session') ? 'session' : 'binding';
const sessions = new Map();

function options(threads, extra) {
  return Object.assign({
    executionProviders: ['cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
    extra: { session: { set_denormal_as_zero: '1' } },
  }, extra);
}

// A public session, or the binding's (whose run is synchronous): both load
// the file with the same options.
async function createSession(file, opts) {
  if (api === 'session') return { pub: await ort.InferenceSession.create(file, opts) };
  initOrt();
  const s = new binding.InferenceSession();
  s.loadModel(file, opts);
  return { raw: s, input: s.inputMetadata[0].name, output: s.outputMetadata[0].name };
}

function inputName(s) { return s.pub ? s.pub.inputNames[0] : s.input; }
function outputName(s) { return s.pub ? s.pub.outputNames[0] : s.output; }

// One inference as a caller makes it: the output's Float32Array, or (api
// "session") a promise of it. The binding's run stays synchronous: no
// promise, no microtask turn.
function runOnce(s, data, dims) {
  const feeds = { [inputName(s)]: new ort.Tensor('float32', data, dims) };
  if (s.pub) return s.pub.run(feeds).then((out) => out[outputName(s)].data);
  return s.raw.run(feeds, { [outputName(s)]: null }, {})[outputName(s)].data;
}

// Kernels of one profiled run: nodes per operator ORT executed.
async function inspect(file, threads, prefix, width) {
  const s = await createSession(file, options(threads, {
    optimizedModelFilePath: prefix + '.optimized.onnx',
    enableProfiling: true,
    profileFilePrefix: prefix + '.profile',
  }));
  await runOnce(s, new Float32Array(width), [1, width]);
  if (s.pub) await s.pub.endProfiling(); else s.raw.endProfiling();
  const dir = path.dirname(prefix), base = path.basename(prefix) + '.profile';
  const files = fs.readdirSync(dir).filter((f) => f.startsWith(base) && f.endsWith('.json'));
  if (files.length === 0) throw new Error(`ORT wrote no profile ${prefix}.profile*.json`);
  const events = JSON.parse(fs.readFileSync(path.join(dir, files.sort().pop()), 'utf8'));
  const nodes = new Map();
  for (const e of events) {
    if (e.cat === 'Node' && e.name.endsWith('_kernel_time') && e.args && e.args.op_name)
      nodes.set(e.name, e.args.op_name);
  }
  const kernels = {};
  for (const op of nodes.values()) kernels[op] = (kernels[op] || 0) + 1;
  if (s.pub) await s.pub.release(); else s.raw.dispose();
  return kernels;
}

function session(key) {
  const s = sessions.get(key);
  if (!s) throw new Error(`no session '${key}' (open it first)`);
  return s;
}

async function handle(req) {
  switch (req.cmd) {
    case 'hello':
      return { ort: ort.env.versions.node, node: process.version, api };
    case 'open': {
      if (sessions.has(req.key)) throw new Error(`session '${req.key}' is open already`);
      const t0 = process.hrtime.bigint();
      const s = await createSession(req.path, options(req.threads || 1));
      const load_us = Number(process.hrtime.bigint() - t0) / 1e3;
      s.width = req.width;
      const reply = { load_us };
      if (req.inspect) reply.kernels = await inspect(req.path, req.threads || 1, req.inspect, req.width);
      sessions.set(req.key, s);
      return reply;
    }
    case 'input': {
      const s = session(req.key);
      const buf = Buffer.from(req.rows, 'base64');
      if (buf.length !== 4 * req.batch * s.width)
        throw new Error(`input: ${buf.length} bytes for ${req.batch} rows of ${s.width} floats`);
      // A copy of its own, aligned for Float32Array.
      s.data = new Float32Array(new Uint8Array(buf).buffer);
      s.dims = [req.batch, s.width];
      return {};
    }
    case 'check': {
      const s = session(req.key);
      if (!s.data) throw new Error(`session '${req.key}' has no input`);
      const y = await runOnce(s, s.data, s.dims);
      return { out: Buffer.from(y.buffer, y.byteOffset, y.byteLength).toString('base64') };
    }
    case 'time': {
      const s = session(req.key);
      if (!s.data) throw new Error(`session '${req.key}' has no input`);
      const us = new Array(req.n);
      if (s.pub) {
        for (let i = 0; i < req.n; ++i) {
          const t0 = process.hrtime.bigint();
          await runOnce(s, s.data, s.dims);
          us[i] = Number(process.hrtime.bigint() - t0) / 1e3;
        }
      } else {
        for (let i = 0; i < req.n; ++i) {
          const t0 = process.hrtime.bigint();
          runOnce(s, s.data, s.dims);
          us[i] = Number(process.hrtime.bigint() - t0) / 1e3;
        }
      }
      return { us };
    }
    default:
      throw new Error(`unknown request '${req.cmd}'`);
  }
}

async function main() {
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of rl) {
    if (line.trim() === '') continue;
    let reply;
    try {
      reply = Object.assign({ ok: true }, await handle(JSON.parse(line)));
    } catch (e) {
      reply = { ok: false, error: String(e && e.message ? e.message : e).split('\n')[0] };
    }
    process.stdout.write(JSON.stringify(reply) + '\n');
  }
}

main();
