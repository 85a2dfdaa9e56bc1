"""`runner serve --http-port` refuses a port that is taken, naming the flag to change."""

from __future__ import annotations

import socket

from runner.cli.main import main as cli_main


def test_http_port_in_use(tmp_path, capsys):
    taken = socket.socket()
    try:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        rc = cli_main(["serve", "--data-dir", str(tmp_path / "d"), "--port", "0",
                       "--http-port", str(port)])
    finally:
        taken.close()
    assert rc == 2
    err = capsys.readouterr().err
    assert f"127.0.0.1:{port}" in err and "--http-port" in err
