#!/usr/bin/python3
"""Room fan-out through a real Tandem deployment (front end + chat server + PostgreSQL).

N occupants (slixmpp, TLS + SCRAM) join one room; one of them sends M groupchat messages at a
bounded rate; every occupant counts deliveries and the send->receive latency of each message.
Durable storage (group commit into mgc) is on; the quickstart store has no mirror. Prints one
Markdown table row and the chat server's commit metrics.

    TANDEM_TEST_NET=15 TANDEM_BUILD_DIR=build /usr/bin/python3 bench/chat_fanout/run.py \
        --occupants 20 --messages 500 --rate 200

A Python client saturates long before the server: read the server's commit batch figures and
CPU, not only the delivered rate (DESIGN.md §9).
"""

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "tests" / "integration"))

from lib.deployment import DeploymentFactory  # noqa: E402
from test_chat_muc import SERVICE, sign_in, wait_chat_serving  # noqa: E402


async def bench(d, occupants, messages, rate):
    clients = [await sign_in(d, "alice")] + [await sign_in(d, "bob") for _ in range(occupants - 1)]
    for i, c in enumerate(clients):
        await c.join("ops", f"o{i}")
    sent_at = {}
    lat = []
    delivered = 0
    done = asyncio.Event()

    def make_handler(c):
        def on(st):
            nonlocal delivered
            body = st.xml.findtext("{jabber:client}body") or ""
            if st.xml.get("type") == "groupchat" and body.startswith("b-") and body in sent_at:
                lat.append(time.monotonic() - sent_at[body])
                delivered += 1
                if delivered >= messages * occupants:
                    done.set()
        return on
    from slixmpp.xmlstream.handler import Callback
    from slixmpp.xmlstream.matcher import MatchXPath
    for c in clients:
        c.c.register_handler(Callback("bench", MatchXPath("{jabber:client}message"), make_handler(c)))
    t0 = time.monotonic()
    for i in range(messages):
        body = f"b-{i}"
        sent_at[body] = time.monotonic()
        clients[0].say("ops", body)
        await asyncio.sleep(max(0.0, t0 + (i + 1) / rate - time.monotonic()))
    try:
        await asyncio.wait_for(done.wait(), 60)
    except asyncio.TimeoutError:
        pass
    elapsed = time.monotonic() - t0
    for c in clients:
        await c.c.close()
    lat.sort()
    return {
        "delivered": delivered, "expected": messages * occupants, "seconds": elapsed,
        "rate": delivered / elapsed,
        "p50_ms": 1000 * statistics.median(lat) if lat else float("nan"),
        "p99_ms": 1000 * lat[int(len(lat) * 0.99) - 1] if lat else float("nan"),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--occupants", type=int, default=20)
    ap.add_argument("--messages", type=int, default=500)
    ap.add_argument("--rate", type=float, default=200, help="messages per second sent")
    a = ap.parse_args()
    factory = DeploymentFactory("bench-chat-fanout")
    try:
        d = factory("examples/quickstart.yaml")
        wait_chat_serving(d)
        r = asyncio.run(bench(d, a.occupants, a.messages, a.rate))
        chat = d.admin("chat1a.example.test", "/status")["chat"]
        print(f"| {a.occupants} | {a.messages} @ {a.rate:g}/s | {r['delivered']}/{r['expected']} "
              f"| {r['rate']:.0f}/s | {r['p50_ms']:.1f} ms | {r['p99_ms']:.1f} ms "
              f"| {chat['commit']['batches']} commits, max batch {chat['commit']['max_batch_size']} |")
    finally:
        factory.close()


if __name__ == "__main__":
    main()
