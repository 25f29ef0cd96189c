"""Tests for venice.py: real HTTP servers on 127.0.0.1, no network, no patched http.client.

Sections follow venice.py's. `python -m pip install pytest && python -m pytest`
"""

###############################################################################
# Fake Venice ##################################################################
###############################################################################
# A behavioural fake of the Venice API on loopback (chat streamed or not, tool calls, models,
# embeddings, rate limits), for the tests that drive whole programs: the CLI, the OpenAI shim, the
# proxy, examples.py and README's snippets. `fake.script` takes one-off raw replies (callables).

import contextlib
import http.server
import io
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time

import pytest

import venice

KEY = "sk-test-SECRET-1234"
HERE = os.path.dirname(os.path.abspath(__file__))

FAKE_MODELS = [
    {
        "id": "venice-uncensored",
        "type": "text",
        "object": "model",
        "owned_by": "venice.ai",
        "created": 1733768349,
        "model_spec": {
            "name": "Venice Uncensored",
            "availableContextTokens": 32768,
            "maxCompletionTokens": 4096,
            "traits": ["most_uncensored"],
            "pricing": {"input": {"usd": 0.2, "diem": 0.2}, "output": {"usd": 0.9, "diem": 0.9}},
            "capabilities": {"supportsFunctionCalling": True, "supportsReasoning": False, "supportsVision": False},
        },
    },
    {
        "id": "zai-org-glm-5-2",
        "type": "text",
        "object": "model",
        "owned_by": "venice.ai",
        "created": 1783468800,
        "context_length": 198000,
        "model_spec": {
            "name": "GLM 5.2",
            "availableContextTokens": 198000,
            "maxCompletionTokens": 32000,
            "traits": ["default", "function_calling_default"],
            "pricing": {"input": {"usd": 0.85, "diem": 0.85}, "output": {"usd": 2.75, "diem": 2.75}},
            "capabilities": {"supportsFunctionCalling": True, "supportsReasoning": True, "supportsVision": True},
        },
    },
]


class FakeVenice(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host="127.0.0.1", tls=None):
        super().__init__((host, 0), _FakeHandler)
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
        self.requests = []  # (method, path, headers, json body or None)
        self.script = []  # callables(handler) that answer the next POST instead of the fake
        self.get_script = []  # the same for GET
        self.connections = 0  # TCP connections accepted
        self.closed = 0
        self.aborted = threading.Event()  # a streamed answer lost its client
        self.url = f"{'https' if tls else 'http'}://{host}:{self.server_port}/api/v1"

    def get_request(self):
        self.connections += 1
        return super().get_request()

    def shutdown_request(self, request):
        super().shutdown_request(request)
        self.closed += 1  # connections that ended (the client hung up, or the handler did)

    def handle_error(self, request, client_address):
        # Scripted resets and clients that hang up end a handler with these on purpose; stay quiet, since a
        # handler thread that outlives its test would print into the next test's output.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _sse(obj):
    return b"data: " + (obj if isinstance(obj, bytes) else json.dumps(obj).encode()) + b"\n\n"


def _chunk(text=None, *, finish=None, tool_calls=None, reasoning=None, model="venice-uncensored"):
    delta = {}
    if text is not None:
        delta["content"] = text
    if reasoning is not None:
        delta["reasoning_content"] = reasoning
    if tool_calls is not None:
        delta["tool_calls"] = tool_calls
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


class _FakeHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def _send(self, status, obj, headers=(), content_type="application/json"):
        body = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("CF-RAY", "8c1f-TEST")
        self.send_header("x-venice-version", "20261124.1")
        self.send_header("x-venice-balance-usd", "12.5")
        self.send_header("x-venice-balance-diem", "3")
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _authorized(self):
        if self.headers.get("Authorization") == f"Bearer {KEY}":
            return True
        self._send(401, {"error": "Authentication failed"})
        return False

    def do_GET(self):
        self.server.requests.append(("GET", self.path, dict(self.headers), None))
        if self.server.get_script:
            self.server.get_script.pop(0)(self)
            return
        path = self.path.split("?")[0]
        if path == "/api/v1/models":
            self._send(200, {"object": "list", "type": "text", "data": FAKE_MODELS})
        elif path == "/api/v1/models/traits":
            self._send(200, {"object": "list", "type": "text", "data": {"default": "zai-org-glm-5-2"}})
        elif path == "/api/v1/models/compatibility_mapping":
            self._send(200, {"object": "list", "type": "text", "data": {"gpt-4o": "zai-org-glm-5-2"}})
        elif path == "/api/v1/api_keys/rate_limits":
            if self._authorized():
                self._send(200, {"data": {"accessPermitted": True, "balances": {"USD": 12.5, "DIEM": 3}}})
        else:
            self._send(404, {"error": "Not found"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"null")
        self.server.requests.append(("POST", self.path, dict(self.headers), body))
        if self.server.script:
            self.server.script.pop(0)(self)
            return
        if not self._authorized():
            return
        if self.path == "/api/v1/embeddings":
            inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
            data = [{"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]} for i in range(len(inputs))]
            self._send(200, {"object": "list", "data": data, "model": body["model"], "usage": {"prompt_tokens": 2, "total_tokens": 2}})
            return
        if body.get("model") == "no-such-model":
            self._send(404, {"error": "Specified model not found"})
            return
        messages = body["messages"]
        last = messages[-1]
        wants_tool = body.get("tools") and last["role"] != "tool"
        if last["role"] == "tool":
            answer = f"The tool said: {last['content']}"
        else:
            content = last["content"] if isinstance(last["content"], str) else "parts"
            answer = f"Echo: {content}"
        if body.get("stream"):
            self._stream(body, answer, wants_tool)
        else:
            message = {"role": "assistant", "content": None if wants_tool else answer}
            if wants_tool:
                name = body["tools"][0]["function"]["name"]
                message["tool_calls"] = [
                    {"id": "call_1", "type": "function", "function": {"name": name, "arguments": '{"city": "Paris"}'}}
                ]
            self._send(
                200,
                {
                    "id": "chatcmpl-1",
                    "object": "chat.completion",
                    "created": 1,
                    "model": body["model"],
                    "choices": [
                        {"index": 0, "message": message, "finish_reason": "tool_calls" if wants_tool else "stop"}
                    ],
                    "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
                    "cost": {"usd": 0.0001, "diem": 0},
                },
                [("x-venice-model-id", body["model"])],
            )

    def _stream(self, body, answer, wants_tool):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("CF-RAY", "8c1f-STREAM")
        self.end_headers()
        model = body["model"]
        events = []
        if wants_tool:
            name = body["tools"][0]["function"]["name"]
            events.append(_chunk(tool_calls=[{"index": 0, "id": "call_1", "type": "function", "function": {"name": name, "arguments": '{"ci'}}], model=model))
            events.append(_chunk(tool_calls=[{"index": 0, "function": {"arguments": 'ty": "Paris"}'}}], finish="tool_calls", model=model))
        else:
            for word in re.findall(r"\S+\s*", answer):
                events.append(_chunk(word, model=model))
            events.append(_chunk(finish="stop", model=model))
        events.append({"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}})
        for event in events:
            try:
                write_chunk(self, _sse(event))
            except OSError:  # the client went away
                self.server.aborted.set()
                return
            if model == "slow":
                time.sleep(0.3)
        write_chunk(self, _sse(b"[DONE]"))
        write_chunk(self, b"")


def write_chunk(handler, data):
    handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
    handler.wfile.flush()


@contextlib.contextmanager
def running(server):
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def fake():
    with running(FakeVenice()) as server:
        yield server


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    """No stray configuration: VENICE_*, proxies and SSL variables out, a private cwd and config home."""
    for name in list(os.environ):
        if name.startswith("VENICE_") or name.lower() in ("http_proxy", "https_proxy", "all_proxy", "ssl_cert_file", "ssl_cert_dir"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("NO_PROXY", "*")
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def fake_env(fake, monkeypatch, tmp_path):
    monkeypatch.setenv("VENICE_API_KEY", KEY)
    monkeypatch.setenv("VENICE_BASE_URL", fake.url)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("NO_PROXY", "*")
    monkeypatch.chdir(tmp_path)
    return {**os.environ}


###############################################################################
# Module #######################################################################
###############################################################################


def test_all_is_pinned_and_documented():
    assert venice.__all__ == [
        "AsyncChatStream", "AsyncRawResponse", "AsyncResponseStream", "AsyncSpeechStream", "AsyncVeniceClient",
        "AttrDict", "ChatResponse", "ChatStream", "Config", "ImageResult", "MockTransport", "Model", "ModelList", "NewApiKey", "Pages",
        "RawResponse", "Response", "ResponseMeta", "ResponseStream",
        "RetryPolicy", "ServerSentEvent", "SpeechResult", "SpeechStream", "ToolCall", "VeniceClient", "arun_tool_calls", "chat", "credentials_path", "estimate_tokens",
        "function_to_tool", "iter_sse", "list_models", "load_config", "mask_key", "normalize_stop", "parse_dotenv",
        "retry_delay", "run_tool_calls", "start_proxy",
        "APIConnectionError", "APITimeoutError", "ConfigError", "InvalidRequestError", "NotFoundError",
        "PaymentRequiredError", "PermissionDeniedError", "RateLimitError", "ServerError", "StreamError",
        "UnauthorizedError", "UnprocessableEntityError", "VeniceAPIError", "VeniceError",
        "APIError", "APIStatusError", "AsyncOpenAI", "AuthenticationError", "BadRequestError", "ChatCompletion",
        "InternalServerError", "OpenAI",
    ]  # fmt: skip
    assert not {"main", "CHAT_REQUEST_KEYS", "EMBEDDING_REQUEST_KEYS"} & set(venice.__all__)  # internals stay out
    assert callable(venice.main)  # (still reached by the console script and python -m venice)
    for name in venice.__all__:
        obj = getattr(venice, name)
        if callable(obj):
            assert obj.__doc__ and obj.__doc__.strip(), name


def test_venice_imports_only_the_standard_library():
    import ast

    with open(os.path.join(HERE, "venice.py"), encoding="utf-8") as fh:
        tree = ast.parse(fh.read())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            found.add(node.module.split(".")[0])
    if sys.version_info >= (3, 10):
        assert found <= sys.stdlib_module_names
    else:  # no stdlib_module_names yet: each module must be built in or live in the standard library's folder
        import importlib.util
        import sysconfig

        stdlib = os.path.realpath(sysconfig.get_paths()["stdlib"])
        for name in found:
            origin = importlib.util.find_spec(name).origin
            assert origin in ("built-in", "frozen") or (
                os.path.realpath(origin).startswith(stdlib + os.sep) and "site-packages" not in origin
            ), name
    assert {"json", "http", "ssl", "urllib"} <= found


def run_python(code, env=None, **kw):
    base = {k: v for k, v in os.environ.items() if not k.startswith("VENICE_")}
    return subprocess.run([sys.executable, "-c", code], cwd=HERE, env={**base, **(env or {})}, capture_output=True, text=True, timeout=60, **kw)


def test_import_is_lazy_and_starts_no_threads():
    result = run_python(
        "import sys, threading; import venice; venice.VeniceClient(api_key='x'); "
        "print(sorted(m for m in ('http.client', 'ssl', 'email', 'email.utils', 'argparse', 'urllib.request', 'http.server') if m in sys.modules)); "
        "print(threading.active_count())"
    )
    assert result.stdout == "[]\n1\n", result.stderr
    # Audit events while importing: no file but the module's own source, no socket, no thread.
    watch = (
        "import sys; seen = []\n"
        "sys.addaudithook(lambda e, a: seen.append((e, str(a[0]))) if e in ('open', 'socket.connect', "
        "'socket.__new__', '_thread.start_new_thread') else None)\n"
        "import venice\n"
        "print([e for e, a in seen if not (e == 'open' and ('venice' in a or a.endswith(('.pyc', '.py'))))])"
    )
    assert run_python(watch).stdout == "[]\n"


def test_works_without_home_or_with_an_unreadable_one(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o000)
    code = "import venice; c = venice.load_config(); print(c.api_key, c.base_url, venice.credentials_path().endswith('credentials'))"
    env = {k: v for k, v in os.environ.items() if k not in ("HOME", "XDG_CONFIG_HOME")}
    result = subprocess.run([sys.executable, "-c", code], cwd=HERE, env=env, capture_output=True, text=True, timeout=60)
    assert result.stdout == "None https://api.venice.ai/api/v1 True\n", result.stderr
    not_a_folder = tmp_path / "file"  # unreadable even for root, who can read a mode-000 folder
    not_a_folder.write_text("")
    for home in (locked, not_a_folder):
        result = run_python(code, {"HOME": str(home), "XDG_CONFIG_HOME": ""})
        assert result.stdout == "None https://api.venice.ai/api/v1 True\n", result.stderr


NO_SSL = """
import sys
class NoSSL:
    def find_spec(self, name, path=None, target=None):
        if name in ("ssl", "_ssl"):
            raise ImportError("no ssl in this build")
sys.meta_path.insert(0, NoSSL())
import venice
c = venice.VeniceClient(api_key="k", base_url="https://api.venice.ai/api/v1", max_retries=0)
try:
    c.models.list()
except venice.ConfigError as err:
    print("ConfigError:", err)
print(venice.VeniceClient(api_key="k", base_url=sys.argv[1]).models.list()[0].id)
"""


def test_python_without_ssl(fake):
    result = subprocess.run([sys.executable, "-c", NO_SSL, fake.url], cwd=HERE, capture_output=True, text=True, timeout=60)
    assert result.stdout.splitlines() == [
        "ConfigError: This Python was built without the ssl module, so https:// URLs can't be used. "
        "Install a Python with ssl support (e.g. the python3 package of your system).",
        "venice-uncensored",
    ], result.stderr


# What a type checker must know about results (issue 10, item 23): each call's result type, and the
# fields of the objects inside, down to a streamed chunk's delta.
TYPED_PROGRAM = """
from collections.abc import Iterator
from typing import Optional, Union

from typing_extensions import assert_type

import venice

client = venice.VeniceClient(api_key="x")
r = client.chat.complete("hi", model="m")
assert_type(r, venice.ChatResponse)
assert_type(r.choices[0].message, venice.ChatCompletionMessage)
assert_type(r.choices[0].message.content, Optional[str])
assert_type(r.usage.total_tokens, int)
assert_type(r.cost, Optional[venice.Cost])
assert_type(r.venice_parameters, Optional[venice.VeniceParameters])
assert_type(r.meta, venice.ResponseMeta)
assert_type(r.text, Optional[str])
assert_type(r.tool_calls, list[venice.ToolCall])
stream = client.chat.complete("hi", model="m", stream=True)
assert_type(stream, venice.ChatStream)
assert_type(iter(stream), Iterator[str])
assert_type(stream.usage, Optional[venice.CompletionUsage])
for chunk in stream.chunks():
    assert_type(chunk, venice.ChatCompletionChunk)
    assert_type(chunk.choices[0].delta.content, Optional[str])
assert_type(client.chat.complete("hi", model="m", stream=bool(r)), Union[venice.ChatResponse, venice.ChatStream])
assert_type(client.chat.completions.create(model="m", messages=[]), venice.ChatResponse)
shim = venice.OpenAI(api_key="x")
completion = shim.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
assert_type(completion, venice.ChatResponse)
with shim.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}], stream=True) as chunks:
    for c in chunks:
        assert_type(c, venice.ChatCompletionChunk)
        assert_type(c.choices[0].delta.content, Optional[str])
        assert_type(c.usage, Optional[venice.CompletionUsage])
assert_type(shim.models.list()[0].id, str)
assert_type(shim.models.list()[0].context_length, Optional[int])
e = shim.embeddings.create(input="x", model="e")
assert_type(e, venice.CreateEmbeddingResponse)
assert_type(e.data[0].embedding, list[float])
speech = client.audio.speech("hi")
assert_type(speech, venice.SpeechResult)
assert_type(speech.content, bytes)
for audio_block in client.audio.speech("hi", stream=True):
    assert_type(audio_block, bytes)


async def speak(a: venice.AsyncVeniceClient) -> None:
    assert_type(await a.audio.speech("hi"), venice.SpeechResult)
    audio = await a.audio.speech("hi", stream=True)
    assert_type(audio, venice.AsyncSpeechStream)
    async for block in audio:
        assert_type(block, bytes)
"""

# A newcomer's typos, each of which a type checker must report (line numbers matter: see below).
TYPO_PROGRAM = """import venice

client = venice.VeniceClient(api_key="x")
r = client.chat.complete("hi", model="m")
print(r.txt)
stream = client.chat.complete("hi", model="m", stream=True)
print(stream.txet)
for chunk in stream.chunks():
    print(chunk.choices[0].delta.contnet)
print(r.usage.prompt_token)
print(r.choices[0].mesage.content)
print(r.message.tool_calls)
print(r.cost.usdd if r.cost else None)
print(r.venice_parameters.web_search_citation if r.venice_parameters else None)
print(r.meta.request_idd)
print(stream.usage.total_tokens)
either = client.chat.complete("hi", model="m", stream=bool(r))
print(either.choices)
wrong: venice.ChatResponse = client.chat.complete("hi", model="m", stream=True)
shim = venice.OpenAI(api_key="x")
completion = shim.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
print(completion.choices[0].message.contnet)
for c in shim.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}], stream=True):
    print(c.choices[0].delta.contnet)
print(shim.models.list()[0].context_len)
print(shim.embeddings.create(input="x", model="e").data[0].embeding)
"""

TYPO_ERRORS = [
    'typos.py:5: error: "ChatResponse" has no attribute "txt"  [attr-defined]',
    'typos.py:7: error: "ChatStream" has no attribute "txet"  [attr-defined]',
    'typos.py:9: error: "ChoiceDelta" has no attribute "contnet"  [attr-defined]',
    'typos.py:10: error: "CompletionUsage" has no attribute "prompt_token"  [attr-defined]',
    'typos.py:11: error: "Choice" has no attribute "mesage"  [attr-defined]',
    'typos.py:12: error: Item "None" of "ChatCompletionMessage | None" has no attribute "tool_calls"  [union-attr]',
    'typos.py:13: error: "Cost" has no attribute "usdd"  [attr-defined]',
    'typos.py:14: error: "VeniceParameters" has no attribute "web_search_citation"  [attr-defined]',
    'typos.py:15: error: "ResponseMeta" has no attribute "request_idd"  [attr-defined]',
    'typos.py:16: error: Item "None" of "CompletionUsage | None" has no attribute "total_tokens"  [union-attr]',
    'typos.py:18: error: Item "ChatStream" of "ChatResponse | ChatStream" has no attribute "choices"  [union-attr]',
    'typos.py:19: error: Incompatible types in assignment (expression has type "ChatStream", '
    'variable has type "ChatResponse")  [assignment]',
    'typos.py:22: error: "ChatCompletionMessage" has no attribute "contnet"  [attr-defined]',
    'typos.py:24: error: "ChoiceDelta" has no attribute "contnet"  [attr-defined]',
    'typos.py:25: error: "Model" has no attribute "context_len"  [attr-defined]',
    'typos.py:26: error: "Embedding" has no attribute "embeding"  [attr-defined]',
]


def test_type_checker_sees_typed_results_and_catches_typos(tmp_path):
    import importlib.util

    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed here (python -m pip install mypy): README's examples and the typo program were not type-checked")
    with open(os.path.join(HERE, "README.md"), encoding="utf-8") as fh:
        blocks = re.findall(r"```python\n(.*?)```", fh.read(), re.S)
    assert len(blocks) >= 8
    (tmp_path / "readme_examples.py").write_text("\n".join(blocks), encoding="utf-8")  # one namespace, as README reads
    (tmp_path / "typed.py").write_text(TYPED_PROGRAM, encoding="utf-8")
    (tmp_path / "typos.py").write_text(TYPO_PROGRAM, encoding="utf-8")
    # The module itself (venice-stubs next to it is what an installed wheel gives; .ci/run checks that).
    os.symlink(os.path.join(HERE, "venice.py"), tmp_path / "venice.py")
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--no-incremental", "--cache-dir", os.devnull,
         "--no-error-summary", "--no-pretty", "--hide-error-context", "--no-color-output",
         "readme_examples.py", "typed.py", "typos.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    # mypy's "; maybe …?" spelling hints vary between versions, and older ones (or older Pythons) write
    # Optional[X] and Union[X, Y] for X | None and X | Y; the rest of each line is pinned.
    found = []
    for line in result.stdout.splitlines():
        line = re.sub(r'; maybe "[^"]*"\?', "", line)
        line = re.sub(r"Optional\[([^][]*)\]", r"\1 | None", line)
        found.append(re.sub(r"Union\[([^][]*)\]", lambda m: m.group(1).replace(", ", " | "), line))
    assert (found, result.stderr) == (TYPO_ERRORS, "")


def test_types_cost_nothing_at_run_time():
    # -S: a site .pth file (certifi's, for one) may import typing before venice is imported.
    code = (
        "import sys, venice; print(sorted(m for m in ('typing', 'dataclasses') if m in sys.modules)); "
        "print(venice.ChatCompletionChunk is venice.CompletionUsage is venice.AttrDict, venice.Chat.complete.__name__)"
    )
    result = subprocess.run([sys.executable, "-S", "-c", code], cwd=HERE, capture_output=True, text=True, timeout=60)
    assert result.stdout == "[]\nTrue complete\n", result.stderr


###############################################################################
# Errors #######################################################################
###############################################################################

ERROR_CASES = [
    (400, {"error": "Invalid request", "details": {"_errors": [], "messages": {"_errors": ["Required"]}}}, venice.InvalidRequestError, None, "Invalid request; messages: Required"),
    (400, {"error": "Invalid request", "issues": [{"path": ["temperature"], "message": "Too big"}]}, venice.InvalidRequestError, None, "Invalid request; temperature: Too big"),
    (400, {"error": {"message": "Too long", "type": "invalid_request_error", "code": "context_length_exceeded"}}, venice.InvalidRequestError, "context_length_exceeded", "Too long"),
    (401, {"error": "Authentication failed"}, venice.UnauthorizedError, "AUTHENTICATION_FAILED", "Authentication failed"),
    (402, {"error": "Insufficient USD or Diem balance to complete request"}, venice.PaymentRequiredError, "INSUFFICIENT_BALANCE", "Insufficient USD or Diem balance to complete request"),
    (402, {"x402Version": 1, "accepts": []}, venice.PaymentRequiredError, None, "Payment required: no API key or wallet credentials were sent"),
    (403, {"error": "Unauthorized access", "code": "API_ACCESS_DISABLED"}, venice.PermissionDeniedError, "API_ACCESS_DISABLED", "Unauthorized access"),
    (404, {"error": "Specified model not found"}, venice.NotFoundError, "MODEL_NOT_FOUND", "Specified model not found"),
    (410, {"error": "This endpoint has been retired"}, venice.NotFoundError, None, "This endpoint has been retired"),
    (409, {"error": {"code": "needs_consent", "message": "Consent needed"}}, venice.VeniceAPIError, "needs_consent", "Consent needed"),
    (413, {"code": "PAYLOAD_TOO_LARGE", "error": "File exceeds 25 MB."}, venice.InvalidRequestError, "PAYLOAD_TOO_LARGE", "File exceeds 25 MB."),
    (415, {"error": "Invalid request content-type"}, venice.InvalidRequestError, None, "Invalid request content-type"),
    (422, {"error": "Prompt violates policy", "suggested_prompt": "x"}, venice.UnprocessableEntityError, None, "Prompt violates policy"),
    (429, {"error": "Rate limit exceeded"}, venice.RateLimitError, "RATE_LIMIT_EXCEEDED", "Rate limit exceeded"),
    (429, {"error": "The model is currently overloaded, please try again later"}, venice.RateLimitError, "MODEL_OVERLOADED", "The model is currently overloaded, please try again later"),
    (500, {"error": "Inference failed", "code": "INFERENCE_FAILED"}, venice.ServerError, "INFERENCE_FAILED", "Inference failed"),
    (502, b"<html><head><title>502 Bad Gateway</title></head><body><center>nginx</center></body></html>", venice.ServerError, None, "502 Bad Gateway: nginx"),
    (503, b"", venice.ServerError, None, "(empty response body)"),
    (504, {"error": "Took too long"}, venice.ServerError, "REQUEST_TIMEOUT", "Took too long"),
]  # fmt: skip


@pytest.mark.parametrize("status,body,cls,code,message", ERROR_CASES)
def test_error_statuses_and_body_shapes(fake, status, body, cls, code, message):
    ctype = "text/html" if isinstance(body, bytes) else "application/json"
    fake.script.append(lambda h: h._send(status, body, content_type=ctype))
    with venice.VeniceClient(KEY, base_url=fake.url, max_retries=0) as c, pytest.raises(venice.VeniceError) as info:
        c.chat.complete("hi", model="m")
    err = info.value
    assert type(err) is cls
    assert (err.status_code, err.code, err.message, err.request_id) == (status, code, message, "8c1f-TEST")
    assert err.body == (body if isinstance(body, dict) else (body.decode() or None))
    assert err.headers["cf-ray"] == "8c1f-TEST" and err.meta.venice_version == "20261124.1"
    assert str(err).startswith(f"{status} ") and f"{message} (request id 8c1f-TEST)" in str(err)
    assert KEY not in str(err) + repr(err)


def test_error_str_reads_like_status_message_request_id():
    err = venice.UnauthorizedError("Authentication failed", status_code=401, request_id="8c1f")
    assert str(err) == "401 Unauthorized: Authentication failed (request id 8c1f)"
    assert str(venice._api_error(402, {}, b'{"error":"Insufficient USD or Diem balance"}')).endswith(
        "— top up the balance or raise the key's spend limit at https://venice.ai/settings/api"
    )


@pytest.mark.parametrize(
    "body,ctype,fragment",
    [
        (b"<html><title>Just a moment...</title></html>", "text/html", "not valid JSON (text/html): Just a moment..."),
        (b'{"choices": [', "application/json", "not valid JSON (application/json): {\"choices\": ["),
        (b"", "application/json", "with an empty body"),
    ],
)
def test_invalid_or_empty_200_body_is_an_api_error(fake, body, ctype, fragment):
    fake.script.append(lambda h: h._send(200, body, content_type=ctype))
    with venice.VeniceClient(KEY, base_url=fake.url, max_retries=0) as c, pytest.raises(venice.VeniceAPIError) as info:
        c.chat.complete("hi", model="m")
    assert type(info.value) is venice.VeniceAPIError and info.value.status_code == 200 and fragment in str(info.value)


###############################################################################
# Config #######################################################################
###############################################################################


def write(path, text, mode=0o600):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return str(path)


def test_config_precedence_argument_env_dotenv_credentials_default(tmp_path):
    cred = write(tmp_path / "cred", "VENICE_API_KEY=from-credentials-1\nVENICE_MODEL=cred-model\nVENICE_TIMEOUT=7\nVENICE_MAX_RETRIES=5\n")
    dotenv = write(tmp_path / ".env", "VENICE_API_KEY=from-dotenv-0001\nVENICE_MODEL=dotenv-model\n")
    env = {"VENICE_API_KEY": "from-environment", "VENICE_BASE_URL": "http://localhost:1/api/v1/"}
    c = venice.load_config(api_key="from-argument-01", env_file=dotenv, environ=env, credentials_path=cred)
    assert (c.api_key, c.key_source, c.base_url, c.default_model, c.timeout, c.max_retries) == (
        "from-argument-01", "argument", "http://localhost:1/api/v1", "dotenv-model", 7.0, 5,
    )
    c = venice.load_config(env_file=dotenv, environ=env, credentials_path=cred)
    assert (c.api_key, c.key_source) == ("from-environment", "environment")
    c = venice.load_config(env_file=dotenv, environ={}, credentials_path=cred)
    assert (c.api_key, c.key_source, c.base_url) == ("from-dotenv-0001", ".env", venice.DEFAULT_BASE_URL)
    c = venice.load_config(env_file=False, environ={}, credentials_path=cred)
    assert (c.api_key, c.key_source, c.default_model) == ("from-credentials-1", "credentials", "cred-model")
    c = venice.load_config(env_file=False, environ={}, credentials_path=str(tmp_path / "missing"))
    assert (c.api_key, c.key_source, c.timeout, c.max_retries, c.default_model) == (None, None, 600.0, 2, None)


def test_config_reads_dotenv_in_cwd_and_default_credentials_path(tmp_path, monkeypatch):
    write(tmp_path / ".env", "VENICE_MODEL=cwd-model\n")
    write(tmp_path / "config" / "venice" / "credentials", "VENICE_API_KEY=stored-key-12345\n")
    c = venice.load_config()
    assert (c.default_model, c.api_key, c.key_source) == ("cwd-model", "stored-key-12345", "credentials")
    assert venice.credentials_path({"HOME": "/home/u"}) == "/home/u/.config/venice/credentials"
    assert venice.credentials_path({"XDG_CONFIG_HOME": "/x", "HOME": "/home/u"}) == "/x/venice/credentials"


DOTENV = """\ufeff# comment line

export A=plain
B = spaced   # trailing comment
C='single $HOME \\n literal'
D="double\\n\\t\\"quoted\\" \\\\ x"
E=
F=#not-a-comment
G="multi
line"
H=a#b
this line is broken
I="unterminated
J=last
"""


def test_parse_dotenv_forms_and_warnings():
    with pytest.warns(UserWarning) as caught:
        values = venice.parse_dotenv(DOTENV, source="t.env")
    assert values == {
        "A": "plain",
        "B": "spaced",
        "C": "single $HOME \\n literal",
        "D": 'double\n\t"quoted" \\ x',
        "E": "",
        "F": "#not-a-comment",
        "G": "multi\nline",
        "H": "a#b",
        "J": "last",
    }
    messages = [str(w.message) for w in caught]
    assert messages == ["t.env: line 12 is not KEY=VALUE; skipped", "t.env: line 13 is not KEY=VALUE; skipped"]
    assert not any("broken" in m or "unterminated" in m for m in messages)


def test_parse_dotenv_bad_quoted_value_costs_only_its_own_line():
    text = "A='x' trailing\nB=1\nC=\"open\nD=2\nE=\"closes\" here\nF=3"
    with pytest.warns(UserWarning) as caught:
        values = venice.parse_dotenv(text)
    assert values == {"B": "1", "D": "2", "F": "3"}
    assert [str(w.message) for w in caught] == [f".env: line {n} is not KEY=VALUE; skipped" for n in (1, 3, 5)]


def test_parse_dotenv_unterminated_quote_in_a_long_file_stays_linear():
    started = time.monotonic()
    with pytest.warns(UserWarning):
        values = venice.parse_dotenv('A="never closed\n' + "B=1\n" * 20_000)
    assert values == {"B": "1"} and time.monotonic() - started < 10  # rescanning per line took minutes


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX only")
def test_env_file_that_is_a_fifo_is_not_read(tmp_path):
    fifo = tmp_path / "env.fifo"
    os.mkfifo(fifo)
    result = []
    reader = threading.Thread(target=lambda: result.append(venice.load_config(env_file=str(fifo), environ={})), daemon=True)
    reader.start()
    reader.join(5)
    assert result and result[0].api_key is None  # opening a FIFO for reading would block forever


@pytest.mark.parametrize(
    "kwargs, says",
    [
        ({"config": "x"}, "config must be a Config"),
        ({"retry": "x"}, "retry must be a RetryPolicy"),
        ({"default_headers": "X-A: 1"}, "default_headers must be a dict"),
        ({"env_file": 3}, "env_file must be a path or False"),
    ],
)
def test_client_arguments_of_the_wrong_type(kwargs, says):
    with pytest.raises(venice.ConfigError, match=says):
        venice.VeniceClient(KEY, base_url="http://127.0.0.1:9/v1", **kwargs)
    with pytest.raises(venice.ConfigError, match="ssl_context must be an ssl.SSLContext"):
        venice.load_config(api_key=KEY, ssl_context="x", env_file=False, environ={})


def test_infinite_timeout_means_no_limit(fake, monkeypatch):
    monkeypatch.setenv("VENICE_TIMEOUT", "inf")
    with venice.VeniceClient(KEY, base_url=fake.url, connect_timeout=float("inf"), env_file=False) as c:
        assert c.config.timeout == c.config.connect_timeout == 1e8  # socket timeouts overflow far above
        assert c.chat.complete("x", model="m", timeout=float("inf")).text == "Echo: x"


def test_key_pasted_into_base_url_is_masked_in_the_error():
    with pytest.raises(venice.ConfigError) as info:
        venice.load_config(api_key=KEY, base_url=f"http://example.com/{KEY}", env_file=False, environ={})
    assert KEY not in str(info.value) and "sk-…1234" in str(info.value)


def test_parse_dotenv_takes_bytes():
    assert venice.parse_dotenv(b"A=caf\xc3\xa9\n") == {"A": "café"}


def test_malformed_proxy_variable_is_a_config_error(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://user:secret@[::1")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    # (the proxy is read before any connection is made: nothing leaves the machine)
    with venice.VeniceClient(KEY, base_url="https://api.venice.ai/api/v1") as c:
        with pytest.raises(venice.ConfigError, match="proxy set in the environment") as info:
            c.models.list()
    assert "secret" not in str(info.value)


def test_load_config_never_mutates_environ(tmp_path):
    dotenv = write(tmp_path / "x.env", "VENICE_API_KEY=dotenv-key-123456\nOTHER=1\n")
    before = dict(os.environ)
    venice.load_config(env_file=dotenv)
    assert dict(os.environ) == before


def test_bad_numbers_name_the_variable(tmp_path):
    with pytest.raises(venice.ConfigError) as info:
        venice.load_config(environ={"VENICE_TIMEOUT": "abc"}, env_file=False)
    assert str(info.value) == "VENICE_TIMEOUT must be a positive number of seconds, got 'abc'"
    dotenv = write(tmp_path / ".env", "VENICE_MAX_RETRIES=-1\n")
    with pytest.raises(venice.ConfigError) as info:
        venice.load_config(environ={}, env_file=dotenv)
    assert str(info.value) == "VENICE_MAX_RETRIES (from .env file) must be a whole number >= 0, got '-1'"


def test_world_readable_credentials_file_warns(tmp_path):
    cred = write(tmp_path / "cred", "VENICE_API_KEY=stored-key-12345\n", mode=0o644)
    with pytest.warns(UserWarning, match=r"readable by other users; run: chmod 600"):
        venice.load_config(environ={}, env_file=False, credentials_path=cred)


def test_key_whitespace_stripped_and_malformed_keys_refused(fake):
    c = venice.load_config(api_key=f"  {KEY}\n", environ={}, env_file=False)
    assert c.api_key == KEY
    for bad in ("sk-abc def-12345", "sk-abc\r\nX-Evil: 1", "sk-ключ-12345678", "sk-\x00-123456789"):
        with pytest.raises(venice.ConfigError) as info:
            venice.VeniceClient(bad, base_url=fake.url)
        assert "The API key is malformed" in str(info.value) and bad.strip() not in str(info.value)
    with pytest.raises(venice.ConfigError) as info:
        venice.load_config(environ={"VENICE_API_KEY": "two words"}, env_file=False)
    assert "malformed" in str(info.value) and "two words" not in str(info.value) and "VENICE_API_KEY" in str(info.value)
    assert fake.requests == []


def test_missing_key_lists_the_ways_to_set_one(fake):
    with venice.VeniceClient(base_url=fake.url) as c, pytest.raises(venice.ConfigError) as info:
        c.chat.complete("hi", model="m")
    assert str(info.value) == (
        "No API key found. Set VENICE_API_KEY, add VENICE_API_KEY=… to a .env file, run `venice auth set`, "
        "or pass api_key=… to VeniceClient."
    )
    assert fake.requests == []


@pytest.mark.parametrize(
    "url",
    [
        "http://api.venice.ai/api/v1",
        "http://10.0.0.1/v1",
        "ftp://x/v1",
        "https://user:pw@api.venice.ai/api/v1",
        "http://user:pw@example.com/v1",  # credentials are refused before the http check could show them
        "https://user:pw@api.venice.ai:99999/v1",
        "https://api.venice.ai/api/v1?x=1",
        "https://api.venice.ai/api/v1#top",
        "https://a..com/api/v1",  # an empty label: http.client's IDNA encoding would fail at the first call
        "nonsense",
        5,
    ],
)
def test_base_url_must_be_https_except_loopback(url):
    with pytest.raises(venice.ConfigError) as info:
        venice.VeniceClient(KEY, base_url=url)
    assert "pw" not in str(info.value)


@pytest.mark.parametrize("url", ["http://localhost:8080/v1", "http://127.0.0.1/v1", "http://127.1.2.3:9/v1", "http://[::1]:8/v1", "https://api.venice.ai/api/v1/"])
def test_base_url_loopback_http_and_trailing_slash_ok(url):
    assert venice.VeniceClient(KEY, base_url=url).config.base_url == url.rstrip("/")


def test_trailing_slash_gives_no_double_slash(fake):
    with venice.VeniceClient(KEY, base_url=fake.url + "/") as c:
        c.models.list()
    assert fake.requests[-1][1] == "/api/v1/models?type=text"


def test_key_is_masked_everywhere(fake, caplog):
    import logging

    caplog.set_level(logging.DEBUG, logger="venice")
    config = venice.load_config(api_key=KEY, environ={}, env_file=False)
    client = venice.VeniceClient(config=config, base_url=fake.url, max_retries=1, sleep=lambda s: None)
    fake.script += [lambda h: h._send(503, {"error": "busy"}), lambda h: h._send(401, {"error": "Authentication failed"})]
    with pytest.raises(venice.UnauthorizedError) as info:
        client.chat.complete("hi", model="m")
    text = repr(config) + str(config) + repr(client) + str(info.value) + repr(info.value) + caplog.text
    assert KEY not in text and "sk-…1234" in repr(config) and "sk-…1234" in repr(client)
    assert venice.mask_key("vn-abcdefgh-1234") == "vn-…1234" and venice.mask_key("short") == "…" and venice.mask_key(None) == "(none)"
    assert all(KEY not in r[1] for r in fake.requests)  # never in a URL
    client.close()


@pytest.mark.parametrize("url", ["https://attacker.example/api/v1", "http://127.0.0.1:9/v1", "http://localhost:9"])
def test_a_dotenv_base_url_is_not_combined_with_a_key_from_elsewhere(tmp_path, url):
    write(tmp_path / ".env", f"VENICE_BASE_URL={url}\n")
    cred = write(tmp_path / "cred", "VENICE_API_KEY=cred-key-1234567890\n")
    for kw in ({"environ": {"VENICE_API_KEY": KEY}}, {"environ": {}, "credentials_path": cred}, {"api_key": KEY, "environ": {}}):
        with pytest.raises(venice.ConfigError) as info:
            venice.load_config(**kw)
        text = str(info.value)
        assert "the .env file in this folder sets VENICE_BASE_URL" in text and "pass base_url=" in text
        assert KEY not in text and "cred-key" not in text
    assert "VENICE_API_KEY" in str(pytest.raises(venice.ConfigError, venice.load_config, environ={"VENICE_API_KEY": KEY}).value)


def test_a_dotenv_base_url_is_used_with_a_key_from_the_same_dotenv_or_when_venice_is_the_host(tmp_path):
    write(tmp_path / ".env", f"VENICE_BASE_URL=http://127.0.0.1:9/v1\nVENICE_API_KEY={KEY}\n")
    config = venice.load_config(environ={})
    assert (config.base_url, config.api_key, config.key_source) == ("http://127.0.0.1:9/v1", KEY, ".env")
    write(tmp_path / ".env", "VENICE_BASE_URL=https://api.venice.ai/api/v2\n")
    assert venice.load_config(environ={"VENICE_API_KEY": KEY}).base_url == "https://api.venice.ai/api/v2"
    write(tmp_path / ".env", "VENICE_BASE_URL=https://elsewhere.example/v1\n")
    # the user's own choices: a URL from the environment or an argument, or a .env file named explicitly
    assert venice.load_config(environ={"VENICE_API_KEY": KEY}, base_url="https://a.example/v1").base_url == "https://a.example/v1"
    env = {"VENICE_API_KEY": KEY, "VENICE_BASE_URL": "https://b.example/v1"}
    assert venice.load_config(environ=env).base_url == "https://b.example/v1"
    assert venice.load_config(environ={"VENICE_API_KEY": KEY}, env_file=tmp_path / ".env").base_url == "https://elsewhere.example/v1"
    assert venice.load_config(environ={}).api_key is None  # no key: nothing to leak


def test_a_key_pasted_into_the_port_is_never_echoed():
    for url in (f"https://api.venice.ai:{KEY}/api/v1", "https://api.venice.ai:99999/api/v1"):
        with pytest.raises(venice.ConfigError) as info:
            venice.VeniceClient("other-key-1234567890", base_url=url)
        err = info.value
        assert str(err) == "base_url can't be used: its port is not a number from 0 to 65535"
        assert err.__context__ is None and err.__cause__ is None  # urllib's text quoted the port
    with pytest.raises(venice.ConfigError) as info:  # urllib quotes a bracketed host too
        venice.load_config(api_key="other-key-1234567890", base_url=f"https://[{KEY}]/api/v1", env_file=False, environ={})
    assert KEY not in str(info.value) and "brackets are for IPv6 addresses" in str(info.value)


def test_oversized_settings_files_are_refused_with_a_warning(tmp_path):
    big = "X=" + "a" * 1_000_001 + "\n"
    write(tmp_path / ".env", f"VENICE_API_KEY={KEY}\n" + big)
    cred = write(tmp_path / "cred", f"VENICE_MODEL=m\n{big}")
    with pytest.warns(UserWarning) as caught:
        config = venice.load_config(environ={}, credentials_path=cred)
    assert config.api_key is None and config.default_model is None
    assert sorted(str(w.message).split(" is ")[1] for w in caught) == ["larger than 1 MB; not read as settings"] * 2


###############################################################################
# Transport ####################################################################
###############################################################################


def test_headers_user_agent_auth_and_json(fake):
    with venice.VeniceClient(KEY, base_url=fake.url, default_headers={"X-Team": "a"}) as c:
        c.request("POST", "/embeddings", json={"input": "x", "model": "e", "user": None, "nested": [{"a": None, "b": 1}]})
    method, path, headers, body = fake.requests[-1]
    assert headers["Authorization"] == f"Bearer {KEY}" and headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == f"venice.py/{venice.__version__} Python/{sys.version_info[0]}.{sys.version_info[1]}"
    assert headers["Accept-Encoding"] == "gzip" and headers["X-Team"] == "a"
    assert body == {"input": "x", "model": "e", "nested": [{"b": 1}]}


@pytest.mark.parametrize(
    "name, value, says",
    [
        ("X-A", "1\r\nX-B: 2", "line break"),
        ("X-A", "v\n", "line break"),
        ("X A", "v", "not a valid HTTP token"),  # a space would hide the headers after it from the server
        ("X:A", "v", "not a valid HTTP token"),
        ("", "v", "not a valid HTTP token"),
        ("X-A", "snow \u2603", "latin-1 only"),
        ("X-A", 5, "must have a str value"),
        ("X-A", ["a"], "must have a str value"),
        ("Content-Length", "5", "is set by venice.py"),  # a second length would desync the connection
    ],
)
def test_bad_headers_refused_before_sending(fake, name, value, says):
    with pytest.raises(venice.ConfigError, match=says) as info:
        venice.VeniceClient(KEY, base_url=fake.url, default_headers={name: value})
    if isinstance(value, str) and len(value) > 1:
        assert value not in str(info.value)  # header values may be secrets
    with venice.VeniceClient(KEY, base_url=fake.url) as c:
        for call in (lambda: c.request("GET", "/models", headers={name: value}), lambda: c.chat.complete("hi", model="m", headers={name: value})):
            with pytest.raises(venice.ConfigError, match=says):
                call()
        assert c.chat.complete("hi", model="m", headers={"X-Name": "Zoë"}).text == "Echo: hi"  # latin-1 is fine
    assert len(fake.requests) == 1 and fake.requests[0][2]["X-Name"] == "Zo\u00eb"  # sent as latin-1, read as such


def test_request_returns_bytes_for_other_content_types_and_json_otherwise(fake):
    fake.get_script.append(lambda h: h._send(200, b"a,b\n1,2\n", content_type="text/csv"))
    with venice.VeniceClient(KEY, base_url=fake.url) as c:
        assert c.request("GET", "/billing/usage-history") == b"a,b\n1,2\n"
        data = c.request("GET", "/api_keys/rate_limits", params={"x": None, "flag": True})
        assert data.data.balances.USD == 12.5 and data.meta.request_id == "8c1f-TEST"
        with c.request("GET", "/models", stream=True) as raw:
            assert raw.status_code == 200 and json.loads(raw.read())["object"] == "list"
    assert fake.requests[-2][1] == "/api/v1/api_keys/rate_limits?flag=true"


def test_a_dropped_client_closes_its_pooled_connection(fake):
    import gc

    c = venice.VeniceClient(KEY, base_url=fake.url)
    assert c.chat.complete("x", model="m").text == "Echo: x"
    del c
    gc.collect()  # the client is cyclic garbage; its socket must be closed, not finalized with a warning
    for _ in range(100):
        if fake.closed:
            break
        time.sleep(0.02)
    assert (fake.connections, fake.closed) == (1, 1)


def test_keep_alive_one_connection_for_twenty_calls(fake):
    with venice.VeniceClient(KEY, base_url=fake.url) as c:
        for i in range(20):
            assert c.chat.complete(f"n{i}", model="m").text == f"Echo: n{i}"
    assert fake.connections == 1


def reply_then_hang_up(handler):
    handler._send(200, {"choices": [{"message": {"content": "first"}}]})
    handler.wfile.flush()
    handler.close_connection = True  # the server drops the idle keep-alive connection


def test_stale_connection_is_replaced_without_a_retry(fake):
    fake.script.append(reply_then_hang_up)
    with venice.VeniceClient(KEY, base_url=fake.url, max_retries=0) as c:
        assert c.chat.complete("a", model="m").text == "first"
        time.sleep(0.1)
        assert c.chat.complete("b", model="m").text == "Echo: b"
    assert fake.connections == 2 and len(fake.requests) == 2


def hang_up(handler):
    handler.close_connection = True  # the request was read: it may have been processed


def test_server_hanging_up_before_answering_a_post_is_not_sent_again(fake):
    fake.script.append(hang_up)
    sleeps = []
    with venice.VeniceClient(KEY, base_url=fake.url, max_retries=2, sleep=sleeps.append, random=lambda: 0.0) as c:
        with pytest.raises(venice.APIConnectionError) as info:
            c.chat.complete("x", model="m")
    assert "closed the connection without answering" in str(info.value) and "not sent again" in str(info.value)
    assert sleeps == [] and len(fake.requests) == 1  # a chat completion sent twice is billed twice
    fake.get_script.append(hang_up)  # a GET is safe to re-send
    with venice.VeniceClient(KEY, base_url=fake.url, max_retries=2, sleep=sleeps.append, random=lambda: 0.0) as c:
        assert len(c.models.list()) == 2
    assert sleeps == [0.5] and len(fake.requests) == 3


def test_a_post_with_an_idempotency_key_is_safe_to_re_send(fake):
    fake.script.append(hang_up)
    sleeps = []
    with venice.VeniceClient(KEY, base_url=fake.url, sleep=sleeps.append, random=lambda: 0.0) as c:
        r = c.chat.complete("x", model="m", headers={"Idempotency-Key": "k-1"})
    assert r.text == "Echo: x" and sleeps == [0.5] and len(fake.requests) == 2
    assert [req[2]["Idempotency-Key"] for req in fake.requests] == ["k-1", "k-1"]


def test_a_post_on_a_reused_connection_that_breaks_after_sending_is_not_re_sent(fake):
    # The server reads the POST, then drops the keep-alive connection without answering: before, the
    # transport silently sent it again on a fresh connection, even with max_retries=0.
    fake.script += [lambda h: h._send(200, {"choices": [{"message": {"content": "first"}}]}), hang_up]
    with venice.VeniceClient(KEY, base_url=fake.url, max_retries=0) as c:
        assert c.chat.complete("a", model="m").text == "first"
        with pytest.raises(venice.APIConnectionError, match="without answering"):
            c.chat.complete("b", model="m")
    assert len(fake.requests) == 2 and fake.connections == 1


def test_gzip_response_decoded(fake):
    import gzip

    payload = gzip.compress(json.dumps({"choices": [{"message": {"content": "zipped"}}]}).encode())
    fake.script.append(lambda h: h._send(200, payload, headers=[("Content-Encoding", "gzip")]))
    with venice.VeniceClient(KEY, base_url=fake.url) as c:
        assert c.chat.complete("x", model="m").text == "zipped"


def test_connection_refused_is_a_connection_error():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    sleeps = []
    with venice.VeniceClient(KEY, base_url=f"http://127.0.0.1:{port}/v1", sleep=sleeps.append, random=lambda: 0.0) as c:
        with pytest.raises(venice.APIConnectionError) as info:
            c.chat.complete("x", model="m")
    assert type(info.value) is venice.APIConnectionError and "could not connect to 127.0.0.1" in str(info.value)
    assert sleeps == [0.5, 1.0]  # nothing was sent: always safe to retry


def test_stall_before_headers_times_out_and_post_is_not_retried(fake):
    fake.script.append(lambda h: time.sleep(5.0))
    sleeps = []
    with venice.VeniceClient(KEY, base_url=fake.url, timeout=0.2, sleep=sleeps.append) as c:
        started = time.monotonic()
        with pytest.raises(venice.APITimeoutError) as info:
            c.chat.complete("x", model="m")
    assert time.monotonic() - started < 4 and "no response from 127.0.0.1 within 0.2 s" in str(info.value)
    assert sleeps == [] and len(fake.requests) == 1


def test_read_timeout_retried_for_get_and_when_the_policy_allows(fake):
    fake.get_script.append(lambda h: time.sleep(0.6))
    sleeps = []
    with venice.VeniceClient(KEY, base_url=fake.url, timeout=0.2, sleep=sleeps.append, random=lambda: 0.0) as c:
        assert len(c.models.list()) == 2
    assert sleeps == [0.5]
    fake.script.append(lambda h: time.sleep(0.6))
    policy = venice.RetryPolicy(retry_unsafe=True)
    with venice.VeniceClient(KEY, base_url=fake.url, timeout=0.2, retry=policy, sleep=sleeps.append, random=lambda: 0.0) as c:
        assert c.chat.complete("y", model="m").text == "Echo: y"
    assert sleeps == [0.5, 0.5]


def test_reset_mid_body(fake):
    def partial_then_reset(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", "500")
        handler.end_headers()
        handler.wfile.write(b'{"choices": [')
        handler.wfile.flush()
        time.sleep(0.05)
        reset(handler)

    fake.script.append(partial_then_reset)
    with venice.VeniceClient(KEY, base_url=fake.url, sleep=lambda s: None) as c:
        with pytest.raises(venice.APIConnectionError) as info:
            c.chat.complete("x", model="m")
    assert "the connection broke while reading the response" in str(info.value)
    assert len(fake.requests) == 1  # a POST that may have been processed is not re-sent


def test_deadline_bounds_the_call_including_retries(fake):
    fake.script += [lambda h: h._send(503, {"error": "busy"})] * 3
    sleeps = []  # (injected: no real time passes, so no wall-clock window to miss on a loaded machine)
    with venice.VeniceClient(KEY, base_url=fake.url, max_retries=5, random=lambda: 0.0, sleep=sleeps.append) as c:
        with pytest.raises(venice.ServerError):
            c.chat.complete("x", model="m", deadline=0.8)  # 0.5, then a 1.0 s wait would pass the deadline
    assert sleeps == [0.5] and len(fake.requests) == 2  # no deadline: 5 retries


@pytest.mark.parametrize("location", ["http://[::1", "http://localhost:99999/x", "/caf\u00e9", "https://" + "a" * 64 + ".com/"])
def test_redirect_to_an_invalid_url_is_an_api_error(fake, location):
    fake.get_script.append(lambda h: h._send(302, b"", headers=[("Location", location)]))
    with venice.VeniceClient(KEY, base_url=fake.url) as c, pytest.raises(venice.VeniceAPIError) as info:
        c.models.list()
    assert "redirected to an invalid URL" in str(info.value) and info.value.status_code == 302
    assert len(fake.requests) == 1


def test_redirects(fake):
    with running(FakeVenice("localhost")) as other:
        target = other.url.replace("/api/v1", "") + "/api/v1/models?type=text"
        fake.get_script.append(lambda h: h._send(302, b"", headers=[("Location", target)]))
        with venice.VeniceClient(KEY, base_url=fake.url) as c:
            assert [m.id for m in c.models.list()] == ["venice-uncensored", "zai-org-glm-5-2"]
            assert fake.requests[-1][2]["Authorization"] == f"Bearer {KEY}"
            assert "Authorization" not in other.requests[-1][2]  # another host never gets the key
            fake.get_script.append(lambda h: h._send(307, b"", headers=[("Location", "/api/v1/models/traits")]))
            assert c.request("GET", "/models").data == {"default": "zai-org-glm-5-2"}
            assert fake.requests[-1][1] == "/api/v1/models/traits" and fake.requests[-1][2]["Authorization"] == f"Bearer {KEY}"
            fake.script.append(lambda h: h._send(307, b"", headers=[("Location", target)]))
            with pytest.raises(venice.VeniceAPIError) as info:
                c.chat.complete("x", model="m")
    assert info.value.status_code == 307 and "not followed" in str(info.value)
    assert [r[0] for r in other.requests] == ["GET"]


def make_cert(tmp_path):
    import shutil

    if not shutil.which("openssl"):
        pytest.skip("the openssl command is needed to make a test certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,DNS:venice.test,IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return str(cert), str(key)


def test_tls_with_ca_file_and_verification_failure(tmp_path):
    import ssl

    cert, key = make_cert(tmp_path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    with running(FakeVenice("localhost", tls=ctx)) as server:
        config = venice.load_config(api_key=KEY, base_url=server.url, ca_file=cert, environ={}, env_file=False)
        with venice.VeniceClient(config=config) as c:
            for _ in range(3):
                assert c.chat.complete("tls", model="m").text == "Echo: tls"
        assert server.connections == 1
        # A pooled TLS connection the server closed while idle is found out before sending (a POST is
        # never re-sent once sent): readable, and a non-blocking TLS read meets EOF, not a session ticket.
        server.script.append(reply_then_hang_up)
        with venice.VeniceClient(config=config, max_retries=0) as c:
            assert c.chat.complete("a", model="m").text == "first"
            time.sleep(0.1)
            assert c.chat.complete("b", model="m").text == "Echo: b"
        assert server.connections == 3 and len(server.requests) == 5
        with venice.VeniceClient(KEY, base_url=server.url, max_retries=0, environ={}) as c:
            with pytest.raises(venice.APIConnectionError) as info:
                c.chat.complete("x", model="m")
        assert "CERTIFICATE_VERIFY_FAILED" in str(info.value) and "SSL_CERT_FILE" in str(info.value)
        with venice.VeniceClient(KEY, base_url=server.url, environ={"SSL_CERT_FILE": cert}) as c:
            assert c.chat.complete("env", model="m").text == "Echo: env"
        certs = tmp_path / "certs"  # SSL_CERT_DIR: a folder of certificates named by their hash
        certs.mkdir()
        name = subprocess.run(["openssl", "x509", "-hash", "-noout", "-in", cert], capture_output=True, text=True, check=True)
        (certs / f"{name.stdout.strip()}.0").write_text((tmp_path / "cert.pem").read_text())
        with venice.VeniceClient(KEY, base_url=server.url, environ={"SSL_CERT_DIR": str(certs)}) as c:
            assert c.chat.complete("dir", model="m").text == "Echo: dir"


class ConnectProxy(threading.Thread):
    """A tiny HTTP CONNECT proxy on loopback that records the targets it tunnels to."""

    def __init__(self):
        import socket

        super().__init__(daemon=True)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.targets = []

    def run(self):
        import socket

        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            head = b""
            while b"\r\n\r\n" not in head:
                head += client.recv(4096)
            target = head.split(b" ")[1].decode()
            self.targets.append(target)
            host, port = target.rsplit(":", 1)
            # venice.test (RFC 2606: never a real host) is this machine: nothing resolves a name or leaves it.
            upstream = socket.create_connection(("127.0.0.1" if host == "venice.test" else host, int(port)))
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self.pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def pipe(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.close()


def test_https_through_a_connect_proxy_from_the_environment(tmp_path, monkeypatch):
    import ssl

    cert, key = make_cert(tmp_path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    proxy = ConnectProxy()
    proxy.start()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    dead_proxy = f"http://127.0.0.1:{closed.getsockname()[1]}"
    closed.close()
    monkeypatch.setenv("HTTPS_PROXY", dead_proxy)  # os.environ: ignored when environ= is given
    try:
        with running(FakeVenice("localhost", tls=ctx)) as server:
            url = server.url.replace("localhost", "venice.test")  # a name only the proxy knows
            env = {"SSL_CERT_FILE": cert, "HTTPS_PROXY": f"http://127.0.0.1:{proxy.port}"}
            with venice.VeniceClient(KEY, base_url=url, environ=env) as c:
                assert c.chat.complete("via proxy", model="m").text == "Echo: via proxy"
                assert c._transport.proxy_for("https", "venice.test") is not None
            assert proxy.targets == [f"venice.test:{server.server_port}"]
            with venice.VeniceClient(KEY, base_url=url, environ={**env, "NO_PROXY": ".test"}) as c:
                assert c._transport.proxy_for("https", "venice.test") is None
            with venice.VeniceClient(KEY, base_url=server.url, environ=env) as c:  # loopback: never proxied
                assert c.chat.complete("direct", model="m").text == "Echo: direct"
            assert len(proxy.targets) == 1
            with venice.VeniceClient(KEY, base_url=url, environ={**env, "HTTPS_PROXY": dead_proxy}, max_retries=0) as c:
                with pytest.raises(venice.APIConnectionError) as info:
                    c.chat.complete("x", model="m")
            assert f"could not connect to the proxy {dead_proxy[7:]}" in str(info.value)  # the proxy, not the target
    finally:
        proxy.sock.close()


def test_proxy_variables_read_as_urllib_does():
    env = {"HTTP_PROXY": "http://upper:1", "https_proxy": "http://lower:2", "HTTPS_PROXY": "http://upper:2", "NO_PROXY": ""}
    assert venice._env_proxies(env) == {"http": "http://upper:1", "https": "http://lower:2"}
    # Under CGI, HTTP_PROXY comes from the client's Proxy: header (CVE-2016-1000110); lower case still counts.
    assert venice._env_proxies({**env, "REQUEST_METHOD": "GET"}) == {"https": "http://lower:2"}
    assert venice._env_proxies({"REQUEST_METHOD": "GET", "http_proxy": "http://l:1"}) == {"http": "http://l:1"}


def test_plain_http_to_loopback_never_goes_through_a_proxy(fake, monkeypatch):
    seen = []

    class Proxy(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            seen.append(self.path)
            self.send_error(502)

    with running(http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)) as proxy:
        env = {"HTTP_PROXY": f"http://127.0.0.1:{proxy.server_port}", "ALL_PROXY": f"http://127.0.0.1:{proxy.server_port}"}
        monkeypatch.delenv("NO_PROXY")
        monkeypatch.delenv("no_proxy")
        monkeypatch.setenv("HTTP_PROXY", env["HTTP_PROXY"])
        for environ in (env, None):
            with venice.VeniceClient(KEY, base_url=fake.url, environ=environ) as c:
                assert c.chat.complete("x", model="m").text == "Echo: x"  # the key never travels to the proxy
    assert seen == []


def cut_short(body, *, gzip_it=False, declared=None):
    """A reply that promises more bytes than it sends, then closes."""
    import gzip

    data = gzip.compress(body) if gzip_it else body

    def reply(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        if gzip_it:
            handler.send_header("Content-Encoding", "gzip")
        handler.send_header("Content-Length", str(declared or len(data) + 100))
        handler.end_headers()
        handler.wfile.write(data if declared else data[: len(data) // 2] if gzip_it else data)
        handler.wfile.flush()
        handler.close_connection = True

    return reply


def test_a_body_cut_short_is_a_connection_error_and_a_get_is_retried(fake):
    models = json.dumps({"object": "list", "data": FAKE_MODELS}).encode()
    fake.get_script.append(cut_short(models))
    sleeps = []
    with venice.VeniceClient(KEY, base_url=fake.url, sleep=sleeps.append, random=lambda: 0.0) as c:
        assert len(c.models.list()) == 2  # the first answer lacked 100 bytes: retried (a GET is safe to re-send)
        assert sleeps == [0.5]
    with venice.VeniceClient(KEY, base_url=fake.url, max_retries=0) as c:
        fake.get_script.append(cut_short(b"a,b\n1,2\n"))
        with pytest.raises(venice.APIConnectionError, match="with 100 bytes of the response body missing"):
            c.request("GET", "/billing/usage-history")  # bytes of another type: not returned short either
        fake.get_script.append(cut_short(b"a,b\n1,2\n"))
        with c.request("GET", "/models", stream=True) as raw:
            with pytest.raises(venice.APIConnectionError, match="bytes of the response body missing"):
                raw.read()
        fake.script.append(cut_short(b'{"choices": [{"message": {"content": "cut"}}]}'))
        with pytest.raises(venice.APIConnectionError, match="bytes of the response body missing"):
            c.chat.complete("x", model="m")  # not "200 ... not valid JSON", and the POST is not re-sent
    assert fake.requests[-1][0] == "POST" and [r[0] for r in fake.requests].count("POST") == 1


def test_a_cut_gzip_body_is_a_connection_error(fake):
    body = json.dumps({"choices": [{"message": {"content": "zipped " * 500}}]}).encode()
    import gzip

    whole = gzip.compress(body)
    fake.script.append(cut_short(body, gzip_it=True, declared=len(whole) // 2))  # framing intact, gzip cut
    with venice.VeniceClient(KEY, base_url=fake.url) as c:
        with pytest.raises(venice.APIConnectionError, match="gzip-encoded response ended before the end"):
            c.chat.complete("x", model="m")


def test_abort_after_release_leaves_the_pooled_connection_alone(fake):
    # ChatStream.close() from another thread calls abort(); if the response was already read and its
    # connection returned to the pool (where another call may use it), nothing may happen to it.
    with venice.VeniceClient(KEY, base_url=fake.url) as c:
        raw = c.request("GET", "/models", stream=True)
        raw.read()  # to the end: the connection is back in the pool
        raw._ex.abort()
        assert len(c.models.list()) == 2
        assert c._transport.connections_opened == 1
        raw = c.request("GET", "/models", stream=True)
        raw._ex.abort()  # mid-response: the connection is shut, and never goes back to the pool
        with contextlib.suppress(venice.APIConnectionError):
            raw.read()  # (what http.client had buffered may still come out)
        assert c._transport.idle.get(("http", "127.0.0.1", fake.server_port), []) == []  # not pooled
        assert len(c.models.list()) == 2 and c._transport.connections_opened == 2


def test_pooled_connections_are_checked_with_poll_above_descriptor_1024(fake):
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1300:
        pytest.skip("needs 1300 open files")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1300), hard))
    files = [open(os.devnull) for _ in range(1100)]  # the client's socket gets a descriptor above 1024
    try:
        with venice.VeniceClient(KEY, base_url=fake.url) as c:
            for i in range(3):
                assert c.chat.complete(f"n{i}", model="m").text == f"n{i}".join(["Echo: ", ""])
            assert c._transport.idle[("http", "127.0.0.1", fake.server_port)][0][0].sock.fileno() > 1024
        assert fake.connections == 1  # select() raised for such descriptors, read as "stale": one per call
    finally:
        for f in files:
            f.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_connection_idle_too_long_is_not_reused(fake):
    with venice.VeniceClient(KEY, base_url=fake.url) as c:
        c.chat.complete("a", model="m")
        c.chat.complete("b", model="m")
        assert fake.connections == 1
        c._transport.idle_limit = 0.0  # (30 s by default)
        time.sleep(0.01)
        c.chat.complete("c", model="m")
    assert fake.connections == 2


def test_many_threads_share_one_client_without_sharing_a_connection(fake):
    results, errors = {}, []

    def work(n):
        try:
            for i in range(15):
                results[(n, i)] = c.chat.complete(f"t{n}-{i}", model="m").text
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    with venice.VeniceClient(KEY, base_url=fake.url, timeout=5) as c:
        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not any(t.is_alive() for t in threads) and errors == []
    # A connection handed to two threads at once mixes their answers (or hangs until the timeout).
    assert results == {(n, i): f"Echo: t{n}-{i}" for n in range(8) for i in range(15)}
    assert 1 <= fake.connections <= 8


def test_a_forked_child_never_uses_the_parents_pooled_connections(fake):
    import warnings

    with venice.VeniceClient(KEY, base_url=fake.url) as c:
        c.chat.complete("parent", model="m")
        read, write = os.pipe()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork() with threads running
            pid = os.fork()
        if pid == 0:  # the child: report what its pool holds, then leave at once
            try:
                os.write(write, str(sum(len(v) for v in c._transport.idle.values())).encode())
            finally:
                os._exit(0)
        os.close(write)
        assert os.read(read, 10) == b"0"
        os.close(read)
        os.waitpid(pid, 0)
        assert c.chat.complete("again", model="m").text == "Echo: again"  # the parent's connection lives on
    assert fake.connections == 1


def test_default_headers_are_not_sent_to_another_host_on_a_redirect(fake):
    with running(FakeVenice("localhost")) as other:
        target = other.url + "/models?type=text"
        fake.get_script.append(lambda h: h._send(302, b"", headers=[("Location", target)]))
        with venice.VeniceClient(KEY, base_url=fake.url, default_headers={"X-Tenant": "secret-tenant"}) as c:
            c.models.list()
        sent = other.requests[-1][2]
        assert "X-Tenant" not in sent and "Authorization" not in sent
        assert sent["User-Agent"].startswith("venice.py/") and sent["Accept"] == "application/json"
        assert fake.requests[-1][2]["X-Tenant"] == "secret-tenant"


def test_client_takes_ca_file_and_ssl_context(tmp_path):
    import ssl

    cert, key = make_cert(tmp_path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    with running(FakeVenice("localhost", tls=ctx)) as server:
        with venice.VeniceClient(KEY, base_url=server.url, ca_file=cert, environ={}) as c:
            assert c.config.ca_file == cert and c.chat.complete("ca", model="m").text == "Echo: ca"
        client_ctx = ssl.create_default_context(cafile=cert)
        with venice.VeniceClient(KEY, base_url=server.url, ssl_context=client_ctx, environ={}) as c:
            assert c.chat.complete("ctx", model="m").text == "Echo: ctx"


def test_the_key_is_in_no_local_of_the_request_path(fake):
    # pytest --showlocals and error trackers show the locals of every frame of a traceback.
    import traceback

    fake.script.append(lambda h: h._send(500, {"error": "boom"}))
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    calls = [
        lambda: venice.VeniceClient(KEY, base_url=fake.url, max_retries=0).chat.complete("x", model="m"),
        lambda: venice.VeniceClient(KEY, base_url=f"http://127.0.0.1:{port}/v1", max_retries=0).models.list(),
    ]
    for call in calls:
        with pytest.raises(venice.VeniceError) as info:
            call()
        err, frames = info.value, 0
        while err is not None:
            for frame, _ in traceback.walk_tb(err.__traceback__):
                if frame.f_code.co_filename == venice.__file__:
                    frames += 1
                    shown = repr(frame.f_locals)
                    assert KEY not in shown and KEY.encode() not in frame.f_locals.values(), frame.f_code.co_name
            err = err.__context__
        assert frames >= 3


def test_the_key_never_goes_over_http_to_a_peer_that_is_not_loopback(fake):
    import asyncio

    class FarPeer(venice._Transport):  # as if 127.0.0.1's name had resolved elsewhere (no packet leaves)
        peer = staticmethod(lambda sock: "192.0.2.1")

    class AsyncFarPeer(venice._AsyncTransport):
        peer = staticmethod(lambda writer: "192.0.2.1")

    config = venice.load_config(api_key=KEY, base_url=fake.url, env_file=False, environ={})
    with venice.VeniceClient(config=config, transport=FarPeer(config, {})) as c:
        with pytest.raises(venice.ConfigError, match="resolved to a non-loopback address; refusing to send the API key"):
            c.chat.complete("x", model="m")

    async def run():
        client = venice.AsyncVeniceClient(config=config, transport=AsyncFarPeer(config, {}, True, None))
        with pytest.raises(venice.ConfigError, match="resolved to a non-loopback address"):
            await client.chat.complete("x", model="m")

    asyncio.run(run())
    assert fake.requests == []


def test_a_deadline_gone_before_connecting_does_not_claim_the_request_may_have_been_processed(fake):
    with venice.VeniceClient(KEY, base_url=fake.url) as c, pytest.raises(venice.APITimeoutError) as info:
        c.chat.complete("x", model="m", deadline=0)
    assert "deadline passed" in str(info.value) and "not sent again" not in str(info.value)
    assert fake.requests == []


def test_loopback_is_decided_by_the_peer_address():
    for address in ("127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"):
        assert venice._is_loopback_address(address), address
    for address in ("10.0.0.5", "192.168.1.2", "::ffff:10.0.0.1", "fe80::1%eth0", "not-an-ip"):
        assert not venice._is_loopback_address(address), address


def test_retry_read_timeouts_is_a_deprecated_name_of_retry_unsafe():
    with pytest.warns(DeprecationWarning, match="use retry_unsafe=True"):
        policy = venice.RetryPolicy(retry_read_timeouts=True)
    assert policy.retry_unsafe is True and venice.RetryPolicy().retry_unsafe is False


def test_response_metadata_and_deprecation_warning_once(fake):
    headers = [
        ("x-venice-model-id", "old-model"), ("x-venice-model-name", "Old Model"),
        ("x-ratelimit-limit-requests", "500"), ("x-ratelimit-remaining-requests", "499"),
        ("x-ratelimit-reset-requests", "1700000060000"), ("x-ratelimit-limit-tokens", "1000000"),
        ("x-ratelimit-remaining-tokens", "999000"), ("x-ratelimit-reset-tokens", "30"),
        ("x-venice-model-deprecation-warning", "old-model will be removed"), ("x-venice-model-deprecation-date", "2026-12-31"),
    ]  # fmt: skip
    reply = lambda h: h._send(200, {"choices": [{"message": {"content": "ok"}}]}, headers=headers)  # noqa: E731
    fake.script += [reply, reply]
    venice._warned_models.discard("old-model")
    with venice.VeniceClient(KEY, base_url=fake.url, clock=lambda: 1_700_000_000.0) as c:
        with pytest.warns(DeprecationWarning, match="model old-model is deprecated \\(on 2026-12-31\\): old-model will be removed"):
            meta = c.chat.complete("x", model="old-model").meta
        with warnings_as_errors():
            c.chat.complete("x", model="old-model")  # once per model
    assert (meta.request_id, meta.venice_version, meta.model_id, meta.model_name) == ("8c1f-TEST", "20261124.1", "old-model", "Old Model")
    assert (meta.balance_usd, meta.balance_diem, meta.status_code) == (12.5, 3.0, 200)
    assert (meta.ratelimit_limit_requests, meta.ratelimit_remaining_requests, meta.ratelimit_reset_requests) == (500, 499, 1_700_000_060.0)
    assert (meta.ratelimit_limit_tokens, meta.ratelimit_remaining_tokens, meta.ratelimit_reset_tokens) == (1_000_000, 999_000, 1_700_000_030.0)


@contextlib.contextmanager
def warnings_as_errors():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# The sans-I/O HTTP/1.1 response reader (issue 11's async driver feeds it what it reads) #########

CHUNKED_SAMPLE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5;name=value;flag\r\nhello\r\n1A \t; ext\r\n" + b"x" * 26 + b"\r\n"
    b"0\r\nX-Trailer: t\r\nX-Other: u\r\n\r\n"
)
LENGTH_SAMPLE = b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nX-Multi: a\r\nx-multi:  b \t\r\n\r\nhello world"


def run_reader(blocks, method="GET"):
    """Feed blocks one at a time, calling head() and then read() after each, as a driver would."""
    reader = venice._ResponseReader(method)
    body = []
    for block in blocks:
        reader.feed(block)
        if reader.head() is not None:
            body.append(reader.read())
    return reader, reader.head(), b"".join(body)


def reader_error(blocks, method="GET"):
    with pytest.raises(venice._FramingError) as info:
        run_reader(blocks, method)
    return str(info.value)


def test_reader_content_length_body():
    cookies = b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\n"
    reader, head, body = run_reader([LENGTH_SAMPLE.replace(b"\r\n\r\n", b"\r\n" + cookies + b"\r\n")])
    assert head == (200, {"content-length": "11", "x-multi": "a, b", "set-cookie": "b=2"})
    assert (body, reader.done, reader.reusable, reader.missing) == (b"hello world", True, True, None)
    assert reader.read() == b""


def test_reader_chunked_with_extensions_and_trailers():
    reader, head, body = run_reader([CHUNKED_SAMPLE])
    assert head == (200, {"content-type": "text/event-stream", "transfer-encoding": "chunked"})  # no trailers
    assert (body, reader.done, reader.reusable, reader.missing) == (b"hello" + b"x" * 26, True, True, None)


def test_reader_bare_lf_line_ends():
    sample = b"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\n"
    reader, head, body = run_reader([sample])
    assert (head, body, reader.done, reader.reusable) == ((200, {"transfer-encoding": "chunked"}), b"abc", True, True)


@pytest.mark.parametrize("sample", [CHUNKED_SAMPLE, LENGTH_SAMPLE], ids=["chunked", "length"])
def test_reader_any_split_gives_the_same_result(sample):
    whole, head, body = run_reader([sample])
    expected = (head, body, whole.done, whole.reusable)
    assert expected[2:] == (True, True)
    for cut in range(len(sample) + 1):
        reader, head, body = run_reader([part for part in (sample[:cut], sample[cut:]) if part])  # b"" is EOF
        assert (head, body, reader.done, reader.reusable) == expected, cut
    reader, head, body = run_reader([sample[i : i + 1] for i in range(len(sample))])
    assert (head, body, reader.done, reader.reusable) == expected


@pytest.mark.parametrize(
    "method, status_line",
    [("HEAD", b"HTTP/1.1 200 OK"), ("GET", b"HTTP/1.1 204 No Content"), ("GET", b"HTTP/1.1 304 Not Modified")],
)
@pytest.mark.parametrize("framing", [b"Content-Length: 5", b"Transfer-Encoding: chunked"])
def test_reader_head_204_304_have_no_body(method, status_line, framing):
    reader, head, body = run_reader([status_line + b"\r\n" + framing + b"\r\n\r\n"], method)
    assert (head[0], body, reader.done, reader.reusable) == (int(status_line[9:12]), b"", True, True)


def test_reader_skips_interim_responses():
    sample = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
        b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"
    )
    for blocks in ([sample], [sample[:26], sample[26:]], [sample[i : i + 1] for i in range(len(sample))]):
        reader, head, body = run_reader(blocks)
        assert (head, body, reader.done, reader.reusable) == ((201, {"content-length": "2"}), b"ok", True, True)
    message = reader_error([b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"])
    assert message == "101 Switching Protocols, but no protocol switch was asked for"


@pytest.mark.parametrize(
    "version, connection, reusable",
    [
        (b"1.1", None, True),
        (b"1.1", b"close", False),
        (b"1.1", b"Keep-Alive, Close", False),
        (b"1.1", b"keep-alive", True),
        (b"1.0", None, False),
        (b"1.0", b"Keep-Alive", True),
        (b"1.0", b"keep-alive, close", False),
    ],
)
def test_reader_keep_alive_rules(version, connection, reusable):
    fields = b"Content-Length: 2\r\n" + (b"Connection: " + connection + b"\r\n" if connection else b"")
    reader, _, body = run_reader([b"HTTP/" + version + b" 200 OK\r\n" + fields + b"\r\nok"])
    assert (body, reader.done, reader.reusable) == (b"ok", True, reusable)


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n",  # smuggling hint
        b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n",  # TE in 1.0
    ],
)
def test_reader_chunked_wins_but_the_connection_is_not_reused(head):
    reader, _, body = run_reader([head + b"2\r\nok\r\n0\r\n\r\n"])
    assert (body, reader.done, reader.reusable) == (b"ok", True, False)


@pytest.mark.parametrize(
    "fields, message",
    [
        (b"Content-Length: 5\r\nContent-Length: 6", "conflicting Content-Length values: '5, 6'"),
        (b"Content-Length: 5, 6", "conflicting Content-Length values: '5, 6'"),
        (b"Content-Length: abc", "invalid Content-Length: 'abc'"),
        (b"Content-Length: -1", "invalid Content-Length: '-1'"),
        (b"Content-Length: +5", "invalid Content-Length: '+5'"),
        (b"Content-Length: 5 5", "invalid Content-Length: '5 5'"),
        (b"Content-Length: \xb2", "invalid Content-Length: '\xb2'"),  # "²" passes str.isdigit()
        (b"Content-Length: ", "invalid Content-Length: ''"),
        (b"Content-Length: " + b"9" * 19, "invalid Content-Length: '9999999999999999999'"),
    ],
)
def test_reader_rejects_bad_content_length(fields, message):
    assert reader_error([b"HTTP/1.1 200 OK\r\n" + fields + b"\r\n\r\nhello"]) == message


def test_reader_accepts_identical_repeated_content_length():
    for fields in (b"Content-Length: 5, 5", b"Content-Length: 5\r\nContent-Length: 5"):
        reader, _, body = run_reader([b"HTTP/1.1 200 OK\r\n" + fields + b"\r\n\r\nhello"])
        assert (body, reader.done, reader.reusable) == (b"hello", True, True)


@pytest.mark.parametrize("size", [b"zz", b"0x5", b"+5", b" 5", b"", b"5_0", b"-1", b"1" * 17, b";ext"])
def test_reader_rejects_bad_chunk_size(size):
    sample = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + size + b"\r\nhello\r\n0\r\n\r\n"
    assert reader_error([sample]) == "bad chunk size line: " + repr(size + b"\r")


def test_reader_rejects_missing_crlf_after_chunk_data():
    reader = venice._ResponseReader("GET")
    reader.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXY\r\n0\r\n\r\n")
    assert reader.head()[0] == 200
    with pytest.raises(venice._FramingError, match=r"^missing CRLF after chunk data: b'XY\\r\\n0\\r\\n\\r\\n'$"):
        reader.read()
    with pytest.raises(venice._FramingError, match="^missing CRLF"):  # the stream can't be resynchronised
        reader.read()
    # A lone CR may be the first half of the CRLF: wait for the next byte
    reader = venice._ResponseReader("GET")
    reader.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r")
    assert reader.head()[0] == 200 and reader.read() == b"ok" and reader.read() == b"" and not reader.done
    reader.feed(b"X")
    with pytest.raises(venice._FramingError, match=r"^missing CRLF after chunk data: b'\\rX'$"):
        reader.read()


def test_reader_eof_before_the_head():
    assert reader_error([b""]) == "no response"
    for partial in (b"H", b"HTTP/1.1 200 OK\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r"):
        assert reader_error([partial, b""]) == "the connection closed before the response head was complete"
    reader = venice._ResponseReader("GET")
    reader.feed(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert reader.head() is None
    reader.feed(b"")
    with pytest.raises(venice._FramingError, match="^the connection closed before the response head was complete$"):
        reader.read()


def test_reader_eof_mid_content_length_body():
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"
    reader, _, body = run_reader([head + b"abcd", b""])  # EOF before the buffered bytes were read
    assert (body, reader.done, reader.reusable, reader.missing) == (b"abcd", False, False, 6)
    with pytest.raises(venice._FramingError, match="^the connection closed with 6 bytes of the body missing$"):
        reader.read()
    reader, _, body = run_reader([head + b"abc", b"d", b""])  # EOF after them
    assert (body, reader.missing) == (b"abcd", 6)
    with pytest.raises(venice._FramingError, match="^the connection closed with 6 bytes of the body missing$"):
        reader.read()


def test_reader_eof_mid_chunked_body():
    for rest in (b"5\r\nhel", b"5\r\nhello\r\n", b"5\r\nhello\r\n0\r\nX-T: 1\r\n"):
        reader, _, body = run_reader([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + rest, b""])
        assert (body, reader.done, reader.reusable, reader.missing) == (rest[3:8], False, False, -1)
        with pytest.raises(venice._FramingError, match="^the connection closed before the end of the chunked body$"):
            reader.read()


@pytest.mark.parametrize("fields", [b"", b"Transfer-Encoding: gzip\r\n", b"Transfer-Encoding: chunked, gzip\r\n"])
def test_reader_close_delimited_body(fields):
    reader, _, body = run_reader([b"HTTP/1.1 200 OK\r\n" + fields + b"\r\nabc", b"de"])
    assert (body, reader.done) == (b"abcde", False)
    reader.feed(b"")
    assert (reader.read(), reader.done, reader.reusable, reader.missing) == (b"", True, False, None)


@pytest.mark.parametrize(
    "sample",
    [LENGTH_SAMPLE, CHUNKED_SAMPLE, b"HTTP/1.1 204 No Content\r\n\r\n"],
    ids=["length", "chunked", "no-body"],
)
def test_reader_extra_bytes_or_eof_after_the_response_spoil_the_connection(sample):
    for blocks in ([sample + b"HTTP/1.1 200 OK\r\n"], [sample, b"X"], [sample, b""]):
        reader, head, body = run_reader(blocks)
        assert (head, body, reader.done, reader.reusable) == (*run_reader([sample])[1:], True, False)


def test_reader_header_limits():
    many = b"".join(b"X-%d: v\r\n" % i for i in range(200))
    reader, head, _ = run_reader([b"HTTP/1.1 204 No Content\r\n" + many + b"\r\n"])
    assert len(head[1]) == 200
    message = reader_error([b"HTTP/1.1 204 No Content\r\n" + many + b"X-Last: v\r\n\r\n"])
    assert message == "the response head has more than 200 header lines"
    big = b"HTTP/1.1 204 No Content\r\nX-Big: " + b"v" * 65536
    assert reader_error([big]) == "the response head is larger than 64 KiB"  # refused before the end arrives
    assert reader_error([big + b"\r\n\r\n"]) == "the response head is larger than 64 KiB"
    head = b"HTTP/1.1 204 No Content\r\nX-Big: " + b"v" * (65536 - 35) + b"\r\n\r\n"  # 64 KiB to the last CRLF
    assert run_reader([head])[0].done
    trailers = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n" + many + b"X-Last: v\r\n\r\n"
    assert reader_error([trailers]) == "the trailer section exceeds 64 KiB or 200 lines"


@pytest.mark.parametrize(
    "head, message",
    [
        (b"HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\n\r\n", "folded header line (obs-fold): b' folded'"),
        (b"HTTP/1.1 200 OK\r\nX-A: 1\r\n\tfolded\r\n\r\n", "folded header line (obs-fold): b'\\tfolded'"),
        (b"HTTP/2 200\r\n\r\n", "not an HTTP/1.x status line: b'HTTP/2 200'"),
        (b"HTTP/1.1 20 OK\r\n\r\n", "not an HTTP/1.x status line: b'HTTP/1.1 20 OK'"),
        (b"HTTP/1.1 099 Odd\r\n\r\n", "not an HTTP/1.x status line: b'HTTP/1.1 099 Odd'"),
        (b"HTTP/1.1 2000 OK\r\n\r\n", "not an HTTP/1.x status line: b'HTTP/1.1 2000 OK'"),
        (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", "not an HTTP/1.x status line: b'SSH-2.0-OpenSSH_9.6'"),
        (b"HTTP/1.1 200 OK\r\nX-A 1\r\n\r\n", "malformed header line: b'X-A 1'"),
        (b"HTTP/1.1 200 OK\r\nX-A : 1\r\n\r\n", "malformed header line: b'X-A : 1'"),
        (b"HTTP/1.1 200 OK\r\n: 1\r\n\r\n", "malformed header line: b': 1'"),
        (b"HTTP/1.1 200 OK\r\nX-A: 1\r2\r\n\r\n", "invalid character in header b'X-A'"),
        (b"HTTP/1.1 200 OK\r\nX-A: " + b"v" * 1000 + b"\r\nX B\r\n\r\n", "malformed header line: b'X B'"),
        (b"<html>" + b"x" * 1000 + b"\r\n\r\n", "not an HTTP/1.x status line: b'<html>" + "x" * 34 + "'…"),
    ],
)
def test_reader_rejects_malformed_heads(head, message):
    assert reader_error([head]) == message


def test_reader_errors_stick():
    reader = venice._ResponseReader("GET")
    reader.feed(b"HTTP/1.1 200 OK\r\nX A: 1\r\n\r\nHTTP/1.1 200 OK\r\n\r\n")  # the rest can't be trusted
    for call in (reader.head, reader.head, reader.read):
        with pytest.raises(venice._FramingError, match="^malformed header line: b'X A: 1'$"):
            call()


def test_reader_status_line_without_reason_and_latin1_values():
    reader, head, _ = run_reader([b"HTTP/1.1 204\r\nX-Name: caf\xe9\r\n\r\n"])
    assert head == (204, {"x-name": "caf\xe9"}) and reader.reusable


def test_reader_decodes_a_block_of_many_chunks_in_one_read():
    events = [b"data: {\"choices\":[{\"delta\":{\"content\":\"tok%d\"}}]}\n\n" % i for i in range(300)]
    block = b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in events)
    reader = venice._ResponseReader("POST")
    reader.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + block)
    assert reader.head()[0] == 200
    assert reader.read() == b"".join(events) and not reader.done
    reader.feed(b"0\r\n\r\n")
    assert (reader.read(), reader.done, reader.reusable) == (b"", True, True)

###############################################################################
# Retry policy #################################################################
###############################################################################


@pytest.mark.parametrize("field, value", [("max_retries", -1), ("max_retries", "3"), ("backoff_base", -0.5), ("max_retry_after", float("nan")), ("failure_budget", True)])
def test_retry_policy_refuses_nonsense(field, value):
    with pytest.raises(venice.ConfigError, match=f"RetryPolicy {field} must be"):
        venice.RetryPolicy(**{field: value})


def retrying_client(fake, sleeps, **kw):
    return venice.VeniceClient(KEY, base_url=fake.url, sleep=sleeps.append, clock=lambda: 1_700_000_000.0, random=lambda: 0.0, **kw)


def test_503_twice_then_success(fake):
    fake.script += [lambda h: h._send(503, {"error": "Model at capacity"})] * 2
    sleeps = []
    with retrying_client(fake, sleeps) as c:
        assert c.chat.complete("x", model="m").text == "Echo: x"
    assert sleeps == [0.5, 1.0] and len(fake.requests) == 3


def test_gives_up_after_max_retries_and_says_so(fake):
    fake.script += [lambda h: h._send(502, {"error": "bad gateway"})] * 3
    sleeps = []
    with retrying_client(fake, sleeps) as c, pytest.raises(venice.ServerError) as info:
        c.chat.complete("x", model="m")
    assert sleeps == [0.5, 1.0] and "gave up after 3 attempts" in str(info.value)


def test_no_retry_on_400(fake):
    fake.script.append(lambda h: h._send(400, {"error": "bad"}))
    sleeps = []
    with retrying_client(fake, sleeps) as c, pytest.raises(venice.InvalidRequestError):
        c.chat.complete("x", model="m")
    assert sleeps == [] and len(fake.requests) == 1


@pytest.mark.parametrize(
    "header,value,expected",
    [("Retry-After", "3", 3.0), ("Retry-After", "Tue, 14 Nov 2023 22:13:25 GMT", 5.0), ("retry-after-ms", "1500", 1.5), ("Retry-After", "-4", 0.0)],
)
def test_retry_after_forms(fake, header, value, expected):
    fake.script.append(lambda h: h._send(429, {"error": "Rate limit exceeded"}, headers=[(header, value)]))
    sleeps = []
    with retrying_client(fake, sleeps) as c:  # clock: 2023-11-14 22:13:20 GMT
        assert c.chat.complete("x", model="m").text == "Echo: x"
    assert sleeps == [expected]


def test_retry_after_above_the_cap_raises_at_once(fake):
    fake.script.append(lambda h: h._send(429, {"error": "Rate limit exceeded"}, headers=[("Retry-After", "120")]))
    sleeps = []
    with retrying_client(fake, sleeps) as c, pytest.raises(venice.RateLimitError) as info:
        c.chat.complete("x", model="m")
    assert sleeps == [] and info.value.retry_after == 120.0 and "longer than max_retry_after (60 s)" in str(info.value)


def test_on_retry_hook_and_x_should_retry(fake):
    calls = []
    fake.script += [
        lambda h: h._send(500, {"error": "oops"}),
        lambda h: h._send(400, {"error": "try me"}, headers=[("x-should-retry", "true")]),
        lambda h: h._send(503, {"error": "no"}, headers=[("x-should-retry", "false")]),
    ]
    sleeps = []
    policy = venice.RetryPolicy(max_retries=5, on_retry=lambda n, err, delay: calls.append((n, err.status_code, delay)))
    with retrying_client(fake, sleeps, retry=policy) as c, pytest.raises(venice.ServerError):
        c.chat.complete("x", model="m")
    assert calls == [(1, 500, 0.5), (2, 400, 1.0)] and len(fake.requests) == 3


def test_backoff_is_jittered_and_capped():
    policy = venice.RetryPolicy(backoff_base=0.5, backoff_max=8.0)
    assert [venice.retry_delay(policy, a, {}, 0.0, 0.0) for a in range(6)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert venice.retry_delay(policy, 2, {}, 0.0, 0.75) == 0.5
    assert venice.retry_delay(policy, 0, {"retry-after": "soon"}, 0.0, 0.0) == 0.5  # unparseable: backoff


def test_error_budget_stops_retries(fake):
    fake.script += [lambda h: h._send(503, {"error": "busy"})] * 6
    sleeps = []
    policy = venice.RetryPolicy(max_retries=10, failure_budget=4, failure_window=30.0)
    with retrying_client(fake, sleeps, retry=policy) as c, pytest.raises(venice.ServerError) as info:
        c.chat.complete("x", model="m")
    assert len(fake.requests) == 4 and len(sleeps) == 3
    assert "not retried: 4 failed requests in the last 30 s" in str(info.value) and "error budget" in str(info.value)


def test_error_budget_spans_calls_and_its_window_slides(fake):
    now = [1_700_000_000.0]
    fake.script += [lambda h: h._send(503, {"error": "busy"})] * 9
    policy = venice.RetryPolicy(max_retries=2, failure_budget=5, failure_window=30.0)
    with venice.VeniceClient(KEY, base_url=fake.url, retry=policy, sleep=lambda s: None, clock=lambda: now[0]) as c:
        expected = ["gave up after 3 attempts", "not retried: 5 failed requests", "not retried: 6 failed requests"]
        for says in expected:
            with pytest.raises(venice.ServerError, match=says):
                c.chat.complete("x", model="m")
        assert len(fake.requests) == 3 + 2 + 1  # the budget counts across calls
        now[0] += 31  # the failures leave the window
        with pytest.raises(venice.ServerError, match="gave up after 3 attempts"):
            c.chat.complete("x", model="m")
    assert len(fake.requests) == 9


def test_max_retries_zero_turns_retries_off(fake):
    fake.script.append(lambda h: h._send(503, {"error": "busy"}))
    sleeps = []
    with retrying_client(fake, sleeps, max_retries=0) as c, pytest.raises(venice.ServerError):
        c.chat.complete("x", model="m")
    assert sleeps == [] and len(fake.requests) == 1


def test_an_exhausted_rate_limit_is_waited_for_in_both_clients_and_a_429_retry_after_wins(fake):
    import asyncio

    now = [1_700_000_000.0]
    sleeps = []

    def sleep(seconds):
        sleeps.append(seconds)
        now[0] += seconds

    async def asleep(seconds):
        sleep(seconds)

    limits = [("x-ratelimit-remaining-requests", "0"), ("x-ratelimit-reset-requests", "1700000005")]
    answer = {"choices": [{"message": {"content": "ok"}}]}
    fake.script += [lambda h: h._send(200, answer, headers=limits)] * 2
    with venice.VeniceClient(KEY, base_url=fake.url, clock=lambda: now[0], sleep=sleep) as c:
        assert c.chat.complete("a", model="m").text == "ok"
        assert c.chat.complete("b", model="m").text == "ok"  # waited for the reset instead of a 429
        assert c.chat.complete("c", model="m").text == "Echo: c"  # the reset has passed: no wait
    assert sleeps == [5.0]

    async def run():
        client = venice.AsyncVeniceClient(KEY, base_url=fake.url, clock=lambda: now[0], sleep=asleep)
        async with client:
            await client.chat.complete("a", model="m")
            await client.chat.complete("b", model="m")

    sleeps.clear()
    now[0] = 1_700_000_000.0
    fake.script += [lambda h: h._send(200, answer, headers=limits)]
    asyncio.run(run())
    assert sleeps == [5.0]
    # A 429's Retry-After is Venice's own answer: it wins over the reset headers it carries.
    sleeps.clear()
    now[0] = 1_700_000_000.0
    far = [("Retry-After", "2"), ("x-ratelimit-remaining-requests", "0"), ("x-ratelimit-reset-requests", "1700000050")]
    fake.script += [lambda h: h._send(429, {"error": "Rate limit exceeded"}, headers=far)]
    with venice.VeniceClient(KEY, base_url=fake.url, clock=lambda: now[0], sleep=sleep) as c:
        assert c.chat.complete("d", model="m").text == "Echo: d"
    assert sleeps == [2.0]


###############################################################################
# Streaming: the SSE parser ####################################################
###############################################################################


def reference_sse(data: bytes):
    """The WHATWG algorithm, the obviously-correct slow way, on the whole decoded stream."""
    text = data.decode("utf-8", "replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = re.split(r"\r\n|\r|\n", text)
    complete = lines[:-1]  # the last piece has no line end: it is not a line yet
    events, buf, etype, last_id, retry = [], [], "", None, None
    for line in complete:
        if line == "":
            if buf:
                events.append(venice.ServerSentEvent(etype or "message", "\n".join(buf), last_id, retry))
            buf, etype, retry = [], "", None
            continue
        if line.startswith(":"):
            continue
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            buf.append(value)
        elif name == "event":
            etype = value
        elif name == "id" and "\0" not in value:
            last_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            retry = int(value)
    return events


def feed_cut(data, cuts):
    blocks, prev = [], 0
    for c in sorted(cuts):
        blocks.append(data[prev:c])
        prev = c
    blocks.append(data[prev:])
    return list(venice.iter_sse(blocks))


SSE_CASES = {
    "lf": (b"data: a\n\ndata: b\n\n", [("message", "a", None, None), ("message", "b", None, None)]),
    "crlf": (b"data: a\r\n\r\ndata: b\r\n\r\n", [("message", "a", None, None), ("message", "b", None, None)]),
    "cr": (b"data: a\r\rdata: b\r\r", [("message", "a", None, None), ("message", "b", None, None)]),
    "bom": (b"\xef\xbb\xbfdata: x\n\n", [("message", "x", None, None)]),
    "second bom kept": (b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\n", []),  # the second BOM makes the field name unknown
    "comments": (b": ping\n:\ndata: x\n: mid\n\n", [("message", "x", None, None)]),
    "multiline": (b"data: a\ndata:b\ndata:  c\ndata\n\n", [("message", "a\nb\n c\n", None, None)]),
    "no data no dispatch": (b"event: e\nid: 1\nretry: 5\n\ndata: x\n\n", [("message", "x", "1", None)]),
    "event type": (b"event: update\ndata: x\n\nevent:\ndata: y\n\n", [("update", "x", None, None), ("message", "y", None, None)]),
    "id persists": (b"id: 1\ndata: a\n\ndata: b\n\nid\ndata: c\n\n", [("message", "a", "1", None), ("message", "b", "1", None), ("message", "c", "", None)]),
    "id with nul": (b"id: 7\ndata: a\n\nid: 8\x009\ndata: b\n\n", [("message", "a", "7", None), ("message", "b", "7", None)]),
    "retry": (b"retry: 1000\ndata: a\n\nretry: 10x\ndata: b\n\nretry: \ndata: c\n\n", [("message", "a", None, 1000), ("message", "b", None, None), ("message", "c", None, None)]),
    "unknown fields": (b"foo: bar\ndata: x\nbaz\n\n", [("message", "x", None, None)]),
    "unterminated final": (b"data: a\n\ndata: b\n", [("message", "a", None, None)]),
    "utf8": ("data: h\u00e9 \u4e2d \U0001f642\n\n".encode(), [("message", "h\u00e9 \u4e2d \U0001f642", None, None)]),
    "invalid utf8": (b"data: \xff\xfe ok\n\n", [("message", "\ufffd\ufffd ok", None, None)]),
    "blank lines": (b"\n\n\ndata: x\n\n\n\n", [("message", "x", None, None)]),
    "colon in value": (b'data: {"a": "b:c"}\n\n', [("message", '{"a": "b:c"}', None, None)]),
    "chat": (b'data: {"choices": []}\n\ndata: [DONE]\n\n', [("message", '{"choices": []}', None, None), ("message", "[DONE]", None, None)]),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(SSE_CASES))
def test_iter_sse_rules_at_every_cut(name):
    data, expected = SSE_CASES[name]
    expected = [venice.ServerSentEvent(*e) for e in expected]
    assert reference_sse(data) == expected  # the reference agrees with the hand-written expectation
    assert feed_cut(data, []) == expected
    for i in range(len(data) + 1):
        assert feed_cut(data, [i]) == expected, i
    assert list(venice.iter_sse(data[i : i + 1] for i in range(len(data)))) == expected
    for i in range(len(data) + 1):
        for j in range(i, min(len(data) + 1, i + 4)):
            assert feed_cut(data, [i, j]) == expected, (i, j)


def test_iter_sse_matches_the_reference_on_random_streams():
    import random

    rng = random.Random(1234)
    pieces = [
        "data: x", "data:y", "data", "data: \u00e9\u4e2d", "event: e", "event:", "id: 1", "id: a\0b", "id", "retry: 42",
        "retry: x1", ": comment", ":", "foo: bar", "", "", "", "data: {\"k\": 1}", "\ufeffdata: z",
    ]  # fmt: skip
    for _ in range(300):
        text = "".join(rng.choice(pieces) + rng.choice(["\n", "\r", "\r\n"]) for _ in range(rng.randint(1, 12)))
        if rng.random() < 0.2:
            text = "\ufeff" + text
        if rng.random() < 0.3:
            text += rng.choice(pieces)  # an unterminated tail
        data = text.encode()
        cuts = sorted(rng.sample(range(len(data) + 1), min(len(data) + 1, rng.randint(0, 6))))
        assert feed_cut(data, cuts) == reference_sse(data), (data, cuts)


def test_iter_sse_yields_each_event_as_soon_as_its_blank_line_arrives():
    pulled = []

    def blocks():
        for block in (b"data: a\n", b"\n", b"data: b\r\n\r\n", b"data: c\r\r", b"data: d\n\n"):
            pulled.append(block)
            yield block

    seen = []
    for event in venice.iter_sse(blocks()):
        seen.append((event.data, len(pulled)))
    assert seen == [("a", 2), ("b", 3), ("c", 4), ("d", 5)]


def test_iter_sse_takes_a_whole_body_or_text_blocks():
    expected = [venice.ServerSentEvent("message", "a", None, None), venice.ServerSentEvent("message", "é", None, None)]
    assert list(venice.iter_sse(b"data: a\n\ndata: \xc3\xa9\n\n")) == expected
    assert list(venice.iter_sse("data: a\n\ndata: é\n\n")) == expected
    assert list(venice.iter_sse([bytearray(b"data: a\n\nda"), "ta: é\n\n"])) == expected


def test_iter_sse_absurd_retry_is_ignored():
    (event,) = venice.iter_sse([b"retry: " + b"9" * 5000 + b"\ndata: x\n\n"])  # int() refuses 4300+ digits
    assert (event.data, event.retry) == ("x", None)


def test_iter_sse_a_megabyte_line_is_linear():
    # Compared as a ratio of best-of-5 times, so a slow or busy machine (or tracemalloc) doesn't fail it.
    def best(n, size):
        line = b"data: " + b"x" * n + b"\n\n"
        blocks = [line[i : i + size] for i in range(0, len(line), size)]
        times = []
        for _ in range(5):
            started = time.perf_counter()
            events = list(venice.iter_sse(blocks))
            times.append(time.perf_counter() - started)
        assert len(events[0].data) == n
        return min(times)

    for size in (64, 1024):  # 16x the input: 16x the time when linear (up to ~50x seen under load), 256x if quadratic
        assert best(1_000_000, size) < 100 * best(62_500, size)


###############################################################################
# Streaming ####################################################################
###############################################################################


def stream_reply(*blocks, content_type="text/event-stream", pause=0.0, end=True, headers=()):
    """A scripted reply: each block is one TCP write (one HTTP chunk); callables run in between."""

    def reply(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Transfer-Encoding", "chunked")
        for k, v in headers:
            handler.send_header(k, v)
        handler.end_headers()
        for block in blocks:
            if callable(block):
                block(handler)
                continue
            write_chunk(handler, block)
            if pause:
                time.sleep(pause)
        if end:
            write_chunk(handler, b"")

    return reply


def reset(handler):
    """Close the connection with a TCP reset, mid-body."""
    import socket
    import struct

    handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    handler.connection.close()
    handler.close_connection = True
    raise ConnectionAbortedError  # stop the handler quietly


ev = _sse  # short name for the scripted streams below


@pytest.fixture
def client(fake):
    with venice.VeniceClient(KEY, base_url=fake.url, timeout=2, max_retries=0, env_file=False) as c:
        yield c


def test_stream_text_usage_and_response(fake, client):
    fake.script.append(
        stream_reply(
            ev(_chunk("Hel")),
            ev(_chunk("lo")),
            ev(_chunk(finish="stop")),
            ev({"id": "chatcmpl-1", "choices": [], "usage": {"total_tokens": 7}, "cost": {"usd": 0.01}}),
            b"data: [DONE]\n\n",
        )
    )
    stream = client.chat.complete("hi", model="m", stream=True)
    assert list(stream) == ["Hel", "lo"]
    assert (stream.text, stream.finish_reason, stream.usage.total_tokens, stream.done) == ("Hello", "stop", 7, True)
    r = stream.response
    assert type(r) is venice.ChatResponse and r.text == "Hello" and r.cost == {"usd": 0.01}
    assert r.choices[0].message.role == "assistant" and stream.meta.request_id is None
    body = fake.requests[-1][3]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["temperature"] == 0.15


def test_stream_without_usage_chunk_is_complete(fake, client):
    fake.script.append(stream_reply(ev(_chunk("A", finish="stop")), b"data: [DONE]\n\n"))
    stream = client.chat.complete("hi", model="m", stream=True)
    assert list(stream) == ["A"] and stream.usage is None and stream.done


def test_stream_crlf_comments_keepalives_and_id_retry_only_events(fake, client):
    fake.script.append(
        stream_reply(
            b": ping\r\n\r\n",
            b"id: 7\r\nretry: 1000\r\n\r\n",
            b"event: message\r\ndata: " + json.dumps(_chunk("x")).encode() + b"\r\n\r\n",
            b":keep-alive\n\n",
            b"data: " + json.dumps(_chunk("y", finish="stop")).encode() + b"\r\n\r\ndata: [DONE]\r\n\r\n",
        )
    )
    assert list(client.chat.complete("hi", model="m", stream=True)) == ["x", "y"]


def test_stream_multiline_data_event(fake, client):
    obj = json.dumps(_chunk("multi", finish="stop"), indent=1).encode()  # JSON spread over lines
    fake.script.append(stream_reply(b"".join(b"data: " + line + b"\n" for line in obj.split(b"\n")) + b"\n", b"data: [DONE]\n\n"))
    assert list(client.chat.complete("hi", model="m", stream=True)) == ["multi"]


def test_stream_utf8_split_across_tcp_writes(fake, client):
    data = ev(_chunk("h\u00e9llo \u4e2d\U0001f642", finish="stop")).replace(b"\\u00e9", "\u00e9".encode()).replace(
        b"\\u4e2d", "\u4e2d".encode()
    ).replace(b"\\ud83d\\ude42", "\U0001f642".encode())
    assert "\u4e2d".encode() in data
    cut1, cut2 = data.index("\u00e9".encode()) + 1, data.index("\U0001f642".encode()) + 2
    fake.script.append(stream_reply(data[:cut1], data[cut1:cut2], data[cut2:], b"data: [DONE]\n\n", pause=0.01))
    assert "".join(client.chat.complete("hi", model="m", stream=True)) == "h\u00e9llo \u4e2d\U0001f642"


def test_stream_two_interleaved_tool_calls(fake, client):
    def tc(index, args, id=None, name=None):
        d = {"index": index, "function": {"arguments": args}}
        if id:
            d.update(id=id, type="function")
            d["function"]["name"] = name
        return d

    fake.script.append(
        stream_reply(
            ev(_chunk(tool_calls=[tc(0, "", "call_a", "get_weather")])),
            ev(_chunk(tool_calls=[tc(1, '{"q"', "call_b", "search")])),
            ev(_chunk(tool_calls=[tc(0, '{"city":')])),
            ev(_chunk(tool_calls=[tc(1, ': "x"}')])),
            ev(_chunk(tool_calls=[tc(0, ' "Paris"}')], finish="tool_calls")),
            b"data: [DONE]\n\n",
        )
    )
    stream = client.chat.complete("hi", model="m", stream=True)
    assert list(stream) == []
    assert stream.tool_calls == [
        venice.ToolCall("call_a", "get_weather", '{"city": "Paris"}'),
        venice.ToolCall("call_b", "search", '{"q": "x"}'),
    ]
    assert stream.tool_calls[0].args == {"city": "Paris"} and stream.finish_reason == "tool_calls"
    assert stream.response.message.tool_calls[1].function.arguments == '{"q": "x"}'


def test_stream_tool_calls_sharing_an_index_split_by_id_and_missing_index():
    asm = venice._ToolCallAssembler()
    asm.add([{"index": 0, "id": "a", "function": {"name": "f", "arguments": "{}"}}])
    asm.add([{"index": 0, "id": "b", "function": {"name": "g", "arguments": {"x": 1}}}])  # same index, new id
    asm.add([{"function": {"arguments": ""}}])  # no index: continues the latest call
    asm.add([{"id": "c", "function": {"name": "h", "arguments": "{"}}, {"function": {"arguments": "}"}}])
    assert asm.result() == [
        venice.ToolCall("a", "f", "{}"),
        venice.ToolCall("b", "g", '{"x": 1}'),
        venice.ToolCall("c", "h", "{}"),
    ]


@pytest.mark.parametrize(
    "event,code,message",
    [
        (ev({"error": {"message": "The model is overloaded", "type": "server_error", "code": "model_overloaded", "retry_after": 30}}), "model_overloaded", "The model is overloaded"),
        (ev({"error": "upstream went away", "code": "upstream_error"}), "upstream_error", "upstream went away"),
        (b"event: error\ndata: plain text failure\n\n", None, "plain text failure"),
    ],
)
def test_stream_in_band_error_keeps_partial_text(fake, client, event, code, message):
    fake.script.append(stream_reply(ev(_chunk("Partial ")), ev(_chunk("answer")), event, b"data: [DONE]\n\n", headers=[("CF-RAY", "ray-9")]))
    stream = client.chat.complete("hi", model="m", stream=True)
    got = []
    with pytest.raises(venice.StreamError) as info:
        for text in stream:
            got.append(text)
    err = info.value
    assert got == ["Partial ", "answer"]
    assert (err.partial, err.code, err.message, err.request_id) == ("Partial answer", code, message, "ray-9")
    assert KEY not in str(err) + repr(err)


def test_stream_eof_without_done_raises_unless_finished(fake, client):
    fake.script.append(stream_reply(ev(_chunk("cut"))))
    with pytest.raises(venice.StreamError) as info:
        list(client.chat.complete("hi", model="m", stream=True))
    assert info.value.partial == "cut" and "ended before the answer was complete" in str(info.value)
    fake.script.append(stream_reply(ev(_chunk("whole", finish="stop"))))  # finished: only usage/[DONE] missing
    stream = client.chat.complete("hi", model="m", stream=True)
    assert list(stream) == ["whole"] and stream.done


def test_stream_reset_mid_stream_is_a_connection_error_with_partial(fake, client):
    fake.script.append(stream_reply(ev(_chunk("so far")), reset, end=False))
    with pytest.raises(venice.APIConnectionError) as info:
        list(client.chat.complete("hi", model="m", stream=True))
    assert type(info.value) is venice.APIConnectionError and info.value.partial == "so far"
    assert client.chat.complete("again", model="m").text == "Echo: again"  # the client recovers


def test_stream_stall_mid_stream_times_out_with_partial(fake, fake_env):
    fake.script.append(stream_reply(ev(_chunk("before ")), lambda h: time.sleep(5.0), ev(_chunk("late")), end=True))
    with venice.VeniceClient(KEY, base_url=fake.url, timeout=0.3, max_retries=0) as c:
        started = time.monotonic()
        with pytest.raises(venice.APITimeoutError) as info:
            list(c.chat.complete("hi", model="m", stream=True))
        assert time.monotonic() - started < 4  # the server stalls for 5 s
    assert info.value.partial == "before "


def test_stream_pings_do_not_reset_the_idle_timeout(fake, fake_env):
    def pings(handler):
        for _ in range(50):  # pings for 5 s, then data: only a timeout that ignores pings fires
            try:
                write_chunk(handler, b": ping\n\n")
            except OSError:
                return
            time.sleep(0.1)

    fake.script.append(stream_reply(ev(_chunk("a")), pings, ev(_chunk("b", finish="stop")), b"data: [DONE]\n\n"))
    with venice.VeniceClient(KEY, base_url=fake.url, timeout=0.5, max_retries=0) as c:
        started = time.monotonic()
        with pytest.raises(venice.APITimeoutError) as info:
            list(c.chat.complete("hi", model="m", stream=True))
        elapsed = time.monotonic() - started
    assert 0.4 <= elapsed < 4 and info.value.partial == "a" and "only keep-alives" in str(info.value)


def test_stream_deadline_bounds_the_whole_call(fake, fake_env):
    fake.script.append(stream_reply(*[ev(_chunk("x")) for _ in range(20)], b"data: [DONE]\n\n", pause=0.05))
    with venice.VeniceClient(KEY, base_url=fake.url, timeout=5, max_retries=0) as c:
        with pytest.raises(venice.APITimeoutError) as info:
            list(c.chat.complete("hi", model="m", stream=True, deadline=0.3))
    assert info.value.partial.startswith("xx") and "deadline" in str(info.value)


def test_stream_early_break_then_another_call_on_the_same_client(fake, client):
    fake.script.append(stream_reply(*[ev(_chunk(f"{i} ")) for i in range(50)], b"data: [DONE]\n\n", pause=0.005))
    stream = client.chat.complete("hi", model="m", stream=True)
    first = next(iter(stream))
    stream.close()
    assert first == "0 "
    assert client.chat.complete("next", model="m").text == "Echo: next"
    with client.chat.complete("third", model="m", stream=True) as s:
        assert "".join(s) == "Echo: third"
    assert client.chat.complete("fourth", model="m").text == "Echo: fourth"
    # the aborted stream's connection was closed, not returned half-read; the others were reused
    assert client._transport.connections_opened == 2


def test_stream_dropped_without_close_releases_the_connection(fake, client):
    import gc

    fake.script.append(stream_reply(*[ev(_chunk("x")) for _ in range(30)], b"data: [DONE]\n\n", pause=0.005))
    stream = client.chat.complete("hi", model="m", stream=True)
    next(iter(stream))
    del stream
    gc.collect()
    assert client.chat.complete("after", model="m").text == "Echo: after"


def test_stream_non_event_stream_200_is_an_error(fake, client):
    def html(handler):
        body = b"<html><title>Just a moment...</title><body>Checking your browser</body></html>"
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    fake.script.append(html)
    with pytest.raises(venice.VeniceAPIError) as info:
        client.chat.complete("hi", model="m", stream=True)
    assert info.value.status_code == 200 and "expected an event stream but got text/html" in str(info.value)
    assert "Just a moment..." in str(info.value)


def test_stream_gzip_is_decoded_incrementally(fake, client):
    import zlib

    raw = ev(_chunk("zip", finish="stop")) + b"data: [DONE]\n\n"
    comp = zlib.compressobj(6, zlib.DEFLATED, 31)
    packed = comp.compress(raw) + comp.flush(zlib.Z_SYNC_FLUSH)
    tail = comp.flush()
    fake.script.append(stream_reply(packed[:10], packed[10:], tail, headers=[("Content-Encoding", "gzip")]))
    assert list(client.chat.complete("hi", model="m", stream=True)) == ["zip"]


def test_stream_think_block_split_off_and_parts(fake, client):
    fake.script.append(stream_reply(*[ev(_chunk(t)) for t in ["<thi", "nk>plan", " it</th", "ink>\n\nDone", "."]], ev(_chunk(finish="stop")), b"data: [DONE]\n\n"))
    stream = client.chat.complete("hi", model="m", stream=True)
    assert list(stream.parts()) == [("reasoning", "plan"), ("reasoning", " it"), ("text", "Done"), ("text", ".")]
    assert (stream.text, stream.reasoning) == ("Done.", "plan it")


def test_stream_odd_chunk_shapes(fake, client):
    # content as a list of parts (some OpenAI-style servers) is read as its text
    parts = {"choices": [{"index": 0, "delta": {"content": [{"type": "text", "text": "hi"}]}}]}
    fake.script.append(stream_reply(ev(parts), ev(_chunk(" there", finish="stop")), ev(b"[DONE]")))
    with client.chat.complete("x", model="m", stream=True) as stream:
        assert list(stream) == ["hi", " there"] and stream.text == "hi there"
    # a chunk no API sends is a StreamError carrying the text so far, not a bare TypeError
    fake.script.append(stream_reply(ev(_chunk("so far")), ev({"choices": 5}), ev(b"[DONE]"), headers=[("CF-RAY", "r-1")]))
    with pytest.raises(venice.StreamError) as info:
        list(client.chat.complete("x", model="m", stream=True))
    assert "unexpected shape" in str(info.value) and info.value.partial == "so far"
    assert info.value.request_id == "r-1"
    fake.script.append(stream_reply(ev(_chunk("so far")), ev({"choices": [], "usage": "abc"}), ev(b"[DONE]")))
    with pytest.raises(venice.StreamError, match="unexpected shape"):
        list(client.chat.complete("x", model="m", stream=True))
    # lax values that are still readable: an index of null, reasoning that is not text
    lax = {"choices": [{"index": None, "delta": {"content": "B", "reasoning_content": 5}, "finish_reason": "stop"}]}
    fake.script.append(stream_reply(ev(_chunk("A")), ev(lax), ev(b"[DONE]")))
    with client.chat.complete("x", model="m", stream=True) as stream:
        assert "".join(stream) == "AB" and stream.reasoning is None and stream.response.text == "AB"


def test_stream_close_from_another_thread_ends_the_loop_quietly(fake, client):
    fake.script.append(stream_reply(ev(_chunk("first ")), lambda h: time.sleep(5), ev(_chunk("late", finish="stop"))))
    stream = client.chat.complete("x", model="m", stream=True)
    got, errors, first = [], [], threading.Event()

    def consume():
        try:
            for text in stream:
                got.append(text)
                first.set()
        except Exception as exc:  # noqa: BLE001 - the test reports whatever escapes
            errors.append(exc)

    reader = threading.Thread(target=consume)
    reader.start()
    assert first.wait(5)
    time.sleep(0.1)  # the reader is now blocked in the socket read, inside the generator
    started = time.monotonic()
    stream.close()  # a "stop" button
    reader.join(5)
    assert not reader.is_alive() and time.monotonic() - started < 2
    assert (got, errors, stream.text) == (["first "], [], "first ")
    assert client.chat.complete("again", model="m").text == "Echo: again"  # the client is fine


def test_stream_chunks_are_attribute_dicts(fake, client):
    fake.script.append(stream_reply(ev(_chunk("a")), ev(_chunk(tool_calls=[{"index": 0, "id": "c", "function": {"name": "f", "arguments": "{}"}}])), b"data: [DONE]\n\n"))
    chunks = list(client.chat.complete("hi", model="m", stream=True).chunks())
    assert chunks[0].choices[0].delta.content == "a" and chunks[0].choices[0].delta.tool_calls is None
    assert chunks[1].choices[0].delta.content is None and chunks[1].choices[0].delta.tool_calls[0].function.name == "f"


def test_stream_not_retried_after_the_body_began(fake, fake_env):
    fake.script.append(stream_reply(ev(_chunk("x")), reset, end=False))
    with venice.VeniceClient(KEY, base_url=fake.url, timeout=2, max_retries=3, sleep=lambda s: None) as c:
        with pytest.raises(venice.APIConnectionError):
            list(c.chat.complete("hi", model="m", stream=True))
    assert len([r for r in fake.requests if r[0] == "POST"]) == 1


def test_stream_retried_before_the_body(fake, fake_env):
    fake.script.append(lambda h: h._send(503, {"error": "Model at capacity"}))
    sleeps = []
    with venice.VeniceClient(KEY, base_url=fake.url, timeout=2, max_retries=2, sleep=sleeps.append, random=lambda: 0.0) as c:
        assert "".join(c.chat.complete("ok", model="m", stream=True)) == "Echo: ok"
    assert sleeps == [0.5]


###############################################################################
# Client and resource namespaces ##############################################
###############################################################################


def test_complete_non_streamed_text_reasoning_and_meta(fake, client):
    r = client.chat.complete([{"role": "user", "content": "hi"}], "venice-uncensored")
    assert (r.text, r.finish_reason, r.usage.total_tokens, r.meta.request_id) == ("Echo: hi", "stop", 8, "8c1f-TEST")
    assert r.meta.balance_usd == 12.5 and r.meta.model_id == "venice-uncensored"
    assert r["choices"][0]["message"]["content"] == r.choices[0].message.content
    assert r.reasoning is None and r.tool_calls == [] and r.missing_field is None

    def reasoning(handler):
        handler._send(200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": "<think>\nhmm\n</think>\n\nAnswer"}, "finish_reason": "stop"}]})

    fake.script.append(reasoning)
    r = client.chat.complete("q", model="m")
    assert (r.text, r.reasoning) == ("Answer", "hmm")
    fake.script.append(lambda h: h._send(200, {"choices": [{"message": {"content": "A", "reasoning_content": "R"}}]}))
    r = client.chat.complete("q", model="m")
    assert (r.text, r.reasoning) == ("A", "R")
    fake.script.append(lambda h: h._send(200, {"id": "x", "usage": {"total_tokens": 1}}))  # no choices at all
    r = client.chat.complete("q", model="m")
    assert (r.text, r.finish_reason, r.tool_calls, r.message) == (None, None, [], None)


def test_error_null_is_no_error(fake, client):
    answer = {"error": None, "choices": [{"index": 0, "message": {"content": "fine"}, "finish_reason": "stop"}]}
    fake.script.append(lambda h: h._send(200, answer))
    assert client.chat.complete("q", model="m").text == "fine"
    fake.script.append(stream_reply(ev({**_chunk("ok"), "error": None}), ev(_chunk(finish="stop")), ev(b"[DONE]")))
    assert "".join(client.chat.complete("q", model="m", stream=True)) == "ok"
    fake.get_script.append(lambda h: h._send(200, {"error": None, "data": {"default": "m"}}))
    assert client.models.traits() == {"default": "m"}


@pytest.mark.parametrize(
    "body, says",
    [
        ({"error": {"message": "model overloaded", "code": "model_overloaded"}}, "200 OK: model overloaded"),
        ({"choices": 5}, "the answer is not a chat completion"),
        ([1, 2], "the answer is not a chat completion: [1, 2]"),
    ],
)
def test_complete_200_that_is_no_chat_completion_raises(fake, client, body, says):
    fake.script.append(lambda h: h._send(200, body))
    with pytest.raises(venice.VeniceAPIError) as info:
        client.chat.complete("q", model="m")
    assert says in str(info.value) and info.value.status_code == 200 and info.value.request_id == "8c1f-TEST"
    if isinstance(body, dict) and "error" in body:
        assert info.value.code == "model_overloaded"


def test_odd_200_bodies_nested_too_deep_or_with_odd_fields(fake, client):
    fake.script.append(lambda h: h._send(200, b"[" * 100_000 + b"]" * 100_000))
    with pytest.raises(venice.VeniceAPIError, match="not valid JSON"):
        client.chat.complete("q", model="m")
    part = {"choices": [{"message": {"content": [{"type": "text", "text": 5}]}}]}
    fake.script.append(lambda h: h._send(200, part))
    assert client.chat.complete("q", model="m").text == "5"
    row = {"id": "m", "context_length": float("nan"), "model_spec": {"maxCompletionTokens": float("inf")}}
    fake.get_script.append(lambda h: h._send(200, json.dumps({"data": [row]}).encode()))
    (model,) = client.models.list()
    assert (model.context_length, model.max_completion_tokens) == (None, None)


def test_chat_response_properties_survive_odd_shapes():
    for body in ({"choices": [5]}, {"choices": [{"message": 5}]}, {"choices": [{"message": {"tool_calls": 5}}]}):
        r = venice.ChatResponse(body)
        assert (r.text, r.reasoning, r.tool_calls, r.finish_reason) == (None, None, [], None)
    r = venice.ChatResponse({"choices": [{"message": {"tool_calls": [5, {"id": "c", "function": {"name": "f"}}]}}]})
    assert [c.name for c in r.tool_calls] == ["f"] and venice.run_tool_calls(venice.ChatResponse({"choices": [5]}), []) == []


def test_retry_delay_for_absurd_attempt_numbers_is_capped():
    assert venice.retry_delay(venice.RetryPolicy(), 1100, {}, 0.0, 0.0) == 8.0


def test_complete_tool_calls_non_streamed(fake, client):
    fake.script.append(
        lambda h: h._send(200, {"choices": [{"message": {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}},
            {"id": "c2", "type": "function", "function": {"name": "g", "arguments": ""}},
            {"id": "c3", "type": "function", "function": {"name": "h", "arguments": "{bad"}},
        ]}, "finish_reason": "tool_calls"}]})
    )
    r = client.chat.complete("q", model="m")
    assert [c.args for c in r.tool_calls[:2]] == [{"a": 1}, {}]
    with pytest.raises(venice.InvalidRequestError) as info:
        _ = r.tool_calls[2].args
    assert "tool call 'h' has invalid JSON arguments" in str(info.value) and "{bad" in str(info.value)


def test_complete_strips_nulls_and_passes_kwargs(fake, client):
    client.chat.complete(
        [{"role": "user", "content": "hi", "name": None}],
        "m",
        max_tokens=50,
        stop="END",
        top_p=None,
        response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {"default": None}}},
        venice_parameters={"enable_web_search": "auto", "character_slug": None},
        seed=7,
    )
    body = fake.requests[-1][3]
    assert body == {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0.15,
        "max_completion_tokens": 50,
        "stop": ["END"],
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}},
        "venice_parameters": {"enable_web_search": "auto"},
        "seed": 7,
    }


@pytest.mark.parametrize(
    "kwargs,fragment",
    [
        ({"messages": 42}, "messages must be a string or a non-empty list"),
        ({"messages": []}, "messages must be a string or a non-empty list"),
        ({"messages": [{"content": "x"}]}, "messages[0] has no role"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0] has role 'robot'"),
        ({"messages": "x", "temperature": 3}, "temperature must be a number from 0 to 2"),
        ({"messages": "x", "stop": ["a", "b", "c", "d", "e"]}, "at most 4 stop sequences; got 5"),
        ({"messages": "x", "stop": [""]}, "stop must be a non-empty string"),
        ({"messages": "x", "seed": 0}, "seed must be a whole number >= 1"),
        ({"messages": "x", "max_tokens": 0}, "max_tokens must be a whole number >= 1"),
        ({"messages": "x", "model": 5}, "model must be a model id string"),
        ({"messages": "x", "tools": [5]}, "tools[0] must be a tool dict or a function"),
        ({"messages": "x", "tools": 5}, "tools must be a list"),
        ({"messages": "x", "venice_parameters": [1]}, "venice_parameters must be a dict"),
        ({"messages": [{"role": "user", "content": b"x"}]}, "can't be sent as JSON: Object of type bytes"),
        ({"messages": "x", "top_p": float("nan")}, "can't be sent as JSON: Out of range float"),
        ({"messages": "x\ud800"}, "can't be sent as JSON"),  # a lone surrogate has no UTF-8 form
        ({"messages": "x", "timeout": "abc"}, "timeout must be a positive number of seconds"),
        ({"messages": "x", "timeout": -1}, "timeout must be a positive number of seconds"),
        ({"messages": "x", "timeout": float("nan")}, "timeout must be a positive number of seconds"),
        ({"messages": "x", "deadline": "5"}, "deadline must be a number of seconds"),
        ({"messages": "x", "deadline": float("nan")}, "deadline must be a number of seconds"),
        ({"messages": [{"role": ["user"], "content": "x"}]}, "messages[0] has role ['user']"),
    ],
)
def test_complete_validation_errors_before_sending(fake, client, kwargs, fragment):
    messages = kwargs.pop("messages")
    with pytest.raises(venice.InvalidRequestError) as info:
        client.chat.complete(messages, kwargs.pop("model", "m"), **kwargs)
    assert fragment in str(info.value) and info.value.status_code is None
    assert fake.requests == []


def test_cyclic_or_too_deep_bodies_are_refused_before_sending(fake, client):
    cyclic = []
    cyclic.append(cyclic)
    deep = []
    for _ in range(5000):
        deep = [deep]
    for value in (cyclic, deep):
        with pytest.raises(venice.InvalidRequestError, match="can't be sent as JSON"):
            client.chat.complete("x", model="m", metadata=value)
    assert fake.requests == []


@pytest.mark.parametrize(
    "args,kwargs,fragment",
    [
        (("GET", "/models x"), {}, "has spaces, control or non-ASCII characters"),
        (("GET", "/models\r\nX-Injected: 1"), {}, "has spaces, control or non-ASCII characters"),
        (("GET", "/models/caf\u00e9"), {}, "has spaces, control or non-ASCII characters"),
        (("GE T", "/models"), {}, "'GE T' is not an HTTP method"),
        (("GET", "/models"), {"params": [("type", "text")]}, "params must be a dict, not list"),
        (("GET", "/models"), {"params": {"q": "\ud800"}}, "params can't be put in a URL"),
        ((None, "/models"), {}, "method and path must be strings"),
        (("GET", b"/models"), {}, "method and path must be strings"),
        (("GET", "/models"), {"headers": "X-A: 1"}, "headers must be a dict"),
        (("POST", "/embeddings"), {"json": {"input": object()}}, "can't be sent as JSON"),
    ],
)
def test_request_validation_errors_before_sending(fake, client, args, kwargs, fragment):
    with pytest.raises(venice.InvalidRequestError, match=fragment):
        client.request(*args, **kwargs)
    assert fake.requests == [] and fake.connections == 0


def test_complete_needs_a_model(fake, client):
    with pytest.raises(venice.ConfigError) as info:
        client.chat.complete("hi")
    assert "No model given" in str(info.value) and "VENICE_MODEL" in str(info.value)
    with venice.VeniceClient(KEY, base_url=fake.url, default_model="dflt", env_file=False) as c:
        c.chat.complete("hi")
    assert fake.requests[-1][3]["model"] == "dflt"


def test_function_to_tool_partials_lambdas_and_builtins():
    import functools

    def book(city: str, nights: int = 1) -> str:
        """Book a room."""
        return f"{city} x{nights}"

    tool = venice.function_to_tool(functools.partial(book, "Paris"))
    assert tool["function"] == {
        "name": "book",
        "description": "Book a room.",
        "parameters": {"type": "object", "properties": {"nights": {"type": "integer"}}},
    }
    for fn, says in ((lambda x: x, "has no usable tool name"), (max, "can't read the parameters")):
        with pytest.raises(venice.InvalidRequestError, match=says):
            venice.function_to_tool(fn)
    with pytest.raises(venice.InvalidRequestError, match="has no usable tool name"):
        venice.run_tool_calls([], [lambda: 1])
    call = {"id": "c1", "function": {"name": "book", "arguments": '{"nights": 2}'}}
    assert venice.run_tool_calls([call], [functools.partial(book, "Rome")])[0]["content"] == "Rome x2"


def test_function_to_tool_schema():
    import enum
    from typing import Literal, Optional

    class Color(enum.Enum):
        RED = "red"
        BLUE = "blue"

    def paint(wall: str, color: Color, coats: int = 2, glossy: Optional[bool] = None, rooms: list[str] = (), mode: Literal["fast", "slow"] = "fast", ratio: float = 1.0, extra: dict = None):  # noqa: B006
        """Paint a wall.

        More details here.

        Args:
            wall: Which wall
                (north or south).
            color: The colour.
        """

    tool = venice.function_to_tool(paint)
    assert tool == {
        "type": "function",
        "function": {
            "name": "paint",
            "description": "Paint a wall.",
            "parameters": {
                "type": "object",
                "properties": {
                    "wall": {"type": "string", "description": "Which wall (north or south)."},
                    "color": {"type": "string", "enum": ["red", "blue"], "description": "The colour."},
                    "coats": {"type": "integer"},
                    "glossy": {"type": "boolean"},
                    "rooms": {"type": "array", "items": {"type": "string"}},
                    "mode": {"type": "string", "enum": ["fast", "slow"]},
                    "ratio": {"type": "number"},
                    "extra": {"type": "object"},
                },
                "required": ["wall", "color"],
            },
        },
    }


def test_tools_accepts_functions_and_run_tool_calls_round_trip(fake, client):
    def get_weather(city: str) -> dict:
        """Weather."""
        return {"city": city, "t": 21}

    def broken(city: str) -> str:
        raise RuntimeError("sensor offline")

    r = client.chat.complete("weather?", model="m", tools=[get_weather])
    assert fake.requests[-1][3]["tools"][0]["function"]["name"] == "get_weather"
    assert venice.run_tool_calls(r, [get_weather]) == [{"role": "tool", "tool_call_id": "call_1", "content": '{"city": "Paris", "t": 21}'}]
    assert venice.run_tool_calls(r, {"get_weather": broken}) == [{"role": "tool", "tool_call_id": "call_1", "content": "Error: RuntimeError: sensor offline"}]
    assert venice.run_tool_calls(r.message, {}) == [{"role": "tool", "tool_call_id": "call_1", "content": "Error: there is no tool named 'get_weather'"}]
    bad = [venice.ToolCall("c9", "get_weather", "{nope")]
    assert "invalid JSON arguments" in venice.run_tool_calls(bad, [get_weather])[0]["content"]


def test_normalize_stop_and_estimate_tokens():
    assert venice.normalize_stop(None) is None and venice.normalize_stop("x") == ["x"]
    assert venice.normalize_stop(["a", "a", "b"]) == ["a", "b"] and venice.normalize_stop([]) is None
    prose = "The quick brown fox jumps over the lazy dog. " * 20  # 200 tokens for cl100k
    assert 170 <= venice.estimate_tokens(prose) <= 230
    story = (
        'When the river rose in the spring of that year, the people of the valley moved their animals to the '
        'high pastures and waited. Nobody could remember a flood like it. The old bridge, which had stood for'
        ' three generations, was carried away on the second night, and with it the only road to the market '
        'town. For a week the village lived on what it had stored: dried beans, hard cheese, the last of the '
        'winter apples. The children thought it was a holiday. Their parents, who knew how thin the margins '
        'were, spent the evenings counting sacks and arguing quietly about whether to send someone over the '
        'mountain on foot. In the end it was the schoolteacher who went, because she was young, because she '
        'knew the path, and because, as she said, nobody would miss a few days of arithmetic. She left before'
        ' dawn with bread, a rope and a letter to the district office asking for help. The weather turned '
        'against her on the pass, and for two days there was no news at all. When she came back, she brought '
        'not only the promise of a new bridge but a surveyor, a mule loaded with flour, and a story about a '
        "night spent in a shepherd's hut listening to the wind that she would tell for the rest of her life. "
        'The bridge took two summers to build. It is still there, a little crooked, with her name cut into '
        'the first stone.'
    )
    # 287 tokens for cl100k_base and 285 for o200k_base (counted with the npm package gpt-tokenizer 4.0.0)
    assert abs(venice.estimate_tokens(story) - 287) <= 0.15 * 287
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there!"}]
    assert venice.estimate_tokens(messages) == 3 + (4 + 3) + (4 + 3)


def test_models_list_traits_mapping_without_a_key(fake, fake_env):
    with venice.VeniceClient(base_url=fake.url, env_file=False, environ={}) as c:
        models = c.models.list()
        assert [m.id for m in models] == ["venice-uncensored", "zai-org-glm-5-2"] and len(models) == 2
        glm = models[1]
        assert (glm.context_length, glm.max_completion_tokens, glm.traits, glm.owned_by) == (198000, 32000, ["default", "function_calling_default"], "venice.ai")
        assert glm.capabilities["supportsVision"] is True and glm.pricing["input"]["usd"] == 0.85 and glm.raw == FAKE_MODELS[1]
        assert models[0].context_length == 32768  # from model_spec when context_length is absent
        assert c.models.traits() == {"default": "zai-org-glm-5-2"}
        assert c.models.compatibility_mapping() == {"gpt-4o": "zai-org-glm-5-2"}
        c.models.list("all")
        with pytest.raises(venice.ConfigError):
            c.chat.complete("hi", model="m")
    assert [r[1] for r in fake.requests] == [
        "/api/v1/models?type=text", "/api/v1/models/traits?type=text", "/api/v1/models/compatibility_mapping?type=text", "/api/v1/models?type=all",
    ]
    assert all("Authorization" not in r[2] for r in fake.requests)
    assert [m.id for m in venice.list_models(base_url=fake.url)] == ["venice-uncensored", "zai-org-glm-5-2"]


def test_module_level_chat_uses_a_lazy_default_client(fake, fake_env, monkeypatch):
    monkeypatch.setattr(venice, "_default_client", None)
    assert venice.chat("one-liner", model="m").text == "Echo: one-liner"
    first = venice._default_client
    assert venice.chat("again", model="m").text == "Echo: again" and venice._default_client is first
    first.close()


@pytest.mark.parametrize("body, says", [({"error": "nope"}, "200 OK: nope"), ({"data": 5}, "answered without a data"), ([1], "answered without a data")])
def test_200_answers_of_the_wrong_shape_raise(fake, client, body, says):
    calls = [client.models.list, client.models.traits, client.models.compatibility_mapping]
    for call in calls:
        fake.get_script.append(lambda h: h._send(200, body))
        with pytest.raises(venice.VeniceAPIError, match=says) as info:
            call()
        assert info.value.status_code == 200
    fake.script.append(lambda h: h._send(200, body))
    with pytest.raises(venice.VeniceAPIError, match=says):
        venice.OpenAI(api_key=KEY, base_url=fake.url).embeddings.create(input="x", model="e")


def test_model_rows_with_odd_fields_still_load(fake, client):
    row = {"id": "m", "model_spec": {"capabilities": ["x"], "traits": "default", "pricing": 1}}
    fake.get_script.append(lambda h: h._send(200, {"data": [row, 5, {"id": "n", "model_spec": 5}]}))
    m, n = client.models.list()
    assert (m.id, m.capabilities, m.traits, m.pricing, m.raw) == ("m", {}, [], {}, row)
    assert (n.id, n.context_length, n.capabilities) == ("n", None, {})


def test_models_retrieve(fake, client):
    assert client.models.retrieve("zai-org-glm-5-2").max_completion_tokens == 32000
    with pytest.raises(venice.NotFoundError) as info:
        client.models.retrieve("gone")
    assert info.value.code == "MODEL_NOT_FOUND" and "no model 'gone'" in str(info.value)


def test_client_embeddings_with_venices_default_embedding_model_looked_up_once(fake):
    with venice.VeniceClient(KEY, base_url=fake.url) as c:
        r = c.embeddings.create("hello")
        assert r.data[0].embedding == [0.1, 0.2, 0.3] and r.meta.request_id == "8c1f-TEST"
        assert len(c.embeddings.create(["a", "b"]).data) == 2
        assert c.embeddings.create("x", "my-embedder").model == "my-embedder"
    gets = [r[1] for r in fake.requests if r[0] == "GET"]
    assert gets == ["/api/v1/models/traits?type=embedding"]  # once per client, not per call
    assert [r[3]["model"] for r in fake.requests if r[0] == "POST"] == ["zai-org-glm-5-2"] * 2 + ["my-embedder"]
    fake.get_script.append(lambda h: h._send(200, {"data": {}}))
    with venice.VeniceClient(KEY, base_url=fake.url) as c, pytest.raises(venice.ConfigError, match="no default embedding model"):
        c.embeddings.create("x")


def test_mock_transport_answers_both_clients_with_the_same_behaviour_as_sockets():
    import asyncio
    import gzip

    def handler(request):
        body = json.loads(request.content) if request.content else None
        if request.method == "GET":
            return 200, {"Content-Type": "application/json", "Content-Encoding": "gzip"}, gzip.compress(
                json.dumps({"data": FAKE_MODELS}).encode()
            )
        if body["messages"][0]["content"] == "fail":
            return 429, {"Retry-After": "1", "CF-RAY": "ray-1"}, b'{"error": "Rate limit exceeded"}'
        if body.get("stream"):
            return 200, {"Content-Type": "text/event-stream"}, iter([_sse(_chunk("Hel")), _sse(_chunk("lo", finish="stop")), b"data: [DONE]\n\n"])
        return 200, {"Content-Type": "application/json"}, json.dumps({"choices": [{"message": {"content": request.url}}]}).encode()

    async def ahandler(request):
        return handler(request)

    sleeps = []
    mock = venice.MockTransport(handler)
    c = venice.VeniceClient(KEY, transport=mock, max_retries=1, sleep=sleeps.append)
    assert c.chat.complete("x", model="m").text == "https://api.venice.ai/api/v1/chat/completions"
    assert list(c.chat.complete("x", model="m", stream=True)) == ["Hel", "lo"]
    assert [m.id for m in c.models.list()] == ["venice-uncensored", "zai-org-glm-5-2"]  # gzip decoded
    with pytest.raises(venice.RateLimitError) as info:
        c.chat.complete("fail", model="m")
    assert (info.value.request_id, sleeps, len(mock.requests)) == ("ray-1", [1.0], 5)  # retried once, as over sockets
    assert mock.requests[0].headers["Authorization"] == f"Bearer {KEY}" and mock.requests[0].method == "POST"
    assert KEY not in repr(mock.requests[0].headers)

    async def run():
        a = venice.AsyncVeniceClient(KEY, transport=venice.MockTransport(ahandler), max_retries=0)
        r = await a.chat.complete("x", model="m")
        stream = await a.chat.complete("x", model="m", stream=True)
        texts = [t async for t in stream]
        models = await a.models.list()
        with pytest.raises(venice.RateLimitError):
            await a.chat.complete("fail", model="m")
        return r.text, texts, len(models), stream.finish_reason

    assert asyncio.run(run()) == ("https://api.venice.ai/api/v1/chat/completions", ["Hel", "lo"], 2, "stop")


def test_mock_transport_network_failures_and_bad_replies():
    def reset_mid_stream():
        yield _sse(_chunk("so far"))
        raise venice.APIConnectionError("the connection broke while reading the response")

    replies = [lambda r: (200, {"Content-Type": "text/event-stream"}, reset_mid_stream()), lambda r: "nonsense"]

    def handler(request):
        if request.method == "GET":
            raise venice.APIConnectionError("down")
        return replies.pop(0)(request)

    sleeps = []
    c = venice.VeniceClient(KEY, transport=venice.MockTransport(handler), sleep=sleeps.append, random=lambda: 0.0)
    with pytest.raises(venice.APIConnectionError) as info:
        list(c.chat.complete("x", model="m", stream=True))
    assert info.value.partial == "so far"
    with pytest.raises(venice.InvalidRequestError, match="must return \\(status, headers, body\\)"):
        c.chat.complete("x", model="m")
    with pytest.raises(venice.APIConnectionError, match="down"):
        c.models.list()
    assert sleeps == [0.5, 1.0]  # a GET is safe to re-send


def test_arun_tool_calls_awaits_async_tools_and_runs_plain_ones():
    import asyncio

    async def weather(city: str) -> dict:
        await asyncio.sleep(0)
        return {"city": city, "sky": "clear"}

    def shout(text: str) -> str:
        return text.upper()

    async def broken() -> str:
        raise RuntimeError("no")

    calls = [
        venice.ToolCall("c1", "weather", '{"city": "Paris"}'),
        venice.ToolCall("c2", "shout", '{"text": "hi"}'),
        venice.ToolCall("c3", "broken", "{}"),
        venice.ToolCall("c4", "weather", "{not json"),
        venice.ToolCall("c5", "missing", "{}"),
    ]
    messages = asyncio.run(venice.arun_tool_calls(calls, [weather, shout, broken]))
    assert [m["content"] for m in messages] == [
        '{"city": "Paris", "sky": "clear"}',
        "HI",
        "Error: RuntimeError: no",
        messages[3]["content"],
        "Error: there is no tool named 'missing'",
    ]
    assert messages[3]["content"].startswith("Error: InvalidRequestError: tool call 'weather' has invalid JSON")
    assert [m["tool_call_id"] for m in messages] == ["c1", "c2", "c3", "c4", "c5"]
    assert venice.run_tool_calls(calls[1:2], [shout]) == [{"role": "tool", "tool_call_id": "c2", "content": "HI"}]


# -- characters, billing and the lazy pager (issue 13) --
# Scenarios run against both clients (the `drive` fixture of the Async client section).


async def rows_of(client, pages, most=None):
    """Rows of a Pages, with `for` or `async for` as the client wants, stopping after `most`."""
    out = []
    if isinstance(client, venice.AsyncVeniceClient):
        async for row in pages:
            out.append(row)
            if most is not None and len(out) >= most:
                break
    else:
        for row in pages:
            out.append(row)
            if most is not None and len(out) >= most:
                break
    return out


def _reply(status, obj, headers=(), content_type="application/json"):
    return lambda h: h._send(status, obj, list(headers), content_type)


def test_characters_list_fetches_three_pages_lazily_by_offset(drive, fake):
    pages = [[{"slug": "a"}, {"slug": "b"}], [{"slug": "c"}, {"slug": "d"}], [{"slug": "e"}]]
    for i, page in enumerate(pages):
        fake.get_script.append(_reply(200, {"object": "list", "data": page}, [("x-page", str(i + 1))]))
    fake.get_script.append(_reply(200, {"object": "list", "data": [{"slug": "z"}, {"slug": "y"}]}))

    async def scenario(c):
        everything = c.characters.list("sage", tags=["wise", "old"], is_adult=False, sort_by="imports", page_size=2)
        assert everything.meta is None and fake.requests == []  # nothing sent before iterating
        slugs = [r.slug for r in await rows_of(c, everything)]
        first = c.characters.list(page_size=2)
        one = await rows_of(c, first, most=1)
        return slugs, everything.meta.headers["x-page"], everything.pages, [r.slug for r in one], first.pages

    assert drive.run(scenario, fake.url) == (["a", "b", "c", "d", "e"], "3", 3, ["z"], 1)
    assert [path for _, path, _, _ in fake.requests] == [
        "/api/v1/characters?search=sage&tags=wise%2Cold&isAdult=false&sortBy=imports&limit=2&offset=0",
        "/api/v1/characters?search=sage&tags=wise%2Cold&isAdult=false&sortBy=imports&limit=2&offset=2",
        "/api/v1/characters?search=sage&tags=wise%2Cold&isAdult=false&sortBy=imports&limit=2&offset=4",
        "/api/v1/characters?limit=2&offset=0",  # a break after the first row: one page fetched, no more
    ]


def test_character_reviews_follow_the_pagination_headers(drive, fake):
    for page in (1, 2, 3):
        headers = [("x-pagination-page", str(page)), ("x-pagination-total-pages", "3"), ("x-pagination-total", "5")]
        rows = [{"rating": page, "message": f"r{page}{i}"} for i in range(2 if page < 3 else 1)]
        fake.get_script.append(_reply(200, {"object": "list", "data": rows, "pagination": {"page": page}}, headers))
    fake.get_script.append(_reply(200, {"data": [{"rating": 5}, {"rating": 4}], "pagination": {"totalPages": 9, "total": 17}}))

    async def scenario(c):
        reviews = c.characters.reviews("alan watts", page_size=2)
        got = [r.message for r in await rows_of(c, reviews)]
        again = c.characters.reviews("alan-watts")
        first = await rows_of(c, again, most=1)
        return got, reviews.total, reviews.pages, [r.rating for r in first], again.total, again.pages

    assert drive.run(scenario, fake.url) == (["r10", "r11", "r20", "r21", "r30"], 5, 3, [5], 17, 1)
    assert [path for _, path, _, _ in fake.requests] == [
        "/api/v1/characters/alan%20watts/reviews?page=1&pageSize=2",
        "/api/v1/characters/alan%20watts/reviews?page=2&pageSize=2",
        "/api/v1/characters/alan%20watts/reviews?page=3&pageSize=2",
        "/api/v1/characters/alan-watts/reviews?page=1&pageSize=20",
    ]


def test_character_get_and_chatting_as_a_character(drive, fake):
    fake.get_script.append(_reply(200, {"data": {"slug": "alan-watts", "name": "Alan Watts"}}))
    fake.get_script.append(_reply(404, {"error": "Character not found"}))

    async def scenario(c):
        found = await aw(c.characters.get("alan-watts"))
        with pytest.raises(venice.NotFoundError) as missing:
            await aw(c.characters.get("nobody"))
        with pytest.raises(venice.InvalidRequestError, match="slug must be a non-empty string"):
            await aw(c.characters.get(""))
        r = await aw(c.chat.complete("hi", model="m", character="alan-watts", venice_parameters={"enable_web_search": "off"}))
        return found.name, found.meta.request_id, missing.value.status_code, r.text

    assert drive.run(scenario, fake.url) == ("Alan Watts", "8c1f-TEST", 404, "Echo: hi")
    assert fake.requests[-1][3]["venice_parameters"] == {"enable_web_search": "off", "character_slug": "alan-watts"}
    assert [path for _, path, _, _ in fake.requests[:2]] == ["/api/v1/characters/alan-watts", "/api/v1/characters/nobody"]


def test_pages_refuse_the_other_clients_loop(fake):
    with venice.VeniceClient(KEY, base_url=fake.url) as c:
        with pytest.raises(TypeError, match="iterate with `for`"):
            c.characters.list().__aiter__()
    a = venice.AsyncVeniceClient(KEY, base_url=fake.url)
    with pytest.raises(TypeError, match="iterate with `async for`"):
        iter(a.characters.list())
    with pytest.raises(venice.InvalidRequestError, match="page_size must be a whole number from 1 to 100, got 0"):
        a.characters.list(page_size=0)
    assert fake.requests == []


def test_billing_balance_and_usage_analytics(drive, fake):
    balance = {"canConsume": True, "consumptionCurrency": "DIEM", "balances": {"diem": 90.5, "usd": 25}, "diemEpochAllocation": 100}
    fake.get_script.append(_reply(200, balance))
    analytics = {"lookback": "2024-01-01:2024-01-31", "byDate": [{"date": "2024-01-15", "USD": 1.5, "DIEM": 0}]}
    fake.get_script.append(_reply(200, analytics))
    fake.get_script.append(_reply(200, {"error": "Admin API key required"}))

    async def scenario(c):
        import datetime

        b = await aw(c.billing.balance())
        a = await aw(c.billing.usage_analytics(start_date=datetime.date(2024, 1, 1), end_date="2024-01-31"))
        with pytest.raises(venice.VeniceAPIError) as refused:  # an error object in a 200
            await aw(c.billing.balance())
        assert str(refused.value) == "200 OK: Admin API key required (request id 8c1f-TEST)"
        with pytest.raises(venice.InvalidRequestError, match="pass both start_date and end_date, or neither"):
            await aw(c.billing.usage_analytics(start_date="2024-01-01"))
        return b.balances.usd, b.balances.diem, b.meta.request_id, a.byDate[0].USD

    assert drive.run(scenario, fake.url) == (25, 90.5, "8c1f-TEST", 1.5)
    assert [path for _, path, _, _ in fake.requests] == [
        "/api/v1/billing/balance",
        "/api/v1/billing/usage-analytics?startDate=2024-01-01&endDate=2024-01-31",
        "/api/v1/billing/balance",
    ]


def test_usage_history_walks_the_cursor_with_the_filters_only_first(drive, fake):
    for data, cursor in (([{"amount": -1}, {"amount": -2}], "c2"), ([{"amount": -3}], "c3"), ([{"amount": -4}], None)):
        fake.get_script.append(_reply(200, {"data": data, "nextCursor": cursor}, [("x-cursor", str(cursor))]))

    async def scenario(c):
        import datetime

        start = datetime.datetime(2026, 6, 1, 2, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
        history = c.billing.usage_history(currency="USD", start=start, end=datetime.date(2026, 7, 1), page_size=10)
        amounts = [e.amount for e in await rows_of(c, history)]
        return amounts, history.pages, history.meta.headers["x-cursor"]

    assert drive.run(scenario, fake.url) == ([-1, -2, -3, -4], 3, "None")
    assert [path for _, path, _, _ in fake.requests] == [
        "/api/v1/billing/usage-history?currency=USD&startTimestamp=2026-06-01T00%3A00%3A00Z"
        "&endTimestamp=2026-07-01T00%3A00%3A00Z&pageSize=10",
        "/api/v1/billing/usage-history?cursor=c2",  # the cursor alone: Venice rejects filters beside it
        "/api/v1/billing/usage-history?cursor=c3",
    ]


CSV_HEADER = b"timestamp,sku,units,amount,currency,notes\n"


def test_usage_history_csv_two_cursor_pages_one_header_row(drive, fake, tmp_path):
    page1 = CSV_HEADER + b'2026-06-01T00:00:00Z,llm,10,-0.1,USD,"a ""quoted""\nnote"\n2026-06-01T00:01:00Z,llm,5,-0.05,USD,\n'
    page2 = CSV_HEADER + b"2026-06-02T00:00:00Z,image,1,-0.01,USD,last"  # (no final line break)
    csv = "text/csv; charset=utf-8"
    fake.get_script.append(_reply(200, page1, [("x-next-cursor", "n2")], csv))
    fake.get_script.append(_reply(200, page2, [], csv))
    target = tmp_path / "out" / "usage.csv"
    target.parent.mkdir()
    seen = []

    async def scenario(c):
        return await aw(c.billing.usage_history_csv(str(target), start="2026-06-01T00:00:00Z", progress=seen.append))

    assert drive.run(scenario, fake.url) == 3
    assert target.read_bytes() == page1 + page2[len(CSV_HEADER) :]
    assert os.listdir(target.parent) == ["usage.csv"]  # the temporary file was renamed
    assert seen == [2, 3]
    assert [path for _, path, _, _ in fake.requests] == [
        "/api/v1/billing/usage-history?startTimestamp=2026-06-01T00%3A00%3A00Z",
        "/api/v1/billing/usage-history?cursor=n2",
    ]
    assert all(headers["Accept"] == "text/csv" for _, _, headers, _ in fake.requests)


def test_usage_history_csv_never_leaves_half_a_file(drive, fake, tmp_path):
    fake.get_script.append(_reply(200, CSV_HEADER + b"1,llm,1,-1,USD,\n", [("x-next-cursor", "n2")], "text/csv"))
    fake.get_script.append(_reply(400, {"error": "Invalid cursor"}))
    fake.get_script.append(_reply(200, {"data": [], "nextCursor": None}))  # JSON where CSV was asked for
    target = tmp_path / "usage.csv"
    target.write_bytes(b"old")

    async def scenario(c):
        with pytest.raises(venice.InvalidRequestError, match="^400 Bad Request: Invalid cursor"):
            await aw(c.billing.usage_history_csv(target))
        with pytest.raises(venice.VeniceAPIError, match="^200 OK: expected CSV but got application/json"):
            await aw(c.billing.usage_history_csv(target))
        with pytest.raises(venice.InvalidRequestError, match="path_or_file must be a path or a writable file"):
            await aw(c.billing.usage_history_csv(42))

    drive.run(scenario, fake.url)
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["usage.csv"]


def test_usage_history_csv_to_an_open_text_file(fake):
    fake.get_script.append(_reply(200, CSV_HEADER + b"1,llm,1,-1,USD,caf\xc3\xa9\n", [], "text/csv"))
    out = io.StringIO()
    with venice.VeniceClient(KEY, base_url=fake.url) as c:
        assert c.billing.usage_history_csv(out, currency="DIEM") == 1
    assert out.getvalue() == CSV_HEADER.decode() + "1,llm,1,-1,USD,caf\u00e9\n"
    assert fake.requests[0][1] == "/api/v1/billing/usage-history?currency=DIEM"


def test_the_retired_billing_usage_route_names_its_replacement(drive, fake):
    message = "This endpoint was sunset on 2026-09-16. Use GET /api/v1/billing/usage-history instead."
    sunset = [("Sunset", "Wed, 16 Sep 2026 00:00:00 GMT"), ("Link", '</api/v1/billing/usage-history>; rel="successor-version"')]
    fake.get_script.append(_reply(410, {"error": message}, sunset))
    fake.get_script.append(_reply(410, {"error": "gone"}))

    async def scenario(c):
        with pytest.raises(venice.NotFoundError) as retired:
            await aw(c.request("GET", "/billing/usage", params={"page": 1}))
        with pytest.raises(venice.NotFoundError) as other:
            await aw(c.request("GET", "/models/old"))
        return retired.value, other.value

    retired, other = drive.run(scenario, fake.url)
    assert retired.status_code == 410 and retired.message == message
    assert retired.hint.startswith("retired by Venice: use client.billing.usage_history() (GET /billing/usage-history;")
    assert str(retired).endswith("or, for CSV, client.billing.usage_history_csv()")
    assert other.hint is None and str(other) == "410 Gone: gone (request id 8c1f-TEST)"


# -- API keys, augment, crypto, x402 (issue 13) ------------------------------------------------------
# A loopback server answering these routes as the spec documents (the shared FakeVenice decodes every
# POST body as JSON and has no PATCH or DELETE): an in-memory key store, search, scrape, the
# multipart text parser, crypto RPC and x402. `server.replies` takes one-off raw answers (callables).

import email  # noqa: E402
import email.policy  # noqa: E402

WALLET = "0x" + "ab" * 20
NEW_SECRET = "vn-NEWSECRET-0123456789abcdef"


class KeysFake(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _KeysHandler)
        self.requests = []  # (method, path, headers, raw body)
        self.replies = []  # callables(handler) that answer the next request instead
        self.keys = {"k1": {"id": "k1", "description": "laptop", "apiKeyType": "ADMIN", "last6Chars": "abc123",
                            "consumptionLimits": {"usd": None, "diem": None}, "limitPeriod": "EPOCH",
                            "modelPrivacy": "ALL", "createdAt": "2026-11-01T00:00:00.000Z", "expiresAt": None,
                            "lastUsedAt": None}}  # fmt: skip
        self.url = f"http://127.0.0.1:{self.server_port}/api/v1"


class _KeysHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, obj, headers=(), content_type="application/json"):
        body = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("CF-RAY", "8c1f-KEYS")
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def handle_any(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.requests.append((self.command, self.path, dict(self.headers), raw))
        if self.server.replies:
            return self.server.replies.pop(0)(self)
        path, _, query = self.path.partition("?")
        route = (self.command, path[len("/api/v1"):])
        open_routes = {("GET", "/crypto/rpc/networks"), ("GET", "/api_keys/generate_web3_key"),
                       ("POST", "/api_keys/generate_web3_key"), ("POST", "/x402/top-up")}  # fmt: skip
        signed = self.headers.get("SIGN-IN-WITH-X") == "siwx-token"
        if route not in open_routes and not signed and self.headers.get("Authorization") != f"Bearer {KEY}":
            return self.send(401, {"error": "Authentication failed"})
        body = json.loads(raw) if self.headers.get("Content-Type") == "application/json" else None
        keys = self.server.keys
        if route == ("GET", "/api_keys"):
            return self.send(200, {"object": "list", "data": list(keys.values())})
        if route == ("POST", "/api_keys"):
            row = {"id": f"k{len(keys) + 1}", "description": body["description"], "apiKeyType": body["apiKeyType"],
                   "last6Chars": NEW_SECRET[-6:], "consumptionLimits": body.get("consumptionLimit", {}),
                   "limitPeriod": body.get("limitPeriod", "EPOCH"), "modelPrivacy": "ALL",
                   "createdAt": "2026-12-01T00:00:00.000Z", "expiresAt": body.get("expiresAt"), "lastUsedAt": None}  # fmt: skip
            keys[row["id"]] = row
            data = {k: row[k] for k in ("id", "apiKeyType", "limitPeriod", "modelPrivacy", "expiresAt")}
            return self.send(200, {"success": True, "data": {**data, "apiKey": NEW_SECRET, "consumptionLimit": row["consumptionLimits"]}})
        if route == ("PATCH", "/api_keys"):
            row = keys[body["id"]]
            row.update({k: v for k, v in body.items() if k in ("description", "expiresAt")})
            return self.send(200, {"data": row})
        if route == ("DELETE", "/api_keys"):
            key_id = dict(p.split("=") for p in query.split("&"))["id"]
            if keys.pop(key_id, None) is None:
                return self.send(404, {"error": "API key not found"})
            return self.send(200, {"success": True})
        if route == ("GET", "/api_keys/rate_limits"):
            return self.send(200, {"data": {"accessPermitted": True, "apiTier": {"id": "paid", "isCharged": True},
                                            "balances": {"USD": 12.5, "DIEM": 3}, "keyExpiration": None,
                                            "nextEpochBegins": "2026-12-02T00:00:00.000Z",
                                            "rateLimits": [{"apiModelId": "venice-uncensored", "rateLimits": [
                                                {"type": "RPM", "amount": 500}, {"type": "TPM", "amount": 1000000}]}]}})  # fmt: skip
        if route == ("GET", "/api_keys/rate_limits/log"):
            return self.send(200, {"object": "list", "data": [{"apiKeyId": "k1", "modelId": "venice-uncensored",
                                   "rateLimitTier": "paid", "rateLimitType": "RPM", "timestamp": "2026-11-30T10:00:00Z"}]})  # fmt: skip
        if route == ("GET", "/api_keys/generate_web3_key"):
            return self.send(200, {"success": True, "data": {"token": "sign-me-123"}})
        if route == ("POST", "/api_keys/generate_web3_key"):
            data = {"id": "w1", "apiKey": NEW_SECRET, "apiKeyType": body["apiKeyType"], "consumptionLimit": {},
                    "limitPeriod": "EPOCH", "modelPrivacy": "ALL", "expiresAt": None}  # fmt: skip
            return self.send(200, {"success": True, "data": data})
        if route[0] == "GET" and route[1].startswith("/api_keys/"):
            row = keys.get(route[1].rsplit("/", 1)[1])
            return self.send(200, {"data": row}) if row else self.send(404, {"error": "API key not found"})
        if route == ("POST", "/augment/search"):
            results = [{"title": f"Result {i} for {body['query']}", "url": f"https://example.com/{i}", "content": f"Text {i}.",
                        "date": "2026-11-30"} for i in range(1, body.get("limit", 2) + 1)]  # fmt: skip
            return self.send(200, {"query": body["query"], "results": results})
        if route == ("POST", "/augment/scrape"):
            return self.send(200, {"url": body["url"], "content": "# Example\n\nHello.", "format": "markdown"})
        if route == ("POST", "/augment/text-parser"):
            msg = email.message_from_bytes(b"Content-Type: " + self.headers["Content-Type"].encode() + b"\r\n\r\n" + raw,
                                           policy=email.policy.HTTP)  # fmt: skip
            fields = {p.get_param("name", header="content-disposition"): p for p in msg.iter_parts()}
            text = fields["file"].get_payload(decode=True).decode("utf-8", "replace")
            if fields["response_format"].get_payload() == "text":
                return self.send(200, text.encode(), content_type="text/plain; charset=utf-8")
            return self.send(200, {"text": text, "tokens": len(text.split())})
        if route == ("GET", "/crypto/rpc/networks"):
            return self.send(200, {"networks": ["base-mainnet", "ethereum-mainnet"]})
        if route[0] == "POST" and route[1].startswith("/crypto/rpc/"):
            return self.send(200, {"jsonrpc": "2.0", "id": body["id"], "result": "0x10"}, [("X-Venice-RPC-Credits", "1")])
        if route == ("GET", f"/x402/balance/{WALLET}"):
            return self.send(200, {"success": True, "data": {"walletAddress": WALLET, "balanceUsd": 4.5, "canConsume": True,
                                                             "minimumTopUpUsd": 5, "suggestedTopUpUsd": 10}})  # fmt: skip
        if route == ("GET", f"/x402/transactions/{WALLET}"):
            tx = {"id": "t1", "amount": 5, "balanceAfter": 5, "type": "TOP_UP", "createdAt": "2026-11-30T10:00:00Z",
                  "requestId": None, "modelId": None}  # fmt: skip
            return self.send(200, {"success": True, "data": {"walletAddress": WALLET, "currentBalance": 4.5, "transactions": [tx],
                                                             "pagination": {"limit": 50, "offset": 0, "hasMore": False}}})  # fmt: skip
        if route == ("POST", "/x402/top-up"):
            if self.headers.get("PAYMENT-SIGNATURE") != "paid":
                return self.send(402, {"x402Version": 2, "error": "Payment required", "accepts": [{"network": "base"}]})
            return self.send(200, {"success": True, "data": {"walletAddress": WALLET, "amountCredited": 5, "newBalance": 9.5,
                                                             "paymentId": "p1"}})  # fmt: skip
        return self.send(404, {"error": "Not found"})

    do_GET = do_POST = do_PATCH = do_DELETE = handle_any


@pytest.fixture
def keys_fake():
    with running(KeysFake()) as server:
        yield server


def test_api_keys_create_masks_the_secret_in_repr_and_keeps_it_as_an_attribute(drive, keys_fake):
    async def scenario(client):
        key = await aw(client.api_keys.create("ci runner", consumption_limit={"usd": 5}, expires_at="2027-01-01"))
        return key, repr(key), str(key), f"{key}"

    key, shown, text, formatted = drive.run(scenario, keys_fake.url)
    assert isinstance(key, venice.NewApiKey) and key.apiKey == NEW_SECRET and key["apiKey"] == NEW_SECRET
    assert NEW_SECRET not in shown + text + formatted
    assert shown == text == formatted and "'apiKey': 'vn-…cdef'" in shown and shown.startswith("NewApiKey({")
    assert key.id == "k2" and key.meta.request_id == "8c1f-KEYS"
    method, path, headers, raw = keys_fake.requests[-1]
    assert (method, path) == ("POST", "/api/v1/api_keys")
    assert json.loads(raw) == {"apiKeyType": "INFERENCE", "description": "ci runner", "consumptionLimit": {"usd": 5},
                               "expiresAt": "2027-01-01"}  # fmt: skip


def test_api_keys_list_get_update_delete_and_limits(drive, keys_fake):
    import datetime

    async def scenario(client):
        listed = await aw(client.api_keys.list())
        one = await aw(client.api_keys.get("k1"))
        updated = await aw(client.api_keys.update("k1", description="desk", expires_at=datetime.date(2027, 3, 1)))
        limits = await aw(client.api_keys.rate_limits())
        log = await aw(client.api_keys.rate_limit_log())
        deleted = await aw(client.api_keys.delete("k1"))
        with pytest.raises(venice.NotFoundError, match="API key not found"):
            await aw(client.api_keys.delete("k1"))
        return listed, one, updated, limits, log, deleted

    listed, one, updated, limits, log, deleted = drive.run(scenario, keys_fake.url)
    assert [k.id for k in listed] == ["k1"] and one.description == "laptop" and one.meta.request_id == "8c1f-KEYS"
    assert (updated.description, updated.expiresAt) == ("desk", "2027-03-01")
    assert limits.balances.USD == 12.5 and limits.rateLimits[0].rateLimits[0].amount == 500
    assert [(r.modelId, r.rateLimitType) for r in log] == [("venice-uncensored", "RPM")]
    assert deleted is True
    assert [(m, p) for m, p, _, _ in keys_fake.requests] == [
        ("GET", "/api/v1/api_keys"), ("GET", "/api/v1/api_keys/k1"), ("PATCH", "/api/v1/api_keys"),
        ("GET", "/api/v1/api_keys/rate_limits"), ("GET", "/api/v1/api_keys/rate_limits/log"),
        ("DELETE", "/api/v1/api_keys?id=k1"), ("DELETE", "/api/v1/api_keys?id=k1"),
    ]  # fmt: skip
    assert json.loads(keys_fake.requests[2][3]) == {"id": "k1", "description": "desk", "expiresAt": "2027-03-01"}


def test_api_keys_ids_are_one_path_segment_and_expiry_datetimes_are_utc(keys_fake):
    import datetime

    client = venice.VeniceClient(KEY, base_url=keys_fake.url)
    with pytest.raises(venice.NotFoundError):
        client.api_keys.get("a/b c")
    assert keys_fake.requests[-1][1] == "/api/v1/api_keys/a%2Fb%20c"
    with pytest.raises(venice.InvalidRequestError, match="id must be a non-empty string, got ''"):
        client.api_keys.delete("")
    when = datetime.datetime(2027, 1, 1, 2, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    client.api_keys.create("x", api_key_type="ADMIN", expires_at=when)
    assert json.loads(keys_fake.requests[-1][3])["expiresAt"] == "2027-01-01T00:30:00Z"


def test_api_keys_web3_flow_is_two_calls_and_needs_no_key(drive, keys_fake):
    async def scenario(client):
        token = await aw(client.api_keys.web3_token())
        key = await aw(client.api_keys.generate_web3_key(WALLET, "0xsig", token, description="wallet key"))
        return token, key

    drive_cls = drive.cls
    token, key = asyncio.run(_keyless(drive_cls, keys_fake.url, scenario))
    assert token == "sign-me-123" and key.apiKey == NEW_SECRET and NEW_SECRET not in repr(key)
    (m1, p1, h1, _), (m2, p2, h2, raw) = keys_fake.requests
    assert (m1, p1, m2, p2) == ("GET", "/api/v1/api_keys/generate_web3_key", "POST", "/api/v1/api_keys/generate_web3_key")
    assert "Authorization" not in h1 and "Authorization" not in h2
    assert json.loads(raw) == {"apiKeyType": "INFERENCE", "address": WALLET, "signature": "0xsig", "token": "sign-me-123",
                               "description": "wallet key"}  # fmt: skip


async def _keyless(cls, url, scenario):
    client = cls(base_url=url, env_file=False, environ={})  # no key anywhere
    assert client.config.api_key is None
    try:
        return await scenario(client)
    finally:
        await aw(client.close())


def test_augment_search_and_scrape(drive, keys_fake):
    async def scenario(client):
        found = await aw(client.augment.search("venice", limit=2, search_provider="brave"))
        page = await aw(client.augment.scrape("https://example.com"))
        return found, page

    found, page = drive.run(scenario, keys_fake.url)
    assert [r.title for r in found.results] == ["Result 1 for venice", "Result 2 for venice"]
    assert found.meta.request_id == "8c1f-KEYS"
    assert (page.url, page.content, page.format) == ("https://example.com", "# Example\n\nHello.", "markdown")
    assert json.loads(keys_fake.requests[0][3]) == {"query": "venice", "limit": 2, "search_provider": "brave"}
    assert json.loads(keys_fake.requests[1][3]) == {"url": "https://example.com"}


def test_augment_parse_text_sends_multipart_that_email_parses(drive, keys_fake, tmp_path):
    path = tmp_path / 'ré "sumé"\\1.txt'
    path.write_bytes(b"hello from a file")

    async def scenario(client):
        from_path = await aw(client.augment.parse_text(str(path)))
        with open(path, "rb") as fh:
            from_object = await aw(client.augment.parse_text(fh, response_format="text"))
        tricky = b"--venice-\r\n\r\n--x--\r\n\x00\xff"
        from_bytes = await aw(client.augment.parse_text(tricky, filename="b.pdf"))
        return from_path, from_object, from_bytes

    from_path, from_object, from_bytes = drive.run(scenario, keys_fake.url)
    assert (from_path.text, from_path.tokens) == ("hello from a file", 4) and from_path.meta.request_id == "8c1f-KEYS"
    assert from_object == "hello from a file"
    parsed = []
    for method, target, headers, raw in keys_fake.requests:
        assert (method, target) == ("POST", "/api/v1/augment/text-parser")
        ctype = headers["Content-Type"]
        assert ctype.startswith("multipart/form-data; boundary=venice-")
        msg = email.message_from_bytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + raw, policy=email.policy.HTTP)
        assert msg.is_multipart() and not msg.defects
        parsed.append([(p.get_param("name", header="content-disposition"), p.get_filename(), p.get_content_type(),
                        p.get_payload(decode=True)) for p in msg.iter_parts()])  # fmt: skip
    assert parsed == [
        [("file", 'ré "sumé"\\1.txt', "text/plain", b"hello from a file"), ("response_format", None, "text/plain", b"json")],
        [("file", 'ré "sumé"\\1.txt', "text/plain", b"hello from a file"), ("response_format", None, "text/plain", b"text")],
        [("file", "b.pdf", "application/pdf", b"--venice-\r\n\r\n--x--\r\n\x00\xff"), ("response_format", None, "text/plain", b"json")],
    ]  # fmt: skip
    assert from_bytes.text == "--venice-\r\n\r\n--x--\r\n\x00\ufffd"


def test_multipart_boundary_never_occurs_in_the_data(monkeypatch):
    draws = iter([b"\x01" * 16, b"\x02" * 16])
    monkeypatch.setattr(venice.os, "urandom", lambda n: next(draws))
    clash = b"xx--venice-" + b"01" * 16 + b"yy"  # the first boundary drawn is in the file: a second is drawn
    form = venice._multipart([("file", ("a.bin", clash, "application/octet-stream"))])
    assert form.content_type == "multipart/form-data; boundary=venice-" + "02" * 16
    assert form.data == (
        b"--venice-" + b"02" * 16 + b'\r\nContent-Disposition: form-data; name="file"; filename="a.bin"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n" + clash + b"\r\n--venice-" + b"02" * 16 + b"--\r\n"
    )
    assert venice._form_quote('a"b\\c\r\nd') == 'a\\"b\\\\c%0D%0Ad'


def test_augment_parse_text_refuses_text_files_and_missing_paths(tmp_path):
    client = venice.VeniceClient(KEY, base_url="http://127.0.0.1:9/api/v1")
    (tmp_path / "t.txt").write_text("x")
    with open(tmp_path / "t.txt") as fh, pytest.raises(venice.InvalidRequestError, match=r"binary mode \('rb'\)"):
        client.augment.parse_text(fh)
    with pytest.raises(venice.InvalidRequestError, match="can't read 'nope.pdf': No such file or directory"):
        client.augment.parse_text("nope.pdf")
    with pytest.raises(venice.InvalidRequestError, match="not int"):
        client.augment.parse_text(5)


def test_crypto_rpc_keeps_its_idempotency_key_across_a_retry(drive, keys_fake):
    keys_fake.replies.append(lambda h: h.send(503, {"error": "node busy"}))
    sleeps = []

    async def scenario(client):
        answer = await aw(client.crypto.rpc("base-mainnet", "eth_blockNumber"))
        networks = await aw(client.crypto.networks())
        return networks, answer

    networks, answer = drive.run(scenario, keys_fake.url, sleep=drive.sleep_into(sleeps), random=lambda: 0.5)
    assert networks == ["base-mainnet", "ethereum-mainnet"] and answer.result == "0x10" and answer.id == 1
    assert answer.meta.request_id == "8c1f-KEYS" and len(sleeps) == 1
    posts = [r for r in keys_fake.requests if r[0] == "POST"]
    assert len(posts) == 2 and [p[1] for p in posts] == ["/api/v1/crypto/rpc/base-mainnet"] * 2
    first, second = (p[2]["Idempotency-Key"] for p in posts)
    assert first == second and re.fullmatch(r"[0-9a-f]{32}", first)
    assert json.loads(posts[0][3]) == {"jsonrpc": "2.0", "method": "eth_blockNumber", "params": [], "id": 1}


def test_crypto_rpc_after_a_hang_up_is_sent_again_with_the_same_key(drive, keys_fake):
    def hang_up(h):
        h.close_connection = True
        h.connection.shutdown(socket.SHUT_RDWR)

    keys_fake.replies.append(hang_up)

    async def scenario(client):
        a = await aw(client.crypto.rpc("base-mainnet", "eth_getBalance", [WALLET, "latest"], id="q"))
        b = await aw(client.crypto.rpc("base-mainnet", "eth_chainId", idempotency_key="mine_1"))
        return a, b

    a, b = drive.run(scenario, keys_fake.url, sleep=drive.sleep_into([]))
    assert (a.id, a.result, b.result) == ("q", "0x10", "0x10")
    keys = [r[2]["Idempotency-Key"] for r in keys_fake.requests]
    assert len(keys) == 3 and keys[0] == keys[1] != keys[2] == "mine_1"


def test_x402_sends_the_wallet_headers_instead_of_the_key(drive, keys_fake):
    async def scenario(client):
        balance = await aw(client.x402.balance(WALLET, sign_in="siwx-token"))
        history = await aw(client.x402.transactions(WALLET, sign_in="siwx-token", limit=10, offset=0))
        with pytest.raises(venice.PaymentRequiredError) as info:
            await aw(client.x402.top_up())
        paid = await aw(client.x402.top_up(payment_signature="paid"))
        keyed = await aw(client.x402.balance(WALLET))  # no sign-in given: the configured key is sent
        return balance, history, info.value, paid, keyed

    balance, history, refused, paid, keyed = drive.run(scenario, keys_fake.url)
    assert balance.balanceUsd == 4.5 and keyed.balanceUsd == 4.5 and balance.meta.request_id == "8c1f-KEYS"
    assert history.transactions[0].id == "t1" and history.pagination.hasMore is False
    assert refused.body["accepts"] == [{"network": "base"}]
    assert (paid.amountCredited, paid.newBalance) == (5, 9.5)
    sent = [(m, p, h.get("SIGN-IN-WITH-X"), h.get("PAYMENT-SIGNATURE"), "Authorization" in h) for m, p, h, _ in keys_fake.requests]
    assert sent == [
        ("GET", f"/api/v1/x402/balance/{WALLET}", "siwx-token", None, False),
        ("GET", f"/api/v1/x402/transactions/{WALLET}?limit=10&offset=0", "siwx-token", None, False),
        ("POST", "/api/v1/x402/top-up", None, None, True),
        ("POST", "/api/v1/x402/top-up", None, "paid", False),
        ("GET", f"/api/v1/x402/balance/{WALLET}", None, None, True),
    ]  # fmt: skip


def test_wallet_signed_calls_need_no_configured_key(keys_fake):
    client = venice.VeniceClient(base_url=keys_fake.url, env_file=False, environ={})
    assert client.augment.search("q", limit=1, headers={"SIGN-IN-WITH-X": "siwx-token"}).results[0].url == "https://example.com/1"
    assert client.crypto.networks() == ["base-mainnet", "ethereum-mainnet"]
    with pytest.raises(venice.ConfigError):
        client.augment.search("q")  # neither a key nor a wallet header
    with pytest.raises(venice.PaymentRequiredError):
        client.x402.top_up()  # an open route: no key needed, and Venice answers with its payment options
    assert client.x402.top_up(payment_signature="paid").paymentId == "p1"
    assert [("Authorization" in h) for _, _, h, _ in keys_fake.requests] == [False, False, False, False]


def test_augment_parse_text_as_text_takes_the_text_of_a_json_answer(keys_fake):
    keys_fake.replies.append(lambda h: h.send(200, {"text": "plain", "tokens": 1}))
    client = venice.VeniceClient(KEY, base_url=keys_fake.url)
    assert client.augment.parse_text(b"x", response_format="text") == "plain"
# -- the Responses API (issue 13) ------------------------------------------------------------------

RESPONSE_BODY = {
    "id": "resp_1", "object": "response", "created_at": 1, "model": "m", "status": "completed",
    "output": [
        {"type": "reasoning", "id": "rs_1", "summary": []},
        {"type": "message", "id": "msg_1", "status": "completed", "role": "assistant",
         "content": [{"type": "output_text", "text": "Hello ", "annotations": []}, {"type": "output_text", "text": "world"}]},
    ],
    "usage": {"input_tokens": 3, "output_tokens": 2, "total_tokens": 5},
}  # fmt: skip


def rev(obj):
    """One Responses API event as Venice/OpenAI frame it: the type as the SSE event name, and in the data."""
    return b"event: " + obj["type"].encode() + b"\n" + _sse(obj)


def delta_event(text):
    return rev({"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 1, "content_index": 0, "delta": text})


CREATED = rev({"type": "response.created", "response": {**RESPONSE_BODY, "status": "in_progress", "output": []}})
COMPLETED = rev({"type": "response.completed", "response": RESPONSE_BODY})


def answer_responses(handler):
    """A scripted reply to POST /responses as Venice's spec shapes it: "Echo: " and the last input text,
    as JSON or (stream: true) as events word by word."""
    body = handler.server.requests[-1][3]
    given = body["input"] if isinstance(body["input"], str) else body["input"][-1]["content"]
    text = f"Echo: {given}"
    message = {"type": "message", "id": "msg_1", "status": "completed", "role": "assistant", "content": [{"type": "output_text", "text": text, "annotations": []}]}
    response = {**RESPONSE_BODY, "model": body["model"], "output": [message]}
    if not body.get("stream"):
        handler._send(200, response)
        return
    deltas = [delta_event(word) for word in re.findall(r"\S+\s*", text)]
    stream_reply(CREATED, *deltas, rev({"type": "response.completed", "response": response}))(handler)


def test_responses_create_sends_the_spec_fields_and_reads_output_text(drive, fake):
    fake.script.append(lambda h: h._send(200, RESPONSE_BODY))
    fake.script.append(lambda h: h._send(200, {**RESPONSE_BODY, "status": "failed", "error": {"code": "server_error", "message": "model crashed"}}))

    async def scenario(c):
        r = await aw(c.responses.create(
            "Hi", model="m", max_output_tokens=50, reasoning={"effort": "low"}, web_search=True,
            venice_parameters={"character_slug": "alan"}, temperature=0.5, top_p=None, headers={"SIGN-IN-WITH-X": "proof"},
        ))  # fmt: skip
        with pytest.raises(venice.VeniceAPIError) as failed:
            await aw(c.responses.create([{"role": "user", "content": "Hi"}], model="m"))
        refused = []
        for kwargs in ({"temperature": 3}, {"top_p": -1}, {"max_output_tokens": 0}, {"input": ""}, {"input": []}):
            with pytest.raises(venice.InvalidRequestError) as info:
                await aw(c.responses.create(**{"input": "x", "model": "m", **kwargs}))
            refused.append(info.value.message)
        with pytest.raises(venice.ConfigError, match="No model given"):
            await aw(c.responses.create("x"))
        return r, failed.value, refused

    r, failed, refused = drive.run(scenario, fake.url, max_retries=0)
    assert isinstance(r, venice.Response) and r.output_text == "Hello world"
    assert (r.id, r.status, r.usage.total_tokens, r.output[1].content[1].text, r.meta.request_id) == ("resp_1", "completed", 5, "world", "8c1f-TEST")
    assert (failed.status_code, failed.code, failed.message) == (200, "server_error", "model crashed")
    assert refused == [
        "temperature must be a number from 0 to 2, got 3",
        "top_p must be a number from 0 to 1, got -1",
        "max_output_tokens must be a whole number >= 1, got 0",
        "input must be a non-empty string or list of input items",
        "input must be a non-empty string or list of input items, got list",
    ]
    (_, path, headers, body), (_, _, _, body2) = fake.requests
    assert path == "/api/v1/responses" and headers["SIGN-IN-WITH-X"] == "proof"
    assert body == {
        "model": "m", "input": "Hi", "max_output_tokens": 50, "temperature": 0.5, "reasoning": {"effort": "low"},
        "web_search": True, "venice_parameters": {"character_slug": "alan"},
    }  # fmt: skip
    assert body2 == {"model": "m", "input": [{"role": "user", "content": "Hi"}]}
    assert venice.Response({"output": [{"type": "function_call", "name": "f"}]}).output_text == ""


def test_responses_stream_yields_typed_events_to_completion(drive, fake):
    pings = b": ping\n\n"
    fake.script.append(stream_reply(CREATED, pings, delta_event("Hello ") + delta_event("world"), COMPLETED, b"data: [DONE]\n\n", headers=[("CF-RAY", "ray-1")]))
    fake.script.append(stream_reply(CREATED, rev({"type": "response.completed", "response": RESPONSE_BODY})))

    async def scenario(c):
        stream = await aw(c.responses.create("Hi", model="m", stream=True))
        before = (stream.done, stream.output_text)  # (the sync stream's .response would read it all)
        events = await collect(stream)
        # the completed response alone (no deltas): output_text is the response's
        only_final = await aw(c.responses.create("Hi", model="m", stream=True))
        if hasattr(only_final, "__aiter__"):
            async with only_final:
                _ = [e async for e in only_final]
        else:
            with only_final:
                _ = list(only_final)
        return before, events, stream, only_final

    before, events, stream, only_final = drive.run(scenario, fake.url, max_retries=0)
    assert before == (False, "")
    assert [e.type for e in events] == ["response.created", "response.output_text.delta", "response.output_text.delta", "response.completed"]
    assert [e.delta for e in events] == [None, "Hello ", "world", None]
    assert isinstance(events[0], venice.AttrDict) and events[0].response.status == "in_progress"
    assert (stream.output_text, stream.partial, stream.done) == ("Hello world", "Hello world", True)
    assert isinstance(stream.response, venice.Response) and stream.response.usage.total_tokens == 5
    assert stream.response.meta is stream.meta and stream.meta.request_id == "ray-1"
    assert (only_final.output_text, only_final.done) == ("Hello world", True)
    assert fake.requests[0][3] == {"model": "m", "input": "Hi", "stream": True}


RESPONSE_FAILURES = [
    pytest.param(
        stream_reply(CREATED, delta_event("Hel")),
        (venice.StreamError, "Hel", "the stream ended before the response was complete (no response.completed event) — the text so far is in .partial", None),
        id="no-completed",
    ),
    pytest.param(
        stream_reply(CREATED, delta_event("Hel"), b"data: [DONE]\n\n"),
        (venice.StreamError, "Hel", "no response.completed event", None),
        id="done-without-completed",
    ),
    pytest.param(
        stream_reply(delta_event("Hel"), rev({"type": "response.failed", "response": {**RESPONSE_BODY, "status": "failed", "error": {"code": "server_error", "message": "the model crashed"}}}), headers=[("CF-RAY", "ray-9")]),
        (venice.StreamError, "Hel", "the model crashed (request id ray-9)", "server_error"),
        id="response-failed",
    ),
    pytest.param(
        stream_reply(delta_event("Hel") + delta_event("lo") + rev({"type": "error", "code": "model_overloaded", "message": "The model is overloaded", "param": None})),
        (venice.StreamError, "Hello", "The model is overloaded", "model_overloaded"),
        id="error-event-in-the-same-block",
    ),
    pytest.param(
        stream_reply(delta_event("Hel"), b"data: " + json.dumps({"error": {"message": "upstream broke", "code": "upstream_error"}}).encode() + b"\n\n"),
        (venice.StreamError, "Hel", "upstream broke", "upstream_error"),
        id="error-object",
    ),
    pytest.param(
        stream_reply(delta_event("Hel"), rev({"type": "response.incomplete", "response": {**RESPONSE_BODY, "status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}}})),
        (venice.StreamError, "Hel", "the response is incomplete (max_output_tokens)", "incomplete"),
        id="incomplete",
    ),
    pytest.param(
        stream_reply(delta_event("a"), *[b": ping\n\n"] * 50, COMPLETED, pause=0.1),
        (venice.APITimeoutError, "a", "no data event for 0.3 s (only keep-alives)", None),
        id="pings-only",
    ),
    pytest.param(
        stream_reply(delta_event("so far"), reset, end=False),
        (venice.APIConnectionError, "so far", "the connection broke while reading the response", None),
        id="reset",
    ),
]  # fmt: skip


@pytest.mark.parametrize("reply, expected", RESPONSE_FAILURES)
def test_responses_stream_failures_raise_with_the_text_so_far(drive, fake, reply, expected):
    fake.script.append(reply)
    cls, partial, says, code = expected

    async def scenario(c):
        stream = await aw(c.responses.create("Hi", model="m", stream=True, timeout=0.3))
        got = []
        with pytest.raises(venice.VeniceError) as info:
            if hasattr(stream, "__aiter__"):
                async for event in stream:
                    got.append(event.delta or "")
            else:
                for event in stream:
                    got.append(event.delta or "")
        return got, info.value, stream

    got, err, stream = drive.run(scenario, fake.url, max_retries=0)
    assert type(err) is cls and getattr(err, "code", None) == code and says in str(err)
    assert err.partial == partial == "".join(got) == stream.output_text
    assert stream.response is None and not stream.done


def test_responses_stream_deadline_and_close(drive, fake):
    fake.script.append(stream_reply(*[delta_event("x") for _ in range(40)], COMPLETED, pause=0.05))
    fake.script.append(stream_reply(CREATED, delta_event("Hi"), wait_for_hang_up, end=False))

    async def scenario(c):
        stream = await aw(c.responses.create("Hi", model="m", stream=True, deadline=0.3))
        with pytest.raises(venice.APITimeoutError) as info:
            await collect(stream)
        stream = await aw(c.responses.create("Hi", model="m", stream=True))
        if hasattr(stream, "__aiter__"):
            async with stream:
                async for event in stream:
                    if event.type == "response.output_text.delta":
                        break
        else:
            with stream:
                for event in stream:
                    if event.type == "response.output_text.delta":
                        break
        return info.value, stream

    err, stream = drive.run(scenario, fake.url, max_retries=0)
    assert "the call's deadline passed" in str(err) and err.partial.startswith("x") and set(err.partial) == {"x"}
    assert wait_until(fake.aborted.is_set)  # leaving the with block closed the connection
    assert stream.output_text == "Hi" and not stream.done


# -- audio.speech (POST /audio/speech) ---------------------------------------------------------------

MP3 = b"ID3\x04\x00" + bytes(range(256)) * 4


def _audio(data, ctype="audio/mpeg"):
    return _reply(200, data, [], ctype)


def _chunked_audio(parts, sent=None, ctype="audio/mpeg"):
    """Audio sent chunk by chunk; with ``sent`` (one Event per part after the first), each later part
    waits until the client has read the ones before it: proof that blocks are handed out as they come."""

    def reply(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", ctype)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.send_header("CF-RAY", "8c1f-TEST")
        handler.end_headers()
        for i, part in enumerate(parts):
            if i and sent is not None:
                assert sent[i - 1].wait(10)
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            handler.wfile.flush()
        handler.wfile.write(b"0\r\n\r\n")

    return reply


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir())


def test_speech_returns_the_audio_bytes_and_saves_them_whole(drive, fake, tmp_path):
    fake.script += [_audio(MP3, "audio/mpeg; charset=binary")] * 2

    async def scenario(c):
        r = await aw(c.audio.speech("Hello there", voice="af_sky", model="tts-kokoro", response_format="mp3", speed=1.5))
        r2 = await aw(c.audio.speech("Hi", model="tts-xai-v1", language="en", top_p=0.5))
        return r, r2, r.save(tmp_path / "hello.mp3")

    r, r2, saved = drive.run(scenario, fake.url)
    assert isinstance(r, venice.SpeechResult) and r.content == MP3 and r2.content == MP3
    assert (r.mime_type, r.meta.request_id, repr(r)) == ("audio/mpeg", "8c1f-TEST", "SpeechResult(mime_type='audio/mpeg', 1029 bytes)")
    assert [(m, p, b) for m, p, _, b in fake.requests] == [
        ("POST", "/api/v1/audio/speech", {"input": "Hello there", "voice": "af_sky", "response_format": "mp3", "speed": 1.5, "model": "tts-kokoro"}),
        ("POST", "/api/v1/audio/speech", {"input": "Hi", "language": "en", "top_p": 0.5, "model": "tts-xai-v1"}),
    ]
    assert saved == str(tmp_path / "hello.mp3") and (tmp_path / "hello.mp3").read_bytes() == MP3
    assert _leftovers(tmp_path) == ["hello.mp3"]  # (no temporary file left beside it)


def test_speech_without_a_model_looks_up_venices_default_tts_model_once(drive, fake):
    fake.get_script.append(_reply(200, {"object": "list", "type": "tts", "data": {"default": "tts-kokoro"}}))
    fake.script += [_audio(MP3)] * 2

    async def scenario(c):
        first = await aw(c.audio.speech("one"))
        second = await aw(c.audio.speech("two"))
        return first.content, second.content

    assert drive.run(scenario, fake.url) == (MP3, MP3)
    assert [(m, p) for m, p, _, _ in fake.requests] == [
        ("GET", "/api/v1/models/traits?type=tts"), ("POST", "/api/v1/audio/speech"), ("POST", "/api/v1/audio/speech"),
    ]
    assert [b["model"] for m, _, _, b in fake.requests if m == "POST"] == ["tts-kokoro", "tts-kokoro"]


def test_streamed_speech_hands_out_each_block_as_it_arrives(drive, fake):
    parts = [b"sentence one ", b"sentence two ", b"sentence three"]
    sent = [threading.Event(), threading.Event()]
    fake.script.append(_chunked_audio(parts, sent))

    async def scenario(c):
        stream = await aw(c.audio.speech("Three sentences.", model="tts-kokoro", stream=True))
        got = b""
        blocks = []

        def take(block):
            nonlocal got
            blocks.append(block)
            got += block
            for i, event in enumerate(sent):  # (the server sends part i + 1 only once parts 0..i are in)
                if len(got) >= len(b"".join(parts[: i + 1])):
                    event.set()

        if hasattr(stream, "__aiter__"):
            async for block in stream:
                take(block)
        else:
            for block in stream:
                take(block)
        return stream, blocks, got

    stream, blocks, got = drive.run(scenario, fake.url)
    expected = venice.AsyncSpeechStream if drive.kind == "async" else venice.SpeechStream
    assert type(stream) is expected and (stream.mime_type, stream.meta.request_id) == ("audio/mpeg", "8c1f-TEST")
    assert got == b"".join(parts) and len(blocks) >= 3
    assert fake.requests[0][3] == {"input": "Three sentences.", "streaming": True, "model": "tts-kokoro"}


def test_streamed_speech_saves_to_a_temp_file_renamed_at_the_end(drive, fake, tmp_path):
    parts = [b"a" * 70000, b"b" * 5, b"c" * 100]
    fake.script.append(_chunked_audio(parts))
    target = tmp_path / "story.mp3"

    async def scenario(c):
        stream = await aw(c.audio.speech("A story.", model="tts-kokoro", stream=True))
        async with contextlib.AsyncExitStack() as stack:
            if hasattr(stream, "__aenter__"):
                await stack.enter_async_context(stream)
            else:
                stack.enter_context(stream)
            return await aw(stream.save(str(target)))

    assert drive.run(scenario, fake.url) == 70105
    assert target.read_bytes() == b"".join(parts) and _leftovers(tmp_path) == ["story.mp3"]


def _cut_audio(how):
    def reply(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "audio/mpeg")
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        handler.wfile.write(b"x" * 300)
        handler.wfile.flush()
        if how == "reset":  # an RST, not a FIN
            import struct

            handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        handler.close_connection = True

    return reply


@pytest.mark.parametrize("how", ["short", "reset"])
def test_a_broken_speech_download_leaves_no_file_and_says_how_much_arrived(drive, fake, tmp_path, how):
    target = tmp_path / "hello.mp3"
    target.write_bytes(b"the old file")
    fake.script.append(_cut_audio(how))

    async def scenario(c):
        stream = await aw(c.audio.speech("Hello", model="tts-kokoro", stream=True))
        with pytest.raises(venice.APIConnectionError) as info:
            await aw(stream.save(target))
        return info.value

    err = drive.run(scenario, fake.url, max_retries=0)
    if how == "short":
        assert str(err) == "the audio download broke after 300 bytes: the connection closed with 700 bytes of the response body missing"
    else:
        assert re.match(r"the audio download broke after (0|300) bytes: ", str(err))
    assert target.read_bytes() == b"the old file" and _leftovers(tmp_path) == ["hello.mp3"]


def test_closing_a_speech_stream_early_hangs_up(drive, fake):
    def reply(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "audio/opus")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        handler.wfile.write(b"5\r\nfirst\r\n")
        handler.wfile.flush()
        wait_for_hang_up(handler)  # (the rest never comes: only the client's close ends this)

    fake.script.append(reply)

    async def scenario(c):
        stream = await aw(c.audio.speech("Hello", model="tts-kokoro", response_format="opus", stream=True))
        if hasattr(stream, "__aiter__"):
            async with stream:
                async for block in stream:
                    return block, stream.mime_type
        with stream:
            for block in stream:
                return block, stream.mime_type

    assert drive.run(scenario, fake.url) == (b"first", "audio/opus")
    assert wait_until(fake.aborted.is_set)


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    "body, ctype, message",
    [
        ({"error": "Model is at capacity"}, "application/json", "expected audio but got application/json: Model is at capacity"),
        (b"<html><body>Bad gateway</body></html>", "text/html", "expected audio but got text/html: Bad gateway"),
    ],
)
def test_speech_answered_with_json_or_html_is_an_api_error(drive, fake, tmp_path, stream, body, ctype, message):
    fake.script.append(_reply(200, body, [], ctype))

    async def scenario(c):
        with pytest.raises(venice.VeniceAPIError) as info:
            await aw(c.audio.speech("Hello", model="tts-kokoro", stream=stream))
        return info.value

    err = drive.run(scenario, fake.url)
    assert err.message == message and (err.status_code, err.meta.request_id) == (200, "8c1f-TEST")
    assert len(fake.requests) == 1


def test_speech_error_statuses_and_bad_text(drive, fake):
    fake.script.append(_reply(400, {"error": "Unsupported format flac for this model"}))

    async def scenario(c):
        with pytest.raises(venice.InvalidRequestError) as bad:
            await aw(c.audio.speech("Hello", model="tts-kokoro", response_format="flac", stream=True))
        with pytest.raises(venice.InvalidRequestError) as empty:
            await aw(c.audio.speech("", model="tts-kokoro"))
        return bad.value, empty.value

    bad, empty = drive.run(scenario, fake.url)
    assert bad.message == "Unsupported format flac for this model" and bad.status_code == 400
    assert str(empty) == "text must be a non-empty string, got ''" and len(fake.requests) == 1
# -- images (issue 12, first slice) --------------------------------------------------------------

PNG_1 = b"\x89PNG\r\n\x1a\n" + b"one"
PNG_2 = b"\x89PNG\r\n\x1a\n" + b"two"
WEBP = b"RIFF\x10\x00\x00\x00WEBPVP8 image"


def _image_json(*images, id="generate-image-1"):
    import base64

    encoded = [base64.b64encode(i).decode() for i in images]
    return {"id": id, "images": encoded, "timing": {"inferenceDuration": 1, "inferencePreprocessingTime": 0, "inferenceQueueTime": 0, "total": 2}}


def test_images_generate_json_two_variants_with_the_default_model_looked_up_once(drive, fake):
    fake.get_script.append(_reply(200, {"data": {"default": "img-default"}}))
    flags = [("x-venice-is-content-violation", "false"), ("x-venice-is-blurred", "false")]
    fake.script += [_reply(200, _image_json(PNG_1, PNG_2), flags), _reply(200, _image_json(PNG_2))]

    async def scenario(client):
        first = await aw(client.images.generate("a cat", variants=2, seed=7, negative_prompt=None, cfg_scale=4.5))
        second = await aw(client.images.generate("a dog"))
        return first, second

    first, second = drive.run(scenario, fake.url)
    assert [(m, p) for m, p, _, _ in fake.requests] == [
        ("GET", "/api/v1/models/traits?type=image"), ("POST", "/api/v1/image/generate"), ("POST", "/api/v1/image/generate"),
    ]  # fmt: skip
    assert fake.requests[1][3] == {"model": "img-default", "prompt": "a cat", "variants": 2, "seed": 7, "cfg_scale": 4.5}
    assert fake.requests[2][3] == {"model": "img-default", "prompt": "a dog"}
    assert isinstance(first, venice.ImageResult)
    assert (first.images, first.mime_type, first.id, first.request_id) == ([PNG_1, PNG_2], "image/png", "generate-image-1", "8c1f-TEST")
    assert (first.content_violation, first.blurred, first.meta.status_code, first.timing["total"]) == (False, False, 200, 2)
    assert second.images == [PNG_2] and not second.content_violation and not second.blurred  # (no headers: False)


def test_images_generate_binary_mode_reads_the_body_and_the_flags(drive, fake):
    flags = [("x-venice-is-content-violation", "true"), ("x-venice-is-blurred", "True")]
    fake.script.append(_reply(200, WEBP, flags, "image/webp"))

    async def scenario(client):
        return await aw(client.images.generate("a cat", "flux-dev", return_binary=True, format="webp"))

    result = drive.run(scenario, fake.url)
    assert [(m, p) for m, p, _, _ in fake.requests] == [("POST", "/api/v1/image/generate")]  # (a model given: no lookup)
    assert fake.requests[0][3] == {"model": "flux-dev", "prompt": "a cat", "format": "webp", "return_binary": True}
    assert (result.images, result.mime_type, result.id) == ([WEBP], "image/webp", None)
    assert (result.content_violation, result.blurred) == (True, True)
    assert repr(result) == "ImageResult(1 × image/webp, content_violation=True, blurred=True, request_id='8c1f-TEST')"


def test_images_generate_a_200_without_an_image_is_an_error(drive, fake):
    fake.script += [
        _reply(200, {"error": "Image generation failed"}),  # JSON where bytes were asked for
        _reply(200, b"<html>gateway</html>", [], "text/html"),
        _reply(200, {"id": "x", "images": [], "timing": {}}),
        _reply(200, {"id": "x", "images": ["not base64!"], "timing": {}}),
    ]

    async def scenario(client):
        errors = []
        for binary in (True, False, False, False):
            with pytest.raises(venice.VeniceAPIError) as info:
                await aw(client.images.generate("a cat", "m", return_binary=binary))
            errors.append(str(info.value))
        return errors

    errors = drive.run(scenario, fake.url, max_retries=0)
    assert errors == [
        "200 OK: expected an image but got application/json: Image generation failed (request id 8c1f-TEST)",
        "200 OK: expected an image but got text/html: gateway (request id 8c1f-TEST)",
        '200 OK: the answer holds no images: {"id": "x", "images": [], "timing": {}} (request id 8c1f-TEST)',
        '200 OK: the answer\'s images are not valid base64: {"id": "x", "images": ["not base64!"], "timing": {}} (request id 8c1f-TEST)',
    ]
    assert len(fake.requests) == 4  # (a paid call: none sent twice)


def test_images_generate_checks_its_arguments_before_sending(fake):
    client = venice.VeniceClient(KEY, base_url=fake.url)
    with pytest.raises(venice.InvalidRequestError, match="prompt must be a non-empty string"):
        client.images.generate("  ")
    with pytest.raises(venice.InvalidRequestError, match="variants must be a whole number from 1 to 4, got 5"):
        client.images.generate("a cat", "m", variants=5)
    with pytest.raises(venice.InvalidRequestError, match="variants > 1 needs JSON replies"):
        client.images.generate("a cat", "m", variants=2, return_binary=True)
    assert fake.requests == []


def test_images_styles_needs_no_key(drive, fake):
    fake.get_script.append(_reply(200, {"object": "list", "data": ["3D Model", "Anime"]}))

    async def scenario(client):
        return await aw(client.images.styles())

    assert drive.run(scenario, fake.url) == ["3D Model", "Anime"]
    client = venice.VeniceClient(base_url=fake.url, env_file=False, environ={})  # no key anywhere
    fake.get_script.append(_reply(200, {"object": "list", "data": ["Anime"]}))
    assert client.images.styles() == ["Anime"]
    assert "Authorization" not in fake.requests[-1][2]


def _image_result(*images, id="gen-1", mime="image/png"):
    meta = venice.ResponseMeta.from_headers(200, {"cf-ray": "r1"})
    return venice.ImageResult(list(images), mime, meta, id)


def test_image_result_save_names_files_for_one_or_several_images(tmp_path):
    one = _image_result(PNG_1)
    assert one.save(tmp_path / "cat") == [str(tmp_path / "cat.png")]  # the extension from the MIME type
    assert one.save(tmp_path / "cat.PNG") == [str(tmp_path / "cat.PNG")]
    assert one.save(tmp_path / "cat.v2") == [str(tmp_path / "cat.v2.png")]  # (a dot in a name is no extension)
    assert (tmp_path / "cat.png").read_bytes() == PNG_1
    two = _image_result(PNG_1, PNG_2)
    assert two.save(str(tmp_path / "v-{i}")) == [str(tmp_path / "v-1.png"), str(tmp_path / "v-2.png")]
    assert (tmp_path / "v-2.png").read_bytes() == PNG_2
    assert two.save(tmp_path) == [str(tmp_path / "gen-1-1.png"), str(tmp_path / "gen-1-2.png")]  # a folder
    out = str(tmp_path / "new") + os.sep  # a folder to create
    assert _image_result(WEBP, id=None, mime="image/webp").save(out) == [os.path.join(out, "image.webp")]
    assert _image_result(b"\xff\xd8\xffj", mime="image/jpeg").save(tmp_path / "p.jpeg") == [str(tmp_path / "p.jpeg")]
    with pytest.raises(venice.InvalidRequestError, match=r"2 images but one file path .*: pass a folder or a pattern"):
        two.save(tmp_path / "single.png")
    with pytest.raises(venice.InvalidRequestError, match=r"names a \.jpg file but the image is image/png: use \.png"):
        one.save(tmp_path / "cat.jpg")
    assert not (tmp_path / "single.png").exists() and not (tmp_path / "cat.jpg").exists()
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".part")]


def test_image_result_save_never_leaves_a_half_file(tmp_path, monkeypatch):
    (tmp_path / "cat.png").write_bytes(b"the old picture")
    fdopen = os.fdopen

    class DiskFull:  # writes part of the image, then the disk is full
        def __init__(self, fd, mode):
            self.file = fdopen(fd, mode)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

        def close(self):
            self.file.close()

        def write(self, data):
            self.file.write(data[:4])
            self.file.flush()
            raise OSError(28, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(venice.os, "fdopen", DiskFull)
        with pytest.raises(OSError, match="No space left on device"):
            _image_result(PNG_1).save(tmp_path / "cat.png")
        with pytest.raises(OSError, match="No space left on device"):
            _image_result(PNG_1).save(tmp_path / "dog")
    assert os.listdir(tmp_path) == ["cat.png"] and (tmp_path / "cat.png").read_bytes() == b"the old picture"

    def replace(src, dst):
        raise OSError(18, "Invalid cross-device link")

    with monkeypatch.context() as m:
        m.setattr(venice.os, "replace", replace)
        with pytest.raises(OSError, match="Invalid cross-device link"):
            _image_result(PNG_1).save(tmp_path / "cat.png")
    assert os.listdir(tmp_path) == ["cat.png"] and (tmp_path / "cat.png").read_bytes() == b"the old picture"


###############################################################################
# Async client #################################################################
###############################################################################
# AsyncVeniceClient and AsyncOpenAI (issue 11). Where the two clients share a rule, one scenario runs
# against both: the `drive` fixture builds VeniceClient or AsyncVeniceClient with the same arguments and
# runs an `async def scenario(client)`, in which `await aw(call)` awaits a call when the client is async
# (a sync client's call has returned already) and `collect(stream)` reads with `for` or `async for`.
# The same loopback servers answer both, so a rule cannot drift between the two drivers.

import asyncio  # noqa: E402  (the async tests' own import; `import venice` must not load it)
import gc  # noqa: E402
import inspect  # noqa: E402


class Driver:
    """One of the two clients, built with the same arguments, running a scenario in ``asyncio.run``."""

    def __init__(self, kind):
        self.kind = kind
        self.cls = venice.AsyncVeniceClient if kind == "async" else venice.VeniceClient

    def __repr__(self):
        return self.kind

    def sleep_into(self, sleeps):
        """The injected sleep: it records the delays (awaitable for the async client)."""
        if self.cls is venice.VeniceClient:
            return sleeps.append

        async def sleep(seconds):
            sleeps.append(seconds)

        return sleep

    def run(self, scenario, base_url, **kwargs):
        """``await scenario(client)`` in a fresh event loop; the client is closed afterwards."""

        async def main():
            client = self.cls(KEY, base_url=base_url, **kwargs)
            try:
                return await scenario(client)
            finally:
                await aw(client.close())

        return asyncio.run(main())


@pytest.fixture(params=["sync", "async"])
def drive(request):
    return Driver(request.param)


async def aw(value):
    """A call's result: awaited for the async client (the sync client's call has already returned it)."""
    return await value if inspect.isawaitable(value) else value


async def collect(stream):
    """A stream's pieces, read with ``async for`` or ``for``."""
    if hasattr(stream, "__aiter__"):
        return [piece async for piece in stream]
    return list(stream)


def wait_until(condition, seconds=5.0):
    """Poll a condition the server threads make true (generous bound: never a timing assertion)."""
    end = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(0.01)
    return True


def wait_for_hang_up(handler):
    """Send nothing more; return once the client has closed the connection (read sees EOF)."""
    handler.connection.settimeout(10)
    with contextlib.suppress(OSError):
        handler.rfile.read(1)
    handler.close_connection = True
    handler.server.aborted.set()


NOT_SENT_AGAIN = " — not sent again: it may have been processed (see RetryPolicy.retry_unsafe)"


def test_both_clients_send_the_same_bytes_and_read_the_same_meta(fake):
    async def scenario(c):
        out = [KEY in repr(c)]
        await aw(c.request("POST", "/embeddings", json={"input": "x", "model": "e", "user": None, "nested": [{"a": None, "b": 1}]}))
        data = await aw(c.request("GET", "/api_keys/rate_limits", params={"x": None, "flag": True}))
        r = await aw(c.chat.complete("hi", model="m", headers={"X-Name": "Zo\u00eb"}))
        out += [data.data.balances.USD, data.meta.request_id, r.meta.model_id, r.meta.balance_usd, r.meta.venice_version]
        with pytest.raises(venice.ConfigError, match="line break"):  # refused before sending
            await aw(c.chat.complete("hi", model="m", headers={"X-A": "1\r\nX-B: 2"}))
        return out

    seen = []
    for kind in ("sync", "async"):
        del fake.requests[:]
        out = Driver(kind).run(scenario, fake.url, default_headers={"X-Team": "a"})
        seen.append((out, [(m, path, {k: v for k, v in headers.items() if k != "Host"}, body) for m, path, headers, body in fake.requests]))
    assert seen[0] == seen[1]  # the same requests, header for header, and the same results
    out, requests = seen[1]
    assert out == [False, 12.5, "8c1f-TEST", "m", 12.5, "20261124.1"]
    assert [(m, path, body) for m, path, _, body in requests] == [
        ("POST", "/api/v1/embeddings", {"input": "x", "model": "e", "nested": [{"b": 1}]}),
        ("GET", "/api/v1/api_keys/rate_limits?flag=true", None),
        ("POST", "/api/v1/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.15}),
    ]
    headers = requests[2][2]
    assert (headers["Authorization"], headers["X-Team"], headers["X-Name"], headers["Accept-Encoding"]) == (f"Bearer {KEY}", "a", "Zo\u00eb", "gzip")
    assert headers["User-Agent"] == f"venice.py/{venice.__version__} Python/{sys.version_info[0]}.{sys.version_info[1]}"


def test_both_clients_map_every_error_status_alike(drive, fake):
    for status, body, *_ in ERROR_CASES:
        ctype = "text/html" if isinstance(body, bytes) else "application/json"
        fake.script.append(lambda h, status=status, body=body, ctype=ctype: h._send(status, body, content_type=ctype))

    async def scenario(c):
        errors = []
        for _ in ERROR_CASES:
            with pytest.raises(venice.VeniceError) as info:
                await aw(c.chat.complete("hi", model="m"))
            errors.append(info.value)
        return errors

    errors = drive.run(scenario, fake.url, max_retries=0)
    for err, (status, body, cls, code, message) in zip(errors, ERROR_CASES):
        assert type(err) is cls, status
        assert (err.status_code, err.code, err.message, err.request_id) == (status, code, message, "8c1f-TEST")
        assert err.body == (body if isinstance(body, dict) else (body.decode() or None))
        assert err.meta.venice_version == "20261124.1"
        assert str(err).startswith(f"{status} ") and f"{message} (request id 8c1f-TEST)" in str(err)
        assert KEY not in str(err) + repr(err)
    assert len(fake.requests) == len(ERROR_CASES)  # max_retries=0: none sent twice


def test_both_clients_retry_alike_with_an_injected_sleep(drive, fake):
    sleeps = []
    ok = lambda h: h._send(200, {"choices": [{"message": {"content": "ok"}}]})  # noqa: E731
    fake.script += [lambda h: h._send(503, {"error": "Model at capacity"})] * 2 + [ok]
    fake.script += [lambda h: h._send(502, {"error": "bad gateway"})] * 3
    fake.script.append(lambda h: h._send(400, {"error": "bad"}))
    forms = [("Retry-After", "3"), ("Retry-After", "Tue, 14 Nov 2023 22:13:25 GMT"), ("retry-after-ms", "1500"), ("Retry-After", "-4")]
    for header in forms:
        fake.script += [lambda h, header=header: h._send(429, {"error": "Rate limit exceeded"}, headers=[header]), ok]
    fake.script.append(lambda h: h._send(429, {"error": "Rate limit exceeded"}, headers=[("Retry-After", "120")]))

    async def scenario(c):
        out = [(await aw(c.chat.complete("a", model="m"))).text, list(sleeps)]
        with pytest.raises(venice.ServerError) as gave_up:
            await aw(c.chat.complete("b", model="m"))
        out += [str(gave_up.value), list(sleeps)]
        with pytest.raises(venice.InvalidRequestError):
            await aw(c.chat.complete("c", model="m"))
        out.append(list(sleeps))
        for _ in forms:
            out.append((await aw(c.chat.complete("d", model="m"))).text)
        out.append(list(sleeps))
        with pytest.raises(venice.RateLimitError) as capped:
            await aw(c.chat.complete("e", model="m"))
        return out + [str(capped.value), capped.value.retry_after, list(sleeps)]

    policy = venice.RetryPolicy(failure_budget=100)  # (the scenarios' failures would spend the default budget)
    out = drive.run(scenario, fake.url, retry=policy, sleep=drive.sleep_into(sleeps), clock=lambda: 1_700_000_000.0, random=lambda: 0.0)
    assert out == [
        "ok", [0.5, 1.0],
        "502 Bad Gateway: bad gateway (request id 8c1f-TEST) — gave up after 3 attempts", [0.5, 1.0, 0.5, 1.0],
        [0.5, 1.0, 0.5, 1.0],
        "ok", "ok", "ok", "ok", [0.5, 1.0, 0.5, 1.0, 3.0, 5.0, 1.5, 0.0],  # clock: 22:13:20 GMT
        "429 Too Many Requests: Rate limit exceeded (request id 8c1f-TEST) — Venice asked to wait longer than max_retry_after (60 s)",
        120.0, [0.5, 1.0, 0.5, 1.0, 3.0, 5.0, 1.5, 0.0],
    ]  # fmt: skip
    assert len(fake.requests) == 3 + 3 + 1 + 2 * len(forms) + 1


def test_both_clients_never_re_send_a_post_that_may_have_been_processed(drive, fake):
    fake.script.append(hang_up)  # the POST was read: it may have been processed (and billed)
    fake.get_script.append(hang_up)  # a GET is safe to send again
    fake.script.append(hang_up)  # so is a POST with an Idempotency-Key
    sleeps = []

    async def scenario(c):
        with pytest.raises(venice.APIConnectionError) as info:
            await aw(c.chat.complete("x", model="m"))
        out = [type(info.value), str(info.value), list(sleeps)]
        out.append(len(await aw(c.models.list())))
        out.append((await aw(c.chat.complete("y", model="m", headers={"Idempotency-Key": "k-1"}))).text)
        return out

    out = drive.run(scenario, fake.url, max_retries=2, sleep=drive.sleep_into(sleeps), random=lambda: 0.0)
    assert out == [venice.APIConnectionError, "127.0.0.1 closed the connection without answering" + NOT_SENT_AGAIN, [], 2, "Echo: y"]
    # (the keyed POST went out on the GET's pooled connection: a POST that is safe to re-send is sent
    # again at once on a fresh connection, as for a stale one; no retry, no sleep)
    assert sleeps == [0.5]
    assert [(r[0], r[2].get("Idempotency-Key")) for r in fake.requests] == [
        ("POST", None), ("GET", None), ("GET", None), ("POST", "k-1"), ("POST", "k-1"),
    ]  # fmt: skip


def test_both_clients_never_re_send_a_post_on_a_reused_connection_that_broke(drive, fake):
    fake.script += [lambda h: h._send(200, {"choices": [{"message": {"content": "first"}}]}), hang_up]

    async def scenario(c):
        first = (await aw(c.chat.complete("a", model="m"))).text
        with pytest.raises(venice.APIConnectionError) as info:
            await aw(c.chat.complete("b", model="m"))
        return first, str(info.value)

    assert drive.run(scenario, fake.url, max_retries=0) == ("first", "127.0.0.1 closed the connection without answering" + NOT_SENT_AGAIN)
    assert len(fake.requests) == 2 and fake.connections == 1


def test_both_clients_replace_a_stale_pooled_connection_without_re_sending(drive, fake):
    fake.script.append(reply_then_hang_up)  # the server drops the idle keep-alive connection

    async def scenario(c):
        first = (await aw(c.chat.complete("a", model="m"))).text
        await asyncio.sleep(0.1)  # (the close reaches the client; the async client's loop reads it)
        second = (await aw(c.chat.complete("b", model="m"))).text
        more = [(await aw(c.chat.complete(f"n{i}", model="m"))).text for i in range(20)]
        return first, second, more

    assert drive.run(scenario, fake.url, max_retries=0) == ("first", "Echo: b", [f"Echo: n{i}" for i in range(20)])
    assert fake.connections == 2 and len(fake.requests) == 22  # nothing sent twice; then one kept-alive connection


OVERLOADED = {"error": {"message": "The model is overloaded", "type": "server_error", "code": "model_overloaded"}}
STREAM_FAILURES = [
    pytest.param(
        dict(reply=stream_reply(ev(_chunk("cut")))),
        (venice.StreamError, "cut", "the stream ended before the answer was complete (no [DONE] and no finish_reason) — the text so far is in .partial", None),
        id="truncated",
    ),
    pytest.param(
        dict(reply=stream_reply(ev(_chunk("Partial ")), ev(_chunk("answer")), lambda h: time.sleep(0.2), ev(OVERLOADED), b"data: [DONE]\n\n", headers=[("CF-RAY", "ray-9")])),
        (venice.StreamError, "Partial answer", "The model is overloaded (request id ray-9)", "model_overloaded"),
        id="in-band-error-object",
    ),
    pytest.param(
        dict(reply=stream_reply(ev(_chunk("Partial ")), lambda h: time.sleep(0.2), b"event: error\ndata: plain text failure\n\n", b"data: [DONE]\n\n", headers=[("CF-RAY", "ray-9")])),
        (venice.StreamError, "Partial ", "plain text failure (request id ray-9)", None),
        id="in-band-error-event",
    ),
    pytest.param(
        dict(reply=stream_reply(ev(_chunk("Partial ")) + ev(_chunk("answer")) + ev(OVERLOADED), b"data: [DONE]\n\n")),
        (venice.StreamError, "Partial answer", "The model is overloaded", "model_overloaded"),
        id="in-band-error-in-the-same-block",
    ),
    pytest.param(
        dict(reply=stream_reply(ev(_chunk("so far")), reset, end=False)),
        (venice.APIConnectionError, "so far", "the connection broke while reading the response (ConnectionResetError: Connection reset by peer)", None),
        id="reset",
    ),
    pytest.param(
        dict(reply=stream_reply(ev(_chunk("a")), *[b": ping\n\n"] * 50, ev(_chunk("b", finish="stop")), pause=0.1), timeout=0.3),
        (venice.APITimeoutError, "a", "only keep-alives", None),
        id="pings-only",
    ),
    pytest.param(
        dict(reply=stream_reply(*[ev(_chunk("x")) for _ in range(40)], b"data: [DONE]\n\n", pause=0.05), deadline=0.3),
        (venice.APITimeoutError, "xx", "the call's deadline passed", None),
        id="deadline",
    ),
]  # fmt: skip


@pytest.mark.parametrize("case, expected", STREAM_FAILURES)
def test_both_clients_fail_a_stream_alike_with_partial(drive, fake, case, expected):
    fake.script.append(case["reply"])
    cls, partial, says, code = expected

    async def scenario(c):
        got = []
        stream = await aw(c.chat.complete("hi", model="m", stream=True, deadline=case.get("deadline")))
        with pytest.raises(venice.VeniceError) as info:
            if hasattr(stream, "__aiter__"):
                async for text in stream:
                    got.append(text)
            else:
                for text in stream:
                    got.append(text)
        again = (await aw(c.chat.complete("again", model="m"))).text  # the client recovers
        return got, info.value, again

    got, err, again = drive.run(scenario, fake.url, timeout=case.get("timeout", 5), max_retries=0)
    assert type(err) is cls and getattr(err, "code", None) == code and says in str(err)
    assert err.partial.startswith(partial) and "".join(got) == err.partial
    assert again == "Echo: again" and KEY not in str(err) + repr(err)


def close_connection(handler):
    handler.close_connection = True  # a clean close (FIN, not a reset), mid-body


@pytest.mark.parametrize(
    "drive",
    [
        Driver("sync"),
        Driver("async"),
    ],
    ids=["sync", "async"],
)
def test_both_clients_say_alike_that_a_chunked_body_was_cut_short(drive, fake):
    def cut_chunked(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        handler.wfile.write(b'10\r\n{"choices": ')
        handler.wfile.flush()
        handler.close_connection = True

    fake.script += [stream_reply(ev(_chunk("so far")), close_connection, end=False), cut_chunked]

    async def scenario(c):
        stream = await aw(c.chat.complete("x", model="m", stream=True))
        with pytest.raises(venice.APIConnectionError) as streamed:
            await collect(stream)
        with pytest.raises(venice.APIConnectionError) as whole:
            await aw(c.chat.complete("x", model="m"))
        return streamed.value.partial, str(streamed.value), str(whole.value)

    says = "the connection broke while reading the response (the connection closed before the end of the chunked body)"
    assert drive.run(scenario, fake.url, max_retries=0) == ("so far", says, says + NOT_SENT_AGAIN)


@pytest.mark.parametrize(
    "drive",
    [
        Driver("sync"),
        Driver("async"),
    ],
    ids=["sync", "async"],
)
def test_both_clients_close_a_stream_left_after_its_done_event(drive, fake):
    fake.script.append(stream_reply(ev(_chunk("Echo: ")) + ev(_chunk("d", finish="stop")) + b"data: [DONE]\n\n"))

    async def scenario(c):
        stream = await aw(c.chat.complete("d", model="m", stream=True))
        got = []
        if hasattr(stream, "__aiter__"):
            async for text in stream:
                got.append(text)
                break
        else:
            for text in stream:
                got.append(text)
                break
        await aw(stream.close())
        await asyncio.sleep(0.01)  # (an aborted asyncio transport closes its socket in the next loop turn)
        closed = wait_until(lambda: fake.closed == 1, 0.5)  # (the server sees it within milliseconds)
        stream._s._ex.close()  # (the test's own clean-up, so that a failure leaks no socket into later tests)
        return got, stream.done, closed

    assert drive.run(scenario, fake.url) == (["Echo: "], True, True)


def test_both_clients_read_gzip_and_refuse_bodies_cut_short(drive, fake):
    import gzip
    import zlib

    body = json.dumps({"choices": [{"message": {"content": "zipped " * 500}}]}).encode()
    whole = gzip.compress(body)
    models = json.dumps({"object": "list", "data": FAKE_MODELS}).encode()
    raw = ev(_chunk("zip", finish="stop")) + b"data: [DONE]\n\n"
    comp = zlib.compressobj(6, zlib.DEFLATED, 31)
    packed, tail = comp.compress(raw) + comp.flush(zlib.Z_SYNC_FLUSH), comp.flush()
    fake.script += [
        lambda h: h._send(200, whole, headers=[("Content-Encoding", "gzip")]),
        stream_reply(packed[:10], packed[10:], tail, headers=[("Content-Encoding", "gzip")]),
        cut_short(b'{"choices": [{"message": {"content": "cut"}}]}'),
        cut_short(body, gzip_it=True, declared=len(whole) // 2),  # framing intact, gzip cut
    ]
    fake.get_script.append(cut_short(models))
    sleeps = []

    async def scenario(c):
        out = [(await aw(c.chat.complete("x", model="m"))).text]
        out.append(await collect(await aw(c.chat.complete("x", model="m", stream=True))))
        for _ in range(2):
            with pytest.raises(venice.APIConnectionError) as info:
                await aw(c.chat.complete("x", model="m"))
            out.append(str(info.value))
        out.append(len(await aw(c.models.list())))  # cut short, then sent again (a GET)
        fake.get_script.append(cut_short(b"a,b\n1,2\n"))
        raw = await aw(c.request("GET", "/models", stream=True))
        with pytest.raises(venice.APIConnectionError) as info:
            await aw(raw.read())
        return out + [str(info.value), sleeps]

    assert drive.run(scenario, fake.url, sleep=drive.sleep_into(sleeps), random=lambda: 0.0) == [
        "zipped " * 500,
        ["zip"],
        "the connection closed with 100 bytes of the response body missing" + NOT_SENT_AGAIN,
        "the gzip-encoded response ended before the end of its data" + NOT_SENT_AGAIN,
        2,
        "the connection closed with 100 bytes of the response body missing",
        [0.5],
    ]
    assert [r[0] for r in fake.requests] == ["POST"] * 4 + ["GET"] * 3  # no POST sent twice


def test_both_clients_follow_redirects_alike(drive, fake):
    with running(FakeVenice("localhost")) as other:
        target = other.url + "/models?type=text"
        fake.get_script.append(lambda h: h._send(302, b"", headers=[("Location", target)]))
        fake.get_script.append(lambda h: h._send(307, b"", headers=[("Location", "/api/v1/models/traits")]))
        fake.script.append(lambda h: h._send(307, b"", headers=[("Location", target)]))

        async def scenario(c):
            out = [[m.id for m in await aw(c.models.list())]]
            out.append((await aw(c.request("GET", "/models"))).data)
            with pytest.raises(venice.VeniceAPIError) as info:
                await aw(c.chat.complete("x", model="m"))
            return out + [info.value.status_code, "not followed" in str(info.value)]

        out = drive.run(scenario, fake.url, default_headers={"X-Tenant": "secret-tenant"})
    assert out == [["venice-uncensored", "zai-org-glm-5-2"], {"default": "zai-org-glm-5-2"}, 307, True]
    sent = other.requests[0][2]
    assert [r[:2] for r in other.requests] == [("GET", "/api/v1/models?type=text")]  # the POST was not followed
    assert "Authorization" not in sent and "X-Tenant" not in sent and sent["User-Agent"].startswith("venice.py/")
    assert [(r[1], r[2]["Authorization"], r[2]["X-Tenant"]) for r in fake.requests] == [
        ("/api/v1/models?type=text", f"Bearer {KEY}", "secret-tenant"),
        ("/api/v1/models", f"Bearer {KEY}", "secret-tenant"),
        ("/api/v1/models/traits", f"Bearer {KEY}", "secret-tenant"),  # the same host: the key goes along
        ("/api/v1/chat/completions", f"Bearer {KEY}", "secret-tenant"),
    ]


@pytest.fixture(scope="module")
def tls_cert(tmp_path_factory):
    """One self-signed certificate (localhost, venice.test, 127.0.0.1) for this section's TLS tests."""
    return make_cert(tmp_path_factory.mktemp("tls"))


def tls_server_context(cert):
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*cert)
    return cert[0], ctx


def test_both_clients_over_tls_with_a_self_signed_certificate(drive, tls_cert):
    import ssl

    cert, ctx = tls_server_context(tls_cert)
    with running(FakeVenice("localhost", tls=ctx)) as server:

        async def scenario(c):
            out = [(await aw(c.chat.complete(f"tls{i}", model="m"))).text for i in range(3)]
            server.script.append(reply_then_hang_up)
            out.append((await aw(c.chat.complete("a", model="m"))).text)  # then the server closes it while idle
            await asyncio.sleep(0.1)
            return out + [(await aw(c.chat.complete("b", model="m"))).text, server.connections]

        assert drive.run(scenario, server.url, ca_file=cert, environ={}, max_retries=0) == (
            ["Echo: tls0", "Echo: tls1", "Echo: tls2", "first", "Echo: b", 2]
        )
        assert len(server.requests) == 5  # the stale TLS connection was found out before sending

        async def refused(c):
            with pytest.raises(venice.APIConnectionError) as info:
                await aw(c.chat.complete("x", model="m"))
            return str(info.value)

        says = drive.run(refused, server.url, environ={}, max_retries=0)
        assert "CERTIFICATE_VERIFY_FAILED" in says and "set SSL_CERT_FILE or ca_file=" in says

        async def with_context(c):
            return (await aw(c.chat.complete("ctx", model="m"))).text

        assert drive.run(with_context, server.url, ssl_context=ssl.create_default_context(cafile=cert), environ={}) == "Echo: ctx"
        assert len(server.requests) == 6  # (the unverified server never got the request)


def test_both_clients_through_a_connect_proxy(drive, tls_cert):
    cert, ctx = tls_server_context(tls_cert)
    proxy = ConnectProxy()
    proxy.start()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    dead_proxy = f"http://127.0.0.1:{closed.getsockname()[1]}"
    closed.close()
    try:
        with running(FakeVenice("localhost", tls=ctx)) as server:
            url = server.url.replace("localhost", "venice.test")  # a name only the proxy knows
            env = {"SSL_CERT_FILE": cert, "HTTPS_PROXY": f"http://127.0.0.1:{proxy.port}"}

            async def scenario(c):
                return [(await aw(c.chat.complete(f"via proxy {i}", model="m"))).text for i in range(2)]

            assert drive.run(scenario, url, environ=env) == ["Echo: via proxy 0", "Echo: via proxy 1"]
            assert proxy.targets == [f"venice.test:{server.server_port}"]  # one tunnel, kept alive

            async def dead(c):
                with pytest.raises(venice.APIConnectionError) as info:
                    await aw(c.chat.complete("x", model="m"))
                return str(info.value)

            says = drive.run(dead, url, environ={**env, "HTTPS_PROXY": dead_proxy}, max_retries=0)
            assert says.startswith(f"could not connect to the proxy {dead_proxy[7:]} (")  # the proxy, not the target
            assert len(server.requests) == 2
    finally:
        proxy.sock.close()


def test_both_clients_time_out_alike(drive, fake):
    fake.script.append(lambda h: time.sleep(0.6))  # no head within the read timeout: a POST is not re-sent
    fake.get_script.append(lambda h: time.sleep(0.6))  # a GET is
    sleeps = []

    async def scenario(c):
        with pytest.raises(venice.APITimeoutError) as info:
            await aw(c.chat.complete("x", model="m"))
        out = [str(info.value), list(sleeps), len(await aw(c.models.list())), list(sleeps)]
        fake.script += [lambda h: h._send(503, {"error": "busy"})] * 3
        with pytest.raises(venice.ServerError):  # 0.5 s, then a 1.0 s wait would pass the deadline
            await aw(c.chat.complete("y", model="m", deadline=0.8))
        return out + [list(sleeps)]

    assert drive.run(scenario, fake.url, timeout=0.2, max_retries=5, sleep=drive.sleep_into(sleeps), random=lambda: 0.0) == [
        "no response from 127.0.0.1 within 0.2 s" + NOT_SENT_AGAIN, [], 2, [0.5], [0.5, 0.5],
    ]  # fmt: skip
    assert [r[0] for r in fake.requests] == ["POST", "GET", "GET", "POST", "POST"]


def test_both_clients_stream_a_whole_answer_alike(drive, fake):
    fake.script.append(lambda h: h._send(503, {"error": "Model at capacity"}))  # retried: no body was streamed yet
    sleeps = []

    def html(handler):
        handler._send(200, b"<html><title>Just a moment...</title></html>", content_type="text/html")

    async def scenario(c):
        stream = await aw(c.chat.complete("Hi you", model="m", stream=True))
        out = [await collect(stream), stream.text, stream.finish_reason, stream.usage.total_tokens]
        out += [stream.response.text, stream.response.choices[0].message.role, stream.meta.request_id, list(sleeps)]
        stream = await aw(c.chat.complete("a b", model="m", stream=True))
        out.append([(ch.choices[0].delta.content if ch.choices else ch.usage.total_tokens) for ch in await collect(stream.chunks())])
        fake.script.append(html)
        with pytest.raises(venice.VeniceAPIError) as info:
            await aw(c.chat.complete("x", model="m", stream=True))
        return out + [type(info.value), info.value.status_code, "expected an event stream but got text/html" in str(info.value)]

    assert drive.run(scenario, fake.url, sleep=drive.sleep_into(sleeps), random=lambda: 0.0) == [
        ["Echo: ", "Hi ", "you"], "Echo: Hi you", "stop", 8,
        "Echo: Hi you", "assistant", "8c1f-STREAM", [0.5],
        ["Echo: ", "a ", "b", None, 8],
        venice.VeniceAPIError, 200, True,
    ]  # fmt: skip
    assert fake.connections == 1  # every stream read to its end went back to the pool


# Async only: cancellation, event loops, concurrency, threads.


def idle_connections(client):
    return sum(len(conns) for pool in client._transport.loops.values() for conns in pool.idle.values())


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_cancelling_the_task_iterating_a_stream_closes_its_connection(request, tls):
    cert, ctx = tls_server_context(request.getfixturevalue("tls_cert")) if tls else (None, None)
    settings = {"ca_file": cert, "environ": {}} if tls else {}

    async def main(fake):
        async with venice.AsyncVeniceClient(KEY, base_url=fake.url, max_retries=0, **settings) as c:
            got = []
            stream = await c.chat.complete("x", model="m", stream=True)

            async def consume():
                async for text in stream:
                    got.append(text)

            task = asyncio.ensure_future(consume())
            while not got:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)  # the task now waits in the read of the next block
            task.cancel()
            with pytest.raises(asyncio.CancelledError):  # not swallowed, not turned into another error
                await task
            state = [task.cancelled(), got, stream.text, stream._s._ex.open, idle_connections(c)]
            await asyncio.sleep(0.01)  # (an aborted transport closes its socket in the next loop turn)
            state.append(fake.aborted.wait(5))  # the server saw the connection closed
            state.append((await c.chat.complete("again", model="m")).text)
            state.append([t for t in asyncio.all_tasks() if t is not asyncio.current_task()])
            return state

    with running(FakeVenice(tls=ctx)) as fake:
        fake.script.append(stream_reply(ev(_chunk("first ")), wait_for_hang_up, end=False))
        assert asyncio.run(main(fake)) == [True, ["first "], "first ", False, 0, True, "Echo: again", []]
        assert fake.connections == 2  # the cancelled stream's connection never went back to the pool
        assert wait_until(lambda: fake.closed == 2)


def test_wait_for_around_calls_closes_their_connections(fake):
    fake.script += [wait_for_hang_up, stream_reply(ev(_chunk("first ")), wait_for_hang_up, end=False)]

    async def main():
        async with venice.AsyncVeniceClient(KEY, base_url=fake.url, max_retries=0) as c:
            with pytest.raises(asyncio.TimeoutError):  # waiting for the head
                await asyncio.wait_for(c.chat.complete("x", model="m"), 0.2)
            out = [idle_connections(c)]
            stream = await c.chat.complete("y", model="m", stream=True)
            with pytest.raises(asyncio.TimeoutError):  # mid-stream
                await asyncio.wait_for(collect(stream), 0.2)
            out += [stream.text, idle_connections(c), (await c.chat.complete("after", model="m")).text]
            return out

    assert asyncio.run(main()) == [0, "first ", 0, "Echo: after"]
    assert fake.connections == 3 and len(fake.requests) == 3
    assert wait_until(lambda: fake.closed == 3)  # both cut calls' connections closed, the last one at exit


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.timeout is new in 3.11")
def test_asyncio_timeout_around_a_call_closes_its_connection(fake):
    fake.script += [wait_for_hang_up, stream_reply(ev(_chunk("first ")), wait_for_hang_up, end=False)]

    async def main():
        async with venice.AsyncVeniceClient(KEY, base_url=fake.url, max_retries=0) as c:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.2):
                    await c.chat.complete("x", model="m")
            out = [idle_connections(c)]
            got = []
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.2):
                    async for text in await c.chat.complete("y", model="m", stream=True):
                        got.append(text)
            return out + [got, idle_connections(c), (await c.chat.complete("after", model="m")).text]

    assert asyncio.run(main()) == [0, ["first "], 0, "Echo: after"]
    assert fake.connections == 3 and wait_until(lambda: fake.closed == 3)


def test_cancelling_a_retry_wait_or_a_raw_read(fake):
    def half_body(handler):  # a head, part of the body, then nothing until the client hangs up
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", "100")
        handler.end_headers()
        handler.wfile.write(b'{"data": [')
        handler.wfile.flush()
        wait_for_hang_up(handler)

    fake.script.append(lambda h: h._send(503, {"error": "busy"}))
    fake.get_script.append(half_body)

    async def main():
        policy = venice.RetryPolicy(backoff_base=5.0)
        async with venice.AsyncVeniceClient(KEY, base_url=fake.url, retry=policy, random=lambda: 0.0) as c:
            with pytest.raises(asyncio.TimeoutError):  # cancelled in the 5 s wait before the retry (no jitter)
                await asyncio.wait_for(c.chat.complete("x", model="m"), 0.3)
            out = [idle_connections(c)]  # the 503 was read whole: its connection went back to the pool
            raw = await c.request("GET", "/models", stream=True)
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(raw.read(), 0.2)
            out += [raw._ex.open, idle_connections(c), len(await c.models.list())]
            return out

    assert asyncio.run(main()) == [1, False, 0, 2]
    assert fake.aborted.wait(5)  # the half-read body's connection was closed, not pooled
    assert [r[0] for r in fake.requests] == ["POST", "GET", "GET"] and fake.connections == 2


def test_one_async_client_in_two_event_loops(fake):
    c = venice.AsyncVeniceClient(KEY, base_url=fake.url)

    async def calls(tag):
        r = await c.chat.complete(tag, model="m")
        stream = await c.chat.complete(tag, model="m", stream=True)
        return r.text, await collect(stream), idle_connections(c)

    assert asyncio.run(calls("one")) == ("Echo: one", ["Echo: ", "one"], 1)
    assert asyncio.run(calls("two")) == ("Echo: two", ["Echo: ", "two"], 1)  # (the first loop's pool is gone)
    assert fake.connections == 2  # one per loop: no socket handed from a loop to another
    assert wait_until(lambda: fake.closed == 2)  # each loop's connection closed as asyncio.run shut it down


def test_a_cancelled_or_dropped_call_gives_its_max_concurrency_place_back(fake):
    fake.script.append(stream_reply(ev(_chunk("first ")), wait_for_hang_up, end=False))

    async def main():
        async with venice.AsyncVeniceClient(KEY, base_url=fake.url, max_concurrency=1, max_retries=0) as c:
            holder = await c.chat.complete("a", model="m", stream=True)  # holds the only place
            waiting = asyncio.ensure_future(c.chat.complete("b", model="m"))
            await asyncio.sleep(0.05)
            out = [waiting.done(), len(fake.requests)]  # it waits its turn, unsent
            waiting.cancel()  # cancelled while waiting for a place
            with pytest.raises(asyncio.CancelledError):
                await waiting
            del holder  # dropped unread: its place and its connection are given back
            gc.collect()
            out.append((await asyncio.wait_for(c.chat.complete("c", model="m"), 5)).text)
            # left early, after a block that held the whole answer up to [DONE] (the body's end not read yet)
            fake.script.append(stream_reply(ev(_chunk("Echo: ")) + ev(_chunk("d", finish="stop")) + b"data: [DONE]\n\n"))
            async with await c.chat.complete("d", model="m", stream=True) as stream:
                async for text in stream:
                    out.append(text)
                    break
            out.append((await asyncio.wait_for(c.chat.complete("e", model="m"), 5)).text)
            return out

    assert asyncio.run(main()) == [False, 1, "Echo: c", "Echo: ", "Echo: e"]
    assert [r[3]["messages"][-1]["content"] for r in fake.requests] == ["a", "c", "d", "e"]  # "b" never sent
    assert fake.aborted.wait(5)  # the dropped stream's connection was closed, not pooled half-read
    assert fake.connections == 3  # "a" closed, "c" kept alive and reused by "d", "d" closed early, "e" fresh


def test_one_async_client_in_two_event_loops_at_once(fake):
    c = venice.AsyncVeniceClient(KEY, base_url=fake.url)
    results, errors = {}, []

    def work(n):
        async def calls():
            return [(await c.chat.complete(f"t{n}-{i}", model="m")).text for i in range(10)]

        try:
            results[n] = asyncio.run(calls())
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == [] and results == {n: [f"Echo: t{n}-{i}" for i in range(10)] for n in range(4)}
    assert fake.connections == 4  # one per loop, each kept alive for its ten calls


DEAD_LOOP = """
import asyncio, gc, sys
import venice

c = venice.AsyncVeniceClient(api_key=sys.argv[2], base_url=sys.argv[1])
loop = asyncio.new_event_loop()
print(loop.run_until_complete(c.chat.complete("x", model="m")).text)
loop.close()  # by hand: no shutdown_asyncgens(), no `await c.close()`; the connection stays pooled
print(asyncio.run(c.chat.complete("y", model="m")).text)
del loop
gc.collect()
"""


def test_a_loop_closed_by_hand_leaves_no_resource_warning(fake):
    result = subprocess.run([sys.executable, "-W", "error", "-c", DEAD_LOOP, fake.url, KEY], cwd=HERE, capture_output=True, text=True, timeout=60)
    assert (result.stdout, result.stderr) == ("Echo: x\nEcho: y\n", "")


ASYNC_RESOURCES = """
import asyncio, gc, sys
import venice

c = venice.AsyncVeniceClient(api_key=sys.argv[2], base_url=sys.argv[1])

async def main(n):
    out = [(await c.chat.complete(f"x{n}", model="m")).text]
    async for text in await c.chat.complete("left half-read", model="m", stream=True):
        out.append(text)
        break
    await c.chat.complete("never read", model="m", stream=True)  # dropped unread
    out.append(len(await c.models.list()))
    return out

print(asyncio.run(main(1)), asyncio.run(main(2)))
loop = asyncio.new_event_loop()
print(loop.run_until_complete(main(3)))
loop.run_until_complete(c.close())  # (a loop closed by hand never shuts its async generators down)
loop.close()
del c, loop
gc.collect()
"""


def test_no_resource_warning_with_two_loops_and_dropped_streams(fake):
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", ASYNC_RESOURCES, fake.url, KEY], cwd=HERE, capture_output=True, text=True, timeout=60
    )
    assert (result.stdout, result.stderr) == (
        "['Echo: x1', 'Echo: ', 2] ['Echo: x2', 'Echo: ', 2]\n['Echo: x3', 'Echo: ', 2]\n",
        "",
    )


class BusyFake(FakeVenice):
    request_queue_size = 256  # 200 connections at once (socketserver's backlog is 5)

    def __init__(self):
        super().__init__()
        self.lock = threading.Lock()
        self.in_flight = self.peak = 0

    def enter(self):
        with self.lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)

    def leave(self):
        with self.lock:
            self.in_flight -= 1


def test_two_hundred_concurrent_streams_on_one_client():
    async def main(url):
        async with venice.AsyncVeniceClient(KEY, base_url=url, timeout=30) as c:

            async def one(i):
                stream = await c.chat.complete(f"n{i}", model="m", stream=True)
                return await collect(stream), stream.finish_reason, stream.usage.total_tokens

            return await asyncio.gather(*[one(i) for i in range(200)])

    with running(BusyFake()) as server:
        assert asyncio.run(main(server.url)) == [(["Echo: ", f"n{i}"], "stop", 8) for i in range(200)]  # each its own
        assert sorted(r[3]["messages"][-1]["content"] for r in server.requests) == sorted(f"n{i}" for i in range(200))


def test_max_concurrency_bounds_the_requests_in_flight_at_the_server():
    enter, leave = (lambda h: h.server.enter()), (lambda h: h.server.leave())
    # counted from the head on, until before [DONE]: the client can't have ended the call outside that
    counted = stream_reply(enter, ev(_chunk("a ")), ev(_chunk("b", finish="stop")), leave, b"data: [DONE]\n\n", pause=0.05)

    async def main(url):
        async with venice.AsyncVeniceClient(KEY, base_url=url, max_concurrency=4) as c:

            async def one(i):
                return await collect(await c.chat.complete(f"n{i}", model="m", stream=True))

            return await asyncio.gather(*[one(i) for i in range(16)])

    with running(BusyFake()) as server:
        server.script += [counted] * 16
        assert asyncio.run(main(server.url)) == [["a ", "b"]] * 16
    assert (server.peak, len(server.requests)) == (4, 16) and server.connections <= 4


def started_by_the_test_servers(thread):
    # (a handler thread of a loopback server, or a pipe of ConnectProxy: the test's threads, not the client's)
    return getattr(getattr(thread, "_target", None), "__name__", "") in ("process_request_thread", "pipe")


def test_async_calls_start_no_thread(tls_cert):
    cert, ctx = tls_server_context(tls_cert)
    proxy = ConnectProxy()
    proxy.start()
    try:
        with running(FakeVenice()) as fake, running(FakeVenice("127.0.0.1", tls=ctx)) as secure:
            before = set(threading.enumerate())
            tunnelled = secure.url.replace("127.0.0.1", "venice.test")  # numeric hosts only: no name resolved here

            async def main():
                async with venice.AsyncVeniceClient(KEY, base_url=fake.url) as c:
                    out = [(await c.chat.complete("x", model="m")).text]
                    out.append(await collect(await c.chat.complete("y", model="m", stream=True)))
                    out.append(len(await c.models.list()))
                    out.append((await c.embeddings.create("e", "m")).data[0].embedding)
                    out.append(len(await (await c.request("GET", "/models", stream=True)).read()) > 0)
                async with venice.AsyncVeniceClient(KEY, base_url=secure.url, ca_file=cert, environ={}) as c:
                    out.append((await c.chat.complete("tls", model="m")).text)
                env = {"SSL_CERT_FILE": cert, "HTTPS_PROXY": f"http://127.0.0.1:{proxy.port}"}
                async with venice.AsyncVeniceClient(KEY, base_url=tunnelled, environ=env) as c:
                    out.append((await c.chat.complete("proxy", model="m")).text)
                new = [t for t in threading.enumerate() if t not in before and not started_by_the_test_servers(t)]
                return out, new

            out, new = asyncio.run(main())
        assert out == ["Echo: x", ["Echo: ", "y"], 2, [0.1, 0.2, 0.3], True, "Echo: tls", "Echo: proxy"]
        assert new == [] and proxy.targets == [f"venice.test:{secure.server_port}"]
    finally:
        proxy.sock.close()


def test_import_venice_does_not_import_asyncio():
    code = "import sys, venice; venice.VeniceClient(api_key='x'); print('asyncio' in sys.modules); venice.AsyncVeniceClient(api_key='x'); print('asyncio' in sys.modules)"
    result = run_python(code)
    assert result.stdout == "False\nTrue\n", result.stderr


def test_async_openai_style_program(fake):
    user = [{"role": "user", "content": "Hi you"}]

    async def main():
        client = venice.AsyncOpenAI(api_key=KEY, base_url=fake.url)
        r = await client.chat.completions.create(model="venice-uncensored", messages=[{"role": "user", "content": "Hello"}])
        out = [r.choices[0].message.content, r.usage.total_tokens]
        text = []
        async for chunk in await client.chat.completions.create(model="venice-uncensored", messages=user, stream=True):
            if chunk.choices and chunk.choices[0].delta.content:
                text.append(chunk.choices[0].delta.content)
        out.append(text)
        options = {"include_usage": True}
        async with await client.chat.completions.create(model="m", messages=user, stream=True, stream_options=options) as stream:
            chunks = [chunk async for chunk in stream]
        out.append((len(chunks), chunks[-1].choices, chunks[-1].usage.total_tokens, stream.usage.total_tokens))
        out.append([m.id for m in await client.models.list()])
        emb = await client.embeddings.create(model="text-embedding-bge-m3", input=["a", "b"])
        out.append((len(emb.data), emb.data[0].embedding))
        for model in ("no-such-model", "m"):  # 404, then the scripted 401
            if model == "m":
                fake.script.append(lambda h: h._send(401, {"error": "Authentication failed"}))
            try:
                await client.chat.completions.create(model=model, messages=user)
            except venice.APIStatusError as err:
                out.append((type(err).__name__, err.status_code, err.request_id, err.body))
        await client.close()
        return out

    assert asyncio.run(main()) == [
        "Echo: Hello", 8,
        ["Echo: ", "Hi ", "you"],
        (5, [], 8, 8),
        ["venice-uncensored", "zai-org-glm-5-2"],
        (2, [0.1, 0.2, 0.3]),
        ("NotFoundError", 404, "8c1f-TEST", {"error": "Specified model not found"}),
        ("UnauthorizedError", 401, "8c1f-TEST", {"error": "Authentication failed"}),
    ]  # fmt: skip
    assert venice.AuthenticationError is venice.UnauthorizedError and venice.APIError is venice.VeniceError


###############################################################################
# OpenAI-compatible shim #######################################################
###############################################################################

OPENAI_STYLE_PROGRAM = '''
import json
from venice import OpenAI, NotFoundError, APIStatusError

client = OpenAI(api_key=KEY, base_url=BASE, max_retries=0)
completion = client.chat.completions.create(
    model="venice-uncensored",
    messages=[{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hello"}],
    temperature=0.2,
    logit_bias={"50256": -100},
    user=None,
    extra_body={"venice_parameters": {"include_venice_system_prompt": False}},
)
out.append(completion.choices[0].message.content)
out.append(completion.usage.total_tokens)
out.append(completion.model_dump()["choices"][0]["finish_reason"])

tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
r = client.chat.completions.create(model="venice-uncensored", messages=[{"role": "user", "content": "Weather?"}], tools=tools)
call = r.choices[0].message.tool_calls[0]
out.append((call.id, call.function.name, json.loads(call.function.arguments)))

text, args = [], []
with client.chat.completions.create(model="venice-uncensored", messages=[{"role": "user", "content": "Hi you"}], stream=True) as stream:
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            text.append(chunk.choices[0].delta.content)
out.append("".join(text))
for chunk in client.chat.completions.create(model="venice-uncensored", messages=[{"role": "user", "content": "w"}], tools=tools, stream=True):
    for tc in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
        args.append(tc.function.arguments)
out.append("".join(args))

out.append([m.id for m in client.models.list()])
out.append(client.models.retrieve("zai-org-glm-5-2").id)
emb = client.embeddings.create(model="text-embedding-bge-m3", input=["a", "b"])
out.append((len(emb.data), emb.data[0].embedding))
try:
    client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
except NotFoundError as err:
    out.append((err.status_code, err.request_id, err.body))
'''


def test_openai_style_program_runs_unchanged(fake):
    out = []
    exec(OPENAI_STYLE_PROGRAM, {"KEY": KEY, "BASE": fake.url, "out": out})
    assert out == [
        "Echo: Hello",
        8,
        "stop",
        ("call_1", "get_weather", {"city": "Paris"}),
        "Echo: Hi you",
        '{"city": "Paris"}',
        ["venice-uncensored", "zai-org-glm-5-2"],
        "zai-org-glm-5-2",
        (2, [0.1, 0.2, 0.3]),
        (404, "8c1f-TEST", {"error": "Specified model not found"}),
    ]
    first = fake.requests[0][3]
    assert "logit_bias" not in first and "user" not in first  # dropped / None
    assert first["venice_parameters"] == {"include_venice_system_prompt": False}
    assert first["temperature"] == 0.2
    assert fake.requests[0][2]["Authorization"] == f"Bearer {KEY}"


def test_openai_exception_aliases_are_our_classes():
    assert venice.APIError is venice.VeniceError
    assert venice.APIStatusError is venice.VeniceAPIError
    assert venice.AuthenticationError is venice.UnauthorizedError
    assert venice.BadRequestError is venice.InvalidRequestError
    # 422 has its own class: `except UnprocessableEntityError` must not catch a 400
    assert issubclass(venice.UnprocessableEntityError, venice.InvalidRequestError)
    assert not issubclass(venice.BadRequestError, venice.UnprocessableEntityError)
    assert venice.InternalServerError is venice.ServerError
    assert issubclass(venice.APITimeoutError, venice.APIConnectionError)


@pytest.mark.parametrize(
    "status,alias",
    [(400, "BadRequestError"), (401, "AuthenticationError"), (403, "PermissionDeniedError"), (404, "NotFoundError"),
     (422, "UnprocessableEntityError"), (429, "RateLimitError"), (500, "InternalServerError")],
)
def test_openai_exception_alias_raised_with_status_body_and_request_id(fake, status, alias):
    def reply(handler):
        handler._send(status, {"error": {"message": f"failed {status}", "code": "X"}})

    fake.script.append(reply)
    client = venice.OpenAI(api_key=KEY, base_url=fake.url, max_retries=0)
    with pytest.raises(getattr(venice, alias)) as info:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    err = info.value
    assert (err.status_code, err.request_id, err.body, err.code) == (status, "8c1f-TEST", {"error": {"message": f"failed {status}", "code": "X"}}, "X")
    assert isinstance(err, venice.APIStatusError) and isinstance(err, venice.APIError)
    assert isinstance(err, venice.UnprocessableEntityError) == (status == 422)


def test_openai_extra_headers_query_and_timeout(fake):
    client = venice.OpenAI(api_key=KEY, base_url=fake.url, default_headers={"X-App": "demo"})
    r = client.chat.completions.create(
        model="venice-uncensored",
        messages=[{"role": "user", "content": "x"}],
        extra_headers={"X-Trace": "t1"},
        extra_query={"debug": "1"},
        timeout=5,
    )
    assert r.choices[0].message.content == "Echo: x"
    method, path, headers, _ = fake.requests[-1]
    assert path == "/api/v1/chat/completions?debug=1" and headers["X-Trace"] == "t1" and headers["X-App"] == "demo"


def test_openai_bad_extra_body_and_functions(fake):
    client = venice.OpenAI(api_key=KEY, base_url=fake.url)
    messages = [{"role": "user", "content": "x"}]
    with pytest.raises(venice.InvalidRequestError, match="extra_body must be a dict"):
        client.chat.completions.create(model="m", messages=messages, extra_body="ab")
    with pytest.raises(venice.InvalidRequestError, match="extra_body must be a dict"):
        client.embeddings.create(model="e", input="x", extra_body=["a"])
    with pytest.raises(venice.InvalidRequestError, match="functions must be a list"):
        client.chat.completions.create(model="m", messages=messages, functions=5)
    assert fake.requests == []


def test_openai_legacy_functions_become_tools(fake):
    client = venice.OpenAI(api_key=KEY, base_url=fake.url)
    client.chat.completions.create(
        model="venice-uncensored",
        messages=[{"role": "user", "content": "x"}],
        functions=[{"name": "f", "parameters": {"type": "object"}}],
        function_call={"name": "f"},
    )
    body = fake.requests[-1][3]
    assert body["tools"] == [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "f"}}
    assert "functions" not in body and "function_call" not in body


def test_legacy_chat_completion_create(fake, monkeypatch):
    monkeypatch.setattr(venice, "api_key", KEY)
    monkeypatch.setattr(venice, "api_base", fake.url)
    resp = venice.ChatCompletion.create(model="venice-uncensored", messages=[{"role": "user", "content": "old"}])
    assert resp["choices"][0]["message"]["content"] == "Echo: old" == resp.choices[0].message.content
    chunks = list(venice.ChatCompletion.create(model="venice-uncensored", messages=[{"role": "user", "content": "a b"}], stream=True))
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == "Echo: a b"



def test_shim_stream_yields_no_chunk_without_choices_unless_usage_was_asked(fake):
    client = venice.OpenAI(api_key=KEY, base_url=fake.url, max_retries=0)
    messages = [{"role": "user", "content": "a b"}]
    with client.chat.completions.create(model="venice-uncensored", messages=messages, stream=True) as stream:
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream)  # openai's documented loop
    assert text == "Echo: a b"
    assert stream.usage == {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
    assert stream.usage_chunk["choices"] == [] and stream.usage_chunk["usage"]["total_tokens"] == 8
    asked = client.chat.completions.create(
        model="venice-uncensored", messages=messages, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(asked)
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 8 and asked.usage_chunk is None
    native = client.chat.complete(messages, model="venice-uncensored", stream=True)  # unchanged: all chunks
    assert [c["choices"] for c in native.chunks()][-1] == []
    client.close()


def test_openai_shim_responses_runs_openai_code(fake):
    fake.script.append(lambda h: h._send(200, RESPONSE_BODY))
    fake.script.append(stream_reply(CREATED, delta_event("Hel"), delta_event("lo"), COMPLETED))
    client = venice.OpenAI(api_key=KEY, base_url=fake.url, max_retries=0)
    tool = {"type": "function", "name": "weather", "description": "Weather", "parameters": {"type": "object"}, "strict": True}
    resp = client.responses.create(
        model="m", input="Hi", instructions="Be brief", tools=[tool, {"type": "web_search"}], tool_choice={"type": "function", "name": "weather"},
        max_output_tokens=10, store=False, metadata={"a": "b"}, text=None, extra_body={"web_search": True},
    )  # fmt: skip
    assert resp.output_text == "Hello world" and resp.usage.output_tokens == 2
    assert fake.requests[-1][3] == {
        "model": "m",
        "input": [{"role": "system", "content": "Be brief"}, {"role": "user", "content": "Hi"}],
        "tools": [{"type": "function", "function": {"name": "weather", "description": "Weather", "parameters": {"type": "object"}, "strict": True}}, {"type": "web_search"}],
        "tool_choice": {"type": "function", "function": {"name": "weather"}},
        "max_output_tokens": 10,
        "web_search": True,
    }  # fmt: skip
    text = ""
    with client.responses.create(model="m", input=[{"role": "user", "content": "Hi"}], stream=True) as stream:
        for event in stream:
            if event.type == "response.output_text.delta":
                text += event.delta
    assert text == "Hello" and fake.requests[-1][3]["stream"] is True
    with pytest.raises(venice.BadRequestError, match="stateless"):
        client.responses.create(model="m", input="Hi", previous_response_id="resp_0")
    assert len(fake.requests) == 2  # refused before sending
    client.close()


def test_async_openai_shim_responses(fake):
    fake.script.append(lambda h: h._send(200, RESPONSE_BODY))
    fake.script.append(stream_reply(CREATED, delta_event("Hel"), delta_event("lo"), COMPLETED))

    async def main():
        async with venice.AsyncOpenAI(api_key=KEY, base_url=fake.url, max_retries=0) as client:
            resp = await client.responses.create(model="m", input="Hi", instructions="Be brief")
            deltas = [event.delta async for event in await client.responses.create(model="m", input="Hi", stream=True) if event.type == "response.output_text.delta"]
            return resp, deltas

    resp, deltas = asyncio.run(main())
    assert resp.output_text == "Hello world" and deltas == ["Hel", "lo"]
    assert fake.requests[0][3]["input"] == [{"role": "system", "content": "Be brief"}, {"role": "user", "content": "Hi"}]


###############################################################################
# Local proxy ##################################################################
###############################################################################


@pytest.fixture
def proxy(fake, fake_env):
    """`python -m venice proxy` as a real subprocess in front of the fake."""
    with proxy_process(fake_env) as port_and_log:
        yield port_and_log


@contextlib.contextmanager
def proxy_process(env, *args):
    proc = subprocess.Popen(
        [sys.executable, "-m", "venice", "proxy", "--port", "0", *args],
        cwd=HERE,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stderr.readline()
    match = re.search(r"http://127\.0\.0\.1:(\d+)/v1", line)
    assert match, line
    log = []
    reader = threading.Thread(target=lambda: log.extend(proc.stderr), daemon=True)
    reader.start()
    yield int(match.group(1)), log
    proc.terminate()
    proc.wait(timeout=10)
    reader.join(timeout=10)
    proc.stdout.close()
    proc.stderr.close()


@contextlib.contextmanager
def _post(port, path, body, headers=None, timeout=10):
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json", **(headers or {})})
        yield conn.getresponse()
    finally:
        conn.close()


LETTA_BODY = {
    "model": "venice-uncensored",
    "messages": [{"role": "user", "content": "hi", "name": None}],
    "max_completion_tokens": 16384,
    "user": "",
    "parallel_tool_calls": False,
    "tools": None,
    "tool_choice": None,
    "stream_options": None,
    "service_tier": "auto",
    "chat_template_args": {"enable_thinking": False},
    "store": False,
}


def test_proxy_cleans_letta_requests(fake, proxy):
    port, log = proxy
    with _post(port, "/v1/chat/completions", LETTA_BODY, {"Authorization": "Bearer whatever"}) as resp:
        answer = json.loads(resp.read())
    assert resp.status == 200 and answer["choices"][0]["message"]["content"] == "Echo: hi"
    sent = fake.requests[-1][3]
    assert sent == {
        "model": "venice-uncensored",
        "messages": [{"role": "user", "content": "hi"}],
        "max_completion_tokens": 4096,  # clamped to the model's maxCompletionTokens
        "user": "",
        "parallel_tool_calls": False,
        "store": False,
        "venice_parameters": {"include_venice_system_prompt": False},
    }
    assert fake.requests[-1][2]["Authorization"] == f"Bearer {KEY}"  # the configured key, not the client's
    assert KEY not in json.dumps(answer)
    time.sleep(0.2)
    entry = [line for line in log if "/v1/chat/completions" in line][0]
    assert "model=venice-uncensored 200" in entry and "dropped=service_tier,chat_template_args" in entry


def test_proxy_streams_incrementally(fake, proxy):
    go_on = threading.Event()

    def first_event_then_wait(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        write_chunk(handler, _sse(_chunk("Echo: ")))
        go_on.wait(60)  # the rest only once the test has read the first event through the proxy
        for event in (_sse(_chunk("hi", finish="stop")), _sse(b"[DONE]"), b""):
            write_chunk(handler, event)

    fake.script.append(first_event_then_wait)
    port, _ = proxy
    with _post(port, "/chat/completions", {**LETTA_BODY, "stream": True}, timeout=30) as resp:
        assert resp.status == 200 and resp.getheader("Content-Type") == "text/event-stream"
        first = resp.readline()  # a proxy that waited for the whole answer would time out here
        go_on.set()
        rest = resp.read()
    assert first.startswith(b"data: {") and b"Echo: " in first
    assert rest.rstrip().endswith(b"data: [DONE]")


def test_proxy_models_in_openai_shape(fake, proxy):
    import http.client

    port, _ = proxy
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/v1/models")
    body = json.loads(conn.getresponse().read())
    conn.close()
    assert body["object"] == "list"
    assert body["data"][1] == {
        "id": "zai-org-glm-5-2", "object": "model", "created": 1783468800, "owned_by": "venice.ai",
        "context_length": 198000, "max_model_len": 198000,
    }


def test_proxy_errors_keep_their_status(fake, proxy):
    port, _ = proxy
    with _post(port, "/v1/chat/completions", {**LETTA_BODY, "model": "no-such-model"}) as resp:
        body = json.loads(resp.read())
    assert resp.status == 404 and body["error"]["message"] == "Specified model not found"
    assert body["error"]["code"] == "MODEL_NOT_FOUND"


def test_proxy_answers_bad_requests_itself(fake, proxy):
    port, _ = proxy
    cases = [  # json.dumps writes NaN, which Python's json reads back; Venice's JSON has no NaN
        ({**LETTA_BODY, "temperature": float("nan")}, 400, "Out of range float values"),
        ({**LETTA_BODY, "functions": 5}, 400, "functions must be a list"),
        ({**LETTA_BODY, "venice_parameters": ["x"]}, 400, "venice_parameters is not an object"),
        ([LETTA_BODY], 400, "not a JSON object"),
    ]
    for body, status, fragment in cases:
        with _post(port, "/v1/chat/completions", body) as resp:
            error = json.loads(resp.read())["error"]
        assert resp.status == status and fragment in error["message"] and error["type"] == "invalid_request_error"
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", "/v1/chat/completions", b"{}", {"Content-Length": "-1"})
    resp = conn.getresponse()
    assert resp.status == 400 and "invalid or repeated Content-Length" in json.loads(resp.read())["error"]["message"]
    conn.close()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("DELETE", "/v1/models")
    resp = conn.getresponse()
    assert resp.status == 405 and resp.getheader("Allow") == "GET"
    assert json.loads(resp.read())["error"]["message"] == "DELETE is not supported on /models; use GET"
    conn.close()
    assert [r for r in fake.requests if r[0] == "POST"] == []  # (the model list for clamping may be read)


def test_proxy_options_model_venice_params_and_quiet(fake, fake_env):
    args = ["--model", "zai-org-glm-5-2", "--venice-param", "include_venice_system_prompt=true"]
    with proxy_process(fake_env, *args, "--venice-param", "enable_web_search=auto", "--quiet") as (port, log):
        for path in ("/chat/completions", "/v1/chat/completions"):  # with and without /v1
            with _post(port, path, LETTA_BODY) as resp:
                assert resp.status == 200 and json.loads(resp.read())["choices"][0]["message"]["content"] == "Echo: hi"
    body = fake.requests[-1][3]
    assert body["model"] == "zai-org-glm-5-2"
    assert body["venice_parameters"] == {"include_venice_system_prompt": True, "enable_web_search": "auto"}
    text = "".join(log)
    assert text.count("service_tier") == 1 and text.count("chat_template_args") == 1  # each dropped key once
    assert " 200 " not in text and KEY not in text  # --quiet: no per-request lines


def test_proxy_upstream_200_error_is_a_502(fake, proxy):
    import http.client

    port, _ = proxy
    fake.get_script.append(lambda h: h._send(200, {"error": "upstream hiccup"}))
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/v1/models")
    resp = conn.getresponse()
    assert resp.status == 502 and json.loads(resp.read())["error"]["message"] == "upstream hiccup"
    conn.close()


def test_proxy_broken_upstream_stream_ends_with_an_error_event(fake, proxy):
    fake.script.append(stream_reply(ev(_chunk("partial"))))  # ends without [DONE]
    port, _ = proxy
    with _post(port, "/v1/chat/completions", {**LETTA_BODY, "stream": True}) as resp:
        events = [json.loads(line[6:]) for line in resp.read().split(b"\n") if line.startswith(b"data: {")]
    assert events[0]["choices"][0]["delta"]["content"] == "partial"
    assert events[-1]["error"]["code"] == "incomplete_stream"


def test_proxy_client_disconnect_closes_the_upstream_request(fake, proxy):
    port, _ = proxy
    long_prompt = [{"role": "user", "content": " ".join(["word"] * 40)}]  # 40 events, 0.3 s apart
    with _post(port, "/v1/chat/completions", {**LETTA_BODY, "model": "slow", "messages": long_prompt, "stream": True}) as resp:
        assert resp.readline().startswith(b"data: {")
    # the local client hung up after the first event; the proxy must drop the upstream stream too
    assert fake.aborted.wait(5)


def test_proxy_embeddings_pass_through(fake, proxy):
    port, _ = proxy
    with _post(port, "/v1/embeddings", {"model": "e5", "input": ["a"], "encoding_format": None, "extra": 1}) as resp:
        body = json.loads(resp.read())
    assert resp.status == 200 and body["data"][0]["embedding"] == [0.1, 0.2, 0.3]
    assert fake.requests[-1][3] == {"model": "e5", "input": ["a"]}


def test_proxy_public_bind_with_a_key_warns(fake_env):
    proc = subprocess.Popen(
        [sys.executable, "-m", "venice", "proxy", "--host", "0.0.0.0", "--port", "0", "--proxy-key", "local-secret"],
        cwd=HERE, env=fake_env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        first = proc.stderr.readline()
        assert first == "warning: listening on 0.0.0.0: clients must send the proxy key as their bearer token\n"
        assert "local-secret" not in first and KEY not in proc.stderr.readline()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stderr.close()


def test_proxy_refuses_a_public_bind_without_a_key(fake_env):
    result = subprocess.run(
        [sys.executable, "-m", "venice", "proxy", "--host", "0.0.0.0", "--port", "0"],
        cwd=HERE, env=fake_env, capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 2 and "without --proxy-key" in result.stderr


def test_proxy_bad_or_busy_port_is_a_usage_error(fake_env):
    code, _, err = run_cli(["proxy", "--port", "99999"], fake_env)
    assert code == 2 and "a port is a number from 0 to 65535" in err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "venice", "proxy", "--port", str(port)],
            cwd=HERE, env=fake_env, capture_output=True, text=True, timeout=30,
        )
    assert result.returncode == 2
    assert result.stderr.startswith(f"venice: error: can't listen on 127.0.0.1:{port} (")  # strerror's words vary


def test_proxy_on_ipv6_loopback_and_unusable_addresses(fake):
    import http.client

    upstream = venice.VeniceClient(KEY, base_url=fake.url)
    try:
        server = venice.start_proxy("::1", 0, client=upstream, log=None)
    except venice.ConfigError:
        pytest.skip("no IPv6 loopback here")
    try:
        conn = http.client.HTTPConnection("::1", server.server_address[1], timeout=10)
        conn.request("GET", "/v1/models")  # Host: [::1]:port
        assert conn.getresponse().status == 200
        conn.close()
        conn = http.client.HTTPConnection("::1", server.server_address[1], timeout=10)
        conn.request("GET", "/v1/models", headers={"Host": f"127.0.0.1:{server.server_address[1]}"})
        assert conn.getresponse().status == 403  # not the address it listens on
        conn.close()
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(venice.ConfigError, match="can't listen on 192.0.2.1:0"):  # not ours: EADDRNOTAVAIL
        venice.start_proxy("192.0.2.1", 0, client=upstream, proxy_key="k", log=None)
    upstream.close()


def test_proxy_key_is_required_when_set(fake, fake_env):
    server = venice.start_proxy("127.0.0.1", 0, client=venice.VeniceClient(KEY, base_url=fake.url), proxy_key="local-secret")
    port = server.server_address[1]
    try:
        with _post(port, "/v1/chat/completions", LETTA_BODY, {"Authorization": "Bearer wrong"}) as resp:
            assert resp.status == 401 and json.loads(resp.read())["error"]["type"] == "authentication_error"
        with _post(port, "/v1/chat/completions", LETTA_BODY, {"Authorization": "Bearer local-secret"}) as resp:
            assert resp.status == 200 and KEY not in resp.read().decode()
    finally:
        server.shutdown()
        server.server_close()



@contextlib.contextmanager
def local_proxy(fake, client=None, host="127.0.0.1", **kwargs):
    """start_proxy in this process, in front of the fake; yields the port."""
    upstream = client or venice.VeniceClient(KEY, base_url=fake.url, max_retries=0)
    server = venice.start_proxy(host, 0, client=upstream, **kwargs)
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        upstream.close()


def _raw(port, data, *, timeout=10, shut=False):
    """Send raw bytes to the proxy; return all it sends until it closes the connection (a proxy that
    keeps it open fails the test with a timeout)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        if shut:
            sock.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            block = sock.recv(65536)
            if not block:
                return out
            out += block


def _status(reply):
    return int(reply.split(b" ", 2)[1]) if reply else None


def _posts(fake):
    return [r for r in fake.requests if r[0] == "POST"]


def test_proxy_serves_only_its_own_host_names_and_no_web_page(fake):
    lines = []
    with local_proxy(fake, allow_hosts=["host.docker.internal"], log=lines.append) as port:

        def get(*headers, method="GET", path="/v1/models"):
            head = "".join(f"{h}\r\n" for h in headers)
            reply = _raw(port, f"{method} {path} HTTP/1.1\r\n{head}Connection: close\r\n\r\n".encode())
            assert b"access-control-allow" not in reply.lower()  # never a CORS grant
            return _status(reply)

        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}", f"host.docker.internal:{port}"):
            assert get(f"Host: {host}") == 200, host
        refused = [
            (f"Host: evil.example:{port}",),  # DNS rebinding: evil.example resolved to 127.0.0.1
            (f"Host: :{port}",),  # an empty host
            ("Host: localhost:1",),  # another port
            ("Host: 127.0.0.1",),  # (port 80)
            (f"Host: [::1]:{port}",),  # not the bound address
            (f"Host: localhost:{port}", f"Host: evil.example:{port}"),
            (),  # no Host at all
            (f"Host: localhost:{port}", "Origin: http://evil.example"),
            (f"Host: localhost:{port}", "Origin: null"),
            (f"Host: localhost:{port}", f"Origin: http://evil.example:{port}"),
        ]
        for headers in refused:
            assert get(*headers) == 403, headers
        assert get(f"Host: localhost:{port}", f"Origin: http://localhost:{port}") == 200
        assert get(f"Host: evil.example:{port}", method="POST", path="/v1/chat/completions") == 403
        reply = _raw(port, f"GET /v1/models HTTP/1.1\r\nHost: evil.example:{port}\r\n\r\n".encode())
        error = json.loads(reply.split(b"\r\n\r\n", 1)[1])["error"]
        assert error["code"] == "host_not_allowed"
        assert error["message"] == (
            f"Host evil.example:{port} is not allowed: use http://127.0.0.1:{port}/v1 or "
            f"http://localhost:{port}/v1, or start the proxy with --allow-host NAME"
        )
        # What a page can send without a CORS pre-check: text/plain and form bodies
        for ctype in ("text/plain", "application/x-www-form-urlencoded", None):
            body = json.dumps(LETTA_BODY).encode()
            head = f"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost:{port}\r\nContent-Length: {len(body)}\r\n"
            reply = _raw(port, (head + (f"Content-Type: {ctype}\r\n" if ctype else "") + "\r\n").encode() + body)
            assert _status(reply) == 415, ctype
            assert b"send the body as Content-Type: application/json" in reply
    assert _posts(fake) == []  # nothing went upstream


def test_proxy_refuses_what_it_cannot_frame_and_closes_after_early_answers(fake):
    with local_proxy(fake, proxy_key="local-secret") as port:
        good = f"Host: 127.0.0.1:{port}\r\nAuthorization: Bearer local-secret\r\nContent-Type: application/json\r\n"
        body = json.dumps(LETTA_BODY).encode()

        def post(framing, payload=body, **kw):
            return _raw(port, f"POST /v1/chat/completions HTTP/1.1\r\n{good}{framing}\r\n".encode() + payload, **kw)

        chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
        assert _status(post("Transfer-Encoding: chunked\r\n", chunked)) == 501  # (then closed: _raw returned)
        for framing in ("Content-Length: +0_2\r\n", "Content-Length: 1, 1\r\n", "Content-Length: 2\r\nContent-Length: 2\r\n"):
            reply = post(framing, b"{}")
            assert _status(reply) == 400 and b"invalid or repeated Content-Length" in reply, framing
        assert _status(post("")) == 411
        # A refused request's body must not be read as the next request (request smuggling)
        smuggled = f"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer local-secret\r\n\r\n".encode()
        wrong_key = good.replace("local-secret", "wrong")
        reply = _raw(port, f"POST /v1/chat/completions HTTP/1.1\r\n{wrong_key}Content-Length: {len(smuggled)}\r\n\r\n".encode() + smuggled)
        assert _status(reply) == 401 and reply.count(b"HTTP/1.1 ") == 1 and b"Connection: close" in reply
        reply = _raw(port, f"GET /v1/chat/completions HTTP/1.1\r\n{good}Content-Length: {len(smuggled)}\r\n\r\n".encode() + smuggled)
        assert _status(reply) == 405 and reply.count(b"HTTP/1.1 ") == 1
        # A client that leaves mid-headers or mid-body: nothing goes upstream
        assert _raw(port, f"POST /v1/chat/completions HTTP/1.1\r\n{good}Content-Length: 50\r\n".encode(), shut=True) == b""
        assert post(f"Content-Length: {len(body) + 10}\r\n", shut=True) == b""  # (the JSON itself is whole)
        assert _status(post(f"Content-Length: {len(body)}\r\nConnection: close\r\n")) == 200  # the same, whole
    assert len(_posts(fake)) == 1


def test_proxy_limits_body_size_slow_clients_and_connections(fake):
    with local_proxy(fake, max_body=1000, client_timeout=0.3, max_connections=2) as port:
        head = f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        reply = _raw(port, f"{head}Content-Length: {10**12}\r\n\r\n".encode())  # answered before any body
        assert _status(reply) == 413 and b"the body is 1000000000000 bytes; this proxy takes at most 1000" in reply
        assert _raw(port, head.encode()) == b""  # headers that never end: closed after the timeout
        reply = _raw(port, f"{head}Content-Length: 100\r\n\r\n{{\"model\"".encode())  # a body that never ends
        assert _status(reply) == 408
        # A client that trickles its headers in, a byte at a time, is cut off too (each read is quick).
        trickler = socket.create_connection(("127.0.0.1", port), timeout=10)
        started = time.monotonic()
        try:
            for byte in head.encode():
                trickler.sendall(bytes([byte]))
                time.sleep(0.05)
        except OSError:
            pass  # the proxy closed the connection
        assert time.monotonic() - started < len(head) * 0.05 * 0.8  # cut off long before its headers ended
        assert b" 200 " not in trickler.recv(1000)
        trickler.close()
        idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(2)]
        try:
            request = f"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode()
            reply = _raw(port, request)
            assert _status(reply) == 503 and b"too many connections" in reply
        finally:
            for sock in idle:
                sock.close()
        for _ in range(100):  # the slots come back once those connections end
            if _status(_raw(port, request)) == 200:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the proxy never served again after its connections ended")
    assert _posts(fake) == []
    for bad in ({"max_body": 0}, {"max_connections": -1}, {"client_timeout": 0}):
        with pytest.raises(venice.ConfigError, match=f"{next(iter(bad))} must be"):
            venice.start_proxy("127.0.0.1", 0, client=venice.VeniceClient(KEY, base_url=fake.url), **bad)


def _silent_after_first_event(handler):
    """A stream that sends one event, then stays silent until the proxy hangs up (recorded in aborted)."""
    handler.send_response(200)
    handler.send_header("Content-Type", "text/event-stream")
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    write_chunk(handler, _sse(_chunk("first")))
    handler.connection.settimeout(30)
    try:
        if handler.connection.recv(1) == b"":
            handler.server.aborted.set()
    except OSError:
        handler.server.aborted.set()


def test_proxy_closes_upstream_when_its_client_leaves_while_venice_is_silent(fake):
    fake.script.append(_silent_after_first_event)
    lines = []
    with local_proxy(fake, log=lines.append) as port:
        with _post(port, "/v1/chat/completions", {**LETTA_BODY, "stream": True}) as resp:
            assert b"first" in resp.readline()
        # The client left; Venice has nothing to say for now. The proxy must notice and hang up upstream
        # (without it the upstream request stays open until the 600 s read timeout).
        assert fake.aborted.wait(10)
        for _ in range(100):
            if lines:
                break
            time.sleep(0.05)
    assert lines[0].startswith("POST /v1/chat/completions model=venice-uncensored 200 ")
    assert lines[0].endswith(" dropped=service_tier,chat_template_args client-left")


def test_proxy_one_layer_of_retries_and_the_client_is_told(fake):
    throttled = [("Retry-After", "1"), ("retry-after-ms", "1000"), ("x-ratelimit-remaining-requests", "0")]
    fake.get_script.append(lambda h: h._send(503, {"error": "models down"}))  # the limit lookup fails
    fake.script.extend([lambda h: h._send(429, {"error": "Too many requests"}, throttled)] * 2)
    client = venice.VeniceClient(KEY, base_url=fake.url, max_retries=1, sleep=lambda s: None)
    with local_proxy(fake, client) as port:
        with _post(port, "/v1/chat/completions", LETTA_BODY) as resp:
            error = json.loads(resp.read())["error"]
    assert resp.status == 429 and error["message"] == "Too many requests"
    assert resp.getheader("Retry-After") == "1" and resp.getheader("retry-after-ms") == "1000"
    assert resp.getheader("x-ratelimit-remaining-requests") == "0"
    assert resp.getheader("x-should-retry") == "false"  # the proxy retried already: an openai SDK must not add its own
    assert len(_posts(fake)) == 2  # 1 + max_retries, not multiplied
    assert [r[1] for r in fake.requests if r[0] == "GET"] == ["/api/v1/models?type=text"]  # once, not retried
    assert _posts(fake)[0][3]["max_completion_tokens"] == 16384  # no limit known: forwarded unclamped


def test_proxy_model_limit_lookup_does_not_hold_up_chats(fake):
    release = threading.Event()

    def slow_failing_models(handler):
        release.wait(30)
        handler._send(503, {"error": "models down"})

    fake.get_script.append(slow_failing_models)
    with local_proxy(fake) as port:
        first = {}

        def first_chat():
            with _post(port, "/v1/chat/completions", LETTA_BODY) as resp:
                first["status"] = resp.status
                resp.read()

        thread = threading.Thread(target=first_chat)
        thread.start()
        for _ in range(200):
            if any(r[0] == "GET" for r in fake.requests):
                break
            time.sleep(0.02)
        try:
            for _ in range(3):  # while the lookup hangs, other chats go through (unclamped)
                with _post(port, "/v1/chat/completions", LETTA_BODY) as resp:
                    assert resp.status == 200
                    resp.read()
        finally:
            release.set()
            thread.join(30)
        assert first["status"] == 200
        with _post(port, "/v1/chat/completions", LETTA_BODY) as resp:
            assert resp.status == 200
    assert len([r for r in fake.requests if r[0] == "GET"]) == 1  # the failure is remembered, not retried per chat
    assert [r[3]["max_completion_tokens"] for r in _posts(fake)] == [16384] * 5


def test_proxy_log_lines_escape_control_characters(fake):
    lines = []
    with local_proxy(fake, log=lines.append) as port:
        forged = "evil\x1b[2J\nPOST /v1/chat/completions model=x 200 1ms"
        with _post(port, "/v1/chat/completions", {**LETTA_BODY, "model": "venice-uncensored\x07", forged: 1}) as resp:
            resp.read()
        _raw(port, f"GET /v1/x\x1b[2J HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode("latin-1"))
    assert all(line.isprintable() for line in lines)
    assert lines[0].startswith("POST /v1/chat/completions model=venice-uncensored\\x07 200 ")
    assert lines[0].endswith(r"dropped=service_tier,chat_template_args,evil\x1b[2J\nPOST /v1/chat/completions model=x 200 1ms")
    assert lines[1].startswith("GET /v1/x\\x1b[2J model=- 404 ")


def test_proxy_key_is_compared_in_constant_time(fake, monkeypatch):
    import hmac

    seen = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: seen.append((a, b)) or real(a, b))
    with local_proxy(fake, proxy_key="local-secret") as port:
        with _post(port, "/v1/models", {}, {"Authorization": "Bearer wrong\xe9"}) as resp:
            assert resp.status == 401
    assert seen == [(b"Bearer wrong\xc3\xa9", b"Bearer local-secret")]


def test_proxy_uses_the_configured_default_model(fake):
    body = {k: v for k, v in LETTA_BODY.items() if k != "model"}
    client = venice.VeniceClient(KEY, base_url=fake.url, default_model="zai-org-glm-5-2", max_retries=0)
    with local_proxy(fake, client) as port:
        with _post(port, "/v1/chat/completions", body) as resp:
            assert resp.status == 200 and json.loads(resp.read())["model"] == "zai-org-glm-5-2"
    assert _posts(fake)[-1][3]["model"] == "zai-org-glm-5-2"
    assert _posts(fake)[-1][3]["max_completion_tokens"] == 16384  # (32000 allowed for that model)
    with local_proxy(fake) as port:
        with _post(port, "/v1/chat/completions", body) as resp:
            error = json.loads(resp.read())["error"]
    assert resp.status == 400 and error["message"] == "the request names no model; send one, or start the proxy with --model"
    assert len(_posts(fake)) == 1


def test_proxy_known_path_with_the_wrong_method_is_405(fake):
    import http.client

    with local_proxy(fake) as port:
        for method, path, allow in (("GET", "/v1/chat/completions", "POST"), ("GET", "/embeddings", "POST"), ("PUT", "/v1/models", "GET")):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request(method, path)
            resp = conn.getresponse()
            message = json.loads(resp.read())["error"]["message"]
            conn.close()
            assert (resp.status, resp.getheader("Allow")) == (405, allow)
            assert message == f"{method} is not supported on {path.replace('/v1', '')}; use {allow}"
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/v1/nothing")
        assert conn.getresponse().status == 404
        conn.close()


def test_proxy_forwards_the_usage_chunk_only_when_asked(fake):
    def events(body):
        with local_proxy(fake) as port:
            with _post(port, "/v1/chat/completions", body) as resp:
                return [line[6:] for line in resp.read().split(b"\n") if line.startswith(b"data: ")]

    plain = events({**LETTA_BODY, "stream": True})
    assert [json.loads(e)["choices"][0]["delta"].get("content") for e in plain[:-1]] == ["Echo: ", "hi", None]
    assert plain[-1] == b"[DONE]"  # and no chunk with choices: [] (openai's loop reads choices[0])
    asked = events({**LETTA_BODY, "stream": True, "stream_options": {"include_usage": True}})
    assert json.loads(asked[-2]) == {
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
    }  # fmt: skip
    assert _posts(fake)[-1][3]["stream_options"] == {"include_usage": True}
    # However the choices are spelt (spaces, null), a chunk without any is held back
    for spelling in (b'"choices": [ ]', b'"choices":null'):
        fake.script.append(stream_reply(ev(_chunk("a", finish="stop")), b'data: {"id":"x",' + spelling + b',"usage":{}}\n\n', b"data: [DONE]\n\n"))
        assert [json.loads(e)["choices"][0]["delta"].get("content") for e in events({**LETTA_BODY, "stream": True})[:-1]] == ["a"]


def test_proxy_passes_a_non_stream_answer_to_a_stream_request_as_it_is(fake):
    fake.script.append(lambda h: h._send(200, {"error": {"message": "overloaded", "code": "model_overloaded"}}))
    with local_proxy(fake) as port:
        with _post(port, "/v1/chat/completions", {**LETTA_BODY, "stream": True}) as resp:
            assert resp.status == 200 and resp.getheader("Content-Type") == "application/json"
            assert json.loads(resp.read()) == {"error": {"message": "overloaded", "code": "model_overloaded"}}

def test_proxy_cli_takes_the_key_from_the_environment_and_more_host_names(fake, fake_env):
    env = {**fake_env, "VENICE_PROXY_KEY": "local-secret"}  # not on the command line, so not in `ps`
    with proxy_process(env, "--allow-host", "host.docker.internal", "--max-body", "100") as (port, _log):
        with _post(port, "/v1/chat/completions", LETTA_BODY) as resp:
            assert resp.status == 401
        auth = {"Authorization": "Bearer local-secret", "Host": f"host.docker.internal:{port}"}
        with _post(port, "/v1/chat/completions", LETTA_BODY, auth) as resp:
            assert resp.status == 413  # --max-body 100
        with _post(port, "/v1/chat/completions", {"model": "venice-uncensored", "messages": [{"role": "user", "content": "hi"}]}, auth) as resp:
            assert resp.status == 200 and json.loads(resp.read())["choices"][0]["message"]["content"] == "Echo: hi"


def test_chat_request_keys_match_the_spec():
    spec_path = os.path.join(HERE, "..", "shared", "venice-api", "swagger.derived.json")
    if not os.path.exists(spec_path):
        pytest.skip("../shared/venice-api is not beside this checkout")
    with open(spec_path, encoding="utf-8") as fh:
        schemas = json.load(fh)["components"]["schemas"]
    assert venice.CHAT_REQUEST_KEYS == set(schemas["ChatCompletionRequest"]["properties"])
    assert venice.EMBEDDING_REQUEST_KEYS == set(schemas["CreateEmbeddingRequestSchema"]["properties"])


def test_proxy_serves_responses_and_passes_streams_through(fake):
    fake.script.append(lambda h: h._send(200, RESPONSE_BODY))
    fake.script.append(stream_reply(CREATED, delta_event("Hel"), delta_event("lo"), COMPLETED))
    fake.script.append(stream_reply(CREATED, delta_event("Hel")))  # ends without response.completed
    lines = []
    with local_proxy(fake, log=lines.append) as port:
        with _post(port, "/v1/responses", {"model": "m", "input": "Hi", "store": False, "max_output_tokens": 50000}) as resp:
            assert resp.status == 200 and json.loads(resp.read()) == RESPONSE_BODY
        with _post(port, "/v1/responses", {"model": "m", "input": "Hi", "stream": True}) as resp:
            assert resp.status == 200 and resp.getheader("Content-Type") == "text/event-stream"
            streamed = resp.read()
        with _post(port, "/v1/responses", {"model": "m", "input": "Hi", "stream": True}) as resp:
            cut = resp.read()
        with _post(port, "/v1/responses", {"model": "m", "input": []}) as resp:
            assert resp.status == 400 and json.loads(resp.read())["error"]["message"] == "input must be a non-empty string or list of input items"
        with _post(port, "/v1/responses", {"model": "m", "input": "Hi", "previous_response_id": "resp_0"}) as resp:
            assert resp.status == 400 and "stateless" in json.loads(resp.read())["error"]["message"]
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/v1/responses")
        get = conn.getresponse()
        assert (get.status, get.getheader("Allow")) == (405, "POST")
        conn.close()
        # the chat route's checks: Host (DNS rebinding), Origin (web pages), a JSON content type
        body = json.dumps({"model": "m", "input": "Hi"}).encode()
        for head, status in (
            (f"Host: evil.example:{port}\r\nContent-Type: application/json\r\n", 403),
            (f"Host: localhost:{port}\r\nOrigin: http://evil.example\r\nContent-Type: application/json\r\n", 403),
            (f"Host: localhost:{port}\r\nContent-Type: text/plain\r\n", 415),
        ):
            reply = _raw(port, f"POST /v1/responses HTTP/1.1\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
            assert _status(reply) == status, head
    assert streamed == CREATED + delta_event("Hel") + delta_event("lo") + COMPLETED  # event by event, as sent
    assert cut.startswith(CREATED + delta_event("Hel"))
    assert json.loads(cut.split(b"data: ")[-1])["error"]["code"] == "incomplete_stream"
    sent = [r[3] for r in _posts(fake)]
    assert len(sent) == 3
    assert sent[0] == {"model": "m", "input": "Hi", "max_output_tokens": 50000, "venice_parameters": {"include_venice_system_prompt": False}}
    assert sent[1]["stream"] is True
    assert any("POST /v1/responses model=m 200" in line and "dropped=store" in line for line in lines)


def test_responses_request_keys_match_the_spec():
    spec_path = os.path.join(HERE, "..", "shared", "venice-api", "swagger.derived.json")
    if not os.path.exists(spec_path):
        pytest.skip("../shared/venice-api is not beside this checkout")
    with open(spec_path, encoding="utf-8") as fh:
        schemas = json.load(fh)["components"]["schemas"]
    assert venice.RESPONSES_REQUEST_KEYS == set(schemas["ResponsesRequest"]["properties"])
    params = inspect.signature(venice.Responses.create).parameters
    assert set(params) - {"self", "timeout", "deadline", "headers"} == venice.RESPONSES_REQUEST_KEYS


###############################################################################
# API coverage #################################################################
###############################################################################
# Every (method, path) of Venice's spec, and the public call that sends it. "retired: …" names what
# replaces a route Venice has retired (410); "not yet: …" marks a route with no wrapper yet, reached with
# client.request(...) meanwhile. A route Venice adds later fails test_coverage_table_matches_the_spec.

API_COVERAGE = {
    ("POST", "/chat/completions"): "chat.complete",
    ("POST", "/responses"): "responses.create",
    ("POST", "/embeddings"): "embeddings.create",
    ("GET", "/models"): "models.list",
    ("GET", "/models/traits"): "models.traits",
    ("GET", "/models/compatibility_mapping"): "models.compatibility_mapping",
    ("GET", "/characters"): "characters.list",
    ("GET", "/characters/{slug}"): "characters.get",
    ("GET", "/characters/{slug}/reviews"): "characters.reviews",
    ("GET", "/api_keys"): "api_keys.list",
    ("GET", "/api_keys/{id}"): "api_keys.get",
    ("POST", "/api_keys"): "api_keys.create",
    ("PATCH", "/api_keys"): "api_keys.update",
    ("DELETE", "/api_keys"): "api_keys.delete",
    ("GET", "/api_keys/rate_limits"): "api_keys.rate_limits",
    ("GET", "/api_keys/rate_limits/log"): "api_keys.rate_limit_log",
    ("GET", "/api_keys/generate_web3_key"): "api_keys.web3_token",
    ("POST", "/api_keys/generate_web3_key"): "api_keys.generate_web3_key",
    ("GET", "/billing/balance"): "billing.balance",
    ("GET", "/billing/usage-history"): "billing.usage_history",
    ("GET", "/billing/usage-analytics"): "billing.usage_analytics",
    ("GET", "/billing/usage"): "retired: billing.usage_history",
    ("POST", "/augment/search"): "augment.search",
    ("POST", "/augment/scrape"): "augment.scrape",
    ("POST", "/augment/text-parser"): "augment.parse_text",
    ("GET", "/crypto/rpc/networks"): "crypto.networks",
    ("POST", "/crypto/rpc/{network}"): "crypto.rpc",
    ("GET", "/x402/balance/{walletAddress}"): "x402.balance",
    ("GET", "/x402/transactions/{walletAddress}"): "x402.transactions",
    ("POST", "/x402/top-up"): "x402.top_up",
    ("POST", "/audio/speech"): "audio.speech",
    ("POST", "/video/transcriptions"): "retired: not replaced (Venice answers 410)",
    ("POST", "/image/generate"): "images.generate",
    ("GET", "/image/styles"): "images.styles",
    **{
        (method, path): "not yet: media (issue 12)"
        for method, path in [
            ("POST", "/images/generations"),
            ("POST", "/image/upscale"), ("POST", "/image/edit"), ("POST", "/image/multi-edit"),
            ("POST", "/image/background-remove"), ("POST", "/audio/transcriptions"),
            ("POST", "/audio/voices"), ("POST", "/video/quote"), ("POST", "/video/queue"),
            ("POST", "/video/retrieve"), ("POST", "/video/complete"), ("POST", "/audio/quote"),
            ("POST", "/audio/queue"), ("POST", "/audio/retrieve"), ("POST", "/audio/complete"),
        ]
    },
}  # fmt: skip


@pytest.mark.parametrize("make", [venice.VeniceClient, venice.AsyncVeniceClient], ids=["sync", "async"])
def test_every_named_call_exists_on_both_clients(make):
    client = make(KEY, base_url="http://127.0.0.1:9/v1", env_file=False, environ={})
    for route, name in API_COVERAGE.items():
        target = name.split("retired: ")[-1]
        if target.startswith(("not yet", "not replaced")):
            continue
        obj = client
        for part in target.split("."):
            obj = getattr(obj, part, None)
        assert callable(obj) and obj.__doc__, f"{route}: {name} is no documented call"


def test_coverage_table_matches_the_spec():
    spec_path = os.path.join(HERE, "..", "shared", "venice-api", "swagger.derived.json")
    if not os.path.exists(spec_path):
        pytest.skip("../shared/venice-api/swagger.derived.json is not beside this checkout: the table was not compared")
    with open(spec_path, encoding="utf-8") as fh:
        paths = json.load(fh)["paths"]
    spec = {(m.upper(), p) for p, ops in paths.items() for m in ops if m in ("get", "post", "put", "patch", "delete")}
    assert sorted(spec - set(API_COVERAGE)) == [], "routes in Venice's spec that the table does not map"
    assert sorted(set(API_COVERAGE) - spec) == [], "routes in the table that Venice's spec no longer has"
    retired = {(m.upper(), p) for p, ops in paths.items() for m, op in ops.items() if isinstance(op, dict) and op.get("deprecated")}
    assert all(API_COVERAGE[route].startswith("retired") for route in retired)


def test_readme_coverage_table_is_built_from_the_mapping():
    with open(os.path.join(HERE, "README.md"), encoding="utf-8") as fh:
        readme = fh.read()
    rows = [f"| `{m} {p}` | {name if ':' in name else f'`client.{name}`'} |" for (m, p), name in API_COVERAGE.items()]
    table = "| route | call |\n|---|---|\n" + "\n".join(rows) + "\n"
    assert table in readme, "regenerate README's API coverage table:\n" + table


###############################################################################
# Command line #################################################################
###############################################################################


def run_cli(args, env, stdin=""):
    out, err = io.StringIO(), io.StringIO()
    code = venice.main(args, stdin=io.StringIO(stdin), stdout=out, stderr=err, environ=env)
    return code, out.getvalue(), err.getvalue()


def test_cli_one_shot_streams_the_answer_with_a_final_newline(fake, fake_env):
    code, out, err = run_cli(["Why is the sky blue?"], fake_env)
    assert (code, out, err) == (0, "Echo: Why is the sky blue?\n", "")
    body = fake.requests[-1][3]
    assert body["stream"] is True and body["model"] == "default"
    assert body["messages"] == [{"role": "user", "content": "Why is the sky blue?"}]


def test_cli_chat_subcommand_no_stream_and_options(fake, fake_env):
    code, out, err = run_cli(
        ["chat", "-m", "venice-uncensored", "-s", "Be brief", "-t", "0.5", "--max-tokens", "20", "--no-stream",
         "--web-search", "auto", "--no-venice-prompt", "hello"],
        fake_env,
    )
    assert (code, out) == (0, "Echo: hello\n")
    body = fake.requests[-1][3]
    assert body["messages"][0] == {"role": "system", "content": "Be brief"}
    assert body["temperature"] == 0.5 and body["max_completion_tokens"] == 20 and "stream" not in body
    assert body["venice_parameters"] == {"enable_web_search": "auto", "include_venice_system_prompt": False}


def test_cli_piped_stdin_goes_before_the_prompt(fake, fake_env):
    code, out, _ = run_cli(["write a commit message"], fake_env, stdin="diff --git a/x b/x\n")
    assert code == 0
    assert fake.requests[-1][3]["messages"][-1]["content"] == "diff --git a/x b/x\n\nwrite a commit message"


@pytest.mark.parametrize("errors", ["strict", "surrogateescape"])  # a UTF-8 locale, and the C locale's stdin
def test_cli_piped_input_that_is_not_utf8_is_a_usage_error(fake, fake_env, errors):
    stdin = io.TextIOWrapper(io.BytesIO(b"caf\xe9 latin-1\n"), encoding="utf-8", errors=errors)
    out, err = io.StringIO(), io.StringIO()
    code = venice.main(["summarise"], stdin=stdin, stdout=out, stderr=err, environ=fake_env)
    assert (code, err.getvalue()) == (2, "venice: error: the piped input is not UTF-8 text\n")
    assert fake.requests == []


def test_cli_json_streaming_prints_one_chunk_per_line(fake, fake_env):
    code, out, _ = run_cli(["--json", "hi there"], fake_env)
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(lines) == 5  # three words, the finish chunk, the usage chunk
    assert lines[0]["choices"][0]["delta"]["content"] == "Echo: "
    assert lines[-1]["usage"]["total_tokens"] == 8


def test_cli_json_no_stream_prints_the_response(fake, fake_env):
    code, out, _ = run_cli(["--json", "--no-stream", "hi"], fake_env)
    assert code == 0 and json.loads(out)["choices"][0]["message"]["content"] == "Echo: hi"


def test_cli_verbose_prints_usage_cost_and_balance(fake, fake_env):
    code, out, err = run_cli(["-v", "--no-stream", "hi"], fake_env)
    assert code == 0
    assert "tokens: 5 in, 3 out" in err and "cost: 0.0001 USD" in err and "balance before: 12.5 USD, 3.0 DIEM" in err
    assert "request id: 8c1f-TEST" in err
    code, out, err = run_cli(["-v", "hi"], fake_env)  # streamed: usage from the final chunk
    assert (code, out) == (0, "Echo: hi\n") and err == "tokens: 5 in, 3 out; request id: 8c1f-STREAM\n"


def test_cli_show_reasoning_goes_to_stderr(fake, fake_env):
    reply = stream_reply(ev(_chunk(reasoning="thinking...")), ev(_chunk("answer")), ev(_chunk(finish="stop")), ev(b"[DONE]"))
    fake.script += [reply, reply]
    assert run_cli(["--show-reasoning", "q"], fake_env)[1:] == ("answer\n", "thinking...")
    assert run_cli(["q"], fake_env)[1:] == ("answer\n", "")


def test_cli_models_table_and_json(fake, fake_env):
    code, out, _ = run_cli(["models"], {**fake_env, "COLUMNS": "200"})
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["ID", "CONTEXT", "IN", "$/M", "OUT", "$/M", "CAPABILITIES", "TRAITS"]
    assert lines[1].split() == ["venice-uncensored", "32k", "0.2", "0.9", "tools", "most_uncensored"]
    assert lines[2].split() == ["zai-org-glm-5-2", "198k", "0.85", "2.75", "tools,vision,reasoning", "default,function_calling_default"]
    code, out, _ = run_cli(["models", "--json", "--type", "all"], fake_env)
    assert code == 0 and [m["id"] for m in json.loads(out)] == ["venice-uncensored", "zai-org-glm-5-2"]
    assert fake.requests[-1][1] == "/api/v1/models?type=all"


def test_cli_models_table_fits_a_narrow_terminal(fake, fake_env):
    code, out, _ = run_cli(["models"], {**fake_env, "COLUMNS": "60"})
    assert code == 0 and max(len(line) for line in out.splitlines()) <= 60
    assert "…" in out and "zai-org-glm-5-2" in out


def test_cli_auth_set_status_clear(fake, fake_env, tmp_path):
    env = {k: v for k, v in fake_env.items() if k != "VENICE_API_KEY"}
    code, out, err = run_cli(["auth", "set"], env, stdin=KEY + "\n")
    path = tmp_path / "config" / "venice" / "credentials"
    assert code == 0, err
    assert out == f"Venice accepts the key (balance: 12.5 USD, 3 DIEM)\nsaved API key sk-…1234 to {path}\n"
    assert path.read_text() == f"VENICE_API_KEY={KEY}\n"
    assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700
    assert fake.requests[-1][1] == "/api/v1/api_keys/rate_limits"
    code, out, _ = run_cli(["auth", "status"], env)
    assert code == 0 and out == (
        f"API key sk-…1234 from the credentials file {path}\n"
        f"it would be sent to 127.0.0.1:{fake.server_port}\n"
        "Venice accepts the key (balance: 12.5 USD, 3 DIEM)\n"
    )
    code, out, _ = run_cli(["auth", "clear"], env)
    assert code == 0 and out == f"removed the API key from {path}\n"
    assert not path.exists()  # nothing else was in it: no empty file left behind
    code, _, err = run_cli(["auth", "status"], env)
    assert code == 2 and "no API key configured" in err


def test_cli_auth_status_names_the_environment_and_the_dotenv_file(fake, fake_env, tmp_path):
    sent_to = f"it would be sent to 127.0.0.1:{fake.server_port}\n"
    code, out, _ = run_cli(["auth", "status", "--no-verify"], fake_env)
    assert code == 0 and out == "API key sk-…1234 from the environment variable VENICE_API_KEY\n" + sent_to
    (tmp_path / ".env").write_text(f"VENICE_API_KEY={KEY}\n")  # fake_env runs in tmp_path
    env = {k: v for k, v in fake_env.items() if k != "VENICE_API_KEY"}
    code, out, _ = run_cli(["auth", "status", "--no-verify"], env)
    assert code == 0 and out == f"API key sk-…1234 from the .env file {tmp_path / '.env'}\n" + sent_to


def test_cli_auth_set_rejected_key_is_not_stored(fake, fake_env, tmp_path):
    code, out, err = run_cli(["auth", "set", "sk-wrong-key-000"], fake_env)
    assert code == 1 and "401 Unauthorized: Authentication failed" in err and "sk-wrong-key-000" not in err + out
    assert not (tmp_path / "config" / "venice" / "credentials").exists()
    code, out, _ = run_cli(["auth", "set", "--no-verify", "sk-other-key-999"], fake_env)
    assert code == 0 and (tmp_path / "config" / "venice" / "credentials").read_text() == "VENICE_API_KEY=sk-other-key-999\n"


def test_cli_auth_keeps_other_lines_byte_for_byte_and_reports_unwritable_paths(fake, fake_env, tmp_path):
    path = tmp_path / "config" / "venice" / "credentials"
    path.parent.mkdir(parents=True, mode=0o755)
    path.write_bytes(b"# caf\xe9 (latin-1)\nVENICE_MODEL=m\nVENICE_API_KEY=old-key-123456\n")
    code, _, err = run_cli(["auth", "set", "--no-verify", "sk-new-key-123456"], fake_env)
    assert code == 0, err
    assert path.read_bytes() == b"# caf\xe9 (latin-1)\nVENICE_MODEL=m\nVENICE_API_KEY=sk-new-key-123456\n"
    assert path.parent.stat().st_mode & 0o777 == 0o700  # a folder that existed at 0755 is closed too
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    code, _, err = run_cli(["auth", "set", "--no-verify", "sk-new-key-123456"], {**fake_env, "XDG_CONFIG_HOME": str(blocked)})
    assert code == 2 and err.startswith(f"venice: error: can't update the credentials file {blocked}")


def test_cli_exit_codes_and_no_tracebacks(fake, fake_env, tmp_path):
    code, _, err = run_cli(["-m", "no-such-model", "hi"], fake_env)
    assert code == 1 and err.startswith("venice: error: 404 Not Found: Specified model not found (request id 8c1f-TEST)")
    code, _, err = run_cli(["hi"], {**fake_env, "VENICE_API_KEY": ""})
    assert code == 2 and "VENICE_API_KEY" in err and "venice auth set" in err
    code, _, err = run_cli(["--temperature", "abc", "hi"], fake_env)
    assert code == 2 and "invalid float value" in err
    code, _, err = run_cli(["-t", "5", "hi"], fake_env)
    assert code == 2 and "temperature must be a number from 0 to 2" in err
    code, _, err = run_cli(["hi"], {**fake_env, "VENICE_BASE_URL": "http://example.com/api"})
    assert code == 2 and "http://" in err
    code, _, err = run_cli(["hi"], {**fake_env, "VENICE_BASE_URL": "http://127.0.0.1:9/api/v1", "VENICE_MAX_RETRIES": "0"})
    assert code == 1 and "could not connect" in err
    assert "Traceback" not in err
    code, _, err = run_cli([], fake_env)  # no prompt, no terminal
    assert code == 2 and "no prompt given" in err


def test_cli_broken_stream_keeps_text_and_says_incomplete(fake, fake_env):
    fake.script.append(stream_reply(ev(_chunk("Half an ")), ev(_chunk("answer"))))  # no [DONE], no finish_reason
    code, out, err = run_cli(["hi"], fake_env)
    assert code == 1 and out == "Half an answer\n"
    # Said once, in the CLI's words: no second "incomplete" line, no `.partial` (a library attribute).
    assert err == (
        "venice: error: the stream ended before the answer was complete (no [DONE] and no finish_reason)"
        " — the answer above is incomplete\n"
    )


def test_cli_debug_shows_traceback(fake, fake_env):
    code, _, err = run_cli(["--debug", "-m", "no-such-model", "hi"], fake_env)
    assert code == 1 and "Traceback" in err
    code, _, err = run_cli(["-m", "no-such-model", "hi"], {**fake_env, "VENICE_DEBUG": "1"})
    assert code == 1 and "Traceback" in err


def test_cli_keyboard_interrupt_exits_130(fake, fake_env):
    class Interrupting(io.StringIO):
        def read(self, *a):
            raise KeyboardInterrupt

    err = io.StringIO()
    code = venice.main(["hi"], stdin=Interrupting(), stdout=io.StringIO(), stderr=err, environ=fake_env)
    assert code == 130 and err.getvalue() == "interrupted\n"


def test_cli_broken_pipe_exits_quietly(fake, fake_env):
    class ClosedPipe(io.StringIO):
        def write(self, s):
            raise BrokenPipeError

    err = io.StringIO()
    code = venice.main(["hi"], stdin=io.StringIO(), stdout=ClosedPipe(), stderr=err, environ=fake_env)
    assert code == 0 and err.getvalue() == ""


def test_cli_interactive_with_scripted_stdin(fake, fake_env, tmp_path):
    script = "hello\n/model zai-org-glm-5-2\n/system Be brief\nsecond\n/save chat.json\n/clear\n/help\n/bogus\n/exit\n"
    code, out, err = run_cli(["-i"], fake_env, stdin=script)
    assert code == 0, err
    assert "you> Echo: hello\n" in out and "model: zai-org-glm-5-2" in out and "Echo: second" in out
    assert "saved 5 messages to chat.json" in out and "conversation cleared" in out and "/model [NAME]" in out
    assert "unknown command" in out
    saved = json.loads((tmp_path / "chat.json").read_text())
    assert saved["model"] == "zai-org-glm-5-2"
    assert [m["role"] for m in saved["messages"]] == ["system", "user", "assistant", "user", "assistant"]
    second = fake.requests[-1][3]
    assert second["model"] == "zai-org-glm-5-2" and second["messages"][0] == {"role": "system", "content": "Be brief"}
    assert second["messages"][1:3] == [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "Echo: hello"}]


def test_cli_interactive_keeps_going_after_an_error_and_leaves_on_eof(fake, fake_env):
    code, out, err = run_cli(["-i", "-m", "no-such-model"], fake_env, stdin="hi\n/model venice-uncensored\nagain\n")
    assert code == 0 and "error: 404 Not Found" in err and "Echo: again" in out
    assert [m["content"] for m in fake.requests[-1][3]["messages"]] == ["again"]  # the failed turn was dropped


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin", reason="needs a Linux pty")
def test_cli_interactive_in_a_real_terminal(fake, fake_env):
    import pty
    import select

    pid, fd = pty.fork()
    if pid == 0:  # child: a real terminal on stdin/stdout/stderr
        os.chdir(HERE)
        os.execvpe(sys.executable, [sys.executable, "-m", "venice"], {**fake_env, "TERM": "xterm", "NO_COLOR": "1"})
    seen = b""

    def read_until(token, timeout=10):
        nonlocal seen
        end = time.monotonic() + timeout
        while token not in seen and time.monotonic() < end:
            if select.select([fd], [], [], 0.1)[0]:
                try:
                    seen += os.read(fd, 4096)
                except OSError:
                    break
        return token in seen

    try:
        assert read_until(b"you> ")
        os.write(fd, b"hello there\r")
        # The next prompt: readline has the terminal again (a Ctrl-D typed before that would be dropped by
        # the terminal, as in any readline program).
        assert read_until(b"Echo: hello there\r\nyou> "), seen
        os.write(fd, b"\x04")  # Ctrl-D leaves, after a newline
        assert read_until(b"Echo: hello there\r\nyou> \r\n", 15), seen
        # Wait without reading the terminal: on a busy machine, a select/read loop on the master here was
        # seen to hold the exiting child in the kernel's exit path (closing its pty) for over 30 s; it
        # finished as soon as the loop stopped.
        for _ in range(300):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.1)
        else:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            raise AssertionError(f"still running after Ctrl-D: {seen!r}")
        assert os.waitstatus_to_exitcode(status) == 0, seen
    finally:
        os.close(fd)
    assert b"\x1b[31m" not in seen  # NO_COLOR


def run_in_terminal(args, env, until):
    """Run `python -m venice ARGS` on a pty; read until ``until`` shows, then wait for the exit without
    reading on (see the interactive test). Returns (exit code, everything read)."""
    import pty
    import select

    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(HERE)
        os.execvpe(sys.executable, [sys.executable, "-m", "venice", *args], env)
    seen, end = b"", time.monotonic() + 20
    try:
        while until not in seen and time.monotonic() < end:
            if select.select([fd], [], [], 0.1)[0]:
                try:
                    seen += os.read(fd, 4096)
                except OSError:
                    break
        for _ in range(300):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status), seen
            time.sleep(0.1)
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        raise AssertionError(f"still running: {seen!r}")
    finally:
        os.close(fd)


def test_cli_spinner_and_colours_on_a_terminal(fake, fake_env):
    env = {k: v for k, v in fake_env.items() if k != "NO_COLOR"} | {"TERM": "xterm"}
    fake.script.append(stream_reply(lambda h: time.sleep(0.6), ev(_chunk("Hello")), ev(_chunk(finish="stop")), ev(b"[DONE]")))
    code, seen = run_in_terminal(["hi"], env, b"Hello\r\n")
    assert code == 0 and "⠋".encode() in seen and b"\r  \rHello\r\n" in seen  # frames, cleared before the text
    code, seen = run_in_terminal(["hi", "-m", "no-such-model"], env, b"not found")
    assert code == 1 and b"\x1b[31mvenice: error: 404 Not Found" in seen  # errors in red on a terminal


def test_cli_stream_error_event_says_incomplete_once(fake, fake_env):
    broken = stream_reply(ev(_chunk("Half an ")), ev({"error": {"message": "upstream failed"}}))
    fake.script += [broken, broken]
    code, out, err = run_cli(["hi"], fake_env)
    assert (code, out) == (1, "Half an \n")
    assert err == "venice: error: upstream failed — the answer above is incomplete\n"
    code, out, err = run_cli(["-i"], fake_env, stdin="hi\n")  # the interactive chat says it the same way
    assert code == 0 and err == "error: upstream failed — the answer above is incomplete\n"


def test_cli_error_text_keeps_useful_hints_and_drops_library_wording():
    text = venice._error_text
    cut = venice.APIConnectionError("the connection was reset", partial="Half", hint="the proxy closed it")
    assert text(cut) == "the connection was reset — the proxy closed it; the answer above is incomplete"
    early = venice.StreamError("the stream ended", partial="", hint="the text so far is in .partial")
    assert text(early) == "the stream ended"  # nothing was printed, so nothing is incomplete
    tls = venice.APIConnectionError("could not connect", hint="set SSL_CERT_FILE or ca_file= if you use a private certificate authority")
    assert text(tls) == "could not connect — set SSL_CERT_FILE if you use a private certificate authority"


def test_cli_a_post_not_sent_again_is_said_in_cli_words(fake, fake_env):
    fake.script.append(hang_up)
    code, _, err = run_cli(["hi"], fake_env)
    assert code == 1 and len(fake.requests) == 1
    assert err == (
        "venice: error: 127.0.0.1 closed the connection without answering — not sent again: Venice may have "
        "processed it; check before you run it again\n"
    )


def rate_limited(seconds):
    return lambda h: h._send(429, {"error": "Rate limit exceeded"}, [("Retry-After", seconds)])


def test_cli_rate_limit_says_how_long_to_wait(fake, fake_env):
    fake.script += [rate_limited("3600"), rate_limited("30")]
    code, _, err = run_cli(["hi"], fake_env)  # beyond what the library waits for: no retry, no sleep
    assert code == 1 and len(fake.requests) == 1
    assert err == "venice: error: 429 Too Many Requests: Rate limit exceeded (request id 8c1f-TEST) — Venice asks to wait: try again in 1 h\n"
    code, _, err = run_cli(["hi"], {**fake_env, "VENICE_MAX_RETRIES": "0"})
    assert code == 1 and err.endswith("— Venice asks to wait: try again in 30 s\n")


@pytest.mark.parametrize(
    "seconds, text",
    [(0.2, "1 s"), (30, "30 s"), (59.5, "1 min"), (90, "2 min"), (1800, "30 min"), (3600, "1 h"), (5400, "1 h 30 min"), (86400, "24 h")],
)
def test_cli_durations_in_human_units(seconds, text):
    assert venice._duration(seconds) == text


def test_cli_404_hints_venice_models_or_the_base_url(fake, fake_env):
    code, _, err = run_cli(["-m", "no-such-model", "hi"], fake_env)
    assert code == 1
    assert err == "venice: error: 404 Not Found: Specified model not found (request id 8c1f-TEST) — `venice models` lists the model ids\n"
    wrong = fake.url.replace("/api/v1", "/v1")  # the /api part left out
    fake.script.append(lambda h: h._send(404, {"error": "No route for POST /v1/chat/completions"}))
    code, _, err = run_cli(["hi"], {**fake_env, "VENICE_BASE_URL": wrong})
    assert code == 1 and err == (
        "venice: error: 404 Not Found: No route for POST /v1/chat/completions (request id 8c1f-TEST)"
        f" — check the API root: --base-url or VENICE_BASE_URL (now {wrong})\n"
    )
    code, _, err = run_cli(["models", "--base-url", wrong], fake_env)  # --base-url given: named the same way
    assert code == 1 and err == (
        f"venice: error: 404 Not Found: Not found (request id 8c1f-TEST) — check the API root: --base-url or VENICE_BASE_URL (now {wrong})\n"
    )


def test_cli_library_warnings_are_one_line_each(fake, fake_env, tmp_path):
    env = {k: v for k, v in fake_env.items() if k != "VENICE_API_KEY"}
    (tmp_path / ".env").write_text(f"VENICE_API_KEY={KEY}\nthis line is broken\n")
    code, out, err = run_cli(["auth", "status", "--no-verify"], env)
    assert code == 0 and out.startswith("API key sk-…1234 from the .env file")
    assert err == "venice: warning: ./.env: line 2 is not KEY=VALUE; skipped\n"
    (tmp_path / ".env").unlink()
    path = tmp_path / "config" / "venice" / "credentials"
    path.parent.mkdir(parents=True)
    path.write_text(f"VENICE_API_KEY={KEY}\n")
    path.chmod(0o644)
    code, _, err = run_cli(["auth", "status", "--no-verify"], env)
    assert code == 0 and err == f"venice: warning: credentials file {path} is readable by other users; run: chmod 600 {path}\n"
    path.unlink()
    headers = [("x-venice-model-id", "old-cli-model"), ("x-venice-model-deprecation-warning", "use new-model")]
    fake.script.append(lambda h: h._send(200, {"choices": [{"message": {"content": "ok"}}]}, headers=headers))
    venice._warned_models.discard("old-cli-model")
    code, out, err = run_cli(["--no-stream", "-m", "old-cli-model", "hi"], fake_env)
    assert (code, out, err) == (0, "ok\n", "venice: warning: model old-cli-model is deprecated: use new-model\n")


@pytest.mark.parametrize(
    "word, meant",
    [("help", "venice --help"), ("Halp", "venice --help"), ("model", "venice models"), ("modle", "venice models"),
     ("mdoels", "venice models"), ("auht", "venice auth"), ("proxi", "venice proxy"), ("balanse", "venice balance"),
     ("serch", "venice search QUERY"), ("charakters", "venice characters"), ("keyz", "venice keys")],
)  # fmt: skip
def test_cli_one_word_near_miss_of_a_command_is_a_usage_error(fake, fake_env, word, meant):
    code, out, err = run_cli([word], fake_env)
    assert (code, out) == (2, "")
    assert err == f"venice: error: {word!r} looks like a command: did you mean `{meant}`? To send it to the model as a prompt, put -- before it: venice -- {word}\n"
    assert fake.requests == []  # nothing sent, nothing billed
    code, out, _ = run_cli(["--", word], fake_env)  # -- is the escape
    assert (code, out) == (0, f"Echo: {word}\n")


def test_cli_one_word_prompts_that_are_not_commands_are_sent_and_commands_after_options_are_not(fake, fake_env):
    for word in ("hello", "hi", "Bonjour", "summarise", "what", "cat", "path"):
        assert run_cli([word], fake_env)[:2] == (0, f"Echo: {word}\n")
    assert run_cli(["help", "me", "write", "a", "poem"], fake_env)[:2] == (0, "Echo: help me write a poem\n")
    code, _, err = run_cli(["-m", "venice-uncensored", "models"], fake_env)  # a command after options
    assert code == 2 and "did you mean `venice models`?" in err


def test_cli_help_states_the_grammar_and_the_default_temperature(fake_env):
    code, out, _ = run_cli(["--help"], fake_env)
    text = " ".join(out.split())  # argparse wraps to the terminal's width
    assert code == 0 and out.startswith(
        "usage: venice [options] [--] [PROMPT ...]\n       venice {chat,models,auth,proxy,keys,search,scrape,balance,usage,characters} [options] ...\n"
    )
    assert "put -- before a prompt to send it as it is: `venice -- help`" in text
    assert "sampling temperature, 0-2 (default 0.15, venice.py's default, sent on every call)" in text


def test_cli_sends_the_default_temperature(fake, fake_env):
    assert run_cli(["hi"], fake_env)[0] == 0
    assert fake.requests[-1][3]["temperature"] == venice.DEFAULT_TEMPERATURE == 0.15


def test_cli_auth_set_says_the_key_was_not_saved(fake, fake_env, tmp_path):
    not_saved = "venice: the key was NOT saved; to save it without checking: venice auth set --no-verify\n"
    code, out, err = run_cli(["auth", "set", "sk-wrong-key-000"], fake_env)
    assert (code, out) == (1, "")
    assert err == "venice: error: Venice rejected the key: 401 Unauthorized: Authentication failed (request id 8c1f-TEST)\n" + not_saved
    env = {**fake_env, "VENICE_BASE_URL": "http://127.0.0.1:9/api/v1", "VENICE_MAX_RETRIES": "0"}
    code, out, err = run_cli(["auth", "set", "sk-other-key-999"], env)
    assert (code, out) == (1, "")
    first, second = err.splitlines(keepends=True)
    assert first.startswith("venice: error: could not check the key: could not connect to 127.0.0.1:9") and second == not_saved
    assert not (tmp_path / "config" / "venice" / "credentials").exists()


def test_cli_auth_clear_keeps_a_file_with_other_lines(fake_env, tmp_path):
    path = tmp_path / "config" / "venice" / "credentials"
    path.parent.mkdir(parents=True)
    path.write_text(f"VENICE_MODEL=m\n\nexport VENICE_API_KEY = {KEY}\nVENICE_API_KEY_BACKUP=old\n")
    path.chmod(0o600)
    code, out, _ = run_cli(["auth", "clear"], fake_env)
    assert code == 0 and out == f"removed the API key from {path}\n"
    assert path.read_text() == "VENICE_MODEL=m\n\nVENICE_API_KEY_BACKUP=old\n"  # only the key's own line goes
    path.write_text("VENICE_MODEL=m\n\n")
    path.write_text(f"\nVENICE_API_KEY={KEY}\n\n")  # blank lines are nothing
    assert run_cli(["auth", "clear"], fake_env)[0] == 0 and not path.exists()
    code, out, _ = run_cli(["auth", "clear"], fake_env)
    assert code == 0 and out == f"no API key stored in {path}\n"


def test_cli_auth_status_shows_where_the_key_would_go(fake_env, tmp_path):
    env = {"VENICE_API_KEY": KEY, "XDG_CONFIG_HOME": str(tmp_path / "config")}  # the public API
    code, out, _ = run_cli(["auth", "status", "--no-verify"], env)
    assert code == 0 and out == "API key sk-…1234 from the environment variable VENICE_API_KEY\nit would be sent to api.venice.ai\n"


def test_cli_interactive_ctrl_c_keeps_the_question_and_the_partial_answer(fake, fake_env, tmp_path):
    class CtrlCMidAnswer(io.StringIO):
        fired = False

        def write(self, text):
            super().write(text)
            if text == "hello " and not self.fired:  # the second word of "Echo: hello there"
                self.fired = True
                raise KeyboardInterrupt
            return len(text)

    out, err = CtrlCMidAnswer(), io.StringIO()
    script = io.StringIO("hello there\n/save chat.json\nagain\n")
    code = venice.main(["-i"], stdin=script, stdout=out, stderr=err, environ=fake_env)
    assert code == 0 and err.getvalue() == "[answer stopped]\n"
    assert "saved 2 messages to chat.json" in out.getvalue()
    kept = [{"role": "user", "content": "hello there"}, {"role": "assistant", "content": "Echo: hello [interrupted]"}]
    assert json.loads((tmp_path / "chat.json").read_text())["messages"] == kept
    assert fake.requests[-1][3]["messages"] == kept + [{"role": "user", "content": "again"}]


def test_cli_interactive_model_command_shows_and_checks_the_model(fake, fake_env):
    script = "/model\n/model venice-uncensord\n/model most_uncensored\n/model venice-uncensored\n/model\nhi\n"
    code, out, err = run_cli(["-i"], fake_env, stdin=script)
    assert code == 0
    assert out.count("model: default\n") == 2  # shown, then kept after the unknown name
    assert "model: most_uncensored\n" in out  # a trait is a model name too
    assert out.endswith("model: venice-uncensored\nyou> model: venice-uncensored\nyou> Echo: hi\nyou> \n")
    assert err == "unknown model 'venice-uncensord'; did you mean venice-uncensored? (`venice models` lists them); keeping default\n"
    assert fake.requests[-1][3]["model"] == "venice-uncensored"


def test_cli_interactive_model_is_taken_on_trust_when_the_list_fails(fake, fake_env):
    fake.get_script.append(lambda h: h._send(503, {"error": "down"}))
    code, out, err = run_cli(["-i"], {**fake_env, "VENICE_MAX_RETRIES": "0"}, stdin="/model brand-new-model\n")
    assert code == 0 and "model: brand-new-model\n" in out
    assert err == "could not check 'brand-new-model' against the model list (503 Service Unavailable: down (request id 8c1f-TEST)); using it anyway\n"


def test_python_m_venice_version_subprocess():
    result = subprocess.run([sys.executable, "-m", "venice", "--version"], cwd=HERE, capture_output=True, text=True, timeout=30)
    assert (result.returncode, result.stdout, result.stderr) == (0, f"venice.py {venice.__version__}\n", "")


# -- venice balance / usage / characters, chat --character (issue 13) --


def test_cli_balance_usage_and_characters_have_help(fake_env):
    for command, line in (
        ("balance", "Show the account's USD and DIEM balances (needs an ADMIN key)."),
        ("usage", "Show the usage history, oldest first (needs an ADMIN key); --csv FILE saves Venice's CSV export."),
        ("characters", "List Venice's public characters; chat with one: venice --character SLUG …"),
    ):
        code, out, err = run_cli([command, "--help"], fake_env)
        assert (code, err) == (0, "") and out.startswith(f"usage: venice {command} ")
        assert line in " ".join(out.split())
    assert "answer as this character (see `venice characters`)" in " ".join(run_cli(["--help"], fake_env)[1].split())


def test_cli_balance_shows_usd_diem_and_with_v_the_rate_limit_headroom(fake, fake_env):
    body = {"canConsume": True, "consumptionCurrency": "DIEM", "balances": {"diem": 90.5, "usd": 25}, "diemEpochAllocation": 100}
    fake.get_script.append(_reply(200, body))
    limits = [("x-ratelimit-limit-requests", "20"), ("x-ratelimit-remaining-requests", "18")]
    fake.get_script.append(_reply(200, body, limits))
    fake.get_script.append(_reply(200, {**body, "balances": {"diem": None, "usd": 3}}))
    assert run_cli(["balance"], fake_env) == (0, "USD   25.00\nDIEM  90.50 (of 100.00 this epoch)\npaying in DIEM\n", "")
    code, out, err = run_cli(["balance", "-v"], fake_env)
    assert (code, err) == (0, "") and out.endswith("paying in DIEM\nrate limit: 18 of 20 requests left\n")
    code, out, err = run_cli(["balance", "-v"], fake_env)
    assert out == "USD   3.00\nDIEM  -\npaying in DIEM\nrate limit: Venice sent no rate-limit headers\n"
    assert [path for _, path, _, _ in fake.requests] == ["/api/v1/billing/balance"] * 3


class TerminalErr(io.StringIO):
    def isatty(self):
        return True


def test_cli_usage_csv_writes_the_export_with_a_progress_count_on_a_terminal(fake, fake_env, tmp_path):
    for page, cursor in ((b"1,llm,1,-1,USD,\n2,llm,1,-1,USD,\n", [("x-next-cursor", "n2")]), (b"3,llm,1,-1,USD,\n", [])):
        fake.get_script.append(_reply(200, CSV_HEADER + page, cursor, "text/csv"))
    out, err = io.StringIO(), TerminalErr()
    code = venice.main(["usage", "--since", "2026-06-01", "--csv", "u.csv"], stdin=io.StringIO(), stdout=out, stderr=err, environ={**fake_env, "NO_COLOR": "1"})
    assert (code, out.getvalue(), err.getvalue()) == (0, "", "\r2 rows\r3 rows\r3 rows written to u.csv\n")
    assert (tmp_path / "u.csv").read_bytes() == CSV_HEADER + b"1,llm,1,-1,USD,\n2,llm,1,-1,USD,\n3,llm,1,-1,USD,\n"
    assert fake.requests[0][1] == "/api/v1/billing/usage-history?startTimestamp=2026-06-01T00%3A00%3A00Z"
    fake.get_script.append(_reply(200, CSV_HEADER + b"4,llm,1,-1,USD,\n", [], "text/csv"))
    assert run_cli(["usage", "--csv", "v.csv"], fake_env) == (0, "", "1 row written to v.csv\n")  # no count off a terminal
    code, out, err = run_cli(["usage", "--since", "June"], fake_env)
    assert (code, out) == (2, "") and "--since/--until take a date (2026-06-01) or an ISO 8601 time with a zone, not 'June'" in err


def test_cli_usage_prints_a_table_of_the_history(fake, fake_env):
    row = {"timestamp": "2026-06-15T19:05:10.504Z", "amount": -0.1, "currency": "DIEM", "units": 12, "sku": "llm-in"}
    fake.get_script.append(_reply(200, {"data": [row], "nextCursor": "c2"}))
    fake.get_script.append(_reply(200, {"data": [{**row, "amount": -0.2}], "nextCursor": None}))
    code, out, err = run_cli(["usage", "--currency", "DIEM"], {**fake_env, "COLUMNS": "100"})
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "TIME                      AMOUNT  CURRENCY  UNITS  SKU",
        "2026-06-15T19:05:10.504Z  -0.1    DIEM      12     llm-in",
        "2026-06-15T19:05:10.504Z  -0.2    DIEM      12     llm-in",
    ]
    assert [path for _, path, _, _ in fake.requests] == [
        "/api/v1/billing/usage-history?currency=DIEM",
        "/api/v1/billing/usage-history?cursor=c2",
    ]


def test_cli_characters_table_and_chat_as_one(fake, fake_env):
    found = [
        {"slug": "alan-watts", "name": "Alan Watts", "modelId": "m1", "description": "British\nwriter", "stats": {"averageRating": 4.66}},
        {"slug": "plain", "name": "Plain"},
    ]
    fake.get_script.append(_reply(200, {"object": "list", "data": found}))
    code, out, err = run_cli(["characters", "philosopher", "--limit", "5"], {**fake_env, "COLUMNS": "100"})
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "SLUG        NAME        RATING  MODEL  DESCRIPTION",
        "alan-watts  Alan Watts  4.7     m1     British writer",
        "plain       Plain       -       -",
    ]
    assert fake.requests[-1][1] == "/api/v1/characters?search=philosopher&limit=5&offset=0"  # one short page: the last
    assert run_cli(["--character", "alan-watts", "--no-stream", "hi"], fake_env)[:2] == (0, "Echo: hi\n")
    assert fake.requests[-1][3]["venice_parameters"] == {"character_slug": "alan-watts"}


# -- venice keys, search, scrape (issue 13) -----------------------------------------------------------


@pytest.fixture
def keys_env(keys_fake):
    return {"VENICE_API_KEY": KEY, "VENICE_BASE_URL": keys_fake.url, "NO_PROXY": "*", "COLUMNS": "200"}


@pytest.mark.parametrize("command", [["keys"], ["keys", "list"], ["keys", "create"], ["keys", "delete"], ["keys", "limits"], ["search"], ["scrape"]])
def test_cli_keys_search_scrape_have_help(command):
    code, out, err = run_cli([*command, "--help"], {})
    assert (code, err) == (0, "") and out.startswith(f"usage: venice {command[0]}")


def test_cli_keys_create_prints_the_secret_once_with_a_warning(keys_fake, keys_env):
    code, out, err = run_cli(["keys", "create", "ci runner", "--usd", "5", "--period", "MONTH", "--expires", "2027-01-01"], keys_env)
    assert (code, out) == (0, NEW_SECRET + "\n")
    assert err == "created INFERENCE key k2: store the secret now, Venice shows it only once\n"
    assert json.loads(keys_fake.requests[-1][3]) == {"apiKeyType": "INFERENCE", "description": "ci runner",
                                                     "consumptionLimit": {"usd": 5.0}, "limitPeriod": "MONTH",
                                                     "expiresAt": "2027-01-01"}  # fmt: skip


def test_cli_keys_list_delete_and_limits(keys_fake, keys_env):
    code, out, err = run_cli(["keys", "list"], keys_env)
    assert (code, err) == (0, "")
    assert out == "ID  TYPE   KEY      EXPIRES  DESCRIPTION\nk1  ADMIN  …abc123  -        laptop\n"
    code, out, err = run_cli(["keys", "list", "--json"], keys_env)
    assert code == 0 and [k["id"] for k in json.loads(out)] == ["k1"]
    assert run_cli(["keys", "limits"], keys_env) == (
        0, "tier paid, balance USD 12.5, DIEM 3\nMODEL              LIMITS\nvenice-uncensored  RPM 500, TPM 1000000\n", ""
    )  # fmt: skip
    assert run_cli(["keys", "delete", "k1"], keys_env) == (0, "deleted key k1\n", "")
    code, out, err = run_cli(["keys", "delete", "k1"], keys_env)
    assert (code, out) == (1, "")
    assert err == "venice: error: 404 Not Found: API key not found (request id 8c1f-KEYS) — `venice keys list` shows the ids\n"


def test_cli_search_and_scrape_print_text_or_json(keys_fake, keys_env):
    code, out, err = run_cli(["search", "venice", "-n", "2", "--provider", "google"], keys_env)
    assert (code, err) == (0, "")
    assert out == (
        "Result 1 for venice (2026-11-30)\nhttps://example.com/1\nText 1.\n\n"
        "Result 2 for venice (2026-11-30)\nhttps://example.com/2\nText 2.\n"
    )
    assert json.loads(keys_fake.requests[-1][3]) == {"query": "venice", "limit": 2, "search_provider": "google"}
    code, out, err = run_cli(["search", "venice", "--json"], keys_env)
    assert code == 0 and json.loads(out)["query"] == "venice" and len(json.loads(out)["results"]) == 2
    keys_fake.replies.append(lambda h: h.send(200, {"query": "zzz", "results": []}))
    assert run_cli(["search", "zzz"], keys_env) == (0, "", "venice: no results for 'zzz'\n")
    assert run_cli(["scrape", "https://example.com"], keys_env) == (0, "# Example\n\nHello.\n", "")
    code, out, err = run_cli(["scrape", "https://example.com", "--json"], keys_env)
    assert code == 0 and json.loads(out) == {"url": "https://example.com", "content": "# Example\n\nHello.", "format": "markdown"}


###############################################################################
# Examples and README ##########################################################
###############################################################################

EXAMPLE_OUTPUT = {
    "basic": "Echo: Why is the sky blue? One sentence.\n[8 tokens, request id 8c1f-TEST]\n",
    "streaming": "Echo: Count from 1 to 5.\n[finish_reason=stop, usage={'prompt_tokens': 5, 'completion_tokens': 3, 'total_tokens': 8}]\n",
    "tools": "model asked for get_weather({'city': 'Paris'})\nThe tool said: "
    '{"city": "Paris", "temperature": 21, "unit": "celsius", "sky": "clear"}\n',
    "system_prompt": "Echo: What is Python?\n",
    "dotenv": "key vn-…1234 from .env, model venice-uncensored\n",
    "models": "venice-uncensored                        context 32768\nzai-org-glm-5-2                          context 198000\n",
    "openai_shim": "Echo: Say hello in French.\nEcho: Say hello in Spanish.\n",
    "errors": "not found: Specified model not found (status 404, code MODEL_NOT_FOUND, request id 8c1f-TEST)\n",
    "letta": "Echo: Say hi.\n",
    "async": "Echo: Name a colour.\nEcho: Name a fruit.\nEcho: Name a city.\nEcho: Count from 1 to 3. [stop]\n"
    "cancelled: the call's connection was closed\n",
    "characters": "alan-watts: Alan Watts\nsocrates: Socrates\nAlan Watts, on venice-uncensored: A British writer.\n"
    "5/5 Thoughtful. [87 reviews]\nEcho: Who are you?\n",
    "billing": "balance: 25 USD, 90.5 DIEM\nspent since June 1: 0.30 USD (2 pages)\n"
    "3 rows saved under the header: timestamp,sku,units,amount,currency,notes\n",
    # (run against KeysFake, which has the /api_keys routes: test_keys_example_runs_against_the_keys_fake)
    "keys": "NewApiKey({'id': 'k2', 'apiKeyType': 'INFERENCE', 'limitPeriod': 'MONTH', 'modelPrivacy': 'ALL', "
    "'expiresAt': None, 'apiKey': 'vn-…cdef', 'consumptionLimit': {'usd': 5}})\n"
    "secret: 29 characters, ends in cdef\n"
    "k1   ADMIN      …abc123 laptop\n"
    "k2   INFERENCE  …abcdef example app\n"
    "balance 12.5 USD, 3 DIEM; tier paid\n"
    "deleted k2\n",
    "images": "styles: 3D Model, Analog Film, Anime\n"
    "saved lighthouse-1.png (9 bytes, image/png)\nsaved lighthouse-2.png (9 bytes, image/png)\n",
}

# The GET replies the fake is scripted with for the examples whose routes it does not serve, in order.
EXAMPLE_GETS = {
    "characters": [
        _reply(200, {"data": [{"slug": "alan-watts", "name": "Alan Watts"}, {"slug": "socrates", "name": "Socrates"}]}),
        _reply(200, {"data": {"slug": "alan-watts", "name": "Alan Watts", "modelId": "venice-uncensored", "description": "A British writer."}}),
        _reply(200, {"data": [{"rating": 5, "message": "Thoughtful."}]}, [("x-pagination-total", "87"), ("x-pagination-total-pages", "9")]),
    ],
    "billing": [
        _reply(200, {"canConsume": True, "consumptionCurrency": "USD", "balances": {"usd": 25, "diem": 90.5}, "diemEpochAllocation": 100}),
        _reply(200, {"data": [{"amount": -0.1}, {"amount": -0.05}], "nextCursor": "c2"}),
        _reply(200, {"data": [{"amount": -0.15}], "nextCursor": None}),
        _reply(200, CSV_HEADER + b"a,llm,1,-0.1,USD,\nb,llm,1,-0.05,USD,\n", [("x-next-cursor", "n2")], "text/csv"),
        _reply(200, CSV_HEADER + b"c,llm,1,-0.15,USD,\n", [], "text/csv"),
    ],
    "responses": "Echo: Why is the sky blue? One sentence.\n[completed, 5 tokens]\nEcho: Count from 1 to 5.\n[24 characters, done=True]\n",
    "images": [
        _reply(200, {"object": "list", "data": ["3D Model", "Analog Film", "Anime", "Cinematic"]}),
        _reply(200, {"data": {"default": "img-default"}}),
    ],
}
# Replies scripted into the fake for the examples that call routes it does not serve (one per POST).
EXAMPLE_SCRIPTS = {
    "responses": [lambda h: answer_responses(h)] * 2,
    "images": [_reply(200, {"id": "gen-1", "images": ["iVBORw0KGgoB", "iVBORw0KGgoC"], "timing": {}})],
}


@pytest.mark.parametrize("name", sorted(set(EXAMPLE_OUTPUT) - {"keys"}))
def test_example_runs_against_the_fake(fake, fake_env, name):
    fake.get_script.extend(EXAMPLE_GETS.get(name, ()))
    fake.script += EXAMPLE_SCRIPTS.get(name, [])
    result = subprocess.run(
        [sys.executable, os.path.join(HERE, "examples.py"), name], env=fake_env, capture_output=True, text=True, timeout=60
    )
    # the letta example sends a key Venice does not know, on purpose: the proxy drops it and says so
    expected_err = "dropped 'service_tier': Venice's chat API does not accept it\n" if name == "letta" else ""
    assert (result.returncode, result.stderr) == (0, expected_err)
    assert result.stdout == EXAMPLE_OUTPUT[name]


def test_examples_without_a_name_lists_them(fake_env):
    result = subprocess.run([sys.executable, os.path.join(HERE, "examples.py")], env=fake_env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and [line.split()[0] for line in result.stdout.splitlines()[3:]] == [
        "basic", "streaming", "tools", "system_prompt", "dotenv", "models", "openai_shim", "errors", "letta", "async",
        "characters", "billing", "keys",
        "responses",
        "images",
    ]


def test_readme_python_snippets_run(fake, fake_env, capsys):
    with open(os.path.join(HERE, "README.md"), encoding="utf-8") as fh:
        blocks = re.findall(r"```python\n(.*?)```", fh.read(), re.S)
    assert len(blocks) >= 8
    namespace = {"__name__": "readme"}
    for block in blocks:
        fake.script += [answer_responses] * block.count("responses.create(")  # (the fake has no /responses)
        exec(compile(block, "README.md", "exec"), namespace)
    out = capsys.readouterr().out
    assert "Echo: Why is the sky blue? completed 5" in out and "Echo: Tell me a short story\n27 True" in out
    assert "Echo: Why is the sky blue?" in out and "Echo: Tell me a short story" in out
    assert "get_weather {'city': 'Paris'}" in out and "The tool said:" in out
    assert "404 MODEL_NOT_FOUND Specified model not found 8c1f-TEST" in out
    assert "Echo: Hello" in out and "['venice-uncensored', 'zai-org-glm-5-2']" in out


def test_keys_example_runs_against_the_keys_fake(keys_fake, fake_env):
    env = {**fake_env, "VENICE_BASE_URL": keys_fake.url}
    result = subprocess.run([sys.executable, os.path.join(HERE, "examples.py"), "keys"], env=env, capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stderr, result.stdout) == (0, "", EXAMPLE_OUTPUT["keys"])
    assert NEW_SECRET not in result.stdout


def test_readme_api_keys_augment_and_crypto_snippets_run(keys_fake, fake_env, capsys, monkeypatch):
    with open(os.path.join(HERE, "README.md"), encoding="utf-8") as fh:
        text = fh.read()
    part = text[text.index("\n## API keys\n") : text.index("\n## Command line\n")]
    blocks = re.findall(r"```py\n(.*?)```", part, re.S)
    assert len(blocks) == 3
    monkeypatch.setenv("VENICE_BASE_URL", keys_fake.url)  # (fake_env set the key)
    with open("report.pdf", "wb") as fh, open("notes.docx", "wb") as fh2:
        fh.write(b"quarterly report")
        fh2.write(b"meeting notes")
    stored = []
    namespace = {"__name__": "readme", "store_secret": stored.append}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
    out = capsys.readouterr().out
    assert stored == [NEW_SECRET] and NEW_SECRET not in out
    assert "NewApiKey({'id': 'k2'" in out and "'apiKey': 'vn-…cdef'" in out
    assert "Result 1 for venice.ai privacy https://example.com/1 2026-11-30 Text 1." in out
    assert "2 quarterly report\n" in out and namespace["text"] == "meeting notes"
    assert "['base-mainnet', 'ethereum-mainnet']\n16\n" in out
    assert [m for m, _, _, _ in keys_fake.requests].count("DELETE") == 1


def test_readme_characters_and_billing_snippets_run(fake, fake_env, capsys, tmp_path):
    with open(os.path.join(HERE, "README.md"), encoding="utf-8") as fh:
        text = fh.read()
    part = text[text.index("\n## Characters\n") : text.index("\n## Billing and usage\n")]
    billing = text[text.index("\n## Billing and usage\n") :]
    blocks = re.findall(r"```py\n(.*?)```", part, re.S) + re.findall(r"```py\n(.*?)```", billing, re.S)[:1]
    assert len(blocks) == 2
    person = {"slug": "alan-watts", "name": "Alan Watts", "stats": {"averageRating": 4.8}}
    fake.get_script += [
        _reply(200, {"data": [person]}),  # characters.list: one short page, the end
        _reply(200, {"data": person}),
        _reply(200, {"data": [{"rating": 5, "message": "Thoughtful."}]}, [("x-pagination-total-pages", "1")]),
        _reply(200, {"data": [{"slug": "socrates", "name": "Socrates"}]}),  # the async list
        _reply(200, {"canConsume": True, "consumptionCurrency": "USD", "balances": {"usd": 25, "diem": None}}),
        _reply(200, {"data": [{"amount": -0.25}], "nextCursor": None}),
        _reply(200, CSV_HEADER + b"a,llm,1,-0.25,USD,\n", [], "text/csv"),
        _reply(200, {"byDate": [{"date": "2026-06-01", "amount": 0.25}]}),
    ]
    namespace = {"__name__": "readme", "venice": venice, "client": venice.VeniceClient()}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
    out = capsys.readouterr().out
    assert "alan-watts Alan Watts 4.8\n5 Thoughtful.\nEcho: Who are you?\nasync: socrates\n" in out
    assert "25 None USD\n0.25 1\n" in out and (tmp_path / "usage.csv").read_bytes() == CSV_HEADER + b"a,llm,1,-0.25,USD,\n"
    assert fake.requests[3][3]["venice_parameters"] == {"character_slug": "alan-watts"}


def test_readme_speech_snippet_runs(fake, fake_env, capsys, tmp_path):
    with open(os.path.join(HERE, "README.md"), encoding="utf-8") as fh:
        text = fh.read()
    part = text[text.index("\n## Speech\n") : text.index("\n## Images\n")]
    blocks = re.findall(r"```py\n(.*?)```", part, re.S)
    assert len(blocks) == 1
    fake.get_script += [_reply(200, {"object": "list", "type": "tts", "data": {"default": "tts-kokoro"}})] * 2
    fake.script += [_audio(MP3), _chunked_audio([b"one ", b"two ", b"three"]), _chunked_audio([b"hi"])]
    namespace = {"__name__": "readme", "venice": venice, "client": venice.VeniceClient()}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    out = capsys.readouterr().out
    assert out == "audio/mpeg 1029\n13 bytes\nasync: 2\n"
    assert (tmp_path / "hello.mp3").read_bytes() == MP3 and (tmp_path / "story.mp3").read_bytes() == b"one two three"
    assert [b["model"] for m, _, _, b in fake.requests if m == "POST"] == ["tts-kokoro"] * 3
    assert [p for m, p, _, _ in fake.requests if m == "GET"] == ["/api/v1/models/traits?type=tts"] * 2  # (once per client)


def test_a_plan_is_closed_when_its_driver_fails_so_no_half_export_outlives_the_call(fake, tmp_path):
    # A Ctrl-C during a retry wait (or a cancelled task) stops the driver: the plan's own cleanup (here:
    # the export's temporary file) runs at once, not whenever the collector finds the generator.
    fake.get_script += [
        _reply(200, CSV_HEADER + b"a,llm,1,-0.1,USD,\n", [("x-next-cursor", "n2")], "text/csv"),
        _reply(503, {"error": "busy"}),
    ]

    def interrupt(seconds):
        raise KeyboardInterrupt

    client = venice.VeniceClient(KEY, base_url=fake.url, sleep=interrupt)
    with pytest.raises(KeyboardInterrupt) as info:
        client.billing.usage_history_csv(tmp_path / "usage.csv")
    assert info.value is not None and sorted(os.listdir(tmp_path)) == []  # (the traceback still holds the frames)


def test_a_rate_limit_wait_never_outlasts_the_calls_deadline(fake):
    limits = [("x-ratelimit-remaining-requests", "0"), ("x-ratelimit-reset-requests", "30")]
    fake.get_script.append(_reply(200, {"data": []}, limits))
    sleeps = []
    with venice.VeniceClient(KEY, base_url=fake.url, sleep=sleeps.append, clock=lambda: 1_700_000_000.0) as c:
        c.request("GET", "/characters")
        with pytest.raises(venice.APITimeoutError, match="deadline would pass in the 30 s until the rate limit resets"):
            c.request("GET", "/models", deadline=0.5)
    assert sleeps == [] and len(fake.requests) == 1


def test_cli_since_is_sent_in_utc_and_analytics_dates_as_dates():
    import datetime

    assert venice._since("2026-06-01") == "2026-06-01T00:00:00Z"
    assert venice._since("2026-06-01T10:00:00+02:00") == "2026-06-01T08:00:00Z"  # Venice's spec: UTC, with Z
    assert venice._since("2026-06-01T10:00:00Z") == "2026-06-01T10:00:00Z"
    seen = []

    def handler(request):
        seen.append(request.url)
        return 200, {"Content-Type": "application/json"}, b'{"byDate": []}'

    client = venice.VeniceClient(KEY, transport=venice.MockTransport(handler))
    client.billing.usage_analytics(start_date=datetime.datetime(2026, 6, 1, 12), end_date=datetime.date(2026, 6, 2))
    assert "startDate=2026-06-01&endDate=2026-06-02" in seen[0]


def test_readme_images_snippet_runs(fake, fake_env, capsys, tmp_path):
    import base64

    with open(os.path.join(HERE, "README.md"), encoding="utf-8") as fh:
        text = fh.read()
    part = text[text.index("\n## Images\n") : text.index("\n## Performance\n")]
    blocks = re.findall(r"```py\n(.*?)```", part, re.S)
    assert len(blocks) == 1
    png = [b"\x89PNG\r\n\x1a\n" + bytes([n]) for n in (1, 2)]
    fake.get_script += [
        _reply(200, {"object": "list", "data": ["3D Model", "Analog Film", "Anime"]}),
        _reply(200, {"data": {"default": "img-default"}}),
    ]
    images = {"id": "gen-1", "images": [base64.b64encode(p).decode() for p in png], "timing": {}}
    fake.script.append(_reply(200, images, [("x-venice-is-content-violation", "false"), ("x-venice-is-blurred", "false")]))
    namespace = {"__name__": "readme", "venice": venice, "client": venice.VeniceClient()}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    assert capsys.readouterr().out == "['3D Model', 'Analog Film']\n['lighthouse-1.png', 'lighthouse-2.png']\n"
    assert [(tmp_path / f"lighthouse-{n}.png").read_bytes() for n in (1, 2)] == png
    assert fake.requests[2][3] == {"model": "img-default", "prompt": "a lighthouse at dusk", "variants": 2, "format": "png", "seed": 42}
