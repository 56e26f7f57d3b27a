"""ACM certificates and HTTPS on the load balancers: certificates imported (made here with openssl) and requested
(signed by the server's local CA in `<data-dir>/acm/ca.pem`), served by HTTPS listeners with SNI among the default
and the added ones, the SSL policy's TLS versions, HTTP/2 by ALPN and by prior knowledge, an NLB TLS listener, and
the errors of both APIs, and HTTPS target groups (TLS from the load balancer to targets with self-signed
certificates).
"""

import http.server
import socket
import ssl
import subprocess
import threading

import botocore.exceptions
import pytest
import requests

from conftest import free_port
from helpers import unique, wait_for
from test_elbv2 import Backends, Resources, error_code, forward, states, wait_healthy


@pytest.fixture
def elb(boto_client):
    return boto_client("elbv2")


@pytest.fixture
def acm(boto_client):
    return boto_client("acm")


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


@pytest.fixture
def certs(acm):
    """Certificates a test made, deleted at its end (after `res` removed the listeners using them)."""
    made = []
    yield made
    for arn in made:
        try:
            acm.delete_certificate(CertificateArn=arn)
        except botocore.exceptions.ClientError:
            pass


def openssl_cert(tmp_path, name, key="rsa:2048", ec_curve=None):
    """(certificate PEM, key PEM) of a self-signed certificate for `name` made by openssl."""
    cert, pkey = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    curve = ["-pkeyopt", f"ec_paramgen_curve:{ec_curve}"] if ec_curve else []
    subprocess.run(["openssl", "req", "-x509", "-newkey", key, *curve, "-nodes", "-days", "30",
                    "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}",
                    "-keyout", str(pkey), "-out", str(cert)], check=True, capture_output=True)
    return cert.read_bytes(), pkey.read_bytes()


def curl_https(name, ip, port, cacert, *args, path="/hostname"):
    """(status, body, http version) of curl to https://name:port/ with name resolved to ip."""
    out = subprocess.run(["curl", "-s", "--max-time", "10", "--cacert", str(cacert),
                          "--resolve", f"{name}:{port}:{ip}", "-w", "\n%{http_code} %{http_version}", *args,
                          f"https://{name}:{port}{path}"], capture_output=True, text=True, timeout=20)
    body, _, tail = out.stdout.rpartition("\n")
    code, _, version = tail.partition(" ")
    return int(code or 0), body.removesuffix("\n"), version


def served_name(ip, port, sni):
    """The common name of the certificate the listener serves for `sni` (not verified)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((ip, port), timeout=10) as s, ctx.wrap_socket(s, server_hostname=sni) as t:
        der = t.getpeercert(binary_form=True)
    text = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-subject"], input=der,
                          capture_output=True, check=True).stdout.decode()
    return text.strip().split("CN", 1)[1].lstrip(" =")


def own_address(elb, lb):
    """The address the load balancer's listeners are bound to, as its zones list it."""
    [d] = elb.describe_load_balancers(LoadBalancerArns=[lb["LoadBalancerArn"]])["LoadBalancers"]
    for z in d["AvailabilityZones"]:
        for a in z.get("LoadBalancerAddresses", []):
            return a["IpAddress"]
    raise AssertionError(f"no address in {d['AvailabilityZones']}")


# --- ACM --------------------------------------------------------------------------------------------------------


def test_import_request_describe_list_tag_and_delete(acm, certs, tmp_path, gantry):
    cert, key = openssl_cert(tmp_path, "imported.example.test")
    arn = acm.import_certificate(Certificate=cert, PrivateKey=key,
                                 Tags=[{"Key": "env", "Value": "test"}])["CertificateArn"]
    certs.append(arn)
    assert arn.startswith("arn:aws:acm:")
    d = acm.describe_certificate(CertificateArn=arn)["Certificate"]
    assert d["DomainName"] == "imported.example.test"
    assert d["SubjectAlternativeNames"] == ["imported.example.test"]
    assert (d["Type"], d["Status"], d["KeyAlgorithm"]) == ("IMPORTED", "ISSUED", "RSA_2048")
    assert d["InUseBy"] == [] and "ImportedAt" in d and d["NotAfter"] > d["NotBefore"]
    assert acm.list_tags_for_certificate(CertificateArn=arn)["Tags"] == [{"Key": "env", "Value": "test"}]

    requested = acm.request_certificate(DomainName="app.example.test", ValidationMethod="DNS",
                                        SubjectAlternativeNames=["*.app.example.test"])["CertificateArn"]
    certs.append(requested)
    r = acm.describe_certificate(CertificateArn=requested)["Certificate"]
    assert (r["Type"], r["Status"], r["KeyAlgorithm"]) == ("AMAZON_ISSUED", "ISSUED", "RSA_2048")
    assert r["SubjectAlternativeNames"] == ["app.example.test", "*.app.example.test"]
    assert {o["ValidationStatus"] for o in r["DomainValidationOptions"]} == {"SUCCESS"}
    # The certificate and its chain verify against the local CA.
    got = acm.get_certificate(CertificateArn=requested)
    pem = tmp_path / "requested.pem"
    pem.write_text(got["Certificate"])
    ca = gantry.data_dir / "acm" / "ca.pem"
    assert got["CertificateChain"].strip() == ca.read_text().strip()
    subprocess.run(["openssl", "verify", "-CAfile", str(ca), str(pem)], check=True, capture_output=True)
    # The same idempotency token answers the same certificate.
    t1 = acm.request_certificate(DomainName="ec.example.test", KeyAlgorithm="EC_prime256v1",
                                 IdempotencyToken="tok1")["CertificateArn"]
    certs.append(t1)
    assert acm.request_certificate(DomainName="ec.example.test", KeyAlgorithm="EC_prime256v1",
                                   IdempotencyToken="tok1")["CertificateArn"] == t1

    # As ACM: without a key type filter only RSA_2048 certificates are listed.
    listed = {c["CertificateArn"] for c in acm.list_certificates()["CertificateSummaryList"]}
    assert {arn, requested} <= listed and t1 not in listed
    ec = acm.list_certificates(Includes={"keyTypes": ["EC_prime256v1"]})["CertificateSummaryList"]
    assert [c["CertificateArn"] for c in ec] == [t1]
    page = acm.list_certificates(MaxItems=1)
    assert len(page["CertificateSummaryList"]) == 1 and "NextToken" in page

    acm.add_tags_to_certificate(CertificateArn=arn, Tags=[{"Key": "team", "Value": "a"}])
    acm.remove_tags_from_certificate(CertificateArn=arn, Tags=[{"Key": "env"}])
    assert acm.list_tags_for_certificate(CertificateArn=arn)["Tags"] == [{"Key": "team", "Value": "a"}]

    # Re-import keeps the ARN.
    cert2, key2 = openssl_cert(tmp_path, "imported2.example.test")
    assert acm.import_certificate(CertificateArn=arn, Certificate=cert2, PrivateKey=key2)["CertificateArn"] == arn
    assert acm.describe_certificate(CertificateArn=arn)["Certificate"]["DomainName"] == "imported2.example.test"

    acm.delete_certificate(CertificateArn=t1)
    assert error_code(acm.describe_certificate, CertificateArn=t1) == "ResourceNotFoundException"


def test_acm_bad_input_gets_aws_errors(acm, tmp_path):
    cert, key = openssl_cert(tmp_path, "a.example.test")
    _, other_key = openssl_cert(tmp_path, "b.example.test")
    assert error_code(acm.import_certificate, Certificate=b"not pem", PrivateKey=key) == "ValidationException"
    assert error_code(acm.import_certificate, Certificate=cert, PrivateKey=other_key) == "ValidationException"
    assert error_code(acm.import_certificate, Certificate=cert + cert, PrivateKey=key) == "ValidationException"
    assert error_code(acm.describe_certificate, CertificateArn="arn:aws:s3:::a-bucket-name-here") == "InvalidArnException"
    missing = "arn:aws:acm:us-east-1:000000000000:certificate/00000000-0000-4000-8000-000000000000"
    assert error_code(acm.describe_certificate, CertificateArn=missing) == "ResourceNotFoundException"
    assert error_code(acm.delete_certificate, CertificateArn=missing) == "ResourceNotFoundException"
    assert error_code(acm.request_certificate, DomainName="-bad-.example") == "ValidationException"
    assert error_code(acm.request_certificate, DomainName="x.example.test",
                      KeyAlgorithm="EC_secp521r1") == "ValidationException"
    assert error_code(acm.request_certificate, DomainName="x.example.test",
                      Tags=[{"Key": "aws:reserved", "Value": "x"}]) == "InvalidTagException"
    assert error_code(acm.list_certificates, MaxItems=5000) in ("InvalidArgsException", "ValidationException")


# --- HTTPS listeners --------------------------------------------------------------------------------------------


def https_setup(elb, acm, res, certs, backends, tmp_path, **listener):
    """An ALB with an HTTPS listener (an imported default certificate) forwarding to one healthy backend:
    (load balancer, listener, its address, port, the imported certificate's PEM path, backend name)."""
    name, port_b = backends.start()
    tg = res.target_group()
    elb.register_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": "127.0.0.1", "Port": port_b}])
    cert, key = openssl_cert(tmp_path, "imported.example.test")
    imported = acm.import_certificate(Certificate=cert, PrivateKey=key)["CertificateArn"]
    certs.append(imported)
    pem = tmp_path / "imported.pem"
    pem.write_bytes(cert)
    lb = res.load_balancer()
    port = free_port()
    args = dict(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTPS", Port=port,
                Certificates=[{"CertificateArn": imported}], DefaultActions=forward(tg["TargetGroupArn"]))
    args.update(listener)
    l = elb.create_listener(**args)["Listeners"][0]
    wait_healthy(elb, tg["TargetGroupArn"], 1)
    return lb, l, own_address(elb, lb), port, pem, name


def test_https_listener_serves_imported_and_requested_certificates_by_sni(elb, acm, res, certs, backends,
                                                                          tmp_path, gantry):
    lb, l, ip, port, pem, backend = https_setup(elb, acm, res, certs, backends, tmp_path)
    assert l["Protocol"] == "HTTPS" and l["SslPolicy"] == "ELBSecurityPolicy-2016-08"
    assert l["Certificates"] == [{"CertificateArn": certs[0]}]
    wait_for(lambda: curl_https("imported.example.test", ip, port, pem)[0] == 200, 10, "the HTTPS listener")
    code, body, _ = curl_https("imported.example.test", ip, port, pem)
    assert (code, body) == (200, backend)
    code, headers, _ = curl_https("imported.example.test", ip, port, pem, path="/headers")
    assert "x-forwarded-proto: https" in headers.lower() and f"x-forwarded-port: {port}" in headers.lower()

    requested = acm.request_certificate(DomainName="secure.example.test")["CertificateArn"]
    certs.append(requested)
    added = elb.add_listener_certificates(ListenerArn=l["ListenerArn"],
                                          Certificates=[{"CertificateArn": requested}])["Certificates"]
    assert added == [{"CertificateArn": requested, "IsDefault": False}]
    listed = elb.describe_listener_certificates(ListenerArn=l["ListenerArn"])["Certificates"]
    assert listed == [{"CertificateArn": certs[0], "IsDefault": True},
                      {"CertificateArn": requested, "IsDefault": False}]
    ca = gantry.data_dir / "acm" / "ca.pem"
    wait_for(lambda: served_name(ip, port, "secure.example.test") == "secure.example.test", 10, "SNI")
    assert curl_https("secure.example.test", ip, port, ca)[:2] == (200, backend)
    # A name no certificate has gets the default one.
    assert served_name(ip, port, "other.example.test") == "imported.example.test"
    assert acm.describe_certificate(CertificateArn=requested)["Certificate"]["InUseBy"] == [lb["LoadBalancerArn"]]

    # Certificates in use are not deleted; the default one is not removed from its listener.
    assert error_code(acm.delete_certificate, CertificateArn=requested) == "ResourceInUseException"
    assert error_code(elb.remove_listener_certificates, ListenerArn=l["ListenerArn"],
                      Certificates=[{"CertificateArn": certs[0]}]) == "OperationNotPermitted"
    elb.remove_listener_certificates(ListenerArn=l["ListenerArn"], Certificates=[{"CertificateArn": requested}])
    wait_for(lambda: served_name(ip, port, "secure.example.test") == "imported.example.test", 10, "removed")
    acm.delete_certificate(CertificateArn=requested)


def test_ssl_policy_versions_and_http2_by_alpn(elb, acm, res, certs, backends, tmp_path):
    lb, l, ip, port, pem, backend = https_setup(elb, acm, res, certs, backends, tmp_path,
                                                SslPolicy="ELBSecurityPolicy-TLS13-1-3-2021-06")
    name = "imported.example.test"
    wait_for(lambda: curl_https(name, ip, port, pem)[0] == 200, 10, "the HTTPS listener")
    # TLS 1.3 only: a client that stops at 1.2 cannot connect.
    assert curl_https(name, ip, port, pem, "--tls-max", "1.2")[0] == 0
    assert curl_https(name, ip, port, pem, "--http2")[2] == "2"
    assert curl_https(name, ip, port, pem, "--http1.1")[2] == "1.1"
    # Without HTTP/2 the listener offers HTTP/1.1 only.
    elb.modify_load_balancer_attributes(LoadBalancerArn=lb["LoadBalancerArn"],
                                        Attributes=[{"Key": "routing.http2.enabled", "Value": "false"}])
    wait_for(lambda: curl_https(name, ip, port, pem, "--http2")[2] == "1.1", 10, "HTTP/2 off")
    # A policy change applies to new connections.
    elb.modify_listener(ListenerArn=l["ListenerArn"], SslPolicy="ELBSecurityPolicy-TLS13-1-2-2021-06")
    wait_for(lambda: curl_https(name, ip, port, pem, "--tls-max", "1.2")[0] == 200, 10, "TLS 1.2 allowed")


def test_h2c_prior_knowledge_on_an_http_listener(elb, res, backends):
    name, port_b = backends.start()
    tg = res.target_group()
    elb.register_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": "127.0.0.1", "Port": port_b}])
    lb = res.load_balancer()
    port = free_port()
    elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port,
                        DefaultActions=forward(tg["TargetGroupArn"]))
    wait_healthy(elb, tg["TargetGroupArn"], 1)
    ip = own_address(elb, lb)
    out = subprocess.run(["curl", "-s", "--http2-prior-knowledge", "-w", "\n%{http_version}",
                          f"http://{ip}:{port}/hostname"], capture_output=True, text=True, timeout=20)
    body, _, version = out.stdout.rpartition("\n")
    assert (body.strip(), version) == (name, "2")


def test_nlb_tls_listener_decrypts_to_tcp_targets(elb, acm, res, certs, backends, tmp_path):
    name, port_b = backends.start()
    tg = elb.create_target_group(Name=unique("tg"), Protocol="TCP", Port=80, TargetType="ip",
                                 HealthCheckProtocol="TCP", HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2,
                                 HealthyThresholdCount=2)["TargetGroups"][0]
    res.tgs.append(tg["TargetGroupArn"])
    elb.register_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": "127.0.0.1", "Port": port_b}])
    cert, key = openssl_cert(tmp_path, "nlb.example.test", key="ec", ec_curve="prime256v1")
    arn = acm.import_certificate(Certificate=cert, PrivateKey=key)["CertificateArn"]
    certs.append(arn)
    pem = tmp_path / "nlb.pem"
    pem.write_bytes(cert)
    lb = res.load_balancer(Type="network")
    port = free_port()
    l = elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="TLS", Port=port,
                            Certificates=[{"CertificateArn": arn}], AlpnPolicy=["HTTP1Only"],
                            DefaultActions=forward(tg["TargetGroupArn"]))["Listeners"][0]
    assert l["Protocol"] == "TLS" and l["AlpnPolicy"] == ["HTTP1Only"]
    wait_healthy(elb, tg["TargetGroupArn"], 1)
    ip = own_address(elb, lb)
    wait_for(lambda: curl_https("nlb.example.test", ip, port, pem)[:2] == (200, name), 10, "the TLS listener")


class TlsBackend:
    """An HTTPS server on loopback with a self-signed certificate (as a task serving TLS has): `GET /hostname`
    answers its name, `GET /headers` the request's headers; it counts the requests it was sent in TLS."""

    def __init__(self, tmp_path, name):
        cert, key = openssl_cert(tmp_path, name)
        (tmp_path / "backend.crt").write_bytes(cert)
        (tmp_path / "backend.key").write_bytes(key)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tmp_path / "backend.crt", tmp_path / "backend.key")
        backend = self
        self.requests = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                backend.requests += 1
                body = {"/hostname": name, "/headers": str(self.headers)}.get(self.path, "ok").encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_https_target_group_speaks_tls_to_its_targets(elb, res, backends, tmp_path):
    tls = TlsBackend(tmp_path, "tls-backend")
    try:
        tg = res.target_group(Protocol="HTTPS", Port=443)
        assert tg["Protocol"] == "HTTPS" and tg["HealthCheckProtocol"] == "HTTPS"
        elb.register_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": "127.0.0.1", "Port": tls.port}])
        # A target that serves HTTP in clear fails the HTTPS checks of its target group.
        name, port_b = backends.start()
        clear = res.target_group(Protocol="HTTPS", Port=443)
        elb.register_targets(TargetGroupArn=clear["TargetGroupArn"], Targets=[{"Id": "127.0.0.1", "Port": port_b}])
        lb = res.load_balancer()
        port = free_port()
        l = elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port,
                                DefaultActions=forward(tg["TargetGroupArn"]))["Listeners"][0]
        elb.create_rule(ListenerArn=l["ListenerArn"], Priority=1, Actions=forward(clear["TargetGroupArn"]),
                        Conditions=[{"Field": "path-pattern", "Values": ["/clear/*"]}])
        wait_healthy(elb, tg["TargetGroupArn"], 1)
        ip = own_address(elb, lb)
        assert requests.get(f"http://{ip}:{port}/hostname", timeout=10).text == "tls-backend"
        headers = requests.get(f"http://{ip}:{port}/headers", timeout=10).text.lower()
        assert "x-forwarded-proto: http" in headers and "x-forwarded-for: 127.0.0.1" in headers
        assert tls.requests >= 2
        wait_for(lambda: states(elb, clear["TargetGroupArn"]) ==
                 {("127.0.0.1", port_b): ("unhealthy", "Target.FailedHealthChecks")}, 30, "the clear target unhealthy")
        # Fail-open sends the request there all the same: no TLS, no answer, ALB's 502.
        assert requests.get(f"http://{ip}:{port}/clear/x", timeout=10).status_code == 502
    finally:
        tls.close()


def test_https_listener_errors(elb, acm, res, certs, tmp_path):
    lb = res.load_balancer()
    tg = res.target_group()
    base = dict(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTPS", Port=free_port(),
                DefaultActions=forward(tg["TargetGroupArn"]))
    assert error_code(elb.create_listener, **base) == "ValidationError"
    missing = "arn:aws:acm:us-east-1:000000000000:certificate/00000000-0000-4000-8000-000000000000"
    assert error_code(elb.create_listener, Certificates=[{"CertificateArn": missing}], **base) == \
        "CertificateNotFound"
    cert, key = openssl_cert(tmp_path, "err.example.test")
    arn = acm.import_certificate(Certificate=cert, PrivateKey=key)["CertificateArn"]
    certs.append(arn)
    good = dict(base, Certificates=[{"CertificateArn": arn}])
    assert error_code(elb.create_listener, SslPolicy="NoSuchPolicy", **good) == "SSLPolicyNotFound"
    assert error_code(elb.create_listener, AlpnPolicy=["HTTP2Only"], **good) == "InvalidConfigurationRequest"
    http = dict(base, Protocol="HTTP", Certificates=[{"CertificateArn": arn}])
    assert error_code(elb.create_listener, **http) == "InvalidConfigurationRequest"
    l = elb.create_listener(**good)["Listeners"][0]
    assert error_code(elb.add_listener_certificates, ListenerArn=l["ListenerArn"],
                      Certificates=[{"CertificateArn": missing}]) == "CertificateNotFound"
    # The listener turned to HTTP drops its certificates: the certificate is free again.
    elb.modify_listener(ListenerArn=l["ListenerArn"], Protocol="HTTP")
    [d] = elb.describe_listeners(ListenerArns=[l["ListenerArn"]])["Listeners"]
    assert d["Protocol"] == "HTTP" and "Certificates" not in d and "SslPolicy" not in d
    assert acm.describe_certificate(CertificateArn=arn)["Certificate"]["InUseBy"] == []
