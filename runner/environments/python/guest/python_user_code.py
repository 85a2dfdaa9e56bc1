"""The function's code as Lambda's Python runtime meets it: imported by its handler name
(`load_handler`, with Lambda's Runtime.* error types), its errors in Lambda's shape
(`error_document`, `stack_trace` from the user's first frame), and the logging it finds set
up (`setup_logging`: the request id on every record, Lambda's text or JSON format and
AWS_LAMBDA_LOG_LEVEL).

Part of the Python bootstrap (python_bootstrap.py imports it from this folder, inside the
sandbox; stdlib only).
"""

import json
import os
import sys
import time
import traceback

MAX_ERROR_CHARS = 256 * 1024  # of an error message, as the Node bootstrap: frames stay bounded

# The bootstrap's own files (this folder): frames of theirs that lead to the user's code are
# not the user's, and Lambda does not show them.
_OWN_FILES = ("python_bootstrap.py", "python_zygote.py", "python_user_code.py",
              "python_lambda_context.py")


def stack_trace(tb):
    """Lambda's stackTrace: the traceback from the user's first frame on (the bootstrap's
    own frames that led to the handler, or to the import, are not shown, as on Lambda)."""
    frames = traceback.extract_tb(tb)
    i = 0
    while i < len(frames) and (os.path.basename(frames[i].filename) in _OWN_FILES
                               or frames[i].filename.startswith("<frozen importlib")):
        i += 1
    return traceback.format_list(frames[i:])


def error_document(exc_type, message, trace=None):
    if len(message) > MAX_ERROR_CHARS:
        message = message[:MAX_ERROR_CHARS] + " [truncated]"
    return {"errorType": exc_type[:1024], "errorMessage": message, "stackTrace": trace or []}


class RequestIdFilter:
    """Adds the current request id to every `logging` record, as Lambda's runtime does."""

    request_id = ""

    def filter(self, record):
        record.aws_request_id = RequestIdFilter.request_id
        return True


# AWS_LAMBDA_LOG_LEVEL (Lambda's ApplicationLogLevel) -> the logging module's levels.
_LEVELS = {"TRACE": 5, "DEBUG": 10, "INFO": 20, "WARN": 30, "ERROR": 40, "FATAL": 50}


def _json_formatter(logging):
    class JsonFormatter(logging.Formatter):
        """Lambda's JSON log records: timestamp, level, message, logger, requestId, and the
        exception's errorType, errorMessage and stackTrace when one is logged."""

        def format(self, record):
            doc = {
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                + ".%03dZ" % record.msecs,
                "level": record.levelname,
                "message": record.getMessage(),
                "logger": record.name,
            }
            if record.exc_info and record.exc_info[0] is not None:
                doc["errorType"] = record.exc_info[0].__name__
                doc["errorMessage"] = str(record.exc_info[1])
                doc["stackTrace"] = stack_trace(record.exc_info[2])
            doc["requestId"] = getattr(record, "aws_request_id", "")
            try:
                return json.dumps(doc, default=str)
            except (TypeError, ValueError):
                doc["message"] = repr(doc["message"])
                return json.dumps(doc, default=str)

    return JsonFormatter()


def setup_logging():
    import logging

    handler = logging.StreamHandler(sys.stdout)
    if os.environ.get("AWS_LAMBDA_LOG_FORMAT") == "JSON":
        handler.setFormatter(_json_formatter(logging))
        level = _LEVELS.get(os.environ.get("AWS_LAMBDA_LOG_LEVEL", "INFO"), 20)
        logging.addLevelName(5, "TRACE")
        logging.getLogger().setLevel(level)
    else:
        handler.setFormatter(
            logging.Formatter(
                "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s",
                "%Y-%m-%dT%H:%M:%S",
            )
        )
        handler.formatter.converter = time.gmtime
    handler.addFilter(RequestIdFilter())
    logging.getLogger().addHandler(handler)


def load_handler(spec):
    """Import `module.function` from the task root. Returns (handler, None) or (None, error)."""
    try:
        modname, fname = spec.rsplit(".", 1)
    except ValueError as e:
        return None, error_document("Runtime.MalformedHandlerName", "Bad handler '%s': %s" % (spec, e))
    if modname.replace("/", ".") in sys.builtin_module_names:
        return None, error_document("Runtime.BuiltInModuleConflict",
                                    "Cannot use built-in module %s as a handler module" % modname)
    try:
        import importlib

        mod = importlib.import_module(modname.replace("/", "."))
    except MemoryError:
        return None, error_document("Runtime.OutOfMemory", "Runtime exited: out of memory during init")
    except ImportError as e:
        return None, error_document("Runtime.ImportModuleError", "Unable to import module '%s': %s" % (modname, e))
    except SyntaxError as e:
        trace = ['  File "%s" Line %s\n    %s' % (e.filename, e.lineno, (e.text or "").strip())]
        return None, error_document("Runtime.UserCodeSyntaxError", "Syntax error in module '%s': %s" % (modname, e), trace)
    except BaseException as e:  # anything module-level code raises, SystemExit included
        return None, error_document(type(e).__name__, str(e), stack_trace(e.__traceback__))
    fn = getattr(mod, fname, None)
    if fn is None:
        return None, error_document("Runtime.HandlerNotFound", "Handler '%s' missing on module '%s'" % (fname, modname))
    if not callable(fn):
        return None, error_document("Runtime.HandlerNotFound", "Handler '%s' on module '%s' is not callable" % (fname, modname))
    return fn, None
