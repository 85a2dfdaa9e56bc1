// An async handler that awaits real asynchronous work, and rejects on request.
const { setTimeout: sleep } = require('timers/promises');

exports.handler = async (event) => {
  await sleep(event.sleepMs || 1);
  if (event.reject) {
    throw new RangeError(`rejected: ${event.reject}`);
  }
  return { style: 'async', slept: event.sleepMs || 1 };
};
