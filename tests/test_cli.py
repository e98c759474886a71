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
