// The smallest Lambda-style Node handler: CommonJS, async.
exports.handler = async (event, context) => {
  console.log('hello from', context.functionName);
  return { message: `hello ${(event && event.name) || 'world'}` };
};
