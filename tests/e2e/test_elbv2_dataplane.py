"""The ELBv2 data plane beyond plain HTTP requests: network load balancers' TCP listeners (reached at the address
DescribeLoadBalancers lists, connections proxied whole, TCP and HTTP health checks, draining that waits for open
connections), WebSocket upgrades through an application load balancer, and cookie stickiness (AWSALB, AWSALBTG).
"""

import base64
import email.utils
import hashlib
import os
import socket
import struct
import subprocess
import threading
import time

import pytest

from conftest import free_port
from helpers import unique, wait_for
from test_elbv2 import Backends, Resources, curl, error_code, forward, states, wait_healthy


@pytest.fixture
def elb(boto_client):
    return boto_client("elbv2")


@pytest.fixture
def backends():
    b = Backends()
    yield b
    b.cleanup()


@pytest.fixture
def res(elb):
    r = Resources(elb)
    yield r
    r.cleanup()


def tcp_target_group(elb, res, **kw):
    args = dict(Name=unique("tg"), Protocol="TCP", Port=80, TargetType="ip", HealthCheckProtocol="TCP",
                HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2,
                HealthyThresholdCount=2, UnhealthyThresholdCount=2)
    args.update(kw)
    tg = elb.create_target_group(**args)["TargetGroups"][0]
    res.tgs.append(tg["TargetGroupArn"])
    return tg


def nlb_address(elb, lb):
    """The address DescribeLoadBalancers lists for every zone of the load balancer."""
    [d] = elb.describe_load_balancers(LoadBalancerArns=[lb["LoadBalancerArn"]])["LoadBalancers"]
    ips = {a["IpAddress"] for z in d["AvailabilityZones"] for a in z["LoadBalancerAddresses"]}
    assert len(ips) == 1, d["AvailabilityZones"]
    return ips.pop()


def hostname_over(sock, host="nlb"):
    """GET /hostname on an open connection (testapp answers one request a connection, then closes); the body."""
    sock.sendall(f"GET /hostname HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    head, body = read_head(sock)
    assert head[":status"] == "200", head
    while chunk := sock.recv(4096):
        body += chunk
    return body.decode().strip()


def read_head(sock):
    """({lower-case header: value} with ":status", the bytes read past the head) of an HTTP/1.1 answer."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, f"connection closed before the end of the head: {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {":status": lines[0].split()[1]}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return headers, rest


# --- network load balancers ---------------------------------------------------------------------------------------


def test_nlb_tcp_listener_proxies_connections_to_targets_in_service(elb, res, backends):
    (a, pa), (b, pb) = backends.start(), backends.start()
    tg = tcp_target_group(elb, res)
    elb.register_targets(TargetGroupArn=tg["TargetGroupArn"],
                         Targets=[{"Id": "127.0.0.1", "Port": pa}, {"Id": "127.0.0.1", "Port": pb}])
    lb = res.load_balancer(Type="network")
    assert lb["Type"] == "network"
    created_ips = {x["IpAddress"] for z in lb["AvailabilityZones"] for x in z["LoadBalancerAddresses"]}
    ip = nlb_address(elb, lb)
    assert created_ips == {ip} and ip.startswith("127.")
    port = free_port()
    listener = elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="TCP", Port=port,
                                   DefaultActions=forward(tg["TargetGroupArn"]))["Listeners"][0]
    assert listener["Protocol"] == "TCP"
    wait_healthy(elb, tg["TargetGroupArn"], 2)

    url = f"http://{ip}:{port}"
    # One target per connection, in turn.
    assert {curl(url + "/hostname")[1] for _ in range(6)} == {a, b}
    # The bytes go through untouched: no ALB headers, and the Host is the client's.
    code, seen = curl(url + "/headers")
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in seen.splitlines())}
    assert code == 200 and "x-forwarded-for" not in headers and "x-amzn-trace-id" not in headers, headers
    assert headers["host"] == f"{ip}:{port}"
    # A request sent in pieces over a connection arrives whole.
    with socket.create_connection((ip, port), timeout=10) as s:
        s.sendall(b"GET /sleep/10 HTT")
        time.sleep(0.5)
        s.sendall(b"P/1.1\r\nHost: nlb\r\n\r\n")
        head, body = read_head(s)
        while chunk := s.recv(4096):
            body += chunk
        assert (head[":status"], body) == ("200", b"slept 10 ms\n")
    # Not behind the DNS names' shared HTTP socket: a TCP listener has no Host header to be picked by.
    assert curl(f"http://{lb['DNSName']}:{port}/hostname", timeout=3)[0] != 200

    # A stopped target fails its TCP checks and gets no more connections.
    backends.stop(b)
    wait_for(lambda: states(elb, tg["TargetGroupArn"])[("127.0.0.1", pb)] == ("unhealthy", "Target.FailedHealthChecks"),
             30, "b to fail its TCP health checks")
    assert {curl(url + "/hostname")[1] for _ in range(6)} == {a}


def test_nlb_http_health_checks_on_a_tcp_target_group(elb, res, backends):
    (a, pa) = backends.start()
    tg = tcp_target_group(elb, res, HealthCheckProtocol="HTTP", HealthCheckPath="/health",
                          Matcher={"HttpCode": "200-399"})
    assert tg["HealthCheckProtocol"] == "HTTP" and tg["HealthCheckPath"] == "/health"
    elb.register_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": "127.0.0.1", "Port": pa}])
    lb = res.load_balancer(Type="network")
    port = free_port()
    elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="TCP", Port=port,
                        DefaultActions=forward(tg["TargetGroupArn"]))
    wait_healthy(elb, tg["TargetGroupArn"], 1)
    url = f"http://{nlb_address(elb, lb)}:{port}"
    assert curl(url + "/hostname") == (200, a)
    # The port still accepts connections, but the HTTP check sees 503.
    curl(f"http://127.0.0.1:{pa}/unhealthy")
    wait_for(lambda: states(elb, tg["TargetGroupArn"])[("127.0.0.1", pa)] == ("unhealthy", "Target.ResponseCodeMismatch"),
             30, "the HTTP health check to fail")
    # Its only target unhealthy, the group fails open.
    assert curl(url + "/hostname") == (200, a)


def test_nlb_draining_waits_for_an_open_connection(elb, res, backends):
    (a, pa) = backends.start()
    tg = tcp_target_group(elb, res)
    elb.modify_target_group_attributes(TargetGroupArn=tg["TargetGroupArn"], Attributes=[
        {"Key": "deregistration_delay.timeout_seconds", "Value": "60"}])
    elb.register_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": "127.0.0.1", "Port": pa}])
    lb = res.load_balancer(Type="network")
    port = free_port()
    elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="TCP", Port=port,
                        DefaultActions=forward(tg["TargetGroupArn"]))
    wait_healthy(elb, tg["TargetGroupArn"], 1)
    ip = nlb_address(elb, lb)
    with socket.create_connection((ip, port), timeout=10) as s:
        time.sleep(0.5)
        elb.deregister_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": "127.0.0.1", "Port": pa}])
        # A target without connections would leave at the controller's next pass; this one has one open.
        time.sleep(3)
        assert states(elb, tg["TargetGroupArn"])[("127.0.0.1", pa)] == ("draining", "Target.DeregistrationInProgress")
        # New connections find no target; the open one still carries its request.
        assert curl(f"http://{ip}:{port}/hostname", timeout=3)[0] == 0
        assert hostname_over(s) == a
    wait_for(lambda: ("127.0.0.1", pa) not in states(elb, tg["TargetGroupArn"]), 10,
             "the target to leave once its connection closed")


# --- WebSockets ---------------------------------------------------------------------------------------------------

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def ws_accept(key):
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def read_frame(sock, pending=b""):
    """(opcode, payload, bytes left over) of one WebSocket frame, unmasking it if masked."""
    buf = pending

    def take(n):
        nonlocal buf
        if len(buf) < n:
            buf += recv_exact(sock, n - len(buf))
        out, buf = buf[:n], buf[n:]
        return out

    b0, b1 = take(2)
    length = b1 & 0x7F
    if length == 126:
        length = int.from_bytes(take(2), "big")
    elif length == 127:
        length = int.from_bytes(take(8), "big")
    mask = take(4) if b1 & 0x80 else None
    payload = take(length)
    if mask:
        payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
    return b0 & 0x0F, payload, buf


def frame(opcode, payload, masked):
    head = bytes([0x80 | opcode])
    n = len(payload)
    length = bytes([n]) if n < 126 else bytes([126]) + n.to_bytes(2, "big")
    if not masked:
        return head + length + payload
    mask = os.urandom(4)
    length = bytes([length[0] | 0x80]) + length[1:]
    return head + length + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(payload))


class EchoServer:
    """A WebSocket echo server on the host (RFC 6455 handshake, text frames echoed unmasked) that answers any other
    request, health checks included, with 200 `ok`. Remembers the handshake requests' headers."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.handshakes = []
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn):
        with conn:
            conn.settimeout(30)
            try:
                headers, rest = read_head(conn)
                if headers.get("upgrade", "").lower() != "websocket":
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                    return
                self.handshakes.append(headers)
                conn.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                              f"Sec-WebSocket-Accept: {ws_accept(headers['sec-websocket-key'])}\r\n\r\n").encode())
                while True:
                    opcode, payload, rest = read_frame(conn, rest)
                    if opcode == 0x8:
                        conn.sendall(frame(0x8, payload, masked=False))
                        return
                    conn.sendall(frame(opcode, payload, masked=False))
            except (OSError, ConnectionError, AssertionError):
                return

    def close(self):
        self.sock.close()


@pytest.fixture
def echo():
    server = EchoServer()
    yield server
    server.close()


def test_websocket_upgrade_through_an_alb(elb, res, echo):
    tg = res.target_group()
    elb.register_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": "127.0.0.1", "Port": echo.port}])
    lb = res.load_balancer()
    port = free_port()
    elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port,
                        DefaultActions=forward(tg["TargetGroupArn"]))
    wait_healthy(elb, tg["TargetGroupArn"], 1)
    # Plain requests still go through as requests.
    assert curl(f"http://{lb['DNSName']}:{port}/") == (200, "ok")

    key = base64.b64encode(os.urandom(16)).decode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall((f"GET /chat HTTP/1.1\r\nHost: {lb['DNSName']}:{port}\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head, rest = read_head(s)
        assert head[":status"] == "101", head
        assert head["upgrade"].lower() == "websocket" and head["connection"].lower() == "upgrade", head
        assert head["sec-websocket-accept"] == ws_accept(key)
        for text in ["hello through the load balancer", "x" * 300]:
            s.sendall(frame(0x1, text.encode(), masked=True))
            opcode, payload, rest = read_frame(s, rest)
            assert (opcode, payload.decode()) == (0x1, text)
        time.sleep(1.5)
        s.sendall(frame(0x1, b"still open", masked=True))
        assert read_frame(s, rest)[:2] == (0x1, b"still open")
        s.sendall(frame(0x8, b"\x03\xe8", masked=True))
        assert read_frame(s)[0] == 0x8
    # The target saw the upgrade request with the load balancer's headers added.
    [seen] = echo.handshakes
    assert seen["x-forwarded-for"] == "127.0.0.1" and seen["x-forwarded-proto"] == "http", seen
    assert seen["sec-websocket-key"] == key and seen["upgrade"].lower() == "websocket"

    # A client that goes away mid-stream ends only its own connection.
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall((f"GET /chat HTTP/1.1\r\nHost: {lb['DNSName']}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    assert read_head(s)[0][":status"] == "101"
    s.sendall(frame(0x1, b"half", masked=True)[:5])
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # closed with a reset
    s.close()
    assert curl(f"http://{lb['DNSName']}:{port}/") == (200, "ok")


# --- stickiness ---------------------------------------------------------------------------------------------------


def cookies_of(url, *args):
    """{name: (value, attributes)} of the Set-Cookie headers of `curl url`."""
    out = subprocess.run(["curl", "-s", "-D", "-", "-o", "/dev/null", "--max-time", "10", *args, url],
                         capture_output=True, text=True, timeout=15).stdout
    found = {}
    for line in out.splitlines():
        if line.lower().startswith("set-cookie:"):
            pair, _, attrs = line.split(":", 1)[1].strip().partition(";")
            name, _, value = pair.partition("=")
            found[name] = (value, attrs.strip())
    return found


def test_lb_cookie_stickiness_keeps_a_client_on_its_target(elb, res, backends, tmp_path):
    (a, pa), (b, pb) = backends.start(), backends.start()
    tg = res.target_group()
    elb.modify_target_group_attributes(TargetGroupArn=tg["TargetGroupArn"], Attributes=[
        {"Key": "stickiness.enabled", "Value": "true"}, {"Key": "stickiness.type", "Value": "lb_cookie"},
        {"Key": "stickiness.lb_cookie.duration_seconds", "Value": "120"}])
    elb.register_targets(TargetGroupArn=tg["TargetGroupArn"],
                         Targets=[{"Id": "127.0.0.1", "Port": pa}, {"Id": "127.0.0.1", "Port": pb}])
    lb = res.load_balancer()
    port = free_port()
    elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port,
                        DefaultActions=forward(tg["TargetGroupArn"]))
    wait_healthy(elb, tg["TargetGroupArn"], 2)
    url = f"http://{lb['DNSName']}:{port}/hostname"

    # ALB's cookies: AWSALB and its CORS twin, the same opaque value, Expires (not Max-Age) the duration ahead.
    cookies = cookies_of(url)
    value, attrs = cookies["AWSALB"]
    assert cookies["AWSALBCORS"] == (value, attrs + "; SameSite=None"), cookies
    assert attrs.startswith("Expires=") and attrs.endswith("; Path=/") and "Max-Age" not in attrs, attrs
    expires = email.utils.parsedate_to_datetime(attrs.split(";")[0].removeprefix("Expires=")).timestamp()
    assert abs(expires - (time.time() + 120)) < 10
    # Opaque: the target's address is not in it, in clear or in base64.
    assert bytes([127, 0, 0, 1]) not in base64.b64decode(value)
    assert "127.0.0.1" not in value and str(pa) not in value and str(pb) not in value

    jar = str(tmp_path / "jar")
    with_jar = ["-c", jar, "-b", jar]
    seen = {curl(url, *with_jar)[1] for _ in range(20)}
    assert len(seen) == 1, seen
    [stuck] = seen
    assert {curl(url)[1] for _ in range(20)} == {a, b}
    # A forged or foreign cookie is just ignored.
    assert curl(url, "-b", "AWSALB=bm90LW91cnM=")[0] == 200

    # Its target out of service, the client moves to the other one and stays there.
    stuck_port = pa if stuck == a else pb
    other = b if stuck == a else a
    curl(f"http://127.0.0.1:{stuck_port}/unhealthy")
    wait_for(lambda: states(elb, tg["TargetGroupArn"])[("127.0.0.1", stuck_port)][0] == "unhealthy", 30,
             "the sticky target to be unhealthy")
    assert {curl(url, *with_jar)[1] for _ in range(10)} == {other}
    curl(f"http://127.0.0.1:{stuck_port}/healthy")
    wait_healthy(elb, tg["TargetGroupArn"], 2)
    assert {curl(url, *with_jar)[1] for _ in range(10)} == {other}


def test_target_group_stickiness_of_a_weighted_forward(elb, res, backends, tmp_path):
    (a, pa), (b, pb) = backends.start(), backends.start()
    tg_a, tg_b = res.target_group(), res.target_group()
    elb.register_targets(TargetGroupArn=tg_a["TargetGroupArn"], Targets=[{"Id": "127.0.0.1", "Port": pa}])
    elb.register_targets(TargetGroupArn=tg_b["TargetGroupArn"], Targets=[{"Id": "127.0.0.1", "Port": pb}])
    lb = res.load_balancer()
    port = free_port()
    elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port, DefaultActions=[{
        "Type": "forward", "ForwardConfig": {
            "TargetGroups": [{"TargetGroupArn": tg_a["TargetGroupArn"], "Weight": 50},
                             {"TargetGroupArn": tg_b["TargetGroupArn"], "Weight": 50}],
            "TargetGroupStickinessConfig": {"Enabled": True, "DurationSeconds": 300}}}])
    wait_healthy(elb, tg_a["TargetGroupArn"], 1)
    wait_healthy(elb, tg_b["TargetGroupArn"], 1)
    url = f"http://{lb['DNSName']}:{port}/hostname"
    cookies = cookies_of(url)
    assert set(cookies) == {"AWSALBTG", "AWSALBTGCORS"}, cookies
    assert cookies["AWSALBTGCORS"][1].endswith("SameSite=None")
    jar = str(tmp_path / "jar")
    assert len({curl(url, "-c", jar, "-b", jar)[1] for _ in range(20)}) == 1
    assert {curl(url)[1] for _ in range(40)} == {a, b}


# --- slow start ---------------------------------------------------------------------------------------------------


def test_slow_start_gives_a_newly_healthy_target_a_growing_share(elb, res, backends):
    (a, pa), (b, pb) = backends.start(), backends.start()
    tg = res.target_group()
    arn = tg["TargetGroupArn"]
    assert error_code(elb.modify_target_group_attributes, TargetGroupArn=arn,
                         Attributes=[{"Key": "slow_start.duration_seconds", "Value": "10"}]) == \
        "InvalidConfigurationRequest"
    elb.modify_target_group_attributes(TargetGroupArn=arn,
                                       Attributes=[{"Key": "slow_start.duration_seconds", "Value": "60"}])
    elb.register_targets(TargetGroupArn=arn, Targets=[{"Id": "127.0.0.1", "Port": pa}])
    lb = res.load_balancer()
    port = free_port()
    elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port,
                        DefaultActions=forward(arn))
    # The first target is all there is: not slowed.
    wait_healthy(elb, arn, 1)
    url = f"http://{lb['DNSName']}:{port}/hostname"
    wait_for(lambda: curl(url) == (200, a), 10, "the first target")
    elb.register_targets(TargetGroupArn=arn, Targets=[{"Id": "127.0.0.1", "Port": pb}])
    wait_healthy(elb, arn, 2)
    # Within its first seconds of 60 the new target takes a small share of its round-robin turns; without slow
    # start it would answer half the requests.
    answers = [curl(url)[1] for _ in range(200)]
    assert set(answers) <= {a, b}
    assert answers.count(b) < 50, answers.count(b)

