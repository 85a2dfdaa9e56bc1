// Throws synchronously from the handler: the error comes back as Lambda's error document.
exports.handler = (event) => {
  throw new TypeError(`bad input: ${JSON.stringify(event)}`);
};
