"""The `linkcast` command line: subcommands exist and bad arguments are refused clearly."""

import pytest

from deploy.cli import build_parser, main


@pytest.mark.parametrize(
    "command", ["kafka", "demo", "worker", "topics", "schema", "simulate", "api"]
)
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: linkcast" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["simulate", "--links", "0"], "must be 1 or more"),
        (["simulate", "--rate", "fast"], "is not a number"),
        (["simulate", "--speed", "-2"], "must be a positive number"),
        (["simulate", "--speed", "2", "--max"], "not allowed with argument"),
        (["simulate", "--start", "tomorrow"], "neither 'now' nor epoch seconds"),
        (["kafka", "restart"], "invalid choice"),
    ],
)
def test_bad_arguments_exit_with_a_reason(argv, says, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(argv)
    assert exit_info.value.code == 2
    assert says in capsys.readouterr().err


def test_a_bad_setting_is_reported_by_its_variable_name(monkeypatch, capsys):
    monkeypatch.setenv("LINKCAST_PARTITIONS", "zero")
    assert main(["topics", "create"]) == 2
    assert "LINKCAST_PARTITIONS" in capsys.readouterr().err


def test_schema_command_writes_files(tmp_path, capsys):
    assert main(["schema", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "flows.schema.json").exists()
