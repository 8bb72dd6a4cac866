"""`linkcast bench processor`: the worker's own work, measured without Kafka."""

import json
from pathlib import Path

from tests.helpers import run_linkcast


def test_the_processor_bench_classifies_every_record_and_closes_their_bins(tmp_path: Path):
    out = tmp_path / "processor.json"
    done = run_linkcast(
        ["bench", "processor", "--records", "3000", "--links", "10", "--out", str(out)], {}
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["bench"] == "processor"
    assert result["classifications"] == 3000
    # 300 records a link at 10 a second: event times up to 29.9 s, so with the 2 s of
    # lateness the watermark reaches 27.9 s and bins 0 to 26 close (the idle timer, which
    # would close the rest, does not run here)
    assert result["bins"] == 10 * 27
    assert result["value"] > 0
    assert result["ratio"] == result["value"] / result["baseline"]
    assert json.loads(out.read_text())["links"] == 10
