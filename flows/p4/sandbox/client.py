"""``P4``: a drop-in for P4Python's ``P4.P4`` that talks to the sandbox server.

The convenience layer of P4Python (``run_*``/``fetch_*``/``save_*``/``delete_*``
dispatch, ``run_submit`` with a change spec, ``run_print``/``run_filelog``
post-processing, ``run_resolve(resolver=...)``, the context managers) is P4Python's
own Python code, borrowed method by method, so it behaves identically. Only the
adapter underneath (connect, run, spec parsing) is the sandbox's.
"""
from __future__ import annotations

import getpass
import os
import socket
from typing import Any, Iterator

import P4 as _p4

from . import forms
from . import messages as M
from .admin import restarts
from .core import COMMANDS, RESULT_LIMITED, Content, Context, check_max_results, max_results
from .errors import CommandError
from .store import Store

SANDBOX_PREFIX = "sandbox:"
SERVER_VERSION = "P4D/SANDBOX/2026.1/0000000 (2026/11/01)"

# P4Python's pure-Python conveniences, reused as they are.
_BORROWED = (
    "__getattr__", "_P4__save", "_P4__parse_spec", "_P4__format_spec", "_P4__fetch",
    "_P4__iterate", "_P4__flatten", "__repr__", "__enter__", "__exit__", "log_messages",
    "run_submit", "run_shelve", "delete_shelve", "run_login", "run_password", "run_filelog",
    "run_print", "run_resolve", "run_tickets", "while_tagged", "at_exception_level",
    "using_handler", "saved_context", "temp_client", "specfields",
    "RAISE_ALL", "RAISE_ERROR", "RAISE_ERRORS", "RAISE_NONE",
    "EV_NONE", "EV_USAGE", "EV_UNKNOWN", "EV_CONTEXT", "EV_ILLEGAL", "EV_NOTYET", "EV_PROTECT",
    "EV_EMPTY", "EV_FAULT", "EV_CLIENT", "EV_ADMIN", "EV_CONFIG", "EV_UPGRADE", "EV_COMM",
    "EV_TOOBIG", "E_EMPTY", "E_INFO", "E_WARN", "E_FAILED", "E_FATAL",
)

_MEMBERS = [
    "tagged", "api_level", "maxresults", "maxscanrows", "maxlocktime", "maxopenfiles",
    "maxmemory", "exception_level", "debug", "track", "streams", "graph", "case_folding",
    "charset", "client", "p4config_file", "p4enviro_file", "cwd", "host", "ignore_file",
    "language", "port", "prog", "ticket_file", "password", "user", "version", "encoding",
    "input", "resolver", "handler", "progress", "errors", "warnings", "messages", "logger",
]


class _Adapter:
    """The sandbox's stand-in for ``P4API.P4Adapter``."""

    PATCHLEVEL = "0"
    OS = "LINUX"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        env = os.environ
        d = self.__dict__
        d["tagged"] = 1
        d["api_level"] = 99
        d["maxresults"] = d["maxscanrows"] = d["maxlocktime"] = d["maxopenfiles"] = 0
        d["maxmemory"] = 0
        d["exception_level"] = 2
        d["debug"] = 0
        d["track"] = 0
        d["streams"] = 1
        d["graph"] = 1
        d["case_folding"] = 0
        d["charset"] = env.get("P4CHARSET", "")  # P4Python reads P4CHARSET at construction
        d["encoding"] = "utf8"
        d["port"] = env.get("P4PORT", "perforce:1666")
        d["user"] = env.get("P4USER") or getpass.getuser()
        d["client"] = env.get("P4CLIENT") or socket.gethostname()
        d["password"] = env.get("P4PASSWD", "")
        d["host"] = env.get("P4HOST") or socket.gethostname()
        d["cwd"] = os.getcwd()
        d["prog"] = "unnamed p4-python script"
        d["version"] = ""
        d["language"] = ""
        d["ticket_file"] = env.get("P4TICKETS") or os.path.join(os.path.expanduser("~"), ".p4tickets")
        d["p4config_file"] = None
        d["p4enviro_file"] = None
        d["ignore_file"] = env.get("P4IGNORE", "")
        d["input"] = None
        d["resolver"] = None
        d["handler"] = None
        d["progress"] = None
        d["logger"] = None
        d["errors"] = []
        d["warnings"] = []
        d["messages"] = []
        d["_store"] = None
        for k, v in kwargs.items():
            setattr(self, k, v)

    @property
    def __members__(self) -> list[str]:
        return list(_MEMBERS)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "cwd":
            value = os.fspath(value)
        if name == "port" and self.__dict__.get("_store") is not None and value != self.__dict__.get("port"):
            raise _p4.P4Exception("[P4.port] Can't change port once you've connected.")
        self.__dict__[name] = value

    # --- connection ------------------------------------------------------------------
    def connect(self) -> "_Adapter":
        port = str(self.port)
        if not port.startswith(SANDBOX_PREFIX):
            self._raise_connect(f"The sandbox P4 reaches only 'sandbox:<dir>' ports, not '{port}'. "
                                "Use P4Python's P4 for a real server (flows.p4.connect picks by port).")
        root = port[len(SANDBOX_PREFIX):]
        if not root:
            self._raise_connect("'sandbox:' needs a directory: sandbox:/path/to/depot")
        try:
            store = Store(root, create=False)
        except (FileNotFoundError, OSError) as exc:
            self._raise_connect(f"{exc}. Create one with 'p4integ sandbox init {root}'.")
        self.__dict__["_store"] = store
        self.__dict__["_restarts"] = restarts(store)
        return self

    def _raise_connect(self, detail: str) -> None:
        m = M.msg(M.BAD_PORT, detail=detail)
        self.__dict__["errors"] = [m.text]
        self.__dict__["messages"] = [m.p4message()]
        raise _p4.P4Exception(("[P4.connect()] Connect to server failed; check $P4PORT.",
                               [m.text], [], [_proxy_dict(m)]))

    def disconnect(self) -> None:
        store = self.__dict__.get("_store")
        if store is not None:
            store.close()
        self.__dict__["_store"] = None

    def connected(self) -> bool:
        return self.__dict__.get("_store") is not None

    @property
    def server_level(self) -> int:
        return 57

    @property
    def server_case_insensitive(self) -> bool:
        return self._connected_store().case_insensitive

    @property
    def server_unicode(self) -> bool:
        return self._connected_store().unicode

    def _connected_store(self) -> Store:
        # P4Python answers these from the server's protocol reply, so only once connected.
        store = self.__dict__.get("_store")
        if store is None:
            raise _p4.P4Exception("Not connected to a Perforce server")
        return store

    def env(self, var: str) -> str | None:
        return os.environ.get(var)

    def set_env(self, var: str, value: str) -> None:
        os.environ[var] = value

    def is_ignored(self, path: str) -> bool:
        return False

    @classmethod
    def identify(cls) -> str:
        return f"Perforce sandbox server for P4Python ({SERVER_VERSION})"

    # --- specs -------------------------------------------------------------------------
    def parse_spec(self, spec_type: str, form: str) -> _p4.Spec:
        fdef = forms.FORMS[spec_type]
        return forms.new_spec(fdef, forms.parse_text(fdef, form))

    def format_spec(self, spec_type: str, spec: dict[str, Any]) -> str:
        return forms.format_text(forms.FORMS[spec_type], spec)

    def define_spec(self, *args: Any) -> None:
        raise _p4.P4Exception("define_spec is not supported by the sandbox server")

    # --- run -----------------------------------------------------------------------
    def run(self, *args: Any, **kargs: Any) -> list[Any]:
        saved = {}
        kargs.pop("resultLogging", None)
        for k, v in kargs.items():
            saved[k] = getattr(self, k)
            setattr(self, k, v)
        try:
            return self._run(self._P4__flatten(args))
        finally:
            for k, v in saved.items():
                setattr(self, k, v)

    def _run(self, flat: tuple[Any, ...]) -> list[Any]:
        d = self.__dict__
        d["errors"], d["warnings"], d["messages"] = [], [], []
        cmd, args = str(flat[0]), [a.decode() if isinstance(a, bytes) else str(a) for a in flat[1:]]
        cmd_text = "p4 " + " ".join([cmd] + args)
        if self.logger:
            self.logger.info(cmd_text)
        store: Store | None = d.get("_store")
        if store is None:
            # P4Python's own shape (PythonClientAPI::Except): P4Exception.errors == ["not connected."]
            raise _p4.P4Exception(("[P4.run()] not connected.", [], []))
        if restarts(store) != d.get("_restarts"):
            return self._dropped(cmd_text)
        results: list[Any] = []
        msgs: list[M.Message] = []
        infos: list[M.Message] = []
        fn = COMMANDS.get(cmd)
        ctx = Context(store=store, port=str(self.port), user=str(self.user), client=str(self.client),
                      cwd=str(self.cwd), host=str(self.host), input=self.input, resolver=self.resolver)
        ctx.password = self.password  # type: ignore[attr-defined]
        ctx.ticket_file = self.ticket_file  # type: ignore[attr-defined]
        handler = self.handler
        try:
            if fn is None:
                raise CommandError(M.msg(M.UNKNOWN_COMMAND))
            with store.transaction():
                check_charset(store, str(self.charset or ""))
                from .auth import check_auth, remember_user  # local: auth imports core too
                check_auth(ctx, cmd)
                written = store.db.total_changes
                for item in _limited(ctx, cmd, fn(ctx, args)):
                    if isinstance(item, M.Message):
                        if item.severity == M.E_INFO:
                            # P4Python (P4Result::AddError): with no handler an info is output
                            # and a P4Message in p4.messages; a handler gets its text only.
                            if handler is None:
                                infos.append(item)
                            self._deliver(results, handler, "outputInfo", item.text)
                        else:
                            msgs.append(item)
                            if handler is not None and handler.outputMessage(item.p4message()) == 1:
                                msgs.pop()
                    elif isinstance(item, Content):
                        if self.tagged or not isinstance(item.data, dict):
                            kind = "outputBinary" if isinstance(item.data, bytes) else "outputText"
                            self._deliver(results, handler, kind, item.data)
                    else:
                        self._deliver(results, handler, "outputStat", item)
                if store.db.total_changes != written:
                    remember_user(ctx)
        except CommandError as exc:
            msgs.extend(exc.messages)
        except _Cancelled:
            pass
        finally:
            d["input"] = None
        d["messages"].extend(m.proxy() for m in infos)
        for m in msgs:
            d["messages"].append(m.p4message())
            if m.severity >= M.E_FAILED:
                d["errors"].append(m.text)
            elif m.severity == M.E_WARN:
                d["warnings"].append(m.text)
        if self.logger:
            self.log_messages()
        level = self.exception_level
        if d["errors"] and level >= 1:
            value = self._exc_value("Errors", cmd_text)
            if any(m.severity == M.E_FATAL for m in msgs):
                self.disconnect()  # as P4Python does after a fatal error (PythonClientAPI::Run)
            raise _p4.P4Exception(value)
        if d["warnings"] and level >= 2:
            raise _p4.P4Exception(self._exc_value("Warnings", cmd_text))
        return results

    def _dropped(self, cmd_text: str) -> list[Any]:
        """The server went away under this connection (``p4integ sandbox restart``): the command
        fails as P4API reports a closed connection, and the connection is gone, so P4's
        ``connected()`` is False and a further ``run`` says "not connected"."""
        d = self.__dict__
        m = M.msg(M.CONNECTION_DROPPED)
        d["errors"], d["warnings"], d["messages"] = [m.text], [], [m.proxy()]
        value = self._exc_value("Errors", cmd_text)
        self.disconnect()
        if self.exception_level >= 1:
            raise _p4.P4Exception(value)
        return []

    def _deliver(self, results: list[Any], handler: Any, method: str, item: Any) -> None:
        if handler is not None:
            verdict = getattr(handler, method)(item)
            if verdict == _p4.OutputHandler.CANCEL:
                raise _Cancelled()
            if verdict == _p4.OutputHandler.HANDLED:
                return
        results.append(item)

    def _exc_value(self, kind: str, cmd_text: str) -> tuple[Any, ...]:
        # P4Python (PythonClientAPI::Except): a header, then each error, then warnings.
        text = f"[P4#run] {kind} during command execution( \"{cmd_text}\" )\n"
        for e in self.errors:
            text += f"\n\t[Error]: {e}"
        if self.exception_level >= 2 and self.warnings:
            if self.errors:
                text += "\n"
            for w in self.warnings:
                text += f"\n\t[Warning]: {w}"
        text += "\n\n"
        # P4Python passes its P4Message objects; P4Exception keeps them as they are.
        return (text, list(self.errors), list(self.warnings), list(self.messages))


def _limited(ctx: Context, cmd: str, items: Iterator[Any]) -> Iterator[Any]:
    """A read-only command's output, refused whole when it has more rows than the
    MaxResults limit (Helix buffers the rows and fails before sending any)."""
    if cmd not in RESULT_LIMITED or not max_results(ctx):
        return items
    buffered = list(items)
    check_max_results(ctx, sum(1 for i in buffered if isinstance(i, dict)))
    return iter(buffered)


def check_charset(store: Store, charset: str) -> None:
    """Helix's unicode handshake: a unicode server serves only clients that name a
    charset, and a server not in unicode mode refuses a client that names one
    (P4CHARSET in the Command Reference). 'auto' lets the client follow the server."""
    if charset == "auto":
        return
    names_one = charset not in ("", "none")
    if store.unicode and not names_one:
        raise CommandError(M.msg(M.UNICODE_NEEDS_CHARSET))
    if names_one and not store.unicode:
        raise CommandError(M.msg(M.CHARSET_NEEDS_UNICODE))


class _Cancelled(Exception):
    pass


def _proxy_dict(m: M.Message) -> dict[str, Any]:
    p = m.p4message()
    return {"severity": p.severity, "generic": p.generic, "msgid": p.msgid,
            "msg_dict": p.dict, "msg_str": str(p)}


class P4(_Adapter):
    """Drop-in for ``P4.P4`` on ``sandbox:<dir>`` ports."""

    def connect(self) -> "P4":
        _Adapter.connect(self)
        return self


for _name in _BORROWED:
    setattr(P4, _name, _p4.P4.__dict__[_name])
P4.identify = classmethod(lambda cls: _Adapter.identify())  # type: ignore[assignment]
