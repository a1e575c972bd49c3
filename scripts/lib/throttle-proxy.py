#!/usr/bin/env python3
"""A TCP proxy on 127.0.0.1 that limits what the upstream sends back to RATE bytes/s per
connection (the registry -> daemon direction of a pull). Loopback only, for benchmarks.

usage: throttle-proxy.py LISTEN_PORT UPSTREAM_PORT RATE_BYTES_PER_SEC
"""
import asyncio
import sys
import time

CHUNK = 64 * 1024


async def pipe(reader, writer, rate):
    start, sent = time.monotonic(), 0
    try:
        while True:
            data = await reader.read(CHUNK)
            if not data:
                break
            writer.write(data)
            await writer.drain()
            if rate:
                sent += len(data)
                ahead = sent / rate - (time.monotonic() - start)
                if ahead > 0:
                    await asyncio.sleep(ahead)
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def serve(listen, upstream, rate):
    async def handle(client_r, client_w):
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", upstream)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(pipe(client_r, up_w, 0), pipe(up_r, client_w, rate))

    server = await asyncio.start_server(handle, "127.0.0.1", listen)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])))
