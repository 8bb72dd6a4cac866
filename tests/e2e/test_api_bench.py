"""`linkcast bench api` end to end, briefly: both servers run, the result has its shape.

Speed is the benchmark's business, not this test's: it checks what the run
reports, not how fast it was.
"""

import json

import pytest

from tests.helpers import run_linkcast

pytestmark = [pytest.mark.e2e]

REQUIRED = {
    "bench",
    "value",
    "unit",
    "baseline",
    "ratio",
    "p50_ms",
    "p99_ms",
    "rate",
    "p99_ms_at_rate",
    "baseline_p99_ms_at_rate",
    "generator",
    "goals",
}


@pytest.mark.parametrize("generator", ["auto", "python"])
def test_bench_api_prints_its_result_last_and_writes_the_full_one(tmp_path, generator):
    out = tmp_path / "api.json"
    args = ["bench", "api", "--duration", "1", "--links", "20", "--rate", "200"]
    done = run_linkcast([*args, "--generator", generator, "--out", str(out)], {})
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result.keys() >= REQUIRED
    assert (result["bench"], result["unit"], result["rate"]) == ("api", "requests/s", 200.0)
    assert result["value"] > 0
    assert result["baseline"] > 0
    assert result["ratio"] == result["value"] / result["baseline"]
    assert result["p99_ms"] >= result["p50_ms"] > 0
    assert len(result["goals"]) == 3
    assert (result["repeat"], result["statistic"]) == (1, "median")
    if generator == "python":
        assert result["generator"] == "python"
    saved = json.loads(out.read_text())
    assert {k: saved[k] for k in result} == result
    for target in ("linkcast", "bare"):
        for phase in ("max", "fixed"):
            run = saved["runs"][target][phase]
            assert run["requests"] > 0
            assert run["non_2xx"] == run["errors"] == 0
    assert saved["runs"]["linkcast"]["fixed"]["requests"] == 200  # 200/s for 1 s
    assert "ratio     linkcast / bare requests/s" in done.stdout
