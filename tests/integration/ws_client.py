#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# A real WebSocket client against tests/integration/test_ws.c's server: Python's
# websockets (Debian python3-websockets). Prints PASS/FAIL lines, or one SKIP line when the
# module is missing. Usage: ws_client.py PORT [deflate|nodeflate [CA]]: with CA (a PEM
# file), the same checks over wss://localhost, the server's certificate verified with it.
import asyncio
import ssl
import sys

try:
    import websockets
    from websockets.exceptions import ConnectionClosed, InvalidStatusCode
except ImportError:
    print("SKIP no python3 websockets module (Debian: python3-websockets)")
    sys.exit(0)

CA = sys.argv[3] if len(sys.argv) > 3 else None
URL = ("wss://localhost:%s" if CA else "ws://127.0.0.1:%s") % sys.argv[1]
SSL = ssl.create_default_context(cafile=CA) if CA else None
DEFLATE = len(sys.argv) < 3 or sys.argv[2] == "deflate"  # "nodeflate": a build without zlib


def connect(path, **options):
    return websockets.connect(URL + path, ssl=SSL, **options)


def report(name, ok, detail=""):
    print(("PASS " if ok else "FAIL ") + name + ("" if ok else ": " + str(detail)), flush=True)


async def echo():
    # websockets offers permessage-deflate by default: the echo is compressed both ways
    async with connect("/echo") as ws:
        ext = ws.response_headers.get("Sec-WebSocket-Extensions", "")
        if DEFLATE:
            report("deflate negotiated", ext.startswith("permessage-deflate"), ext)
        else:
            report("no deflate without zlib", ext == "", ext)
        for msg in ["hello", "κόσμε " * 50, b"\x00\xff" * 400, ""]:
            await ws.send(msg)
            got = await ws.recv()
            report("echo %s %d" % (type(msg).__name__, len(msg)), got == msg, repr(got)[:60])


async def big():
    async with connect("/big", max_size=None) as ws:
        msg = bytes(range(256)) * 8192  # 2 MiB
        await ws.send(msg)
        report("echo 2 MiB", await ws.recv() == msg)


async def fragments():
    async with connect("/echo", compression=None) as ws:
        await ws.send(iter(["frag", "mented ", "text"]))  # a fragmented message
        report("fragmented send", await ws.recv() == "fragmented text")


async def ping():
    async with connect("/echo") as ws:
        waiter = await ws.ping(b"are you there")
        await asyncio.wait_for(waiter, 5)
        report("ping answered", True)


async def close_codes():
    async with connect("/echo") as ws:
        await ws.close(code=4000, reason="client done")
        report("client close echoed", ws.close_code == 4000, ws.close_code)
    async with connect("/echo") as ws:
        await ws.send("close:4003")
        try:
            await ws.recv()
            report("server close", False, "a message instead")
        except ConnectionClosed as e:
            report("server close", e.rcvd.code == 4003 and e.rcvd.reason == "done", e)


async def too_big():
    async with connect("/echo") as ws:
        await ws.send("x" * 1001)
        try:
            await ws.recv()
            report("too big: 1009", False, "echoed")
        except ConnectionClosed as e:
            report("too big: 1009", e.rcvd is not None and e.rcvd.code == 1009, e)


async def subprotocol():
    async with connect("/proto", subprotocols=["superchat", "chat"]) as ws:
        report("subprotocol chosen", ws.subprotocol == "chat", ws.subprotocol)


async def origin():
    try:
        async with connect("/origin", origin="http://evil.ex"):
            report("origin refused", False, "accepted")
    except InvalidStatusCode as e:
        report("origin refused", e.status_code == 403, e)
    async with connect("/origin", origin="http://good.ex") as ws:
        await ws.send("hi")
        report("origin allowed", await ws.recv() == "hi")


async def main():
    for case in (echo, big, fragments, ping, close_codes, too_big, subprotocol, origin):
        try:
            await asyncio.wait_for(case(), 20)
        except Exception as e:  # a case that breaks must not hide the others
            report(case.__name__, False, repr(e))


asyncio.run(main())
