"""The conflict view draws an action resolve (filetype, move) as both sides' actions and a
theirs/yours choice per resolve, apart from the same file's content resolve."""
from __future__ import annotations

from typing import Any

from flows.stages import Conflict

RUN = "run-1"


def _files() -> list[dict[str, Any]]:
    """The conflicts artifact's rows (Conflict.model_dump) for one file with a content and a
    filetype resolve, and one renamed file."""
    app = dict(local_path="/ws/src/app.py", depot_file="//depot/rel/src/app.py",
               from_file="//depot/main/src/app.py", from_revs="#3")
    return [
        Conflict(**app, base="a\n", theirs="b\n", yours="c\n", merged="<<<<\n",
                 resolve_command="p4 resolve -c 7 /ws/src/app.py").model_dump(),
        Conflict(**app, kind="filetype", theirs_action="(text+x)", yours_action="(text+w)",
                 merge_action="(text+wx)").model_dump(),
        Conflict(local_path="/ws/src/util.py", depot_file="//depot/rel/src/util.py",
                 from_file="//depot/main/src/helpers.py", from_revs="", kind="move",
                 theirs_action="//depot/rel/src/helpers.py", yours_action="//depot/rel/src/util.py").model_dump(),
    ]


def _view(files: list) -> None:  # the source runs alone as the app: no outer names
    import streamlit as st

    from ui import conflicts

    conflicts.render_files("run-1", files, can_act=True)
    picked, errors = conflicts.choices_from_state("run-1", files)
    st.code(repr([(c.path, c.kind, c.choice) for c in picked]), language=None)


def _app() -> Any:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_view, args=(_files(),), default_timeout=30)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_action_resolves_show_both_sides_and_take_theirs_or_yours() -> None:
    at = _app()
    assert at.subheader[0].value.endswith("2 file(s) need you (3 resolves)")
    markdown = "\n".join(m.value for m in at.markdown)
    codes = [c.value for c in at.code]
    assert "Filetype change" in markdown and "Rename or move" in markdown
    assert "(text+x)" in codes and "(text+w)" in codes
    assert "//depot/rel/src/helpers.py" in codes and "//depot/rel/src/util.py" in codes
    content, filetype, move = at.radio
    assert content.options == ["Theirs (source)", "Yours (target)", "Merged as shown", "Edit the result"]
    assert filetype.options == ["Theirs: the file becomes (text+x)", "Yours: it stays (text+w)"]
    assert move.options == ["Theirs: the file moves to //depot/rel/src/helpers.py",
                            "Yours: it keeps its name //depot/rel/src/util.py"]
    # Only the content resolve has texts to compare.
    assert len(at.tabs) == 2
    captions = "\n".join(c.value for c in at.caption)
    assert captions.count("This file waits for 2 resolves (content, filetype resolve)") == 2
    assert "this choice decides its filetype resolve only" in captions


def test_each_resolve_of_a_file_is_chosen_on_its_own() -> None:
    at = _app()
    content, filetype, move = at.radio
    filetype.set_value("yours")
    move.set_value("theirs")
    content.set_value("theirs")
    at.run()
    assert at.code[-1].value == repr([("//depot/rel/src/app.py", "content", "theirs"),
                                      ("//depot/rel/src/app.py", "filetype", "yours"),
                                      ("//depot/rel/src/util.py", "move", "theirs")])
