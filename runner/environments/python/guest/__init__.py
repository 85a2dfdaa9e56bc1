"""Code that runs inside a Python guest's sandbox (`python -I -S -B`, stdlib only).

The files are run as scripts from this folder, which is on the guest's `sys.path`; their names
keep a `python_`/`_` prefix so they cannot shadow a handler's own modules. The host never
imports them (tests do, to check the codec).
"""
