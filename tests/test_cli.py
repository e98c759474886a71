import pytest

from glue_zeropoint import __version__
from glue_zeropoint.cli import COMMANDS, build_parser, main
from glue_zeropoint.progress import TerminalProgress


def test_every_contract_command_is_available():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == set(COMMANDS)


def test_version_and_missing_command(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and __version__ in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2


def test_progress_is_silent_off_a_terminal(capsys):
    import io

    stream = io.StringIO()
    with TerminalProgress("x", stream=stream) as progress:
        progress(1, 2, "half")
    assert stream.getvalue() == ""
    with TerminalProgress("x", stream=stream, enabled=True) as progress:
        progress(1, 2, "half")
    assert "1/2" in stream.getvalue()


def test_unforeseen_errors_are_one_line_not_a_traceback(monkeypatch, capsys):
    from glue_zeropoint.commands import demo

    def broken(args):
        raise KeyError("something internal\nwith a second line")

    monkeypatch.setattr(demo, "run", broken)
    assert main(["demo"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("glue-zeropoint demo: internal error: KeyError:")
    assert "run with -v" in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert main(["-v", "demo"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_exit_codes_follow_one_policy(monkeypatch, capsys):
    from glue_zeropoint.commands import demo
    from glue_zeropoint.exceptions import CatalogServiceError, FitError, InputError

    for exc, code in ((InputError("bad"), 2), (FitError("2 stars"), 2),
                      (CatalogServiceError("VizieR: HTTP 500"), 1)):
        monkeypatch.setattr(demo, "run", lambda args, exc=exc: (_ for _ in ()).throw(exc))
        assert main(["demo"]) == code
    capsys.readouterr()
