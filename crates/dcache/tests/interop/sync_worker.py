"""python-diskcache's side of crates/dcache/tests/python_interop_sync.rs.

Usage: sync_worker.py MODE DIRECTORY [ARGS...]. Keys set by either side ('ready', 'go', ...)
pace the two processes; results are printed one per line.
"""

import os
import sys
import threading
import time

import diskcache


def wait_for(cache, key, timeout=60.0):
    deadline = time.monotonic() + timeout
    while key not in cache:
        if time.monotonic() > deadline:
            raise SystemExit('timed out waiting for key %r' % key)
        time.sleep(0.001)


def owner_id():
    return '{}-{}'.format(os.getpid(), threading.get_ident())


def main():
    mode, directory, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    cache = diskcache.Cache(directory, eviction_policy='none')

    if mode == 'lock-probe':
        # What python's Lock sees while Rust holds the lock: locked, and acquire's add fails.
        print(diskcache.Lock(cache, 'lock').locked())
        print(cache.add('lock', None))
    elif mode == 'lock-hold':
        lock = diskcache.Lock(cache, 'lock')
        lock.acquire()
        cache['py-holds'] = 1
        wait_for(cache, 'go')
        lock.release()
    elif mode == 'lock-count':
        lock = diskcache.Lock(cache, 'lock')
        cache['ready'] = 1
        wait_for(cache, 'start')
        for _ in range(int(args[0])):
            with lock:
                cache['n'] = cache.get('n', 0) + 1
    elif mode == 'sem-work':
        sem = diskcache.BoundedSemaphore(cache, 'sem', value=2)
        cache['ready'] = 1
        wait_for(cache, 'start')

        def work():
            for _ in range(int(args[0])):
                with sem:
                    if cache.incr('inside', retry=True) > 2:
                        cache.incr('violations', retry=True)
                    time.sleep(0.001)
                    cache.decr('inside', retry=True)

        threads = [threading.Thread(target=work) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    elif mode == 'sem-value':
        print(repr(cache.get('sem')))
    elif mode == 'rlock-probe':
        # While Rust holds the RLock: its stored value, and whether python's acquire blocks.
        print(repr(cache.get('rlock')))
        rlock = diskcache.RLock(cache, 'rlock')
        t = threading.Thread(target=rlock.acquire, daemon=True)
        t.start()
        t.join(0.3)
        print(t.is_alive())
    elif mode == 'rlock-hold':
        rlock = diskcache.RLock(cache, 'rlock')
        rlock.acquire()
        rlock.acquire()
        cache['py-holds'] = owner_id()
        wait_for(cache, 'go')
        rlock.release()
        rlock.release()
        # One release too many is python's AssertionError.
        try:
            rlock.release()
        except AssertionError as e:
            print('AssertionError', e)
    elif mode == 'avg-add':
        ave = diskcache.Averager(cache, 'avg')
        for value in args:
            ave.add(float(value))
        print(repr(cache.get('avg')))
        print(ave.get())
    elif mode == 'avg-concurrent':
        ave = diskcache.Averager(cache, 'avg')
        cache['ready'] = 1
        wait_for(cache, 'start')
        for _ in range(int(args[0])):
            ave.add(1.0)
    elif mode == 'avg-pop':
        print(repr(diskcache.Averager(cache, 'avg').pop()))
    else:
        raise SystemExit('unknown mode %r' % mode)
    sys.stdout.flush()


if __name__ == '__main__':
    main()
