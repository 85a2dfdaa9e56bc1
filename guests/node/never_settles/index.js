// Returns a promise that never settles: the invocation must end at the function's timeout.
exports.handler = () => new Promise(() => {});
