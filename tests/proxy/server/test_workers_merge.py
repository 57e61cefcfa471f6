"""``/metrics`` for all workers: each worker's exposition parsed, summed by kind, and never stepping back."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from proxy.server.workers.merge import Merger, merge, parse, render


def exposition(requests: float, inflight: float, latency: list[float], *, start: float, max_fds: float,
               created: float | None = None) -> str:
    """What a worker's registry writes, with the values a test wants."""
    reg = CollectorRegistry()
    counter = Counter("rap_requests", "Requests", ["status"], registry=reg)
    counter.labels("200").inc(requests)
    Gauge("rap_inflight", "In flight", registry=reg).set(inflight)
    histogram = Histogram("rap_seconds", "Latency", buckets=(0.1, 1), registry=reg)
    for value in latency:
        histogram.observe(value)
    Gauge("process_start_time_seconds", "Start", registry=reg).set(start)
    Gauge("process_max_fds", "Max fds", registry=reg).set(max_fds)
    Gauge("rap_build_info", "Build", ["version"], registry=reg).labels("1.0").set(1)
    text = generate_latest(reg).decode()
    if created is not None:  # make the counter's creation time known
        text = "\n".join(line if not line.startswith("rap_requests_created") else
                         f'rap_requests_created{{status="200"}} {created}' for line in text.splitlines()) + "\n"
    return text


def value(text: str, sample: str, **labels: str) -> float:
    family = parse(text)
    found = [v for fam in family.values() for (name, lab), v in fam.samples.items()
             if name == sample and dict(lab) == labels]
    assert len(found) == 1, (sample, labels, found)
    return found[0]


def test_counters_histograms_and_amounts_add_up_times_take_the_earliest_limits_the_largest() -> None:
    one = exposition(3, 1, [0.05, 0.5], start=1000, max_fds=1024, created=50)
    two = exposition(5, 2, [2.0], start=900, max_fds=4096, created=40)
    text = render(merge([parse(one), parse(two)])).decode()
    assert value(text, "rap_requests_total", status="200") == 8
    assert value(text, "rap_inflight") == 3
    assert value(text, "rap_seconds_count") == 3 and value(text, "rap_seconds_sum") == 2.55
    assert value(text, "rap_seconds_bucket", le="0.1") == 1 and value(text, "rap_seconds_bucket", le="+Inf") == 3
    assert value(text, "process_start_time_seconds") == 900
    assert value(text, "process_max_fds") == 4096
    assert value(text, "rap_build_info", version="1.0") == 1
    assert value(text, "rap_requests_created", status="200") == 40
    assert "# TYPE rap_requests_total counter" in text and "# TYPE rap_seconds histogram" in text


def test_a_dead_worker_s_counters_are_kept_so_the_sums_never_step_back() -> None:
    merger = Merger()
    own = exposition(0, 0, [], start=10, max_fds=1)
    merger.update(0, exposition(3, 1, [0.05], start=20, max_fds=1))
    merger.update(1, exposition(5, 2, [], start=20, max_fds=1))
    before = merger.exposition(own, [0, 1]).decode()
    assert value(before, "rap_requests_total", status="200") == 8 and value(before, "rap_inflight") == 3
    merger.retire(0)  # worker 0 died; its replacement starts from zero
    merger.update(0, exposition(1, 0, [], start=30, max_fds=1))
    after = merger.exposition(own, [0, 1]).decode()
    assert value(after, "rap_requests_total", status="200") == 9  # 3 kept + 1 new + 5
    assert value(after, "rap_seconds_count") == 1  # histograms are kept too
    assert value(after, "rap_inflight") == 2  # amounts now are only the living's
    merger.retire(1)
    merger.retire(1)  # twice (nothing scraped since): nothing counted twice
    alone = merger.exposition(own, [0]).decode()
    assert value(alone, "rap_requests_total", status="200") == 9


def test_a_worker_that_was_never_scraped_leaves_nothing_behind() -> None:
    merger = Merger()
    merger.retire(3)
    text = merger.exposition(exposition(2, 0, [], start=1, max_fds=1), []).decode()
    assert value(text, "rap_requests_total", status="200") == 2
