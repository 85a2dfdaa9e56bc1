import pytest

from runner.cli.main import build_parser, main


def test_deploy_path_after_options_is_attached(capsys, tmp_path):
    missing = str(tmp_path / "no-such-dir")
    # argparse alone leaves PATH over after `--env K=V`; main() attaches it, so the deploy
    # gets as far as reading the path (and names it in the error).
    assert main(["deploy", "f", "--runtime", "python", "--env", "A=1", missing, "--address", "127.0.0.1:1"]) == 2
    assert "no-such-dir" in capsys.readouterr().err


def test_unknown_arguments_still_fail(capsys):
    with pytest.raises(SystemExit) as e:
        main(["list", "--bogus"])
    assert e.value.code == 2 and "unrecognized arguments" in capsys.readouterr().err


def test_bad_env_flag(capsys):
    assert main(["deploy", "f", "--env", "NOEQUALS", "--address", "127.0.0.1:1"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err


def test_runtime_aliases_in_help():
    text = build_parser()._subparsers._group_actions[0].choices["deploy"].format_help()
    assert "python3.11" in text and "nodejs20.x" in text
