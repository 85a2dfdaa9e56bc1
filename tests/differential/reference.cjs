// Runs state machines with aws-local-stepfunctions (the reference implementation) and judges
// definitions with asl-validator. Reads {"run": [{definition, input}], "validate": [definition]}
// on stdin; writes {"run": [{status, output | error, cause}], "validate": [bool]} on stdout.
// Task states run the same local handlers as the Python side (handlers.json describes them;
// tests/differential/handlers.py implements the same in Python).
"use strict";

// aws-local-stepfunctions targets Node 22; Node 20 lacks Promise.withResolvers.
if (!Promise.withResolvers) {
  Promise.withResolvers = function () {
    let resolve, reject;
    const promise = new Promise((res, rej) => { resolve = res; reject = rej; });
    return { promise, resolve, reject };
  };
}

const { StateMachine } = require("aws-local-stepfunctions");
const aslValidator = require("asl-validator");

class HandlerError extends Error {
  constructor(name, message) { super(message); this.name = name; }
}

// The same handlers as handlers.py, keyed by function name.
const HANDLERS = {
  echo: (x) => x,
  double: (x) => ({ ...x, v: x.v * 2 }),
  inc: (x) => ({ ...x, v: (x.v || 0) + 1 }),
  fail: (x) => { throw new HandlerError(x.errorType || "CustomError", x.message || "it failed"); },
  len: (x) => (Array.isArray(x) ? x.length : Object.keys(x).length),
};

function functionName(state) {
  const res = state.Resource;
  if (res === "arn:aws:states:::lambda:invoke") return null;
  const text = res.includes(":function:") ? res.split(":function:")[1] : res;
  return text.split(":")[0];
}

function collectTasks(machine, out) {
  for (const [name, state] of Object.entries(machine.States || {})) {
    if (state.Type === "Task") out[name] = functionName(state);
    for (const b of state.Branches || []) collectTasks(b, out);
    if (state.ItemProcessor) collectTasks(state.ItemProcessor, out);
    if (state.Iterator) collectTasks(state.Iterator, out);
  }
  return out;
}

function zeroes(machine, key, out) {
  for (const [name, state] of Object.entries(machine.States || {})) {
    if (key === "wait" && state.Type === "Wait") out[name] = 0;
    if (key === "retry" && state.Retry) out[name] = 0;
    for (const b of state.Branches || []) zeroes(b, key, out);
    if (state.ItemProcessor) zeroes(state.ItemProcessor, key, out);
  }
  return out;
}

async function runOne({ definition, input }) {
  const tasks = collectTasks(definition, {});
  const local = {};
  for (const [state, fn] of Object.entries(tasks)) {
    local[state] = async (x) => HANDLERS[fn](x);
  }
  try {
    const sm = new StateMachine(definition, { validationOptions: { checkArn: false } });
    const exec = sm.run(input, {
      overrides: {
        taskResourceLocalHandlers: local,
        waitTimeOverrides: zeroes(definition, "wait", {}),
        retryIntervalOverrides: zeroes(definition, "retry", {}),
      },
    });
    const output = await exec.result;
    return { status: "SUCCEEDED", output };
  } catch (e) {
    const cause = e.cause || e;
    return { status: "FAILED", error: cause.name, cause: cause.message };
  }
}

async function main() {
  let text = "";
  for await (const chunk of process.stdin) text += chunk;
  const req = JSON.parse(text);
  const run = [];
  for (const c of req.run || []) run.push(await runOne(c));
  const validate = (req.validate || []).map((d) => {
    try { return aslValidator(d).isValid; } catch (e) { return false; }
  });
  process.stdout.write(JSON.stringify({ run, validate }));
}

main().catch((e) => { console.error(e); process.exit(1); });
