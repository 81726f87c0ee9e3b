"""An example depot for people and tests: main and rel with history and work to merge.

After ``make_example(dir)``:
- ``//depot/main/...`` has a few files over several changes; ``//depot/rel/...`` was
  branched from it and then changed on its own;
- integrating main into rel gives one clean three-way merge (``src/app.py``, changed
  at different lines on both sides), one conflict (``src/config.ini``, the same line
  changed differently), one new file (``docs/notes.txt``, a branch) and one binary file
  changed on main only (``assets/logo.bin``, copied);
- workspace ``rel-integ`` (root ``<dir>/workspaces/rel-integ``) maps ``//depot/rel/...``
  and is where an integration job runs.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .sandbox import P4, init_depot

USER = "release-bot"
AUTHOR_CLIENT = "authoring"
INTEG_CLIENT = "rel-integ"

_APP_V1 = "".join(f"def step_{i}():\n    return {i}\n\n" for i in range(1, 9))
_README = "# Widget\n\nThe widget product.\n\nSee docs.\n"
_CONFIG_V1 = "[product]\nname = widget\nversion = 2.0\nchannel = stable\n"


@dataclass(frozen=True)
class Example:
    port: str
    depot_dir: str
    user: str
    client: str
    workspace: str
    source: str = "//depot/main/..."
    target: str = "//depot/rel/..."
    branch: str = "main-to-rel"


def _write(root: Path, rel: str, data: str | bytes) -> str:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.chmod(0o644)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return str(path)


def _client(p4: P4, name: str, root: Path, view: list[str]) -> None:
    spec = p4.fetch_client(name)
    spec["Root"] = str(root)
    spec["View"] = view
    spec["Description"] = f"{name} workspace of the example depot.\n"
    p4.save_client(spec)


def make_example(directory: str | os.PathLike[str], *, conflict: bool = True,
                 second_conflict: bool = False) -> Example:
    """``conflict=False`` leaves config.ini untouched on rel: everything merges by itself.
    ``second_conflict=True`` also changes README.md's same line on both sides: two conflicts."""
    base = Path(directory).resolve()
    depot_dir = base / "depot"
    if (depot_dir / "db.sqlite").exists():
        raise FileExistsError(f"{depot_dir} already holds a depot; choose an empty directory")
    # A private example server its administrator set to security level 0, so the demo
    # and the tests need no password (a new Helix server starts at level 4).
    port = init_depot(depot_dir, security=0)
    author_root = base / "workspaces" / AUTHOR_CLIENT
    integ_root = base / "workspaces" / INTEG_CLIENT
    author_root.mkdir(parents=True)
    integ_root.mkdir(parents=True)
    p4 = P4(port=port, user=USER, client=AUTHOR_CLIENT, cwd=str(author_root))
    p4.connect()
    try:
        _client(p4, AUTHOR_CLIENT, author_root, [f"//depot/... //{AUTHOR_CLIENT}/..."])
        files = {
            "main/README.md": "# Widget\n\nThe widget product.\n",
            "main/src/app.py": _APP_V1,
            "main/src/config.ini": _CONFIG_V1,
            "main/assets/logo.bin": b"\x89LOGO\x00\x01\x02v1",
        }
        p4.run_add(*[_write(author_root, rel, data) for rel, data in files.items()])
        p4.run_submit("-d", "Widget 2.0: first files")
        p4.run_edit("//depot/main/README.md")
        _write(author_root, "main/README.md", _README)
        p4.run_submit("-d", "README: point to the docs")

        branch = p4.fetch_branch("main-to-rel")
        branch["View"] = ["//depot/main/... //depot/rel/..."]
        branch["Description"] = "Release line of the widget.\n"
        p4.save_branch(branch)
        p4.run_integrate("-b", "main-to-rel")
        p4.run_submit("-d", "Branch rel from main")

        # Work on rel after the branch point.
        p4.run_edit("//depot/rel/src/app.py", "//depot/rel/src/config.ini",
                    *(["//depot/rel/README.md"] if second_conflict else []))
        _write(author_root, "rel/src/app.py", _APP_V1.replace("return 8", "return 8  # rel hotfix"))
        if conflict:
            _write(author_root, "rel/src/config.ini", _CONFIG_V1.replace("version = 2.0", "version = 2.0.1"))
        if second_conflict:
            _write(author_root, "rel/README.md", _README.replace("product.\n", "product, release 2.0.\n", 1))
        p4.run_submit("-d", "rel: hotfix 2.0.1")

        # Work on main that rel does not have yet.
        p4.run_edit("//depot/main/src/app.py", "//depot/main/src/config.ini", "//depot/main/assets/logo.bin",
                    *(["//depot/main/README.md"] if second_conflict else []))
        if second_conflict:
            _write(author_root, "main/README.md", _README.replace("product.\n", "product, now with plugins.\n", 1))
        _write(author_root, "main/src/app.py", _APP_V1.replace("return 1", "return 1  # main feature"))
        _write(author_root, "main/src/config.ini", _CONFIG_V1.replace("version = 2.0", "version = 2.1"))
        _write(author_root, "main/assets/logo.bin", b"\x89LOGO\x00\x01\x02v2")
        p4.run_add(_write(author_root, "main/docs/notes.txt", "Release notes for 2.1.\n"))
        p4.run_submit("-d", "main: feature for 2.1")

        _client(p4, INTEG_CLIENT, integ_root, [f"//depot/rel/... //{INTEG_CLIENT}/..."])
    finally:
        p4.disconnect()
    return Example(port=port, depot_dir=str(depot_dir), user=USER, client=INTEG_CLIENT,
                   workspace=str(integ_root))
