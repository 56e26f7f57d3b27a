#!/usr/bin/env python3
"""Registry push and pull with skopeo: Gantry's registry side by side with CNCF distribution (Debian's
`docker-registry`), in one run on the same machine, plus the machine's raw limits.

Image sets, generated once as OCI layouts (random, incompressible layers, gzip-framed so that skopeo sends them as
they are instead of compressing them on the way):
  - big:   one image of --big-mib MiB (default 1024) in 10 layers;
  - small: --small images (default 200) of 1-5 layers of 16 KiB - 1 MiB each.
For each registry (fresh data dir, loopback): push big, push small (--jobs skopeo processes at a time, default 4),
pull big, pull small (into fresh OCI layouts). Reported: MB/s of layer bytes, images/s, and the server's peak RSS
(VmHWM). Gantry runs as a user would have it: repositories created with ECR CreateRepository, skopeo logged in
with the token from GetAuthorizationToken. Distribution runs with its filesystem driver and in-memory blob
descriptor cache, no auth.
Raw limits, measured in the same run: sha256 (Python's hashlib, OpenSSL, over 256 MiB in memory) and disk write
(`dd` of 1 GiB with fsync into the directory the registries store in).

    .venv/bin/python bench/registry_push_pull.py [--big-mib 1024] [--small 200] [--jobs 4]
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
    """An OCI layout holding `images` ({ref: [layer sizes]}); returns {ref: layer bytes}."""
    (path / "blobs" / "sha256").mkdir(parents=True)
    (path / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    index, sizes = [], {}
    for ref, layer_sizes in images.items():
        descriptor, total = add_image(path, layer_sizes, rng)
        descriptor["annotations"] = {"org.opencontainers.image.ref.name": ref}
        index.append(descriptor)
        sizes[ref] = total
    (path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": index}))
    return sizes


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


def measure(server, layouts, sizes, creds, jobs, work):
    """Pushes and pulls both sets through `server`; returns rows of (phase, MB/s, images/s)."""
    host = server.endpoint.split("//", 1)[1]
    push_args = ["--dest-tls-verify=false"] + (["--dest-creds", creds] if creds else [])
    pull_args = ["--src-tls-verify=false"] + (["--src-creds", creds] if creds else [])
    results = {}
    for phase, layout, refs, n_jobs in [
        ("big", layouts["big"], ["big"], 1),
        ("small", layouts["small"], sorted(sizes["small"]), jobs),
    ]:
        total = sum(sizes[phase][r] for r in refs)
        push = run_copies(
            [(f"oci:{layout}:{r}", f"docker://{host}/{phase}/{r}:1", push_args) for r in refs], n_jobs
        )
        pulled = work / f"pulled-{server.name}-{phase}"
        pulled.mkdir()
        # One layout per image: parallel skopeo processes must not share an index.json.
        pull = run_copies(
            [(f"docker://{host}/{phase}/{r}:1", f"oci:{pulled}/{r}:{r}", pull_args) for r in refs], n_jobs
        )
        shutil.rmtree(pulled, ignore_errors=True)
        results[phase] = {
            "push_mb_s": total / MIB / push, "push_img_s": len(refs) / push,
            "pull_mb_s": total / MIB / pull, "pull_img_s": len(refs) / pull,
        }
        log(f"{server.name} {phase}: push {push:.2f}s, pull {pull:.2f}s ({total / MIB:.0f} MiB, {len(refs)} images)")
    results["peak_rss_kib"] = rss_kib(server.pid)[1]
    return results


def gantry_login(server, repos):
    ecr = client("ecr", server.endpoint)
    for name in repos:
        ecr.create_repository(repositoryName=name)
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    return base64.b64decode(token).decode()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--big-mib", type=int, default=1024)
    parser.add_argument("--small", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=4)
    args = parser.parse_args()
    for tool in ("skopeo", "docker-registry"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (apt-get install skopeo docker-registry)")

    work = Path(tempfile.mkdtemp(prefix="bench-registry-"))
    rng = random.Random(42)
    try:
        log("generating the image sets")
        layouts = {"big": work / "big", "small": work / "small"}
        sizes = {
            "big": make_layout(layouts["big"], {"big": [args.big_mib * MIB // 10] * 10}, rng),
            "small": make_layout(
                layouts["small"],
                {f"img{i:03}": [rng.randint(16 * 1024, MIB) for _ in range(rng.randint(1, 5))]
                 for i in range(args.small)},
                rng,
            ),
        }
        log("measuring raw limits")
        sha = sha256_mb_s()
        disk = disk_write_mb_s(tempfile.gettempdir())

        results = {}
        for make in (Distribution, Gantry):
            server = make()
            try:
                server.start()
                creds = None
                if isinstance(server, Gantry):
                    repos = ["big/big"] + [f"small/{r}" for r in sizes["small"]]
                    creds = gantry_login(server, repos)
                results[server.name] = measure(server, layouts, sizes, creds, args.jobs, work)
            finally:
                server.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    g, d = results["gantry"], results["distribution"]
    rows = []
    for phase, label in [("big", f"1 image, {args.big_mib} MiB in 10 layers"),
                         ("small", f"{args.small} small images, {args.jobs} at a time")]:
        for op in ("push", "pull"):
            rows.append([
                f"{op} {label}",
                f"{g[phase][f'{op}_mb_s']:.0f} MB/s, {g[phase][f'{op}_img_s']:.2f} img/s",
                f"{d[phase][f'{op}_mb_s']:.0f} MB/s, {d[phase][f'{op}_img_s']:.2f} img/s",
                f"{g[phase][f'{op}_mb_s'] / d[phase][f'{op}_mb_s']:.2f}x",
            ])
    rows.append(["peak RSS (VmHWM)", f"{g['peak_rss_kib'] / 1024:.1f} MiB", f"{d['peak_rss_kib'] / 1024:.1f} MiB", ""])
    print(table(["skopeo copy", "Gantry", "distribution 2.8", "Gantry / distribution"], rows))
    print()
    limit = min(sha, disk)
    print(table(["raw limit (same run)", "MB/s"], [
        ["sha256 (hashlib, in memory)", f"{sha:.0f}"],
        ["disk write (dd 1 GiB, fsync)", f"{disk:.0f}"],
        ["Gantry big push / min(sha256, disk)", f"{g['big']['push_mb_s'] / limit:.0%}"],
    ]))
    print()
    print(machine_note())


if __name__ == "__main__":
    main()
