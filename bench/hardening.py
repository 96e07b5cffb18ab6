"""What the request hardening costs, measured in process (no HTTP, no database).

    .venv/bin/python -m bench.hardening [--redis-url redis://127.0.0.1:6379/0]

- ``schema.execute`` of ``{ __typename }`` and of a member-app query (parse and validation cached, as
  in production when clients send values as variables): the per-request cost of the Hardening
  extension (cost estimate, error codes, metrics) and the execution deadline;
- the cost estimate alone, for that query and for 15 aliases of nested connections;
- validating a fragment bomb (each fragment spreads the next twice) at growing depths: linear now,
  2^depth with Strawberry's limiters;
- one rate-limit check, in process and through Redis (one round trip).

Best of five rounds each. Run it on an idle machine, or compare runs made one after the other.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable

from graphql import OperationDefinitionNode, parse

APP_QUERY = """query App($n: Int!) { memberships(first: $n) { edges { node {
  id brand { name } joinStore { name }
  history(first: 5) { edges { node { sequence delta balanceAfter transaction { kind store { name } } } } }
} } } }"""
NESTED = (
    "m%d: memberships(first: 100) { edges { node { history(first: 100) { edges { node { delta } } } } } }"
)


def bomb(levels: int) -> str:
    fragments = [f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels)]
    fragments.append(f"fragment F{levels} on Query {{ __typename viewer {{ role }} }}")
    return "query Bomb { ...F0 }\n" + "\n".join(fragments)


async def best_us(fn: Callable[[], Awaitable[object]], calls: int) -> float:
    for _ in range(min(200, calls)):
        await fn()
    rounds = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(calls):
            await fn()
        rounds.append((time.perf_counter() - started) / calls * 1e6)
    return min(rounds)


async def main(redis_url: str | None) -> None:
    import logging

    from hub.schema.schema import build_schema

    logging.disable(logging.CRITICAL)  # the member-app query fails without a context: do not log it
    schema = build_schema()
    typename = await best_us(lambda: schema.execute("{ __typename }"), 3000)
    print(f"schema.execute {{ __typename }}          {typename:8.1f} µs")
    app = await best_us(lambda: schema.execute(APP_QUERY, variable_values={"n": 20}), 1000)
    print(f"schema.execute member-app query         {app:8.1f} µs")

    from hub.schema.cost import estimate

    for label, text, variables in (
        ("member-app query", APP_QUERY, {"n": 20}),
        ("15 aliased nested connections", "{ " + " ".join(NESTED % i for i in range(15)) + " }", {}),
    ):
        document = parse(text)
        operation = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))

        async def cost(document=document, operation=operation, variables=variables) -> int:  # type: ignore[no-untyped-def]
            return estimate(schema._schema, document.definitions, operation, variables, 100)

        print(f"cost estimate, {label:<24} {await best_us(cost, 3000):8.1f} µs (cost {await cost()})")

    for levels in (10, 16, 20, 30, 40):
        started = time.perf_counter()
        await schema.execute(bomb(levels))
        print(f"fragment bomb, {levels} levels               {(time.perf_counter() - started) * 1e3:8.1f} ms")

    from hub.ratelimit import LocalBuckets, RedisBuckets
    from hub.settings import RateLimit

    limit = RateLimit(1e9, 1_000_000_000)
    local = LocalBuckets()
    in_process = await best_us(lambda: local.take("key:1", limit), 20000)
    print(f"rate-limit check, in process            {in_process:8.1f} µs")
    if redis_url:
        shared = RedisBuckets(redis_url, "bench-hardening:")
        try:
            redis_us = await best_us(lambda: shared.take("key:1", limit), 2000)
            print(f"rate-limit check, Redis                 {redis_us:8.1f} µs")
        finally:
            await shared.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.hardening", description=__doc__)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0", help="empty: skip the Redis check")
    asyncio.run(main(parser.parse_args().redis_url or None))
