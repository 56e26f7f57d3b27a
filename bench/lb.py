#!/usr/bin/env python3
"""HTTP load balancing: Gantry's application load balancer side by side with nginx and HAProxy, and the backends
reached directly (the ceiling), in one run on the same machine, with the same backends and the same load generator.

Backends: one nginx process serving a static 1 KiB file (`/1k`, open_file_cache, keep-alive, no request limit per
connection) on --backends ports (default 4), --backend-workers worker processes (default: one per core).
Proxies, each in front of all the backends, round robin, keep-alive on both sides, adding X-Forwarded-For:
  - Gantry: `gantry server --no-agent --lb-addresses 127.0.3.0/24`; through elbv2 (boto3): a target group of type
    `ip` with the backends as 127.0.0.1:<port> targets (health checks every 5 s, healthy after 2), an application
    load balancer, an HTTP listener forwarding to the group; wrk is pointed at the load balancer's own address
    (127.0.3.x:<listener port>). Its tokio runtime has one worker thread per core (there is no knob for it yet).
  - nginx: `proxy_pass` to an `upstream` with `keepalive 64`, `proxy_http_version 1.1`,
    `proxy_set_header Connection ""`, `worker_processes` = the number of cores (= Gantry's worker threads).
  - HAProxy: `mode http`, `option http-keep-alive`, `option forwardfor`, `nbthread` = the number of cores.
Load: `wrk -t<threads> -c<connections> -d<duration> --latency` with a Lua `done` callback that prints the
percentiles (p50, p99, p99.9) and the error counts, for each of --connections (default 64 and 1000), after a
--warmup run (default 2 s) that fills the connection pools. Each (connections, target) run is repeated --repeat
times (default 3), the targets in a rotating order, and the median of each measure is reported.
Measured per run: req/s, latency percentiles, errors (socket errors and non-2xx answers), the CPU seconds per
100,000 requests of the proxy (utime+stime from /proc/<pid>/stat, summed over nginx's master and workers), of the
backends and of wrk itself, the proxy's peak RSS (VmHWM, summed over its processes) after the row's runs, the
connections the backends accepted during the run (nginx stub_status: pool churn; Gantry's health checks open about
8 in every 10 s run), and whether a compiler or linker was running (another build sharing the cores). A target that
exits during a run stops the benchmark, its log kept. --wait-load waits for a quieter machine before starting.
Load generator, proxy and backends share the machine's cores: on 2 cores none of them has a core of its own, so
req/s are what the three reach together, and the CPU per request is the fairer measure of the proxy's own cost.
TLS rows (--tls-connections, default 64): the same, over HTTPS with one certificate (a self-signed RSA 2048 one
made by openssl): imported into Gantry's ACM and served by an HTTPS listener with the policy
ELBSecurityPolicy-TLS13-1-2-2021-06, and given to nginx (`listen ... ssl`, TLSv1.2 and TLSv1.3); wrk negotiates
TLS 1.3 with both and keeps its connections, so the rows measure the encrypted traffic rather than handshakes.

    .venv/bin/python bench/lb.py [--connections 64,1000] [--threads 2] [--duration 10] [--repeat 3] [--wait-load 1]
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
import urllib3

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import GANTRY_BIN, REPO, Gantry, Server, client, free_port, log, machine_note, table  # noqa: E402

BODY_BYTES = 1024
PATH = "/1k"
CLK_TCK = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count()
# The HTTPS readiness probes do not verify the self-signed certificate.
urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

WRK_LUA = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%.0f,"duration_us":%.0f,"connect":%.0f,"read":%.0f,"write":%.0f,"status":%.0f,' ..
    '"timeout":%.0f,"p50":%.0f,"p90":%.0f,"p99":%.0f,"p999":%.0f,"max":%.0f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max))
end
"""


# --- processes --------------------------------------------------------------------------------------------------


def children(pid):
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def cpu_seconds(pids):
    """utime+stime of the processes (all their threads), in seconds."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # fields 14 and 15 of stat(5), counted after the comm field
    return total / CLK_TCK


def peak_rss_kib(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as f:
            total += next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    return total


def build_running():
    """Whether a compiler or linker runs on the machine (another engineer building), by process name."""
    names = {"rustc", "cargo", "cc1", "cc1plus", "ld", "ld.lld", "mold", "clang"}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in names:
                    return True
            except OSError:
                pass
    return False


def ready_get(url, **kwargs):
    r = requests.get(url, timeout=1, **kwargs)
    return r.status_code == 200 and len(r.content) == BODY_BYTES


class Nginx(Server):
    """An nginx process of ours, its config written into a fresh directory."""

    name = "nginx"

    def __init__(self, port=None):
        super().__init__(port)
        self.root = Path(tempfile.mkdtemp(prefix=f"bench-{self.name.replace(' ', '-')}-"))
        self.config = self.root / "nginx.conf"

    def write_config(self, workers, http_block):
        user = "user root;" if os.geteuid() == 0 else ""
        temp = " ".join(f"{t}_temp_path {self.root};" for t in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        self.config.write_text(f"""
{user} daemon off; master_process on; worker_processes {workers}; worker_rlimit_nofile 20000;
pid {self.root}/nginx.pid; error_log {self.root}/error.log warn;
events {{ worker_connections 10000; }}
http {{ access_log off; {temp}
{http_block}
}}
""")

    def argv(self):
        return ["nginx", "-c", str(self.config), "-p", str(self.root)]

    def pids(self):
        return [self.pid, *children(self.pid)]

    def close(self):
        super().close()
        shutil.rmtree(self.root, ignore_errors=True)


class Backends(Nginx):
    """nginx serving a static 1 KiB file on `count` ports."""

    name = "backends"

    def __init__(self, count, workers):
        super().__init__()
        self.ports = [free_port() for _ in range(count)]
        self.status_port = free_port()
        (self.root / "www").mkdir()
        (self.root / "www" / PATH.lstrip("/")).write_bytes(os.urandom(BODY_BYTES // 2).hex().encode())
        listens = " ".join(f"listen 127.0.0.1:{p};" for p in self.ports)
        self.write_config(workers, f"""
 sendfile on; tcp_nodelay on; keepalive_requests 1000000; keepalive_timeout 120s;
 open_file_cache max=100; open_file_cache_valid 600s; default_type application/octet-stream;
 server {{ {listens} root {self.root / "www"}; }}
 server {{ listen 127.0.0.1:{self.status_port}; location / {{ stub_status; }} }}""")

    def ready(self):
        return all(ready_get(f"http://127.0.0.1:{p}{PATH}") for p in self.ports)

    def accepted(self):
        """Connections the backends have accepted so far (stub_status), this query's own included."""
        text = requests.get(f"http://127.0.0.1:{self.status_port}/", timeout=5).text
        return int(text.splitlines()[2].split()[0])


class NginxProxy(Nginx):
    name = "nginx"

    def __init__(self, backend_ports, workers):
        super().__init__()
        servers = " ".join(f"server 127.0.0.1:{p};" for p in backend_ports)
        self.write_config(workers, f"""
 tcp_nodelay on; keepalive_requests 1000000; keepalive_timeout 120s;
 upstream backends {{ {servers} keepalive 64; keepalive_requests 1000000; keepalive_timeout 120s; }}
 server {{ listen 127.0.0.1:{self.port};
  location / {{ proxy_pass http://backends; proxy_http_version 1.1; proxy_set_header Connection "";
   proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; }} }}""")
        self.url = f"{self.endpoint}{PATH}"

    def ready(self):
        return ready_get(self.url)


class NginxTlsProxy(Nginx):
    """nginx terminating TLS with the same certificate, then the same proxy_pass as NginxProxy."""

    name = "nginx https"

    def __init__(self, backend_ports, workers, cert, key):
        super().__init__()
        servers = " ".join(f"server 127.0.0.1:{p};" for p in backend_ports)
        self.write_config(workers, f"""
 tcp_nodelay on; keepalive_requests 1000000; keepalive_timeout 120s;
 upstream backends {{ {servers} keepalive 64; keepalive_requests 1000000; keepalive_timeout 120s; }}
 server {{ listen 127.0.0.1:{self.port} ssl; ssl_certificate {cert}; ssl_certificate_key {key};
  ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache shared:tls:10m;
  location / {{ proxy_pass http://backends; proxy_http_version 1.1; proxy_set_header Connection "";
   proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; }} }}""")
        self.url = f"https://127.0.0.1:{self.port}{PATH}"

    def ready(self):
        return ready_get(self.url, verify=False)


class GantryTls:
    """Gantry's HTTPS listener, measured as its own target (the same process as the HTTP one)."""

    name = "gantry https"

    def __init__(self, gantry):
        self.gantry = gantry
        self.url = gantry.tls_url
        self.proc = gantry.proc
        self.log_file = gantry.log_file

    def pids(self):
        return self.gantry.pids()

    def log_tail(self):
        return self.gantry.log_tail()


def self_signed(directory):
    """(certificate, key) paths of a self-signed RSA 2048 certificate made by openssl."""
    cert, key = directory / "bench.crt", directory / "bench.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj",
                    "/CN=bench.example.test", "-addext", "subjectAltName=DNS:bench.example.test",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


class HAProxy(Server):
    name = "haproxy"

    def __init__(self, backend_ports, threads):
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="bench-haproxy-"))
        self.config = self.root / "haproxy.cfg"
        servers = "\n".join(f"  server b{i} 127.0.0.1:{p}" for i, p in enumerate(backend_ports))
        self.config.write_text(f"""
global
  nbthread {threads}
  maxconn 8000
defaults
  mode http
  option http-keep-alive
  option forwardfor
  timeout connect 5s
  timeout client 120s
  timeout server 120s
  timeout http-keep-alive 120s
frontend fe
  bind 127.0.0.1:{self.port}
  default_backend be
backend be
  balance roundrobin
{servers}
""")
        self.url = f"{self.endpoint}{PATH}"

    def argv(self):
        return ["haproxy", "-db", "-f", str(self.config)]

    def ready(self):
        return ready_get(self.url)

    def pids(self):
        return [self.pid]

    def close(self):
        super().close()
        shutil.rmtree(self.root, ignore_errors=True)


class GantryLB(Gantry):
    """A Gantry server without its agent, whose load balancers get addresses of 127.0.3.0/24."""

    def __init__(self):
        super().__init__(extra_args=["--no-agent", "--lb-addresses", "127.0.3.0/24"])
        self.url = None
        self.tls_url = None

    def pids(self):
        return [self.pid]

    def setup(self, backend_ports, cert, key):
        """The target group, load balancer, HTTP and HTTPS listeners; `url` and `tls_url` are at the load balancer's
        own address."""
        elb = client("elbv2", self.endpoint)
        tg = elb.create_target_group(
            Name="bench", Protocol="HTTP", Port=80, VpcId="vpc-00000000000000001", TargetType="ip",
            HealthCheckPath=PATH, HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2,
            HealthyThresholdCount=2,
        )["TargetGroups"][0]["TargetGroupArn"]
        elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": "127.0.0.1", "Port": p} for p in backend_ports])
        lb = elb.create_load_balancer(Name="bench", Type="application")["LoadBalancers"][0]
        port = free_port()
        elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port,
                            DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
        certificate = client("acm", self.endpoint).import_certificate(
            Certificate=cert.read_bytes(), PrivateKey=key.read_bytes())["CertificateArn"]
        tls_port = free_port()
        elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTPS", Port=tls_port,
                            Certificates=[{"CertificateArn": certificate}],
                            SslPolicy="ELBSecurityPolicy-TLS13-1-2-2021-06",
                            DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
        address = self.lb_address(port)
        self.url = f"http://{address}:{port}{PATH}"
        self.tls_url = f"https://{address}:{tls_port}{PATH}"
        log(f"gantry: load balancer {lb['DNSName']} at {address}:{port}")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            states = [d["TargetHealth"]["State"] for d in elb.describe_target_health(TargetGroupArn=tg)
                      ["TargetHealthDescriptions"]]
            if states and all(s == "healthy" for s in states):
                break
            time.sleep(0.5)
        else:
            log(f"gantry: targets not all healthy after 60 s ({states}); going on (ALB fails open)")
        deadline = time.monotonic() + 10
        while not (ready_get(self.url) and ready_get(self.tls_url, verify=False)) and time.monotonic() < deadline:
            time.sleep(0.1)

    def lb_address(self, port):
        """The load balancer's own address: the listener's socket on another address than the shared 127.0.0.1."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True).stdout
            addresses = [line.split()[3].rsplit(":", 1)[0] for line in out.splitlines() if line.strip()]
            own = [a for a in addresses if a.startswith("127.") and a != "127.0.0.1"]
            if own:
                return own[0]
            time.sleep(0.1)
        return "127.0.3.1"


class Direct:
    """The backends with no proxy: wrk on one of their ports (all ports are served by the same workers)."""

    name = "backends directly"

    def __init__(self, backends):
        self.url = f"http://127.0.0.1:{backends.ports[0]}{PATH}"

    def pids(self):
        return []


# --- load -------------------------------------------------------------------------------------------------------


def wrk(url, threads, connections, seconds, lua):
    """One wrk run: its Lua summary, plus wrk's own CPU seconds."""
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", "--latency",
            "-s", lua, url]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    line = next((li for li in out.splitlines() if li.startswith("WRKJSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n{out}")
    result = json.loads(line.split(" ", 1)[1])
    result["wrk_cpu"] = usage.ru_utime + usage.ru_stime
    return result


def measure(target, backends, args, lua, connections):
    pids = target.pids()
    wrk(target.url, args.threads, connections, args.warmup, lua)
    busy = build_running()
    accepted = backends.accepted()
    before, backends_before = cpu_seconds(pids), cpu_seconds(backends.pids())
    r = wrk(target.url, args.threads, connections, args.duration, lua)
    proxy_cpu, backend_cpu = cpu_seconds(pids) - before, cpu_seconds(backends.pids()) - backends_before
    opened = backends.accepted() - accepted - 1
    for server in (target, backends):
        proc = getattr(server, "proc", None)
        if proc is not None and proc.poll() is not None:
            kept = Path(tempfile.gettempdir()) / f"bench-lb-{server.name.replace(' ', '-')}-{proc.pid}.log"
            shutil.copy(server.log_file.name, kept)
            raise RuntimeError(f"{server.name} (pid {proc.pid}) exited with {proc.returncode} during the run; "
                               f"its log is kept in {kept}:\n{server.log_tail()}")
    n = r["requests"]
    errors = r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"]
    row = {
        "rps": n / (r["duration_us"] / 1e6),
        "p50": r["p50"] / 1000, "p99": r["p99"] / 1000, "p999": r["p999"] / 1000,
        "proxy_cpu": proxy_cpu / n * 1e5 if pids else None,
        "backend_cpu": backend_cpu / n * 1e5,
        "wrk_cpu": r["wrk_cpu"] / n * 1e5,
        "errors": errors,
        "opened": opened,
        "build": busy or build_running(),
    }
    cpu = "-" if row["proxy_cpu"] is None else f"{row['proxy_cpu']:.2f}"
    log(f"  {target.name:18} c={connections:<5} {row['rps']:>9,.0f} req/s  p50 {row['p50']:.2f}  p99 "
        f"{row['p99']:.2f}  p99.9 {row['p999']:.2f} ms  proxy CPU {cpu} s/100k  backend conns opened {opened}  errors {errors}"
        f"{'  (build running)' if row['build'] else ''}")
    return row


def wait_quiet(limit, max_wait):
    deadline = time.monotonic() + max_wait
    while os.getloadavg()[0] > limit and time.monotonic() < deadline:
        log(f"load average {os.getloadavg()[0]:.2f} > {limit}: waiting for a quieter moment")
        time.sleep(30)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", default="64,1000", help="wrk connection counts, one row each")
    parser.add_argument("--tls-connections", default="64", help="wrk connection counts of the HTTPS rows")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (the same for every row)")
    parser.add_argument("--duration", type=int, default=10, help="seconds of each measured wrk run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of the wrk run before each measured one")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--backends", type=int, default=4, help="backend ports")
    parser.add_argument("--backend-workers", type=int, default=CORES)
    parser.add_argument("--proxy-workers", type=int, default=CORES,
                        help="nginx worker_processes and HAProxy nbthread (Gantry: one tokio worker per core, fixed)")
    parser.add_argument("--wait-load", type=float, default=None,
                        help="before starting, wait up to --wait-max seconds for the 1-minute load to fall below this")
    parser.add_argument("--wait-max", type=int, default=600)
    args = parser.parse_args()
    for tool in ("wrk", "nginx", "haproxy", "ss", "openssl"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (apt-get install wrk nginx-light haproxy iproute2)")
    if not GANTRY_BIN.exists():
        sys.exit(f"{GANTRY_BIN} not found: build it with `cargo build --release -p gantry`")
    connection_rows = [int(c) for c in args.connections.split(",")]
    tls_rows = [int(c) for c in args.tls_connections.split(",") if c]
    if args.wait_load is not None:
        wait_quiet(args.wait_load, args.wait_max)
    load_start = os.getloadavg()[0]
    stat = GANTRY_BIN.stat()
    binary = (f"{GANTRY_BIN.relative_to(REPO) if GANTRY_BIN.is_relative_to(REPO) else GANTRY_BIN} built "
              f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(stat.st_mtime))}, {stat.st_size:,} bytes.")

    lua = tempfile.NamedTemporaryFile("w", prefix="bench-wrk-", suffix=".lua", delete=False)
    lua.write(WRK_LUA)
    lua.close()
    servers = []
    tls_dir = Path(tempfile.mkdtemp(prefix="bench-tls-"))
    cert, key = self_signed(tls_dir)
    try:
        backends = Backends(args.backends, args.backend_workers)
        servers.append(backends)
        backends.start()
        gantry = GantryLB()
        servers.append(gantry)
        gantry.start()
        gantry.setup(backends.ports, cert, key)
        nginx = NginxProxy(backends.ports, args.proxy_workers)
        haproxy = HAProxy(backends.ports, args.proxy_workers)
        nginx_tls = NginxTlsProxy(backends.ports, args.proxy_workers, cert, key)
        servers += [nginx, haproxy, nginx_tls]
        nginx.start()
        haproxy.start()
        nginx_tls.start()
        targets = [gantry, nginx, haproxy, Direct(backends)]
        tls_targets = [GantryTls(gantry), nginx_tls]

        results = {}  # (target name, connections) -> [runs]
        peaks = {}  # (target name, connections) -> KiB
        for group, rows_of in ((targets, connection_rows), (tls_targets, tls_rows)):
            for connections in rows_of:
                for n in range(args.repeat):
                    shift = n % len(group)
                    for target in group[shift:] + group[:shift]:
                        results.setdefault((target.name, connections), []).append(
                            measure(target, backends, args, lua.name, connections))
                for target in group:
                    if target.pids():
                        peaks[(target.name, connections)] = peak_rss_kib(target.pids())
    finally:
        for s in reversed(servers):
            s.close()
        os.unlink(lua.name)
        shutil.rmtree(tls_dir, ignore_errors=True)

    def med(name, c, key):
        values = [r[key] for r in results[(name, c)] if r[key] is not None]
        return statistics.median(values) if values else None

    rows = []
    for group, rows_of, baseline in ((targets, connection_rows, "nginx"), (tls_targets, tls_rows, "nginx https")):
        for c in rows_of:
            base = med(baseline, c, "rps")
            for t in group:
                cpu = med(t.name, c, "proxy_cpu")
                peak = peaks.get((t.name, c))
                rows.append([
                    t.name, c, f"{med(t.name, c, 'rps'):,.0f}", f"{med(t.name, c, 'rps') / base:.2f}x",
                    f"{med(t.name, c, 'p50'):.2f}", f"{med(t.name, c, 'p99'):.2f}", f"{med(t.name, c, 'p999'):.2f}",
                    "—" if cpu is None else f"{cpu:.2f}", f"{med(t.name, c, 'backend_cpu'):.2f}",
                    f"{med(t.name, c, 'wrk_cpu'):.2f}", "—" if peak is None else f"{peak / 1024:.1f}",
                    f"{med(t.name, c, 'opened'):,.0f}", sum(r["errors"] for r in results[(t.name, c)]),
                    f"{sum(r['build'] for r in results[(t.name, c)])}/{len(results[(t.name, c)])}",
                ])
    print(f"wrk -t{args.threads} -c<connections> -d{args.duration}s --latency, {BODY_BYTES}-byte static answers "
          f"from nginx on {args.backends} ports ({args.backend_workers} workers); median of {args.repeat} runs; "
          f"latencies in ms, CPU in seconds per 100,000 requests.")
    print()
    print(table(["target", "connections", "req/s", "vs nginx", "p50", "p99", "p99.9", "proxy CPU", "backends CPU",
                 "wrk CPU", "proxy peak RSS MiB", "backend conns opened", "errors", "runs during a build"], rows))
    print()
    checks = []
    for c in connection_rows:
        g, ng = {k: med("gantry", c, k) for k in ("rps", "p99", "proxy_cpu")}, \
            {k: med("nginx", c, k) for k in ("rps", "p99", "proxy_cpu")}
        hp = med("haproxy", c, "proxy_cpu")
        ratio = g["rps"] / ng["rps"]
        checks.append([
            c, f"{ratio:.2f}x {'✅' if ratio >= 1.2 else '❌'}",
            f"{g['p99']:.2f} vs {ng['p99']:.2f} ms {'✅' if g['p99'] <= ng['p99'] else '❌'}",
            f"{g['proxy_cpu']:.2f} vs {ng['proxy_cpu']:.2f} / {hp:.2f} "
            f"{'✅' if g['proxy_cpu'] < min(ng['proxy_cpu'], hp) else '❌'}",
        ])
    print(table(["connections", "Gantry req/s / nginx (≥ 1.2x)", "Gantry p99 vs nginx (≤)",
                 "Gantry CPU/100k vs nginx / HAProxy (below both)"], checks))
    print()
    tls_checks = []
    for c in tls_rows:
        g, ng = {k: med("gantry https", c, k) for k in ("rps", "p99", "proxy_cpu")}, \
            {k: med("nginx https", c, k) for k in ("rps", "p99", "proxy_cpu")}
        tls_checks.append([c, f"{g['rps'] / ng['rps']:.2f}x", f"{g['p99']:.2f} vs {ng['p99']:.2f} ms",
                           f"{g['proxy_cpu']:.2f} vs {ng['proxy_cpu']:.2f}"])
    if tls_checks:
        print(table(["connections (HTTPS)", "Gantry req/s / nginx", "Gantry p99 vs nginx",
                     "Gantry CPU/100k vs nginx"], tls_checks))
        print()
    built = any(r["build"] for runs in results.values() for r in runs)
    print(binary)
    print(f"Load generator, proxies and backends share the machine's {CORES} cores. Gantry's tokio runtime has one "
          f"worker thread per core ({CORES}; no knob yet); nginx worker_processes {args.proxy_workers}, HAProxy "
          f"nbthread {args.proxy_workers}.")
    print(f"{machine_note()} (at the start: {load_start:.2f}); "
          f"{'a build (rustc/cc/ld) was running during some runs' if built else 'no build was running'}.")


if __name__ == "__main__":
    main()
