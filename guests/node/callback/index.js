// Callback style: (event, context, callback); callback(err) fails, callback(null, result) succeeds.
exports.handler = (event, context, callback) => {
  if (event && event.fail) {
    callback(new Error(`callback failure: ${event.fail}`));
    return;
  }
  // Answer from a later tick, as real callback-style code does (after some I/O).
  setTimeout(() => callback(null, { style: 'callback', doubled: (event.n || 0) * 2 }), 1);
};
