"""Benchmarks for venice.py against a raw standard-library floor measured in the same run.

    python bench/bench_venice.py                 # everything (about two minutes on 2 cores)
    python bench/bench_venice.py --only stream   # stream,ttft,rps,async,import
    python bench/bench_venice.py --only async    # the asyncio client alone (about 40 s)

What it measures, all on loopback servers this script starts (no network):

- stream: chunks per second reading a 20,000-chunk chat stream: two raw ``http.client`` floors that
  ``json.loads`` each data line (one iterating ``readline()``, one splitting ``read1()`` blocks),
  ``ChatStream`` text iteration, ``ChatStream.chunks()``, the OpenAI shim's chunk objects, and the
  ``openai`` SDK when it is installed. Interleaved rounds, median of 5. Ratios against the floors.
- ttft: time to the first text delta minus the server's deliberate delay, venice vs the read1 floor.
- rps: 300 sequential non-streamed requests on one client, over HTTP and HTTPS (a self-signed
  certificate made with the ``openssl`` command): requests per second and TCP connections seen,
  against a reused raw ``http.client`` connection.
- async: ``AsyncVeniceClient`` against raw asyncio floors, on an asyncio server in a process of its
  own (prebuilt bytes; its CPU share is printed with each row, and a "drain" row that parses nothing
  shows what it can deliver): 256 concurrent streams of 200 chunks on one client (chunks/s; also
  ``venice.AsyncOpenAI`` and openai's ``AsyncOpenAI`` when installed); 1,000 non-streamed requests
  with 64 in flight (req/s, TCP connections per run); time to the first text delta with no load;
  peak memory per concurrent stream in a fresh process (RSS growth / 256, and tracemalloc's peak).
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
from typing import Any

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


# The async section. Its server is an asyncio server in a process of its own (``--serve``), writing
# prebuilt bytes, so that 256 concurrent streams are limited by the client under test, not by
# http.server threads; the server reports its own CPU time so each row shows how busy it was.


def _chunked(blocks: list[bytes]) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(b), b) for b in blocks) + b"0\r\n\r\n"


def serve_async(chunks: int, chunking: str) -> None:
    """Run the async section's server until killed; print its port first."""
    import asyncio

    events = [EVENT % i for i in range(chunks)]
    body = b"".join(events) + TAIL
    blocks = events + [TAIL] if chunking == "event" else [body[i : i + 16384] for i in range(0, len(body), 16384)]
    stream_head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    framed = stream_head + _chunked(blocks)
    short = _chunked([EVENT % i for i in range(3)] + [TAIL])
    reply = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(REPLY), REPLY)
    stats = {"connections": 0}

    # A Protocol, not streams: a few µs per request, so the 64-connection request floor does not
    # measure this server (its CPU share is printed with each row).
    class Handler(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            stats["connections"] += 1
            self.transport: Any = transport
            self.buf = b""

        def data_received(self, data: bytes) -> None:
            buf = self.buf + data
            while True:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    break
                head = buf[: end + 2].lower()
                at = head.find(b"\r\ncontent-length:")
                length = int(head[at + 17 : head.index(b"\r\n", at + 17)]) if at >= 0 else 0
                if len(buf) < end + 4 + length:
                    break
                data, buf = buf[end + 4 : end + 4 + length], buf[end + 4 + length :]
                if head.startswith(b"get /stats"):
                    info = json.dumps({"connections": stats["connections"], "cpu": time.process_time()}).encode()
                    self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(info), info))
                elif b'"stream":' not in data or not json.loads(data).get("stream"):
                    self.transport.write(reply)
                elif b"x-bench-hold-ms:" in head:  # the head now, the whole body later
                    at = head.index(b"x-bench-hold-ms:") + 16
                    self.transport.write(stream_head)
                    delay = int(head[at : head.index(b"\r\n", at)]) / 1000
                    asyncio.get_running_loop().call_later(delay, self.transport.write, framed[len(stream_head) :])
                elif b"x-bench-delay-ms:" in head:
                    at = head.index(b"x-bench-delay-ms:") + 17
                    self.transport.write(stream_head)
                    delay = int(head[at : head.index(b"\r\n", at)]) / 1000
                    asyncio.get_running_loop().call_later(delay, self.transport.write, short)
                else:
                    self.transport.write(framed)
            self.buf = buf

    async def run() -> None:
        server = await asyncio.get_running_loop().create_server(Handler, "127.0.0.1", 0, backlog=4096)
        print(server.sockets[0].getsockname()[1], flush=True)
        await server.serve_forever()

    asyncio.run(run())


def server_stats(port: int) -> tuple[int, float]:
    """(connections accepted so far, not counting this one; the server's CPU seconds so far)."""
    conn = http.client.HTTPConnection("127.0.0.1", port)
    conn.request("GET", "/stats")
    info = json.loads(conn.getresponse().read())
    conn.close()
    return info["connections"] - 1, info["cpu"]


def raw_request(port: int, body: bytes, extra: bytes = b"") -> bytes:
    """The bytes of one POST, prebuilt once (as venice sends them, give or take header order)."""
    return (
        b"POST /api/v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer x\r\n%sContent-Length: %d\r\n\r\n%s" % (port, extra, len(body), body)
    )


# The floors repeat their loops on purpose (see floor_readline): no helper call per event.
async def afloor_stream(port: int, request: bytes) -> tuple[int, float]:
    """Raw asyncio floor: a fresh connection, prebuilt request, chunked framing undone with
    readuntil/readexactly, blocks split on blank lines, json.loads per data event."""
    import asyncio

    start = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await reader.readuntil(b"\r\n\r\n")
    n, first, rest = 0, 0.0, b""
    while True:
        size = int(await reader.readuntil(b"\r\n"), 16)
        if not size:
            break
        events = (rest + (await reader.readexactly(size + 2))[:-2]).split(b"\n\n")
        rest = events.pop()
        for event in events:
            if event[:6] == b"data: " and event[6:12] != b"[DONE]":
                choices = json.loads(event[6:])["choices"]
                if choices and choices[0]["delta"].get("content"):
                    if not n:
                        first = time.perf_counter() - start
                    n += 1
    await reader.readuntil(b"\r\n")
    writer.close()
    return n, first


async def adrain_stream(port: int, request: bytes, chunks: int) -> tuple[int, float]:
    """Not a client: reads the bytes and parses nothing, to show what the server and kernel deliver."""
    import asyncio

    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    tail = b""
    while not tail.endswith(b"\r\n0\r\n\r\n"):
        data = await reader.read(65536)
        if not data:
            raise ConnectionError("the server closed the stream early")
        tail = tail[-8:] + data[-8:]
    writer.close()
    return chunks, 0.0


async def avenice_text(client: venice.AsyncVeniceClient, extra: dict[str, str] | None = None) -> tuple[int, float]:
    start = time.perf_counter()
    n, first = 0, 0.0
    async for _text in await client.chat.complete("hi", model="bench", stream=True, headers=extra):
        if not n:
            first = time.perf_counter() - start
        n += 1
    return n, first


async def aopenai_chunks(client: object) -> tuple[int, float]:
    """venice.AsyncOpenAI or openai.AsyncOpenAI: chunk objects."""
    n = 0
    stream = await client.chat.completions.create(  # type: ignore[attr-defined]
        model="bench", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            n += 1
    return n, 0.0


async def afloor_rps(port: int, request: bytes, total: int, inflight: int) -> int:
    """Raw asyncio floor: ``inflight`` keep-alive connections, prebuilt request bytes, the head by
    readuntil, the body by Content-Length, json.loads."""
    import asyncio

    left = [total]

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while left[0] > 0:
            left[0] -= 1
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            at = head.index(b"Content-Length: ") + 16
            json.loads(await reader.readexactly(int(head[at : head.index(b"\r\n", at)])))
        writer.close()

    await asyncio.gather(*(worker() for _ in range(inflight)))
    return total


async def avenice_rps(client: venice.AsyncVeniceClient, total: int, inflight: int) -> int:
    """``inflight`` tasks sharing one client, as many calls in all as ``total``."""
    import asyncio

    left = [total]

    async def worker() -> None:
        while left[0] > 0:
            left[0] -= 1
            await client.chat.complete("ping", model="bench")

    await asyncio.gather(*(worker() for _ in range(inflight)))
    return total


async def avenice_rps_limited(client: venice.AsyncVeniceClient, total: int, inflight: int) -> int:
    """All ``total`` calls started at once; the client's ``max_concurrency`` keeps ``inflight`` going."""
    import asyncio

    await asyncio.gather(*(client.chat.complete("ping", model="bench") for _ in range(total)))
    return total


async def aopenai_rps(client: object, total: int, inflight: int) -> int:
    import asyncio

    left = [total]
    messages = [{"role": "user", "content": "ping"}]

    async def worker() -> None:
        while left[0] > 0:
            left[0] -= 1
            await client.chat.completions.create(model="bench", messages=messages)  # type: ignore[attr-defined]

    await asyncio.gather(*(worker() for _ in range(inflight)))
    return total


def spread(values: list[float]) -> str:
    return f"{min(values):.2f}–{max(values):.2f}"


async def _async_rounds(
    port: int, rounds: int, impls: dict[str, Any], units: int, floor: str
) -> dict[str, dict[str, float]]:
    """Interleaved rounds (round 0 warms up): per implementation, the median rate (units/s), the
    median and range of its per-round ratio to ``floor``, the CPU share of the server and of this
    process (a row near 100% here and well below it there is limited by the client), connections."""
    times: dict[str, list[float]] = {name: [] for name in impls}
    cpu: dict[str, list[float]] = {name: [] for name in impls}
    client_cpu: dict[str, list[float]] = {name: [] for name in impls}
    conns: dict[str, int] = {}
    for round_ in range(rounds + 1):
        for name, job in impls.items():
            conns_before, cpu_before = server_stats(port)
            start, mine = time.perf_counter(), time.process_time()
            await job()
            elapsed, mine = time.perf_counter() - start, time.process_time() - mine
            conns_after, cpu_after = server_stats(port)
            if round_:
                times[name].append(elapsed)
                cpu[name].append((cpu_after - cpu_before) / elapsed)
                client_cpu[name].append(mine / elapsed)
                conns[name] = conns_after - conns_before - 1  # (less the "before" stats connection)
    result = {}
    for name in impls:
        ratios = [f / t for f, t in zip(times[floor], times[name])]
        result[name] = {
            "per_s": units / statistics.median(times[name]),
            "vs_floor": statistics.median(ratios),
            "vs_floor_min": min(ratios),
            "vs_floor_max": max(ratios),
            "server_cpu": statistics.median(cpu[name]),
            "client_cpu": statistics.median(client_cpu[name]),
            "connections": conns[name],
        }
    return result


def _print_rows(rows: dict[str, dict[str, float]], unit: str) -> None:
    print(f"{'implementation':34} {unit:>10} {'vs floor':>9} {'(range)':>11} {'CPU: client':>12} {'server':>7} {'conns/run':>10}")
    for name, r in rows.items():
        print(
            f"{name:34} {r['per_s']:10,.0f} {r['vs_floor']:8.2f}x {r['vs_floor_min']:5.2f}–{r['vs_floor_max']:<5.2f}"
            f" {r['client_cpu'] * 100:11.0f}% {r['server_cpu'] * 100:6.0f}% {r['connections']:10d}"
        )


def mem_child(impl: str, port: int, streams: int, chunks: int, hold_ms: int = 300) -> None:
    """Run in a fresh process (``--mem-child``): RSS growth over one run of ``streams`` concurrent
    streams, after a warm-up stream (lazy imports are not the streams' memory). Prints JSON."""
    import asyncio

    def status(field: str) -> int:
        with open("/proc/self/status") as f:
            return next(int(ln.split()[1]) for ln in f if ln.startswith(field + ":"))

    async def run() -> dict[str, object]:
        # The server holds each body back for a while, so that all the streams are open at once
        # (each with its head read) when the bodies arrive.
        request = raw_request(port, REQUEST, b"X-Bench-Hold-Ms: %d\r\n" % hold_ms)
        client = venice.AsyncVeniceClient(api_key="x", base_url=f"http://127.0.0.1:{port}/api/v1", env_file=False)
        extra = {"X-Bench-Hold-Ms": str(hold_ms)}
        if impl == "floor":
            job = lambda: afloor_stream(port, request)  # noqa: E731
        else:
            job = lambda: avenice_text(client, extra)  # noqa: E731
        await job()
        base = status("VmRSS")
        try:  # "5" resets the peak (VmHWM) to the current RSS (Linux 4.0+)
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            reset = True
        except OSError:
            reset = False
        results = await asyncio.gather(*(job() for _ in range(streams)))
        assert all(n == chunks for n, _ in results), impl
        peak = status("VmHWM")
        # RSS growth misses allocations that land in heap pages freed earlier (imports leave many):
        # the peak of Python's own allocations over a second run is the other view.
        import tracemalloc

        tracemalloc.start()
        await asyncio.gather(*(job() for _ in range(streams)))
        traced = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        await client.close()
        return {"base_kib": base, "peak_kib": peak, "hwm_reset": reset, "traced_peak_kib": traced / 1024}

    print(json.dumps(asyncio.run(run())))


def bench_async(args: argparse.Namespace, out: dict[str, object]) -> None:
    chunks = args.stream_chunks
    server = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--serve", "--stream-chunks", str(chunks), "--chunking", args.chunking],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        _bench_async(args, out, int(server.stdout.readline()))
    finally:
        server.kill()  # (our own child, by its handle)
        server.wait()


def _bench_async(args: argparse.Namespace, out: dict[str, object], port: int) -> None:
    import asyncio

    chunks, streams, total, inflight = args.stream_chunks, args.streams, args.async_requests, args.inflight
    base = f"http://127.0.0.1:{port}/api/v1"
    stream_req = raw_request(port, REQUEST)
    ping = json.dumps({"model": "bench", "messages": [{"role": "user", "content": "ping"}]}).encode()
    ping_req = raw_request(port, ping)
    delay_ms = args.delay_ms
    delay_req = raw_request(port, REQUEST, b"X-Bench-Delay-Ms: %d\r\n" % delay_ms)
    results: dict[str, object] = {}

    async def main() -> None:
        client = venice.AsyncVeniceClient(api_key="x", base_url=base, env_file=False)
        shim = venice.AsyncOpenAI(api_key="x", base_url=base, env_file=False)
        limited = venice.AsyncVeniceClient(api_key="x", base_url=base, env_file=False, max_concurrency=inflight)
        sdk = openai.AsyncOpenAI(api_key="x", base_url=base, max_retries=0) if openai is not None else None
        text = "".join([t async for t in await client.chat.complete("hi", model="bench", stream=True)])
        assert text == "".join(f"tok{i} " for i in range(chunks)), "venice assembled the wrong text"

        def fan_out(job: Any) -> Any:
            async def run() -> None:
                done = await asyncio.gather(*(job() for _ in range(streams)))
                assert all(n == chunks for n, _ in done), [n for n, _ in done][:5]

            return run

        impls: dict[str, Any] = {
            "floor (raw asyncio)": fan_out(lambda: afloor_stream(port, stream_req)),
            "drain (no parsing: server check)": fan_out(lambda: adrain_stream(port, stream_req, chunks)),
            "venice AsyncVeniceClient (text)": fan_out(lambda: avenice_text(client)),
            "venice AsyncOpenAI (objects)": fan_out(lambda: aopenai_chunks(shim)),
        }
        if sdk is not None:
            impls["openai AsyncOpenAI"] = fan_out(lambda: aopenai_chunks(sdk))
        rows = await _async_rounds(port, args.rounds, impls, streams * chunks, "floor (raw asyncio)")
        print(f"\n## Async streams: {streams} concurrent streams x {chunks} chunks ({args.chunking} framing) on one")
        print(f"client, median of {args.rounds} interleaved rounds; range = lowest–highest per-round ratio")
        _print_rows(rows, "chunks/s")
        if sdk is not None:
            ours, theirs = rows["venice AsyncVeniceClient (text)"]["per_s"], rows["openai AsyncOpenAI"]["per_s"]
            print(f"venice vs openai AsyncOpenAI: {ours / theirs:.1f}x")
        results["streams"] = rows

        impls = {
            "floor (raw asyncio)": lambda: afloor_rps(port, ping_req, total, inflight),
            "venice, shared by workers": lambda: avenice_rps(client, total, inflight),
            f"venice, max_concurrency={inflight}": lambda: avenice_rps_limited(limited, total, inflight),
            "venice AsyncOpenAI": lambda: aopenai_rps(shim, total, inflight),
        }
        if sdk is not None:
            impls["openai AsyncOpenAI"] = lambda: aopenai_rps(sdk, total, inflight)
        rows = await _async_rounds(port, args.rounds, impls, total, "floor (raw asyncio)")
        print(f"\n## Async requests: {total} non-streamed requests, {inflight} in flight, one client (median of {args.rounds})")
        _print_rows(rows, "req/s")
        if sdk is not None:
            ours, theirs = rows["venice, shared by workers"]["per_s"], rows["openai AsyncOpenAI"]["per_s"]
            print(f"venice vs openai AsyncOpenAI: {ours / theirs:.1f}x")
        results["requests"] = rows

        reader, writer = await asyncio.open_connection("127.0.0.1", port)

        async def floor_first() -> float:
            start = time.perf_counter()
            writer.write(delay_req)
            await reader.readuntil(b"\r\n\r\n")
            n, first, rest = 0, 0.0, b""
            while True:
                size = int(await reader.readuntil(b"\r\n"), 16)
                if not size:
                    break
                events = (rest + (await reader.readexactly(size + 2))[:-2]).split(b"\n\n")
                rest = events.pop()
                for event in events:
                    if event[:6] == b"data: " and event[6:12] != b"[DONE]":
                        choices = json.loads(event[6:])["choices"]
                        if choices and choices[0]["delta"].get("content"):
                            if not n:
                                first = time.perf_counter() - start
                            n += 1
            await reader.readuntil(b"\r\n")
            return first

        extra = {"X-Bench-Delay-Ms": str(delay_ms)}
        floor, ours = [], []
        for i in range(args.ttft_reps + 1):
            f = await floor_first()
            v = (await avenice_text(client, extra))[1]
            if i:
                floor.append(f * 1000 - delay_ms)
                ours.append(v * 1000 - delay_ms)
        writer.close()
        diffs = [v - f for f, v in zip(floor, ours)]
        f_med, v_med = statistics.median(floor), statistics.median(ours)
        print(f"\n## Async time to first text delta, no load, minus the server's {delay_ms} ms delay (median of {args.ttft_reps})")
        print(
            f"floor: {f_med:.3f} ms   venice: {v_med:.3f} ms   difference: {v_med - f_med:+.3f} ms"
            f"   (paired differences: median {statistics.median(diffs):+.3f}, range {min(diffs):+.3f}…{max(diffs):+.3f} ms)"
        )
        results["ttft"] = {"floor_ms": f_med, "venice_ms": v_med, "difference_ms": v_med - f_med}
        for c in (client, shim, limited):
            await c.close()
        if sdk is not None:
            await sdk.close()

    asyncio.run(main())

    # Imports compiled from source (PYTHONDONTWRITEBYTECODE, or no __pycache__) leave megabytes of
    # freed heap that the streams would then fill unseen by RSS: load the bytecode instead.
    subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.join(ROOT, "venice.py"), os.path.abspath(__file__)], check=True)
    mem: dict[str, list[float]] = {"floor": [], "venice": []}
    traced: dict[str, list[float]] = {"floor": [], "venice": []}
    for _ in range(args.mem_reps):
        for impl in mem:
            child = subprocess.run(
                [sys.executable, os.path.abspath(__file__), "--mem-child", impl, "--port", str(port),
                 "--streams", str(streams), "--stream-chunks", str(chunks)],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
            info = json.loads(child.stdout)
            assert info["hwm_reset"], "could not reset VmHWM (/proc/self/clear_refs)"
            mem[impl].append((info["peak_kib"] - info["base_kib"]) / streams)
            traced[impl].append(info["traced_peak_kib"] / streams)
    print(f"\n## Async peak memory per concurrent stream, {streams} streams all open at once (the server holds the")
    print(f"bodies back 300 ms); fresh process each, after a warm-up stream; median of {args.mem_reps}, range:")
    print(f"RSS growth / {streams}, and tracemalloc's peak over a second run / {streams}")
    for impl, kbs in mem.items():
        t = traced[impl]
        print(
            f"{impl:8} RSS {statistics.median(kbs):6.1f} KiB ({min(kbs):.1f}–{max(kbs):.1f})"
            f"   traced {statistics.median(t):6.1f} KiB ({min(t):.1f}–{max(t):.1f})"
        )
    results["memory_kib_per_stream"] = {
        impl: {"rss": statistics.median(mem[impl]), "traced": statistics.median(traced[impl])} for impl in mem
    }
    out["async"] = results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", default="stream,ttft,rps,async,import", help="comma-separated: stream,ttft,rps,async,import")
    p.add_argument("--chunks", type=int, default=20000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--chunking", choices=("block", "event"), default="block", help="16 KiB HTTP chunks, or one per event")
    p.add_argument("--delay-ms", type=int, default=50)
    p.add_argument("--ttft-reps", type=int, default=21)
    p.add_argument("--requests", type=int, default=300)
    p.add_argument("--import-reps", type=int, default=15)
    p.add_argument("--streams", type=int, default=256, help="async: concurrent streams")
    p.add_argument("--stream-chunks", type=int, default=200, help="async: chunks per stream")
    p.add_argument("--async-requests", type=int, default=1000, help="async: non-streamed requests")
    p.add_argument("--inflight", type=int, default=64, help="async: requests in flight")
    p.add_argument("--mem-reps", type=int, default=5, help="async: fresh processes per memory figure")
    p.add_argument("--json", action="store_true", help="also print the results as JSON")
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)  # the async section's server
    p.add_argument("--mem-child", help=argparse.SUPPRESS)  # the async section's memory probe
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve:
        serve_async(args.stream_chunks, args.chunking)
        return 0
    if args.mem_child:
        mem_child(args.mem_child, args.port, args.streams, args.stream_chunks)
        return 0
    print(f"# venice.py {venice.__version__} benchmark")
    print(f"Python {platform.python_version()} on {platform.platform()}, {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}")
    print(f"openai SDK: {openai.__version__ if openai is not None else 'not installed'}")
    out: dict[str, object] = {}
    sections = {"stream": bench_stream, "ttft": bench_ttft, "rps": bench_rps, "async": bench_async, "import": bench_import}
    for name in args.only.split(","):
        sections[name.strip()](args, out)
    if args.json:
        print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
