"""A job's process: Prefect's engine, started once the Prefect server answers.

Prefect's client retries a refused connection only after it has connected once. An engine
that starts while the server restarts (its worker claimed the run just before) therefore
fails at its first call, and the run is reported Crashed although nothing was touched. Every
deployment's ``command`` job variable starts this module instead (``ENGINE_COMMAND``): it
waits for the server, then runs ``prefect.engine`` in this same process, so nothing is
imported twice. It also spares the supervisor process Prefect's worker puts in front of the
engine when no command is set: one interpreter start less per job.

Where the worker runs an engine server (flows/engine_server.py), this process only hands
the run to it: the run then starts in a child of a process that imported Prefect already.
"""
from __future__ import annotations

import json
import os
import runpy
import shlex
import signal
import socket
import struct
import sys
import warnings
from typing import NoReturn

# How long a job's process waits for a restarting server before it gives up (the run is then
# reported Crashed, as without this wait). A restart takes seconds; a longer outage is a fault.
WAIT_FOR_SERVER_SECONDS = 300.0


# The deployments' ``command``: the same on every host, each worker's environment names its
# Python (P4INTEG_PYTHON, see flows.settings.process_env). ``exec`` keeps one process, whose
# command line shows the venv's path, which is how a host's flow runs are found and stopped.
ENGINE_COMMAND = shlex.join(["sh", "-c", 'exec "${P4INTEG_PYTHON:-python}" -m flows.engine_start'])


def _server_answers() -> bool:
    """The API's health endpoint answers (it needs no credential): what a restart ends with."""
    from prefect.settings import PREFECT_API_URL

    from .polling import http_ok

    return http_ok(f"{PREFECT_API_URL.value()}/health", timeout=5)


# Signals this process passes on to the run it handed to the engine server: a cancellation
# (SIGTERM from the worker), an interrupt, a hang-up.
_FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def _through_server(path: str, module: str = "flows.engine_start") -> int | None:
    """Run ``python -m <module>`` with this process's arguments, environment, working
    directory and standard streams in a child of the engine server at ``path`` (the module
    is this one, which there runs the engine itself) and return its exit code (negative: the
    signal that killed it); None if no server took it (the caller then runs the engine itself)."""
    import array

    from .engine_server import SOCKET_ENV

    child: list[int] = []
    pending: list[int] = []

    def send(signum: int) -> None:
        try:
            os.kill(child[0], signum)
        except ProcessLookupError:  # the run has ended: its status is on its way
            pass

    def forward(signum: int, _frame: object) -> None:
        if child:
            send(signum)
        else:
            pending.append(signum)

    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)
    except OSError:  # no server (it died with an earlier worker, or never started)
        conn.close()
        return None
    before = {sig: signal.signal(sig, forward) for sig in _FORWARDED}
    env = {k: v for k, v in os.environ.items() if k != SOCKET_ENV}  # the child runs the engine itself
    body = json.dumps({"module": module, "argv": sys.argv[1:], "env": env, "cwd": os.getcwd()}).encode()
    message = struct.pack("!I", len(body)) + body
    with conn, conn.makefile("rb") as answers:
        try:
            sent = conn.sendmsg([message], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [0, 1, 2]))])
            conn.sendall(message[sent:])
            for line in answers:
                answer = json.loads(line)
                if "pid" in answer:
                    child.append(int(answer["pid"]))
                    for signum in pending:
                        send(signum)
                elif "exit" in answer:
                    return int(answer["exit"])
        except OSError:
            pass
    if not child:  # the server took nothing: this process runs the engine, with its own signals
        for sig, handler in before.items():
            signal.signal(sig, handler)
        for signum in pending:
            os.kill(os.getpid(), signum)
        return None
    print(f"the engine server ended before the run's process {child[0]} did; its exit status is unknown",
          file=sys.stderr)
    return 1


def main() -> None:
    from .engine_server import SOCKET_ENV

    server = os.environ.get(SOCKET_ENV)
    code = _through_server(server) if server else None
    if code is None:
        run_here()
    else:
        exit_as(code)


def exit_as(code: int) -> NoReturn:
    """End this process as its run ended: with its exit code, or killed by the same signal
    (the worker tells a killed run from a failed one by that)."""
    if code < 0:
        if -code != signal.SIGKILL:  # the one signal that cannot be handled anyway
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    sys.exit(code)


def run_here() -> None:
    """Wait for the Prefect server, then run Prefect's engine in this process."""
    from .polling import poll_until

    if not poll_until(_server_answers, WAIT_FOR_SERVER_SECONDS, 1.0):
        print(f"the Prefect server did not answer within {WAIT_FOR_SERVER_SECONDS:.0f} s", file=sys.stderr)
    # The engine reads the run's id from PREFECT__FLOW_RUN_ID, which the worker sets.
    sys.argv = ["prefect.engine", *sys.argv[1:]]
    with warnings.catch_warnings():
        # Forked from the engine server, prefect.engine is imported already; runpy then warns,
        # in every job's log, that it runs the module's code again as __main__, which is what
        # `python -m prefect.engine` runs too.
        warnings.filterwarnings("ignore", message=".*found in sys.modules after import of package",
                                category=RuntimeWarning)
        runpy.run_module("prefect.engine", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
