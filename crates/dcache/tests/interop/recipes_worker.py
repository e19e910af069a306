"""python-diskcache's side of crates/dcache/tests/python_interop_recipes.rs.

Usage: recipes_worker.py MODE DIRECTORY. Keys set by either side ('py-phase1', 'go') pace the
two processes; results are printed one per line.
"""

import sys
import time

import diskcache


def wait_for(cache, key, timeout=60.0):
    deadline = time.monotonic() + timeout
    while key not in cache:
        if time.monotonic() > deadline:
            raise SystemExit('timed out waiting for key %r' % key)
        time.sleep(0.001)


def main():
    mode, directory = sys.argv[1], sys.argv[2]
    cache = diskcache.Cache(directory, eviction_policy='none')

    if mode == 'throttle':
        # Simulated time: python's throttle takes time_func and sleep_func.
        now = [1000.0]
        sleeps = []

        def sleep(delay):
            sleeps.append(delay)
            now[0] += delay

        # 4 calls per 100 s; decorating stores the full bucket (1000.0, 4).
        @diskcache.throttle(
            cache, 4, 100, name='shared', time_func=lambda: now[0], sleep_func=sleep
        )
        def call():
            pass

        print(repr(cache.get('shared')))
        cache['py-phase1'] = 1
        # Rust takes 3 tokens; python then takes the last one and waits for the next.
        wait_for(cache, 'go')
        call()
        call()
        print(repr(sleeps))
        print(repr(cache.get('shared')))
    else:
        raise SystemExit('unknown mode %r' % mode)


if __name__ == '__main__':
    main()
