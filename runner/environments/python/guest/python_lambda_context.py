"""The invocation as the Python handler sees it, besides its event: the `context` argument
(LambdaContext, with Lambda's client_context and identity objects) and the environment
variables that name the invocation (_X_AMZN_TRACE_ID) and the version it runs.

Part of the Python bootstrap (python_bootstrap.py imports it from this folder, inside the
sandbox; stdlib only). The host sends the context fields in an invoke frame only when they
changed (docs/guest-protocol.md): `Contexts` keeps the last ones and makes each invocation's
context from them.
"""

import os
import time


class InPlaceVar:
    """An environment variable the bootstrap sets again and again (`_X_AMZN_TRACE_ID` for
    every invocation, the version's variables when the host sends another version's context)
    without growing the process.

    `os.environ[k] = v` ends in glibc's setenv(), which copies each distinct value into a
    table it never frees (so that pointers handed out by getenv stay valid): a new request id
    per invocation leaked ~100 bytes each, ~100 MB over a million warm invocations. Here the
    variable's C-level entry is one buffer of ours, placed in `environ` by putenv() (which
    stores the pointer, no copy) and rewritten in place; the `os.environ` mapping is updated
    directly so that os.environ and os.getenv agree with what child processes inherit.

    Safe because: the buffer lives as long as the process (a module global; a forked child
    gets its own copy at the same address), putenv() is called again on every set (a handler
    that assigned or deleted the variable itself has replaced or removed our pointer), and
    values longer than the buffer (or holding a NUL, which os.environ refuses) take the
    ordinary path.
    """

    def __init__(self, key, capacity):
        self.KEY = key
        self.CAPACITY = capacity  # bytes of value; a longer one takes the ordinary path
        self._buf = None
        env = os.environ
        if not all(hasattr(env, a) for a in ("_data", "encodekey", "encodevalue")):
            return  # not CPython's os._Environ: the ordinary path only
        try:
            import ctypes

            putenv = ctypes.CDLL(None).putenv
        except (ImportError, OSError, AttributeError):
            return
        putenv.argtypes = [ctypes.c_char_p]
        self._prefix = self.KEY.encode() + b"="
        self._buf = ctypes.create_string_buffer(len(self._prefix) + self.CAPACITY + 1)
        self._buf.raw = self._prefix + bytes(self.CAPACITY + 1)
        # Written through a memoryview: a slice assignment, not a foreign call per invocation.
        self._view = memoryview(self._buf).cast("B")
        self._putenv = putenv
        self._key = env.encodekey(self.KEY)

    def set(self, value):
        raw = os.environ.encodevalue(value) if self._buf is not None else b""
        if self._buf is None or len(raw) > self.CAPACITY or b"\0" in raw:
            os.environ[self.KEY] = value
            return
        start = len(self._prefix)
        self._view[start:start + len(raw) + 1] = raw + b"\0"
        self._putenv(self._buf)
        os.environ._data[self._key] = raw

    def clear(self):
        os.environ.pop(self.KEY, None)  # unsetenv() drops the pointer; nothing is freed or kept


# "Root=" + a request id, or a full X-Ray header.
trace_var = InPlaceVar("_X_AMZN_TRACE_ID", 256)
# Environments serve every version that shares their code ($LATEST and the versions published
# from it), so the variables naming the version follow the context the host sends.
_VERSION_VARS = ((InPlaceVar("AWS_LAMBDA_FUNCTION_VERSION", 32), "function_version"),
                 (InPlaceVar("AWS_LAMBDA_LOG_STREAM_NAME", 160), "log_stream_name"))


def _name_version(ctx):
    for var, field in _VERSION_VARS:
        value = ctx.get(field)
        if value and os.environ.get(var.KEY) != value:
            var.set(value)


class _Attrs:
    """An object with the attributes Lambda's Python runtime gives (None when absent)."""

    _FIELDS = ()

    def __init__(self, doc):
        doc = doc if isinstance(doc, dict) else {}
        for name in self._FIELDS:
            setattr(self, name, doc.get(name))

    def __repr__(self):
        return "%s(%s)" % (type(self).__name__, ", ".join(
            "%s=%r" % (n, getattr(self, n)) for n in self._FIELDS))


class _Client(_Attrs):
    _FIELDS = ("installation_id", "app_title", "app_version_name", "app_version_code",
               "app_package_name")


class _ClientContext(_Attrs):
    _FIELDS = ("client", "custom", "env")


class _CognitoIdentity(_Attrs):
    _FIELDS = ("cognito_identity_id", "cognito_identity_pool_id")

    def __init__(self, doc):
        doc = doc if isinstance(doc, dict) else {}
        self.cognito_identity_id = doc.get("cognitoIdentityId")
        self.cognito_identity_pool_id = doc.get("cognitoIdentityPoolId")


def _client_context(doc):
    """context.client_context as Lambda's runtime makes it: None, or an object with
    `client` (itself an object), `custom` and `env` from the X-Amz-Client-Context JSON."""
    if not isinstance(doc, dict):
        return None
    cc = _ClientContext(doc)
    if cc.client is not None:
        cc.client = _Client(cc.client)
    return cc


class LambdaContext:
    """The `context` argument, with the attributes of AWS Lambda's Python runtime."""

    def __init__(self, ctx, request_id):
        self.aws_request_id = request_id
        self.function_name = ctx.get("function_name", "")
        self.function_version = ctx.get("function_version", "$LATEST")
        self.invoked_function_arn = ctx.get("invoked_function_arn", "")
        self.memory_limit_in_mb = str(ctx.get("memory_limit_in_mb", ""))
        self.log_group_name = ctx.get("log_group_name", "")
        self.log_stream_name = ctx.get("log_stream_name", "")
        self.client_context = _client_context(ctx.get("client_context"))
        self.identity = _CognitoIdentity(ctx.get("identity"))
        self._deadline_ms = int(ctx.get("deadline_ms", 0))

    @classmethod
    def from_template(cls, template, request_id, deadline_ms):
        """A context with `template`'s fields (a LambdaContext made from the host's last
        context frame) for another invocation: copies attributes instead of parsing the map."""
        ctx = cls.__new__(cls)
        ctx.__dict__.update(template.__dict__)
        ctx.aws_request_id = request_id
        if deadline_ms is not None:
            ctx._deadline_ms = int(deadline_ms)
        return ctx

    def get_remaining_time_in_millis(self):
        return max(0, self._deadline_ms - int(time.time() * 1000))

    def __repr__(self):
        return "LambdaContext([aws_request_id=%s,function_name=%s,function_version=%s])" % (
            self.aws_request_id, self.function_name, self.function_version)


class Contexts:
    """The context fields the host sent last: an invoke frame carries `ctx` only when it
    changed since the previous frame (docs/guest-protocol.md), and its own `deadline_ms`."""

    template = None

    @classmethod
    def for_invoke(cls, msg, rid):
        ctx = msg.get("ctx")
        if ctx is not None or cls.template is None:
            cls.template = LambdaContext(ctx or {}, "")
            _name_version(ctx or {})
        return LambdaContext.from_template(cls.template, rid, msg.get("deadline_ms"))
