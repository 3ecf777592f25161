"""W6 pattern 1: an async generator feeding a consumer (asyncio).

Usage: python3 async_generator.py N
Prints: <elapsed ns of the pipeline> <checksum = sum of 0..N mod 2**64>
"""

import asyncio
import sys
import time


async def numbers(n):
    for i in range(n):
        yield i


async def main(n):
    start = time.perf_counter_ns()
    total = 0
    async for x in numbers(n):
        total += x
    elapsed = time.perf_counter_ns() - start
    print(elapsed, total % 2**64)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
