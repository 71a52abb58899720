"""`pies serve` as an operator starts it: a start line saying where it listens, then an
access log line per request on stderr (never a token), and X-Forwarded-For from a peer
that is no trusted proxy does not change the logged client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest

from cli_helpers import cli_env

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def test_serve_prints_where_it_listens_and_logs_each_request(db_url, tmp_path):
    env = {**os.environ, **cli_env(tmp_path, db_url, 'pie "Core" { VTI 100% }\n', "1000.00"),
           "PYTHONUNBUFFERED": "1"}
    err = open(tmp_path / "stderr.txt", "w+")
    proc = subprocess.Popen([sys.executable, "-c", "from engine.shell.cli import main; main()", "serve", "--port", "0"],
                            env=env,
                            stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("pies: listening on http://127.0.0.1:"), line
        url = line.split("listening on ", 1)[1].split()[0]
        request = urllib.request.Request(f"{url}/health?secret=x", headers={"X-Forwarded-For": "203.0.113.5",
                                                                            "Authorization": "Bearer pies_abc"})
        assert json.load(urllib.request.urlopen(request, timeout=10)) == {"status": "ok"}
        deadline = time.monotonic() + 20
        lines: list[dict] = []
        while time.monotonic() < deadline and not lines:
            err.seek(0)
            lines = [json.loads(x) for x in err.read().splitlines() if x.startswith("{") and '"request"' in x]
            time.sleep(0.1)
        (access,) = lines
        assert access["method"] == "GET" and access["path"] == "/health" and access["status"] == 200
        assert access["client"] == "127.0.0.1"                        # the header from an untrusted peer: ignored
        err.seek(0)
        assert "pies_abc" not in err.read() and "secret=x" not in json.dumps(access)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        err.close()
