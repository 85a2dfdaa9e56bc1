"""runner/cli/client.py: what every client command shares, and the lazy grpc import."""

import argparse
import subprocess
import sys

from runner import settings
from runner.cli.client import ADDRESS_HELP, EXIT_PLATFORM_ERROR, address, platform_error
from runner.cli.main import build_parser, main
from tests.conftest import ROOT


def _subparsers(parser):
    """(command path, parser) for every leaf subcommand, e.g. ("route add", ...)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                nested = list(_subparsers(child))
                yield from ((f"{name} {n}", c) for n, c in nested) if nested else [(name, child)]


def test_address_flag_then_environment_then_default(monkeypatch):
    monkeypatch.delenv("RUNNER_ADDRESS", raising=False)
    assert address(argparse.Namespace(address=None)) == settings.DEFAULT_ADDRESS
    monkeypatch.setenv("RUNNER_ADDRESS", "10.0.0.1:7")
    assert address(argparse.Namespace(address=None)) == "10.0.0.1:7"
    assert address(argparse.Namespace(address="h:1")) == "h:1"


def test_every_client_command_has_the_same_address_option():
    leaves = dict(_subparsers(build_parser()))
    with_address = {name for name, p in leaves.items()
                    if any("--address" in a.option_strings for a in p._actions)}
    assert with_address == set(leaves) - {"serve", "doctor"}
    for name in with_address:
        help_text = next(a.help for a in leaves[name]._actions if "--address" in a.option_strings)
        assert help_text == ADDRESS_HELP == "server HOST:PORT (default $RUNNER_ADDRESS or 127.0.0.1:50051)"


def test_platform_error_prints_a_message(capsys):
    assert platform_error("--payload-file: No such file") == EXIT_PLATFORM_ERROR == 2
    assert capsys.readouterr().err == "runner: --payload-file: No such file\n"


def test_unreachable_server_is_a_platform_error_for_each_group(capsys):
    for argv in (["list"], ["route", "list"], ["dlq", "list", "f"]):
        assert main([*argv, "--address", "127.0.0.1:1"]) == 2
        assert "runner: UNAVAILABLE" in capsys.readouterr().err


def test_building_the_parser_loads_no_grpc():
    code = ("import sys; from runner.cli.main import build_parser; build_parser(); "
            "print(sorted(m for m in sys.modules if m == 'grpc' or m.startswith('google.protobuf')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT).stdout
    assert out.strip() == "[]"


def test_the_client_commands_do_not_load_the_runtimes():
    # `runner invoke` and friends talk to a server; loading Runner (every runtime, wasmtime)
    # would add ~140 ms to each of them.
    code = ("import sys, runner.cli.main; "
            "print(sorted(m for m in ('wasmtime', 'runner.invocation.runner') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
