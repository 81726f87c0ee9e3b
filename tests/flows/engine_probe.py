"""Run by the engine server's tests in place of Prefect's engine (``python -m`` style): reports
what the run's process would see, then acts as its first argument says."""
from __future__ import annotations

import json
import os
import signal
import sys

if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "report"
    if what == "term":  # before the report: the test signals as soon as it has read it
        signal.signal(signal.SIGTERM, lambda *_: (print("got SIGTERM", flush=True), sys.exit(3)))
    print(json.dumps({"pid": os.getpid(), "ppid": os.getppid(), "sid": os.getsid(0), "cwd": os.getcwd(),
                      "argv": sys.argv[1:], "mark": os.environ.get("PROBE_MARK"),
                      "preloaded": "flows.integration" in sys.modules,
                      "log_level": __import__("logging").getLogger("prefect").getEffectiveLevel(),
                      "api_url": __import__("prefect.settings").settings.PREFECT_API_URL.value()}), flush=True)
    if what == "report":
        sys.exit(7)
    # "term" and "sleep": until a signal ends it; SIGALRM keeps a lost probe from living on.
    signal.alarm(120)
    while True:
        signal.pause()
