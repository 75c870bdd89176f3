// bench/probes/sql-lone-calls: per lone transaction, the native (addon) calls and the VFS
// callbacks SQLite makes: walnut/sql one-row INSERTs (1 caller, prepared statement) against
// raw walnut store.commit of 2 pages. Deterministic counts (no timing): load-independent.
//   node bench/probes/sql-lone-calls.js [sql|raw]   (DIST=<dist/> for another build; DIR, N)
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const D = path.resolve(process.env.DIST || path.join(__dirname, '../../dist'));
const N = Number(process.env.N || 1000);
const MODE = process.argv[2] || 'sql';

// the addon as dist/native.js will load it (node-gyp-build caches the module): every method wrapped
const addon = require(path.join(D, '../node_modules/node-gyp-build'))(path.resolve(D, '..'));
const calls = new Map();
let counting = false;
const count = (name) => counting && calls.set(name, (calls.get(name) ?? 0) + 1);
// (napi methods are read-only on their prototypes: instances are proxied instead, and a proxy
// passed back to the addon is replaced by its object)
const real = new WeakMap();
const unproxy = (args) => args.map((a) => (a !== null && typeof a === 'object' && real.has(a) ? real.get(a) : a));
const counted = (f, name) => function (...args) { count(name); return f.apply(real.get(this) ?? this, unproxy(args)); };
const instance = (obj, cls) => {
  if (obj === null || typeof obj !== 'object' || real.has(obj)) return obj;
  const methods = new Map();
  const p = new Proxy(obj, {
    get(t, k) {
      const v = Reflect.get(t, k, t);
      if (typeof v !== 'function' || typeof k !== 'string') return v;
      if (!methods.has(k)) methods.set(k, counted(v, `${cls}.${k}`));
      return methods.get(k);
    },
  });
  real.set(p, obj);
  return p;
};
for (const [k, v] of Object.entries(addon)) {
  if (k === 'setErrorClass') continue;
  if (typeof v === 'function' && v.prototype && Object.getOwnPropertyNames(v.prototype).length > 1) {
    const cls = function (...args) { return instance(Reflect.construct(v, unproxy(args)), k); };
    cls.prototype = v.prototype; // (instanceof still holds)
    for (const m of Object.getOwnPropertyNames(v)) {
      const g = v[m];
      if (typeof g !== 'function' || m === 'prototype') continue;
      cls[m] = function (...args) { count(`${k}.${m}`); const r = g.apply(v, unproxy(args)); return r instanceof Promise ? r.then((x) => instance(x, k)) : instance(r, k); };
    }
    addon[k] = cls;
  } else if (typeof v === 'function') addon[k] = counted(v, k);
  else if (v && typeof v === 'object') for (const [m, g] of Object.entries(v)) if (typeof g === 'function') v[m] = counted(g, `${k}.${m}`);
}

(async () => {
  const base = fs.mkdtempSync(path.join(process.env.DIR || '/dev/shm', 'walnut-lone-calls-'));
  let one;
  let vfsCalls = null;
  if (MODE === 'sql') {
    const { openDatabase } = require(path.join(D, 'sql.js'));
    const db = await openDatabase(path.join(base, 's.db'));
    await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)');
    const ins = await db.prepare('INSERT INTO t(v) VALUES (?)');
    const row = 'x'.repeat(100);
    one = () => ins.run([row]);
  } else {
    const { open } = require(path.join(D, 'index.js'));
    const { newDatabasePage1 } = require(path.join(D, 'format/db-header.js'));
    const store = await open(path.join(base, 'r.db'));
    const page = Buffer.alloc(store.pageSize, 7);
    const p1 = Buffer.from(newDatabasePage1(store.pageSize));
    let k = 0;
    one = () => store.commit([{ pgno: 1, data: p1 }, { pgno: 2 + (k++ % 5000), data: page }]);
  }
  for (let i = 0; i < 500; i++) await one();
  counting = true;
  for (let i = 0; i < N; i++) await one();
  counting = false;
  const total = [...calls.values()].reduce((a, b) => a + b, 0);
  console.log(`${MODE}: ${(total / N).toFixed(2)} native calls per transaction (${N} after 500)`);
  for (const [k, v] of [...calls].sort((a, b) => b[1] - a[1])) console.log(`  ${(v / N).toFixed(3).padStart(7)} ${k}`);
  fs.rmSync(base, { recursive: true, force: true });
  process.exit(0);
})();
