"""One ``/metrics`` for all workers: the supervisor sums what each worker's private admin listener exposes.

Why an aggregating parent rather than prometheus-client's multiprocess
mode: the proxy's metrics are not all prometheus-client values (the
request path keeps plain counters read at scrape time, and the process
collector reads ``/proc/self``), multiprocess mode handles neither, and it
would change how a single process records. Here each worker keeps exactly
the registry it has with ``workers: 1``, and the sum is taken on scrape:

* counters, histograms and summaries, and gauges of amounts (requests and
  writes in flight, bytes cached, resident memory, open fds): summed;
* ``*_created`` and ``process_start_time_seconds``: the earliest;
  ``process_max_fds`` and ``*_build_info``: the largest.

The supervisor's own process is one of the parts, so ``process_*`` is the
whole instance's CPU and memory. A worker that dies would make every
counter step back, which Prometheus takes for a reset; so its counters as
last scraped are kept (:meth:`Merger.retire`) and the sum never decreases.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

__all__ = ["Family", "Merger", "merge", "parse", "render"]

Labels = tuple[tuple[str, str], ...]
MONOTONIC = ("counter", "histogram", "summary")


@dataclass
class Family:
    """One metric family: its samples by (sample name, labels)."""

    name: str
    documentation: str
    type: str
    samples: dict[tuple[str, Labels], float] = field(default_factory=dict)


def parse(text: str) -> dict[str, Family]:
    """The families of a text exposition (what ``generate_latest`` wrote)."""
    out: dict[str, Family] = {}
    for metric in text_string_to_metric_families(text):
        family = out.setdefault(metric.name, Family(metric.name, metric.documentation, metric.type))
        for sample in metric.samples:
            family.samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _combine(family: Family, sample: str) -> str:
    if family.type == "gauge":
        if sample.endswith("_created") or sample == "process_start_time_seconds":
            return "min"
        if sample == "process_max_fds" or sample.endswith("_build_info"):
            return "max"
    return "sum"


def merge(parts: Iterable[dict[str, Family]]) -> dict[str, Family]:
    """The families of all parts, each sample combined as the module says."""
    out: dict[str, Family] = {}
    for part in parts:
        for name, family in part.items():
            into = out.setdefault(name, Family(name, family.documentation, family.type))
            for key, value in family.samples.items():
                if key not in into.samples:
                    into.samples[key] = value
                    continue
                how = _combine(family, key[0])
                old = into.samples[key]
                into.samples[key] = old + value if how == "sum" else (min if how == "min" else max)(old, value)
    return out


class _Fixed(Collector):
    def __init__(self, families: dict[str, Family]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        for family in self.families.values():
            metric = Metric(family.name, family.documentation, family.type)
            for (sample, labels), value in family.samples.items():
                metric.add_sample(sample, dict(labels), value)
            yield metric


def render(families: dict[str, Family]) -> bytes:
    """The text exposition of ``families`` (prometheus-client's own writer, so the format is the usual one)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(families))
    return generate_latest(registry)


class Merger:
    """The last scrape of each worker, and the counters of workers that have died since."""

    def __init__(self) -> None:
        self.last: dict[int, dict[str, Family]] = {}
        self.retired: dict[str, Family] = {}

    def update(self, index: int, text: str) -> None:
        self.last[index] = parse(text)

    def retire(self, index: int) -> None:
        """Worker ``index`` is gone: keep its counters as last reported, so the sums do not step back."""
        families = self.last.pop(index, None)
        if families:
            kept = {name: f for name, f in families.items() if f.type in MONOTONIC}
            self.retired = merge([self.retired, kept])

    def exposition(self, own: str, live: Iterable[int]) -> bytes:
        """The supervisor's own metrics (text), the workers alive (as last scraped) and the retired, summed."""
        parts = [self.last[i] for i in live if i in self.last]
        return render(merge([*parts, self.retired, parse(own)]))
