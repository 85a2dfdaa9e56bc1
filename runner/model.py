"""The data every layer shares: function configuration and immutable versions, with their limits.

Nothing here does I/O. Validation lives with the data so that the CLI, the gRPC edge and the
embedding API reject bad input with the same message before anything is stored.
"""

from __future__ import annotations

import contextvars
import re
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

from runner.errors import InvalidParameter, ValidationError
from runner.network_policy import parse_network_policy

# Limits, as AWS Lambda documents them (units in the names).
MEMORY_MB_MIN = 128
MEMORY_MB_MAX = 10240
TIMEOUT_S_MIN = 1
TIMEOUT_S_MAX = 900
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024  # synchronous invoke, request and response
MAX_STREAMED_RESPONSE_BYTES = 200 * 1024 * 1024  # InvokeWithResponseStream's response (075)
MAX_ENV_BYTES = 4 * 1024  # total size of a function's environment variables
DEFAULT_MEMORY_MB = 128
DEFAULT_TIMEOUT_S = 3.0
DEFAULT_CONCURRENCY = 10
MAX_CONCURRENCY = 1000
DEFAULT_EPHEMERAL_MB = 512
MB = 1024 * 1024  # Lambda's "MB" of memory is a mebibyte
MB_PER_VCPU = 1769  # Lambda allots one full vCPU at 1,769 MB, proportionally below
# Asynchronous invocation (Lambda's event-invoke config limits).
DEFAULT_MAX_RETRIES = 2
MAX_RETRIES_MAX = 2
DEFAULT_MAX_EVENT_AGE_S = 21600  # six hours
MAX_EVENT_AGE_S_MIN = 60
DEFAULT_DLQ = "dlq"  # on_failure target meaning the runner's own dead-letter store

LATEST = "$LATEST"

# Lambda accepts these runtime identifiers; ours map onto three runtimes.
RUNTIME_ALIASES = {
    "python": "python",
    "python3": "python",
    "python3.11": "python",
    "python3.12": "python",
    "python3.13": "python",
    "nodejs": "nodejs",
    "node": "nodejs",
    "nodejs18.x": "nodejs",
    "nodejs20.x": "nodejs",
    "nodejs22.x": "nodejs",
    "wasm": "wasm",
    "wasi": "wasm",
}
RUNTIMES = ("python", "nodejs", "wasm")
# The identifiers the Lambda API shows (Runtime) for each of ours; the first is the default.
LAMBDA_RUNTIME_IDS = {
    "python3.12": "python", "python3.11": "python", "python3.13": "python",
    "nodejs20.x": "nodejs", "nodejs18.x": "nodejs", "nodejs22.x": "nodejs",
}
MAX_LAYERS = 5  # Lambda's limit of layers per function

_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_ENV_KEY_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
# Lambda's own rule for Handler (its API's pattern): what the runtime makes of the name
# (Runtime.MalformedHandlerName, ImportModuleError, ...) is reported at invoke, as on Lambda
# (issue 20: `dir/module.fn`, extensionless Node files and the like are valid handlers).
_LAMBDA_HANDLER_RE = re.compile(r"^[^\s]{1,128}$")
# Reserved by the platform (Lambda reserves the same names).
RESERVED_ENV = frozenset(
    {
        "_HANDLER", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR",
    }
)
# The execution role's credentials: Lambda reserves these too, so that a function cannot be
# configured with long-lived keys where the platform puts short-lived ones. Functions stored
# before they were reserved here load unchanged (FunctionConfig.from_dict); a deploy or update
# that keeps them is refused, with the fix in the message.
RESERVED_CREDENTIAL_ENV = frozenset(
    {"AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}
)
# Set while a stored configuration is loaded (from_dict): only the checks it passed when it was
# accepted apply then. A context variable, so concurrent loads and deploys do not mix.
_LOADING_STORED = contextvars.ContextVar("loading_stored", default=False)


def validate_name(name: str, field_name: str = "name") -> str:
    """`name` if it can name a function; ValidationError naming the field otherwise."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValidationError(
            field_name,
            f"{name!r} is not a valid function name; use 1-64 letters, digits, '-' or '_'",
        )
    return name


def normalize_runtime(runtime: str) -> str:
    canonical = RUNTIME_ALIASES.get((runtime or "").strip().lower())
    if canonical is None:
        raise InvalidParameter(
            "runtime",
            f"unknown runtime {runtime!r}; use one of python, nodejs, wasm "
            "(or python3.11, nodejs20.x)",
        )
    return canonical


@dataclass(frozen=True)
class FunctionConfig:
    """What a user configures. Immutable; `with_changes` returns a validated copy."""

    runtime: str
    handler: str
    memory_mb: int = DEFAULT_MEMORY_MB
    timeout_s: float = DEFAULT_TIMEOUT_S
    environment: Mapping[str, str] = field(default_factory=dict)
    concurrency: int = DEFAULT_CONCURRENCY
    # Set by every deploy or update that names a concurrency (PutFunctionConcurrency, a
    # config with one), cleared by DeleteFunctionConcurrency: a reserved function's calls stay
    # on its home node in a cluster, so the limit holds cluster-wide (decision 079). Stored
    # configurations from before the field load as reserved when their concurrency is not the
    # default (from_dict).
    concurrency_reserved: bool = False
    ephemeral_storage_mb: int = DEFAULT_EPHEMERAL_MB
    network: bool = False  # outbound network from the environment (off by default)
    # Egress policy (docs/events.md#network): "none" | "full" | "allow=IP:PORT[,IP:PORT...]";
    # "" keeps the older `network` flag's meaning (False: none; True: the host's network).
    network_policy: str = ""
    provisioned: int = 0  # environments kept initialised at all times
    # Asynchronous invocation (see docs/decisions/022-async-config-in-function-config.md):
    max_retries: int = DEFAULT_MAX_RETRIES  # retries after a function error, 0..2
    max_event_age_s: int = DEFAULT_MAX_EVENT_AGE_S  # older queued events are given up
    on_success: str = ""  # function that receives the success record ("" = none)
    on_failure: str = ""  # function, or "dlq" for the dead-letter store ("" = none)
    # Lambda's management API (issue 20, docs/lambda-compatibility.md): stored and shown back.
    description: str = ""
    role: str = ""  # the execution role's ARN or name, as the client gave it
    layers: tuple[str, ...] = ()  # layer version ARNs, in mount order (at most five)
    runtime_id: str = ""  # the Lambda runtime identifier given (python3.12), "" = the default
    # Lambda's LoggingConfig (docs/observability.md, issue 22): levels need the JSON format.
    log_format: str = "Text"  # Text | JSON
    application_log_level: str = ""  # TRACE DEBUG INFO WARN ERROR FATAL ("" = INFO with JSON)
    system_log_level: str = ""  # DEBUG INFO WARN ("" = INFO with JSON)

    def __post_init__(self) -> None:
        if not self.runtime_id and (self.runtime or "").strip().lower() in LAMBDA_RUNTIME_IDS:
            object.__setattr__(self, "runtime_id", self.runtime.strip().lower())
        object.__setattr__(self, "runtime", normalize_runtime(self.runtime))
        object.__setattr__(self, "environment", dict(self.environment or {}))
        object.__setattr__(self, "layers", tuple(self.layers or ()))
        self._validate()

    def _validate(self) -> None:
        h = self.handler
        if self.runtime in ("python", "nodejs") and not (
                isinstance(h, str) and _LAMBDA_HANDLER_RE.match(h)):
            example = "app.handler" if self.runtime == "python" else "index.handler"
            raise InvalidParameter(
                "handler", f"{h!r} is not a handler name: 1-128 characters without spaces, "
                f"'module.function' (e.g. {example})")
        if self.runtime == "wasm" and not (isinstance(h, str) and re.match(r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$", h)):
            raise InvalidParameter(
                "handler", f"{h!r} is not a valid wasm handler; use '_start' for a WASI "
                "command or the exported function name for a reactor (e.g. handle)"
            )
        _check_int("memory_mb", self.memory_mb, MEMORY_MB_MIN, MEMORY_MB_MAX)
        parse_network_policy(self.network_policy)
        if not isinstance(self.timeout_s, (int, float)) or isinstance(self.timeout_s, bool) or not (
            TIMEOUT_S_MIN <= self.timeout_s <= TIMEOUT_S_MAX
        ):
            raise InvalidParameter(
                "timeout_s",
                f"{self.timeout_s!r} is outside {TIMEOUT_S_MIN}..{TIMEOUT_S_MAX} seconds; "
                "pick a value in that range",
            )
        _check_int("concurrency", self.concurrency, 1, MAX_CONCURRENCY)
        if not isinstance(self.concurrency_reserved, bool):
            raise InvalidParameter("concurrency_reserved", f"{self.concurrency_reserved!r} is "
                                   "not a boolean; pass true or false")
        _check_int("ephemeral_storage_mb", self.ephemeral_storage_mb, 1, 10240)
        _check_int("provisioned", self.provisioned, 0, self.concurrency)
        _check_int("max_retries", self.max_retries, 0, MAX_RETRIES_MAX)
        _check_int("max_event_age_s", self.max_event_age_s, MAX_EVENT_AGE_S_MIN,
                   DEFAULT_MAX_EVENT_AGE_S)
        for dest in ("on_success", "on_failure"):
            target = getattr(self, dest)
            if target == "" or (dest == "on_failure" and target == DEFAULT_DLQ):
                continue
            if not isinstance(target, str) or not _NAME_RE.match(target):
                raise InvalidParameter(
                    dest, f"{target!r} is not a function name" + (
                        " or 'dlq'" if dest == "on_failure" else "") + "; name the destination "
                    "function (or pass '' to remove the destination)")
        if not isinstance(self.description, str) or len(self.description) > 256:
            raise InvalidParameter("description", "must be a string of at most 256 characters")
        if not isinstance(self.role, str) or len(self.role) > 2048:
            raise InvalidParameter("role", "must be a role name or ARN of at most 2048 characters")
        if len(self.layers) > MAX_LAYERS or not all(isinstance(x, str) for x in self.layers):
            raise InvalidParameter("layers", f"at most {MAX_LAYERS} layer version ARNs "
                                   "(strings); remove some")
        if self.runtime_id and LAMBDA_RUNTIME_IDS.get(self.runtime_id) != self.runtime:
            raise InvalidParameter("runtime_id", f"{self.runtime_id!r} is not a Lambda "
                                   f"identifier of the {self.runtime} runtime")
        _check_logging(self.log_format, self.application_log_level, self.system_log_level)
        total = 0
        for k, v in self.environment.items():
            if not isinstance(k, str) or not _ENV_KEY_RE.match(k):
                raise InvalidParameter(
                    "environment", f"key {k!r} must start with a letter and hold only "
                    "letters, digits and '_'"
                )
            if k in RESERVED_ENV:
                raise InvalidParameter("environment", f"key {k!r} is reserved by the runtime")
            if k in RESERVED_CREDENTIAL_ENV and not _LOADING_STORED.get():
                raise InvalidParameter(
                    "environment", f"key {k!r} is reserved for the execution role's credentials "
                    "(as on Lambda); remove it (an update keeps the old environment unless it "
                    "is replaced) and pass secrets under another name")
            if not isinstance(v, str):
                raise InvalidParameter("environment", f"value of {k!r} must be a string")
            if "\0" in v:  # no process environment can hold it: every start would fail
                raise InvalidParameter("environment", f"value of {k!r} holds a NUL character; remove it")
            total += len(k.encode()) + len(v.encode())
        if total > MAX_ENV_BYTES:
            raise InvalidParameter(
                "environment", f"{total} bytes exceeds the {MAX_ENV_BYTES}-byte limit"
            )

    @property
    def vcpus(self) -> float:
        """CPU share, in CPUs, proportional to memory (Lambda's 1 vCPU per 1,769 MB)."""
        return self.memory_mb / MB_PER_VCPU

    def with_changes(self, **changes: Any) -> "FunctionConfig":
        runtime = changes.get("runtime")
        if runtime is not None and changes.get("runtime_id") is None:
            # A new runtime replaces the Lambda identifier it was given as (issue 20).
            rid = runtime.strip().lower() if isinstance(runtime, str) else ""
            changes["runtime_id"] = rid if rid in LAMBDA_RUNTIME_IDS else ""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        return {
            "runtime": self.runtime,
            "handler": self.handler,
            "memory_mb": self.memory_mb,
            "timeout_s": self.timeout_s,
            "environment": dict(self.environment),
            "concurrency": self.concurrency,
            "concurrency_reserved": self.concurrency_reserved,
            "ephemeral_storage_mb": self.ephemeral_storage_mb,
            "network": self.network,
            "network_policy": self.network_policy,
            "provisioned": self.provisioned,
            "max_retries": self.max_retries,
            "max_event_age_s": self.max_event_age_s,
            "on_success": self.on_success,
            "on_failure": self.on_failure,
            "description": self.description,
            "role": self.role,
            "layers": list(self.layers),
            "runtime_id": self.runtime_id,
            "log_format": self.log_format,
            "application_log_level": self.application_log_level,
            "system_log_level": self.system_log_level,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "FunctionConfig":
        """A stored configuration (storage.functions): accepted once, so it loads even where a
        rule added since would refuse it (RESERVED_CREDENTIAL_ENV)."""
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        if "concurrency_reserved" not in d and "concurrency" in d:
            # Stored before the field existed: a concurrency other than the default was named
            # by the user, so it is a reservation (decision 079); the default one was not.
            known["concurrency_reserved"] = d["concurrency"] != DEFAULT_CONCURRENCY
        token = _LOADING_STORED.set(True)
        try:
            return cls(**known)
        finally:
            _LOADING_STORED.reset(token)


LOG_FORMATS = ("Text", "JSON")
APPLICATION_LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
SYSTEM_LOG_LEVELS = ("DEBUG", "INFO", "WARN")


def _check_logging(fmt: str, app_level: str, sys_level: str) -> None:
    if fmt not in LOG_FORMATS:
        raise InvalidParameter("log_format", f"{fmt!r} is not one of Text, JSON")
    for field_, value, allowed in (("application_log_level", app_level, APPLICATION_LOG_LEVELS),
                                   ("system_log_level", sys_level, SYSTEM_LOG_LEVELS)):
        if not value:
            continue
        if value not in allowed:
            raise InvalidParameter(field_, f"{value!r} is not one of {', '.join(allowed)}")
        if fmt != "JSON":
            raise InvalidParameter(field_, "log levels apply to the JSON log format only (as "
                                   "on Lambda); set log_format to JSON, or leave the level out")


def _check_int(name: str, value: Any, lo: int, hi: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise InvalidParameter(name, f"{value!r} is outside {lo}..{hi}; pick a value in that range")


@dataclass(frozen=True)
class FunctionVersion:
    """One immutable (configuration, code) pair. Pools and sandboxes see only this.

    `revision` is unique across the whole registry and never reused, so it keys pools and
    snapshots: a new deploy of the same name never reuses an environment of an older one.
    `version` is the user-facing label: "$LATEST" or a published number.
    """

    name: str
    version: str
    revision: int
    config: FunctionConfig
    code_sha256: str
    code_dir: str  # extracted, read-only code: a directory, or for wasm the module's directory
    created_at: float = 0.0
    code_size: int = 0  # bytes of the uploaded package
    # The function's identity apart from its name: new when a function is created, so a
    # deleted and re-created function of the same name is another function (its queued
    # events, its log blocks in flight, are not the new one's).
    function_uid: str = ""
    # The host directory the guest sees at /opt: the function's layers merged in order
    # (storage/layers.py), "" without layers. Derived from config.layers, never stored.
    opt_dir: str = ""
    # The execution role's variables (storage/roles.py), hidden from repr: secrets never reach
    # a log line through a formatted version. `role_generation` grows with every rotation.
    role_env: Mapping[str, str] = field(default_factory=dict, repr=False)
    role_generation: int = 0

    @property
    def arn(self) -> str:
        return function_arn(self.name, self.version)

    @property
    def key(self) -> str:
        """Pool key: one pool per immutable revision (and per generation of its role's
        credentials, so that rotated credentials never meet a pool of the old ones)."""
        if self.role_generation:
            return f"{self.name}#{self.revision}@{self.role_generation}"
        return f"{self.name}#{self.revision}"


# The region ARNs and AWS_REGION name: a server setting (`runner serve --region`), so that
# clients that parse ARNs see the region they configured. Set once at start-up (set_region),
# before any environment starts; read at call time, never cached in a stored value.
REGION = "us-east-1"
ACCOUNT = "000000000000"
_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")


def set_region(region: str) -> None:
    global REGION
    if not isinstance(region, str) or not _REGION_RE.match(region):
        raise InvalidParameter("region", f"{region!r} is not a region name (e.g. us-east-1)")
    REGION = region


def region() -> str:
    return REGION


def function_arn(name: str, qualifier: str | None = None) -> str:
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
    return f"{arn}:{qualifier}" if qualifier else arn
