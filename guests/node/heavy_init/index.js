// A handler with a heavy init: module-level code builds a large lookup index (as a handler that
// loads a model, a dictionary or a big config would). One file, built-in modules only, so it
// can also be bundled into a V8 startup snapshot (docs/runtimes-nodejs.md).
const WORDS = Number(process.env.HEAVY_INIT_WORDS || 1000000);

function buildIndex(count) {
  // A deterministic pseudo-random word list (xorshift), then a prefix -> count index.
  let s = 0x9e3779b9;
  const letters = 'abcdefghijklmnopqrstuvwxyz';
  const index = new Map();
  for (let i = 0; i < count; i++) {
    let word = '';
    const len = 4 + (i % 7);
    for (let j = 0; j < len; j++) {
      s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
      word += letters[(s >>> 0) % 26];
    }
    for (let k = 1; k <= 3; k++) {
      const prefix = word.slice(0, k);
      index.set(prefix, (index.get(prefix) || 0) + 1);
    }
  }
  return index;
}

const started = Date.now();
const INDEX = buildIndex(WORDS);
const initMs = Date.now() - started;

exports.handler = async (event) => ({
  prefix: event.prefix || 'ab',
  count: INDEX.get(event.prefix || 'ab') || 0,
  entries: INDEX.size,
  initMs,
});
