"""Code that runs inside a Python guest's sandbox (`python -I -S -B`, stdlib only).

The files are run as scripts from this folder, which is on the guest's `sys.path`; their names
keep a `python_`/`_` prefix so they cannot shadow a handler's own modules. The host never
imports them (tests do, to check the codec).

`python_bootstrap.py` (an environment: the channel, the init phase, the invocation loop)
imports `_mpack.py` (the frames' codec), `python_lambda_context.py` (the handler's `context`
and the variables naming the invocation) and `python_user_code.py` (the handler's import, its
errors in Lambda's shape, its logging); `python_zygote.py` imports the bootstrap and
`python_envns.py` (per-environment namespaces). The whole folder is bound read-only at
/var/runtime (confinement/namespaces.py), so a module added here is found there.
"""
