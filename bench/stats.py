"""Small helpers for the benchmark commands: percentile tables from repeated timed calls."""

import statistics
import time


def measure(func, iterations: int, warmup: int = 5) -> list[float]:
    """Milliseconds per call."""
    for _ in range(warmup):
        func()
    samples = []
    for _ in range(iterations):
        start = time.perf_counter()
        func()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary_row(name: str, samples: list[float]) -> str:
    return (
        f"{name:<48} n={len(samples):<5} p50={percentile(samples, 50):8.2f} ms  "
        f"p95={percentile(samples, 95):8.2f} ms  p99={percentile(samples, 99):8.2f} ms  "
        f"mean={statistics.fmean(samples):8.2f} ms"
    )
