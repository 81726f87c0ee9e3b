"""The deployments prefect.yaml declares (``integrate/local`` and the cleanup flows), applied with Prefect's CLI."""
from __future__ import annotations

from flows.settings import PROJECT_DIR


def apply_project_file() -> None:
    """Apply prefect.yaml (the project's declared deployments) with Prefect's own CLI."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "P4INTEG_PROJECT_DIR": str(PROJECT_DIR)}
    done = subprocess.run([sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"], cwd=PROJECT_DIR,
                          env=env, capture_output=True, text=True, timeout=180)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
        raise RuntimeError(f"'prefect deploy --all' exited with {done.returncode}:\n{tail}")


def ensure_deployment() -> None:
    """``integrate/local`` (and the cleanup flows), as prefect.yaml declares them. A remote
    host's ``integrate/<host>`` is made by ``agent.converge.ensure_deployment``."""
    apply_project_file()
