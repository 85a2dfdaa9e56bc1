// Returns the event and every context field a handler can read, for tests of the context.
exports.handler = async (event, context) => ({
  event,
  context: {
    functionName: context.functionName,
    functionVersion: context.functionVersion,
    invokedFunctionArn: context.invokedFunctionArn,
    memoryLimitInMB: context.memoryLimitInMB,
    awsRequestId: context.awsRequestId,
    logGroupName: context.logGroupName,
    logStreamName: context.logStreamName,
    remainingMs: context.getRemainingTimeInMillis(),
    callbackWaitsForEmptyEventLoop: context.callbackWaitsForEmptyEventLoop,
  },
  env: {
    taskRoot: process.env.LAMBDA_TASK_ROOT,
    handler: process.env._HANDLER,
    nodeOptions: process.env.NODE_OPTIONS === undefined ? null : process.env.NODE_OPTIONS,
    extraCaCerts: process.env.NODE_EXTRA_CA_CERTS === undefined ? null : process.env.NODE_EXTRA_CA_CERTS,
    runnerFd: process.env._RUNNER_FD === undefined ? null : process.env._RUNNER_FD,
  },
  cwd: process.cwd(),
});
