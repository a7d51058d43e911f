// node_work.js — a Node.js (V8) workload for scenario node_workers: JIT-compiled code, a
// generational heap of small objects, worker threads with their own isolates, a
// SharedArrayBuffer written by every worker under Atomics, large Buffers, zlib and a
// WebAssembly memory (V8 reserves its guard region up front).  Prints only deterministic
// results, so a run under vmrun must print exactly what a native run prints.
'use strict';
const { Worker, isMainThread, parentPort, workerData } = require('worker_threads');
const zlib = require('zlib');
const MIB = Number(process.argv[2] || 64);

function churn(seed, n) {  // a Map of short-lived objects, rewritten and trimmed
  const m = new Map();
  let x = seed >>> 0, sum = 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const k = 'k' + (x % (n >> 1));
    const v = m.get(k);
    if (v) { sum = (sum + v.a.length + v.i) >>> 0; m.delete(k); }
    else m.set(k, { i, a: [x & 255, i, k] });
  }
  return (sum + m.size) >>> 0;
}

if (!isMainThread) {
  const { id, sab } = workerData;
  const shared = new Int32Array(sab);
  const r = churn(id + 1, 200000);
  for (let i = 0; i < 100000; i++) Atomics.add(shared, i % shared.length, id + 1);
  parentPort.postMessage(r);
} else {
  const out = [];
  out.push('churn ' + churn(7, 600000));
  // A live set of MIB MiB of Buffers touched in a fixed random order.
  const chunks = [];
  for (let i = 0; i < MIB; i++) chunks.push(Buffer.alloc(1 << 20, i & 255));
  let x = 1, s = 0;
  for (let i = 0; i < 200000; i++) {
    x = (Math.imul(x, 48271) % 2147483647) >>> 0;
    const b = chunks[x % MIB], o = (x >>> 5) % b.length;
    s = (s + b[o]) >>> 0; b[o] = (b[o] + 1) & 255;
  }
  out.push('buffers ' + s);
  const text = Buffer.from(JSON.stringify(Array.from({ length: 50000 }, (_, i) => ({ i, s: 'v' + i * 7 }))));
  const z = zlib.gzipSync(text, { level: 6 });
  out.push('zlib ' + text.length + ' ' + zlib.gunzipSync(z).equals(text));
  // WebAssembly: a module that sums a memory's bytes (hand-assembled).
  const wasm = new Uint8Array([0,97,115,109,1,0,0,0,1,6,1,96,1,127,1,127,3,2,1,0,5,3,1,0,1,7,13,
    2,3,109,101,109,2,0,3,115,117,109,0,0,10,40,1,38,1,2,127,2,64,3,64,32,1,32,0,78,13,1,32,2,32,
    1,45,0,0,106,33,2,32,1,65,1,106,33,1,12,0,11,11,32,2,11]);
  try {
    const inst = new WebAssembly.Instance(new WebAssembly.Module(wasm));
    const mem = new Uint8Array(inst.exports.mem.buffer);
    for (let i = 0; i < 65536; i++) mem[i] = i & 255;
    out.push('wasm ' + inst.exports.sum(65536));
  } catch (e) { out.push('wasm error ' + e.message); }
  const sab = new SharedArrayBuffer(4096 * 4);
  let done = 0, wsum = 0;
  for (let id = 0; id < 4; id++) {
    const w = new Worker(__filename, { workerData: { id, sab }, argv: [String(MIB)] });
    w.on('message', (r) => { wsum = (wsum + r) >>> 0; });
    w.on('exit', () => {
      if (++done < 4) return;
      const shared = new Int32Array(sab);
      let t = 0; for (let i = 0; i < shared.length; i++) t += shared[i];
      out.push('workers ' + wsum + ' shared ' + t);
      console.log(out.join('\n'));
    });
  }
}
