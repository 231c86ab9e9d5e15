"""The throughput benchmarks run end to end (briefly) and report what BENCHMARKS.md quotes."""

from surgedesk.adapters.gateway import run_loop


def test_the_throughput_benchmark_alternates_rounds_and_reports_cpu_per_call():
    from surgedesk.benchmarks.throughput import run

    report = run_loop(run(0.5, 8, "in-process", rounds=2, without_group_commit=True))
    assert len(report["rounds"]) == 2
    assert report["ratio_in-process"] in [r["ratio_in-process"] for r in report["rounds"]]
    for r in report["rounds"]:
        for side in ("echo", "in-process", "without_group_commit"):
            assert r[side]["requests"] > 0 and r[side]["errors"] == 0
            assert r[side]["server_cpu_us"] > 0 and r[side]["client_cpu_us"] > 0
        assert r["in-process"]["redis_cpu_us"] > 0  # the durable starts cost Redis work
        # a start's writes are one script call; its commands run inside it
        assert 0.9 < r["in-process"]["redis_scripts_per_call"] < 1.5
        assert r["in-process"]["redis_commands_per_call"] > 5
        assert "redis_cpu_us" not in r["echo"]
        assert r["without_group_commit"]["held_writes"] == 0  # off for that run only
        assert r["group_commit_gain"] == (r["in-process"]["per_s"]
                                          / r["without_group_commit"]["per_s"])
    assert report["ratio_without_group_commit"] in [r["ratio_without_group_commit"]
                                                    for r in report["rounds"]]
    # the gateway is measured as surgedesk serve runs it: its gRPC metrics saw every start
    starts = report["warmup"]["in-process"]["requests"] + sum(
        r["in-process"]["requests"] + r["without_group_commit"]["requests"]
        for r in report["rounds"])
    assert report["starts_counted_by_metrics"] == starts


def test_the_throughput_benchmark_measures_the_gateway_placed_by_ray_beside_in_process(
        tmp_path):
    """As a user runs it (its own process, so its own Ray): both hostings, the ratio."""
    import json
    import subprocess
    import sys

    out = tmp_path / "throughput.json"
    done = subprocess.run(
        [sys.executable, "-m", "surgedesk.benchmarks.throughput", "--seconds", "0.5",
         "--concurrency", "8", "--hosting", "both", "--json", str(out)],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ratio ray/in-process" in done.stdout
    report = json.loads(out.read_text())
    (r,) = report["rounds"]
    for side in ("in-process", "ray"):
        assert r[side]["requests"] > 0 and r[side]["errors"] == 0
        assert r[side]["server_cpu_us"] > 0  # the Ray gateway's own process, read from /proc
        assert 0.9 < r[side]["redis_scripts_per_call"] < 1.5
    assert report["ray_vs_in_process"] == r["ray"]["per_s"] / r["in-process"]["per_s"]


def test_the_gateway_cost_benchmark_measures_every_layer_beside_the_echo_server():
    from surgedesk.benchmarks.gateway_cost import LAYERS, run

    report = run_loop(run(0.3, 8, warmup_s=0.2))
    assert list(report["layers"]) == list(LAYERS)
    for layer, r in report["layers"].items():
        assert r["errors"] == 0 and r["requests"] > 0 and r["echo"]["requests"] > 0, layer
        assert ("redis_cpu_us" in r) == (layer in ("answer+redis", "durable")), layer
    alone = report["desk_alone"]
    assert alone["requests"] > 0 and alone["server_cpu_us"] > 0 and alone["redis_cpu_us"] > 0


def test_the_gateways_benchmark_measures_one_and_several_gateways_in_the_same_rounds():
    from surgedesk.benchmarks.gateways import run

    report = run(2, 0.5, 1, 8, 4)
    (r,) = report["rounds"]
    for side in ("one", "many"):
        assert r[side]["requests"] > 0 and r[side]["errors"] == 0
    assert report["ratio"] == r["many"]["per_s"] / r["one"]["per_s"]
