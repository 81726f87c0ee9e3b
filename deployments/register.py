"""The deployments prefect.yaml declares (``integrate/local`` and the cleanup flows), applied with Prefect's CLI."""
from __future__ import annotations

from flows.settings import PROJECT_DIR


def ensure_deployment() -> None:
    """``integrate/local`` and the cleanup flows, as prefect.yaml declares them, applied with
    Prefect's own CLI. A remote host's ``integrate/<host>`` is made by ``agent.pools.ensure_deployment``."""
    import os
    import subprocess
    import sys

    from flows.engine_start import ENGINE_COMMAND

    env = {**os.environ, "P4INTEG_PROJECT_DIR": str(PROJECT_DIR), "P4INTEG_ENGINE_COMMAND": ENGINE_COMMAND}
    done = subprocess.run([sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"], cwd=PROJECT_DIR,
                          env=env, capture_output=True, text=True, timeout=180)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
        raise RuntimeError(f"'prefect deploy --all' exited with {done.returncode}:\n{tail}")
