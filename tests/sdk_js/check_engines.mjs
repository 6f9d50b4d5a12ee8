// Fails when a package of package-lock.json does not admit Debian 12's Node.js
// (18.19.0) in its engines.node, so that a lock file bump cannot silently
// leave Debian's Node behind (AWS's SDK requires Node >= 20 from 2026
// on; package.json's overrides hold back what would follow them).
//
//   node tests/sdk_js/check_engines.mjs [NODE_VERSION]
//
// Reads only the lock file: it runs before `npm ci` as well as after.
import { readFileSync } from "node:fs";

const target = (process.argv[2] ?? "18.19.0").split(".").map(Number);
const lock = JSON.parse(readFileSync(new URL("./package-lock.json", import.meta.url)));

function compare(a, b) {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  return 0;
}

// Whether |v| meets one comparator of a range (">=18.0.0", ">= 6", "^4.1",
// "~1.2", "<20", "18.x", "*"); false, with a note, for one this check does not read.
function admits(comparator, v) {
  const m = /^(>=|<=|>|<|=|\^|~)?v?(\d+|x|\*)(?:\.(\d+|x|\*))?(?:\.(\d+|x|\*))?$/.exec(comparator);
  if (!m) {
    console.error(`check_engines: cannot read the range "${comparator}"`);
    return false;
  }
  const parts = [m[2], m[3], m[4]];
  let wild = parts.findIndex((p) => p === undefined || p === "x" || p === "*");
  const base = parts.map((p, i) => (wild !== -1 && i >= wild ? 0 : Number(p)));
  if (wild === -1) wild = 3;  // no wildcard: the whole version counts
  // The first version past everything |base| stands for, from part |i| up.
  const past = (i) => base.map((n, j) => (j < i ? n : j === i ? n + 1 : 0));
  const atLeast = (w) => compare(v, w) >= 0;
  const below = (w) => compare(v, w) < 0;
  switch (m[1]) {
    case ">=": return atLeast(base);
    case ">": return wild === 3 ? compare(v, base) > 0 : atLeast(past(wild - 1));
    case "<": return below(base);
    case "<=": return wild === 3 ? compare(v, base) <= 0 : below(past(wild - 1));
    case "^": return atLeast(base) && below(past(Math.min(base[0] ? 0 : base[1] ? 1 : 2, wild - 1)));
    case "~": return atLeast(base) && below(past(Math.max(0, Math.min(1, wild - 1))));
    default: return wild === 0 || (atLeast(base) && (wild === 3 ? compare(v, base) === 0 : below(past(wild - 1))));
  }
}

// A whole range: "A B" all hold, "X || Y" either does.
function satisfies(range, v) {
  return range.split("||").some((alternative) => {
    const comparators = alternative.trim().replace(/(>=|<=|>|<|=|\^|~)\s+/g, "$1").split(/\s+/);
    return comparators.every((c) => c === "" || admits(c, v));
  });
}

const bad = [];
let checked = 0;
for (const [path, entry] of Object.entries(lock.packages)) {
  const range = entry.engines?.node;
  if (!range) continue;
  checked++;
  if (!satisfies(range, target)) bad.push(`${path || "(root)"}@${entry.version}: engines.node "${range}"`);
}
if (bad.length) {
  console.error(`check_engines: packages of the lock file that refuse Node ${target.join(".")}:`);
  for (const line of bad) console.error(`  ${line}`);
  console.error('hold them back with "overrides" in tests/sdk_js/package.json (see its README.md)');
  process.exit(1);
}
console.log(`check_engines: all ${checked} engines.node ranges of the lock file admit Node ${target.join(".")}`);
