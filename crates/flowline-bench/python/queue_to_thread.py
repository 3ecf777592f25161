"""W6 pattern 2: asyncio.Queue producer/consumer, blocking work in asyncio.to_thread.

Usage: python3 queue_to_thread.py N SLEEP_MS
A producer task puts 0..N into asyncio.Queue(maxsize=64); one consumer task
takes each item and runs the blocking call (sleep SLEEP_MS, return 2x) with
asyncio.to_thread, one call at a time, and sums the results.
Prints: <elapsed ns> <checksum = sum of 2x mod 2**64>
"""

import asyncio
import sys
import time


def blocking_work(x, sleep_s):
    if sleep_s > 0:
        time.sleep(sleep_s)
    return 2 * x


async def producer(queue, n):
    for i in range(n):
        await queue.put(i)
    await queue.put(None)


async def consumer(queue, sleep_s):
    total = 0
    while True:
        x = await queue.get()
        if x is None:
            return total
        total += await asyncio.to_thread(blocking_work, x, sleep_s)


async def main(n, sleep_ms):
    start = time.perf_counter_ns()
    queue = asyncio.Queue(maxsize=64)
    prod = asyncio.create_task(producer(queue, n))
    total = await consumer(queue, sleep_ms / 1000.0)
    await prod
    elapsed = time.perf_counter_ns() - start
    print(elapsed, total % 2**64)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), float(sys.argv[2])))
