"""The Faust app is built from settings alone."""

from pathlib import Path

from streams.app import create_app
from streams.settings import StreamSettings


def test_workers_of_two_topic_prefixes_keep_their_state_apart(tmp_path: Path):
    dirs = {
        prefix: Path(
            create_app(
                StreamSettings(
                    topic_prefix=prefix,
                    data_dir=tmp_path / "not-yet",
                    forecast=False,
                    classify=False,
                )
            ).conf.datadir
        )
        for prefix in ("one", "two")
    }
    assert dirs["one"] != dirs["two"]
    assert all(d.is_relative_to(tmp_path / "not-yet") for d in dirs.values())
    assert (tmp_path / "not-yet").is_dir()  # made, parents and all: Faust makes only the last
