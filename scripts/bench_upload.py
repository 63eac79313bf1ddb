"""Photo upload benchmark (run by scripts/bench_upload.sh): N parallel tus uploads of 12 MP
phone photos over loopback, against a server the script starts on a fresh SQLite database.

Per round, two kinds, interleaved:
  transfer  N parallel `partial` uploads of the photo's bytes: create, one PATCH, which the
            server streams to disk and fsyncs; nothing else happens (the baseline)
  photo     N parallel photo uploads: the same, then on completion the whole-file SHA-256
            check, image validation, EXIF, thumbnail and preview, the original copied into
            the blob store; each photo is distinct (bytes appended after the JPEG's end), so
            nothing is deduplicated
Reported: medians over the rounds of MB/s (MB = 10^6 bytes of photo sent), the ratio photo /
transfer, and the server's peak RSS (VmHWM) over the whole run.

Environment: BENCH_RUNS=5 PARALLEL=16 KINDS=transfer,photo (one kind alone: to see which
one the peak RSS comes from).
"""
import base64
import hashlib
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

BIN, PHOTO = sys.argv[1], sys.argv[2]
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
PARALLEL = int(os.environ.get("PARALLEL", "16"))
KINDS = os.environ.get("KINDS", "transfer,photo").split(",")
ADMIN_PASSWORD = "admin-bench-pass-123"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def request(port, method, path, headers=None, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data


def upload(port, token, data, partial, errors):
    h = {"Authorization": "Bearer " + token, "Tus-Resumable": "1.0.0",
         "Upload-Length": str(len(data))}
    if partial:
        h["Upload-Concat"] = "partial"
    else:
        sha = hashlib.sha256(data).hexdigest()
        h["Upload-Metadata"] = "sha256 " + base64.b64encode(sha.encode()).decode()
    st, hd, body = request(port, "POST", "/api/v1/uploads/", h)
    if st != 201:
        errors.append("create %d %s" % (st, body[:200]))
        return
    path = hd["location"][hd["location"].index("/api/"):]
    st, _, body = request(port, "PATCH", path, {
        "Authorization": "Bearer " + token, "Tus-Resumable": "1.0.0",
        "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"}, data)
    if st != 204:
        errors.append("patch %d %s" % (st, body[:200]))


def batch(port, token, files, partial):
    errors, threads = [], []
    t0 = time.perf_counter()
    for f in files:
        t = threading.Thread(target=upload, args=(port, token, f, partial, errors))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    secs = time.perf_counter() - t0
    if errors:
        raise SystemExit("upload failed: %s" % errors[:3])
    return sum(len(f) for f in files) / 1e6 / secs


def main():
    base = open(PHOTO, "rb").read()
    work = tempfile.mkdtemp(prefix="xuncha-bench-upload-")
    port = free_port()
    env = dict(os.environ, XUNCHA_ADMIN_PASSWORD=ADMIN_PASSWORD, XUNCHA_LOG="warn",
               XUNCHA_DATA_DIR=work, DATABASE_URL="",
               XUNCHA_MAX_OPEN_UPLOADS_PER_USER="10000")
    proc = subprocess.Popen([BIN, "serve", "--bind", "127.0.0.1:%d" % port], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                request(port, "GET", "/readyz")
                break
            except OSError:
                time.sleep(0.1)
        _, _, body = request(port, "POST", "/api/v1/auth/login",
                             {"Content-Type": "application/json"},
                             json.dumps({"username": "admin", "password": ADMIN_PASSWORD,
                                         "device_id": "bench"}))
        token = json.loads(body)["access_token"]
        print("photo: %s, %.1f MB; %d parallel uploads a batch; %d rounds"
              % (PHOTO, len(base) / 1e6, PARALLEL, RUNS), flush=True)
        transfer, photo = [], []
        n = 0
        for r in range(RUNS):
            files = []
            for _ in range(PARALLEL):
                n += 1
                files.append(base + b"xuncha-bench-%08d" % n)
            transfer.append(batch(port, token, files, True) if "transfer" in KINDS else 0.0)
            photo.append(batch(port, token, files, False) if "photo" in KINDS else 0.0)
            print("   round %d: transfer %.0f MB/s | photo %.0f MB/s"
                  % (r + 1, transfer[-1], photo[-1]), flush=True)
        hwm = 0
        for line in open("/proc/%d/status" % proc.pid):
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) / 1024
        t, p = statistics.median(transfer), statistics.median(photo)
        print("\n== SUMMARY (medians of %d rounds, %d parallel, loopback, client and server on one machine)"
              % (RUNS, PARALLEL))
        print("transfer only (partial uploads): %.0f MB/s" % t)
        print("photo uploads (hash + validate + EXIF + thumb + preview + store): %.0f MB/s "
              "(%.1f photos/s), ratio to transfer %.2f" % (p, p * 1e6 / len(base), p / t if t else 0))
        print("server peak RSS: %.0f MB" % hwm)
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(work, ignore_errors=True)


main()
