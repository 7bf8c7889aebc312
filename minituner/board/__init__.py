"""`minituner board`: a local web page to choose a method and its settings, run `minituner finetune`
with them, watch the run live, compare runs and ask a finished run's adapter (docs/board.md).

    pip install -e ".[board]"
    minituner board                      # http://127.0.0.1:7860, runs kept in runs/board

server.py: the Flask app (page and API); runs.py: the runs folder and the one process per run;
worker.py: that process, `minituner finetune` itself with its steps written to the run's log;
locales.py: every label of the page in English and Chinese; static/: the page, served by the board.
"""

from __future__ import annotations

import logging
from pathlib import Path


def serve(parser, host: str, port: int, runs: Path, max_running: int = 1) -> None:
    """Serve the board for the command line `parser` (minituner.cli's) until interrupted (Ctrl-C)."""
    try:
        from werkzeug.serving import make_server
    except ImportError:
        raise ValueError('the board needs its extra: pip install "minituner[board]" '
                         '(pip install -e ".[board]" in a clone)') from None
    from .server import create_app

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request: the page asks often
    server = make_server(host, port, create_app(parser, runs, max_running), threaded=True)
    print(f"minituner board: http://{host}:{server.port}  (runs in {runs}; Ctrl-C stops the board and a run "
          f"going, and every run's folder stays)", flush=True)
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"minituner board: listening on {host}: whoever reaches this computer there can start runs and "
              f"upload files", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
