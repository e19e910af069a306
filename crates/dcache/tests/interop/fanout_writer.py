"""Writes ('python', n) = n for n < N and increments 'shared-counter' N times, with retry,
into the FanoutCache at argv[1]; used by python_interop_fanout.rs while Rust writes too."""
import sys

import diskcache

cache = diskcache.FanoutCache(sys.argv[1])
for n in range(int(sys.argv[2])):
    assert cache.set(('python', n), n, retry=True)
    assert cache.incr('shared-counter', retry=True) is not None
