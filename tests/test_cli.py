"""Command-line conventions: unknown verbs exit 2 with a suggestion (never a window),
--version on both commands, --json on info and models, the Qt start-up check."""

from __future__ import annotations

import json

import pytest

import pvdesk
from pvdesk import cli
from pvdesk.cli import main
from pvdesk.paths import sample_slide
from pvdesk.qt_check import XCB_LIBRARIES, gui_problem, uses_xcb


@pytest.fixture
def no_gui(monkeypatch):
    """Fail the test if the window would open."""
    def boom(argv):
        raise AssertionError(f"the GUI was started with {argv}")
    monkeypatch.setattr(cli, "_gui", boom)


@pytest.mark.parametrize("word, says", [
    ("modles", "unknown verb 'modles'; did you mean 'models'?"),
    ("predcit", "did you mean 'predict'?"),
    ("reveiw", "did you mean 'review'?"),
    ("inf", "did you mean 'info'?"),
    ("frobnicate", "unknown verb 'frobnicate' (verbs: info, tiles, review"),
])
def test_unknown_verbs_exit_2_with_one_line(no_gui, capsys, word, says):
    assert main([word]) == 2
    err = capsys.readouterr().err.strip()
    assert says in err and "\n" not in err and err.startswith("pvdesk: error: ")


def test_mistyped_sub_verb_gets_a_suggestion(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["review", "stat", "x.pvdb"])
    assert exc.value.code == 2
    assert "did you mean 'stats'?" in capsys.readouterr().err


def test_a_path_opens_the_window(monkeypatch, tmp_path):
    """Existing or not: a missing file is reported by the window (launchers hide stderr)."""
    opened = []
    monkeypatch.setattr(cli, "_gui", lambda argv: opened.append(argv) or 0)
    img = tmp_path / "slide"
    img.write_bytes(b"")
    assert main([str(img)]) == 0 and main([]) == 0 and main(["gone/modles.svs"]) == 0
    assert opened == [[str(img)], [], ["gone/modles.svs"]]


def test_version_on_both_commands(capsys):
    from training.cli import main as train_main

    for entry, prog in ((main, "pvdesk"), (train_main, "pvdesk-train")):
        with pytest.raises(SystemExit) as exc:
            entry(["--version"])
        assert exc.value.code == 0
        assert capsys.readouterr().out.strip() == f"{prog} {pvdesk.__version__}"


def test_info_json(capsys):
    assert main(["info", str(sample_slide()), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["vendor"] == "aperio" and d["dimensions"] == [2220, 2967]
    assert d["mpp"] == pytest.approx(0.499) and d["objective_power"] == 20
    from pvdesk.slides import open_source
    from pvdesk.tiling import make_grid

    with open_source(sample_slide()) as src:
        assert d["tiles"]["count"] == len(make_grid(src)) > 0 and d["tiles"]["side_px"] == 224
    assert 0 < d["tissue_fraction"] < 1


def test_models_json_lists_the_packaged_bundles(capsys):
    from pvdesk.paths import resources_dir

    assert main(["models", "--json"]) == 0
    bundles = {b["name"]: b for b in json.loads(capsys.readouterr().out)["bundles"]}
    assert {"demo-resnet50", "demo-clip-rn50"} <= set(bundles)
    assert bundles["demo-resnet50"]["path"].startswith(str(resources_dir()))
    assert bundles["demo-resnet50"]["builtin"] and not bundles["demo-resnet50"]["trained"]


def test_resources_come_from_the_package():
    from importlib.resources import files

    from pvdesk.paths import resources_dir

    assert resources_dir() == files("pvdesk.resources")
    assert (resources_dir() / "models" / "demo-resnet50" / "manifest.json").is_file()
    assert sample_slide().is_file()


# -- the Qt start-up check -------------------------------------------------------------------

def test_missing_xcb_library_is_named_with_its_package():
    msg = gui_problem({"DISPLAY": ":0"}, "linux",
                      loadable=lambda so: so != "libxcb-cursor.so.0")
    assert "libxcb-cursor.so.0" in msg and "sudo apt install libxcb-cursor0" in msg
    assert "\n" not in msg
    assert gui_problem({"DISPLAY": ":0"}, "linux", loadable=lambda so: True) is None


def test_qt_check_only_where_xcb_is_used():
    never = lambda so: False  # noqa: E731 - every library missing
    assert gui_problem({"QT_QPA_PLATFORM": "offscreen"}, "linux", never) is None
    assert gui_problem({"DISPLAY": ":0"}, "darwin", never) is None
    assert gui_problem({"DISPLAY": ":0"}, "win32", never) is None
    wayland = {"WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland"}
    assert not uses_xcb(wayland) and uses_xcb({"QT_QPA_PLATFORM": "xcb"})
    assert "no display" in gui_problem({}, "linux", lambda so: True)
    msg = gui_problem({"QT_QPA_PLATFORM": "xcb"}, "linux", never)
    assert all(pkg in msg for _, pkg in XCB_LIBRARIES)


def test_gui_problem_stops_before_qt(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr("pvdesk.qt_check.gui_problem", lambda: "the window cannot start: X")
    assert main([]) == 2
    assert capsys.readouterr().err.strip() == "pvdesk: the window cannot start: X"


def test_selftest_opens_the_sample_in_the_window_and_closes(capsys, tmp_path, monkeypatch):
    """The hidden verb the frozen-app check runs (offscreen here)."""
    monkeypatch.setenv("PVDESK_HOME", str(tmp_path))
    assert main(["selftest"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dimensions"] == [2220, 2967] and out["opened_s"] >= out["window_s"] > 0
    assert "selftest" not in cli.build_parser().format_help()
