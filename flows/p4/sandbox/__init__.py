"""The sandbox Helix server: P4Python's ``P4`` interface over a depot on disk.

``from flows.p4.sandbox import P4`` gives a drop-in for ``P4.P4`` reached with
``port = "sandbox:<dir>"``. Exceptions, specs, resolvers and output handlers are
P4Python's own classes, re-exported so code can import them from either place.
"""
from P4 import Map, OutputHandler, P4Exception, Resolver, Spec

# Importing the command modules registers their commands.
from . import auth, cmd_files, cmd_groups, cmd_integ, cmd_keys, cmd_move, cmd_open  # noqa: F401
from . import cmd_resolve, cmd_shelve, cmd_specs, cmd_submit, cmd_sync  # noqa: F401
from .admin import configure, init_depot, restart, set_group, set_max_results, set_password
from .client import P4

__all__ = ["P4", "P4Exception", "Map", "OutputHandler", "Resolver", "Spec", "init_depot", "set_max_results",
           "set_password", "set_group", "configure", "restart"]
