"""Benchmarks for venice.py against a raw standard-library floor measured in the same run.

    python bench/bench_venice.py                 # everything (about a minute on 2 cores)
    python bench/bench_venice.py --only stream   # stream,ttft,rps,import

What it measures, all on loopback servers this script starts (no network):

- stream: chunks per second reading a 20,000-chunk chat stream: two raw ``http.client`` floors that
  ``json.loads`` each data line (one iterating ``readline()``, one splitting ``read1()`` blocks),
  ``ChatStream`` text iteration, ``ChatStream.chunks()``, the OpenAI shim's chunk objects, and the
  ``openai`` SDK when it is installed. Interleaved rounds, median of 5. Ratios against the floors.
- ttft: time to the first text delta minus the server's deliberate delay, venice vs the read1 floor.
- rps: 300 sequential non-streamed requests on one client, over HTTP and HTTPS (a self-signed
  certificate made with the ``openssl`` command): requests per second and TCP connections seen,
  against a reused raw ``http.client`` connection.
- import: import + client construction time and peak RSS of a fresh process, net of ``python -c pass``,
  against ``import json, ssl, http.client, urllib.request`` (and openai when installed); and
  ``python -m venice --version``.

Standard library only (uses the ``openai`` package too when it is importable).
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import json
import os
import platform
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import venice  # noqa: E402

try:
    import openai  # type: ignore[import-not-found]
except ImportError:
    openai = None

EVENT = (
    b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"bench",'
    b'"choices":[{"index":0,"delta":{"content":"tok%d "},"finish_reason":null}]}\n\n'
)
TAIL = (
    b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"bench",'
    b'"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
    b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"bench","choices":[],'
    b'"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}\n\n'
    b"data: [DONE]\n\n"
)
REPLY = json.dumps(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "bench",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "pong"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
).encode()


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, chunks: int, chunking: str, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
        self.connections = 0
        events = [EVENT % i for i in range(chunks)]
        self.expected = "".join(f"tok{i} " for i in range(chunks))
        body = b"".join(events) + TAIL
        if chunking == "event":
            self.blocks = events + [TAIL]
        else:
            self.blocks = [body[i : i + 16384] for i in range(0, len(body), 16384)]
        self.framed = b"".join(b"%x\r\n%s\r\n" % (len(b), b) for b in self.blocks) + b"0\r\n\r\n"
        short = [EVENT % i for i in range(3)]
        self.short = b"".join(b"%x\r\n%s\r\n" % (len(b), b) for b in short + [TAIL]) + b"0\r\n\r\n"

    def get_request(self):  # type: ignore[no-untyped-def]
        self.connections += 1
        return super().get_request()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: don't let Nagle hold the body

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        server: Server = self.server  # type: ignore[assignment]
        if not body.get("stream"):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(REPLY)))
            self.end_headers()
            self.wfile.write(REPLY)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        delay = self.headers.get("X-Bench-Delay-Ms")
        if delay:
            time.sleep(int(delay) / 1000)
            self.wfile.write(server.short)
        else:
            self.wfile.write(server.framed)
        self.wfile.flush()


REQUEST = json.dumps({"model": "bench", "messages": [{"role": "user", "content": "hi"}], "stream": True}).encode()
HEADERS = {"Content-Type": "application/json", "Authorization": "Bearer x"}


# The two floors repeat their per-line loop on purpose: a shared helper would add a Python call per
# line to the very thing they measure.
def floor_readline(conn: http.client.HTTPConnection, extra: dict[str, str] | None = None) -> tuple[int, float]:
    """Raw floor: readline() per line, json.loads per data line. Returns (text chunks, seconds to first)."""
    start = time.perf_counter()
    conn.request("POST", "/api/v1/chat/completions", REQUEST, {**HEADERS, **(extra or {})})
    resp = conn.getresponse()
    n, first = 0, 0.0
    for line in resp:
        if line.startswith(b"data: ") and line[6:12] != b"[DONE]":
            choices = json.loads(line[6:])["choices"]
            if choices and choices[0]["delta"].get("content"):
                if not n:
                    first = time.perf_counter() - start
                n += 1
    return n, first


def floor_read1(conn: http.client.HTTPConnection, extra: dict[str, str] | None = None) -> tuple[int, float]:
    """Raw floor: read1() blocks split on newlines, json.loads per data line."""
    start = time.perf_counter()
    conn.request("POST", "/api/v1/chat/completions", REQUEST, {**HEADERS, **(extra or {})})
    resp = conn.getresponse()
    n, first, rest = 0, 0.0, b""
    while True:
        block = resp.read1(65536)
        if not block:
            break
        lines = (rest + block).split(b"\n")
        rest = lines.pop()
        for line in lines:
            if line[:6] == b"data: " and line[6:12] != b"[DONE]":
                choices = json.loads(line[6:])["choices"]
                if choices and choices[0]["delta"].get("content"):
                    if not n:
                        first = time.perf_counter() - start
                    n += 1
    return n, first


def venice_text(client: venice.VeniceClient, extra: dict[str, str] | None = None) -> tuple[int, float]:
    start = time.perf_counter()
    n, first = 0, 0.0
    for _text in client.chat.complete("hi", model="bench", stream=True, headers=extra):
        if not n:
            first = time.perf_counter() - start
        n += 1
    return n, first


def venice_chunks(client: venice.VeniceClient) -> tuple[int, float]:
    n = 0
    for chunk in client.chat.complete("hi", model="bench", stream=True).chunks():
        choices = chunk.choices
        if choices and choices[0].delta.content:
            n += 1
    return n, 0.0


def venice_shim(client: venice.OpenAI) -> tuple[int, float]:
    n = 0
    stream = client.chat.completions.create(model="bench", messages=[{"role": "user", "content": "hi"}], stream=True)
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            n += 1
    return n, 0.0


def openai_sdk(client: object) -> tuple[int, float]:
    n = 0
    stream = client.chat.completions.create(  # type: ignore[attr-defined]
        model="bench", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            n += 1
    return n, 0.0


def bench_stream(args: argparse.Namespace, out: dict[str, object]) -> None:
    server = Server(args.chunks, args.chunking)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_port
    base = f"http://127.0.0.1:{port}/api/v1"
    conn_rl = http.client.HTTPConnection("127.0.0.1", port)
    conn_r1 = http.client.HTTPConnection("127.0.0.1", port)
    client = venice.VeniceClient(api_key="x", base_url=base, env_file=False)
    shim = venice.OpenAI(api_key="x", base_url=base, env_file=False)
    text = "".join(client.chat.complete("hi", model="bench", stream=True))
    assert text == server.expected, "venice assembled the wrong text"
    impls = {
        "floor readline()": lambda: floor_readline(conn_rl),
        "floor read1()": lambda: floor_read1(conn_r1),
        "venice ChatStream (text)": lambda: venice_text(client),
        "venice .chunks() (objects)": lambda: venice_chunks(client),
        "venice OpenAI shim (objects)": lambda: venice_shim(shim),
    }
    if openai is not None:
        sdk = openai.OpenAI(api_key="x", base_url=base, max_retries=0)
        impls["openai SDK"] = lambda: openai_sdk(sdk)
    times: dict[str, list[float]] = {name: [] for name in impls}
    for round_ in range(args.rounds + 1):
        for name, fn in impls.items():
            start = time.perf_counter()
            n, _ = fn()
            elapsed = time.perf_counter() - start
            assert n == args.chunks, (name, n)
            if round_:  # round 0 warms up
                times[name].append(elapsed)
    rates = {name: args.chunks / statistics.median(ts) for name, ts in times.items()}
    floor1, floorl = rates["floor read1()"], rates["floor readline()"]
    print(f"\n## Streaming: {args.chunks} chunks, {args.chunking} framing, median of {args.rounds} interleaved rounds")
    print(f"{'implementation':32} {'chunks/s':>12} {'vs read1()':>11} {'vs readline()':>14}")
    for name, rate in rates.items():
        print(f"{name:32} {rate:12,.0f} {rate / floor1:10.2f}x {rate / floorl:13.2f}x")
    out["stream"] = {name: {"chunks_per_s": rate, "vs_read1": rate / floor1, "vs_readline": rate / floorl} for name, rate in rates.items()}
    for c in (conn_rl, conn_r1):
        c.close()
    client.close()
    shim.close()
    server.shutdown()
    server.server_close()


def bench_ttft(args: argparse.Namespace, out: dict[str, object]) -> None:
    server = Server(3, "event")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_port
    delay_ms = args.delay_ms
    extra = {"X-Bench-Delay-Ms": str(delay_ms)}
    conn = http.client.HTTPConnection("127.0.0.1", port)
    client = venice.VeniceClient(api_key="x", base_url=f"http://127.0.0.1:{port}/api/v1", env_file=False)
    floor, ours = [], []
    for i in range(args.ttft_reps + 1):
        f = floor_read1(conn, extra)[1]
        v = venice_text(client, extra)[1]
        if i:
            floor.append(f * 1000 - delay_ms)
            ours.append(v * 1000 - delay_ms)
    f_med, v_med = statistics.median(floor), statistics.median(ours)
    print(f"\n## Time to first text delta, minus the server's {delay_ms} ms delay (median of {args.ttft_reps})")
    print(f"floor read1(): {f_med:.3f} ms   venice: {v_med:.3f} ms   difference: {v_med - f_med:+.3f} ms")
    out["ttft"] = {"floor_ms": f_med, "venice_ms": v_med, "difference_ms": v_med - f_med}
    conn.close()
    client.close()
    server.shutdown()
    server.server_close()


def make_cert(folder: str) -> tuple[str, str] | None:
    if not shutil.which("openssl"):
        return None
    key, cert = os.path.join(folder, "key.pem"), os.path.join(folder, "cert.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def bench_rps(args: argparse.Namespace, out: dict[str, object]) -> None:
    n = args.requests
    body = json.dumps({"model": "bench", "messages": [{"role": "user", "content": "ping"}]}).encode()
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as folder:
        cert = make_cert(folder)
        schemes = ["http"] + (["https"] if cert else [])
        print(f"\n## {n} sequential non-streamed requests on one client (median of {args.rounds} rounds)")
        print(f"{'scheme':7} {'implementation':22} {'req/s':>9} {'vs floor':>9} {'connections':>12}")
        for scheme in schemes:
            tls = None
            ctx = None
            if scheme == "https" and cert:
                tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                tls.load_cert_chain(*cert)
                ctx = ssl.create_default_context(cafile=cert[0])
            server = Server(1, "block", tls)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            port = server.server_port
            base = f"{scheme}://127.0.0.1:{port}/api/v1"

            def floor(port: int = port, ctx: ssl.SSLContext | None = ctx, scheme: str = scheme) -> int:
                conn = (
                    http.client.HTTPSConnection("127.0.0.1", port, context=ctx)
                    if scheme == "https"
                    else http.client.HTTPConnection("127.0.0.1", port)
                )
                for _ in range(n):
                    conn.request("POST", "/api/v1/chat/completions", body, HEADERS)
                    json.loads(conn.getresponse().read())
                conn.close()
                return 1

            def ours(base: str = base) -> int:
                config = venice.load_config(api_key="x", base_url=base, ca_file=cert[0] if cert else None, env_file=False)
                with venice.VeniceClient(config=config) as client:
                    for _ in range(n):
                        client.chat.complete("ping", model="bench")
                    return client._transport.connections_opened

            rows: dict[str, list[float]] = {"raw http.client": [], "venice": []}
            conns: dict[str, int] = {}
            for round_ in range(args.rounds + 1):
                for name, fn in (("raw http.client", floor), ("venice", ours)):
                    before = server.connections
                    start = time.perf_counter()
                    fn()
                    elapsed = time.perf_counter() - start
                    conns[name] = server.connections - before
                    if round_:
                        rows[name].append(n / elapsed)
            floor_rate = statistics.median(rows["raw http.client"])
            for name, rates in rows.items():
                rate = statistics.median(rates)
                print(f"{scheme:7} {name:22} {rate:9,.0f} {rate / floor_rate:8.2f}x {conns[name]:12d}")
                results[f"{scheme} {name}"] = {"req_per_s": rate, "vs_floor": rate / floor_rate, "connections": conns[name]}
            server.shutdown()
            server.server_close()
    out["rps"] = results


def child_time(code: list[str]) -> float:
    """Wall time (s) of one fresh interpreter running ``code``."""
    start = time.perf_counter()
    subprocess.run([sys.executable, *code], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


# VmHWM restarts at exec (ru_maxrss would include the memory of the forking benchmark process).
RSS = "import sys; sys.stderr.write([ln.split()[1] for ln in open('/proc/self/status') if ln.startswith('VmHWM')][0])"


def child_rss(code: str) -> int:
    """Peak RSS (KiB) of a fresh interpreter after running ``code`` (measured by the child itself)."""
    result = subprocess.run([sys.executable, "-c", f"{code}\n{RSS}"], cwd=ROOT, check=True, capture_output=True, text=True)
    return int(result.stderr)


def bench_import(args: argparse.Namespace, out: dict[str, object]) -> None:
    subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.join(ROOT, "venice.py")], check=True)
    cases = {
        "python -c pass": ["-c", "pass"],
        "stdlib floor": ["-c", "import json, ssl, http.client, urllib.request"],
        "venice": ["-c", "import venice; venice.VeniceClient(api_key='x')"],
        "python -m venice --version": ["-m", "venice", "--version"],
    }
    if openai is not None:
        cases["openai"] = ["-c", "import openai; openai.OpenAI(api_key='x')"]
    times: dict[str, list[float]] = {k: [] for k in cases}
    rss: dict[str, list[int]] = {k: [] for k in cases}
    for _ in range(args.import_reps):
        for name, code in cases.items():
            times[name].append(child_time(code))
            if code[0] == "-c":
                rss[name].append(child_rss(code[1]))
            else:
                rss[name].append(child_rss("import venice; venice.main(['--version'])"))
    base = statistics.median(times["python -c pass"])
    net = {k: statistics.median(v) - base for k, v in times.items()}
    peak = {k: statistics.median(v) for k, v in rss.items()}
    print(f"\n## Import + client construction, fresh process, net of `python -c pass` (median of {args.import_reps})")
    print(f"{'case':28} {'net ms':>8} {'vs floor':>9} {'peak RSS MiB':>13}")
    for name in cases:
        ratio = net[name] / net["stdlib floor"] if net["stdlib floor"] > 0 else float("nan")
        print(f"{name:28} {net[name] * 1000:8.1f} {ratio:8.2f}x {peak[name] / 1024:13.1f}")
    out["import"] = {k: {"net_ms": net[k] * 1000, "peak_rss_mib": peak[k] / 1024} for k in cases}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", default="stream,ttft,rps,import", help="comma-separated: stream,ttft,rps,import")
    p.add_argument("--chunks", type=int, default=20000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--chunking", choices=("block", "event"), default="block", help="16 KiB HTTP chunks, or one per event")
    p.add_argument("--delay-ms", type=int, default=50)
    p.add_argument("--ttft-reps", type=int, default=21)
    p.add_argument("--requests", type=int, default=300)
    p.add_argument("--import-reps", type=int, default=15)
    p.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = p.parse_args(argv)
    print(f"# venice.py {venice.__version__} benchmark")
    print(f"Python {platform.python_version()} on {platform.platform()}, {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}")
    print(f"openai SDK: {openai.__version__ if openai is not None else 'not installed'}")
    out: dict[str, object] = {}
    sections = {"stream": bench_stream, "ttft": bench_ttft, "rps": bench_rps, "import": bench_import}
    for name in args.only.split(","):
        sections[name.strip()](args, out)
    if args.json:
        print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
