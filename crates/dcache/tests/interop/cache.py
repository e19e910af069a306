"""python-diskcache's side of crates/dcache/tests/python_interop_cache.rs.

Each command reads what dcache wrote, writes the same thing with python-diskcache for dcache
to read, and reports what it saw; see common.py for the protocol.
"""

import io
import os
import time

from diskcache import Cache

from common import MISSING, dec, enc, items, main, rows, sql, warnings_of


def primitives(data):
    """Reads the entries dcache wrote in ``rust_dir``; writes the same cases in ``py_dir``."""
    cases = [(dec(k), dec(v)) for k, v in data['cases']]
    with Cache(data['rust_dir']) as c:
        found = items(c)
        lookups = [enc(c.get(k, default=MISSING)) if k in c else None for k, _ in cases]
        length = len(c)
    with Cache(data['py_dir']) as c:
        for k, v in cases:
            c[k] = v
    return {
        'items': found,
        'lookups': lookups,
        'len': length,
        'rust_rows': rows(data['rust_dir']),
        'py_rows': rows(data['py_dir']),
    }


def nan_keys(data):
    """Python binds a NaN key as NULL: every set adds a row no lookup finds."""
    with Cache(data['dir']) as c:
        c[float('nan')] = 1
        c[float('nan')] = 2
        c['x'] = 3
        return {
            'len': len(c),
            'keys': [enc(k) for k in c],
            'nan_in': float('nan') in c,
            'check': warnings_of(c, False),
        }


def view(c):
    """Everything about a cache that both sides must agree on."""
    entries = []
    for key in c:
        value, expire_time, tag = c.get(key, default=MISSING, expire_time=True, tag=True)
        entries.append({
            'key': enc(key),
            'live': key in c,
            'value': None if value is MISSING else enc(value),
            'expire_time': expire_time,
            'tag': None if tag is None else enc(tag),
        })
    return {
        'len': len(c),
        'keys': [enc(k) for k in c],
        'keys_rev': [enc(k) for k in reversed(c)],
        'sorted_keys': [enc(k) for k in c.iterkeys()],
        'entries': entries,
        'volume': c.volume(),
    }


def expiry_and_tags(data):
    """Reads dcache's entries with their expiry and tags, then writes the same set."""
    with Cache(data['rust_dir']) as c:
        rust_view = view(c)
        evicted = c.evict('str-tag')
        rust_after = {'keys': [enc(k) for k in c], 'check': warnings_of(c, False),
                      'volume': c.volume()}
    big = bytes(range(256)) * 160
    with Cache(data['py_dir'], cull_limit=0) as c:
        c.set('live', 'v1', expire=3600, tag='str-tag')
        c.set('expired', 'v2', expire=0, tag=7)
        c.set('forever', b'v3', tag=b'\x00blob')
        c.set('float-tag', 4, expire=3600, tag=2.5)
        c.set('expired-file', big, expire=-3540, tag='str-tag')
        c.set('untagged', 1.5)
        c.set('forever', b'v3b', tag=b'\x00blob')
        py_view = view(c)
    return {'rust': rust_view, 'evicted': evicted, 'rust_after': rust_after, 'py': py_view}


# ----- settings -----

def settings_populate(data):
    """Writes the settings scenario (see the Rust test) with python as the writer."""
    directory = data['dir']
    with Cache(
        directory,
        eviction_policy='least-frequently-used',
        cull_limit=0,
        statistics=1,
        tag_index=1,
        disk_min_file_size=100,
    ) as c:
        for i in range(24):
            c.set('k%02d' % i, bytes([i]) * 10_000, tag='t')
        for _ in range(2):
            for i in range(5):
                assert c['k%02d' % i] == bytes([i]) * 10_000
        for i in range(10):
            c.set('e%d' % i, i, expire=-1)
        c.reset('cull_limit', 3)
        c.reset('size_limit', c.volume() - 120_000)
        return {'size_limit': c.size_limit}


def settings_honour(data):
    """Opens the scenario without settings and exercises each one (see the Rust test)."""
    with Cache(data['dir']) as c:
        report = {
            'attrs': {
                'size_limit': c.size_limit,
                'eviction_policy': c.eviction_policy,
                'cull_limit': c.cull_limit,
                'statistics': c.statistics,
                'tag_index': c.tag_index,
                'disk_min_file_size': c.disk_min_file_size,
            },
            'len_before': len(c),
        }
        c.set('o1', 'x')
        report['len_after_set'] = len(c)
        c.set('ofile', b'y' * 200)
        report['len_after_file_set'] = len(c)
        for _ in range(3):
            assert c.get('k05') == bytes([5]) * 10_000
        assert c.get('nope') is None
        report['stats'] = list(c.stats())
        report['culled'] = c.cull()
        report['survivors'] = sorted(c)
        return report


def inspect(data):
    """Facts only SQLite shows: the tag index, modes and access counts."""
    directory = data['dir']
    return {
        'tag_index': bool(sql(directory, "SELECT 1 FROM sqlite_master WHERE name = 'Cache_tag_rowid'")),
        'modes': dict(sql(directory, "SELECT key, mode FROM Cache WHERE raw = 1 AND typeof(key) = 'text'")),
        'access_counts': dict(sql(directory, "SELECT key, access_count FROM Cache WHERE raw = 1 AND typeof(key) = 'text'")),
    }


# ----- culling, check -----

def churn(c):
    """A deterministic mix of writes that makes a cache cull, evict and expire; returns the
    number of entries each bulk operation removed."""
    for i in range(300):
        key = 'k%d' % (i % 60)
        if i % 7 == 3:
            c.delete(key)
        elif i % 11 == 5:
            c.pop(key)
        elif i % 13 == 0:
            c.get(key)
        elif i % 17 == 0:
            c.set(key, i, expire=-1)
        else:
            value = bytes([i % 256]) * 5_000 if i % 2 else 'small-%d' % i
            c.set(key, value, tag='odd' if i % 3 else 'even')
    return [c.evict('odd'), c.expire(), c.cull()]


def cull_and_check(data):
    """Checks the directory dcache churned; churns a directory of its own."""
    with Cache(data['rust_dir']) as c:
        rust = {'check': warnings_of(c, False), 'items': items(c), 'len': len(c)}
    with Cache(
        data['py_dir'],
        size_limit=100_000,
        eviction_policy='least-recently-used',
        disk_min_file_size=1_000,
    ) as c:
        removed = churn(c)
        py = {'removed': removed, 'items': items(c), 'len': len(c)}
    return {'rust': rust, 'py': py}


def file_path(directory, key):
    ((filename,),) = sql(directory, 'SELECT filename FROM Cache WHERE key = ?', (key,))
    return os.path.join(directory, filename)


def damage(directory):
    """Damages a cache the way the Rust test does; returns what it did."""
    missing = file_path(directory, 'f0')
    os.remove(missing)
    try:
        os.removedirs(os.path.dirname(missing))
    except OSError:
        pass  # another file shares the directory
    truncated = file_path(directory, 'f1')
    with open(truncated, 'r+b') as f:
        f.truncate(100)
    unknown = os.path.join(os.path.dirname(file_path(directory, 'f2')), '0' * 28 + '.val')
    with open(unknown, 'wb') as f:
        f.write(b'orphan')
    old = time.time() - 120
    os.utime(unknown, (old, old))
    empty = os.path.join(os.path.dirname(os.path.dirname(file_path(directory, 'f3'))), 'zz')
    os.mkdir(empty)
    sql(directory, "UPDATE Settings SET value = value + 5 WHERE key = 'count'")
    sql(directory, "UPDATE Settings SET value = value + 1234 WHERE key = 'size'")
    return {'missing': missing, 'truncated': truncated, 'unknown': unknown, 'empty': empty}


def populate_damage(c):
    for i in range(6):
        c.set('f%d' % i, bytes([i]) * (40_000 + i))
    for i in range(3):
        c.set('i%d' % i, 'inline-%d' % i)


def check_fix(data):
    """Repairs the directory dcache wrote and damaged; writes and damages one for dcache."""
    with Cache(data['rust_dir']) as c:
        fixed = warnings_of(c, True)
        rust = {
            'fixed': fixed,
            'after': warnings_of(c, False),
            'items': items(c),
        }
    with Cache(data['py_dir']) as c:
        populate_damage(c)
    return {'rust': rust, 'py_damage': damage(data['py_dir'])}


def check_after(data):
    """check() of a directory dcache repaired, and its entries."""
    with Cache(data['dir']) as c:
        return {'check': warnings_of(c, False), 'items': items(c)}


def young_unknown_file(data):
    """Python's check(fix=True) removes an unknown file however young it is."""
    path = data['file']
    with Cache(data['dir']) as c:
        warnings = warnings_of(c, True)
    return {'warnings': warnings, 'exists': os.path.exists(path)}


# ----- queues -----

def queues(data):
    """Pulls what dcache pushed (after pushing more), then pushes for dcache to pull."""
    with Cache(data['rust_dir']) as c:
        for v in ['py-1', 'py-2']:
            c.push(v)
        c.push(b'py-front', side='front')
        c.push({'n': 4}, prefix='jobs')

        def drain(prefix, side):
            out = []
            while True:
                key, value = c.pull(prefix=prefix, side=side)
                if key is None:
                    return out
                out.append([enc(key), enc(value)])

        peeked = c.peek(prefix='jobs')
        pulled = {
            'plain_front': drain(None, 'front'),
            'jobs_back': drain('jobs', 'back'),
            'exp_front': drain('exp', 'front'),
        }
        pulled['peeked'] = [enc(peeked[0]), enc(peeked[1])]
        pulled['len'] = len(c)
    with Cache(data['py_dir'], cull_limit=0) as c:
        keys = [c.push('a'), c.push('b'), c.push('c')]
        keys.append(c.push('z', side='front'))
        keys.append(c.push(b'x' * 40_000, prefix='jobs'))
        keys.append(c.push(2, prefix='jobs'))
        keys.append(c.push(0, prefix='jobs', side='front'))
        keys.append(c.push('stale', prefix='exp', expire=-1))
        keys.append(c.push('fresh', prefix='exp'))
    return {'pulled': pulled, 'pushed': [enc(k) for k in keys]}


# ----- deliberate differences -----

def expire_boundary(data):
    with Cache(data['dir']) as c:
        removed = c.expire()
        return {'removed': removed, 'len': len(c)}


def cull_policy_none(data):
    with Cache(data['dir']) as c:
        removed = c.cull()
        return {'removed': removed, 'len': len(c)}


def streams(data):
    """Reads dcache's streamed value; streams one of its own (``read=True``)."""
    payload = bytes.fromhex(data['payload'])
    with Cache(data['rust_dir']) as c:
        whole = c['stream'] == payload
        with c.read('stream') as f:
            streamed = f.read() == payload
    with Cache(data['py_dir']) as c:
        c.set('stream', io.BytesIO(payload), read=True)
    return {
        'whole': whole,
        'streamed': streamed,
        'rust_rows': rows(data['rust_dir']),
        'py_rows': rows(data['py_dir']),
    }


def nested_empty_dirs(data):
    """Python's check(fix=True) walks top-down: a parent emptied by the fix is found next time."""
    with Cache(data['dir']) as c:
        return [warnings_of(c, True), warnings_of(c, True), warnings_of(c, True)]


def float_counter(data):
    """Python's incr adds to a float value; dcache's counts integers only."""
    with Cache(data['dir']) as c:
        c['float'] = 1.5
        c['int'] = 1
        return {'float': c.incr('float'), 'int': c.incr('int')}


def reset_setting(data):
    with Cache(data['dir']) as c:
        c.reset(data['name'], data['value'])


main({
    'primitives': primitives,
    'nan_keys': nan_keys,
    'expiry_and_tags': expiry_and_tags,
    'settings_populate': settings_populate,
    'settings_honour': settings_honour,
    'inspect': inspect,
    'cull_and_check': cull_and_check,
    'check_fix': check_fix,
    'check_after': check_after,
    'young_unknown_file': young_unknown_file,
    'queues': queues,
    'expire_boundary': expire_boundary,
    'cull_policy_none': cull_policy_none,
    'reset_setting': reset_setting,
    'streams': streams,
    'nested_empty_dirs': nested_empty_dirs,
    'float_counter': float_counter,
})
