"""Global command-line options mean the same before and after the command, or are refused.

argparse let a subcommand's own defaults overwrite what was written before it: `xai-mcp
--read-only serve --transport http` served the paid tools. Every global option is checked here
in both positions, for every command, through the CLI's own parser.
"""

from __future__ import annotations

import pytest

from xai_mcp.cli import _TAKES, GLOBAL_OPTIONS, _settings, parse_args

# What each option is written as, and the value it must take.
WRITTEN: dict[str, tuple[list[str], object]] = {
    "emulator": (["--emulator"], True),
    "toolsets": (["--toolsets", "chat,image"], "chat,image"),
    "read_only": (["--read-only"], True),
    "verbose": (["-v"], 1),
}
# The arguments a command needs besides the options.
REQUIRED = {"call": ["chat"]}
CASES = [(command, name) for command in _TAKES for name in GLOBAL_OPTIONS]


def _argv(command: str, option: list[str], *, before: bool) -> list[str]:
    rest = REQUIRED.get(command, [])
    return [*option, command, *rest] if before else [command, *rest, *option]


@pytest.mark.parametrize(("command", "name"), CASES)
@pytest.mark.parametrize("before", [True, False], ids=["before", "after"])
def test_a_global_option_is_honoured_in_either_place_or_refused(command, name, before, capsys):
    option, expected = WRITTEN[name]
    argv = _argv(command, option, before=before)
    if name in _TAKES[command]:
        args = parse_args(argv)
        assert args.command == command
        assert getattr(args, name) == expected, argv
        for other in GLOBAL_OPTIONS:  # and nothing else changed
            if other != name:
                assert getattr(args, other) in (None, False, 0), (argv, other)
    else:
        with pytest.raises(SystemExit) as exited:
            parse_args(argv)
        assert exited.value.code == 2
        error = capsys.readouterr().err
        assert "does not apply to the" in error or "unrecognized arguments" in error, error


def test_options_in_both_places_add_up_or_must_agree(capsys):
    assert parse_args(["-v", "serve", "-vv"]).verbose == 3
    assert parse_args(["--read-only", "call", "tokenize_text", "--read-only"]).read_only is True
    assert parse_args(["--toolsets", "chat", "serve", "--toolsets", "chat"]).toolsets == "chat"
    with pytest.raises(SystemExit):
        parse_args(["--toolsets", "chat", "serve", "--toolsets", "image"])
    assert "--toolsets is given twice" in capsys.readouterr().err


def test_no_command_serves_with_the_options_given():
    args = parse_args(["--read-only", "--toolsets", "models"])
    assert (args.command, args.read_only, args.toolsets) == ("serve", True, "models")
    # What the server is built from: the settings the options make.
    settings = _settings(parse_args(["--read-only", "serve", "--transport", "http"]))
    assert settings.read_only is True
    assert _settings(parse_args(["serve", "--toolsets", "chat"])).toolsets == "chat"
