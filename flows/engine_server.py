"""A worker's engine server: jobs' processes forked from one that has Prefect imported already.

Every flow run is a process of its own (Prefect's process worker starts one per run), and
each used to spend most of its start importing Prefect and the flows: about 1.4 s of CPU,
a second or more of a job's start, on every run, cleanup and notification. The worker is
now started through this module (``python -m flows.engine_server -- <worker command>``): it
forks an engine server, which imports all that once and then waits on a Unix socket, and
becomes the worker itself. A run's process (flows/engine_start.py) hands the server its
standard streams, environment, working directory and arguments; the server forks a child
that takes them over and runs Prefect's engine exactly as the process itself would have.

What the worker and Prefect see does not change: the process it started lives as long as
the run, ends with the run's exit status, and a signal sent to it (a cancellation's SIGTERM)
reaches the run. A run whose process is killed outright is killed with it. The server dies
with its worker; the runs it forked go on to their end. Without a server (an older worker,
a server that failed to start) a run's process runs the engine itself, as before.

The socket is the worker's alone: in the service's private ``run`` directory, mode 0600,
and a connection from any other user is refused.
"""
from __future__ import annotations

import array
import json
import os
import selectors
import signal
import socket
import struct
import sys
import threading
from pathlib import Path
from typing import Any

# The variable that tells a run's process where its worker's engine server listens; set by
# the server for the worker, which passes its environment on to every run it starts.
SOCKET_ENV = "P4INTEG_ENGINE_SOCKET"
# What the server has imported before its first fork: Prefect's engine, every flow the
# service's deployments run (by module path, so a run finds them imported), and what a run
# would otherwise import on its way (the deployment's pull step, anyio's event loop, the
# sandbox server of the demo and tests): a module imported here is not imported again in
# every run's process.
PRELOAD = ("prefect.engine", "prefect.flow_engine", "prefect.task_engine", "prefect.deployments.steps.core",
           "prefect.deployments.steps.pull", "prefect.deployments.steps.utility", "prefect.runner",
           "prefect.utilities.visualization", "anyio._backends._asyncio", "flows.integration",
           "flows.cleanup", "flows.notify", "flows.lines", "flows.p4.sandbox")
REQUEST_TIMEOUT = 10.0  # seconds a run's process has to send its whole request once connected
_MAX_REQUEST = 1 << 20  # a request is argv, environment and working directory: well under this
_PR_SET_PDEATHSIG = 1
# What the server's own logging was set up from (serve()); a run whose environment makes the
# same keeps it.
_server_logging: tuple[Any, ...] | None = None


def socket_path(pid: int) -> Path:
    """Where the engine server of the worker with this pid listens (the service's private
    ``run`` directory)."""
    from .settings import home

    return home() / "run" / f"engine-{pid}.sock"


def _remove_stale(run_dir: Path) -> None:
    """Sockets of servers whose worker is gone (a worker killed outright leaves its file)."""
    for old in run_dir.glob("engine-*.sock"):
        try:
            os.kill(int(old.stem.removeprefix("engine-")), 0)
        except ValueError:
            continue
        except ProcessLookupError:
            old.unlink(missing_ok=True)
        except PermissionError:  # a live process of someone else's: not ours to judge
            continue


def _die_with_parent(parent: int) -> None:
    """SIGKILL when the worker (this process's parent) ends, however it ends."""
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (AttributeError, OSError):  # not Linux: the server then outlives a killed worker
        pass
    if os.getppid() != parent:  # the worker ended before the request took effect
        os._exit(0)


def _recv_request(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    """One request: a length-prefixed JSON document, the client's fds 0-2 with its first part."""
    fds = array.array("i")
    data = b""
    try:
        while len(data) < 4 or len(data) < 4 + struct.unpack("!I", data[:4])[0]:
            chunk, ancdata, _flags, _addr = conn.recvmsg(65536, socket.CMSG_SPACE(3 * fds.itemsize))
            for level, kind, payload in ancdata:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
            if not chunk:
                raise ConnectionError("the run's process closed the connection before its request was whole")
            data += chunk
            if len(data) > _MAX_REQUEST:
                raise ConnectionError("request too large")
        return json.loads(data[4:]), list(fds)
    except BaseException:
        for fd in fds:  # the streams of a request refused are not kept open here
            os.close(fd)
        raise


def _peer_is_us(conn: socket.socket) -> bool:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid == os.getuid()


def serve(listener: socket.socket) -> None:
    """Accept requests until the worker ends; fork a run for each. Single-threaded, so a fork
    copies no lock another thread holds."""
    global _server_logging
    for module in PRELOAD:
        __import__(module)
    _server_logging = _logging_inputs()
    if threading.active_count() > 1:  # an import started a thread: forking would not be safe
        print("engine server: imports started threads; runs start their own engines", file=sys.stderr)
        return
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes the selector through wake_w
    children: dict[int, socket.socket] = {}
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ)
    sel.register(wake_r, selectors.EVENT_READ)
    while True:
        for key, _ in sel.select():
            if key.fileobj is listener:
                try:
                    conn, _addr = listener.accept()
                except OSError:  # the process that connected is gone already
                    continue
                pid = _fork_run(conn, listener, (wake_r, wake_w))
                if pid:
                    children[pid] = conn
                else:
                    conn.close()
            else:
                os.read(wake_r, 4096)
        _reap(children)


def _reap(children: dict[int, socket.socket]) -> None:
    """Tell each ended run's process how its run ended: its exit code, negative for the signal
    that ended it (as Python's subprocess reports it)."""
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = children.pop(pid, None)
        if conn is None:
            continue
        code = os.waitstatus_to_exitcode(status)
        try:
            conn.sendall(json.dumps({"exit": code}).encode() + b"\n")
        except OSError:  # the run's process is gone already
            pass
        conn.close()


def _fork_run(conn: socket.socket, listener: socket.socket, wake: tuple[int, int]) -> int:
    """Fork the run for one request; in the parent, its pid (0 if the request was refused)."""
    try:
        if not _peer_is_us(conn):
            return 0
        conn.settimeout(REQUEST_TIMEOUT)  # a process that connects and says nothing holds nobody up
        request, fds = _recv_request(conn)
        conn.settimeout(None)
    except (OSError, ValueError, ConnectionError):  # refused: the run's process runs the engine itself
        return 0
    try:
        pid = os.fork()
    except OSError:  # no process to be had: likewise
        for fd in fds:
            os.close(fd)
        return 0
    if pid:
        for fd in fds:
            os.close(fd)
        try:
            conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
        except OSError:  # the run's process is gone: its run goes (see _watch_client)
            pass
        return pid
    # The child: the run's process in all but its pid.
    try:
        code = _run_child(conn, listener, wake, request, fds)
    except BaseException:  # noqa: BLE001 - whatever happens, never back into the server's loop
        import traceback

        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _run_child(conn: socket.socket, listener: socket.socket, wake: tuple[int, int],
               request: dict[str, Any], fds: list[int]) -> int:
    # A session of its own, as the worker gives each run's process: a signal to the worker's
    # process group (a worker stopped or killed) does not end the runs it started.
    os.setsid()
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    listener.close()
    for fd in wake:
        os.close(fd)
    for target, fd in zip((0, 1, 2), fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    threading.Thread(target=_watch_client, args=(conn,), daemon=True).start()
    return _run_engine(request["module"], request["argv"])


def _watch_client(conn: socket.socket) -> None:
    """The run's process sends nothing after its request: the connection ends only when that
    process does. A process killed outright takes its run with it, as if the run were it."""
    try:
        while conn.recv(64):
            pass
    except OSError:
        pass
    os.kill(os.getpid(), signal.SIGKILL)


def _logging_inputs() -> tuple[Any, ...]:
    """What Prefect's logging setup is made of: every setting (its config file is a template of
    them), the PREFECT_LOGGING_* environment (overrides of single keys) and the config file."""
    from prefect.settings import PREFECT_LOGGING_SETTINGS_PATH, get_current_settings

    path = PREFECT_LOGGING_SETTINGS_PATH.value()
    return (get_current_settings(), {k: v for k, v in os.environ.items() if k.startswith("PREFECT_LOGGING_")},
            path.stat().st_mtime_ns if path.exists() else None)


def _run_engine(module: str, argv: list[str]) -> int:
    """``python -m <module> <argv>`` in this process, with the settings of its environment.
    Returns the exit status; atexit handlers and non-daemon threads are seen to first, as an
    interpreter's own exit would."""
    import atexit
    import runpy

    import prefect.context
    import prefect.logging.configuration

    # Prefect read its settings and set up logging at import, in the server's environment.
    prefect.context.refresh_global_settings_context()
    if _logging_inputs() != _server_logging:  # setting it up again is 0.1-0.2 s of every run's start
        prefect.logging.configuration.setup_logging(incremental=False)
    sys.argv = [module, *argv]
    code = 0
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if not isinstance(exc.code, int) and exc.code is not None:
            print(exc.code, file=sys.stderr)
    except BaseException:  # noqa: BLE001 - reported as Python reports an uncaught exception
        import traceback

        traceback.print_exc()
        code = 1
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    # What an interpreter's exit runs (Prefect's log and event senders flush here); the caller
    # then leaves with os._exit, so nothing of the server's own runs in this process.
    atexit._run_exitfuncs()
    return code


def main(argv: list[str]) -> None:
    """``python -m flows.engine_server -- <worker command...>``: start the server, then exec
    the worker (same pid, so whoever started it can still signal and wait for it)."""
    command = argv[1:] if argv[:1] == ["--"] else argv
    if not command:
        sys.exit("usage: python -m flows.engine_server -- <worker command...>")
    worker = os.getpid()
    path = socket_path(worker)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        _remove_stale(path.parent)
        path.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            listener.bind(str(path))
        finally:
            os.umask(old)
        listener.listen(64)
    except OSError as exc:  # runs then start their own engines, as without a server
        print(f"engine server: cannot listen on {path}: {exc}; runs start their own engines", file=sys.stderr)
    else:
        if os.fork() == 0:
            _die_with_parent(worker)
            try:
                serve(listener)
            finally:
                os._exit(0)
        listener.close()
        os.environ[SOCKET_ENV] = str(path)
    os.execvp(command[0], command)  # noqa: S606 - the worker's argv list, from our own start code


if __name__ == "__main__":
    main(sys.argv[1:])
