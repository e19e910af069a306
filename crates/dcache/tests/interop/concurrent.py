"""python-diskcache's side of crates/dcache/tests/python_interop_concurrent.rs.

``worker``: ``python concurrent.py worker <dir> <ops>`` opens the cache, prints ``ready``,
waits for a line on stdin, then runs ``<ops>`` mixed operations while dcache runs its own on
the same directory, and prints a JSON record of what it committed.
``dump``: everything a reader sees afterwards (JSON protocol of common.py).
"""

import json
import sys

from diskcache import Cache

from common import enc, items, main, warnings_of


def worker(directory, ops, side='py'):
    """The same mix as `ops` in the Rust test: sets of small values and value files on own
    keys, deletes, adds, sets of shared keys, a shared counter, and a shared queue."""
    own = {}          # own key -> value (tagged) or None once deleted
    shared = {}       # shared key -> the last value this side wrote
    incrs = 0
    pushed, pulled = [], []
    with Cache(directory) as c:
        print('ready', flush=True)
        sys.stdin.readline()
        for i in range(ops):
            op = i % 10
            if op in (0, 1, 2):
                key, value = '%s-%d' % (side, i % 200), '%s:%d' % (side, i)
                c.set(key, value)
                own[key] = enc(value)
            elif op == 3:
                key = '%s-%d' % (side, i % 200)
                value = ('%s:%d:' % (side, i)).encode() + bytes([i % 256]) * 2_000
                c.set(key, value)
                own[key] = enc(value)
            elif op == 4:
                key = '%s-%d' % (side, (i * 7) % 200)
                c.delete(key)
                own[key] = None
            elif op == 5:
                key, value = 'shared-%d' % (i % 20), '%s:%d' % (side, i)
                c.set(key, value)
                shared[key] = value
            elif op == 6:
                c.incr('counter')
                incrs += 1
            elif op == 7:
                value = '%s:%d' % (side, i)
                c.push(value, prefix='q')
                pushed.append(value)
            elif op == 8:
                _, value = c.pull(prefix='q')
                if value is not None:
                    pulled.append(value)
            else:
                key = 'add-%s-%d' % (side, i)
                assert c.add(key, i)
                own[key] = enc(i)
                value = c.get('shared-%d' % (i % 20))
                assert value is None or value.split(':')[0] in ('py', 'rs'), value
    return {'own': own, 'shared': shared, 'incrs': incrs, 'pushed': pushed, 'pulled': pulled}


def dump(data):
    """Every live entry, the queue in order, and check(), as a fresh python process sees
    them (reading only)."""
    with Cache(data['dir']) as c:
        queue = [c[k] for k in c.iterkeys() if isinstance(k, str) and k.startswith('q-')]
        return {
            'items': items(c),
            'len': len(c),
            'queue': queue,
            'check': warnings_of(c, False),
        }


if sys.argv[1] == 'worker':
    print(json.dumps(worker(sys.argv[2], int(sys.argv[3]))), flush=True)
else:
    main({'dump': dump})
