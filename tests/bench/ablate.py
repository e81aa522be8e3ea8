#!/usr/bin/env python3
"""Ablation runs: what each part of the gateway's Envoy configuration costs a request.

`make bench` measures whole scenarios; this takes the gateway's rendered configuration apart, one
piece at a time, and measures Envoy's CPU per request for each variant, the variants taking turns
round after round (so a drift of the machine touches all alike). README "Benchmarks" gives the
figures it produced and what they mean.

First keep a rendered configuration, then run the variants (repository root, quiet machine):

    BENCH_KEEP=1 BENCH_ONLY=envoy BENCH_DURATION=2 make bench
    python3 tests/bench/ablate.py 5 gateway nolog plainroute noprovider plain

A variant is one of the names below, several joined with `+` (`noprovider+nolog`), and may end
in `@path/to/other.wasm` to run another build of the filter (a before/after of a change). With
the build of `make wasm-timing` (`gateway@target/timing/wasm32-wasip1/release/ai_gateway.wasm`)
each run also prints the time spent inside each callback.
Settings (environment): SECS (measured seconds a run, 6), CONN (wrk connections, 32), MODEL
(`openai` or `anthropic`, the bench's request bodies), SCRATCH (the kept directory; the newest
/tmp/ai-gateway-bench-* by default). Envoy runs on CPU 0 with --concurrency 1, wrk and the
bench's fake upstream (`target/release/bench --upstream`) on CPU 1.
"""
import copy
import glob
import json
import os
import re
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENVOY = os.path.join(ROOT, '.venv/bin/envoy')
WASM = os.path.join(ROOT, 'target/wasm32-wasip1/release/ai_gateway.wasm')
WRK_LUA = os.path.join(ROOT, 'tests/bench/wrk.lua')
UPSTREAM = os.path.join(ROOT, 'target/release/bench')
PROVIDER_CLUSTERS = {'openai', 'anthropic', 'azure', 'gemini', 'bedrock', 'cohere', 'provider_demo'}
LISTEN, ADMIN = 18080, 18081


def hcm(c):
    return c['static_resources']['listeners'][0]['filter_chains'][0]['filters'][0]['typed_config']


def nolog(c):
    """No access log at all (the gateway's fields and the body log)."""
    hcm(c)['access_log'] = []


def nobodylog(c):
    """No body log (the second access log and its CEL filter); the request log as shipped."""
    hcm(c)['access_log'] = [l for l in hcm(c)['access_log'] if 'filter' not in l]


def envoyfields(c):
    """The request log with Envoy's own fields only (none of the gateway's filter state)."""
    for log in hcm(c)['access_log']:
        fields = log['typed_config'].get('log_format', {}).get('json_format', {})
        for key in [k for k, v in fields.items() if 'FILTER_STATE' in v]:
            del fields[key]


def plainroute(c):
    """One plain route to the openai cluster: no filter-state match, no retries."""
    for vh in hcm(c)['route_config']['virtual_hosts']:
        vh['routes'] = [{'name': 'all', 'match': {'prefix': '/'},
                         'route': {'cluster': 'openai', 'timeout': '600s'}}]


def noprovider(c):
    """No per-attempt filters in the provider clusters (no provider filter, no buffer)."""
    for cluster in c['static_resources']['clusters']:
        for opts in cluster.get('typed_extension_protocol_options', {}).values():
            opts.pop('http_filters', None)


def plain(c):
    """Plain Envoy as `make bench` derives it: no wasm, no buffer, the request log only."""
    h = hcm(c)
    h['http_filters'] = [f for f in h['http_filters'] if f['name'] == 'envoy.filters.http.router']
    h['access_log'] = [l for l in h['access_log'] if 'filter' not in l]
    plainroute(c)
    noprovider(c)


def norelease(c):
    """No `memory_allocator_manager`: tcmalloc keeps its free pages instead of releasing them."""
    c.pop('memory_allocator_manager', None)


def gateway(c):
    """The gateway as shipped."""


VARIANTS = {f.__name__: f for f in (gateway, nolog, nobodylog, envoyfields, plainroute, noprovider,
                                    plain, norelease)}


def render(base, name, port, scratch):
    parts, _, wasm = name.partition('@')
    config = copy.deepcopy(base)
    for part in parts.split('+'):
        VARIANTS[part](config)
    text = re.sub(r'"filename": "[^"]*ai_gateway\.wasm"',
                  '"filename": "%s"' % os.path.abspath(wasm or WASM), json.dumps(config))
    config = json.loads(text)
    for cluster in config['static_resources']['clusters']:
        if cluster['name'] not in PROVIDER_CLUSTERS:
            continue
        for group in cluster.get('load_assignment', {}).get('endpoints', []):
            for endpoint in group['lb_endpoints']:
                endpoint['endpoint']['address']['socket_address']['port_value'] = port
    config['static_resources']['listeners'][0]['address']['socket_address']['port_value'] = LISTEN
    config['admin']['address']['socket_address']['port_value'] = ADMIN
    path = os.path.join(scratch, 'ablate-%s.json' % re.sub(r'[^A-Za-z0-9+]', '_', name))
    with open(path, 'w') as f:
        json.dump(config, f)
    return path


def cpu_seconds(pid):
    fields = open('/proc/%d/stat' % pid).read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def wrk(body, seconds):
    env = dict(os.environ, BENCH_BODY=body, BENCH_HEADERS='authorization: Bearer client-key')
    out = subprocess.run(['taskset', '-c', '1', 'wrk', '-t1', '-c' + os.environ.get('CONN', '32'),
                          '-d%ds' % seconds, '--timeout', '10s', '-s', WRK_LUA,
                          'http://127.0.0.1:%d/v1/chat/completions' % LISTEN],
                         env=env, capture_output=True, text=True).stdout
    return json.loads(out.split('BENCH_JSON', 1)[1].strip().splitlines()[0])


def run(config_path, body, seconds):
    env = dict(os.environ, OPENAI_API_KEY='sk-bench-openai', ANTHROPIC_API_KEY='sk-bench-anthropic')
    log = open(config_path + '.log', 'w')
    envoy = subprocess.Popen(['taskset', '-c', '0', ENVOY, '-c', config_path, '--concurrency', '1',
                              '-l', 'error', '--component-log-level', 'wasm:info'],
                             stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        for _ in range(100):
            if subprocess.run(['curl', '-sf', '-o', '/dev/null', 'localhost:%d/ready' % ADMIN]).returncode == 0:
                break
            time.sleep(0.1)
        wrk(body, 2)  # warm-up
        before = cpu_seconds(envoy.pid)
        result = wrk(body, seconds)
        used = cpu_seconds(envoy.pid) - before
    finally:
        envoy.send_signal(signal.SIGTERM)
        envoy.wait()
    if result['status_errors'] or not result['requests']:
        raise SystemExit('%s: %d answers not 2xx of %d (see %s.log)'
                         % (config_path, result['status_errors'], result['requests'], config_path))
    # A `make wasm-timing` build logs the time spent inside each callback.
    timing = [l for l in open(config_path + '.log') if 'callback timing' in l]
    if timing:
        print('    ' + timing[-1].split('callback timing', 1)[1].strip())
    return used / result['requests'] * 1e6, result['p50_us'], result['requests'] / seconds


def median(values):
    return sorted(values)[len(values) // 2]


def main():
    if len(sys.argv) < 3 or not sys.argv[1].isdigit():
        raise SystemExit(__doc__)
    rounds, names = int(sys.argv[1]), sys.argv[2:]
    for name in names:
        for part in name.partition('@')[0].split('+'):
            if part not in VARIANTS:
                raise SystemExit('unknown variant %r (known: %s)' % (part, ', '.join(VARIANTS)))
    kept = sorted(glob.glob('/tmp/ai-gateway-bench-*/gateway-envoy.json'), key=os.path.getmtime)
    scratch = os.environ.get('SCRATCH') or (os.path.dirname(kept[-1]) if kept else None)
    if not scratch:
        raise SystemExit('no kept configuration: run `BENCH_KEEP=1 BENCH_ONLY=envoy make bench` first')
    base = json.load(open(os.path.join(scratch, 'gateway-envoy.json')))
    body = os.path.join(scratch, 'bodies', os.environ.get('MODEL', 'openai') + '.json')
    seconds = int(os.environ.get('SECS', '6'))
    upstream = subprocess.Popen(['taskset', '-c', '1', UPSTREAM, '--upstream'],
                                stdout=subprocess.PIPE, text=True)
    port = int(re.search(r':(\d+)', upstream.stdout.readline()).group(1))
    cpu, p50 = {n: [] for n in names}, {n: [] for n in names}
    try:
        for r in range(rounds):
            for name in (names if r % 2 == 0 else names[::-1]):
                us, lat, rps = run(render(base, name, port, scratch), body, seconds)
                cpu[name].append(us)
                p50[name].append(lat)
                print('round %d  %-44s %7.0f req/s  %6.1f µs/req  p50 %7.1f µs'
                      % (r + 1, name, rps, us, lat), flush=True)
    finally:
        upstream.terminate()
    print('\nvariant                                       µs/req median (per round)       p50 median')
    for name in names:
        print('%-44s %7.1f (%s)  %7.1f' % (name, median(cpu[name]),
                                           ' '.join('%.1f' % v for v in cpu[name]), median(p50[name])))


if __name__ == '__main__':
    main()
