#!/usr/bin/env python3
"""Paired A/B runs of layerpipe builds and settings, with curl as the client (BENCHMARKS.md,
"One runtime per core"). A cross-check of the load benchmark with other noise: the origin
is nginx serving a 1 GiB file with sendfile (little CPU, no auth), and every round visits
every variant once, in a rotated order, so each variant's ratio to the first is taken
against the same moment's noise.

usage: python3 benches/load/ab.py ROUNDS NAME=BINARY[@EXTRA_CONFIG] ...
  BINARY is a layerpipe binary, or `nginx` for tuned nginx (issue 13's buffer settings);
  EXTRA_CONFIG is `"key":value,` text put first in that layerpipe's config.
  STRACE=1: after the rounds, `strace -f -c` counts per variant during one more download.
  VERIFY=true: verify_digests on (default off).
Files go to /tmp/layerpipe-ab (the blob is made once and kept). Needs nginx and curl.

The printed row per variant: MB/s median (min-max), CPU s/GiB of the proxy process
(utime + stime) median (min-max), then the medians of the per-round ratios to the first
variant, speed and CPU, then the proxy's minor page faults per download (median): fresh
memory it touched, which costs CPU that no copy accounts for; last, its peak RSS over all
rounds (VmHWM, MiB)."""
import os, sys, subprocess, time, json, statistics, socket, hashlib
WORK = '/tmp/layerpipe-ab'
ORIGIN = '127.0.0.1:18500'
os.makedirs(f'{WORK}/blobs', exist_ok=True)
os.makedirs(f'{WORK}/origin', exist_ok=True)
if not os.path.exists(f'{WORK}/hex'):
    h = hashlib.sha256()
    with open(f'{WORK}/blob.tmp', 'wb') as f:
        for _ in range(1024):
            chunk = os.urandom(1 << 20)
            h.update(chunk)
            f.write(chunk)
    os.rename(f'{WORK}/blob.tmp', f'{WORK}/blobs/sha256:{h.hexdigest()}')
    open(f'{WORK}/hex', 'w').write(h.hexdigest())
os.chmod(WORK, 0o755)
HEX = open(f'{WORK}/hex').read().strip()
open(f'{WORK}/origin/nginx.conf', 'w').write('''pid %(w)s/origin/nginx.pid; worker_processes 1; events { worker_connections 1024; }
http { access_log off; sendfile on; tcp_nopush on; client_body_temp_path %(w)s/origin/cb; proxy_temp_path %(w)s/origin/proxy;
  fastcgi_temp_path %(w)s/origin/fc; uwsgi_temp_path %(w)s/origin/uw; scgi_temp_path %(w)s/origin/sc;
  server { listen %(o)s;
    location = /v2/ { default_type application/json; return 200 '{}'; }
    location /v2/bench/blob/blobs/ { alias %(w)s/blobs/; default_type application/octet-stream; } } }
''' % {'w': WORK, 'o': ORIGIN})
subprocess.run(['/usr/sbin/nginx', '-p', f'{WORK}/origin', '-c', f'{WORK}/origin/nginx.conf', '-e', f'{WORK}/origin/error.log'], check=True)
time.sleep(0.3)
SIZE = 1 << 30
TCK = os.sysconf('SC_CLK_TCK')
rounds = int(sys.argv[1])
variants = []
for i, arg in enumerate(sys.argv[2:]):
    name, rest = arg.split('=', 1)
    binary, _, extra = rest.partition('@')
    variants.append((name, binary, extra))
procs = []
def usage(pid):
    """CPU seconds (utime + stime) and minor page faults so far, from one read of stat."""
    f = open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()
    return (int(f[11]) + int(f[12])) / TCK, int(f[7])
NGINX_CONF = '''pid %(d)s/nginx.pid; worker_processes 1; events { worker_connections 1024; }
http { access_log off; client_body_temp_path %(d)s/cb; proxy_temp_path %(d)s/proxy; fastcgi_temp_path %(d)s/fc; uwsgi_temp_path %(d)s/uw; scgi_temp_path %(d)s/sc;
  upstream origin { server %(origin)s; keepalive 32; }
  server { listen 127.0.0.1:%(port)d; location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection "";
    proxy_buffering on; proxy_buffer_size 256k; proxy_buffers 16 256k; proxy_busy_buffers_size 512k; proxy_max_temp_file_size 0; } } }
'''
nginx_ports = set()
for k, (name, binary, extra) in enumerate(variants):
    port = 18600 + k
    d = f'{WORK}/run-{name}'
    os.makedirs(d, exist_ok=True)
    if binary == 'nginx':
        open(f'{d}/nginx.conf', 'w').write(NGINX_CONF % {'d': d, 'origin': ORIGIN, 'port': port})
        subprocess.run(['/usr/sbin/nginx', '-p', d, '-c', f'{d}/nginx.conf', '-e', f'{d}/error.log'], check=True)
        time.sleep(0.3)
        master = int(open(f'{d}/nginx.pid').read())
        worker = int(subprocess.run(['pgrep', '-P', str(master)], capture_output=True, text=True).stdout.split()[0])
        class P: pass
        pr = P(); pr.pid = worker; pr.master = master
        procs.append((pr, port)); nginx_ports.add(port)
        continue
    cfg = '{' + extra + '"verify_digests":' + os.environ.get('VERIFY', 'false') + ',"index":{"dir":""},"registries":{"%s":{"endpoint":"http://%s"}}}' % (ORIGIN, ORIGIN)
    open(f'{d}/c.json', 'w').write(cfg)
    p = subprocess.Popen([binary, '--config', f'{d}/c.json', '--listen', f'127.0.0.1:{port}'],
                         stdout=subprocess.DEVNULL, stderr=open(f'{d}/log', 'w'), env={**os.environ, 'RUST_LOG': os.environ.get('LP_LOG', 'warn')})
    procs.append((p, port))
for p, port in procs:
    for _ in range(200):
        try:
            socket.create_connection(('127.0.0.1', port), 0.1).close(); break
        except OSError:
            time.sleep(0.05)
def url(port):
    if port in nginx_ports:
        return f'http://127.0.0.1:{port}/v2/bench/blob/blobs/sha256:{HEX}'
    return f'http://127.0.0.1:{port}/download?image={ORIGIN.replace(":", "%3A")}%2Fbench%2Fblob%3Alatest&digest=sha256:{HEX}&layer=1&mt=application%2Foctet-stream'
def get(port):
    out = subprocess.run(['curl', '-s', '-o', '/dev/null', '-w', '%{http_code} %{size_download} %{speed_download}', url(port)], capture_output=True, text=True).stdout.split()
    assert out[0] == '200' and int(out[1]) == SIZE, out
    return float(out[2]) / 1e6
for p, port in procs:  # warm up: ping, connection
    get(port)
res = {v[0]: {'mbps': [], 'cpu': [], 'faults': []} for v in variants}
for r in range(rounds):
    order = list(range(len(variants)))
    order = order[r % len(order):] + order[:r % len(order)]
    for k in order:
        p, port = procs[k]
        c0, f0 = usage(p.pid)
        s = get(port)
        c1, f1 = usage(p.pid)
        res[variants[k][0]]['faults'].append(f1 - f0)
        res[variants[k][0]]['mbps'].append(s)
        res[variants[k][0]]['cpu'].append(c1 - c0)
if os.environ.get('STRACE'):
    for k, (p, port) in enumerate(procs):
        out = f'{WORK}/run-{variants[k][0]}/strace.txt'
        st = subprocess.Popen(['strace', '-f', '-c', '-o', out, '-p', str(p.pid)], stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        get(port)
        st.send_signal(2); st.wait()
        counts = {}
        for line in open(out):
            f = line.split()
            if len(f) >= 5 and f[3].isdigit():
                counts[f[-1]] = int(f[3])
        res[variants[k][0]]['strace'] = {n: counts.get(n, 0) for n in ['epoll_wait', 'futex', 'recvfrom', 'readv', 'read', 'writev', 'sendto', 'write']}
for k, (p, _) in enumerate(procs):
    status = open(f'/proc/{p.pid}/status').read()
    res[variants[k][0]]['peak_rss_mib'] = int(status.split('VmHWM:')[1].split()[0]) / 1024
for p, _ in procs:
    if hasattr(p, 'master'):
        os.kill(p.master, 15); time.sleep(0.2)
    else:
        p.terminate(); p.wait()
os.kill(int(open(f'{WORK}/origin/nginx.pid').read()), 15)
ref = variants[0][0]
print(f'{rounds} rounds, 1 GiB each, curl; median (min-max); paired ratio to {ref}: median of per-round ratios')
print(json.dumps({k: {"mbps": [round(x) for x in v["mbps"]], "cpu": [round(x, 2) for x in v["cpu"]]} for k, v in res.items()}))
for name, *_ in variants:
    m, c = res[name]['mbps'], res[name]['cpu']
    rm = [a / b for a, b in zip(m, res[ref]['mbps'])]
    rc = [a / b for a, b in zip(c, res[ref]['cpu'])]
    print(f'| {name} | {statistics.median(m):.0f} ({min(m):.0f}-{max(m):.0f}) | {statistics.median(c):.3f} ({min(c):.2f}-{max(c):.2f}) | {statistics.median(rm):.3f} | {statistics.median(rc):.3f} | {statistics.median(res[name]["faults"]):.0f} | {res[name]["peak_rss_mib"]:.1f} |', res[name].get('strace', ''))
