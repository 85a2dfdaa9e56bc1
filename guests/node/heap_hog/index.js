// Allocates live objects until V8's heap limit: the runtime reports out of memory.
const keep = [];
exports.handler = async (event) => {
  for (;;) {
    keep.push(new Array(100000).fill(event.fill || 1.5));
  }
};
