"""Print live balance changes from the hub, one JSON line per event (a graphql-transport-ws client).

    python scripts/subscribe.py --token fhm_... [--membership TWVtYmVyc2hpcDox] [--after 5]

Exits 0 when the server completes the subscription, 1 on an error or a closed connection.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

QUERY = """subscription($m: ID, $a: BigInt) {
  balanceChanged(membershipId: $m, afterSequence: $a) {
    membershipId sequence balance delta transaction { transactionId kind storeId createdAt }
  }
}"""


async def subscribe(url: str, token: str, membership: str | None, after: int | None) -> int:
    async with connect(url, subprotocols=[Subprotocol("graphql-transport-ws")], open_timeout=10) as ws:
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
        await ws.send(json.dumps(init))
        variables = {"m": membership, "a": after}
        failed = False
        async for raw in ws:
            message = json.loads(raw)
            kind = message.get("type")
            if kind == "ping":
                await ws.send(json.dumps({"type": "pong"}))
            elif kind == "connection_ack":
                payload = {"query": QUERY, "variables": variables}
                await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
            elif kind == "next":
                print(json.dumps(message["payload"], ensure_ascii=False), flush=True)
                failed = failed or bool(message["payload"].get("errors"))
            elif kind == "error":
                print(json.dumps(message["payload"], ensure_ascii=False), file=sys.stderr)
                return 1
            elif kind == "complete":
                return 1 if failed else 0
    print(f"connection closed: {ws.close_code} {ws.close_reason}", file=sys.stderr)
    return 1


def main() -> int:
    p = argparse.ArgumentParser(description="Subscribe to balanceChanged and print each event as JSON.")
    p.add_argument("--url", default="ws://127.0.0.1:8000/graphql")
    p.add_argument("--token", required=True, help="an API key (fh_...) or a member token (fhm_...)")
    p.add_argument("--membership", help="a Membership global id (required for API keys)")
    p.add_argument("--after", type=int, help="replay changes after this sequence first")
    args = p.parse_args()
    try:
        return asyncio.run(subscribe(args.url, args.token, args.membership, args.after))
    except ConnectionClosed as exc:
        print(f"connection closed: {exc}", file=sys.stderr)
        return 1
    except (OSError, TimeoutError) as exc:
        print(f"cannot connect to {args.url}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
