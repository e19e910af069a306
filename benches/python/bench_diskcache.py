#!/usr/bin/env python3
"""python-diskcache 5.6.3 on dcache's standard workloads (W1-W5 of docs/benchmarks.md).

Run by `cargo xtask bench [--quick]` next to the Rust harness (`benches/src/bin/compare.rs`),
it builds the same keys, values and random orders (splitmix64, same seeds), times the same
calls and prints one line per figure:

    impl=python-diskcache kind=cache op=<op> n=<N> us_per_op=<float>

The median of each figure over the rounds is printed at the end; progress goes to stderr.
Where the Rust harness uses threads (W4), this script uses processes, as python-diskcache's own
benchmarks do. W5 runs each measurement in a fresh interpreter that also reports its
anonymous RSS (`heap_rss_mib=`).

Usage: bench_diskcache.py [--quick] [--rounds N] [--work DIR]
       bench_diskcache.py scale --dir DIR --keys N --gets N
"""

import argparse
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import diskcache

IMPL = 'python-diskcache'
KIND = 'cache'
MASK = (1 << 64) - 1

FULL = dict(keys=20_000, large_values=200, large_read_passes=3,
            concurrent_ops=100_000, scale_keys=(10_000, 1_000_000), scale_gets=200_000)
QUICK = dict(keys=20_000, large_values=200, large_read_passes=1,
             concurrent_ops=20_000, scale_keys=(10_000, 100_000), scale_gets=100_000)
WARM_UP_OPS = 1_000
POPULATE_BATCH = 10_000


class Rng:
    """splitmix64, as benches/src/data.rs."""

    def __init__(self, seed):
        self.state = seed & MASK

    def next_u64(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def below(self, n):
        return self.next_u64() % n


def shuffled(n, seed):
    v = list(range(n))
    rng = Rng(seed)
    for i in range(n - 1, 0, -1):
        j = rng.below(i + 1)
        v[i], v[j] = v[j], v[i]
    return v


def key(i):
    return 'key-%08d' % i


def value_100(i):
    return ('value-%08d-' % i).encode().ljust(100, b'x')


def mix_values():
    return [b'v' * n for n in range(1, 101)]


def figure(op, n, seconds, kind=KIND):
    return (kind, op, n, 'us_per_op', seconds * 1e6 / max(n, 1))


def line(kind, op, n, metric, value):
    fmt = '%.3f' if metric == 'us_per_op' else '%.1f'
    return 'impl=%s kind=%s op=%s n=%d %s=%s' % (IMPL, kind, op, n, metric, fmt % value)


def open_store(directory, store):
    """python-diskcache's Cache, or its FanoutCache with its defaults (8 shards, 10 ms)."""
    if store == 'fanout':
        return diskcache.FanoutCache(directory, shards=8, timeout=0.010)
    return diskcache.Cache(directory)


def heap_rss_mib():
    try:
        with open('/proc/self/status') as f:
            for row in f:
                if row.startswith('RssAnon:'):
                    return int(row.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def fresh(path):
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def check(cond, what):
    if not cond:
        raise RuntimeError('benchmark check failed: ' + what)


# ----- W1, W2 -----

def single_thread(work, sizes):
    out = []
    n = sizes['keys']
    keys = [key(i) for i in range(n)]
    missing = [key(i) for i in range(n, 2 * n)]
    values = [value_100(i) for i in range(n)]

    cache = diskcache.Cache(fresh(os.path.join(work, 'w1')))
    check(cache.get('warm-up') is None, 'warm-up key absent')
    order = shuffled(n, 1)
    start = time.perf_counter()
    for i in order:
        cache.set(keys[i], values[i])
    out.append(figure('set', n, time.perf_counter() - start))
    order = shuffled(n, 2)
    start = time.perf_counter()
    for i in order:
        v = cache.get(keys[i])
        if v is None or len(v) != 100:
            check(False, 'get_hit finds the value')
    out.append(figure('get_hit', n, time.perf_counter() - start))
    start = time.perf_counter()
    for i in order:
        if cache.get(missing[i]) is not None:
            check(False, 'get_miss misses')
    out.append(figure('get_miss', n, time.perf_counter() - start))
    order = shuffled(n, 3)
    start = time.perf_counter()
    for i in order:
        if not cache.delete(keys[i]):
            check(False, 'delete finds the key')
    out.append(figure('delete', n, time.perf_counter() - start))
    cache.close()

    cache = diskcache.Cache(fresh(os.path.join(work, 'w2')),
                            eviction_policy='least-recently-used')
    for k, v in zip(keys, values):
        cache.set(k, v)
    order = shuffled(n, 4)
    start = time.perf_counter()
    for i in order:
        if cache.get(keys[i]) is None:
            check(False, 'get_hit_lru finds the value')
    out.append(figure('get_hit_lru', n, time.perf_counter() - start))
    cache.close()
    return out


# ----- W3 -----

def value_1mib():
    rng = Rng(1)
    return b''.join(rng.next_u64().to_bytes(8, 'little') for _ in range((1 << 20) // 8))


def large(work, sizes):
    out = []
    n = sizes['large_values']
    passes = sizes['large_read_passes']
    keys = ['large-%08d' % i for i in range(n)]
    base = value_1mib()
    stamped = [i.to_bytes(8, 'little') for i in range(n)]
    # Built before timing (the Rust harness stamps one buffer in place).
    values = [stamped[i] + base[8:] for i in range(n)]
    cache = diskcache.Cache(fresh(os.path.join(work, 'w3')))
    start = time.perf_counter()
    for i, k in enumerate(keys):
        cache.set(k, values[i])
    out.append(figure('set_large', n, time.perf_counter() - start))
    del values
    start = time.perf_counter()
    for _ in range(passes):
        for i, k in enumerate(keys):
            v = cache.get(k)
            if v is None or len(v) != 1 << 20 or v[:8] != stamped[i]:
                check(False, 'get_large reads the value back')
    out.append(figure('get_large', n * passes, time.perf_counter() - start))
    start = time.perf_counter()
    for _ in range(passes):
        for k in keys:
            total = 0
            with cache.read(k) as f:
                while True:
                    chunk = f.read(1 << 16)
                    if not chunk:
                        break
                    total += len(chunk)
            if total != 1 << 20:
                check(False, 'read_large streams the value')
    out.append(figure('read_large', n * passes, time.perf_counter() - start))
    cache.close()
    return out


# ----- W4 -----

def mix_plan(seed, count):
    """Pre-drawn (action, key, value) triples, so the timed loop does not run the RNG."""
    rng = Rng(seed)
    plan = []
    for _ in range(count):
        action = rng.below(100)
        k = rng.below(100)
        v = rng.below(100)
        plan.append((action, k, v))
    return plan


def run_mix(cache, plan, hot, values):
    for action, k, v in plan:
        if action < 90:
            cache.get(hot[k])
        elif action < 99:
            cache.set(hot[k], values[v])
        else:
            cache.delete(hot[k])


def worker(directory, store, kind, t, threads, per_thread, barrier, results):
    hot = [key(i) for i in range(100)]
    values = mix_values()
    cache = open_store(directory, store)
    if kind == 'mix':
        run_mix(cache, mix_plan(1_000 + t, WARM_UP_OPS), hot, values)
        plan = mix_plan(2_000 + t + 100 * threads, per_thread)
        barrier.wait()
        start = time.perf_counter()
        run_mix(cache, plan, hot, values)
    elif kind == 'get':
        def draw(seed, count):
            rng = Rng(seed)
            return [hot[rng.below(100)] for _ in range(count)]
        for k in draw(3_000 + t, WARM_UP_OPS):
            cache.get(k)
        plan = draw(4_000 + t, per_thread)
        barrier.wait()
        start = time.perf_counter()
        for k in plan:
            if cache.get(k) is None:
                check(False, 'get finds the hot key')
    else:
        def draw(prefix, count):
            rng = Rng(5_000 + t)
            return [('%s-%02d-%08d' % (prefix, t, i), values[rng.below(100)])
                    for i in range(count)]
        for k, v in draw('warm', WARM_UP_OPS // threads):
            cache.set(k, v)
        plan = draw('set', per_thread)
        barrier.wait()
        start = time.perf_counter()
        for k, v in plan:
            cache.set(k, v)
    end = time.perf_counter()
    cache.close()
    results.put((start, end))


def parallel(directory, store, kind, threads, total):
    """Runs `threads` processes at once; wall-clock seconds from the first start to the last end."""
    ctx = multiprocessing.get_context('fork')
    barrier = ctx.Barrier(threads)
    results = ctx.Queue()
    per_thread = total // threads
    procs = [ctx.Process(target=worker,
                         args=(directory, store, kind, t, threads, per_thread, barrier,
                               results))
             for t in range(threads)]
    for p in procs:
        p.start()
    times = [results.get() for _ in procs]
    for p in procs:
        p.join()
        check(p.exitcode == 0, 'a benchmark process failed')
    return per_thread * threads, max(e for _, e in times) - min(s for s, _ in times)


def concurrent(work, sizes, store='cache'):
    out = []
    total = sizes['concurrent_ops']
    hot = [key(i) for i in range(100)]
    values = mix_values()
    directory = fresh(os.path.join(work, 'w4-mix'))
    cache = open_store(directory, store)
    for i, k in enumerate(hot):
        cache.set(k, values[i], retry=True)
    cache.close()
    for threads in (1, 2):
        n, took = parallel(directory, store, 'mix', threads, total)
        out.append(figure('mix_%dt' % threads, n, took, store))
    cache = open_store(directory, store)
    for i, k in enumerate(hot):
        cache.set(k, values[i], retry=True)
    cache.close()
    for threads in (1, 2):
        n, took = parallel(directory, store, 'get', threads, total)
        out.append(figure('get_%dt' % threads, n, took, store))
    for threads in (1, 2, 8):
        directory = fresh(os.path.join(work, 'w4-set%d' % threads))
        open_store(directory, store).close()
        n, took = parallel(directory, store, 'set', threads, total)
        out.append(figure('set_%dt' % threads, n, took, store))
    return out


def concurrent_fanout(work, sizes):
    return concurrent(work, sizes, 'fanout')


# ----- W5 -----

def scale_op(keys):
    return 'get_hit_10k' if keys <= 10_000 else 'get_hit_1m'


def populate(directory, keys):
    cache = diskcache.Cache(fresh(directory))
    for start in range(0, keys, POPULATE_BATCH):
        with cache.transact():
            for i in range(start, min(keys, start + POPULATE_BATCH)):
                cache.set(key(i), value_100(i))
    cache.close()


def scale_child(directory, keys, gets):
    """W5's measurement, in a fresh interpreter: random hits, then the anonymous RSS."""
    cache = diskcache.Cache(directory)
    check(cache.get(key(0)) is not None, 'the cache is populated')
    rng = Rng(6_000 + keys)
    below = rng.below
    start = time.perf_counter()
    for _ in range(gets):
        if cache.get('key-%08d' % below(keys)) is None:
            check(False, 'get_hit finds the value')
    took = time.perf_counter() - start
    op = scale_op(keys)
    print(line(KIND, op, keys, 'us_per_op', took * 1e6 / gets))
    rss = heap_rss_mib()
    if rss is not None:
        print(line(KIND, op, keys, 'heap_rss_mib', rss))


def spawn_scale(directory, keys, gets):
    out = subprocess.run(
        [sys.executable, os.path.abspath(__file__), 'scale', '--dir', directory,
         '--keys', str(keys), '--gets', str(gets)],
        check=True, capture_output=True, text=True).stdout
    figures = []
    for row in out.splitlines():
        fields = dict(f.split('=', 1) for f in row.split())
        metric = 'us_per_op' if 'us_per_op' in fields else 'heap_rss_mib'
        figures.append((fields['kind'], fields['op'], int(fields['n']), metric,
                        float(fields[metric])))
    return figures


# ----- main -----

def main():
    if len(sys.argv) > 1 and sys.argv[1] == 'scale':
        p = argparse.ArgumentParser()
        p.add_argument('scale')
        p.add_argument('--dir', required=True)
        p.add_argument('--keys', type=int, required=True)
        p.add_argument('--gets', type=int, required=True)
        a = p.parse_args()
        scale_child(a.dir, a.keys, a.gets)
        return
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--quick', action='store_true')
    p.add_argument('--rounds', type=int)
    p.add_argument('--work')
    a = p.parse_args()
    sizes = QUICK if a.quick else FULL
    rounds = max(1, a.rounds or (1 if a.quick else 3))
    temp = None
    if a.work:
        work = fresh(a.work)
    else:
        temp = tempfile.mkdtemp(prefix='dcache-bench-py-')
        work = temp
    began = time.perf_counter()

    def progress(what):
        print('[%5.1fs] %s' % (time.perf_counter() - began, what), file=sys.stderr, flush=True)

    results = []
    try:
        for r in range(1, rounds + 1):
            for name, step in (('W1/W2', single_thread), ('W3', large), ('W4', concurrent),
                               ('W4 fanout', concurrent_fanout)):
                progress('round %d/%d %s %s/%s' % (r, rounds, name, IMPL, KIND))
                results.extend(step(os.path.join(work, 'run'), sizes))
                shutil.rmtree(os.path.join(work, 'run'), ignore_errors=True)
        for keys in sizes['scale_keys']:
            progress('W5 populating %d keys for %s/%s' % (keys, IMPL, KIND))
            populate(os.path.join(work, 'w5-%d' % keys), keys)
        for r in range(1, rounds + 1):
            for keys in sizes['scale_keys']:
                progress('round %d/%d W5 %d keys %s/%s' % (r, rounds, keys, IMPL, KIND))
                results.extend(spawn_scale(os.path.join(work, 'w5-%d' % keys), keys,
                                           sizes['scale_gets']))
    finally:
        if temp:
            shutil.rmtree(temp, ignore_errors=True)
        else:
            for keys in sizes['scale_keys']:
                shutil.rmtree(os.path.join(work, 'w5-%d' % keys), ignore_errors=True)
    progress('done (%d round(s); medians below)' % rounds)
    order = []
    grouped = {}
    for result in results:
        kind, op, n, metric, value = result
        ident = (kind, op, n, metric)
        if ident not in grouped:
            order.append(ident)
            grouped[ident] = []
        grouped[ident].append(value)
    for ident in order:
        kind, op, n, metric = ident
        print(line(kind, op, n, metric, statistics.median(grouped[ident])), flush=True)


if __name__ == '__main__':
    main()
