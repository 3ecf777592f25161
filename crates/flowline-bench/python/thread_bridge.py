"""W6 pattern 3: a plain thread hands items to asyncio with call_soon_threadsafe.

Usage: python3 thread_bridge.py N
A threading.Thread calls loop.call_soon_threadsafe(queue.put_nowait, x) for
x in 0..N, then a None sentinel; the async consumer sums what it gets.
Prints: <elapsed ns> <checksum = sum of 0..N mod 2**64>
"""

import asyncio
import sys
import threading
import time


def feed(loop, queue, n):
    for i in range(n):
        loop.call_soon_threadsafe(queue.put_nowait, i)
    loop.call_soon_threadsafe(queue.put_nowait, None)


async def main(n):
    start = time.perf_counter_ns()
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()
    thread = threading.Thread(target=feed, args=(loop, queue, n))
    thread.start()
    total = 0
    while True:
        x = await queue.get()
        if x is None:
            break
        total += x
    thread.join()
    elapsed = time.perf_counter_ns() - start
    print(elapsed, total % 2**64)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
