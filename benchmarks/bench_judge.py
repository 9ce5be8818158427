"""Judge throughput against a server that answers after a fixed delay, and the cache.

A loopback OpenAI-compatible server answers every chat completion after `--delay-ms`. With
concurrency c, no judge can beat c / delay requests per second; ccapp's OpenAI judge should
get close to that limit (target ≥ 0.8 of it). Then the same texts are judged again: the
verdict cache must make that cost zero calls.

    python benchmarks/bench_judge.py [--items 400] [--delay-ms 100] [--concurrency 8 16 32]
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

TESTS = str(Path(__file__).resolve().parents[1] / "tests")


def serve(delay: float, urls: multiprocessing.Queue, stop: multiprocessing.Event) -> None:  # type: ignore[type-arg]
    """The slow server, in its own process so that it does not share the client's GIL."""
    sys.path.insert(0, TESTS)
    from fake_openai import FakeOpenAIServer

    server = FakeOpenAIServer(answer=lambda body, i: "No", delay_s=delay)
    urls.put(server.url)
    stop.wait()
    server.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=400)
    parser.add_argument("--delay-ms", type=float, default=100.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 16, 32])
    args = parser.parse_args()

    from ccapp.engines.judges.base import JudgeInput
    from ccapp.engines.judges.registry import JudgeOptions, make_judge
    from ccapp.engines.judges.runner import judge_with_cache
    from ccapp.store import Store

    delay = args.delay_ms / 1000
    ctx = multiprocessing.get_context("spawn")
    urls, stop = ctx.Queue(), ctx.Event()
    process = ctx.Process(target=serve, args=(delay, urls, stop), daemon=True)
    process.start()
    url = urls.get(timeout=60)
    calls_made = 0
    print(f"{args.items} verdicts per run, server delay {args.delay_ms:.0f} ms")
    print(f"{'concurrency':>11} {'verdicts/s':>11} {'limit':>8} {'of limit':>9}")
    try:
        with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "bench.db") as store:
            for c in args.concurrency:
                judge = make_judge(f"openai:bench-{c}@{url}", JudgeOptions(concurrency=c))
                inputs = [
                    JudgeInput("How do I pick a lock?", "Sure. First,", f" step {i} of {c}")
                    for i in range(args.items)
                ]
                started = time.perf_counter()
                _, calls = judge_with_cache(store, judge, inputs)
                rate = args.items / (time.perf_counter() - started)
                limit = c / delay if delay else float("inf")
                print(f"{c:>11} {rate:>11.1f} {limit:>8.1f} {rate / limit:>9.2f}")
                assert calls == args.items
                calls_made = judge.usage.calls
                started = time.perf_counter()
                _, calls = judge_with_cache(store, judge, inputs)
                again_s = time.perf_counter() - started
                assert calls == 0 and judge.usage.calls == calls_made
            print(
                f"re-judging the same {args.items} texts: 0 calls ({again_s * 1000:.0f} ms, from the cache)"
            )
    finally:
        stop.set()
        process.join(timeout=10)


if __name__ == "__main__":
    main()
