"""A job's process: Prefect's engine, started once the Prefect server answers.

Prefect's client retries a refused connection only after it has connected once. An engine
that starts while the server restarts (its worker claimed the run just before) therefore
fails at its first call, and the run is reported Crashed although nothing was touched. Every
deployment's ``command`` job variable starts this module instead (``ENGINE_COMMAND``): it
waits for the server, then runs ``prefect.engine`` in this same process, so nothing is
imported twice. It also spares the supervisor process Prefect's worker puts in front of the
engine when no command is set: one interpreter start less per job.
"""
from __future__ import annotations

import runpy
import shlex
import sys

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


def main() -> None:
    from .polling import poll_until

    if not poll_until(_server_answers, WAIT_FOR_SERVER_SECONDS, 1.0):
        print(f"the Prefect server did not answer within {WAIT_FOR_SERVER_SECONDS:.0f} s", file=sys.stderr)
    # The engine reads the run's id from PREFECT__FLOW_RUN_ID, which the worker sets.
    sys.argv = ["prefect.engine", *sys.argv[1:]]
    runpy.run_module("prefect.engine", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
