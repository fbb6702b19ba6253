import pytest

from structlearn.cli import main


def test_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    assert "structlearn" in capsys.readouterr().out


def test_unknown_command_exits_two() -> None:
    with pytest.raises(SystemExit) as info:
        main(["no-such-command"])
    assert info.value.code == 2


def test_broken_pipe_exits_quietly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import structlearn.cli.sample as sample_cli

    def reader_gone(args: object) -> int:
        raise BrokenPipeError(32, "Broken pipe")  # what print() raises once `| head` has exited

    monkeypatch.setattr(sample_cli, "run_sample", reader_gone)
    assert main(["sample", "run"]) == 141  # 128 + SIGPIPE, as a shell reports `yes | head`
    assert capsys.readouterr().err == ""  # no "error: Broken pipe" line
