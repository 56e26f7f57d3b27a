#!/usr/bin/env python3
"""Registry push and pull with skopeo: Gantry's registry side by side with CNCF distribution (Debian's
`docker-registry`), in one run on the same machine, plus the machine's raw limits.

Image sets, generated once as OCI layouts (random, incompressible layers, gzip-framed so that skopeo sends them as
they are instead of compressing them on the way):
  - big:   one image of --big-mib MiB (default 1024) in 10 layers;
  - small: --small images (default 200) of 1-5 layers of 16 KiB - 1 MiB each.
For each registry (fresh data dir on disk, loopback): push big, push small (--jobs skopeo processes at a time,
default 4), pull big, pull small (into fresh OCI layouts). The client's side (the layouts pushed from and pulled
into) is kept in memory (/dev/shm, or --client-dir), so that the registries' own writes are the only disk traffic.
The whole round is repeated --repeat times (default 3) with fresh servers, and the median of each phase reported.
Reported: MB/s of layer bytes, images/s, and the server's peak RSS (VmHWM). Gantry runs as a user would have it:
repositories created with ECR CreateRepository, skopeo logged in with the token from GetAuthorizationToken.
Distribution runs with its filesystem driver and in-memory blob descriptor cache, no auth.
Raw limits, measured in the same run: sha256 (Python's hashlib, OpenSSL, over 256 MiB in memory), disk write
(`dd` of 1 GiB with fsync into the directory the registries store in), and what the client reaches with no
registry in its way: for pushes, skopeo copying the same images from layout to layout in memory; for pulls, skopeo
pulling them from nginx serving them as static files (sendfile). Beside skopeo, curl GETs the big image's
layers all at once into /dev/null from each server: what the server itself serves when the client costs nothing.

    .venv/bin/python bench/registry_push_pull.py [--big-mib 1024] [--small 200] [--jobs 4] [--repeat 3]
"""

import argparse
import base64
import gzip
import hashlib
import io
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Gantry, Server, client, log, machine_note, rss_kib, table  # noqa: E402

LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
MIB = 1024 * 1024


class Distribution(Server):
    """CNCF distribution (`docker-registry serve`) with a fresh filesystem root."""

    name = "distribution"

    def __init__(self, port=None):
        super().__init__(port)
        self.root = Path(tempfile.mkdtemp(prefix="bench-distribution-"))
        config = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {
                "cache": {"blobdescriptor": "inmemory"},
                "filesystem": {"rootdirectory": str(self.root / "data")},
                "delete": {"enabled": True},
            },
            "http": {"addr": f"127.0.0.1:{self.port}"},
        }
        self.config = self.root / "config.yml"
        self.config.write_text(json.dumps(config))  # YAML is a superset of JSON

    def argv(self):
        return ["docker-registry", "serve", str(self.config)]

    def ready(self):
        return requests.get(self.endpoint + "/v2/", timeout=1).status_code == 200

    def close(self):
        super().close()
        shutil.rmtree(self.root, ignore_errors=True)


class StaticFiles(Server):
    """nginx serving the image sets' layouts as a read-only registry of static files: manifests by tag and blobs
    by digest, with sendfile. A pull ceiling: no registry can serve the same files faster."""

    name = "static files (nginx)"

    def __init__(self, layouts, index):
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="bench-nginx-"))
        locations = []
        for phase, layout in layouts.items():
            manifests = self.root / phase
            manifests.mkdir()
            for ref, digest in index[phase].items():
                os.symlink(layout / "blobs" / "sha256" / digest.split(":")[1], manifests / ref)
            locations.append(f"""
  location ~ ^/v2/{phase}/(?<ref>[^/]+)/manifests/1$ {{
    alias {manifests}/$ref; default_type application/vnd.oci.image.manifest.v1+json; }}
  location ~ "^/v2/{phase}/[^/]+/blobs/sha256:(?<hex>[0-9a-f]{{64}})$" {{
    alias {layout}/blobs/sha256/$hex; default_type application/octet-stream; }}""")
        self.config = self.root / "nginx.conf"
        self.config.write_text(f"""
{"user root;" if os.geteuid() == 0 else ""} daemon off; worker_processes {os.cpu_count()}; pid {self.root}/nginx.pid; error_log {self.root}/error.log;
events {{}}
http {{ access_log off; sendfile on; tcp_nopush on; disable_symlinks off;
 client_body_temp_path {self.root}; proxy_temp_path {self.root}; fastcgi_temp_path {self.root};
 uwsgi_temp_path {self.root}; scgi_temp_path {self.root};
 server {{ listen 127.0.0.1:{self.port};
  location = /v2/ {{ default_type application/json; return 200 '{{}}'; }}{"".join(locations)}
 }} }}
""")

    def argv(self):
        return ["nginx", "-c", str(self.config), "-p", str(self.root)]

    def ready(self):
        return requests.get(self.endpoint + "/v2/", timeout=1).status_code == 200

    def close(self):
        super().close()
        shutil.rmtree(self.root, ignore_errors=True)


# --- image sets -------------------------------------------------------------------------------------------------


def write_blob(layout, data):
    digest = hashlib.sha256(data).hexdigest()
    path = layout / "blobs" / "sha256" / digest
    if not path.exists():
        path.write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def layer(size, rng):
    """A gzip-framed tar holding one file of `size` random bytes (stored, not compressed: level 0)."""
    payload = rng.randbytes(size)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo(f"data-{hashlib.sha256(payload[:64]).hexdigest()[:12]}")
        info.size = size
        tar.addfile(info, io.BytesIO(payload))
    tar_bytes = raw.getvalue()
    return gzip.compress(tar_bytes, compresslevel=0, mtime=0), hashlib.sha256(tar_bytes).hexdigest()


def add_image(layout, layer_sizes, rng):
    """Writes an image's blobs and manifest into the layout; returns (manifest descriptor, layer bytes)."""
    layers, diff_ids = [], []
    for size in layer_sizes:
        blob, diff_id = layer(size, rng)
        layers.append({"mediaType": LAYER_TYPE, **write_blob(layout, blob)})
        diff_ids.append(f"sha256:{diff_id}")
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }).encode()
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **write_blob(layout, config)},
        "layers": layers,
    }).encode()
    descriptor = {"mediaType": "application/vnd.oci.image.manifest.v1+json", **write_blob(layout, manifest)}
    return descriptor, sum(layer["size"] for layer in layers)


def make_layout(path, images, rng):
    """An OCI layout holding `images` ({ref: [layer sizes]}); returns {ref: layer bytes} and {ref: manifest
    digest}."""
    (path / "blobs" / "sha256").mkdir(parents=True)
    (path / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    index, sizes, digests = [], {}, {}
    for ref, layer_sizes in images.items():
        descriptor, total = add_image(path, layer_sizes, rng)
        descriptor["annotations"] = {"org.opencontainers.image.ref.name": ref}
        index.append(descriptor)
        sizes[ref] = total
        digests[ref] = descriptor["digest"]
    (path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": index}))
    return sizes, digests


# --- raw limits -------------------------------------------------------------------------------------------------


def sha256_mb_s():
    data = os.urandom(256 * MIB)
    start = time.perf_counter()
    hashlib.sha256(data).hexdigest()
    return len(data) / MIB / (time.perf_counter() - start)


def disk_write_mb_s(directory):
    target = Path(directory) / "dd-probe"
    start = time.perf_counter()
    subprocess.run(
        ["dd", "if=/dev/zero", f"of={target}", "bs=4M", "count=256", "conv=fsync"],
        check=True, capture_output=True,
    )
    elapsed = time.perf_counter() - start
    target.unlink()
    return 1024 / elapsed


# --- skopeo -----------------------------------------------------------------------------------------------------


def skopeo(*args):
    result = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=3600)
    if result.returncode != 0:
        raise RuntimeError(f"skopeo {' '.join(args)} failed: {result.stderr}")


def run_copies(copies, jobs):
    """Runs `skopeo copy` for each (src, dst, extra args), `jobs` at a time; returns the wall time."""
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for f in [pool.submit(skopeo, "copy", "--quiet", *extra, src, dst) for src, dst, extra in copies]:
            f.result()
    return time.perf_counter() - start


def measure(server, layouts, sizes, creds, jobs, client_dir, push=True):
    """Pushes (unless `push` is false: the server already has the images) and pulls both sets through `server`;
    returns {phase: {push_s, pull_s}} and the server's peak RSS."""
    host = server.endpoint.split("//", 1)[1]
    push_args = ["--dest-tls-verify=false"] + (["--dest-creds", creds] if creds else [])
    pull_args = ["--src-tls-verify=false"] + (["--src-creds", creds] if creds else [])
    results = {}
    for phase, layout, n_jobs in [("big", layouts["big"], 1), ("small", layouts["small"], jobs)]:
        refs = sorted(sizes[phase])
        times = {}
        if push:
            os.sync()  # what earlier phases wrote is not written back during this one
            times["push_s"] = run_copies(
                [(f"oci:{layout}:{r}", f"docker://{host}/{phase}/{r}:1", push_args) for r in refs], n_jobs
            )
        pulled = client_dir / f"pulled-{phase}"
        pulled.mkdir()
        os.sync()
        # One layout per image: parallel skopeo processes must not share an index.json.
        times["pull_s"] = run_copies(
            [(f"docker://{host}/{phase}/{r}:1", f"oci:{pulled}/{r}:{r}", pull_args) for r in refs], n_jobs
        )
        shutil.rmtree(pulled, ignore_errors=True)
        if phase == "big":
            times["fetch_s"] = fetch_layers(host, creds, layer_digests(layout))
        results[phase] = times
        log(f"{server.name} {phase}: " + ", ".join(f"{k[:-2]} {v:.2f}s" for k, v in times.items()))
    results["peak_rss_kib"] = rss_kib(server.pid)[1]
    return results


def layer_digests(layout):
    """The layer digests of the (first) image of an OCI layout."""
    blobs = layout / "blobs" / "sha256"
    manifest = json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]
    return [layer["digest"] for layer in json.loads((blobs / manifest.split(":")[1]).read_bytes())["layers"]]


def fetch_layers(host, creds, digests):
    """GETs every layer at once with curl into /dev/null (no hashing, no writing): the server's own pull speed,
    with a client that costs next to nothing. Returns the wall time."""
    auth = ["-u", creds] if creds else []
    start = time.perf_counter()
    procs = [subprocess.Popen(["curl", "-sf", "-o", "/dev/null", *auth, f"http://{host}/v2/big/big/blobs/{d}"])
             for d in digests]
    if any(p.wait() != 0 for p in procs):
        raise RuntimeError(f"curl of a layer from {host} failed")
    return time.perf_counter() - start


def gantry_login(server, repos):
    ecr = client("ecr", server.endpoint)
    for name in repos:
        ecr.create_repository(repositoryName=name)
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    return base64.b64decode(token).decode()


def local_copy(layouts, sizes, jobs, client_dir):
    """skopeo copying both sets from their layouts into fresh ones, all in memory, no registry: the client's own
    work of a push (reading, digest checks, writing) at its fastest. Returns what `measure` does, as pushes."""
    results = {}
    for phase, n_jobs in [("big", 1), ("small", jobs)]:
        copied = client_dir / f"copied-{phase}"
        copied.mkdir()
        results[phase] = {"push_s": run_copies(
            [(f"oci:{layouts[phase]}:{r}", f"oci:{copied}/{r}:{r}", []) for r in sorted(sizes[phase])], n_jobs
        )}
        shutil.rmtree(copied, ignore_errors=True)
        log(f"skopeo alone {phase}: copy {results[phase]['push_s']:.2f}s")
    return results


def round_trip(make, layouts, sizes, args, client_dir):
    """One round against a fresh server made by `make`."""
    server = make()
    try:
        server.start()
        if isinstance(server, StaticFiles):
            return measure(server, layouts, sizes, None, args.jobs, client_dir, push=False)
        creds = None
        if isinstance(server, Gantry):
            creds = gantry_login(server, ["big/big"] + [f"small/{r}" for r in sizes["small"]])
        return measure(server, layouts, sizes, creds, args.jobs, client_dir)
    finally:
        server.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--big-mib", type=int, default=1024)
    parser.add_argument("--small", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--client-dir", default="/dev/shm" if Path("/dev/shm").is_dir() else None,
                        help="where the client's layouts live (default /dev/shm: in memory)")
    args = parser.parse_args()
    for tool in ("skopeo", "docker-registry", "nginx"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (apt-get install skopeo docker-registry nginx-light)")

    client_dir = Path(tempfile.mkdtemp(prefix="bench-registry-", dir=args.client_dir))
    rng = random.Random(42)
    runs = {}
    try:
        log("generating the image sets")
        layouts = {"big": client_dir / "big", "small": client_dir / "small"}
        sizes, index = {}, {}
        sizes["big"], index["big"] = make_layout(layouts["big"], {"big": [args.big_mib * MIB // 10] * 10}, rng)
        sizes["small"], index["small"] = make_layout(
            layouts["small"],
            {f"img{i:03}": [rng.randint(16 * 1024, MIB) for _ in range(rng.randint(1, 5))]
             for i in range(args.small)},
            rng,
        )
        log("measuring raw limits")
        sha = sha256_mb_s()
        disk = disk_write_mb_s(tempfile.gettempdir())

        makers = [("distribution", Distribution), ("gantry", Gantry),
                  (StaticFiles.name, lambda: StaticFiles(layouts, index))]
        for n in range(args.repeat):
            # Alternate the order, so that neither registry always follows the other's writeback.
            for name, make in makers if n % 2 == 0 else makers[1::-1] + makers[2:]:
                runs.setdefault(name, []).append(round_trip(make, layouts, sizes, args, client_dir))
            runs.setdefault("skopeo alone", []).append(local_copy(layouts, sizes, args.jobs, client_dir))
    finally:
        shutil.rmtree(client_dir, ignore_errors=True)

    def rate(server, phase, op):
        """Median MB/s and images/s of the runs."""
        seconds = statistics.median(r[phase][f"{op}_s"] for r in runs[server])
        total = sum(sizes[phase].values())
        return total / MIB / seconds, len(sizes[phase]) / seconds

    g, d, st = "gantry", "distribution", StaticFiles.name
    rows = []
    for phase, label in [("big", f"1 image, {args.big_mib} MiB in 10 layers"),
                         ("small", f"{args.small} small images, {args.jobs} at a time")]:
        for op in ("push", "pull"):
            (gm, gi), (dm, di) = rate(g, phase, op), rate(d, phase, op)
            ceiling = "{:.0f} MB/s, {:.2f} img/s".format(*rate("skopeo alone" if op == "push" else st, phase, op))
            rows.append([f"{op} {label}", f"{gm:.0f} MB/s, {gi:.2f} img/s", f"{dm:.0f} MB/s, {di:.2f} img/s",
                         f"{gm / dm:.2f}x", ceiling])
    (gm, _), (dm, _), (sm, _) = (rate(name, "big", "fetch") for name in (g, d, st))
    rows.append(["curl GET of the big image's 10 layers at once", f"{gm:.0f} MB/s", f"{dm:.0f} MB/s",
                 f"{gm / dm:.2f}x", f"nginx: {sm:.0f} MB/s"])
    peak = {name: max(r["peak_rss_kib"] for r in runs[name]) / 1024 for name in (g, d)}
    rows.append(["peak RSS (VmHWM)", f"{peak[g]:.1f} MiB", f"{peak[d]:.1f} MiB", "", ""])
    print(f"Median of {args.repeat} rounds.")
    print()
    print(table(["skopeo copy", "Gantry", "distribution 2.8", "Gantry / distribution",
                 "client ceiling: push = skopeo oci→oci in memory, pull = from nginx static files"], rows))
    print()
    limit = min(sha, disk)
    print(table(["raw limit (same run)", "MB/s"], [
        ["sha256 (hashlib, in memory)", f"{sha:.0f}"],
        ["disk write (dd 1 GiB, fsync)", f"{disk:.0f}"],
        ["Gantry big push / min(sha256, disk)", f"{rate(g, 'big', 'push')[0] / limit:.0%}"],
        ["Gantry big push / skopeo's own copy in memory",
         f"{rate(g, 'big', 'push')[0] / rate('skopeo alone', 'big', 'push')[0]:.0%}"],
        ["Gantry big pull / skopeo from static files", f"{rate(g, 'big', 'pull')[0] / rate(st, 'big', 'pull')[0]:.0%}"],
    ]))
    print()
    print(machine_note())


if __name__ == "__main__":
    main()
