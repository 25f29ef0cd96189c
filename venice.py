"""venice.py: a small, fast, dependency-free client for the Venice.ai API.

One file, standard library only, Python 3.9+. Copy ``venice.py`` into your project, or
``pip install venice-api``. Homepage and full guide: see README.md next to this file.

Quick start::

    import venice
    client = venice.VeniceClient()                 # key from VENICE_API_KEY, .env or `venice auth set`
    r = client.chat.complete("Why is the sky blue?", model="venice-uncensored")
    print(r.text)
    for text in client.chat.complete("Tell me a story", model="venice-uncensored", stream=True):
        print(text, end="", flush=True)

Public API (see ``__all__``):

- ``VeniceClient`` with ``.chat.complete()``, ``.chat.completions.create()``, ``.models.list()``,
  ``.embeddings.create()``, ``.responses.create()``, ``.characters``, ``.billing``, ``.api_keys``,
  ``.augment`` (web search, scraping, document text), ``.crypto``, ``.x402``, ``.request()``;
  ``AsyncVeniceClient``, the same awaited (``AsyncChatStream``, ``AsyncResponseStream``,
  ``AsyncRawResponse``); ``MockTransport`` for tests; ``Config`` / ``load_config()`` /
  ``parse_dotenv()``; ``RetryPolicy``.
- Results: ``ChatResponse``, ``ChatStream``, ``ToolCall``, ``Model``, ``ModelList``, ``AttrDict``,
  ``ResponseMeta``, ``RawResponse``, ``Response``, ``ResponseStream``, ``Pages``, ``NewApiKey``;
  streaming parser ``iter_sse()`` / ``ServerSentEvent``.
- Errors: ``VeniceError`` and its subclasses (tree in the Errors section).
- Helpers: ``chat()``, ``list_models()``, ``function_to_tool()``, ``run_tool_calls()``,
  ``normalize_stop()``, ``estimate_tokens()``, ``mask_key()``, ``retry_delay()``.

How it is built (STYLE.md §7: one core, two drivers). Everything that decides does no I/O and is
written once: building a request and decoding its answer (``_BaseClient``), the request path of every
call as a *plan*, a generator that yields requests and delays (``_send_plan``, the namespaces' calls;
Client section), retry delays (Retry policy), server-sent events and the folding of a stream's chunks
(``_SSEDecoder``, ``_StreamState._step``; Streaming), HTTP/1.1 framing for asyncio (``_ResponseReader``;
Transport). Two drivers only connect, write, read, sleep and time out: the sync one
(``VeniceClient._run``, ``_Transport``/``_Exchange`` over ``http.client``, ``_StreamState._run``) and the
async one (``AsyncVeniceClient._run``, ``_AsyncTransport``/``_AsyncExchange`` over asyncio streams,
``_StreamState._arun``).

Licence: MIT.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from itertools import chain, islice
from operator import itemgetter, methodcaller

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs import time; annotations are strings (PEP 563) anyway
    import http.client
    import ssl
    from collections.abc import (
        AsyncGenerator,
        AsyncIterator,
        Callable,
        Generator,
        Iterable,
        Iterator,
        Mapping,
        Sequence,
    )
    from typing import Any, Final, Optional, Union

    JSON = Any  # a decoded JSON value
    from typing import Concatenate, ParamSpec, Protocol, TypeVar  # novermin (type checkers only: never run)

    _P = ParamSpec("_P")  # a plan's parameters (see _call)
    _R = TypeVar("_R")  # a plan's result
    _NS = TypeVar("_NS")  # a namespace (client.chat, client.models, …)
    # Type checkers see the real dataclasses; at run time the small _record below stands in for
    # them, because importing dataclasses (and with it inspect, ast and dis) would double our import time.
    from dataclasses import dataclass as _record
    from dataclasses import field
    from dataclasses import replace as _replace

__version__ = "0.5.0"
__author__ = "venice.py contributors"
__license__ = "MIT"

__all__ = [
    # The clients, their configuration, results and helpers
    "AsyncChatStream",
    "AsyncRawResponse",
    "AsyncResponseStream",
    "AsyncSpeechStream",
    "AsyncVeniceClient",
    "AttrDict",
    "ChatResponse",
    "ChatStream",
    "Config",
    "ImageResult",
    "MockTransport",
    "Model",
    "ModelList",
    "NewApiKey",
    "Pages",
    "RawResponse",
    "Response",
    "ResponseMeta",
    "ResponseStream",
    "RetryPolicy",
    "ServerSentEvent",
    "SpeechResult",
    "SpeechStream",
    "ToolCall",
    "VeniceClient",
    "arun_tool_calls",
    "chat",
    "credentials_path",
    "estimate_tokens",
    "function_to_tool",
    "iter_sse",
    "list_models",
    "load_config",
    "mask_key",
    "normalize_stop",
    "parse_dotenv",
    "retry_delay",
    "run_tool_calls",
    "start_proxy",
    # Errors (the tree is drawn in the Errors section)
    "APIConnectionError",
    "APITimeoutError",
    "ConfigError",
    "InvalidRequestError",
    "NotFoundError",
    "PaymentRequiredError",
    "PermissionDeniedError",
    "RateLimitError",
    "ServerError",
    "StreamError",
    "UnauthorizedError",
    "UnprocessableEntityError",
    "VeniceAPIError",
    "VeniceError",
    # The OpenAI-compatible shim: openai's client, legacy call and exception names (aliases into our tree)
    "APIError",
    "APIStatusError",
    "AsyncOpenAI",
    "AuthenticationError",
    "BadRequestError",
    "ChatCompletion",
    "InternalServerError",
    "OpenAI",
]
# Left out on purpose: `main` (the console script and `python -m venice` reach it without an export),
# the request-key tables of the shim and the namespace classes (reached as client.chat, .models, …).

###############################################################################
# Constants ###################################################################
###############################################################################

#: Where requests go unless ``base_url`` / ``VENICE_BASE_URL`` says otherwise.
DEFAULT_BASE_URL: Final = "https://api.venice.ai/api/v1"
#: Read timeout: the longest silence (seconds) allowed between bytes of a response. Long because a
#: non-streamed reasoning answer can take minutes before its first byte (the openai SDK uses 600 too).
DEFAULT_TIMEOUT: Final = 600.0
#: Seconds allowed to open a TCP connection (and finish the TLS handshake).
DEFAULT_CONNECT_TIMEOUT: Final = 10.0
DEFAULT_MAX_RETRIES: Final = 2
#: Sampling temperature the promised ``chat.complete`` signature defaults to.
DEFAULT_TEMPERATURE: Final = 0.15
#: Venice's chat schema accepts 1 to 4 stop sequences (ChatCompletionRequest.stop.maxItems).
MAX_STOP_SEQUENCES: Final = 4
#: Endpoints whose ``security`` in the spec is ``[{}, BearerAuth]``: they work without a key.
_KEYLESS_PATHS: Final = frozenset({"/models", "/models/traits", "/models/compatibility_mapping", "/image/styles"})
_ROLES: Final = frozenset({"system", "developer", "user", "assistant", "tool"})
_BOM: Final = b"\xef\xbb\xbf"


_MISSING: Final[Any] = object()

if not TYPE_CHECKING:

    class _Field:
        __slots__ = ("default", "default_factory", "repr", "compare")

        def __init__(self, default=_MISSING, default_factory=None, repr=True, compare=True):
            self.default, self.default_factory, self.repr, self.compare = default, default_factory, repr, compare

    def field(*, default=_MISSING, default_factory=None, repr=True, compare=True):
        """``dataclasses.field`` for ``_record``: default or factory, and whether repr/== use it."""
        return _Field(default, default_factory, repr, compare)

    def _record(cls=None, *, frozen=False, repr=True):
        """A small ``@dataclass``: generated ``__init__`` (with ``__post_init__``), ``__repr__``,
        ``__eq__``, and ``frozen`` instances. Just what this module's data types use."""

        def wrap(cls):
            specs = []
            for name in cls.__dict__.get("__annotations__", {}):
                value = cls.__dict__.get(name, _MISSING)
                spec = value if isinstance(value, _Field) else _Field(value)
                specs.append((name, spec))
                if isinstance(value, _Field):
                    if spec.default is _MISSING:
                        delattr(cls, name)
                    else:
                        setattr(cls, name, spec.default)
            cls._record_fields = tuple(specs)
            params, body, ns = [], [], {"_MISSING": _MISSING, "_set": object.__setattr__}
            assign = "_set(self, {0!r}, {1})" if frozen else "self.{0} = {1}"
            for name, spec in specs:
                if spec.default_factory is not None:
                    ns[f"_f_{name}"] = spec.default_factory
                    params.append(f"{name}=_MISSING")
                    body.append(assign.format(name, f"_f_{name}() if {name} is _MISSING else {name}"))
                    continue
                if spec.default is not _MISSING:
                    ns[f"_d_{name}"] = spec.default
                    params.append(f"{name}=_d_{name}")
                else:
                    params.append(name)
                body.append(assign.format(name, name))
            if hasattr(cls, "__post_init__"):
                body.append("self.__post_init__()")
            exec(f"def __init__(self, {', '.join(params)}):\n    " + "\n    ".join(body or ["pass"]), ns)
            cls.__init__ = ns["__init__"]
            compared = tuple(name for name, spec in specs if spec.compare)
            shown = tuple(name for name, spec in specs if spec.repr)
            cls.__eq__ = lambda a, b: (
                tuple(getattr(a, n) for n in compared) == tuple(getattr(b, n) for n in compared)
                if type(a) is type(b)
                else NotImplemented
            )
            if repr:
                cls.__repr__ = lambda self: (
                    f"{type(self).__name__}({', '.join(f'{n}={getattr(self, n)!r}' for n in shown)})"
                )
            if frozen:
                cls.__hash__ = lambda self: hash(tuple(getattr(self, n) for n in compared))

                def _frozen(self, name, value=None):
                    raise AttributeError(f"cannot assign to field {name!r}: {type(self).__name__} is frozen")

                cls.__setattr__ = cls.__delattr__ = _frozen
            else:
                cls.__hash__ = None
            return cls

        return wrap if cls is None else wrap(cls)

    def _replace(obj, **changes):
        """``dataclasses.replace`` for ``_record`` classes."""
        values = {name: getattr(obj, name) for name, _ in type(obj)._record_fields}
        values.update(changes)
        return type(obj)(**values)


###############################################################################
# Errors ######################################################################
###############################################################################

# VeniceError                        catch-all; never contains the API key
# ├── ConfigError                    no key found / bad setting / unreadable config file
# ├── APIConnectionError             no usable response (DNS, refused, reset, TLS); .partial
# │   └── APITimeoutError            connect, read (silence) or overall deadline exceeded
# ├── VeniceAPIError                 .status_code .code .message .request_id .body .headers .meta
# │   ├── InvalidRequestError        400 413 415, and bad arguments caught before sending
# │   │   └── UnprocessableEntityError  422: well-formed, but Venice can't process it
# │   ├── UnauthorizedError          401 bad / revoked key, Pro-only model
# │   ├── PaymentRequiredError       402 balance exhausted, or no credentials sent at all
# │   ├── PermissionDeniedError      403
# │   ├── NotFoundError              404, and 410 (retired endpoint or model)
# │   ├── RateLimitError             429 (.retry_after)
# │   └── ServerError                >= 500
# └── StreamError                    in-band error or truncated stream; keeps .partial text


class VeniceError(Exception):
    """Base class of every error this module raises. Messages never contain the API key.

    Attributes:
        message: What went wrong, in words meant for a person.
        request_id: Venice's request id (the ``CF-RAY`` header) when a response was received.
        partial: For streams: the text received before the failure, so nothing is lost.
        hint: What to do about it, when we know (appended to ``str()``).
    """

    def __init__(
        self,
        message: str,
        *,
        request_id: Optional[str] = None,
        partial: Optional[str] = None,
        hint: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.request_id = request_id
        self.partial = partial
        self.hint = hint

    def __str__(self) -> str:
        text = self.message
        if self.request_id:
            text += f" (request id {self.request_id})"
        if self.hint:
            text += f" — {self.hint}"
        return text


class ConfigError(VeniceError, ValueError):
    """A setting is missing or malformed (no API key, bad ``VENICE_TIMEOUT``, http:// URL, …)."""


class APIConnectionError(VeniceError):
    """No usable HTTP response: DNS failure, connection refused or reset, TLS failure, bad framing."""


class APITimeoutError(APIConnectionError):
    """Connecting took longer than ``connect_timeout``, the server was silent longer than
    ``timeout``, or the call's overall ``deadline`` passed."""


class VeniceAPIError(VeniceError):
    """Venice (or something in front of it) answered with an error status.

    Attributes:
        status_code: The HTTP status, e.g. 429.
        code: Venice's error code (``"RATE_LIMIT_EXCEEDED"``, ``"INSUFFICIENT_BALANCE"``, …) taken from
            the body, or inferred from the message of Venice's documented errors; ``None`` if unknown.
        message: Venice's own message text (validation details summarised into it).
        body: The parsed JSON body, or the text of a non-JSON body.
        headers: Response headers, lower-case names.
        meta: ``ResponseMeta`` read from the headers.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: Optional[int] = None,
        code: Optional[str] = None,
        body: JSON = None,
        headers: Optional[dict[str, str]] = None,
        request_id: Optional[str] = None,
        hint: Optional[str] = None,
        meta: Optional[ResponseMeta] = None,
    ) -> None:
        super().__init__(message, request_id=request_id, hint=hint)
        self.status_code = status_code
        self.code = code
        self.body = body
        self.headers = headers if headers is not None else {}
        self.meta = meta

    def __str__(self) -> str:
        if self.status_code is None:
            return super().__str__()
        from http import HTTPStatus  # only on the error path

        try:
            phrase = HTTPStatus(self.status_code).phrase
        except ValueError:
            phrase = "Error"
        return f"{self.status_code} {phrase}: {super().__str__()}"


class InvalidRequestError(VeniceAPIError):
    """400, 413, 415 or 422: the request was rejected as invalid. Fix it; retrying won't help.

    Also raised before sending (``status_code`` is then ``None``) for obvious mistakes."""


class UnprocessableEntityError(InvalidRequestError):
    """422: the request was well-formed but Venice could not process it (openai's name for it)."""


class UnauthorizedError(VeniceAPIError):
    """401: the API key is wrong, expired or revoked (or the model needs a Pro account)."""


class PaymentRequiredError(VeniceAPIError):
    """402: the balance (or the key's spend limit) is exhausted, or no credentials were sent."""


class PermissionDeniedError(VeniceAPIError):
    """403: the key may not do this (API access disabled, wrong key type, …)."""


class NotFoundError(VeniceAPIError):
    """404, or 410 for a retired endpoint or model: check the path or the model id."""


class RateLimitError(VeniceAPIError):
    """429: too many requests, an overloaded model, or the failed-request budget.

    Attributes:
        retry_after: Seconds the server asked us to wait (``Retry-After``), or ``None``.
    """

    def __init__(self, message: str, *, retry_after: Optional[float] = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ServerError(VeniceAPIError):
    """5xx: Venice or a model provider failed. Usually temporary; retried automatically."""


class StreamError(VeniceError):
    """A stream failed after it started: an in-band error event, or an end before completion.

    Attributes:
        code: Venice's error code from the error event, if any.
        partial: The text received before the failure.
    """

    def __init__(self, message: str, *, code: Optional[str] = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.code = code


_STATUS_ERRORS: Final[dict[int, type[VeniceAPIError]]] = {
    400: InvalidRequestError,
    401: UnauthorizedError,
    402: PaymentRequiredError,
    403: PermissionDeniedError,
    404: NotFoundError,
    410: NotFoundError,  # retired endpoint, or a removed model that can't be auto-routed
    413: InvalidRequestError,
    415: InvalidRequestError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}

# Venice rarely puts its documented codes in the body (../shared/venice-api/NOTES.md §4): infer them
# from the message.
# (status, lower-case substring, code); first match wins.
_MESSAGE_CODES: Final = (
    (401, "only available to pro", "PRO_ONLY_MODEL"),
    (401, "inactive", "AUTHENTICATION_FAILED_INACTIVE_KEY"),
    (401, "authentication failed", "AUTHENTICATION_FAILED"),
    (402, "diem spend limit", "API_KEY_DIEM_SPEND_LIMIT_EXCEEDED"),
    (402, "usd spend limit", "API_KEY_USD_SPEND_LIMIT_EXCEEDED"),
    (402, "insufficient", "INSUFFICIENT_BALANCE"),
    (403, "api access", "API_ACCESS_DISABLED"),
    (404, "model", "MODEL_NOT_FOUND"),
    (429, "overloaded", "MODEL_OVERLOADED"),
    (429, "rate limit", "RATE_LIMIT_EXCEEDED"),
    (503, "capacity", "MODEL_AT_CAPACITY"),
    (503, "offline", "MODEL_OFFLINE"),
    (504, "", "REQUEST_TIMEOUT"),
)

_HINTS: Final = {
    401: "check the API key (`venice auth status`); create one at https://venice.ai/settings/api",
    402: "top up the balance or raise the key's spend limit at https://venice.ai/settings/api",
    429: "slow down, or wait before retrying",
}


def _excerpt(text: str, limit: int = 200) -> str:
    """A short one-line excerpt of a (possibly HTML) body, for error messages."""
    if "<" in text and ">" in text:
        import re

        title = re.search(r"<title[^>]*>(.*?)</title>", text, re.I | re.S)
        body = re.sub(r"(?is)<(script|style|title)\b.*?</\1>|<[^>]+>", " ", text)
        text = (title.group(1) + ": " if title else "") + body
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _summarise_details(details: JSON, path: str = "") -> list[str]:
    """Flatten a zod-style ``details`` tree (``{"_errors": [...], "field": {...}}``) into lines."""
    out: list[str] = []
    if isinstance(details, str):
        return [details]
    if isinstance(details, dict):
        for msg in details.get("_errors") or ():
            out.append(f"{path}: {msg}" if path else str(msg))
        for key, sub in details.items():
            if key != "_errors":
                out += _summarise_details(sub, f"{path}.{key}" if path else str(key))
    return out


def _parse_error_body(status: int, raw: bytes) -> tuple[str, Optional[str], JSON]:
    """Return ``(message, code, body)`` for any of the error shapes in ../shared/venice-api/NOTES.md §4."""
    text = raw.decode("utf-8", "replace")
    try:
        body: JSON = json.loads(text) if text.strip() else None
    except ValueError:
        body = text
    message = ""
    code = None
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            message = str(err.get("message") or err.get("type") or "")
            code = err.get("code")
        elif err is not None:
            message = str(err)
        code = code or body.get("code")
        if not message:
            message = str(body.get("message") or body.get("customMessage") or "")
        extra = _summarise_details(body.get("details"))
        for issue in body.get("issues") or ():
            if isinstance(issue, dict):
                where = ".".join(str(p) for p in issue.get("path") or ())
                extra.append(f"{where}: {issue.get('message')}" if where else str(issue.get("message")))
        if extra:
            message = "; ".join([message or "Invalid request"] + extra)
        if not message and "x402Version" in body:
            message = "Payment required: no API key or wallet credentials were sent"
    elif isinstance(body, str):
        message = _excerpt(body)
    elif body is not None:
        message = _excerpt(text)
    if not message:
        message = "(empty response body)" if not text.strip() else _excerpt(text)
    if code is not None and not isinstance(code, str):
        code = str(code)
    if code is None:
        low = message.lower()
        for st, needle, guess in _MESSAGE_CODES:
            if st == status and needle in low:
                code = guess
                break
    return message, code, body


def _api_error(
    status: int,
    headers: dict[str, str],
    raw: bytes,
    meta: Optional[ResponseMeta] = None,
    now: Optional[float] = None,
) -> VeniceAPIError:
    """Build the most specific ``VeniceAPIError`` for an error response."""
    message, code, body = _parse_error_body(status, raw)
    cls = _STATUS_ERRORS.get(status) or (ServerError if status >= 500 else VeniceAPIError)
    hint = _HINTS.get(status)
    if status == 402 and isinstance(body, dict) and "x402Version" in body:
        hint = "send an API key: set VENICE_API_KEY or run `venice auth set`"
    kw: dict[str, Any] = dict(
        status_code=status,
        code=code,
        body=body,
        headers=headers,
        request_id=headers.get("cf-ray"),
        hint=hint,
        meta=meta,
    )
    if cls is RateLimitError:
        kw["retry_after"] = _retry_after(headers, time.time() if now is None else now)
    return cls(message, **kw)


###############################################################################
# Config ######################################################################
###############################################################################


def mask_key(key: Optional[str]) -> str:
    """Return a form of ``key`` that is safe to show.

    Args:
        key: An API key, or ``None``.
    Returns:
        ``'vn-…1234'`` (first 3 and last 4 characters), ``'…'`` for keys under 12 characters, or
        ``'(none)'``.
    """
    if not key:
        return "(none)"
    return f"{key[:3]}…{key[-4:]}" if len(key) >= 12 else "…"


def _check_key(key: Optional[str]) -> Optional[str]:
    """Strip a pasted key and refuse anything that could not travel safely in a header."""
    if key is None:
        return None
    if not isinstance(key, str):
        raise ConfigError("The API key must be a string.")
    key = key.strip()
    if not key:
        return None
    # Visible ASCII only: no inner whitespace, control characters (header injection) or non-ASCII
    # (http.client would raise a bare UnicodeEncodeError deep inside a request).
    if not all("!" <= ch <= "~" for ch in key):
        raise ConfigError(
            "The API key is malformed: it contains whitespace, control or non-ASCII characters. "
            "Copy it again from https://venice.ai/settings/api."
        )
    return key


def _is_loopback(host: str) -> bool:
    host = host.lower().strip("[]")
    if host in ("localhost", "::1") or host.endswith(".localhost"):
        return True
    parts = host.split(".")
    return len(parts) == 4 and parts[0] == "127" and all(p.isdigit() and int(p) < 256 for p in parts)


def _check_base_url(url: Any, key: Optional[str] = None) -> str:
    from urllib.parse import urlsplit

    if not isinstance(url, str):
        raise ConfigError(f"base_url must be a string, got {type(url).__name__}")
    shown = repr(url.replace(key, mask_key(key)) if key else url)  # never the key, even pasted into the URL
    problem = None
    try:
        parts = urlsplit(url)
        problem = "its port is not a number from 0 to 65535"
        parts.port  # noqa: B018 - raises ValueError for a bad port
        problem = "it is not a valid URL (brackets are for IPv6 addresses)"
        if "[" in parts.netloc:  # (Python 3.11+ checks this itself; 3.9 and 3.10 take any text in brackets)
            import ipaddress

            ipaddress.IPv6Address((parts.hostname or "").split("%")[0])
        problem = None
    except ValueError:
        # urllib's text quotes parts of the URL (the port, a host in brackets), where a key may have been
        # pasted: neither it nor the URL is shown
        problem = problem or ("it is not a valid URL" + (" (brackets are for IPv6 addresses)" if "[" in url else ""))
    if problem is not None:  # raised here, not in the except block: no __context__ keeps urllib's text
        raise ConfigError(f"base_url can't be used: {problem}")  # (not shown: a key may be pasted in it)
    if "@" in parts.netloc:  # before any message that shows the URL
        raise ConfigError("base_url must not contain credentials; pass api_key instead")
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise ConfigError(f"base_url {shown} must not have a query or fragment (paths are added after it)")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"base_url must be an https:// URL, got {shown}")
    try:
        parts.hostname.encode("idna")  # what http.client will do: an empty or 64+ character label fails
    except UnicodeError:
        raise ConfigError(f"base_url {shown} has an invalid host name") from None
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ConfigError(
            f"base_url {shown} uses plain http://, which would send the API key in clear; "
            "use https:// (http:// is allowed only for localhost and 127.0.0.1)"
        )
    return url.rstrip("/")


def _is_number(value: Any, whole: bool = False) -> bool:
    """An int (or a float, unless ``whole``) and not a bool, which Python counts as an int."""
    return not isinstance(value, bool) and isinstance(value, int if whole else (int, float))


def _check_dict(name: str, value: Any, error: Any) -> None:
    """Refuse a value that is neither ``None`` nor a mapping (before ``dict()`` fails on it bare)."""
    if value is not None and not hasattr(value, "items"):
        raise error(f"{name} must be a dict, not {type(value).__name__}")


_MAX_WAIT = 1e8  # s (3 years): "no limit" (inf) lands here; socket timeouts overflow not far above


def _seconds(name: str, value: Any, error: Any) -> float:
    """A timeout setting: a positive number (NaN refused), capped at ``_MAX_WAIT``."""
    if not _is_number(value) or not value > 0:
        raise error(f"{name} must be a positive number of seconds, got {value!r}")
    return min(float(value), _MAX_WAIT)


@_record(frozen=True, repr=False)
class Config:
    """Everything a client needs to know, resolved once. Build it with ``load_config()``.

    Attributes:
        api_key: The Venice API key (``None`` if not configured; only some endpoints work then).
            Never shown by ``repr()``.
        base_url: API root, ``https://`` (``http://`` only for loopback hosts).
        timeout: Read timeout in seconds: the longest silence allowed between bytes of a response
            (``float("inf")``: no limit).
        connect_timeout: Seconds allowed to connect (TCP and TLS).
        max_retries: Retries after the first attempt (0 turns retries off).
        default_model: Model used when a call names none (``VENICE_MODEL``).
        default_headers: Extra headers sent with every request.
        ca_file: PEM file of CA certificates to trust instead of the system's.
        ssl_context: A ready ``ssl.SSLContext`` (wins over ``ca_file``).
        key_source: Where the key came from: ``"argument"``, ``"environment"``, ``".env"``,
            ``"credentials"``, or ``None``.
    """

    api_key: Optional[str] = field(default=None)
    base_url: str = DEFAULT_BASE_URL
    timeout: float = DEFAULT_TIMEOUT
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
    default_model: Optional[str] = None
    default_headers: Mapping[str, str] = field(default_factory=dict)
    ca_file: Optional[str] = None
    ssl_context: Optional[ssl.SSLContext] = field(default=None, compare=False)
    key_source: Optional[str] = field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "api_key", _check_key(self.api_key))
        object.__setattr__(self, "base_url", _check_base_url(self.base_url, self.api_key))
        for name in ("timeout", "connect_timeout"):
            object.__setattr__(self, name, _seconds(name, getattr(self, name), ConfigError))
        if not _is_number(self.max_retries, whole=True) or self.max_retries < 0:
            raise ConfigError(f"max_retries must be a whole number >= 0, got {self.max_retries!r}")

    def __repr__(self) -> str:
        return (
            f"Config(api_key={mask_key(self.api_key)!r}, base_url={self.base_url!r}, "
            f"timeout={self.timeout!r}, connect_timeout={self.connect_timeout!r}, "
            f"max_retries={self.max_retries!r}, default_model={self.default_model!r}, "
            f"key_source={self.key_source!r})"
        )

    def require_key(self) -> str:
        """Return the API key, or raise ``ConfigError`` listing the ways to set one."""
        if self.api_key is None:
            raise ConfigError(
                "No API key found. Set VENICE_API_KEY, add VENICE_API_KEY=… to a .env file, "
                "run `venice auth set`, or pass api_key=… to VeniceClient."
            )
        return self.api_key


def credentials_path(environ: Optional[Mapping[str, str]] = None) -> str:
    """Path of the user's credentials file. Works without ``HOME``; nothing is read.

    Args:
        environ: The environment to look in (default ``os.environ``).
    Returns:
        ``$XDG_CONFIG_HOME/venice/credentials``, by default ``~/.config/venice/credentials``.
    """
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME") or ""
    if not os.path.isabs(base):
        home = env.get("HOME") or ""
        if not home:
            try:
                home = os.path.expanduser("~")
            except Exception:  # no HOME and no passwd entry
                home = ""
        base = os.path.join(home if home and home != "~" else os.sep, ".config")
    return os.path.join(base, "venice", "credentials")


_default_credentials_path = credentials_path  # load_config() has a parameter of the same name


def _dotenv_unescape(value: str) -> str:
    table = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}
    out = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value) and value[i + 1] in table:
            out.append(table[value[i + 1]])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _close_quote(text: str, quote: str, start: int = 0) -> tuple[int, int]:
    """Index of the closing quote in ``text`` from ``start`` (backslash escapes count inside double
    quotes), or -1; and where to resume once more text is appended (so a long value stays linear)."""
    i = start
    while i < len(text):
        if text[i] == "\\" and quote == '"':
            i += 2
            continue
        if text[i] == quote:
            return i, i
        i += 1
    return -1, i


def parse_dotenv(text: Union[str, bytes], *, source: str = ".env") -> dict[str, str]:
    """Parse the text of a ``.env`` file into a dict. Never touches ``os.environ``.

    Understands what people write: ``KEY=value``, an ``export`` prefix, ``'single'`` quotes (literal),
    ``"double"`` quotes (``\\n \\t \\r \\" \\\\`` escapes; may span lines), ``#`` comment lines and
    ``# comments`` after whitespace, blank lines, ``KEY=`` (empty string) and a leading BOM.
    Variables are not interpolated. A malformed line is skipped with a ``UserWarning`` that gives its
    line number but never its content, which may be a secret.

    Args:
        text: The file's content (``bytes`` are read as UTF-8).
        source: Name used in warnings (usually the file's path).
    Returns:
        The variables, later lines winning.
    """
    import re
    import warnings

    if isinstance(text, (bytes, bytearray)):
        text = text.decode("utf-8", "replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    out: dict[str, str] = {}
    key_re = re.compile(r"(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_.]*)[ \t]*=(.*)\Z", re.S)
    i = 0
    while i < len(lines):
        lineno = i + 1
        stripped = lines[i].strip()
        i += 1
        if not stripped or stripped.startswith("#"):
            continue
        m = key_re.match(stripped)
        value: Optional[str] = None
        if m:
            key, raw = m.groups()
            rest = raw.lstrip(" \t")
            if rest[:1] in ("'", '"'):
                quote, buf = rest[0], rest[1:]
                end, resume = _close_quote(buf, quote)
                while end < 0 and i < len(lines):  # a quoted value may span lines
                    buf += "\n" + lines[i]
                    i += 1
                    end, resume = _close_quote(buf, quote, resume)
                after = buf[end + 1 :].strip() if end >= 0 else "x"
                if end >= 0 and (not after or after.startswith("#")):
                    value = _dotenv_unescape(buf[:end]) if quote == '"' else buf[:end]
                else:
                    i = lineno  # unterminated, or text after the closing quote: skip only the opening line
            else:
                comment = re.search(r"[ \t]#", raw)  # "#" starts a comment only after whitespace
                value = (raw[: comment.start()] if comment else raw).strip()
        if value is None:
            warnings.warn(f"{source}: line {lineno} is not KEY=VALUE; skipped", UserWarning, stacklevel=3)
            continue
        out[m.group(1) if m else ""] = value
    return out


def _read_env_file(path: str, source: str, *, private: bool = False) -> dict[str, str]:
    """Read and parse a KEY=VALUE file; a missing or unreadable file is an empty one."""
    import warnings

    if not os.path.isfile(path):  # missing, a folder, or a FIFO that would block the read
        return {}
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            info = os.fstat(fh.fileno())
            if info.st_size > _MAX_ENV_FILE:  # not a settings file: don't read it whole
                warnings.warn(
                    f"{path} is larger than {_MAX_ENV_FILE // 1_000_000} MB; not read as settings",
                    UserWarning,
                    stacklevel=3,
                )
                return {}
            if private and os.name == "posix":
                mode = info.st_mode
                if mode & 0o077:
                    warnings.warn(
                        f"credentials file {path} is readable by other users; run: chmod 600 {path}",
                        UserWarning,
                        stacklevel=3,
                    )
            text = fh.read(_MAX_ENV_FILE)  # (it may grow while read)
    except OSError:
        return {}
    return parse_dotenv(text, source=source)


_MAX_ENV_FILE: Final = 1_000_000  # bytes: a .env or credentials file larger than this is refused


_ENV_FIELDS: Final = (
    ("api_key", "VENICE_API_KEY"),
    ("base_url", "VENICE_BASE_URL"),
    ("default_model", "VENICE_MODEL"),
    ("timeout", "VENICE_TIMEOUT"),
    ("max_retries", "VENICE_MAX_RETRIES"),
)


def load_config(
    *,
    api_key: Optional[str] = None,
    base_url: Optional[str] = None,
    timeout: Optional[float] = None,
    connect_timeout: Optional[float] = None,
    max_retries: Optional[int] = None,
    default_model: Optional[str] = None,
    default_headers: Optional[Mapping[str, str]] = None,
    ca_file: Optional[str] = None,
    ssl_context: Optional[ssl.SSLContext] = None,
    env_file: Union[str, os.PathLike[str], bool, None] = None,
    environ: Optional[Mapping[str, str]] = None,
    credentials_path: Optional[str] = None,
) -> Config:
    """Resolve the configuration: argument > environment > ``.env`` > credentials file > default.

    ============== ======================= =====================================================
    field          environment / file key  default
    ============== ======================= =====================================================
    api_key        ``VENICE_API_KEY``      none (only the model-listing endpoints work without)
    base_url       ``VENICE_BASE_URL``     ``https://api.venice.ai/api/v1``
    default_model  ``VENICE_MODEL``        none
    timeout        ``VENICE_TIMEOUT``      600 s (read timeout)
    max_retries    ``VENICE_MAX_RETRIES``  2
    ============== ======================= =====================================================

    Args:
        api_key, base_url, timeout, connect_timeout, max_retries, default_model, default_headers,
            ca_file, ssl_context: Explicit values; they win over everything else.
        env_file: A ``.env`` file to read (default ``./.env``); ``False`` reads none.
        environ: The environment to read (default ``os.environ``); never modified.
        credentials_path: The credentials file (default: see ``credentials_path()``).
    Returns:
        A frozen ``Config`` whose ``key_source`` says where the key came from.
    Raises:
        ConfigError: A value is malformed (the message names the variable), or the key is.
    """
    env = os.environ if environ is None else environ
    args: dict[str, Any] = {
        "api_key": api_key,
        "base_url": base_url,
        "default_model": default_model,
        "timeout": timeout,
        "max_retries": max_retries,
    }
    layers: list[tuple[str, Callable[[], Mapping[str, str]]]] = [("environment", lambda: env)]
    if env_file is not False:
        if not isinstance(env_file, (str, os.PathLike, bool, type(None))):
            raise ConfigError(f"env_file must be a path or False, not {type(env_file).__name__}")
        path = (
            os.path.join(os.curdir, ".env") if env_file is None or isinstance(env_file, bool) else os.fspath(env_file)
        )
        layers.append((".env", lambda: _read_env_file(path, path)))
    cred = credentials_path if credentials_path is not None else _default_credentials_path(env)
    layers.append(("credentials", lambda: _read_env_file(cred, cred, private=True)))

    resolved: dict[str, Any] = {k: v for k, v in args.items() if v is not None}
    key_source = "argument" if resolved.get("api_key") is not None else None
    url_source = "argument" if base_url is not None else None
    for source, read in layers:
        if len(resolved) == len(args):
            break  # everything decided: don't touch the file system
        values = read()
        for name, var in _ENV_FIELDS:
            raw = values.get(var)
            if name in resolved or raw is None or raw.strip() == "":
                continue
            where = var if source == "environment" else f"{var} (from {source} file)"
            resolved[name] = _convert(name, raw, where)
            if name == "api_key":
                key_source = source
            elif name == "base_url":
                url_source = source
    if url_source == ".env" and key_source not in (None, ".env") and (env_file is None or env_file is True):
        _check_dotenv_url(resolved["base_url"], key_source)
    _check_dict("default_headers", default_headers, ConfigError)
    if ssl_context is not None and not hasattr(ssl_context, "wrap_socket"):
        raise ConfigError(f"ssl_context must be an ssl.SSLContext, not {type(ssl_context).__name__}")
    try:
        return Config(
            connect_timeout=connect_timeout if connect_timeout is not None else DEFAULT_CONNECT_TIMEOUT,
            default_headers=dict(default_headers or {}),
            ca_file=ca_file,
            ssl_context=ssl_context,
            key_source=key_source,
            **resolved,
        )
    except ConfigError as err:
        message = err.message
    raise ConfigError(message)  # (out of the except block: a short traceback, and no __context__)


def _check_dotenv_url(url: str, key_source: str) -> None:
    """A ``.env`` arrives with other people's code (a cloned repository): its ``VENICE_BASE_URL`` may
    send a key only to Venice, unless the key is in that same file (issue 10, item 9)."""
    from urllib.parse import urlsplit

    try:
        host = urlsplit(url).hostname
    except ValueError:
        return  # malformed: Config() says so
    if host == "api.venice.ai":
        return
    where = {"argument": "the api_key argument", "environment": "the environment variable VENICE_API_KEY"}
    raise ConfigError(
        f"the .env file in this folder sets VENICE_BASE_URL to {host!r}, but the API key comes from "
        f"{where.get(key_source, 'the credentials file')}; refusing to send a key to a host named by a "
        ".env that may have come with someone else's code. Put the key and the URL in one place, set "
        "VENICE_BASE_URL in the environment, or pass base_url=…"
    )


def _convert(name: str, raw: str, where: str) -> Any:
    raw = raw.strip()
    try:
        if name == "timeout":
            value: Any = float(raw)
            if not value > 0:
                raise ValueError
            return value
        if name == "max_retries":
            value = int(raw)
            if value < 0:
                raise ValueError
            return value
    except ValueError:
        what = "a positive number of seconds" if name == "timeout" else "a whole number >= 0"
        raise ConfigError(f"{where} must be {what}, got {raw!r}") from None
    if name == "api_key":
        try:
            return _check_key(raw)
        except ConfigError as err:
            raise ConfigError(f"{err.message} (from {where})") from None
    return raw


###############################################################################
# Data types ##################################################################
###############################################################################


if not TYPE_CHECKING:  # (this order lets linters see the overloads as such)

    def _overload(fn):
        """``typing.overload`` for type checkers; at run time the last definition simply wins."""
        return fn

else:
    from typing import Literal
    from typing import overload as _overload


class AttrDict(dict):  # type: ignore[type-arg]
    """A JSON object: a plain ``dict`` that also allows attribute access all the way down.

    ``r["choices"][0]["message"]["content"]`` and ``r.choices[0].message.content`` both work.
    Reading an absent key as an attribute gives ``None`` (as optional fields do on openai's
    objects). Nested objects are converted when the ``AttrDict`` is made (JSON from the API is
    decoded straight into them).

    For type checkers a plain ``AttrDict`` has no fields (use ``d["key"]``); the results of the API
    calls are typed by the classes below (``ChatResponse``, ``ChatCompletionChunk``, …), which declare
    the fields Venice sends, so a misspelt field name is a type error and editors complete the names.

    Attributes:
        meta: The ``ResponseMeta`` of the response this object came from (top-level objects only;
            ``None`` elsewhere).
    """

    __slots__ = ("meta",)
    meta: Optional[ResponseMeta]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        dict.__init__(self, *args, **kwargs)
        for key, value in self.items():
            if type(value) is dict or type(value) is list:
                dict.__setitem__(self, key, _attrs(value))

    if not TYPE_CHECKING:  # a catch-all ``-> Any`` would hide every misspelt field from type checkers

        def __getattr__(self, name):
            if name[:2] == "__":  # keep copy/pickle/introspection protocols honest
                raise AttributeError(name)
            return self.get(name)

    # The fields every chat object is read through, as C-level lookups: a chunk's
    # ``chunk.choices[0].delta.content`` then costs no Python call (see the streaming benchmark).
    for _name in (
        "choices", "delta", "content", "message", "tool_calls", "function", "arguments", "name", "index",
        "finish_reason", "usage", "role", "id", "model", "object", "created", "type", "data", "embedding",
        "reasoning_content", "prompt_tokens", "completion_tokens", "total_tokens",
    ):  # fmt: skip
        locals()[_name] = property(methodcaller("get", _name))
    del _name

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "meta":
            object.__setattr__(self, name, value)
        else:
            self[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __dir__(self) -> Iterable[str]:
        return [*super().__dir__(), *(k for k in self if isinstance(k, str))]

    def to_dict(self) -> dict[str, Any]:
        """A deep copy made of plain ``dict`` and ``list`` objects (for ``json.dumps`` and friends)."""
        return _plain(self)  # type: ignore[no-any-return]

    model_dump = to_dict  # the name pydantic (and so the openai SDK) uses

    def model_dump_json(self, **kw: Any) -> str:
        """The object as a JSON string.

        Args:
            **kw: ``json.dumps`` keyword arguments (``indent=2``, …).
        Returns:
            The JSON text.
        """
        return json.dumps(self, **kw)


class _JSONObject(AttrDict):
    """What JSON is decoded into: its members were decoded first, so there is nothing to convert."""

    __slots__ = ()
    __init__ = dict.__init__  # C-level: no Python call per object


def _attrs(value: Any) -> Any:
    """``value`` with every dict in it made an ``AttrDict`` (lists copied)."""
    if type(value) is dict:
        return AttrDict(value)
    if type(value) is list:
        return [_attrs(v) for v in value]
    return value


#: Decodes JSON straight into ``AttrDict`` objects.
_json_objects = json.JSONDecoder(object_hook=_JSONObject)
#: Request bodies: compact, UTF-8 as is (json.dumps with options would build an encoder per call).
#: NaN and infinity are refused: JSON has no such numbers and Venice would reject the body.
_json_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _number(value: Optional[str], kind: Callable[[str], Any] = float) -> Any:
    if value is None:
        return None
    try:
        return kind(value.strip())
    except ValueError:
        return None


def _reset_time(value: Optional[str], now: float) -> Optional[float]:
    """Rate-limit reset as epoch seconds. Venice's docs disagree on the unit (../shared/venice-api/NOTES.md
    §6), so go by magnitude: > 1e12 is epoch milliseconds, > 1e9 epoch seconds, anything else seconds from now."""
    v = _number(value)
    if v is None:
        return None
    if v > 1e12:
        return float(v) / 1000.0
    if v > 1e9:
        return float(v)
    return now + float(v)


@_record
class ResponseMeta:
    """What Venice says about a response in its headers (../shared/venice-api/NOTES.md §6).

    Attributes:
        status_code: HTTP status.
        request_id: ``CF-RAY``: quote it when asking Venice for support.
        venice_version: ``x-venice-version``, the API build.
        model_id, model_name: The model that actually answered (after any remapping).
        balance_usd, balance_diem: Balances *before* this request (floats), when sent.
        ratelimit_*: Limits and remaining requests/tokens; ``*_reset_*`` as epoch seconds.
        deprecation_warning, deprecation_date: Set when the model is scheduled for removal.
        headers: All response headers, lower-case names.
    """

    status_code: int = 0
    request_id: Optional[str] = None
    venice_version: Optional[str] = None
    model_id: Optional[str] = None
    model_name: Optional[str] = None
    balance_usd: Optional[float] = None
    balance_diem: Optional[float] = None
    ratelimit_limit_requests: Optional[int] = None
    ratelimit_remaining_requests: Optional[int] = None
    ratelimit_reset_requests: Optional[float] = None
    ratelimit_limit_tokens: Optional[int] = None
    ratelimit_remaining_tokens: Optional[int] = None
    ratelimit_reset_tokens: Optional[float] = None
    deprecation_warning: Optional[str] = None
    deprecation_date: Optional[str] = None
    headers: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_headers(cls, status: int, headers: dict[str, str], now: Optional[float] = None) -> ResponseMeta:
        """Read the metadata from response headers.

        Args:
            status: The HTTP status.
            headers: The headers, lower-case names.
            now: Current time (epoch seconds) for relative reset times; default ``time.time()``.
        Returns:
            The ``ResponseMeta``.
        """
        h = headers.get
        now = time.time() if now is None else now
        return cls(
            status_code=status,
            request_id=h("cf-ray"),
            venice_version=h("x-venice-version"),
            model_id=h("x-venice-model-id"),
            model_name=h("x-venice-model-name"),
            balance_usd=_number(h("x-venice-balance-usd")),
            balance_diem=_number(h("x-venice-balance-diem")),
            ratelimit_limit_requests=_number(h("x-ratelimit-limit-requests"), int),
            ratelimit_remaining_requests=_number(h("x-ratelimit-remaining-requests"), int),
            ratelimit_reset_requests=_reset_time(h("x-ratelimit-reset-requests"), now),
            ratelimit_limit_tokens=_number(h("x-ratelimit-limit-tokens"), int),
            ratelimit_remaining_tokens=_number(h("x-ratelimit-remaining-tokens"), int),
            ratelimit_reset_tokens=_reset_time(h("x-ratelimit-reset-tokens"), now),
            deprecation_warning=h("x-venice-model-deprecation-warning"),
            deprecation_date=h("x-venice-model-deprecation-date"),
            headers=headers,
        )


@_record
class Model:
    """One row of ``GET /models``.

    Attributes:
        id: Model id to pass as ``model=``.
        type: ``text``, ``image``, ``embedding``, …
        owned_by, created: As listed.
        name: Display name (``model_spec.name``).
        context_length: Maximum input tokens (text models).
        max_completion_tokens: Ceiling for ``max_completion_tokens`` (text models).
        capabilities: ``model_spec.capabilities`` (``supportsFunctionCalling``, ``supportsVision``, …).
        traits: e.g. ``["default", "function_calling_default"]``.
        pricing: ``model_spec.pricing`` (USD and DIEM per million tokens, or per item).
        raw: The row exactly as received.
    """

    id: str
    type: Optional[str] = None
    owned_by: Optional[str] = None
    created: Optional[int] = None
    name: Optional[str] = None
    context_length: Optional[int] = None
    max_completion_tokens: Optional[int] = None
    capabilities: dict[str, Any] = field(default_factory=dict)
    traits: list[str] = field(default_factory=list)
    pricing: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> Model:
        """Build a Model from a ``/models`` row; unknown keys are kept only in ``raw``.

        Args:
            row: One element of the ``data`` list of ``GET /models``.
        Returns:
            The ``Model``.
        """
        spec = row.get("model_spec")
        spec = spec if isinstance(spec, dict) else {}
        ctx = row.get("context_length") or spec.get("availableContextTokens")
        mct = spec.get("maxCompletionTokens")
        capabilities, traits, pricing = spec.get("capabilities"), spec.get("traits"), spec.get("pricing")
        return cls(
            id=str(row.get("id", "")),
            type=row.get("type"),
            owned_by=row.get("owned_by"),
            created=row.get("created"),
            name=spec.get("name"),
            context_length=int(ctx) if isinstance(ctx, (int, float)) and 0 <= ctx < 1e15 else None,
            max_completion_tokens=int(mct) if isinstance(mct, (int, float)) and 0 <= mct < 1e15 else None,
            capabilities=dict(capabilities) if isinstance(capabilities, dict) else {},
            traits=list(traits) if isinstance(traits, list) else [],
            pricing=dict(pricing) if isinstance(pricing, dict) else {},
            raw=dict(row),
        )


class ModelList:
    """The result of ``client.models.list()``: iterable, indexable, with ``.data`` and ``.meta``."""

    def __init__(self, data: list[Model], meta: Optional[ResponseMeta] = None, type: Optional[str] = None) -> None:
        self.data = data
        self.meta = meta
        self.type = type

    def __iter__(self) -> Iterator[Model]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> Model:
        return self.data[index]

    def get(self, model_id: str) -> Optional[Model]:
        """Find a model by id.

        Args:
            model_id: The id to look for.
        Returns:
            The ``Model``, or ``None`` if it is not in this list.
        """
        return next((m for m in self.data if m.id == model_id), None)

    def __repr__(self) -> str:
        return f"ModelList({len(self.data)} models: {', '.join(m.id for m in self.data[:5])}{', …' if len(self) > 5 else ''})"


@_record
class ToolCall:
    """A function call the model asked for.

    Attributes:
        id: The call id; send it back as ``tool_call_id``.
        name: The function's name.
        arguments: The arguments as the raw JSON text the model wrote.
        type: Always ``"function"`` today.
    """

    id: Optional[str]
    name: str
    arguments: str = ""
    type: str = "function"

    @property
    def args(self) -> dict[str, Any]:
        """The arguments parsed from JSON (an empty string gives ``{}``).

        Raises:
            InvalidRequestError: The model wrote invalid JSON (the message names the tool and
                quotes the raw text).
        """
        if not self.arguments.strip():
            return {}
        try:
            value = json.loads(self.arguments)
        except (ValueError, RecursionError) as err:
            raise InvalidRequestError(
                f"tool call {self.name!r} has invalid JSON arguments ({err}): {self.arguments[:200]!r}"
            ) from None
        if not isinstance(value, dict):
            raise InvalidRequestError(
                f"tool call {self.name!r} arguments are not a JSON object: {self.arguments[:200]!r}"
            )
        return value

    def to_dict(self) -> dict[str, Any]:
        """The call in the OpenAI message shape, as sent back in an assistant message."""
        return {"id": self.id, "type": self.type, "function": {"name": self.name, "arguments": self.arguments}}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ToolCall:
        """Build a ToolCall from an OpenAI-shaped ``tool_calls`` entry.

        Args:
            raw: ``{"id", "type", "function": {"name", "arguments"}}``; arguments given as an object
                are re-encoded as JSON text.
        Returns:
            The ``ToolCall``.
        """
        fn = raw.get("function") or {}
        args = fn.get("arguments")
        if args is None:
            args = ""
        elif not isinstance(args, str):
            args = json.dumps(args)
        return cls(id=raw.get("id"), name=str(fn.get("name") or ""), arguments=args, type=raw.get("type") or "function")


@_record
class ServerSentEvent:
    """One event of a ``text/event-stream`` (see ``iter_sse``).

    Attributes:
        event: The event type (``"message"`` unless an ``event:`` field said otherwise).
        data: The data lines joined with ``"\\n"``.
        id: The last event id seen so far in the stream (it persists across events), or ``None``.
        retry: The reconnection time set in this event's own block, or ``None``.
    """

    event: str = "message"
    data: str = ""
    id: Optional[str] = None
    retry: Optional[int] = None


def _split_think(content: str) -> tuple[Optional[str], str]:
    """Split a leading ``<think>…</think>`` block off ``content``: ``(reasoning, text)``."""
    stripped = content.lstrip()
    if not stripped.startswith("<think>"):
        return None, content
    end = stripped.find("</think>")
    if end < 0:  # cut off while still thinking
        return stripped[7:].strip(), ""
    return stripped[7:end].strip(), stripped[end + 8 :].lstrip()


def _content_text(content: Any) -> Optional[str]:
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    return str(content)


# Typed views of the JSON objects the API returns, for type checkers and editors: they declare the
# fields, so a misspelt field name is a type error and editors complete the names. At run time each
# name is just AttrDict: every object inside a response is one (JSON is decoded straight into them;
# a class per shape would cost the streaming loop dearly and 18 classes 0.2 ms of import time), so
# don't test objects with isinstance() against these. Fields follow openai-python's types where the
# shapes agree (code written for the openai SDK type-checks the same) and Venice's spec
# (swagger.derived.json) for its extras. A field the spec requires is not Optional; at run time a
# field a server left out still reads as None, like any absent key.
if TYPE_CHECKING:

    class PromptTokensDetails(AttrDict):
        """``usage.prompt_tokens_details``: prompt tokens read from (or written to) the prompt cache."""

        cached_tokens: Optional[int]
        cache_creation_input_tokens: Optional[int]

    class CompletionTokensDetails(AttrDict):
        """``usage.completion_tokens_details``: ``reasoning_tokens`` among the completion tokens."""

        reasoning_tokens: Optional[int]

    class CompletionUsage(AttrDict):
        """Token counts of a chat completion (``r.usage``).

        Attributes:
            prompt_tokens, completion_tokens, total_tokens: The counts (reasoning included in completion).
            prompt_tokens_details: Cache hits, or ``None``. completion_tokens_details: Reasoning tokens, or ``None``.
        """

        prompt_tokens: int
        completion_tokens: int
        total_tokens: int
        prompt_tokens_details: Optional[PromptTokensDetails]
        completion_tokens_details: Optional[CompletionTokensDetails]

    class Cost(AttrDict):
        """What a request cost (Venice's ``cost`` field): ``usd`` and ``diem``."""

        usd: float
        diem: float

    class WebSearchCitation(AttrDict):
        """One web search result Venice used (``venice_parameters.web_search_citations``)."""

        title: str
        url: str
        content: Optional[str]
        date: Optional[str]

    class VeniceParameters(AttrDict):
        """The ``venice_parameters`` a response echoes: the options in effect, and the web search results.

        Attributes:
            enable_web_search: ``"off"``, ``"on"`` or ``"auto"``.
            web_search_citations: The search results (when web search ran), else ``None``.
            character_slug: The character used, else ``None``. Other fields: the flags in effect.
        """

        enable_web_search: str
        enable_web_citations: bool
        enable_web_scraping: bool
        enable_e2ee: bool
        include_venice_system_prompt: bool
        include_search_results_in_stream: bool
        return_search_results_as_documents: bool
        strip_thinking_response: bool
        disable_thinking: bool
        character_slug: Optional[str]
        web_search_citations: Optional[list[WebSearchCitation]]

    class ToolCallFunction(AttrDict):
        """The function of a tool call: its ``name`` and its ``arguments`` as JSON text."""

        name: str
        arguments: str

    class ChatCompletionMessageToolCall(AttrDict):
        """A tool call inside a message (``r.message.tool_calls[i]``), as sent back to the model.

        ``ChatResponse.tool_calls`` gives the same calls as ``ToolCall`` objects, with parsed ``args``.
        """

        id: str
        type: str
        function: ToolCallFunction

    class ChatCompletionMessage(AttrDict):
        """The message of a choice (``r.message``, ``r.choices[0].message``): append it to the
        conversation unchanged (it carries ``reasoning_details`` and ``thought_signature`` to pass back).

        Attributes:
            role: ``"assistant"``.
            content: The text, or ``None`` (only tool calls). The spec also allows a list of text parts;
                ``ChatResponse.text`` joins them, and leaves out a leading ``<think>`` block.
            reasoning_content: The model's reasoning, or ``None``.
            tool_calls: The calls the model asked for, or ``None``.
        """

        role: str
        content: Optional[str]
        reasoning_content: Optional[str]
        tool_calls: Optional[list[ChatCompletionMessageToolCall]]
        name: Optional[str]
        reasoning_details: Optional[list[AttrDict]]
        thought_signature: Optional[str]

    class Choice(AttrDict):
        """One choice of a ``ChatResponse`` (``r.choices[i]``).

        Attributes:
            index: Its position. message: The answer. finish_reason: ``"stop"``, ``"length"``,
                ``"tool_calls"``, ``"content_filter"``, … (``None`` if a stream ended without one).
            logprobs: With ``logprobs=True``, as Venice sends them (key access: their live shape is
                unverified). stop_reason: Venice's ``stop`` or ``length``, or ``None``.
        """

        index: int
        message: ChatCompletionMessage
        finish_reason: Optional[str]
        logprobs: Optional[AttrDict]
        stop_reason: Optional[str]

    class ChoiceDeltaToolCallFunction(AttrDict):
        """A piece of a streamed tool call's function: the ``name`` (first piece), ``arguments`` text."""

        name: Optional[str]
        arguments: Optional[str]

    class ChoiceDeltaToolCall(AttrDict):
        """A piece of a streamed tool call (``ChatStream.tool_calls`` assembles them)."""

        index: int
        id: Optional[str]
        type: Optional[str]
        function: Optional[ChoiceDeltaToolCallFunction]

    class ChoiceDelta(AttrDict):
        """What one chunk adds to a choice (``chunk.choices[0].delta``); each field may be absent (``None``)."""

        role: Optional[str]
        content: Optional[str]
        reasoning_content: Optional[str]
        tool_calls: Optional[list[ChoiceDeltaToolCall]]

    class ChunkChoice(AttrDict):
        """One choice in a streamed chunk (``chunk.choices[i]``): its ``delta`` and, at the end, ``finish_reason``."""

        index: int
        delta: ChoiceDelta
        finish_reason: Optional[str]
        logprobs: Optional[AttrDict]

    class ChatCompletionChunk(AttrDict):
        """One ``chat.completion.chunk`` of a stream (``stream.chunks()``, the OpenAI shim's stream).

        Attributes:
            choices: Usually one; empty (``[]``) in Venice's final chunk, which carries ``usage`` and ``cost``.
            usage, cost: In the final chunk only, else ``None``.
            venice_parameters: Web search results, in whichever chunk Venice sends them.
            id, object, created, model, system_fingerprint: As in ``ChatResponse``.
        """

        id: str
        object: str
        created: int
        model: str
        choices: list[ChunkChoice]
        usage: Optional[CompletionUsage]
        cost: Optional[Cost]
        venice_parameters: Optional[VeniceParameters]
        system_fingerprint: Optional[str]

    class Embedding(AttrDict):
        """One embedding (``r.data[i]``): ``embedding`` (a base64 string instead with
        ``encoding_format="base64"``) for input number ``index``."""

        object: str
        index: int
        embedding: list[float]

    class EmbeddingUsage(AttrDict):
        """Token counts of an embeddings request."""

        prompt_tokens: int
        total_tokens: int

    class CreateEmbeddingResponse(AttrDict):
        """The result of ``embeddings.create``: ``data`` (one ``Embedding`` per input), ``model``,
        ``usage``, and ``meta`` from the headers."""

        object: str
        model: str
        data: list[Embedding]
        usage: EmbeddingUsage
        meta: ResponseMeta
else:
    # (the names exist at run time too: for imports, and for annotations read at run time)
    PromptTokensDetails = CompletionTokensDetails = CompletionUsage = Cost = WebSearchCitation = AttrDict
    VeniceParameters = ToolCallFunction = ChatCompletionMessageToolCall = ChatCompletionMessage = Choice = AttrDict
    ChoiceDeltaToolCallFunction = ChoiceDeltaToolCall = ChoiceDelta = ChunkChoice = ChatCompletionChunk = AttrDict
    Embedding = EmbeddingUsage = CreateEmbeddingResponse = AttrDict


class ChatResponse(AttrDict):
    """A non-streamed chat completion: the response JSON as a dict with attribute access, plus:

    Attributes:
        text: The first choice's content (``None`` if none), without any ``<think>`` block.
        reasoning: The model's reasoning (``reasoning_content``, or a leading ``<think>`` block).
        tool_calls: The first choice's tool calls as ``ToolCall`` objects.
        finish_reason: ``"stop"``, ``"length"``, ``"tool_calls"``, ``"content_filter"``, … or ``None``.
        usage: Token counts (``prompt_tokens``, ``completion_tokens``, ``total_tokens``).
        message: The first choice's message, to append to the conversation unchanged.
        meta: ``ResponseMeta`` from the headers.

    And the response's own fields: ``id``, ``object``, ``created``, ``model``, ``choices`` (Venice's
    spec lets a model leave it out: it then reads as ``None``), and Venice's ``cost`` and
    ``venice_parameters``.
    """

    __slots__ = ()
    id: str
    object: str
    created: int
    model: str
    choices: list[Choice]
    usage: CompletionUsage  # (AttrDict's own property reads it: nothing to add at run time)
    cost: Optional[Cost]
    venice_parameters: Optional[VeniceParameters]
    prompt_logprobs: Any
    system_fingerprint: Optional[str]
    meta: ResponseMeta

    @property
    def message(self) -> Optional[ChatCompletionMessage]:
        """The first choice's ``message`` (``None`` when there is no choice)."""
        first = self._first()
        message: Optional[ChatCompletionMessage] = first.get("message") if first is not None else None
        return message if isinstance(message, AttrDict) else None

    @property
    def text(self) -> Optional[str]:
        """The first choice's content (text parts joined), without a leading ``<think>`` block."""
        msg = self.message
        content = _content_text(msg.get("content")) if msg is not None else None
        if content is None:
            return None
        return _split_think(content)[1] if msg is not None and not msg.get("reasoning_content") else content

    @property
    def reasoning(self) -> Optional[str]:
        """The model's reasoning: ``reasoning_content``, else a leading ``<think>`` block, else ``None``."""
        msg = self.message
        if msg is None:
            return None
        if msg.get("reasoning_content"):
            return str(msg["reasoning_content"])
        content = _content_text(msg.get("content"))
        return _split_think(content)[0] if content else None

    @property
    def tool_calls(self) -> list[ToolCall]:
        """The first choice's tool calls as ``ToolCall`` objects (``[]`` if none)."""
        calls = self.message.get("tool_calls") if self.message is not None else None
        return [ToolCall.from_dict(c) for c in calls if isinstance(c, dict)] if isinstance(calls, list) else []

    @property
    def finish_reason(self) -> Optional[str]:
        """The first choice's ``finish_reason``, or ``None``."""
        first = self._first()
        return first.get("finish_reason") if first is not None else None

    def _first(self) -> Optional[AttrDict]:
        choices = self.get("choices")
        first = choices[0] if isinstance(choices, list) and choices else None
        return first if isinstance(first, AttrDict) else None


# What the characters and billing calls return, for type checkers (at run time: AttrDicts, as above).
# Fields from Venice's spec (swagger.derived.json); the ones it marks nullable are Optional.
if TYPE_CHECKING:

    class CharacterStats(AttrDict):
        """A character's ratings and imports (``character.stats``)."""

        averageRating: float
        imports: float
        ratingCount: float
        ratingSum: float
        userRating: Optional[float]

    class Character(AttrDict):
        """A public character (``client.characters.list()`` / ``get(slug)``); chat with it by its ``slug``."""

        adult: bool
        author: str
        createdAt: str
        description: Optional[str]
        featured: bool
        id: str
        name: str
        shareUrl: Optional[str]
        photoUrl: Optional[str]
        slug: str
        stats: CharacterStats
        tags: list[str]
        updatedAt: str
        webEnabled: bool
        modelId: str

    class CharacterReview(AttrDict):
        """A public review of a character (``client.characters.reviews(slug)``)."""

        characterId: str
        createdAt: str
        id: str
        isOwner: bool
        locale: Optional[str]
        message: Optional[str]
        rating: int
        userAvatarUrl: Optional[str]
        username: str

    class InferenceDetails(AttrDict):
        """The inference request a usage entry was billed for."""

        completionTokens: Optional[int]
        inferenceExecutionTime: Optional[int]
        promptTokens: Optional[int]
        requestId: str

    class UsageEntry(AttrDict):
        """One entry of the usage ledger (``client.billing.usage_history()``): a charge is negative."""

        amount: float
        currency: str
        inferenceDetails: Optional[InferenceDetails]
        notes: str
        pricePerUnitUsd: float
        sku: str
        timestamp: str
        units: float

    class Balances(AttrDict):
        """``usd`` and ``diem`` left (``None`` where the account has none)."""

        usd: Optional[float]
        diem: Optional[float]

    class Balance(AttrDict):
        """``client.billing.balance()``."""

        canConsume: bool
        consumptionCurrency: Optional[str]
        balances: Balances
        diemEpochAllocation: float
        meta: ResponseMeta

    class UsageByDate(AttrDict):
        """One day of ``usage_analytics().byDate``."""

        date: str
        USD: float
        DIEM: float

    class UsageAnalytics(AttrDict):
        """``client.billing.usage_analytics()``: the totals by date, model and key."""

        lookback: str
        byDate: list[UsageByDate]
        byModel: list[AttrDict]
        byModelDaily: list[AttrDict]
        topModels: list[AttrDict]
        byKey: list[AttrDict]
        byKeyDaily: list[AttrDict]
        topKeyNames: list[AttrDict]
        meta: ResponseMeta


class Response(AttrDict):
    """A Responses API result (``POST /responses``): the JSON as a dict with attribute access, plus
    ``output_text``.

    Attributes:
        output_text: The text of the output message(s): every ``output_text`` content part joined
            (``""`` when there is none, e.g. only a function call).
        meta: ``ResponseMeta`` from the headers.

    And the response's own fields as Venice's spec lists them: ``id``, ``object`` (``"response"``),
    ``created_at``, ``model``, ``status`` (``"completed"``, ``"failed"``, ``"in_progress"``,
    ``"cancelled"``), ``output`` (``reasoning``, ``message`` and ``function_call`` items), ``usage``
    (``input_tokens``, ``output_tokens``, ``total_tokens``) and ``error``.
    """

    __slots__ = ()
    id: str
    object: str
    created_at: int
    model: str
    status: str
    output: list[Any]
    usage: Any  # (AttrDict's own property reads it)
    error: Any
    meta: ResponseMeta

    @property
    def output_text(self) -> str:
        """The ``output_text`` parts of the ``message`` items in ``output``, joined."""
        parts: list[str] = []
        for item in self.get("output") or ():
            if isinstance(item, dict) and item.get("type") == "message":
                for part in item.get("content") or ():
                    if isinstance(part, dict) and part.get("type") == "output_text":
                        text = part.get("text")
                        if isinstance(text, str):
                            parts.append(text)
        return "".join(parts)


if TYPE_CHECKING:

    class ResponseStreamEvent(AttrDict):
        """One event of a Responses API stream (``ResponseStream``), typed by ``type``:
        ``response.created``, ``response.output_text.delta`` (``delta``), ``response.completed``
        (``response``), … At run time a plain ``AttrDict``: read any other field by name.
        """

        type: str
        sequence_number: Optional[int]
        delta: Optional[str]
        text: Optional[str]
        item_id: Optional[str]
        output_index: Optional[int]
        content_index: Optional[int]
        item: Optional[AttrDict]
        part: Optional[AttrDict]
        response: Optional[Response]
        code: Optional[str]
        message: Optional[str]
else:
    ResponseStreamEvent = AttrDict


#: File extension for each image MIME type Venice sends (``format``: webp, png, jpeg).
_IMAGE_EXTENSIONS: Final = {"image/webp": ".webp", "image/png": ".png", "image/jpeg": ".jpg"}
#: Suffixes that name an image type: ``ImageResult.save()`` checks them against the MIME type.
_IMAGE_SUFFIXES: Final = frozenset(
    {".webp", ".png", ".jpg", ".jpeg", ".gif", ".avif", ".heic", ".bmp", ".tif", ".tiff"}
)


def _image_mime(data: bytes, fallback: str) -> str:
    """The MIME type of image bytes from their signature (JSON mode sends no type per image)."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return fallback


class ImageResult:
    """Generated images (``client.images.generate()``), decoded, whichever reply mode Venice used.

    Check the flags before using an image: Venice answers 200 even when it did not draw what was
    asked. ``content_violation`` means the image breaks Venice's terms (what came back is not the
    image asked for); ``blurred`` means Safe Venice (``safe_mode``, on by default) blurred adult
    content. Both are ``False`` when Venice sends no such header.

    Attributes:
        images: The images as ``bytes``, one per variant.
        mime_type: e.g. ``"image/webp"`` (Venice's ``format``).
        content_violation: ``x-venice-is-content-violation`` was true.
        blurred: ``x-venice-is-blurred`` was true.
        id: Venice's id of the generation (JSON mode only, else ``None``).
        timing: Venice's timings in ms (JSON mode only, else ``None``).
        request_id: ``CF-RAY``, for support. meta: ``ResponseMeta``.

    Example::

        result = client.images.generate("a lighthouse at dusk", variants=2)
        if result.content_violation or result.blurred:
            print("Venice flagged or blurred this image")
        print(result.save("lighthouse-{i}"))  # ['lighthouse-1.webp', 'lighthouse-2.webp']
    """

    def __init__(
        self,
        images: list[bytes],
        mime_type: str,
        meta: ResponseMeta,
        id: Optional[str] = None,
        timing: Optional[dict[str, Any]] = None,
    ) -> None:
        self.images = images
        self.mime_type = mime_type
        self.meta = meta
        self.request_id = meta.request_id
        self.id = id
        self.timing = timing
        flag = meta.headers.get
        self.content_violation = flag("x-venice-is-content-violation", "").strip().lower() == "true"
        self.blurred = flag("x-venice-is-blurred", "").strip().lower() == "true"

    def __repr__(self) -> str:
        return (
            f"ImageResult({len(self.images)} × {self.mime_type}, content_violation={self.content_violation}, "
            f"blurred={self.blurred}, request_id={self.request_id!r})"
        )

    def save(self, path: Union[str, os.PathLike[str]]) -> list[str]:
        """Write the images to files; return their paths.

        Each image goes to a temporary file beside its target and is renamed into place once
        whole, so a failed write never leaves a half file under the final name (an existing
        file of that name is replaced). The images are already in memory: this is plain
        blocking file I/O, also with ``AsyncVeniceClient``.

        Args:
            path: For one image, its file path. For any number: an existing folder (or a path
                ending in a separator, created if missing), where they are named ``<id>`` (several:
                ``<id>-1``, ``<id>-2``, …; ``image`` when Venice sent no id, as in binary mode), or a
                pattern with ``{i}``, replaced by 1, 2, … A path without an
                image extension gets the one of ``mime_type`` (``.webp``, ``.png``, ``.jpg``) added.
        Returns:
            The paths written, in the order of ``images``.
        Raises:
            InvalidRequestError: Several images but a single file path, or an extension that
                names another image type than ``mime_type`` (nothing is written).
            OSError: The write failed (no file of that name is left by it).
        """
        ext = _IMAGE_EXTENSIONS.get(self.mime_type, "." + self.mime_type.rpartition("/")[2])
        target = os.fspath(path)
        many = len(self.images) > 1
        if os.path.isdir(target) or target.endswith((os.sep, "/")):
            os.makedirs(target, exist_ok=True)
            stem = self.id if self.id and all(c.isalnum() or c in "-_" for c in self.id) else "image"
            target = os.path.join(target, f"{stem}-{{i}}" if many else stem)
        if many and "{i}" not in target:
            raise InvalidRequestError(
                f"{len(self.images)} images but one file path {target!r}: pass a folder or a pattern with {{i}}"
            )
        given = os.path.splitext(target.replace("{i}", "0"))[1].lower()
        if given not in _IMAGE_SUFFIXES:  # (none, or a dot in the name: "lighthouse.v2")
            target += ext
        elif given not in (ext, ".jpeg" if ext == ".jpg" else ext):
            raise InvalidRequestError(
                f"{target!r} names a {given} file but the image is {self.mime_type}: "
                f"use {ext} (or ask Venice for another format=)"
            )
        names = [target.replace("{i}", str(n)) for n in range(1, len(self.images) + 1)]
        for name, data in zip(names, self.images):
            with _Beside(name) as out:
                out.write(data)
        return names


class _Beside:
    """A file written whole or not at all: a temporary file in the target's folder (so the rename is
    atomic, on one file system; mode 0600, as mkstemp makes it), renamed onto the target when the
    ``with`` block ends normally, removed when it fails (the path never holds half a file).

    Attributes: ``target`` (the path, as given), ``file`` (open for binary writing).
    """

    def __init__(self, path: Any) -> None:
        import tempfile

        self.target: str = os.fspath(path)
        folder, name = os.path.split(os.path.abspath(self.target))
        fd, self.temp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=folder)
        self.file: Any = os.fdopen(fd, "wb")

    def __enter__(self) -> Any:
        return self.file

    def __exit__(self, kind: Any, *exc: object) -> None:
        self.finish(kind is None)

    def finish(self, complete: bool) -> None:
        """Close it, and rename it onto the target if it is ``complete`` (else remove it)."""
        try:
            self.file.close()
            if complete:
                os.replace(self.temp, self.target)
                return
        except BaseException:
            os.unlink(self.temp)  # (a close or a rename that failed: no half file, under either name)
            raise
        os.unlink(self.temp)


###############################################################################
# Transport ###################################################################
###############################################################################

# Whether a failed request may go out again is one rule, for the transport and the retry policy alike
# (issue 10): a request is *safe to re-send* if it is a GET or HEAD, or carries an ``Idempotency-Key``
# (the server then acts on it at most once). Any other request whose bytes may have reached the server
# is never sent again, neither silently on a fresh connection nor as a retry, unless the user opted in
# with ``RetryPolicy(retry_unsafe=True)``: a chat completion sent twice is billed twice.
_CONNECT: Final = "connect"  # nothing reached the server: always safe to retry
_SENT: Final = "sent"  # the request may have reached the server and been processed (and billed)
#: A pooled connection idle longer than this is not reused: servers and NATs drop idle connections
#: silently after a while, and one dropped in the middle of a POST could not be re-sent.
_MAX_IDLE_SECONDS: Final = 30.0


def _resendable(method: str, headers: Mapping[str, str]) -> bool:
    """Whether a request is safe to send again after its bytes may have reached the server."""
    return method in ("GET", "HEAD") or any(name.lower() == "idempotency-key" for name in headers)


def _conn_error(message: str, stage: str, *, timeout: bool = False, hint: Optional[str] = None) -> APIConnectionError:
    err = (APITimeoutError if timeout else APIConnectionError)(message, hint=hint)
    err._stage = stage  # type: ignore[attr-defined]
    return err


class _Masked(str):
    """A header value holding the key: sent as is, but its ``repr`` (what tracebacks with locals,
    ``pytest --showlocals`` and error trackers show of our frames) hides it."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'Bearer …'"


class _HiddenBytes(bytes):
    """Pre-encoded header lines (the key among them) whose ``repr`` hides them, as ``_Masked``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<header lines hidden>"


class _Request:
    """One HTTP request as a driver sends it: built (and checked) once per call, kept across retries.

    Attributes: ``method``, ``scheme``, ``host``, ``port``, ``target`` (path and query), ``headers``,
    ``content`` (the body as bytes, or ``None``), ``resend`` (safe to send again, see ``_resendable``),
    ``stream`` (a 2xx body is left unread for the caller) and ``timeouts``. ``url`` is the whole URL.
    This is what ``MockTransport``'s handler receives.
    """

    __slots__ = (
        "method", "scheme", "host", "port", "target", "headers", "content", "resend", "stream", "timeouts", "expect"
    )  # fmt: skip

    def __init__(
        self,
        method: str,
        scheme: str,
        host: str,
        port: int,
        target: str,
        headers: dict[str, str],
        content: Optional[bytes],
        stream: bool,
        timeouts: _Timeouts,
    ) -> None:
        self.method, self.scheme, self.host, self.port, self.target = method, scheme, host, port, target
        self.headers, self.content, self.stream, self.timeouts = headers, content, stream, timeouts
        self.resend = _resendable(method, headers)
        self.expect = ""  # a streamed 2xx whose content type lacks this is read whole (an error page)

    @property
    def url(self) -> str:
        """The full URL (default ports left out)."""
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}{'' if self.port == default else f':{self.port}'}{self.target}"

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.url}>"


class _Gunzip:
    """Decodes a gzip-encoded body block by block, and says so when it stops before its end."""

    __slots__ = ("inflater",)

    def __init__(self) -> None:
        import zlib

        self.inflater: Any = zlib.decompressobj(47)  # 32 + 15: gzip or zlib header, detected

    def decode(self, data: bytes) -> bytes:
        """The decoded bytes of one block (may be ``b""``: a block can hold only part of the header)."""
        try:
            return bytes(self.inflater.decompress(data))
        except Exception as err:  # zlib.error
            raise _conn_error(f"the response claimed gzip encoding but could not be decoded ({err})", _SENT) from None

    def end(self) -> None:
        """At the end of the body: a gzip stream cut short decodes to nothing, without an error."""
        if not self.inflater.eof:
            raise _conn_error("the gzip-encoded response ended before the end of its data", _SENT)


def _gunzip_for(headers: Mapping[str, str]) -> Optional[_Gunzip]:
    """A decoder if the response is gzip-encoded (for every caller, whatever it reads)."""
    return _Gunzip() if headers.get("content-encoding", "").lower() in ("gzip", "x-gzip") else None


class _Timeouts:
    """Connect and read timeouts plus an optional overall deadline (a ``time.monotonic()`` value)."""

    __slots__ = ("connect", "read", "deadline")

    def __init__(self, connect: float, read: float, deadline: Optional[float]) -> None:
        self.connect = connect
        self.read = read
        self.deadline = None if deadline is None else time.monotonic() + deadline

    def left(self, limit: float, stage: str = _SENT) -> float:
        """``limit``, shortened to what is left of the deadline (raises once it has passed; ``stage``
        says whether anything may have been sent by then)."""
        if self.deadline is None:
            return limit
        rest = self.deadline - time.monotonic()
        if rest <= 0:
            raise _conn_error("the call's deadline passed", stage, timeout=True)
        return min(limit, rest)


class _Exchange:
    """One request on one checked-out connection, with its response (headers read, body not).

    ``release`` (body read to the end: back to the pool), ``close`` (drop it) and ``abort`` (another
    thread cuts a blocked read short) agree under one lock: a connection is shut down by ``abort`` only
    while this exchange still owns it, and an aborted connection never goes back to the pool.
    """

    def __init__(self, pool: _Transport, key: tuple[str, str, int], conn: Any, resp: Any, timeouts: _Timeouts) -> None:
        self.pool = pool
        self.key = key
        self.conn = conn
        self.resp: Optional[http.client.HTTPResponse] = resp
        self.timeouts = timeouts
        self.lock = threading.Lock()
        self.aborted = False
        self.status: int = resp.status
        # raw_items(): the headers as received, without email-policy processing per value (costly)
        self.headers: dict[str, str] = {k.lower(): v for k, v in resp.msg.raw_items()}
        self.gunzip = _gunzip_for(self.headers)
        self.body = b""  # the whole body, once read for a caller that is not streaming

    def set_timeout(self, seconds: float) -> None:
        sock = self.conn.sock
        if sock is not None:
            sock.settimeout(seconds)

    def read1(self) -> bytes:
        """The body as soon as any is available (gzip decoded); ``b""`` at the end (conn released)."""
        while True:
            data = self._read_raw()
            if self.gunzip is None:
                return data
            try:
                if not data:
                    self.gunzip.end()
                    return data
                data = self.gunzip.decode(data)
            except APIConnectionError:
                self.close()
                raise
            if data:  # a block may hold only part of the gzip header: read on
                return data

    def _read_raw(self) -> bytes:
        """Up to 64 KiB of the body as received."""
        resp = self.resp
        if resp is None:
            return b""
        import socket

        try:
            data = resp.read1(65536)
        except socket.timeout:
            self.close()
            deadline = self.timeouts.deadline
            if deadline is not None and time.monotonic() >= deadline - 0.001:
                raise _conn_error("the call's deadline passed", _SENT, timeout=True) from None
            raise _conn_error(f"no data from the server for {self.timeouts.read:g} s", _SENT, timeout=True) from None
        except Exception as exc:  # OSError, http.client.IncompleteRead and the other HTTPExceptions
            self.close()
            # (the chunked body cut short: said as _ResponseReader says it for the async driver)
            cut = resp.chunked and type(exc).__name__ == "IncompleteRead"
            what = "the connection closed before the end of the chunked body" if cut else _describe(exc)
            raise _conn_error(f"the connection broke while reading the response ({what})", _SENT) from None
        if not data or resp.length == 0:  # the end (http.client leaves a Content-Length body open)
            missing = resp.length
            if not data and missing:  # http.client's read1() returns b"" at an early EOF instead of raising
                self.close()
                raise _conn_error(f"the connection closed with {missing} bytes of the response body missing", _SENT)
            if not resp.isclosed():
                resp.read()
            self.release()
        return data

    def read_all(self) -> bytes:
        parts: list[bytes] = []
        while True:
            if self.timeouts.deadline is not None:
                self.set_timeout(self.timeouts.left(self.timeouts.read))
            block = self.read1()
            if not block:
                return b"".join(parts)
            parts.append(block)

    def release(self) -> None:
        """Back to the pool if the body was read to the end and the server keeps the connection."""
        with self.lock:
            resp, self.resp = self.resp, None
            keep = resp is not None and not self.aborted and resp.isclosed() and not resp.will_close
        if keep:
            self.pool.checkin(self.key, self.conn)
        elif resp is not None:
            resp.close()
            self.conn.close()

    def abort(self) -> None:
        """From another thread: shut the socket down so that a blocked read returns at once."""
        with self.lock:
            if self.resp is None:  # released or closed: the connection may already serve another call
                return
            self.aborted = True
            sock = self.conn.sock
            if sock is not None:
                import socket

                try:  # the plain-socket call even for TLS: SSLSocket.shutdown would drop its TLS state under the reader
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        """Drop the connection: a half-read response must never go back to the pool."""
        with self.lock:
            resp, self.resp = self.resp, None
        if resp is not None:
            self.conn.close()
            resp.close()


def _connect_failed(exc: OSError, where: str, host: str, port: int, proxy: Optional[_Proxy]) -> APIConnectionError:
    """The error for a connection that could not be made (both drivers): nothing was sent."""
    if proxy and str(exc).startswith("Tunnel connection failed"):
        return _conn_error(f"{where} refused to connect to {host}:{port} ({exc})", _CONNECT)
    hint = None
    if type(exc).__name__ == "SSLCertVerificationError":
        hint = "set SSL_CERT_FILE or ca_file= if you use a private certificate authority"
    return _conn_error(f"could not connect to {where} ({_describe(exc)})", _CONNECT, hint=hint)


def _describe(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text


class _Proxy:
    __slots__ = ("host", "port", "auth")

    def __init__(self, url: str) -> None:
        from urllib.parse import unquote, urlsplit

        try:
            parts = urlsplit(url if "://" in url else "http://" + url)
            self.host = parts.hostname or ""
            self.port = parts.port or (443 if parts.scheme == "https" else 80)
            self.host.encode("idna")
        except (ValueError, UnicodeError):  # the value is not echoed: a proxy URL may carry a password
            raise ConfigError(
                "the proxy set in the environment (HTTPS_PROXY, HTTP_PROXY, …) is not a valid URL"
            ) from None
        self.auth: Optional[str] = None
        if parts.username is not None:
            import base64

            cred = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            self.auth = "Basic " + base64.b64encode(cred).decode("ascii")


def _env_proxies(environ: Mapping[str, str]) -> dict[str, str]:
    """``*_proxy`` variables by scheme, as urllib reads them: any case, lower-case names winning; under
    CGI (``REQUEST_METHOD`` set) ``HTTP_PROXY`` is ignored, since a client's ``Proxy:`` header sets it
    there (CVE-2016-1000110)."""
    found = {name.lower()[:-6]: value for name, value in environ.items() if name.lower().endswith("_proxy")}
    if "REQUEST_METHOD" in environ:
        found.pop("http", None)
    found.update({name[:-6]: value for name, value in environ.items() if name.endswith("_proxy") and name.islower()})
    return {scheme: value for scheme, value in found.items() if value}


_pools: Any = None  # a WeakSet of live pools, emptied in a forked child (see _Transport.forget)


def _forget_pools_after_fork() -> None:
    for pool in list(_pools or ()):
        pool.forget()


class _Transport:
    """A thread-safe keep-alive connection pool over ``http.client``.

    Connections are keyed by (scheme, host, port). A request checks one out (or opens one) and it
    goes back to the pool only after its response was read to the end, so one connection never
    serves two threads at once; concurrent calls each get their own. Up to 8 idle connections per
    host are kept, each for at most ``idle_limit`` seconds. States of a connection (as in ``http.client``)::

        new --connect--> busy --body read to the end--> idle (in pool) --checkout--> busy
                          |                              |
                          +--error / early close--> closed <--server closed it, or idle too long
                                                             (found before sending: a fresh one is used)

    A pooled connection that fails after the request went out is re-sent on a fresh one only when the
    request is safe to re-send (``_resendable``); otherwise the error is raised. A forked child never
    uses its parent's connections (``os.register_at_fork``).

    Proxies come from the ``*_proxy`` variables of the ``environ`` given to the client (else of
    ``os.environ``, and the system settings on macOS and Windows), ``NO_PROXY`` included; https goes
    through ``CONNECT``. Loopback hosts never go through a proxy. TLS uses
    ``ssl.create_default_context()`` with ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` and the config's
    ``ca_file`` / ``ssl_context``.
    """

    MAX_IDLE = 8

    def __init__(self, config: Config, environ: Optional[Mapping[str, str]], trust_env: bool = True) -> None:
        global _pools
        self.config = config
        self.environ = os.environ if environ is None else environ
        self.own_environ = environ is not None  # proxies from it alone, not from the system settings
        self.trust_env = trust_env
        self.lock = threading.Lock()
        self.idle: dict[tuple[str, str, int], list[tuple[Any, float]]] = {}
        self.idle_limit = _MAX_IDLE_SECONDS
        self.ssl_context: Optional[ssl.SSLContext] = config.ssl_context
        self.proxies: dict[tuple[str, str], Optional[_Proxy]] = {}
        self.connections_opened = 0  # for tests and the benchmark
        self.heads: dict[tuple[tuple[str, str], ...], tuple[bytes, bool, bool]] = {}
        if _pools is None:
            import weakref

            _pools = weakref.WeakSet()
            if hasattr(os, "register_at_fork"):  # (not on Windows, which has no fork)
                os.register_at_fork(after_in_child=_forget_pools_after_fork)
        _pools.add(self)

    def checkin(self, key: tuple[str, str, int], conn: Any) -> None:
        with self.lock:
            idle = self.idle.setdefault(key, [])
            if len(idle) < self.MAX_IDLE:
                idle.append((conn, time.monotonic()))
                return
        conn.close()

    def checkout(self, key: tuple[str, str, int]) -> Any:
        while True:
            with self.lock:
                idle = self.idle.get(key)
                if not idle:
                    return None
                conn, since = idle.pop()
            if time.monotonic() - since <= self.idle_limit and not _is_stale(conn):
                return conn
            conn.close()

    def close(self) -> None:
        with self.lock:
            conns = [c for idle in self.idle.values() for c, _ in idle]
            self.idle.clear()
        for conn in conns:
            conn.close()

    def forget(self) -> None:
        """In a forked child: the pooled sockets are the parent's too; close our copies, never use them."""
        self.lock = threading.Lock()  # another thread may have held it at the fork
        conns, self.idle = self.idle, {}
        for idle in conns.values():
            for conn, _ in idle:
                conn.close()  # closes the child's descriptor only; the parent's connection lives on

    def head(self, headers: Mapping[str, str]) -> tuple[bytes, bool, bool]:
        """The header lines as sent, and whether they hold ``Host`` and ``Accept-Encoding``.

        Cached per client (the key is in them): a client sends the same few header sets again and again.
        """
        items = tuple(headers.items())
        try:
            entry = self.heads.get(items)
        except TypeError:  # an unhashable value (a list…): not a str, which _check_header reports
            entry = None
        if entry is None:
            for name, value in items:
                _check_header(name, value)
            names = {name.lower() for name, _ in items}
            head = _HiddenBytes(b"\r\n".join(f"{name}: {value}".encode("latin-1") for name, value in items))
            entry = (head, "host" in names, "accept-encoding" in names)
            if len(self.heads) >= 64:
                self.heads.clear()
            self.heads[items] = entry
        return entry

    @staticmethod
    def peer(sock: Any) -> str:
        """The address a connection reached: what decides whether the key may go over plain http://
        (a socket, or an asyncio stream writer)."""
        name = sock.get_extra_info("peername") if hasattr(sock, "get_extra_info") else sock.getpeername()
        return str(name[0])

    def proxy_for(self, scheme: str, host: str) -> Optional[_Proxy]:
        key = (scheme, host)
        try:
            return self.proxies[key]
        except KeyError:
            # Loopback never goes through a proxy: the key would travel to it (in clear, for http://).
            proxy = None if not self.trust_env or _is_loopback(host) else self._find_proxy(scheme, host)
            self.proxies[key] = proxy
            return proxy

    def _find_proxy(self, scheme: str, host: str) -> Optional[_Proxy]:
        found = _env_proxies(self.environ)
        url = found.get(scheme) or found.get("all")
        # urllib.request costs ~20 ms to import: only pay when a proxy can be configured.
        if url:
            import urllib.request

            # (undocumented, but in every CPython 3: NO_PROXY matched exactly as urllib matches it)
            bypass = urllib.request.proxy_bypass_environment(host, found)  # type: ignore[attr-defined]
            return None if bypass else _Proxy(url)
        if not self.own_environ and sys.platform in ("darwin", "win32"):  # the system's proxy settings
            import urllib.request

            url = urllib.request.getproxies().get(scheme)
            if url and not urllib.request.proxy_bypass(host):
                return _Proxy(url)
        return None

    def context(self) -> ssl.SSLContext:
        if self.ssl_context is None:
            try:
                import ssl
            except ImportError:
                raise ConfigError(
                    "This Python was built without the ssl module, so https:// URLs can't be used. "
                    "Install a Python with ssl support (e.g. the python3 package of your system)."
                ) from None
            where = f"ca_file {self.config.ca_file!r}"
            try:
                ctx = ssl.create_default_context(cafile=self.config.ca_file)
                if not self.config.ca_file:
                    cafile = self.environ.get("SSL_CERT_FILE")
                    capath = self.environ.get("SSL_CERT_DIR")
                    cafile = cafile if cafile and os.path.isfile(cafile) else None
                    capath = capath if capath and os.path.isdir(capath) else None
                    where = f"SSL_CERT_FILE {cafile!r}" if cafile else f"SSL_CERT_DIR {capath!r}"
                    if cafile or capath:
                        ctx.load_verify_locations(cafile=cafile, capath=capath)
            except (OSError, ValueError) as err:  # missing or unreadable file, not PEM (ssl.SSLError)
                raise ConfigError(f"can't load the certificates of {where}: {_describe(err)}") from None
            self.ssl_context = ctx
        return self.ssl_context

    def connect(self, scheme: str, host: str, port: int, proxy: Optional[_Proxy], timeouts: _Timeouts) -> Any:
        import http.client
        import socket

        seconds = timeouts.left(timeouts.connect, _CONNECT)
        target_host, target_port = (proxy.host, proxy.port) if proxy else (host, port)
        # A failure names what we failed to reach: the proxy, when there is one.
        where = f"the proxy {proxy.host}:{proxy.port}" if proxy else f"{host}:{port}"
        if scheme == "https":
            if not hasattr(http.client, "HTTPSConnection"):
                self.context()  # raises the ConfigError that explains the missing ssl module
            conn: Any = _connection_class(True)(target_host, target_port, timeout=seconds, context=self.context())
            if proxy:
                conn.set_tunnel(host, port, headers={"Proxy-Authorization": proxy.auth} if proxy.auth else None)
        else:
            conn = _connection_class(False)(target_host, target_port, timeout=seconds)
        try:
            conn.connect()
        except socket.timeout:
            conn.close()
            raise _conn_error(f"timed out connecting to {where} after {seconds:g} s", _CONNECT, timeout=True) from None
        except OSError as exc:
            conn.close()
            raise _connect_failed(exc, where, host, port, proxy) from None
        if scheme == "http" and not _is_loopback_address(self.peer(conn.sock)):
            # http:// is allowed for loopback names only, but a name is not an address: whatever
            # `foo.localhost` resolves to, the key goes in clear text only to a loopback peer.
            conn.close()
            raise ConfigError(
                f"{host} resolved to a non-loopback address; refusing to send the API key over plain http://. "
                "Use https://, or a loopback address such as 127.0.0.1"
            )
        # http.client writes headers and body separately: without TCP_NODELAY, Nagle's algorithm can
        # hold the body back until the server's (delayed) ACK arrives. urllib3 sets it too.
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.connections_opened += 1
        return conn

    def send(self, req: _Request) -> _Exchange:
        """Send one request and read the response headers. Raises ``APIConnectionError``.

        A request that is safe to send again (``req.resend``) goes out once more on a fresh connection
        when a pooled one turns out dead after sending; any other is never sent twice.
        """
        import http.client
        import socket

        method, scheme, host, port, target = req.method, req.scheme, req.host, req.port, req.target
        headers, body, timeouts = req.headers, req.content, req.timeouts
        key = (scheme, host, port)
        proxy = self.proxy_for(scheme, host)
        if proxy is not None and scheme == "http":  # plain-http proxies take the absolute URL
            target = f"http://{host}:{port}{target}"
            if proxy.auth:
                headers = {**headers, "Proxy-Authorization": proxy.auth}
        head, skip_host, skip_encoding = self.head(headers)
        conn = self.checkout(key)
        while True:
            reused = conn is not None
            if conn is None:
                conn = self.connect(scheme, host, port, proxy, timeouts)
            try:
                limit = timeouts.left(timeouts.read)
                if conn.sock.gettimeout() != limit:  # settimeout costs two fcntl calls
                    conn.sock.settimeout(limit)
                # putheader() re-validates each header on every request: ours were checked once
                # (_check_header) and are added pre-encoded, which saves ~10% per small request.
                conn.putrequest(method, target, skip_host=skip_host, skip_accept_encoding=skip_encoding)
                conn._buffer.append(head)
                if body is not None or method in ("POST", "PUT", "PATCH"):
                    conn._buffer.append(b"Content-Length: %d" % len(body or b""))
                conn.endheaders(body)
                resp = conn.getresponse()
            except socket.timeout:
                conn.close()
                raise _conn_error(f"no response from {host} within {timeouts.read:g} s", _SENT, timeout=True) from None
            except APIConnectionError:
                conn.close()
                raise
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                if reused and req.resend:
                    conn = None  # a pooled connection that died unseen: once more, on a fresh one
                    continue
                if isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)) or isinstance(
                    exc, http.client.RemoteDisconnected
                ):
                    raise _conn_error(f"{host} closed the connection without answering", _SENT) from None
                raise _conn_error(f"the request to {host} failed ({_describe(exc)})", _SENT) from None
            return _Exchange(self, key, conn, resp, timeouts)


_connection_classes: dict[bool, Any] = {}


def _connection_class(tls: bool) -> Any:
    """``http.client`` connection classes that send a request's head and body in one write.

    http.client writes them separately; with Nagle's algorithm on either side, the second small
    segment can wait for a delayed ACK (~40 ms a request, measured here), and without it the server
    needs two reads. One ``send`` avoids both. Made on first use: http.client is a costly import.
    """
    if tls not in _connection_classes:
        import http.client

        base: Any = http.client.HTTPSConnection if tls else http.client.HTTPConnection

        class Connection(base):  # type: ignore[misc]
            def _send_output(self, message_body: Any = None, encode_chunked: bool = False) -> None:
                if type(message_body) is bytes and not encode_chunked:
                    self._buffer.extend((b"", message_body))
                    # (no local holds the joined bytes: the key is in them, and locals show in tracebacks)
                    self.send(b"\r\n".join(self._buffer))
                    del self._buffer[:]
                else:
                    super()._send_output(message_body, encode_chunked)

        _connection_classes[tls] = Connection
    return _connection_classes[tls]


def _is_loopback_address(address: str) -> bool:
    """Whether an IP address (as ``getpeername()`` gives it) is a loopback one, IPv4-mapped included."""
    import ipaddress

    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool(ip.is_loopback or (mapped is not None and mapped.is_loopback))


def _is_stale(conn: Any) -> bool:
    """True if an idle pooled connection can't be used: the server closed it, or sent bytes nobody asked for."""
    sock = conn.sock
    if sock is None:
        return True
    import select

    try:
        if hasattr(select, "poll"):  # select() fails for descriptors above 1024 (FD_SETSIZE)
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            readable = bool(poller.poll(0))
        else:  # Windows: no poll(), and its select() has no such limit
            readable = bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True
    if not readable:
        return False
    if not hasattr(sock, "pending"):  # plain TCP: readable while idle means EOF or unexpected bytes
        return True
    # TLS: readable may be only a record without application data (a session ticket, which TLS 1.3
    # servers send after the handshake). A non-blocking read tells: it consumes such a record and
    # wants more (not stale), or meets EOF / close_notify (b"") or data nobody asked for (stale).
    import ssl

    timeout = sock.gettimeout()
    try:
        sock.setblocking(False)
        sock.recv(1)
    except ssl.SSLWantReadError:
        return False
    except OSError:  # a reset, a TLS error
        return True
    finally:
        try:
            sock.settimeout(timeout)
        except OSError:
            pass
    return True


# The async driver (issue 11) reads HTTP/1.1 over asyncio streams, which have no HTTP parser, so the
# parser below does no I/O (the h11 way): the driver feeds it the blocks it reads and takes back the
# head and the body. It follows RFC 9112 (HTTP/1.1 message syntax), cited by section.
#
#   head ──(1xx: skip, parse the next head)
#     │
#     ├─ HEAD / 204 / 304 / Content-Length: 0 ───────────────────────────► done
#     ├─ Content-Length: N ───► "length" (count down N) ──────────────────► done
#     ├─ Transfer-Encoding: …, chunked
#     │      "size" ──► "data" ──► "crlf" ──► "size" … ──(size 0)──► "trailer" ──(empty line)──► done
#     └─ other Transfer-Encoding, or no length at all ───► "close" ──(EOF)──► done (not reusable)
_HEAD_LIMIT: Final = 64 * 1024  # bytes in one head (or one trailer section): a server can't make us buffer more
_HEAD_LINES: Final = 200  # field lines in one head (or trailer section)
_HEX_DIGITS: Final = b"0123456789abcdefABCDEF"
#: RFC 9110 §5.6.2 ``tchar``: what a field name may be made of.
_TCHARS: Final = b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


class _FramingError(Exception):
    """The response can't be read as HTTP/1.1 (malformed head, bad chunk size, conflicting lengths...).

    ``str()`` is a short reason, safe to show: it never quotes more than 40 bytes of what the server sent.
    """


def _quote(data: Union[bytes, bytearray]) -> str:
    """A short, printable excerpt of bytes the server sent, for an error message."""
    return repr(bytes(data[:40])) + ("…" if len(data) > 40 else "")


def _parse_head(block: bytes) -> tuple[int, int, dict[str, str]]:
    """Parse a response head (without its final empty line) into (minor version, status, fields)."""
    lines = block.split(b"\n")  # RFC 9112 §2.2: a recipient MAY take a bare LF as a line end
    if len(lines) - 1 > _HEAD_LINES:
        raise _FramingError(f"the response head has more than {_HEAD_LINES} header lines")
    status_line = lines[0][:-1] if lines[0].endswith(b"\r") else lines[0]
    # RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ]; some servers
    # leave out the space before an empty reason, which costs nothing to accept.
    code = status_line[9:12]
    if (
        not status_line.startswith(b"HTTP/1.")
        or not status_line[7:8].isdigit()
        or status_line[8:9] != b" "
        or len(code) != 3
        or not code.isdigit()
        or status_line[12:13] not in (b"", b" ")
        or code < b"100"
    ):
        raise _FramingError(f"not an HTTP/1.x status line: {_quote(status_line)}")
    fields: dict[str, str] = {}
    for line in lines[1:]:
        if line.endswith(b"\r"):
            line = line[:-1]
        if line[:1] in (b" ", b"\t"):
            # RFC 9112 §5.2: obs-fold is deprecated; a user agent may reject it (we do: we never need it)
            raise _FramingError(f"folded header line (obs-fold): {_quote(line)}")
        name, colon, value = line.partition(b":")
        # RFC 9112 §5.1: no whitespace between name and colon ("MUST reject"); names are tokens
        if not colon or not name or name.translate(None, _TCHARS):
            raise _FramingError(f"malformed header line: {_quote(line)}")
        value = value.strip(b" \t")  # RFC 9112 §5.1: OWS around the value is not part of it
        if b"\r" in value or b"\0" in value:  # RFC 9110 §5.5: CR and NUL are invalid in a value
            raise _FramingError(f"invalid character in header {_quote(name)}")
        key = name.decode("ascii").lower()
        text = value.decode("latin-1")  # RFC 9110 §5.5: obs-text; http.client decodes the same way
        # RFC 9110 §5.3: repeated fields combine as a comma-separated list, except Set-Cookie (§5.3 note)
        fields[key] = f"{fields[key]}, {text}" if key in fields and key != "set-cookie" else text
    return int(status_line[7:8]), int(code), fields


def _content_length(value: str) -> int:
    """The body length a Content-Length value gives (RFC 9110 §8.6), or ``_FramingError``."""
    # A list of identical values ("5, 5", from a repeated field) is allowed; anything else is an
    # invalid framing that a proxy in between may read differently (RFC 9112 §6.3 rule 5, smuggling).
    values = {item.strip(" \t") for item in value.split(",")}
    if len(values) != 1:
        raise _FramingError(f"conflicting Content-Length values: {value[:40]!r}")
    length = values.pop()
    # isascii(): str.isdigit() also accepts "²" and other non-ASCII digits; 18 digits: int() of a
    # huge string is slow (and refused above 4300 digits on 3.11+), and no body is that large.
    if not (length.isascii() and length.isdigit()) or len(length) > 18:
        raise _FramingError(f"invalid Content-Length: {value[:40]!r}")
    return int(length)


class _ResponseReader:
    """One HTTP/1.1 response (RFC 9112), fed bytes as they arrive; does no I/O.

    The driver calls ``feed(block)`` with each block it reads (``feed(b"")`` at EOF), ``head()`` until it
    is not None, then ``read()`` for body bytes until ``done`` (``missing`` tells a truncated body).

    Attributes:
        done: The whole body has been returned by ``read()``.
        reusable: ``done``, and the connection may carry another request.
        missing: After EOF mid-body: the bytes still expected (Content-Length), or -1 for an unfinished
            chunked body; else None.
    """

    def __init__(self, method: str) -> None:
        self.done = False
        self.missing: Optional[int] = None
        self._head_only = method.upper() == "HEAD"  # RFC 9112 §6.3 rule 1: no body, whatever the fields say
        self._buf = bytearray()
        self._scan = 0  # where to resume looking for the end of the head
        self._got_bytes = False
        self._eof = False
        self._head: Optional[tuple[int, dict[str, str]]] = None
        self._state = "head"
        self._left = 0  # body bytes still to come ("length") or of the current chunk ("data")
        self._keep_alive = False
        self._trailer_bytes = 0
        self._trailer_lines = 0
        self._error: Optional[_FramingError] = None

    @property
    def reusable(self) -> bool:
        """Whether the connection may carry another request: the body ended by its framing, the server
        allows it, and nothing arrived beyond the end of the response (stray bytes would be read as the
        start of the next response: the connection is poisoned)."""
        return self.done and self._keep_alive and not self._buf and not self._eof

    def feed(self, data: bytes) -> None:
        """Hand over bytes received from the server; ``b""`` means the server closed the connection."""
        if data:
            self._buf += data
            self._got_bytes = True
        else:
            self._eof = True

    def head(self) -> Optional[tuple[int, dict[str, str]]]:
        """``(status, headers)`` once the head is complete, else None (header names are lower-case).

        Raises:
            _FramingError: The head is malformed or too large, or the connection closed before its end.
        """
        if self._error is not None:
            raise self._error
        if self._head is None:
            try:
                self._parse()
            except _FramingError as err:
                self._error = err  # the stream can't be resynchronised: every later call fails the same way
                raise
        return self._head

    def _parse(self) -> None:
        buf = self._buf
        while True:
            # The head ends with an empty line (RFC 9112 §2.1), CRLF or bare LF (§2.2).
            lf_lf = buf.find(b"\n\n", self._scan)
            lf_crlf = buf.find(b"\n\r\n", self._scan)
            if lf_lf < 0 and lf_crlf < 0:
                if len(buf) > _HEAD_LIMIT:
                    raise _FramingError(f"the response head is larger than {_HEAD_LIMIT // 1024} KiB")
                if self._eof:
                    if not self._got_bytes:
                        raise _FramingError("no response")
                    raise _FramingError("the connection closed before the response head was complete")
                self._scan = max(0, len(buf) - 2)  # the end marker may straddle this block and the next
                return
            if lf_crlf < 0 or 0 <= lf_lf < lf_crlf:
                end, skip = lf_lf, 2
            else:
                end, skip = lf_crlf, 3
            if end > _HEAD_LIMIT:
                raise _FramingError(f"the response head is larger than {_HEAD_LIMIT // 1024} KiB")
            block = bytes(buf[:end])
            del buf[: end + skip]
            self._scan = 0
            minor, status, fields = _parse_head(block)
            if status < 200:
                # RFC 9110 §15.2: interim responses (100 Continue, 103 Early Hints) precede the final
                # one and have no body (RFC 9112 §6.3 rule 1). 101 would switch protocols, which we
                # never ask for, so the bytes after it are not HTTP/1.1.
                if status == 101:
                    raise _FramingError("101 Switching Protocols, but no protocol switch was asked for")
                continue
            self._frame(minor, status, fields)
            self._head = (status, fields)
            return

    def _frame(self, minor: int, status: int, fields: dict[str, str]) -> None:
        """Choose how the body is delimited (RFC 9112 §6.3) and whether the connection stays open (§9.3)."""
        tokens = {token.strip(" \t").lower() for token in fields.get("connection", "").split(",")}
        # §9.3: HTTP/1.1 is persistent unless "close"; HTTP/1.0 only with "keep-alive" (§C.2.2)
        keep_alive = "close" not in tokens and (minor != 0 or "keep-alive" in tokens)
        transfer = fields.get("transfer-encoding")
        length = fields.get("content-length")
        size = None if length is None else _content_length(length)  # §6.3 rule 5: invalid → error
        if self._head_only or status in (204, 304):  # §6.3 rules 1 and 2 (HEAD, 204, 304)
            self._state = "done"
        elif transfer is not None:
            codings = [coding.strip(" \t").lower() for coding in transfer.split(",")]
            if codings[-1] == "chunked":  # §6.3 rule 4: chunked last → chunked framing
                self._state = "size"
                # §6.3 rule 3: with Content-Length too, chunked wins, but the message "ought to be handled
                # as an error" (request smuggling / response splitting): never reuse that connection.
                keep_alive = keep_alive and size is None
            else:  # §6.3 rule 4: in a response, any other transfer coding → read until close
                self._state = "close"
                keep_alive = False
            # §6.1: Transfer-Encoding in an HTTP/1.0 message means faulty framing: close afterwards
            keep_alive = keep_alive and minor != 0
        elif size is not None:  # §6.3 rule 6
            self._state = "length" if size else "done"
            self._left = size
        else:  # §6.3 rule 8: no length → the body is everything up to the close
            self._state = "close"
            keep_alive = False
        self._keep_alive = keep_alive
        self.done = self._state == "done"

    def read(self) -> bytes:
        """The body bytes available so far, with the transfer coding removed (``b""`` if none yet).

        After EOF mid-body, returns what is left of the buffered body and sets ``missing``; the call
        after that raises.

        Raises:
            _FramingError: Malformed chunked framing, or the connection closed before the body's end.
        """
        if self._error is not None:
            raise self._error
        if self.done or self.head() is None:
            return b""
        if self.missing is not None:
            if self.missing >= 0:
                self._error = _FramingError(f"the connection closed with {self.missing} bytes of the body missing")
            else:
                self._error = _FramingError("the connection closed before the end of the chunked body")
            raise self._error
        buf = self._buf
        state = self._state
        if state == "length":
            take = min(self._left, len(buf))
            data = bytes(buf[:take])
            del buf[:take]
            self._left -= take
            self.done = not self._left
        elif state == "close":
            data = bytes(buf)
            buf.clear()
            self.done = self._eof  # §6.3 rule 8: the close is the end
        else:
            try:
                data = self._read_chunked()
            except _FramingError as err:
                self._error = err
                raise
        if self._eof and not self.done:
            self.missing = self._left if state == "length" else -1
        return data

    def _read_chunked(self) -> bytes:
        """Decode as many chunks as the buffer holds (RFC 9112 §7.1), joined once."""
        # One pass over the buffer with an index, one slice per chunk and one join: the async stream
        # benchmark sends each SSE event as its own chunk, so this loop is the hot path.
        buf = self._buf
        end = len(buf)
        pos = 0
        parts = []
        state = self._state
        left = self._left
        try:
            while True:
                if state == "data":
                    take = min(left, end - pos)
                    if not take:
                        break
                    parts.append(buf[pos : pos + take])
                    pos += take
                    left -= take
                    if left:
                        break
                    state = "crlf"
                if state == "crlf":  # §7.1: chunk-data CRLF (a bare LF accepted, §2.2)
                    if buf.startswith(b"\r\n", pos):
                        pos += 2
                    elif buf.startswith(b"\n", pos):
                        pos += 1
                    elif pos == end or (pos + 1 == end and buf[pos] == 13):
                        break  # the line end is still on its way
                    else:
                        raise _FramingError(f"missing CRLF after chunk data: {_quote(buf[pos : pos + 10])}")
                    state = "size"
                if state == "size":  # §7.1: chunk-size [ chunk-ext ] CRLF, chunk-ext = *( BWS ";" … )
                    nl = buf.find(b"\n", pos)
                    if nl < 0:
                        if end - pos > _HEAD_LIMIT:
                            raise _FramingError(f"chunk size line longer than {_HEAD_LIMIT // 1024} KiB")
                        break
                    semi = buf.find(b";", pos, nl)
                    digits = buf[pos : nl if semi < 0 else semi].rstrip(b" \t\r")
                    # strip() leaves nothing iff every byte is a hex digit (no "0x", "+", "_" or spaces,
                    # which int(…, 16) would take); 16 digits are far beyond any real chunk.
                    if not digits or len(digits) > 16 or digits.strip(_HEX_DIGITS):
                        raise _FramingError(f"bad chunk size line: {_quote(buf[pos:nl])}")
                    pos = nl + 1
                    left = int(digits, 16)
                    if not left:
                        state = "trailer"
                        continue
                    stop = pos + left
                    if buf.startswith(b"\r\n", stop):  # the usual case: the whole chunk is here
                        parts.append(buf[pos:stop])
                        pos = stop + 2
                        left = 0
                        continue
                    state = "data"
                    continue
                if state == "trailer":  # §7.1.2: trailer fields until an empty line; we use none of them
                    nl = buf.find(b"\n", pos)
                    if nl < 0:
                        if end - pos + self._trailer_bytes > _HEAD_LIMIT:
                            raise _FramingError(f"the trailer section is larger than {_HEAD_LIMIT // 1024} KiB")
                        break
                    if nl == pos or (nl == pos + 1 and buf[pos] == 13):
                        pos = nl + 1
                        state = "done"
                        self.done = True
                        break
                    self._trailer_bytes += nl + 1 - pos
                    self._trailer_lines += 1
                    pos = nl + 1
                    if self._trailer_bytes > _HEAD_LIMIT or self._trailer_lines > _HEAD_LINES:
                        raise _FramingError(
                            f"the trailer section exceeds {_HEAD_LIMIT // 1024} KiB or {_HEAD_LINES} lines"
                        )
                    continue
        finally:
            self._state = state
            self._left = left
            del buf[:pos]
        if not parts:
            return b""
        return bytes(parts[0]) if len(parts) == 1 else b"".join(parts)


# The async driver's transport: the same pool rules over asyncio streams, framing by _ResponseReader.


class _AsyncConn:
    """One asyncio stream connection, whose reads time out by aborting it (a timer per read, no task:
    ``asyncio.wait_for`` costs a task per call before 3.12)."""

    __slots__ = ("reader", "writer", "loop", "expired", "since")

    def __init__(self, reader: Any, writer: Any) -> None:
        import asyncio

        self.reader, self.writer, self.loop = reader, writer, asyncio.get_running_loop()
        self.expired = False
        self.since = 0.0  # when it went back to the pool

    def _expire(self) -> None:
        self.expired = True
        self.writer.transport.abort()  # the pending read ends at once

    async def recv(self, seconds: float, timeouts: _Timeouts) -> bytes:
        """Up to 64 KiB as soon as any arrives; ``b""`` at EOF. Raises ``APIConnectionError``."""
        timer = self.loop.call_later(seconds, self._expire) if seconds < _MAX_WAIT else None
        try:
            data: bytes = await self.reader.read(65536)
        except OSError as exc:
            if not self.expired:
                raise _conn_error(
                    f"the connection broke while reading the response ({_describe(exc)})", _SENT
                ) from None
            data = b""
        finally:
            if timer is not None:
                timer.cancel()
        if self.expired:
            if timeouts.deadline is not None and time.monotonic() >= timeouts.deadline - 0.001:
                raise _conn_error("the call's deadline passed", _SENT, timeout=True)
            raise _conn_error(f"no data from the server for {seconds:g} s", _SENT, timeout=True)
        return data

    def stale(self) -> bool:
        """The server closed it, or sent bytes nobody asked for, while it was idle in the pool (the loop
        has read whatever arrived: a TLS session ticket is handled below the stream, unseen here)."""
        reader = self.reader
        return bool(self.writer.is_closing() or reader.at_eof() or reader.exception() or reader._buffer)

    def close(self) -> None:
        if not self.loop.is_closed():
            self.writer.transport.abort()
            return
        # Its loop was closed by hand (asyncio.run shuts a loop's pools down first: see _LoopPool.start),
        # and asyncio can't close a transport without its loop. Close the socket here and mark the
        # transports closed, so their finalizers have nothing to warn about. (asyncio's own fields, the
        # same from 3.9 to 3.13, read defensively: a version without them only warns again.)
        transport = self.writer.transport
        for layer in (transport, getattr(getattr(transport, "_ssl_protocol", None), "_transport", None)):
            if layer is None:
                continue
            sock = getattr(layer, "_sock", None)
            if sock is not None:
                sock.close()
                layer._sock = None
            for flag in ("_closing", "_closed"):
                if hasattr(layer, flag):
                    setattr(layer, flag, True)


class _LoopPool:
    """The idle connections and the concurrency limit of one event loop."""

    def __init__(self, max_concurrency: Optional[int]) -> None:
        import asyncio

        self.idle: dict[tuple[str, str, int], list[_AsyncConn]] = {}
        self.limit: Any = asyncio.Semaphore(max_concurrency) if max_concurrency else None
        self.keeper: Any = None

    async def start(self) -> None:
        """Close this pool's connections when the loop shuts down: ``asyncio.run`` (and most runners)
        close every async generator of a loop before closing it, while it can still run callbacks."""

        async def keeper() -> AsyncGenerator[None, None]:
            try:
                yield
            finally:
                self.close()

        self.keeper = keeper()
        await self.keeper.__anext__()  # (the loop's firstiter hook now knows it)

    def checkout(self, key: tuple[str, str, int], limit: float) -> Optional[_AsyncConn]:
        idle = self.idle.get(key)
        while idle:
            conn = idle.pop()
            if time.monotonic() - conn.since <= limit and not conn.stale():
                return conn
            conn.close()
        return None

    def checkin(self, key: tuple[str, str, int], conn: _AsyncConn, most: int) -> None:
        idle = self.idle.setdefault(key, [])
        if len(idle) < most:
            conn.since = time.monotonic()
            idle.append(conn)
        else:
            conn.close()

    def close(self) -> None:
        conns = [c for idle in self.idle.values() for c in idle]
        self.idle.clear()
        for conn in conns:
            conn.close()


class _AsyncExchange:
    """One request on one checked-out asyncio connection: the response head read, the body not.

    A failed or cancelled read closes the connection, so no half-read response goes back to the pool.
    ``close`` (and ``abort``, its alias: there are no threads here) are plain calls.
    """

    def __init__(
        self, pool: _AsyncTransport, key: Any, conn: _AsyncConn, reader: _ResponseReader, timeouts: _Timeouts
    ) -> None:
        self.pool, self.key, self.conn, self.reader, self.timeouts = pool, key, conn, reader, timeouts
        status, self.headers = reader.head() or (0, {})  # (called once the head is complete)
        self.status: int = status
        self.gunzip = _gunzip_for(self.headers)
        self.body = b""
        self.timeout = timeouts.read
        self.open = True
        self.slot: Any = None  # the max_concurrency semaphore, held until the response is done

    def set_timeout(self, seconds: float) -> None:
        self.timeout = seconds

    async def read1(self) -> bytes:
        """The body as soon as any is available (gzip decoded); ``b""`` at the end (conn released)."""
        reader = self.reader
        try:
            while self.open:
                data = reader.read()
                if data:
                    if self.gunzip is None:
                        return data
                    data = self.gunzip.decode(data)
                    if data:
                        return data
                elif reader.done:
                    if self.gunzip is not None:
                        self.gunzip.end()
                    self.release()
                else:
                    reader.feed(await self.conn.recv(self.timeout, self.timeouts))
            return b""
        except _FramingError as err:
            self.close()
            missing = reader.missing
            if missing is not None and missing >= 0:  # in the sync driver's words (_Exchange._read_raw)
                raise _conn_error(
                    f"the connection closed with {missing} bytes of the response body missing", _SENT
                ) from None
            raise _conn_error(f"the connection broke while reading the response ({err})", _SENT) from None
        except BaseException:  # a timeout, a reset, a cancelled task
            self.close()
            raise

    async def read_all(self) -> bytes:
        parts: list[bytes] = []
        while True:
            if self.timeouts.deadline is not None:
                self.set_timeout(self.timeouts.left(self.timeouts.read))
            block = await self.read1()
            if not block:
                return b"".join(parts)
            parts.append(block)

    def release(self) -> None:
        """Back to the pool if the response ended by its framing and the server keeps the connection."""
        if self.open:
            self.open = False
            self._free()
            if self.reader.reusable:
                self.pool.checkin(self.key, self.conn)
            else:
                self.conn.close()

    def close(self) -> None:
        """Drop the connection: a half-read response must never go back to the pool."""
        if self.open:
            self.open = False
            self._free()
            self.conn.close()

    abort = close

    def _free(self) -> None:
        slot, self.slot = self.slot, None
        if slot is not None:
            slot.release()

    def __del__(self) -> None:  # a stream dropped unread: its slot and connection are given back
        if self.open:
            self.close()


class _AsyncTransport(_Transport):
    """The keep-alive pool of ``AsyncVeniceClient`` over asyncio streams, one per event loop: a
    connection never leaves the loop that made it. Idle ones are closed when their loop shuts down
    (see ``_LoopPool.start``), by ``close()``, or when found stale or idle too long; those of a loop
    closed by hand (without ``shutdown_asyncgens``) are closed without it when the client next meets a
    new loop, closes, or is collected (see ``_AsyncConn.close``). ``max_concurrency``
    bounds the calls in flight per loop (a stream holds its place until it ends or is closed).
    """

    def __init__(
        self, config: Config, environ: Optional[Mapping[str, str]], trust_env: bool, max_concurrency: Optional[int]
    ) -> None:
        super().__init__(config, environ, trust_env)
        import weakref

        self.loops: Any = weakref.WeakKeyDictionary()  # event loop -> _LoopPool
        self.max_concurrency = max_concurrency
        self.host_lines: dict[tuple[str, str, int], bytes] = {}

    def checkin(self, key: Any, conn: Any) -> None:
        pool = self.loops.get(conn.loop)
        if pool is None or conn.loop.is_closed():
            conn.close()
        else:  # (fan-out: as many idle connections as calls may be in flight, or a new one per call)
            pool.checkin(key, conn, max(self.MAX_IDLE, self.max_concurrency or 64))

    def close(self, dead_only: bool = False) -> None:
        for loop, pool in list(self.loops.items()):
            if loop.is_closed():
                pool.keeper = None  # (its loop is gone: nothing will close it, nor needs to)
                del self.loops[loop]
            elif dead_only:
                continue
            pool.close()

    def forget(self) -> None:
        self.loops.clear()  # (a forked child never uses its parent's connections)

    async def asend(self, req: _Request) -> _AsyncExchange:
        """Send one request and read the response head. Raises ``APIConnectionError``."""
        import asyncio

        loop = asyncio.get_running_loop()
        pool = self.loops.get(loop)
        if pool is None:
            self.close(dead_only=True)  # a new loop: drop what loops closed by hand left behind
            pool = self.loops[loop] = _LoopPool(self.max_concurrency)
            await pool.start()
        if pool.limit is not None:
            await pool.limit.acquire()
        try:
            ex = await self._asend(pool, req)
        except BaseException:
            if pool.limit is not None:
                pool.limit.release()
            raise
        ex.slot = pool.limit
        return ex

    async def _asend(self, pool: _LoopPool, req: _Request) -> _AsyncExchange:
        key = (req.scheme, req.host, req.port)
        proxy = self.proxy_for(req.scheme, req.host)
        data = self._encode(req, proxy)
        conn = pool.checkout(key, self.idle_limit)
        while True:
            reused = conn is not None
            if conn is None:
                conn = await self.aconnect(req, proxy)
            reader = _ResponseReader(req.method)
            try:
                conn.writer.write(data)
                while reader.head() is None:
                    reader.feed(await conn.recv(req.timeouts.left(req.timeouts.read), req.timeouts))
            except BaseException as exc:
                conn.close()
                unanswered = isinstance(exc, _FramingError) and str(exc) == "no response"
                if unanswered or (isinstance(exc, APIConnectionError) and not isinstance(exc, APITimeoutError)):
                    if reused and req.resend:
                        conn = None  # a pooled connection that died unseen: once more, on a fresh one
                        continue
                    if unanswered or "connection broke" in str(exc):
                        raise _conn_error(f"{req.host} closed the connection without answering", _SENT) from None
                if isinstance(exc, APITimeoutError) and "deadline" not in exc.message:
                    raise _conn_error(
                        f"no response from {req.host} within {req.timeouts.read:g} s", _SENT, timeout=True
                    ) from None
                if isinstance(exc, _FramingError):
                    raise _conn_error(f"the request to {req.host} failed ({exc})", _SENT) from None
                raise
            return _AsyncExchange(self, key, conn, reader, req.timeouts)

    def _encode(self, req: _Request, proxy: Optional[_Proxy]) -> bytes:
        """The request's bytes: request line, headers (checked once, pre-encoded) and body."""
        target, headers = req.target, req.headers
        if proxy is not None and req.scheme == "http":  # plain-http proxies take the absolute URL
            target = f"http://{req.host}:{req.port}{target}"
            if proxy.auth:
                headers = {**headers, "Proxy-Authorization": proxy.auth}
        head, has_host, has_encoding = self.head(headers)
        lines = [f"{req.method} {target} HTTP/1.1".encode("ascii")]
        if not has_host:
            lines.append(self._host_line(req.scheme, req.host, req.port))
        if not has_encoding:
            lines.append(b"Accept-Encoding: identity")
        lines.append(head)
        if req.content is not None or req.method in ("POST", "PUT", "PATCH"):
            lines.append(b"Content-Length: %d" % len(req.content or b""))
        lines.append(b"")
        lines.append(req.content or b"")
        return b"\r\n".join(lines)

    def _host_line(self, scheme: str, host: str, port: int) -> bytes:
        """``Host: name[:port]`` as http.client writes it (the name IDNA-encoded), made once per host."""
        key = (scheme, host, port)
        line = self.host_lines.get(key)
        if line is None:
            name = f"[{host}]" if ":" in host else host.encode("idna").decode("ascii")
            line = f"Host: {name}{'' if port == (443 if scheme == 'https' else 80) else f':{port}'}".encode("ascii")
            self.host_lines[key] = line
        return line

    async def aconnect(self, req: _Request, proxy: Optional[_Proxy]) -> _AsyncConn:
        import asyncio

        host, port = req.host, req.port
        where = f"the proxy {proxy.host}:{proxy.port}" if proxy else f"{host}:{port}"
        seconds = req.timeouts.left(req.timeouts.connect, _CONNECT)
        ctx = self.context() if req.scheme == "https" else None
        if proxy is not None and ctx is not None:
            opening: Any = self._tunnel(proxy, host, port, ctx)
        else:
            address = (proxy.host, proxy.port) if proxy else (host, port)
            opening = asyncio.open_connection(*address, ssl=ctx, server_hostname=host if ctx else None)
        try:
            reader, writer = await asyncio.wait_for(opening, seconds)
        except asyncio.TimeoutError:  # (before OSError: since 3.11 it is TimeoutError, an OSError)
            raise _conn_error(f"timed out connecting to {where} after {seconds:g} s", _CONNECT, timeout=True) from None
        except OSError as exc:
            raise _connect_failed(exc, where, host, port, proxy) from None
        conn = _AsyncConn(reader, writer)
        if req.scheme == "http" and not _is_loopback_address(self.peer(writer)):
            conn.close()  # (see _Transport.connect)
            raise ConfigError(
                f"{host} resolved to a non-loopback address; refusing to send the API key over plain http://. "
                "Use https://, or a loopback address such as 127.0.0.1"
            )
        self.connections_opened += 1
        return conn

    @staticmethod
    async def _tunnel(proxy: _Proxy, host: str, port: int, ctx: ssl.SSLContext) -> Any:
        """CONNECT through an http proxy on a plain socket, then TLS over it: asyncio streams have no
        ``start_tls`` before 3.11, but ``open_connection(sock=…, ssl=…)`` works on every version."""
        import asyncio
        import socket

        loop = asyncio.get_running_loop()
        try:  # a numeric address needs no resolver (loop.getaddrinfo would start the loop's executor thread)
            infos = socket.getaddrinfo(proxy.host, proxy.port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
        except socket.gaierror:  # a host name: the loop's resolver, as open_connection does
            infos = await loop.getaddrinfo(proxy.host, proxy.port, type=socket.SOCK_STREAM)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            await loop.sock_connect(sock, address)
            auth = f"Proxy-Authorization: {proxy.auth}\r\n" if proxy.auth else ""
            await loop.sock_sendall(
                sock, f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n{auth}\r\n".encode()
            )
            reply = b""
            while b"\r\n\r\n" not in reply:  # (the proxy sends nothing after its head until TLS begins)
                data = await loop.sock_recv(sock, 4096)
                if not data or len(reply) > 65536:
                    raise OSError("the proxy closed the connection while answering CONNECT")
                reply += data
            status = reply.split(b"\r\n", 1)[0].split(None, 2)
            if len(status) < 2 or status[1] != b"200":
                text = b" ".join(status[1:]).decode("latin-1", "replace")
                raise OSError(f"Tunnel connection failed: {text}")
            return await asyncio.open_connection(sock=sock, ssl=ctx, server_hostname=host)
        except BaseException:
            sock.close()
            raise


###############################################################################
# Retry policy ################################################################
###############################################################################


@_record(frozen=True)
class RetryPolicy:
    """When and how long to wait before trying a failed request again. A value: share it freely.

    What is retried: the statuses in ``retry_statuses``; connection failures before anything was sent
    (refused, DNS, TLS handshake, connect timeout); and, for requests that are *safe to re-send* (GET
    and HEAD, or any request with an ``Idempotency-Key`` header), failures after sending too. What is
    not: any other 4xx (Venice counts failures and blocks a key that makes too many, see
    ``failure_budget``), and a POST whose bytes may have reached Venice before the connection broke,
    went silent or was closed without an answer: it may have been processed and billed, so it is
    never sent again unless ``retry_unsafe=True``. A stream is never retried once its body began.

    Attributes:
        max_retries: Retries after the first attempt; 0 turns retrying off.
        backoff_base, backoff_max: Exponential backoff ``min(max, base * 2**attempt)`` seconds,
            with full jitter (a uniformly random part of it).
        retry_statuses: HTTP statuses worth retrying.
        max_retry_after: Longest server-requested wait (``Retry-After``) we sleep through; a longer
            one raises ``RateLimitError`` at once, with ``.retry_after`` set.
        retry_read_timeouts: Deprecated name of ``retry_unsafe`` (0.1); setting it sets that.
        on_retry: Called as ``on_retry(attempt, error, delay)`` before each retry's sleep.
        failure_budget, failure_window: Venice blocks a caller for 30 s after about 20 failed requests
            in 30 s (``../shared/venice-api/NOTES.md`` §5). Once this client has seen ``failure_budget``
            failures within ``failure_window`` seconds it stops retrying and says why.
        retry_unsafe: Also re-send a request that is not safe to re-send (a POST without an
            ``Idempotency-Key``) after it may have reached Venice: a timeout, a reset, a hang-up. A
            duplicate may be processed and billed twice; only for calls where that is acceptable.
    """

    max_retries: int = DEFAULT_MAX_RETRIES
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    retry_statuses: frozenset[int] = frozenset({408, 409, 429, 500, 502, 503, 504})
    max_retry_after: float = 60.0
    retry_read_timeouts: bool = False
    on_retry: Optional[Callable[[int, VeniceError, float], None]] = None
    failure_budget: int = 15
    failure_window: float = 30.0
    retry_unsafe: bool = False

    def __post_init__(self) -> None:
        if self.retry_read_timeouts and not self.retry_unsafe:
            import warnings

            warnings.warn(
                "RetryPolicy(retry_read_timeouts=True) is deprecated: use retry_unsafe=True", DeprecationWarning, 3
            )
            object.__setattr__(self, "retry_unsafe", True)
        for name in ("max_retries", "failure_budget"):
            value = getattr(self, name)
            if not _is_number(value, whole=True) or value < 0:
                raise ConfigError(f"RetryPolicy {name} must be a whole number >= 0, got {value!r}")
        for name in ("backoff_base", "backoff_max", "max_retry_after", "failure_window"):
            value = getattr(self, name)
            if not _is_number(value) or not value >= 0:
                raise ConfigError(f"RetryPolicy {name} must be a number of seconds >= 0, got {value!r}")


def _retry_after(headers: Mapping[str, str], now: float) -> Optional[float]:
    """Seconds asked for by ``retry-after-ms``, or ``Retry-After`` as seconds or an HTTP date."""
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime  # ~10 ms to import: only for the date form

    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError, IndexError):
        return None


def retry_delay(
    policy: RetryPolicy, attempt: int, headers: Mapping[str, str], now: float, rand: float
) -> Optional[float]:
    """Seconds to wait before retry number ``attempt + 1``, or ``None``: don't retry.

    Args:
        policy: The retry policy.
        attempt: Retries already made (0 before the first retry).
        headers: The failed response's headers, lower-case names (``{}`` for connection errors).
        now: Current wall-clock time (for ``Retry-After`` dates).
        rand: A number in [0, 1) for the jitter; 0 gives the full backoff.
    Returns:
        The server's ``Retry-After`` when given (``None`` if above ``max_retry_after``), else the
        jittered exponential backoff.
    """
    asked = _retry_after(headers, now)
    if asked is not None:
        return asked if asked <= policy.max_retry_after else None
    return float(min(policy.backoff_max, policy.backoff_base * 2.0 ** min(attempt, 60)) * (1.0 - rand))


###############################################################################
# Streaming ###################################################################
###############################################################################


class _SSEDecoder:
    """Incremental parser for ``text/event-stream`` (WHATWG HTML, "interpreting an event stream").

    Works on bytes: line ends and field names are ASCII, so splitting before decoding UTF-8 gives the
    same result as decoding first, and ``json`` can take each event's data in one piece. The hot path
    splits a block on blank lines and takes an event made of one ``data: …`` line whole; anything
    else (CR line ends, several fields, comments) goes through the line-by-line rules. An
    incomplete line is kept as a list of pieces and joined once, so a 1 MB line stays linear.
    """

    __slots__ = ("_head", "_parts", "_skip_lf", "_data", "_event", "_retry", "last_id")

    def __init__(self) -> None:
        self._head: Optional[bytes] = b""  # the stream's first bytes until the BOM is settled
        self._parts: list[bytes] = []  # pieces of the current incomplete line
        self._skip_lf = False  # the last block ended in CR: an LF opening the next one is its pair
        self._data: list[bytes] = []
        self._event: Optional[bytes] = None
        self._retry: Optional[int] = None
        self.last_id: Optional[str] = None

    def feed(self, block: bytes) -> list[tuple[str, str, Optional[str], Optional[int]]]:
        """Parse one block; return the events it completed as ``(event, data, id, retry)``."""
        if self._head is not None:
            block = self._head + block
            if len(block) < 3 and _BOM.startswith(block):
                self._head = block
                return []
            self._head = None
            if block[:3] == _BOM:
                block = block[3:]
        if self._skip_lf and block:
            self._skip_lf = False
            if block[:1] == b"\n":
                block = block[1:]
        if b"\r" in block:
            self._skip_lf = block[-1:] == b"\r"
            block = block.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if b"\n" not in block:
            if block:
                self._parts.append(block)
            return []
        if self._parts:
            self._parts.append(block)
            block = b"".join(self._parts)
            self._parts = []
        out: list[tuple[str, str, Optional[str], Optional[int]]] = []
        pieces = block.split(b"\n\n")
        tail = pieces.pop()
        for piece in pieces:  # each piece is followed by a blank line: a complete event
            if piece[:6] == b"data: " and not self._data and self._event is None and b"\n" not in piece:
                if self._retry is None:
                    out.append(("message", piece[6:].decode("utf-8", "replace"), self.last_id, None))
                    continue
            for line in piece.split(b"\n"):
                self._line(line, out)
            self._dispatch(out)
        if tail:
            lines = tail.split(b"\n")
            last = lines.pop()
            for line in lines:
                self._line(line, out)
            if last:
                self._parts.append(last)
        return out

    def _line(self, line: bytes, out: list[tuple[str, str, Optional[str], Optional[int]]]) -> None:
        if not line:
            self._dispatch(out)
            return
        if line[:1] == b":":
            return  # comment (keep-alive pings)
        name, colon, value = line.partition(b":")
        if colon and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._event = value
        elif name == b"id":
            if b"\0" not in value:
                self.last_id = value.decode("utf-8", "replace")
        elif name == b"retry":
            if value.isdigit():  # ASCII digits only, as the spec says
                self._retry = int(value) if len(value) < 20 else None  # (int() refuses 4300+ digits)

    def _dispatch(self, out: list[tuple[str, str, Optional[str], Optional[int]]]) -> None:
        data, etype, retry = self._data, self._event, self._retry
        self._data, self._event, self._retry = [], None, None
        if data:
            name = etype.decode("utf-8", "replace") if etype else "message"
            out.append((name, b"\n".join(data).decode("utf-8", "replace"), self.last_id, retry))


def iter_sse(chunks: Union[Iterable[bytes], bytes, str]) -> Iterator[ServerSentEvent]:
    """Parse a ``text/event-stream`` given as bytes blocks cut anywhere.

    Follows the WHATWG HTML rules exactly: CR, LF and CRLF line ends (also split across blocks), a
    leading BOM, ``:`` comments, multi-line ``data``, one optional space after the colon, fields
    without a colon, no dispatch for events without data, ``retry`` only when all ASCII digits,
    ``id`` containing NUL ignored, and an unterminated final event discarded. Each event is yielded
    as soon as the blank line that ends it has been read.

    Args:
        chunks: Blocks of the body as they arrive (a socket, a file, a list), or the whole body as
            one ``bytes`` or ``str``. Text blocks are encoded as UTF-8.
    Yields:
        ``ServerSentEvent`` objects; ``id`` is the last event id so far (it persists).
    """
    decoder = _SSEDecoder()
    blocks: Iterable[Any] = [chunks] if isinstance(chunks, (bytes, bytearray, str)) else chunks
    for block in blocks:
        if isinstance(block, str):
            block = block.encode("utf-8", "surrogatepass")
        elif not isinstance(block, bytes):
            block = bytes(block)  # bytearray, memoryview
        for event, data, last_id, retry in decoder.feed(block):
            yield ServerSentEvent(event, data, last_id, retry)


class _ThinkSplitter:
    """Separates a leading ``<think>…</think>`` block from streamed content, a delta at a time."""

    __slots__ = ("state", "buf")

    def __init__(self) -> None:
        self.state = 0  # 0: not sure yet, 1: inside <think>, 2: plain text from here on
        self.buf = ""

    def feed(self, piece: str) -> tuple[Optional[str], Optional[str]]:
        """Return ``(reasoning, text)`` parts released by this piece."""
        buf = self.buf + piece
        if self.state == 0:
            head = buf.lstrip()
            if head.startswith("<think>"):
                self.state, buf = 1, head[7:]
            elif not head or "<think>".startswith(head):
                self.buf = buf
                return None, None
            else:
                self.state, self.buf = 2, ""
                return None, buf
        end = buf.find("</think>")
        if end >= 0:
            self.state, self.buf = 2, ""
            return buf[:end], buf[end + 8 :].lstrip() or None
        keep = next((n for n in range(min(7, len(buf)), 0, -1) if "</think>".startswith(buf[-n:])), 0)
        self.buf = buf[len(buf) - keep :]
        return buf[: len(buf) - keep] or None, None

    def flush(self) -> tuple[Optional[str], Optional[str]]:
        buf, self.buf = self.buf, ""
        if not buf:
            return None, None
        return (buf, None) if self.state == 1 else (None, buf)


class _ToolCallAssembler:
    """Merges streamed tool-call deltas into whole calls.

    By ``index``, except that a delta bringing a new ``id`` starts a new call even at an index
    already used (Venice's docs: parallel calls may share an index; only ``id`` is unique). A delta
    without ``index`` continues the latest call. Arguments sent as an object are re-encoded.
    """

    __slots__ = ("calls", "by_index")

    def __init__(self) -> None:
        self.calls: list[list[Any]] = []  # [id, type, name, argument pieces]
        self.by_index: dict[Any, list[Any]] = {}

    def add(self, deltas: Any) -> None:
        for delta in deltas if isinstance(deltas, list) else ():
            if not isinstance(delta, dict):
                continue
            index, call_id = delta.get("index"), delta.get("id")
            fn = delta.get("function") or {}
            cur = self.by_index.get(index) if index is not None else (self.calls[-1] if self.calls else None)
            if cur is None or (call_id and cur[0] and call_id != cur[0]):
                cur = [call_id, delta.get("type") or "function", "", []]
                self.calls.append(cur)
                self.by_index[index] = cur
            elif call_id and not cur[0]:
                cur[0] = call_id
            name = fn.get("name")
            if name and not cur[2]:
                cur[2] = name
            args = fn.get("arguments")
            if isinstance(args, str):
                cur[3].append(args)
            elif args is not None:
                cur[3].append(json.dumps(args))

    def result(self) -> list[ToolCall]:
        return [ToolCall(id=c[0], name=c[2], arguments="".join(c[3]), type=c[1]) for c in self.calls]


_first, _second = itemgetter(0), itemgetter(1)


class _StreamState:
    """The running result of a ``ChatStream`` and the generator that reads it. Kept apart from
    ``ChatStream`` so that the generator does not refer back to the stream: a dropped stream is then
    freed (and its connection closed) at once, not later by the cycle collector."""

    def __init__(self, exchange: Union[_Exchange, _AsyncExchange], meta: ResponseMeta, idle_timeout: float) -> None:
        self.meta = meta
        self._ex: Any = exchange  # an _Exchange, or an _AsyncExchange whose read1() is awaited
        self._idle = idle_timeout
        self._texts: dict[int, list[str]] = {}
        self._reasonings: dict[int, list[str]] = {}
        self._thinks: dict[int, list[str]] = {}
        self._splitters: dict[int, _ThinkSplitter] = {}
        self._plain: set[int] = set()  # choices known to have no <think> block
        self._tools: dict[int, _ToolCallAssembler] = {}
        self._finish: dict[int, Optional[str]] = {}
        self._extras: dict[int, dict[str, Any]] = {}
        self._head: dict[str, Any] = {}
        self._top: dict[str, Any] = {}
        self.usage: Optional[CompletionUsage] = None
        self.done = False  # [DONE] seen, or every choice finished before the end
        self.objects = False  # decode chunks into AttrDicts (for chunks())
        self.stopped = False  # close() from another thread while this one reads: end quietly
        self._decoder = _SSEDecoder()
        self._plain_json: Any = json.JSONDecoder()  # one decoder per stream
        self._text0: Optional[list[str]] = None  # the first choice's text, once it is known to be plain
        self._deadline = exchange.timeouts if exchange.timeouts.deadline is not None else None
        self._last = time.monotonic()  # when the last data event arrived
        self._want = idle_timeout  # the read timeout the next read needs
        self._timeout = idle_timeout  # the one set now (the request's read timeout)
        self._quiet = False  # only pings since the last data event
        self._pending: Optional[StreamError] = None  # an in-band error, raised once the deltas before it are out

    @property
    def text(self) -> str:
        return "".join(self._texts.get(0, ()))

    # The stream's reading loop exists twice, as a generator here (ChatStream) and as an async generator
    # (AsyncChatStream), each a few lines: what a block means is decided once, in _step, with no I/O.

    def _run(self) -> Generator[list[tuple[dict[str, Any], Optional[str]]], None, None]:
        """Yields each block's list of pairs (flattened by ChatStream in C: no Python frame per delta)."""
        try:
            while True:
                self._arm()
                out = self._step(self._ex.read1())
                if out is None:
                    return
                yield out
        except Exception as exc:
            err = self._failure(exc)
            if err is not None:
                raise err from None
        finally:
            self._ex.close()  # (nothing to do once the body ended: the connection went back to the pool)

    async def _arun(self, which: int) -> AsyncGenerator[Any, None]:
        """``_run`` for AsyncChatStream: yields element ``which`` of each pair (0 chunk, 1 text), if any."""
        try:
            while True:
                self._arm()
                out = self._step(await self._ex.read1())
                if out is None:
                    return
                for item in out:
                    if item[which]:
                        yield item[which]
        except Exception as exc:
            err = self._failure(exc)
            if err is not None:
                raise err from None
        finally:
            self._ex.close()

    def _arm(self) -> None:
        """Before a read: set its timeout if it changed (the idle time left after pings, capped by the
        call's deadline; at most 1 s while reading what follows [DONE])."""
        if self._pending is not None:
            raise self._pending
        want = min(1.0, self._idle) if self.done else self._want
        if self._deadline is not None:  # (max: pings may have used up the idle time; that read then times out)
            left = self._idle - (time.monotonic() - self._last)
            want = self._deadline.left(max(left, 0.001) if not self.done else want)
        if want != self._timeout:
            self._ex.set_timeout(want)
            self._timeout = want

    def _step(self, block: bytes) -> Optional[list[tuple[dict[str, Any], Optional[str]]]]:
        """Fold one block of the body in (no I/O): the (chunk, new first-choice text) pairs it completed,
        or ``None`` once the body has ended. A stream that ends before it is complete raises."""
        if not block:
            if not self.done and not self.stopped and not (self._finish and all(self._finish.values())):
                raise StreamError(
                    "the stream ended before the answer was complete (no [DONE] and no finish_reason)",
                    hint="the text so far is in .partial",
                )
            self.done = True  # ([DONE], or every choice finished: complete, only trailing usage missing)
            return None
        if self.done:
            return []  # after [DONE]: read on only so that the connection can be reused
        events = self._decoder.feed(block)
        now = time.monotonic()
        if not events:  # only keep-alive pings: they do not reset the idle timeout
            left = self._idle - (now - self._last)
            if left <= 0:
                raise _conn_error(f"no data event for {self._idle:g} s (only keep-alives)", _SENT, timeout=True)
            self._want, self._quiet = left, True
            return []
        self._last, self._want, self._quiet = now, self._idle, False
        out: list[tuple[dict[str, Any], Optional[str]]] = []
        append = out.append
        text0 = self._text0
        decoder: Any = _json_objects if self.objects else self._plain_json  # chunks() wants AttrDicts
        scan = decoder.scan_once
        for event, data, _id, _retry in events:
            if data == "[DONE]":
                self.done = True
                return out
            try:
                obj, end = scan(data, 0)  # the C scanner, without json.loads' per-call checks
                if end != len(data):
                    raise ValueError
            except (StopIteration, ValueError):
                obj = self._lenient(data, event)
                if obj is None:
                    continue
            if not isinstance(obj, dict):
                continue
            if event == "error" or obj.get("error") is not None:  # ("error": null is no error)
                if not out:
                    raise self._stream_error(obj)
                self._pending = self._stream_error(obj)  # after the deltas before it (raised by _arm)
                return out
            # Fast path: the usual chunk, one choice with a plain-text delta and nothing else.
            choices = obj.get("choices")
            if text0 is not None and len(obj) == 5 and choices and len(choices) == 1:
                choice = choices[0]
                delta = choice.get("delta")
                if delta is not None and len(delta) == 1 and choice.get("finish_reason") is None:
                    content = delta.get("content")
                    if type(content) is str and choice.get("index", 0) == 0:
                        text0.append(content)
                        append((obj, content))
                        continue
            append((obj, self._absorb(obj)))
            if text0 is None and 0 in self._plain:
                text0 = self._text0 = self._texts[0]
        return out

    def _failure(self, exc: Exception) -> Optional[Exception]:
        """What a failure while streaming raises, the text so far in ``.partial`` (``None``: end quietly,
        for a stream closed from another thread, or a read after [DONE] that failed)."""
        if self.stopped or self.done:
            return None
        if isinstance(exc, VeniceError):
            if isinstance(exc, APITimeoutError) and self._quiet and "deadline" not in exc.message:
                exc.message = f"no data event for {self._idle:g} s (only keep-alives)"
            exc.partial = self.text
            exc.request_id = exc.request_id or self.meta.request_id
            return exc
        if isinstance(exc, (TypeError, AttributeError, KeyError, IndexError, ValueError, RecursionError)):
            # a chunk of a shape no API sends (a number for `usage`, JSON nested thousands deep…)
            return StreamError(
                f"the stream sent a chunk of an unexpected shape ({type(exc).__name__}: {exc})",
                partial=self.text,
                request_id=self.meta.request_id,
            )
        return exc

    def _lenient(self, data: str, event: str) -> Any:
        """Data that is not one JSON value: whitespace-padded JSON, an error text, or noise."""
        if not data.strip():
            return None
        try:
            return json.loads(data)
        except ValueError:
            pass
        if event == "error":
            return {"error": data}
        if data.lstrip()[:1] in ("{", "["):
            raise StreamError(f"the stream sent malformed JSON: {_excerpt(data, 120)}")
        return None  # not JSON and not an error: ignored, as for events without data

    def _stream_error(self, obj: Any) -> StreamError:
        err = obj.get("error") if isinstance(obj, dict) else obj
        code = None
        if isinstance(err, dict):
            message = str(err.get("message") or err.get("type") or err)
            code = err.get("code") or err.get("type")
        else:
            message = str(err)
            if isinstance(obj, dict):
                code = obj.get("code")
        return StreamError(message, code=str(code) if code is not None else None, hint="the answer is incomplete")

    def _absorb(self, chunk: dict[str, Any]) -> Optional[str]:
        """Fold one chunk into the running result; return the new text of the first choice."""
        if not self._head:
            for key in ("id", "object", "created", "model", "system_fingerprint"):
                if key in chunk:
                    self._head[key] = chunk[key]
        for key, value in chunk.items():
            if key == "usage":
                if value:
                    self.usage = CompletionUsage(value)
            elif key not in ("choices", "id", "object", "created", "model", "system_fingerprint"):
                self._top[key] = value  # cost, venice_parameters (search results), …
        out = None
        for choice in chunk.get("choices") or ():
            index = choice.get("index", 0)
            if type(index) is not int:
                index = 0  # (an index of null or "0" from a lax server: the first choice)
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if content and type(content) is not str:  # content parts, from some OpenAI-style servers
                content = _content_text(content)
            if content:
                if index in self._plain:
                    text: Optional[str] = content
                else:
                    splitter = self._splitters.setdefault(index, _ThinkSplitter())
                    think, text = splitter.feed(content)
                    if think:
                        self._thinks.setdefault(index, []).append(think)
                    if splitter.state == 2:
                        self._plain.add(index)
                if text:
                    self._texts.setdefault(index, []).append(text)
                    if index == 0:
                        out = text
            for key, value in delta.items():
                if key in ("content", "role") or value is None:
                    continue
                if key == "reasoning_content":
                    if isinstance(value, str):
                        self._reasonings.setdefault(index, []).append(value)
                elif key == "tool_calls":
                    self._tools.setdefault(index, _ToolCallAssembler()).add(value)
                else:
                    extras = self._extras.setdefault(index, {})
                    if isinstance(value, list):
                        extras.setdefault(key, []).extend(value)  # reasoning_details: pass back whole
                    elif isinstance(value, str) and isinstance(extras.get(key), str):
                        extras[key] += value
                    else:
                        extras[key] = value
            if choice.get("finish_reason") is not None or index not in self._finish:
                self._finish[index] = choice.get("finish_reason")
        return out

    def _flush(self) -> None:
        for index, splitter in self._splitters.items():
            think, text = splitter.flush()
            if think:
                self._thinks.setdefault(index, []).append(think)
            if text:
                self._texts.setdefault(index, []).append(text)


class _StreamResult:
    """What a stream has assembled so far; ``ChatStream`` and ``AsyncChatStream`` read it the same way."""

    meta: ResponseMeta
    _s: _StreamState

    @property
    def usage(self) -> Optional[CompletionUsage]:
        """Token counts (from Venice's final usage chunk), or ``None`` until it arrives."""
        return self._s.usage

    @property
    def done(self) -> bool:
        """True once the stream ended completely (``[DONE]``, or every choice finished)."""
        return self._s.done

    # -- the assembled result ------------------------------------------------------------------

    @property
    def text(self) -> str:
        """The first choice's text so far (without a leading ``<think>`` block)."""
        return "".join(self._s._texts.get(0, ()))

    @property
    def reasoning(self) -> Optional[str]:
        """The first choice's reasoning so far (``reasoning_content`` or a ``<think>`` block)."""
        if 0 in self._s._reasonings:
            return "".join(self._s._reasonings[0])
        if 0 in self._s._thinks:
            return "".join(self._s._thinks[0]).strip()
        return None

    @property
    def tool_calls(self) -> list[ToolCall]:
        """The first choice's tool calls, assembled from the deltas."""
        tools = self._s._tools.get(0)
        return tools.result() if tools else []

    @property
    def finish_reason(self) -> Optional[str]:
        """The first choice's ``finish_reason`` (``None`` until it arrives)."""
        return self._s._finish.get(0)

    @property
    def partial(self) -> str:
        """Same as ``text``: what has been received so far."""
        return self.text

    def _assemble(self) -> ChatResponse:
        """The answer so far as a ``ChatResponse``."""
        self._s._flush()
        choices = []
        for index in sorted(set(self._s._finish) | set(self._s._texts) | set(self._s._tools)):
            message: dict[str, Any] = {"role": "assistant", "content": "".join(self._s._texts.get(index, ()))}
            if index in self._s._reasonings:
                message["reasoning_content"] = "".join(self._s._reasonings[index])
            elif index in self._s._thinks:
                message["reasoning_content"] = "".join(self._s._thinks[index]).strip()
            if index in self._s._tools:
                message["tool_calls"] = [c.to_dict() for c in self._s._tools[index].result()]
            message.update(self._s._extras.get(index, {}))
            choices.append({"index": index, "message": message, "finish_reason": self._s._finish.get(index)})
        body = {**self._s._head, "object": "chat.completion", "choices": choices, **self._s._top}
        if self._s.usage is not None:
            body["usage"] = self._s.usage
        result = ChatResponse(body)
        result.meta = self.meta
        return result

    def __repr__(self) -> str:
        return f"<{type(self).__name__} model={self._s._head.get('model')!r} done={self.done} chars={len(self.text)}>"


class _Closing:
    """``close()``, the end of ``with``, and closing a dropped stream, for the sync streams."""

    _blocks: Generator[Any, None, None]
    if TYPE_CHECKING:  # (read only here: each stream holds its own kind of state)

        @property
        def _s(self) -> _StreamState: ...

    def close(self) -> None:
        """Stop reading and release the connection (closed, unless the stream had ended).

        Safe from another thread while one iterates (a "stop" button): that loop then ends quietly.
        """
        try:
            self._blocks.close()
        except ValueError:  # "generator already executing": another thread is reading
            self._s.stopped = True
            self._s._ex.abort()  # wakes its blocked read; it closes the connection itself
            return
        self._s._ex.close()  # (also after its end event with the body's end unread; a no-op once pooled)

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


class ChatStream(_StreamResult, _Closing):
    """A streamed chat completion. Iterate it for the text as it arrives::

        with client.chat.complete(messages, model=m, stream=True) as stream:
            for text in stream:
                print(text, end="", flush=True)
        print(stream.usage, stream.finish_reason)

    After the loop it holds the assembled result: ``text``, ``reasoning``, ``tool_calls``,
    ``finish_reason``, ``usage``, ``meta`` and ``response`` (a ``ChatResponse``). ``chunks()``
    iterates the raw chunk objects instead of text. Iteration happens once.

    Timeouts: ``timeout`` is the longest wait for an event that carries data; keep-alive comments
    (``: ping``) do not reset it, so a server that only pings cannot hold the call open forever.
    A ``deadline`` bounds the whole call, stream included, whatever arrives.

    Failures keep what was received in ``.partial``: an in-band error event or an end before
    ``[DONE]`` (unless every choice had finished) raises ``StreamError``, a reset raises
    ``APIConnectionError``, silence raises ``APITimeoutError``. A truncated answer never looks whole.

    Closing (``close()``, leaving the ``with`` block, or dropping an abandoned stream) closes the
    connection rather than returning a half-read response to the pool.
    """

    def __init__(self, exchange: _Exchange, meta: ResponseMeta, idle_timeout: float) -> None:
        self.meta = meta
        self._s = _StreamState(exchange, meta, idle_timeout)
        self._blocks = self._s._run()
        self._gen: Iterator[tuple[dict[str, Any], Optional[str]]] = chain.from_iterable(self._blocks)

    # -- iteration -----------------------------------------------------------------------------

    def __iter__(self) -> Iterator[str]:
        # C-level iteration (no Python frame per delta). The empty islice only keeps this stream
        # alive while its iterator is in use, so a temporary stream is not closed under the loop.
        return chain(filter(None, map(_second, self._gen)), islice((self,), 0))

    def parts(self) -> Iterator[tuple[str, str]]:
        """Iterate ``("reasoning", text)`` and ``("text", text)`` pieces of the first choice as they
        arrive (reasoning from ``reasoning_content`` or a ``<think>`` block)."""
        seen = 0
        for _chunk, text in self._gen:
            reasoning = self._s._reasonings.get(0) or self._s._thinks.get(0) or ()
            while seen < len(reasoning):
                yield "reasoning", reasoning[seen]
                seen += 1
            if text:
                yield "text", text

    def chunks(self) -> Iterator[ChatCompletionChunk]:
        """Iterate the raw ``chat.completion.chunk`` objects (``choices: []`` usage chunk included)."""
        self._s.objects = True  # from now on chunks are decoded straight into AttrDicts
        return chain(map(_first, self._gen), islice((self,), 0))  # see __iter__

    @property
    def response(self) -> ChatResponse:
        """The whole answer as a ``ChatResponse`` (reads the rest of the stream first)."""
        for _ in self._gen:
            pass
        return self._assemble()

    def __enter__(self) -> ChatStream:
        return self


class _AsyncClosing:
    """``aclose()`` (also as ``close``) and the end of ``async with``, for the async streams."""

    _gen: Optional[AsyncGenerator[Any, None]]
    if TYPE_CHECKING:  # (read only here: each stream holds its own kind of state)

        @property
        def _s(self) -> _StreamState: ...

    async def aclose(self) -> None:
        """Stop reading and release the connection (closed, unless the stream had ended)."""
        if self._gen is not None:
            await self._gen.aclose()
        # Also when the stream's end event was seen: the body's end may be unread (the exchange then still
        # holds its connection and its max_concurrency place). A no-op once it was released or closed.
        self._s._ex.close()

    close = aclose

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class AsyncChatStream(_StreamResult, _AsyncClosing):
    """A streamed chat completion from ``AsyncVeniceClient``: ``async for text in stream``, or
    ``async for chunk in stream.chunks()``; then ``text``, ``reasoning``, ``tool_calls``,
    ``finish_reason``, ``usage``, ``meta`` and ``response`` as for ``ChatStream``.

    ``async with stream:`` or ``await stream.aclose()`` closes it. Cancelling the task that iterates
    closes the connection at once and lets ``CancelledError`` through. Failures are those of
    ``ChatStream``, with what was received in ``.partial``.
    """

    def __init__(self, exchange: _AsyncExchange, meta: ResponseMeta, idle_timeout: float) -> None:
        self.meta = meta
        self._s = _StreamState(exchange, meta, idle_timeout)
        self._gen: Optional[AsyncGenerator[Any, None]] = None

    def _iterate(self, which: int) -> AsyncGenerator[Any, None]:
        if self._gen is None:  # iteration happens once: text or chunks, whichever comes first
            self._gen = self._s._arun(which)
        return self._gen

    def __aiter__(self) -> AsyncIterator[str]:
        return self._iterate(1)

    def chunks(self) -> AsyncIterator[ChatCompletionChunk]:
        """Iterate the raw ``chat.completion.chunk`` objects (``choices: []`` usage chunk included)."""
        self._s.objects = True
        return self._iterate(0)

    @property
    def response(self) -> ChatResponse:
        """The answer as a ``ChatResponse``: whole once the loop has ended."""
        return self._assemble()

    async def __aenter__(self) -> AsyncChatStream:
        return self


def normalize_stop(stop: Union[str, Sequence[str], None]) -> Optional[list[str]]:
    """Turn ``stop`` into the list Venice accepts.

    Args:
        stop: A stop sequence, a list of them, or ``None``.
    Returns:
        The de-duplicated list, or ``None`` when there is nothing to send.
    Raises:
        InvalidRequestError: Not strings, an empty string, or more than 4 sequences.
    """
    if stop is None:
        return None
    stops = [stop] if isinstance(stop, str) else list(stop) if isinstance(stop, (list, tuple)) else None
    if stops is None or not all(isinstance(s, str) and s for s in stops):
        raise InvalidRequestError("stop must be a non-empty string or a list of non-empty strings")
    stops = list(dict.fromkeys(stops))
    if len(stops) > MAX_STOP_SEQUENCES:
        raise InvalidRequestError(
            f"Venice accepts at most {MAX_STOP_SEQUENCES} stop sequences; got {len(stops)}: keep the most important"
        )
    return stops or None


def estimate_tokens(value: Union[str, Sequence[Mapping[str, Any]]]) -> int:
    """Estimate how many tokens a text or a message list takes, without a tokenizer.

    An estimate only (aimed at BPE tokenizers such as cl100k on English prose, where it was measured
    at 2–9% above the real count; code, numbers and other scripts vary more): enough to check a
    prompt against a model's ``context_length`` before sending it. Each message adds 4 tokens of
    framing, and a message list 3 more.

    Args:
        value: A string, or messages as sent to ``chat.complete``.
    Returns:
        The estimated token count.
    """
    if isinstance(value, str):
        return _estimate_text(value)
    total = 3
    for message in value:
        total += 4 + _estimate_text(_content_text(message.get("content")) or "")
        for call in message.get("tool_calls") or ():
            total += _estimate_text(json.dumps(call))
    return total


def _estimate_text(text: str) -> int:
    import re

    count = 0
    for m in re.finditer(r"[A-Za-z]+|[0-9]+|[^\x00-\x7f]|\n+|[^\sA-Za-z0-9]+", text):
        piece = m.group()
        ch = piece[0]
        if ch.isascii() and ch.isalpha():
            count += 1 + (len(piece) > 9) + (len(piece) > 15)
        elif ch.isdigit():
            count += (len(piece) + 2) // 3
        elif not ch.isascii():
            count += 1
        elif ch == "\n":
            count += 1
        else:
            count += (len(piece) + 1) // 2
    return count


def _schema_for(tp: Any) -> dict[str, Any]:
    """JSON schema for a type hint (str, int, float, bool, list, dict, Optional, Literal, Enum)."""
    import enum
    import typing

    if tp is str:
        return {"type": "string"}
    if tp is bool:
        return {"type": "boolean"}
    if tp is int:
        return {"type": "integer"}
    if tp is float:
        return {"type": "number"}
    if tp is type(None):
        return {"type": "null"}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        values = [m.value for m in tp]
        return {**_schema_of_values(values), "enum": values}
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Literal:
        return {**_schema_of_values(list(args)), "enum": list(args)}
    if origin is typing.Union or type(tp).__name__ == "UnionType":
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            return _schema_for(options[0])
        return {"anyOf": [_schema_for(a) for a in options]}
    if tp in (list, tuple, set, frozenset) or origin in (list, tuple, set, frozenset):
        schema: dict[str, Any] = {"type": "array"}
        if args and args[0] is not Ellipsis:
            schema["items"] = _schema_for(args[0])
        return schema
    if tp is dict or origin is dict:
        return {"type": "object"}
    return {}


def _schema_of_values(values: list[Any]) -> dict[str, Any]:
    for kind, name in ((bool, "boolean"), (str, "string"), (int, "integer"), (float, "number")):
        if values and all(type(v) is kind for v in values):
            return {"type": name}
    return {}


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """Description (first paragraph) and per-argument text from a Google- or Sphinx-style docstring."""
    import re

    description = doc.split("\n\n")[0].strip() if doc else ""
    params: dict[str, str] = {}
    for m in re.finditer(r"^\s*:param\s+(?:\w+\s+)?(\w+):\s*(.+)$", doc, re.M):
        params[m.group(1)] = m.group(2).strip()
    section = re.search(r"^\s*(?:Args|Arguments|Parameters):\s*\n((?:[ \t]+.*\n?|\s*\n)+)", doc, re.M)
    if section:
        current, indent = None, 0
        for line in section.group(1).splitlines():
            arg = re.match(r"\s+(\*{0,2}\w+)\s*(?:\([^)]*\))?:\s*(.*)$", line)
            depth = len(line) - len(line.lstrip())
            if arg and (current is None or depth <= indent):
                current, indent = arg.group(1).lstrip("*"), depth
                params[current] = arg.group(2).strip()
            elif current and line.strip():
                params[current] = (params[current] + " " + line.strip()).strip()
    return description, params


def function_to_tool(fn: Callable[..., Any]) -> dict[str, Any]:
    """Describe a Python function as an OpenAI-style tool, from its signature and docstring.

    Parameter types come from the type hints (str, int, float, bool, list[...], dict, Optional,
    Literal, Enum); parameters without a default are required; the docstring's first paragraph is
    the description and its ``Args:`` section (or ``:param x:`` lines) describes the parameters.

    Args:
        fn: The function.
    Returns:
        ``{"type": "function", "function": {"name", "description", "parameters"}}``.
    Raises:
        InvalidRequestError: ``fn`` has no usable tool name (a lambda) or no readable signature.
    """
    import inspect
    import typing

    tool_name = _tool_name(fn)
    try:
        signature = inspect.signature(fn)  # a partial's: the parameters still to be given
    except (TypeError, ValueError):  # some builtins have none
        raise InvalidRequestError(f"can't read the parameters of {fn!r}; pass a tool dict instead") from None
    inner = _unwrapped(fn)
    try:
        hints = typing.get_type_hints(inner)
    except Exception:  # unresolvable forward references: fall back to untyped parameters
        hints = {}
    description, docs = _parse_docstring(inspect.getdoc(inner) or "")
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, param in signature.parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        schema = _schema_for(hints[name]) if name in hints else {}
        if name in docs:
            schema["description"] = docs[name]
        properties[name] = schema
        if param.default is param.empty:
            required.append(name)
    parameters: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        parameters["required"] = required
    function: dict[str, Any] = {"name": tool_name, "parameters": parameters}
    if description:
        function["description"] = description
    return {"type": "function", "function": function}


_TOOL_NAME = frozenset("-_0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def _unwrapped(fn: Any) -> Any:
    """A ``functools.partial``'s function (its name, hints and docstring describe the tool), else ``fn``."""
    import functools

    return fn.func if isinstance(fn, functools.partial) else fn


def _tool_name(fn: Any) -> str:
    """A function's tool name. Venice's spec sets no rule; OpenAI's (letters, digits, ``_`` and
    ``-``, at most 64) is what models are trained on, so a lambda's ``<lambda>`` is refused."""
    name = getattr(_unwrapped(fn), "__name__", None)
    if not isinstance(name, str) or not name or len(name) > 64 or not _TOOL_NAME.issuperset(name):
        raise InvalidRequestError(f"{fn!r} has no usable tool name; use a named def or pass a tool dict")
    return name


def run_tool_calls(
    calls: Any, functions: Union[Mapping[str, Callable[..., Any]], Iterable[Callable[..., Any]]]
) -> list[dict[str, Any]]:
    """Run the tool calls the model asked for and return the ``tool`` messages to append.

    Args:
        calls: A ``ChatResponse`` or ``ChatStream``, an assistant message dict, or a list of
            ``ToolCall`` objects (or OpenAI-shaped call dicts).
        functions: name → function, or a list of functions (named by ``__name__``).
    Returns:
        One ``{"role": "tool", "tool_call_id": …, "content": …}`` per call, in order. A result that
        is not a string is JSON-encoded. An unknown tool, bad arguments or an exception in the
        function becomes a message saying so (the model can react), never a crash.
    Raises:
        InvalidRequestError: A function in a list has no usable tool name (a lambda).
    """
    plan = _tool_runs(calls, functions)
    outcome: Any = None
    while True:
        try:
            fn, args = plan.send(outcome)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        try:
            outcome = True, fn(**args)
        except Exception as exc:
            outcome = False, exc


async def arun_tool_calls(
    calls: Any, functions: Union[Mapping[str, Callable[..., Any]], Iterable[Callable[..., Any]]]
) -> list[dict[str, Any]]:
    """``run_tool_calls`` for async code: awaits tool functions that are coroutine functions (or return
    awaitables) and runs plain ones, one call after another in the model's order.

    Args:
        calls, functions: As for ``run_tool_calls`` (an ``AsyncChatStream`` too).
    Returns:
        The ``tool`` messages to append, as ``run_tool_calls`` does.
    Raises:
        InvalidRequestError: A function in a list has no usable tool name (a lambda).
    """
    plan = _tool_runs(calls, functions)
    outcome: Any = None
    while True:
        try:
            fn, args = plan.send(outcome)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        try:
            result = fn(**args)
            outcome = True, (await result) if hasattr(result, "__await__") else result
        except Exception as exc:
            outcome = False, exc


def _tool_runs(
    calls: Any, functions: Union[Mapping[str, Callable[..., Any]], Iterable[Callable[..., Any]]]
) -> Generator[tuple[Callable[..., Any], dict[str, Any]], tuple[bool, Any], list[dict[str, Any]]]:
    """The tool messages for ``calls``, as a plan: it yields ``(function, arguments)`` and is sent
    ``(True, result)`` or ``(False, exception)``; the sync and async runners only call (and await)."""
    if isinstance(calls, (ChatResponse, _StreamResult)):
        items: list[ToolCall] = calls.tool_calls or []
    elif isinstance(calls, dict):
        items = [ToolCall.from_dict(c) for c in calls.get("tool_calls") or ()]
    else:
        items = [c if isinstance(c, ToolCall) else ToolCall.from_dict(c) for c in calls]
    from collections.abc import Mapping as AnyMapping

    table = dict(functions) if isinstance(functions, AnyMapping) else {_tool_name(f): f for f in functions}
    messages = []
    for call in items:
        fn = table.get(call.name)
        if fn is None:
            content = f"Error: there is no tool named {call.name!r}"
        else:
            ok: bool
            result: Any
            try:
                args = call.args
            except InvalidRequestError as exc:  # the model wrote invalid JSON
                ok, result = False, exc
            else:
                ok, result = yield fn, args
            if not ok:
                content = f"Error: {type(result).__name__}: {result}"
            else:
                try:
                    content = result if isinstance(result, str) else json.dumps(result, default=str)
                except (TypeError, ValueError, RecursionError):  # non-str keys, a cycle, too deep
                    content = str(result)
        messages.append({"role": "tool", "tool_call_id": call.id, "content": content})
    return messages


class _ResponseState(_StreamState):
    """The running result of a Responses API stream (``ResponseStream``, ``AsyncResponseStream``).

    It reuses ``_StreamState``'s two reading loops (``_run``, ``_arun``) and timing (``_arm``: the
    idle timeout that keep-alives don't reset, the deadline; ``_failure``: errors keep ``.partial``);
    only the fold (``_step``, no I/O) differs: typed events instead of chat chunks. The event that
    completes a stream is ``response.completed``, not ``[DONE]``.
    """

    def __init__(self, exchange: Union[_Exchange, _AsyncExchange], meta: ResponseMeta, idle_timeout: float) -> None:
        super().__init__(exchange, meta, idle_timeout)
        self.deltas: list[str] = []  # the output_text deltas so far
        self.response: Optional[Response] = None  # from response.completed

    @property
    def text(self) -> str:
        return "".join(self.deltas)

    def _step(self, block: bytes) -> Optional[list[tuple[dict[str, Any], Optional[str]]]]:
        """Fold one block in: the (event, new output text) pairs it completed, or ``None`` at the end."""
        if not block:
            if not self.done and not self.stopped:
                raise StreamError(
                    "the stream ended before the response was complete (no response.completed event)",
                    hint="the text so far is in .partial",
                )
            return None
        if self.done:
            return []  # after response.completed: read on only so that the connection can be reused
        events = self._decoder.feed(block)
        now = time.monotonic()
        if not events:  # only keep-alive pings: they do not reset the idle timeout
            left = self._idle - (now - self._last)
            if left <= 0:
                raise _conn_error(f"no data event for {self._idle:g} s (only keep-alives)", _SENT, timeout=True)
            self._want, self._quiet = left, True
            return []
        self._last, self._want, self._quiet = now, self._idle, False
        out: list[tuple[dict[str, Any], Optional[str]]] = []
        for name, data, _id, _retry in events:
            if data == "[DONE]":
                continue  # (OpenAI-style servers may end with it; completion is response.completed)
            try:
                obj = _json_objects.decode(data)
            except (ValueError, RecursionError):
                obj = self._lenient(data, name)
            if not isinstance(obj, dict):
                continue
            if not isinstance(obj, AttrDict):
                obj = AttrDict(obj)
            if "type" not in obj and name != "message":
                obj["type"] = name  # (the SSE event name, when the data does not repeat it)
            kind = obj.get("type")
            if kind in ("error", "response.failed", "response.incomplete") or obj.get("error") is not None:
                err = self._event_error(obj, kind)
                if not out:
                    raise err
                self._pending = err  # after the events before it (raised by _arm)
                return out
            if kind == "response.output_text.delta":
                delta = obj.get("delta")
                if isinstance(delta, str) and delta:
                    self.deltas.append(delta)
                    out.append((obj, delta))
                    continue
            elif kind == "response.completed":
                response = obj.get("response")
                if isinstance(response, dict):
                    self.response = Response(response)
                    self.response.meta = self.meta
                self.done = True
                out.append((obj, None))
                return out
            out.append((obj, None))
        return out

    @staticmethod
    def _event_error(obj: dict[str, Any], kind: Any) -> StreamError:
        """The ``StreamError`` an ``error``, ``response.failed`` or ``response.incomplete`` event means."""
        response = obj.get("response")
        err = obj.get("error")
        if kind == "response.incomplete":
            details = response.get("incomplete_details") if isinstance(response, dict) else None
            reason = details.get("reason") if isinstance(details, dict) else None
            return StreamError(
                f"the response is incomplete ({reason or 'no reason given'})",
                code="incomplete",
                hint="the answer is cut short",
            )
        if err is None and isinstance(response, dict):
            err = response.get("error")  # response.failed carries the error in its response
        if err is None:
            err = obj  # an error event: {"type": "error", "code", "message", "param"}
        if isinstance(err, dict):
            message = str(err.get("message") or ("the response failed" if kind == "response.failed" else err))
            code = err.get("code") or (err.get("type") if err is not obj else None)
        else:
            message, code = str(err), None
        return StreamError(message, code=str(code) if code is not None else None, hint="the answer is incomplete")


class _ResponseStreamResult:
    """What a Responses API stream has assembled so far, read the same way by both stream types."""

    meta: ResponseMeta
    _s: _ResponseState

    @property
    def output_text(self) -> str:
        """The text so far (the ``response.output_text.delta`` events joined; once complete, the
        completed response's ``output_text`` if no delta came)."""
        text = self._s.text
        if not text and self._s.response is not None:
            return self._s.response.output_text
        return text

    @property
    def partial(self) -> str:
        """Same as ``output_text``: what has been received so far."""
        return self.output_text

    @property
    def done(self) -> bool:
        """True once ``response.completed`` has arrived."""
        return self._s.done

    def __repr__(self) -> str:
        return f"<{type(self).__name__} done={self.done} chars={len(self._s.text)}>"


class ResponseStream(_ResponseStreamResult, _Closing):
    """A streamed Responses API answer (``client.responses.create(..., stream=True)``). Iterate it for
    the events as they arrive, each an ``AttrDict`` typed by its ``type``::

        with client.responses.create("Tell me a story", model=m, stream=True) as stream:
            for event in stream:
                if event.type == "response.output_text.delta":
                    print(event.delta, end="", flush=True)
        print(stream.response.usage)

    After the loop: ``output_text`` (the text), ``response`` (the completed ``Response``) and ``meta``.
    Iteration happens once.

    The guarantees of ``ChatStream``: ``timeout`` is the longest wait for an event that carries data
    (keep-alive comments don't reset it), a ``deadline`` bounds the whole call. A stream that ends
    without ``response.completed``, or with ``response.failed``, ``response.incomplete`` or an
    ``error`` event, raises ``StreamError``; a reset ``APIConnectionError``, silence
    ``APITimeoutError``; each with the text so far in ``.partial``. Closing (``close()``, leaving
    the ``with`` block, dropping the stream) closes the connection unless the stream had ended.
    """

    def __init__(self, exchange: _Exchange, meta: ResponseMeta, idle_timeout: float) -> None:
        self.meta = meta
        self._s = _ResponseState(exchange, meta, idle_timeout)
        self._blocks = self._s._run()
        self._gen: Iterator[tuple[dict[str, Any], Optional[str]]] = chain.from_iterable(self._blocks)

    def __iter__(self) -> Iterator[ResponseStreamEvent]:
        return chain(map(_first, self._gen), islice((self,), 0))  # (see ChatStream.__iter__)

    @property
    def response(self) -> Optional[Response]:
        """The completed ``Response`` (reads the rest of the stream first; raises as iterating does)."""
        for _ in self._gen:
            pass
        return self._s.response

    def __enter__(self) -> ResponseStream:
        return self


class AsyncResponseStream(_ResponseStreamResult, _AsyncClosing):
    """``ResponseStream`` for ``AsyncVeniceClient``: ``async for event in stream``; then
    ``output_text``, ``response`` and ``meta``. ``async with stream:`` or ``await stream.aclose()``
    closes it; the failures are those of ``ResponseStream``, with the text so far in ``.partial``.
    """

    def __init__(self, exchange: _AsyncExchange, meta: ResponseMeta, idle_timeout: float) -> None:
        self.meta = meta
        self._s = _ResponseState(exchange, meta, idle_timeout)
        self._gen: Optional[AsyncGenerator[Any, None]] = None

    def __aiter__(self) -> AsyncIterator[ResponseStreamEvent]:
        if self._gen is None:  # iteration happens once
            self._gen = self._s._arun(0)
        return self._gen

    @property
    def response(self) -> Optional[Response]:
        """The completed ``Response`` once the loop has ended (``None`` before ``response.completed``)."""
        return self._s.response

    async def __aenter__(self) -> AsyncResponseStream:
        return self


###############################################################################
# Client and resource namespaces ##############################################
###############################################################################

_warned_models: set[str] = set()  # deprecation warnings already shown, once per model per process


def _strip_none(value: Any) -> Any:
    """Drop ``None`` values at every depth: Venice's strict schema rejects most nulls."""
    if isinstance(value, dict):
        return {k: _strip_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_strip_none(v) for v in value]
    return value


#: The headers a cross-host redirect keeps (see VeniceClient._redirect).
_NEUTRAL_HEADERS: Final = frozenset({"user-agent", "accept", "accept-encoding"})
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def _check_header(name: Any, value: Any) -> None:
    """Refuse a header http.client would reject with a bare error, or send so that the server
    misreads the whole header block (a name with a space hides the headers after it)."""
    if not isinstance(name, str) or not name or not _TOKEN.issuperset(name):
        raise ConfigError(f"header name {name!r} is not a valid HTTP token; refusing to send it")
    if name.lower() in ("content-length", "transfer-encoding"):  # a second framing header desyncs the request
        raise ConfigError(f"header {name} is set by venice.py from the body; don't pass it")
    # The value is not echoed: custom headers often carry secrets.
    if not isinstance(value, str):
        raise ConfigError(f"header {name} must have a str value, not {type(value).__name__}")
    if any(c in "\r\n\0" for c in value):
        raise ConfigError(f"header {name} has a line break or NUL in its value; refusing to send it")
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise ConfigError(f"header {name} has characters HTTP headers can't carry (latin-1 only)") from None


class _BaseClient:
    """What both clients share: configuration, request building, metadata and decoding (no I/O).
    ``VeniceClient`` and ``AsyncVeniceClient`` add a driver (``_run``) and their result types."""

    if TYPE_CHECKING:  # each client has its own: the driver, and the stream types it hands out

        def _run(self, plan: Generator[Any, Any, Any]) -> Any: ...
        def _raw_response(self, ex: Any, meta: ResponseMeta) -> Any: ...
        def _chat_stream(self, ex: Any, meta: ResponseMeta, idle: float) -> Any: ...
        def _chunk_stream(self, stream: Any, usage: bool) -> Any: ...

    def __init__(
        self,
        api_key: Optional[str] = None,
        *,
        base_url: Optional[str] = None,
        timeout: Optional[float] = None,
        connect_timeout: Optional[float] = None,
        max_retries: Optional[int] = None,
        default_model: Optional[str] = None,
        default_headers: Optional[Mapping[str, str]] = None,
        ca_file: Optional[str] = None,
        ssl_context: Optional[ssl.SSLContext] = None,
        config: Optional[Config] = None,
        retry: Optional[RetryPolicy] = None,
        env_file: Union[str, os.PathLike[str], bool, None] = None,
        environ: Optional[Mapping[str, str]] = None,
        trust_env: bool = True,
        sleep: Optional[Callable[[float], Any]] = None,
        clock: Optional[Callable[[], float]] = None,
        random: Optional[Callable[[], float]] = None,
        transport: Any = None,
    ) -> None:
        overrides = {
            "api_key": api_key,
            "base_url": base_url,
            "timeout": timeout,
            "connect_timeout": connect_timeout,
            "max_retries": max_retries,
            "default_model": default_model,
            "default_headers": default_headers,
            "ca_file": ca_file,
            "ssl_context": ssl_context,
        }
        if config is None:
            config = load_config(env_file=env_file, environ=environ, **overrides)  # type: ignore[arg-type]
        elif not isinstance(config, Config):
            raise ConfigError(f"config must be a Config (from load_config()), not {type(config).__name__}")
        else:
            given: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
            if "api_key" in given:
                given["key_source"] = "argument"
            config = _replace(config, **given) if given else config
        for name, value in config.default_headers.items():
            _check_header(name, value)
        self.config = config
        if retry is None:
            retry = RetryPolicy(max_retries=config.max_retries)
        elif not isinstance(retry, RetryPolicy):
            raise ConfigError(f"retry must be a RetryPolicy, not {type(retry).__name__}")
        elif max_retries is not None:
            retry = _replace(retry, max_retries=max_retries)
        self.retry = retry
        from urllib.parse import urlsplit

        url = urlsplit(config.base_url)
        self._scheme = url.scheme
        self._host = url.hostname or ""
        self._port = url.port or (443 if url.scheme == "https" else 80)
        self._prefix = url.path.rstrip("/")
        self._transport: Any = transport if transport is not None else self._new_transport(config, environ, trust_env)
        # A dropped client is cyclic garbage (it and its namespaces refer to each other), and the
        # collector finalizes such objects in no set order: a socket could be finalized (with a
        # ResourceWarning) before any __del__ here closed it. The pool is kept out of that garbage
        # and closed by this callback instead.
        import weakref

        weakref.finalize(self, self._transport.close)
        self._sleep: Any = sleep or self._default_sleep()
        self._clock = clock or time.time
        self._random = random
        self._failures: list[float] = []
        self._limited_until = 0.0  # (client clock) when an exhausted rate limit resets; see _note_limits
        self._failures_lock = threading.Lock()
        self._user_agent = f"venice.py/{__version__} Python/{sys.version_info[0]}.{sys.version_info[1]}"
        self._header_cache: dict[tuple[bool, bool, bool], dict[str, str]] = {}
        self._defaults: dict[str, str] = {}  # model type -> Venice's default model of that type
        # The namespaces are the same objects for both clients (their calls are plans: see _call); the
        # classes declare what each client's calls return to type checkers (AsyncVeniceClient: awaitables).
        self.chat: Any = Chat(self)
        self.models: Any = Models(self)
        self.embeddings: Any = Embeddings(self)
        self.characters: Any = Characters(self)
        self.billing: Any = Billing(self)
        self.api_keys: Any = ApiKeys(self)
        self.augment: Any = Augment(self)
        self.crypto: Any = Crypto(self)
        self.x402: Any = X402(self)
        self.responses: Any = Responses(self)
        self.audio: Any = Audio(self)
        self.images: Any = Images(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.config.base_url!r}, api_key={mask_key(self.config.api_key)!r})"

    # -- internals -------------------------------------------------------------------------------

    def _new_transport(self, config: Config, environ: Optional[Mapping[str, str]], trust_env: bool) -> Any:
        return _Transport(config, environ, trust_env)

    def _default_sleep(self) -> Callable[[float], Any]:
        return time.sleep

    def _meta(self, ex: _Exchange) -> ResponseMeta:
        meta = ResponseMeta.from_headers(ex.status, ex.headers, self._clock())
        if meta.deprecation_warning:
            model = meta.model_id or meta.model_name or "?"
            if model not in _warned_models:
                import warnings

                _warned_models.add(model)
                when = f" (on {meta.deprecation_date})" if meta.deprecation_date else ""
                warnings.warn(
                    f"model {model} is deprecated{when}: {meta.deprecation_warning}", DeprecationWarning, stacklevel=4
                )
        return meta

    def _decode(
        self, ex: _Exchange, data: bytes, meta: ResponseMeta, *, expect_json: bool, cls: type[AttrDict] = AttrDict
    ) -> Any:
        ctype = ex.headers.get("content-type", "").lower()
        is_json = "json" in ctype or (not ctype and expect_json)
        if not is_json and "text/html" not in ctype and not expect_json:
            return data
        where = f"Venice answered {ex.status}"
        if not data or data.isspace():
            raise VeniceAPIError(
                f"{where} with an empty body",
                status_code=ex.status,
                headers=ex.headers,
                request_id=meta.request_id,
                meta=meta,
            )
        try:
            if not is_json:
                raise ValueError
            if data[:3] == _BOM:
                data = data[3:]
            value = _json_objects.decode(data.decode("utf-8"))  # JSON is UTF-8 (RFC 8259)
        except (ValueError, RecursionError):  # (RecursionError: nested thousands deep)
            text = data.decode("utf-8", "replace")
            raise VeniceAPIError(
                f"{where} with a body that is not valid JSON ({ctype or 'no content type'}): {_excerpt(text)}",
                status_code=ex.status,
                headers=ex.headers,
                body=text,
                request_id=meta.request_id,
                meta=meta,
                hint="a proxy or CDN may be in the way; try again later",
            ) from None
        if isinstance(value, dict):
            value = cls(value)
            value.meta = meta
        return value

    def _note_limits(self, headers: Mapping[str, str]) -> None:
        """Remember when a rate limit that has run out resets (``x-ratelimit-remaining-*: 0``), so that
        later calls, from any thread or task, wait for it instead of collecting 429s (which count towards
        Venice's key block). Shared by both clients: the plan reads ``_limited_until`` before each send."""
        for kind in ("requests", "tokens"):
            if headers.get(f"x-ratelimit-remaining-{kind}", "").strip() == "0":
                reset = _reset_time(headers.get(f"x-ratelimit-reset-{kind}"), self._clock())
                if reset is not None and reset > self._limited_until:
                    self._limited_until = reset

    def _fail(self) -> int:
        """Record a failed request; return how many failed within the policy's window."""
        now = self._clock()
        with self._failures_lock:
            horizon = now - self.retry.failure_window
            self._failures = [t for t in self._failures if t > horizon]
            self._failures.append(now)
            return len(self._failures)

    def _rand(self) -> float:
        if self._random is None:
            import random

            self._random = random.random
        return self._random()

    def _headers(
        self, keyless: bool, stream: bool, has_body: bool, extra: Optional[Mapping[str, str]]
    ) -> dict[str, str]:
        """The request headers; without per-call extras they are built once per kind of request
        (callers copy before changing them). ``keyless``: the endpoint works without a key.

        The key is read here and kept only as a ``_Masked`` value: no frame on the request path holds
        it in a local that a traceback with locals (``pytest --showlocals``, Sentry) would show."""
        if extra is None:
            cached = self._header_cache.get((keyless, stream, has_body))
            if cached is None:
                cached = self._build_headers(keyless, stream, has_body, None)
                self._header_cache[(keyless, stream, has_body)] = cached
            return cached
        return self._build_headers(keyless, stream, has_body, extra)

    def _build_headers(
        self, keyless: bool, stream: bool, has_body: bool, extra: Optional[Mapping[str, str]]
    ) -> dict[str, str]:
        if not keyless:
            self.config.require_key()
        headers = {
            "User-Agent": self._user_agent,
            "Accept": "text/event-stream" if stream else "application/json",
            # Venice compresses non-streamed answers only (../shared/venice-api/NOTES.md §1); a stream stays
            # unbuffered.
            "Accept-Encoding": "identity" if stream else "gzip",
        }
        if has_body:
            headers["Content-Type"] = "application/json"
        headers.update(self.config.default_headers)
        if extra:
            headers.update(extra)  # checked with the rest when first sent (_Transport.head)
        if self.config.api_key is not None:
            headers["Authorization"] = _Masked(f"Bearer {self.config.api_key}")
        return headers

    def _target(self, path: str, params: Optional[Mapping[str, Any]]) -> str:
        if "://" in path:
            raise InvalidRequestError("pass a path under the base URL (e.g. '/models'), not a full URL")
        if not (path.isprintable() and path.isascii()) or " " in path:
            raise InvalidRequestError(f"the path {path!r} has spaces, control or non-ASCII characters: URL-quote them")
        target = f"{self._prefix}/{path.lstrip('/')}"
        if params:
            _check_dict("params", params, InvalidRequestError)
            from urllib.parse import urlencode

            try:
                query = urlencode(
                    [(k, str(v).lower() if isinstance(v, bool) else v) for k, v in params.items() if v is not None]
                )
            except (TypeError, ValueError) as err:  # a lone surrogate (UnicodeEncodeError), odd items()
                raise InvalidRequestError(f"params can't be put in a URL: {err}") from None
            if query:
                target += ("&" if "?" in target else "?") + query
        return target

    def _build_request(
        self,
        method: str,
        path: str,
        body: Any,
        params: Optional[Mapping[str, Any]],
        extra_headers: Optional[Mapping[str, str]],
        stream: bool,
        timeout: Optional[float],
        deadline: Optional[float],
    ) -> _Request:
        """Check the arguments of a call and build its request (nothing is sent)."""
        if not isinstance(method, str) or not isinstance(path, str):
            raise InvalidRequestError(f"method and path must be strings, got {method!r} and {path!r}")
        _check_dict("headers", extra_headers, InvalidRequestError)
        method = method.upper()
        if not method.isalpha() or not method.isascii():
            raise InvalidRequestError(f"{method!r} is not an HTTP method")
        if timeout is not None:
            timeout = _seconds("timeout", timeout, InvalidRequestError)
        if deadline is not None:  # (one already passed, <= 0, raises APITimeoutError when checked)
            if not _is_number(deadline) or deadline != deadline:
                raise InvalidRequestError(f"deadline must be a number of seconds, got {deadline!r}")
            deadline = min(deadline, _MAX_WAIT)
        route = "/" + path.split("?")[0].strip("/")
        wallet = _wallet_signed(extra_headers)  # a wallet's signed header stands in for the key
        keyless = (method == "GET" and route in _KEYLESS_PATHS) or route in _OPEN_ROUTES or wallet
        payload = None
        if isinstance(body, _Form):  # a multipart upload, encoded by the call (see _multipart)
            payload = body.data
            extra_headers = {**(extra_headers or {}), "Content-Type": body.content_type}
        elif body is not None:
            try:
                payload = _json_encoder.encode(_strip_none(body)).encode("utf-8")
            except (TypeError, ValueError, RecursionError) as err:  # an object json can't encode, NaN, a lone
                # surrogate, a cycle (RecursionError in _strip_none), nesting too deep
                raise InvalidRequestError(f"the request can't be sent as JSON: {err}") from None
        headers = self._headers(keyless, stream, payload is not None, extra_headers)
        if wallet:  # (built for this call, not the shared cache: extra headers were given)
            headers.pop("Authorization", None)
        timeouts = _Timeouts(self.config.connect_timeout, timeout or self.config.timeout, deadline)
        target = self._target(path, params)
        return _Request(method, self._scheme, self._host, self._port, target, headers, payload, stream, timeouts)

    def _redirect(self, req: _Request, status: int, location: str, ex: Any) -> _Request:
        """The request a redirect asks for: GET only, and another host never gets the key."""
        from urllib.parse import urljoin, urlsplit

        method, headers = req.method, req.headers
        rid = ex.headers.get("cf-ray")
        try:
            url = urljoin(req.url, location)
            parts = urlsplit(url)
            new_port = parts.port or (443 if parts.scheme == "https" else 80)
            (parts.hostname or "").encode("idna")
            (parts.path + parts.query).encode("ascii")
        except (ValueError, UnicodeError):
            raise VeniceAPIError(
                f"the server redirected to an invalid URL: {_excerpt(location, 120)}",
                status_code=status,
                headers=ex.headers,
                request_id=rid,
            ) from None
        if method not in ("GET", "HEAD"):
            raise VeniceAPIError(
                f"the server redirected a {method} request to {url}; not followed (the request would be re-sent)",
                status_code=status,
                headers=ex.headers,
                request_id=rid,
            )
        new_host = parts.hostname or ""
        if parts.scheme not in ("http", "https") or (parts.scheme == "http" and not _is_loopback(new_host)):
            raise VeniceAPIError(
                f"refusing to follow a redirect to {url}", status_code=status, headers=ex.headers, request_id=rid
            )
        if (parts.scheme, new_host, new_port) != (self._scheme, self._host, self._port):
            # Another host gets neither the key nor the caller's default_headers (they may carry other
            # secrets or tenant ids): only the library's own neutral headers.
            headers = {k: v for k, v in headers.items() if k.lower() in _NEUTRAL_HEADERS}
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        new = _Request(method, parts.scheme, new_host, new_port, target, headers, req.content, req.stream, req.timeouts)
        new.expect = req.expect
        return new


class VeniceClient(_BaseClient):
    """A client for the Venice API. Thread-safe; reuse one for many calls.

    Redirects: a GET follows up to 5 redirects, sending the API key only to the configured
    scheme, host and port (another host gets the request without ``Authorization``; a plain
    ``http://`` target off loopback is refused). A redirected POST is never followed (it would be
    sent again): it raises ``VeniceAPIError`` with the 3xx status.

    Args:
        api_key: The key; default from the environment, ``.env`` or the credentials file
            (see ``load_config``). Endpoints that need a key raise ``ConfigError`` without one.
        base_url: API root (``https://``, or ``http://`` for loopback hosts only).
        timeout: Read timeout in seconds: the longest silence allowed between bytes (for streams,
            between events that carry data); ``float("inf")``: no limit.
        connect_timeout: Seconds allowed to connect.
        max_retries: Retries after the first attempt (see ``RetryPolicy``).
        default_model: Model used when a call names none.
        default_headers: Headers added to every request (never sent to another host on a redirect).
        ca_file: PEM file of CA certificates to trust instead of the system's.
        ssl_context: A ready ``ssl.SSLContext`` (wins over ``ca_file``).
        config: A ready ``Config``; the arguments above override its fields.
        retry: A ``RetryPolicy`` (``max_retries`` above wins over its own).
        env_file, environ: Passed to ``load_config``.
        trust_env: Use proxy settings from the environment (default ``True``).
        sleep, clock, random: ``time.sleep``, ``time.time`` and ``random.random`` stand-ins, for tests.
        transport: What sends the requests (default: a keep-alive ``http.client`` pool); e.g. a
            ``MockTransport`` to test code that calls Venice without a network.
    Raises:
        ConfigError: A setting is malformed (for example a plain ``http://`` URL to a remote host).

    Attributes:
        chat: ``chat.complete(...)`` and ``chat.completions.create(...)``.
        models: ``models.list()``, ``models.traits()``, ``models.compatibility_mapping()``.
        embeddings: ``embeddings.create(input, model=None)``.
        api_keys: ``api_keys.list()``, ``.create(…)``, ``.rate_limits()``, … (key management).
        augment: ``augment.search(query)``, ``.scrape(url)``, ``.parse_text(file)``.
        crypto: ``crypto.networks()``, ``crypto.rpc(network, method, params)``.
        x402: ``x402.balance(wallet)``, ``.transactions(wallet)``, ``.top_up(…)`` (wallet credit).
        characters: ``characters.list(search)``, ``characters.get(slug)``, ``characters.reviews(slug)``.
        billing: ``billing.balance()``, ``billing.usage_history()``, ``billing.usage_history_csv(path)``,
            ``billing.usage_analytics()``.
        responses: ``responses.create(input, model=None, stream=False, ...)`` (the Responses API).
        images: ``images.generate(prompt, model=None, ...)`` → ``ImageResult``, ``images.styles()``.
        config: The resolved ``Config``.
    """

    if TYPE_CHECKING:
        api_keys: ApiKeys
        augment: Augment
        crypto: Crypto
        x402: X402
        chat: Chat
        models: Models
        embeddings: Embeddings
        characters: Characters
        billing: Billing
        responses: Responses
        audio: Audio
        images: Images

    def __enter__(self) -> VeniceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections. The client still works afterwards (it reconnects)."""
        self._transport.close()

    # -- the generic request -------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Optional[Mapping[str, Any]] = None,
        stream: bool = False,
        headers: Optional[Mapping[str, str]] = None,
        timeout: Optional[float] = None,
        deadline: Optional[float] = None,
    ) -> Any:
        """Call any endpoint, for those without a wrapper here.

        Args:
            method: ``"GET"``, ``"POST"``, …
            path: Path under the base URL, e.g. ``"/api_keys/rate_limits"``.
            json: Request body; ``None`` values are removed at every depth.
            params: Query parameters (``None`` values left out).
            stream: Return a ``RawResponse`` with the body unread.
            headers: Extra headers for this call.
            timeout: Read timeout for this call.
            deadline: Overall seconds allowed for this call, retries included.
        Returns:
            The decoded JSON (objects as ``AttrDict`` with ``.meta``), raw ``bytes`` for other
            content types, or a ``RawResponse`` when ``stream=True``.
        Raises:
            VeniceAPIError: An error status (subclass by status), or a 2xx JSON/HTML body that
                can't be used as such.
            APIConnectionError: No usable response. ConfigError: no key for an endpoint that needs one.
        """
        return self._run(_request_plan(self, method, path, json, params, headers, stream, timeout, deadline))

    # -- the sync driver -------------------------------------------------------------------------

    def _run(self, plan: Generator[Any, Any, _R]) -> _R:
        """Carry out a plan (see ``_send_plan``): send the requests and sleep the delays it asks for."""
        value: Any = None
        try:
            while True:
                try:
                    action = plan.send(value)
                except StopIteration as done:
                    return done.value  # type: ignore[no-any-return]
                if action.__class__ is float:
                    self._sleep(action)
                    value = None
                else:
                    value = self._exchange(action)
        finally:
            plan.close()  # (after a failure here, a Ctrl-C: its own finally blocks run now, not at collection)

    def _exchange(self, req: _Request) -> Union[_Exchange, APIConnectionError]:
        """Send a request and read its response: all of it, unless it is a 2xx the caller streams."""
        try:
            ex = self._transport.send(req)
            if not (req.stream and 200 <= ex.status < 300 and req.expect in ex.headers.get("content-type", "")):
                ex.body = ex.read_all()
            return ex  # type: ignore[no-any-return]
        except APIConnectionError as err:
            return err

    def _raw_response(self, ex: _Exchange, meta: ResponseMeta) -> RawResponse:
        return RawResponse(ex, meta)

    def _chat_stream(self, ex: _Exchange, meta: ResponseMeta, idle: float) -> ChatStream:
        return ChatStream(ex, meta, idle)

    def _chunk_stream(self, stream: ChatStream, usage: bool) -> _ChunkStream:
        return _ChunkStream(stream, usage)


if TYPE_CHECKING:  # What AsyncVeniceClient's namespaces return, for type checkers: the calls of the
    # sync namespaces (the same objects at run time), awaited. Arguments as documented there.

    class _AsyncModels(Protocol):
        async def list(self, type: str = "text") -> ModelList: ...
        async def retrieve(self, model_id: str, type: str = "all") -> Model: ...
        async def traits(self, type: str = "text") -> dict[str, str]: ...
        async def compatibility_mapping(self, type: str = "text") -> dict[str, str]: ...

    class _AsyncEmbeddings(Protocol):
        async def create(
            self, input: Union[str, Sequence[str]], model: Optional[str] = None, **kwargs: Any
        ) -> CreateEmbeddingResponse: ...

    class _AsyncCharacters(Protocol):  # (list and reviews are not awaited: iterate with `async for`)
        def list(self, search: Optional[str] = None, **kwargs: Any) -> Pages[Character]: ...
        async def get(self, slug: str) -> Character: ...
        def reviews(self, slug: str, *, page_size: int = 20, page: int = 1) -> Pages[CharacterReview]: ...

    class _AsyncImages(Protocol):
        async def generate(self, prompt: str, model: Optional[str] = None, **options: Any) -> ImageResult: ...
        async def styles(self) -> list[str]: ...

    class _AsyncBilling(Protocol):
        async def balance(self) -> Balance: ...
        def usage_history(self, **kwargs: Any) -> Pages[UsageEntry]: ...
        async def usage_history_csv(self, path_or_file: Any, **kwargs: Any) -> int: ...
        async def usage_analytics(self, lookback: Optional[str] = None, **kwargs: Any) -> UsageAnalytics: ...

    class _AsyncApiKeys(Protocol):
        async def list(self) -> _Rows[AttrDict]: ...
        async def get(self, id: str) -> AttrDict: ...
        async def create(self, description: str, **kwargs: Any) -> NewApiKey: ...
        async def update(self, id: str, **kwargs: Any) -> AttrDict: ...
        async def delete(self, id: str) -> bool: ...
        async def rate_limits(self) -> AttrDict: ...
        async def rate_limit_log(self) -> _Rows[AttrDict]: ...
        async def web3_token(self) -> str: ...
        async def generate_web3_key(self, address: str, signature: str, token: str, **kwargs: Any) -> NewApiKey: ...

    class _AsyncAugment(Protocol):
        async def search(self, query: str, **kwargs: Any) -> AttrDict: ...
        async def scrape(self, url: str, **kwargs: Any) -> AttrDict: ...
        async def parse_text(self, file: Any, **kwargs: Any) -> Any: ...

    class _AsyncCrypto(Protocol):
        async def networks(self) -> list[str]: ...
        async def rpc(
            self, network: str, method: str, params: Optional[Sequence[Any]] = None, **kwargs: Any
        ) -> AttrDict: ...

    class _AsyncX402(Protocol):
        async def balance(self, wallet: str, *, sign_in: Optional[str] = None) -> AttrDict: ...
        async def transactions(self, wallet: str, **kwargs: Any) -> AttrDict: ...
        async def top_up(self, payment_signature: Optional[str] = None) -> AttrDict: ...

    class _AsyncCompletions(Protocol):
        @_overload
        async def create(
            self, *, messages: Sequence[Mapping[str, Any]], stream: Literal[False] = False, **kwargs: Any
        ) -> ChatResponse: ...
        @_overload
        async def create(
            self, *, messages: Sequence[Mapping[str, Any]], stream: Literal[True], **kwargs: Any
        ) -> _AsyncChunkStream: ...
        @_overload
        async def create(
            self, *, messages: Sequence[Mapping[str, Any]], stream: bool, **kwargs: Any
        ) -> Union[ChatResponse, _AsyncChunkStream]: ...

    class _AsyncChat(Protocol):
        completions: _AsyncCompletions

        @_overload
        async def complete(
            self,
            messages: Union[str, Sequence[Mapping[str, Any]]],
            model: Optional[str] = None,
            *,
            stream: Literal[False] = False,
            **kwargs: Any,
        ) -> ChatResponse: ...
        @_overload
        async def complete(
            self,
            messages: Union[str, Sequence[Mapping[str, Any]]],
            model: Optional[str] = None,
            *,
            stream: Literal[True],
            **kwargs: Any,
        ) -> AsyncChatStream: ...
        @_overload
        async def complete(
            self,
            messages: Union[str, Sequence[Mapping[str, Any]]],
            model: Optional[str] = None,
            *,
            stream: bool,
            **kwargs: Any,
        ) -> Union[ChatResponse, AsyncChatStream]: ...

    class _AsyncResponses(Protocol):
        @_overload
        async def create(
            self,
            input: Union[str, Sequence[Mapping[str, Any]]],
            model: Optional[str] = None,
            *,
            stream: Literal[False] = False,
            **kwargs: Any,
        ) -> Response: ...
        @_overload
        async def create(
            self,
            input: Union[str, Sequence[Mapping[str, Any]]],
            model: Optional[str] = None,
            *,
            stream: Literal[True],
            **kwargs: Any,
        ) -> AsyncResponseStream: ...
        @_overload
        async def create(
            self,
            input: Union[str, Sequence[Mapping[str, Any]]],
            model: Optional[str] = None,
            *,
            stream: bool,
            **kwargs: Any,
        ) -> Union[Response, AsyncResponseStream]: ...

    class _AsyncAudio(Protocol):
        @_overload
        async def speech(self, text: str, *, stream: Literal[False] = False, **kwargs: Any) -> SpeechResult: ...
        @_overload
        async def speech(self, text: str, *, stream: Literal[True], **kwargs: Any) -> AsyncSpeechStream: ...
        @_overload
        async def speech(self, text: str, *, stream: bool, **kwargs: Any) -> Union[SpeechResult, AsyncSpeechStream]: ...


class AsyncVeniceClient(_BaseClient):
    """The asyncio client: the same arguments, configuration, namespaces and behaviour as
    ``VeniceClient``, awaited::

        async with venice.AsyncVeniceClient() as client:
            r = await client.chat.complete("Hi", model="venice-uncensored")
            async for text in await client.chat.complete("Tell me a story", model=m, stream=True):
                print(text, end="")

    Calls return ``ChatResponse`` / ``ModelList`` / … as the sync client does; ``stream=True`` gives an
    ``AsyncChatStream`` and ``request(..., stream=True)`` an ``AsyncRawResponse``. No thread is started:
    requests go over asyncio streams, one keep-alive pool per event loop (a client may be used from
    several loops, one after another or at once, and never hands a connection from one to another).
    Cancelling a call's task closes its connection and lets ``CancelledError`` through;
    ``asyncio.wait_for`` and ``asyncio.timeout`` work around any call.

    Args:
        api_key, **kwargs: As for ``VeniceClient``; ``sleep`` must be awaitable (default ``asyncio.sleep``),
            and ``transport`` an object with ``async asend(request)`` such as ``MockTransport``.
        max_concurrency: At most this many calls in flight per event loop (a stream counts until it
            ends or is closed); the others wait their turn. ``None``: no limit.
    """

    if TYPE_CHECKING:
        chat: _AsyncChat
        models: _AsyncModels
        embeddings: _AsyncEmbeddings
        api_keys: _AsyncApiKeys
        augment: _AsyncAugment
        crypto: _AsyncCrypto
        x402: _AsyncX402
        characters: _AsyncCharacters
        billing: _AsyncBilling
        responses: _AsyncResponses
        audio: _AsyncAudio
        images: _AsyncImages

    def __init__(self, api_key: Optional[str] = None, *, max_concurrency: Optional[int] = None, **kwargs: Any) -> None:
        if max_concurrency is not None and (not _is_number(max_concurrency, whole=True) or max_concurrency < 1):
            raise ConfigError(f"max_concurrency must be a whole number >= 1, got {max_concurrency!r}")
        self._max_concurrency = max_concurrency
        super().__init__(api_key, **kwargs)

    def _new_transport(self, config: Config, environ: Optional[Mapping[str, str]], trust_env: bool) -> Any:
        return _AsyncTransport(config, environ, trust_env, self._max_concurrency)

    def _default_sleep(self) -> Callable[[float], Any]:
        import asyncio  # (15–26 ms: loaded with the first async client, never by `import venice`)

        return asyncio.sleep

    async def __aenter__(self) -> AsyncVeniceClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the pooled connections (of every event loop). The client still works afterwards."""
        self._transport.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Optional[Mapping[str, Any]] = None,
        stream: bool = False,
        headers: Optional[Mapping[str, str]] = None,
        timeout: Optional[float] = None,
        deadline: Optional[float] = None,
    ) -> Any:
        """``VeniceClient.request``, awaited; ``stream=True`` gives an ``AsyncRawResponse``."""
        return await self._run(_request_plan(self, method, path, json, params, headers, stream, timeout, deadline))

    # -- the async driver ------------------------------------------------------------------------

    async def _run(self, plan: Generator[Any, Any, _R]) -> _R:
        """``VeniceClient._run``, awaiting the sends and the sleeps."""
        value: Any = None
        try:
            while True:
                try:
                    action = plan.send(value)
                except StopIteration as done:
                    return done.value  # type: ignore[no-any-return]
                if action.__class__ is float:
                    await self._sleep(action)
                    value = None
                else:
                    value = await self._exchange(action)
        finally:
            plan.close()  # (after a failure here, a cancelled task: its own finally blocks run now)

    async def _exchange(self, req: _Request) -> Union[_AsyncExchange, APIConnectionError]:
        """``VeniceClient._exchange``, awaited."""
        try:
            ex = await self._transport.asend(req)
            if not (req.stream and 200 <= ex.status < 300 and req.expect in ex.headers.get("content-type", "")):
                ex.body = await ex.read_all()
            return ex  # type: ignore[no-any-return]
        except APIConnectionError as err:
            return err

    def _raw_response(self, ex: _AsyncExchange, meta: ResponseMeta) -> AsyncRawResponse:
        return AsyncRawResponse(ex, meta)

    def _chat_stream(self, ex: _AsyncExchange, meta: ResponseMeta, idle: float) -> AsyncChatStream:
        return AsyncChatStream(ex, meta, idle)

    def _chunk_stream(self, stream: AsyncChatStream, usage: bool) -> _AsyncChunkStream:
        return _AsyncChunkStream(stream, usage)


class MockTransport:
    """A transport that answers from a function instead of the network, to test code that calls Venice
    (the role of httpx's ``MockTransport``), or to record and replay traffic::

        def handler(request):
            assert request.url.endswith("/chat/completions")
            return 200, {"Content-Type": "application/json"}, b'{"choices": [...]}'

        client = venice.VeniceClient(api_key="test", transport=venice.MockTransport(handler))

    Everything above the transport behaves as over sockets: retries, errors, redirects, streams,
    metadata, gzip (a ``Content-Encoding: gzip`` body is decoded).

    Args:
        handler: Called with each request, an object with ``.method``, ``.url``, ``.headers`` and
            ``.content`` (the body, bytes or ``None``), and returns ``(status, headers, body)``: headers a
            mapping, body ``bytes`` or an iterable of ``bytes`` blocks (a stream, e.g. server-sent events).
            For ``AsyncVeniceClient`` it may be a coroutine function. Raise ``APIConnectionError`` to act
            out a network failure after the request was sent (a block iterator may raise it mid-body).

    Attributes:
        requests: Every request handled so far, in order.
    """

    def __init__(self, handler: Callable[[Any], Any]) -> None:
        self.handler = handler
        self.requests: list[_Request] = []

    def send(self, request: _Request) -> _MockExchange:
        """Answer a request (the sync client's call)."""
        self.requests.append(request)
        return _MockExchange(request, self.handler(request))

    async def asend(self, request: _Request) -> _AsyncMockExchange:
        """Answer a request (the async client's call), awaiting the handler if it is a coroutine."""
        self.requests.append(request)
        reply = self.handler(request)
        if hasattr(reply, "__await__"):
            reply = await reply
        return _AsyncMockExchange(request, reply)

    def close(self) -> None:
        """Nothing to close (a client calls it when it closes)."""


class _MockExchange:
    """A ``MockTransport`` reply, read as an ``_Exchange`` is."""

    def __init__(self, request: _Request, reply: Any) -> None:
        try:
            status, headers, body = reply
        except (TypeError, ValueError):
            raise InvalidRequestError(
                f"a MockTransport handler must return (status, headers, body), not {reply!r:.80}"
            ) from None
        self.status = int(status)
        self.headers = {str(k).lower(): str(v) for k, v in dict(headers or {}).items()}
        self.timeouts = request.timeouts
        self.gunzip = _gunzip_for(self.headers)
        self.body = b""
        self._blocks: Iterator[bytes] = iter([bytes(body)] if isinstance(body, (bytes, bytearray)) else body)

    def set_timeout(self, seconds: float) -> None:
        pass  # a handler answers at once

    def _next(self) -> bytes:
        """The next block of the body (gzip decoded); ``b""`` at the end."""
        for block in self._blocks:
            data = bytes(block)
            if self.gunzip is not None and data:
                data = self.gunzip.decode(data)
            if data:
                return data
        gunzip, self.gunzip = self.gunzip, None
        if gunzip is not None:
            gunzip.end()
        return b""

    def read1(self) -> bytes:
        return self._next()

    def read_all(self) -> bytes:
        return b"".join(iter(self._next, b""))

    def close(self) -> None:
        close = getattr(self._blocks, "close", None)
        self._blocks = iter(())
        if close is not None:
            close()  # a generator's finally runs, as a server sees a client leave

    release = abort = close


class _AsyncMockExchange(_MockExchange):
    """``_MockExchange`` for the async client: the same reads, awaited."""

    async def read1(self) -> bytes:  # type: ignore[override]
        return self._next()

    async def read_all(self) -> bytes:  # type: ignore[override]
        return b"".join(iter(self._next, b""))


# The request path (issue 11): every call is written once, as a *plan* that does no I/O. A plan is a
# generator that yields what it needs done and is sent the outcome; a driver carries it out
# (``VeniceClient._run`` with http.client, ``AsyncVeniceClient._run`` with asyncio):
#
#     yield request (a _Request)  ->  sent the exchange (status, headers; .body read unless a 2xx the
#                                     caller streams) or the APIConnectionError it ended with
#     yield seconds (a float)     ->  the driver sleeps that long; sent None
#
# and returns the call's result. Retries, redirects, error mapping and decoding live here, once.


#: Routes Venice has retired (they answer 410) → what to call instead, said in the error's hint.
_RETIRED: Final = {
    "/billing/usage": "retired by Venice: use client.billing.usage_history() (GET /billing/usage-history; "
    "pageSize and the nextCursor instead of page and limit, startTimestamp and endTimestamp instead of "
    "startDate and endDate) or, for CSV, client.billing.usage_history_csv()",
}


def _send_plan(
    client: _BaseClient,
    method: str,
    path: str,
    body: Any,
    params: Optional[Mapping[str, Any]],
    extra_headers: Optional[Mapping[str, str]],
    stream: bool,
    timeout: Optional[float],
    deadline: Optional[float],
    expect: str = "",
) -> Generator[Any, Any, Any]:
    """Send with retries and redirects; return the 2xx exchange (its body read, unless streaming)."""
    req = client._build_request(method, path, body, params, extra_headers, stream, timeout, deadline)
    req.expect = expect
    policy = client.retry
    attempt = redirects = 0
    while True:
        error: VeniceError
        rheaders: dict[str, str] = {}
        wait = client._limited_until - client._clock()
        if 0 < wait <= policy.max_retry_after:  # a rate limit ran out: wait for its reset, not for 429s
            if req.timeouts.deadline is not None and time.monotonic() + wait >= req.timeouts.deadline:
                raise _conn_error(
                    f"the call's deadline would pass in the {wait:g} s until the rate limit resets",
                    _CONNECT,
                    timeout=True,
                )
            yield float(wait)
        ex = yield req
        if isinstance(ex, APIConnectionError):
            if getattr(ex, "_stage", _SENT) != _CONNECT and not (req.resend or policy.retry_unsafe):
                client._fail()
                ex.hint = ex.hint or "not sent again: it may have been processed (see RetryPolicy.retry_unsafe)"
                raise ex  # the request may have reached Venice: it may have been processed (and billed)
            error = ex
        else:
            status = ex.status
            rheaders = ex.headers
            if not (status == 429 and ("retry-after" in rheaders or "retry-after-ms" in rheaders)):
                client._note_limits(rheaders)  # (a 429's Retry-After is Venice's own answer: it wins)
            if 200 <= status < 300:
                return ex
            location = rheaders.get("location")
            if 300 <= status < 400 and location:
                req = client._redirect(req, status, location, ex)
                redirects += 1
                if redirects > 5:
                    raise VeniceAPIError(
                        "too many redirects", status_code=status, headers=rheaders, request_id=rheaders.get("cf-ray")
                    )
                continue
            meta = client._meta(ex)
            api_error = _api_error(status, rheaders, ex.body, meta, client._clock())
            if status == 410:
                route = req.target.split("?")[0][len(client._prefix) :]
                api_error.hint = _RETIRED.get(route, api_error.hint)
            should = rheaders.get("x-should-retry", "").lower()
            retryable = should == "true" or (should != "false" and status in policy.retry_statuses)
            if status == 409 and api_error.code == "needs_consent":
                retryable = False
            if not retryable:
                client._fail()
                raise api_error
            error = api_error
        failures = client._fail()
        delay = retry_delay(policy, attempt, rheaders, client._clock(), client._rand())
        if delay is None:
            error.hint = f"Venice asked to wait longer than max_retry_after ({policy.max_retry_after:g} s)"
            raise error
        if attempt >= policy.max_retries:
            if attempt:
                error.hint = (error.hint + "; " if error.hint else "") + f"gave up after {attempt + 1} attempts"
            raise error
        if failures >= policy.failure_budget:
            error.hint = (
                f"not retried: {failures} failed requests in the last {policy.failure_window:g} s; "
                "Venice blocks a key after about 20, so the error budget is spent"
            )
            raise error
        if req.timeouts.deadline is not None and time.monotonic() + delay >= req.timeouts.deadline:
            raise error
        attempt += 1
        if policy.on_retry is not None:
            policy.on_retry(attempt, error, delay)
        import logging

        logging.getLogger("venice").info("retry %d/%d in %.2f s after: %s", attempt, policy.max_retries, delay, error)
        yield float(delay)


def _request_plan(
    client: _BaseClient,
    method: str,
    path: str,
    body: Any,
    params: Optional[Mapping[str, Any]],
    headers: Optional[Mapping[str, str]],
    stream: bool,
    timeout: Optional[float],
    deadline: Optional[float],
) -> Generator[Any, Any, Any]:
    """``client.request(...)``: decoded JSON, bytes, or the raw response when streaming."""
    ex = yield from _send_plan(client, method, path, body, params, headers, stream, timeout, deadline)
    meta = client._meta(ex)
    if stream:
        return client._raw_response(ex, meta)
    return client._decode(ex, ex.body, meta, expect_json=False)


def _json_plan(
    client: _BaseClient,
    method: str,
    path: str,
    body: Any = None,
    params: Optional[Mapping[str, Any]] = None,
    cls: type[AttrDict] = AttrDict,
    headers: Optional[Mapping[str, str]] = None,
    timeout: Optional[float] = None,
    deadline: Optional[float] = None,
) -> Generator[Any, Any, Any]:
    """A call whose answer must be JSON, decoded into ``cls``."""
    ex = yield from _send_plan(client, method, path, body, params, headers, False, timeout, deadline)
    return client._decode(ex, ex.body, client._meta(ex), expect_json=True, cls=cls)


def _default_model_plan(client: _BaseClient, kind: str) -> Generator[Any, Any, str]:
    """Venice's ``default`` model of a type (``/models/traits?type=…``), looked up once per client:
    the configured ``default_model`` is a text model and does not apply to other types."""
    model = client._defaults.get(kind)
    if model is None:
        body = yield from _json_plan(client, "GET", "/models/traits", params={"type": kind})
        model = _data(body, dict, "GET /models/traits").get("default")
        if not isinstance(model, str) or not model:
            raise ConfigError(f"no model given, and Venice names no default {kind} model; pass model=…")
        client._defaults[kind] = model
    return model


def _call(plan: Callable[Concatenate[_NS, _P], Generator[Any, Any, _R]]) -> Callable[Concatenate[_NS, _P], _R]:
    """A namespace method made from a plan: its client's driver runs it (``VeniceClient`` to the end,
    ``AsyncVeniceClient`` as a coroutine), so each call is written once for both clients."""

    def method(*args: Any, **kwargs: Any) -> Any:  # (args[0] is the namespace)
        return args[0]._client._run(plan(*args, **kwargs))

    method.__name__, method.__qualname__, method.__doc__ = plan.__name__, plan.__qualname__, plan.__doc__
    method.__wrapped__ = plan  # type: ignore[attr-defined]  # help() and inspect.signature show its parameters
    return method


class RawResponse:
    """A response whose body has not been read (``client.request(..., stream=True)``).

    Read it with ``iter_bytes()`` or ``read()``; close it (or use ``with``) if you stop early.
    A gzip-encoded body is decoded as it arrives.

    Attributes:
        status_code: HTTP status. headers: Lower-case names. meta: ``ResponseMeta``.
    """

    def __init__(self, exchange: _Exchange, meta: ResponseMeta) -> None:
        self._ex = exchange
        self.status_code = exchange.status
        self.headers = exchange.headers
        self.meta = meta
        self._reading = threading.Lock()  # held during a read, so close() knows to abort it
        self._closed = False

    def iter_bytes(self) -> Iterator[bytes]:
        """Yield the body in blocks as they arrive."""
        try:
            while True:
                try:
                    with self._reading:
                        block = self._ex.read1()
                except APIConnectionError:
                    if self._closed:  # closed from another thread: end quietly
                        return
                    raise
                if not block:
                    break
                yield block
        finally:
            self._ex.close()

    def read(self) -> bytes:
        """The whole (remaining) body."""
        return b"".join(self.iter_bytes())

    def close(self) -> None:
        """Stop reading; the connection is closed unless the body was read to the end.

        Safe from another thread while one reads (a proxy whose client left): that read ends at
        once and the iteration stops quietly.
        """
        self._closed = True
        if self._reading.acquire(blocking=False):
            try:
                self._ex.close()
            finally:
                self._reading.release()
        else:
            self._ex.abort()  # wakes the blocked read; the reading thread closes the connection

    def __enter__(self) -> RawResponse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncRawResponse:
    """``RawResponse`` for ``AsyncVeniceClient``: ``async for block in r.iter_bytes()``,
    ``await r.read()``, ``await r.aclose()`` (or ``async with``). A cancelled read closes the connection.

    Attributes:
        status_code: HTTP status. headers: Lower-case names. meta: ``ResponseMeta``.
    """

    def __init__(self, exchange: _AsyncExchange, meta: ResponseMeta) -> None:
        self._ex = exchange
        self.status_code = exchange.status
        self.headers = exchange.headers
        self.meta = meta

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        """Yield the body in blocks as they arrive."""
        try:
            while True:
                block = await self._ex.read1()
                if not block:
                    return
                yield block
        finally:
            self._ex.close()

    async def read(self) -> bytes:
        """The whole (remaining) body."""
        return b"".join([block async for block in self.iter_bytes()])

    def close(self) -> None:
        """Stop reading; the connection is closed unless the body was read to the end."""
        self._ex.close()

    async def aclose(self) -> None:
        """Same as ``close()``, for ``await``."""
        self._ex.close()

    async def __aenter__(self) -> AsyncRawResponse:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._ex.close()


def _data(body: Any, kind: type, what: str) -> Any:
    """``body["data"]`` if it is a ``kind``; else the 200 answer is an error (an error object, or
    JSON of another shape), raised as ``VeniceAPIError`` instead of failing later in user code."""
    data = body.get("data") if isinstance(body, dict) and body.get("error") is None else None
    if isinstance(data, kind):
        return data
    meta = body.meta if isinstance(body, AttrDict) else None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        error = error.get("message") or error
    message = str(error) if error else f"{what} answered without a data {kind.__name__}"
    raise VeniceAPIError(message, status_code=200, body=body, request_id=getattr(meta, "request_id", None), meta=meta)


class Models:
    """``client.models``: the model catalogue. These endpoints need no API key."""

    def __init__(self, client: _BaseClient) -> None:
        self._client = client

    def _list(self, type: str = "text") -> Generator[Any, Any, ModelList]:
        body = yield from _json_plan(self._client, "GET", "/models", params={"type": type})
        rows = _data(body, list, "GET /models")
        return ModelList([Model.from_dict(r) for r in rows if isinstance(r, dict)], getattr(body, "meta", None), type)

    @_call
    def list(self, type: str = "text") -> Generator[Any, Any, ModelList]:
        """List models of one type.

        Args:
            type: ``"text"`` (default), ``"image"``, ``"embedding"``, ``"tts"``, ``"asr"``, ``"video"``,
                ``"upscale"``, ``"inpaint"``, ``"music"``, ``"code"``, or ``"all"``.
        Returns:
            A ``ModelList`` of ``Model`` objects.
        Raises:
            VeniceAPIError, APIConnectionError: Venice refused the call or could not be reached.
        """
        return (yield from self._list(type))

    @_call
    def retrieve(self, model_id: str, type: str = "all") -> Generator[Any, Any, Model]:
        """One model by id (looked up in ``list(type)``). Raises ``NotFoundError`` if absent."""
        found = (yield from self._list(type)).get(model_id)
        if found is None:
            raise NotFoundError(
                f"no model {model_id!r} in GET /models?type={type}", status_code=404, code="MODEL_NOT_FOUND"
            )
        return found

    @_call
    def traits(self, type: str = "text") -> Generator[Any, Any, dict[str, str]]:
        """Trait → model id (``{"default": "…", "most_uncensored": "…"}``).

        Raises:
            VeniceAPIError, APIConnectionError: As for ``list()``.
        """
        body = yield from _json_plan(self._client, "GET", "/models/traits", params={"type": type})
        return dict(_data(body, dict, "GET /models/traits"))

    @_call
    def compatibility_mapping(self, type: str = "text") -> Generator[Any, Any, dict[str, str]]:
        """Other providers' model names → Venice model ids.

        Raises:
            VeniceAPIError, APIConnectionError: As for ``list()``.
        """
        body = yield from _json_plan(self._client, "GET", "/models/compatibility_mapping", params={"type": type})
        return dict(_data(body, dict, "GET /models/compatibility_mapping"))


class Chat:
    """``client.chat``: ``complete()`` and the OpenAI-style ``completions.create()``."""

    def __init__(self, client: _BaseClient) -> None:
        self._client = client
        self.completions = Completions(client)

    # The result's type follows ``stream``: a ChatResponse, a ChatStream, or (for a bool only known at
    # run time) either.
    @_overload
    def complete(
        self,
        messages: Union[str, Sequence[Mapping[str, Any]]],
        model: Optional[str] = None,
        *,
        temperature: Optional[float] = DEFAULT_TEMPERATURE,
        stream: Literal[False] = False,
        max_tokens: Optional[int] = None,
        tools: Optional[Sequence[Any]] = None,
        venice_parameters: Optional[Mapping[str, Any]] = None,
        stop: Union[str, Sequence[str], None] = None,
        timeout: Optional[float] = None,
        deadline: Optional[float] = None,
        headers: Optional[Mapping[str, str]] = None,
        **kwargs: Any,
    ) -> ChatResponse: ...

    @_overload
    def complete(
        self,
        messages: Union[str, Sequence[Mapping[str, Any]]],
        model: Optional[str] = None,
        *,
        temperature: Optional[float] = DEFAULT_TEMPERATURE,
        stream: Literal[True],
        max_tokens: Optional[int] = None,
        tools: Optional[Sequence[Any]] = None,
        venice_parameters: Optional[Mapping[str, Any]] = None,
        stop: Union[str, Sequence[str], None] = None,
        timeout: Optional[float] = None,
        deadline: Optional[float] = None,
        headers: Optional[Mapping[str, str]] = None,
        **kwargs: Any,
    ) -> ChatStream: ...

    @_overload
    def complete(
        self,
        messages: Union[str, Sequence[Mapping[str, Any]]],
        model: Optional[str] = None,
        *,
        temperature: Optional[float] = DEFAULT_TEMPERATURE,
        stream: bool,
        max_tokens: Optional[int] = None,
        tools: Optional[Sequence[Any]] = None,
        venice_parameters: Optional[Mapping[str, Any]] = None,
        stop: Union[str, Sequence[str], None] = None,
        timeout: Optional[float] = None,
        deadline: Optional[float] = None,
        headers: Optional[Mapping[str, str]] = None,
        **kwargs: Any,
    ) -> Union[ChatResponse, ChatStream]: ...

    def complete(
        self,
        messages: Union[str, Sequence[Mapping[str, Any]]],
        model: Optional[str] = None,
        *,
        temperature: Optional[float] = DEFAULT_TEMPERATURE,
        stream: bool = False,
        max_tokens: Optional[int] = None,
        tools: Optional[Sequence[Any]] = None,
        venice_parameters: Optional[Mapping[str, Any]] = None,
        stop: Union[str, Sequence[str], None] = None,
        timeout: Optional[float] = None,
        deadline: Optional[float] = None,
        headers: Optional[Mapping[str, str]] = None,
        character: Optional[str] = None,
        **kwargs: Any,
    ) -> Union[ChatResponse, ChatStream]:
        """Ask a model for a chat completion.

        Args:
            messages: The conversation (``[{"role": "user", "content": "…"}, …]``), or one string
                (a single user message).
            model: Model id, trait or alias; default ``config.default_model`` (``VENICE_MODEL``).
            temperature: 0–2. The default, 0.15 (``DEFAULT_TEMPERATURE``), is sent with every call,
                the CLI's included; pass ``None`` to send none and get the model's own default.
            stream: Return a ``ChatStream`` that yields text as it arrives.
            max_tokens: Most tokens to generate; sent as ``max_completion_tokens`` (Venice's current
                field, reasoning included).
            tools: OpenAI-style tool dicts, or plain Python functions (described with
                ``function_to_tool``).
            venice_parameters: Venice options, e.g. ``{"enable_web_search": "auto"}``.
            stop: A stop sequence or up to 4 of them.
            character: A character's slug (``client.characters.list()``): the model answers as that
                character (sent as ``venice_parameters.character_slug``).
            timeout: Read timeout for this call (for streams: the longest wait between data events).
            deadline: Overall seconds for the call, retries and stream included.
            headers: Extra headers for this call.
            **kwargs: Any other field of Venice's chat request (``top_p``, ``response_format``,
                ``tool_choice``, ``seed``, ``reasoning_effort``, …), passed unchanged; ``None`` values
                are dropped.
        Returns:
            A ``ChatResponse``, or a ``ChatStream`` when ``stream=True``.
        Raises:
            InvalidRequestError: Bad arguments (before sending) or rejected by Venice.
            ConfigError: No model given and no default, or no API key.
            VeniceAPIError, APIConnectionError, StreamError: see the Errors section.
        """
        body: dict[str, Any] = {"model": model, "messages": _check_messages(messages)}
        if temperature is not None:
            if not _is_number(temperature) or not 0 <= temperature <= 2:
                raise InvalidRequestError(f"temperature must be a number from 0 to 2, got {temperature!r}")
            body["temperature"] = temperature
        if max_tokens is not None:
            if not _is_number(max_tokens, whole=True) or max_tokens < 1:
                raise InvalidRequestError(f"max_tokens must be a whole number >= 1, got {max_tokens!r}")
            kwargs.setdefault("max_completion_tokens", max_tokens)
        if tools:
            if not isinstance(tools, (list, tuple)):
                raise InvalidRequestError(
                    f"tools must be a list of tool dicts or functions, got {type(tools).__name__}"
                )
            body["tools"] = [function_to_tool(t) if callable(t) and not isinstance(t, dict) else t for t in tools]
            for i, tool in enumerate(body["tools"]):
                if not isinstance(tool, dict):
                    raise InvalidRequestError(f"tools[{i}] must be a tool dict or a function, got {tool!r}")
        if venice_parameters:
            _check_dict("venice_parameters", venice_parameters, InvalidRequestError)
            body["venice_parameters"] = dict(venice_parameters)
        if character is not None:
            if not isinstance(character, str) or not character:
                raise InvalidRequestError(f"character must be a character's slug, got {character!r}")
            body["venice_parameters"] = {**body.get("venice_parameters", {}), "character_slug": character}
        body["stop"] = normalize_stop(stop)
        seed = kwargs.get("seed")
        if seed is not None and (not _is_number(seed, whole=True) or seed < 1):
            raise InvalidRequestError(f"seed must be a whole number >= 1 (Venice rejects 0), got {seed!r}")
        body.update(kwargs)
        return self._client._run(_chat_plan(self._client, body, stream, timeout, deadline, headers))  # type: ignore[no-any-return]


def _chat_plan(
    client: _BaseClient,
    body: dict[str, Any],
    stream: bool,
    timeout: Optional[float],
    deadline: Optional[float],
    headers: Optional[Mapping[str, str]],
    params: Optional[Mapping[str, Any]] = None,
) -> Generator[Any, Any, Any]:
    """POST a chat request (default model and stream flags filled in); a ChatResponse or a stream."""
    body["model"] = body.get("model") or client.config.default_model
    if not body["model"]:
        raise ConfigError(
            "No model given: pass model=… (list them with `python -m venice models`) or set VENICE_MODEL."
        )
    if not isinstance(body["model"], str):
        raise InvalidRequestError(f"model must be a model id string, got {body['model']!r}")
    if stream:
        body["stream"] = True
        body.setdefault("stream_options", {"include_usage": True})
    else:
        body.pop("stream", None)
    ex = yield from _send_plan(
        client, "POST", "/chat/completions", body, params, headers, stream, timeout, deadline, "text/event-stream"
    )
    meta, data = client._meta(ex), ex.body
    if not stream:
        response = client._decode(ex, data, meta, expect_json=True, cls=ChatResponse)
        failed = isinstance(response, dict) and response.get("error") is not None  # ("error": null is none)
        if not failed and isinstance(response, ChatResponse) and isinstance(response.get("choices", []), list):
            return response  # (no `choices` at all reads as an answer with no text: .text is None)
        # A 200 carrying an error object (as streams do in band), or JSON that is no chat completion:
        # never hand it back as an answer whose text is just None.
        raise _unexpected_answer(ex, meta, data, None if failed else "the answer is not a chat completion")
    ctype = ex.headers.get("content-type", "").lower()
    if "text/event-stream" not in ctype:
        # A 200 that is not a stream (an HTML page from a proxy, a JSON error; the driver read it
        # whole) must not pass for an empty, successful answer.
        raise _unexpected_answer(ex, meta, data, f"expected an event stream but got {ctype or 'no content type'}")
    return client._chat_stream(ex, meta, timeout or client.config.timeout)


def _unexpected_answer(ex: _Exchange, meta: ResponseMeta, raw: bytes, prefix: Optional[str]) -> VeniceAPIError:
    """A 2xx that is not the answer asked for, as an error with what Venice sent (its message and
    code when it is an error object, else an excerpt), after ``prefix`` if one is given."""
    message, code, parsed = _parse_error_body(ex.status, raw)
    return VeniceAPIError(
        f"{prefix}: {message}" if prefix else message,
        status_code=ex.status,
        code=code,
        body=parsed,
        headers=ex.headers,
        request_id=meta.request_id,
        meta=meta,
    )


def _check_messages(messages: Any) -> list[Any]:
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    if not isinstance(messages, (list, tuple)) or not messages:
        raise InvalidRequestError(
            "messages must be a string or a non-empty list of {'role': …, 'content': …} dicts, "
            f"got {type(messages).__name__}"
        )
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            raise InvalidRequestError(
                f"messages[{i}] must be a dict with 'role' and 'content', got {type(msg).__name__}"
            )
        role = msg.get("role")
        if not isinstance(role, str) or role not in _ROLES:
            raise InvalidRequestError(
                f"messages[{i}] has {'no role' if role is None else f'role {role!r}'}; "
                f"use one of {', '.join(sorted(_ROLES))}"
            )
        if role == "tool" and not msg.get("tool_call_id"):
            raise InvalidRequestError(f"messages[{i}] is a tool message without tool_call_id")
    return list(messages)


class Completions:
    """``client.chat.completions``: OpenAI's calling convention over the same machinery."""

    def __init__(self, client: _BaseClient) -> None:
        self._client = client

    @_overload
    def create(
        self,
        *,
        messages: Sequence[Mapping[str, Any]],
        model: Optional[str] = None,
        stream: Literal[False] = False,
        timeout: Optional[float] = None,
        extra_body: Optional[Mapping[str, Any]] = None,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, Any]] = None,
        **kwargs: Any,
    ) -> ChatResponse: ...

    @_overload
    def create(
        self,
        *,
        messages: Sequence[Mapping[str, Any]],
        model: Optional[str] = None,
        stream: Literal[True],
        timeout: Optional[float] = None,
        extra_body: Optional[Mapping[str, Any]] = None,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, Any]] = None,
        **kwargs: Any,
    ) -> _ChunkStream: ...

    @_overload
    def create(
        self,
        *,
        messages: Sequence[Mapping[str, Any]],
        model: Optional[str] = None,
        stream: bool,
        timeout: Optional[float] = None,
        extra_body: Optional[Mapping[str, Any]] = None,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, Any]] = None,
        **kwargs: Any,
    ) -> Union[ChatResponse, _ChunkStream]: ...

    def create(
        self,
        *,
        messages: Sequence[Mapping[str, Any]],
        model: Optional[str] = None,
        stream: bool = False,
        timeout: Optional[float] = None,
        extra_body: Optional[Mapping[str, Any]] = None,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, Any]] = None,
        **kwargs: Any,
    ) -> Union[ChatResponse, _ChunkStream]:
        """Create a chat completion with the openai SDK's arguments.

        Fields Venice's chat API does not accept are translated or dropped (see README's table:
        ``functions``/``function_call`` become ``tools``/``tool_choice``; ``logit_bias``,
        ``service_tier``, ``modalities``, … are dropped); ``None`` values are never sent.
        ``extra_body`` (e.g. ``{"venice_parameters": {...}}``) is merged in as is.

        Returns:
            A ``ChatResponse``, or, when ``stream=True``, an iterator of chunk objects
            (``chunk.choices[0].delta.content``) that is also a context manager.
        Raises:
            InvalidRequestError: Bad arguments (before sending) or rejected by Venice.
            VeniceAPIError, APIConnectionError: Venice refused the call or could not be reached.
        """
        body = _venice_chat_body({**kwargs, "model": model, "messages": _check_messages(messages)})
        body.update(_extra_body(extra_body))
        usage = _asks_for_usage(body)  # (before _chat_plan asks for it anyway)
        plan = _chat_plan(self._client, body, stream, timeout, None, extra_headers, extra_query)
        return self._client._run(_chunks_plan(self._client, plan, usage))  # type: ignore[no-any-return]


def _chunks_plan(client: _BaseClient, plan: Generator[Any, Any, Any], usage: bool) -> Generator[Any, Any, Any]:
    """The shim's result: a stream of chunk objects instead of text (see ``_ChunkStream``)."""
    result = yield from plan
    return result if isinstance(result, ChatResponse) else client._chunk_stream(result, usage)


# -- paged results, characters and billing (issue 13) -------------------------------------------


if TYPE_CHECKING:
    from typing import Generic

    _Row = TypeVar("_Row")  # what a Pages yields (Character, UsageEntry, …)

    class _RowsOf(Generic[_Row]):  # (Pages is generic for type checkers only: typing stays unloaded)
        pass
else:
    _Row = None

    class _RowsOf:
        def __class_getitem__(cls, item: Any) -> Any:
            return cls


class Pages(_RowsOf[_Row]):
    """The rows of a paged endpoint, fetched one page at a time as you iterate, never ahead: a
    ``break`` after ten rows fetches no further page. ``for`` with ``VeniceClient``, ``async for``
    with ``AsyncVeniceClient`` (the call itself is not awaited). Each iteration starts again from
    the first page.

    Attributes:
        meta: ``ResponseMeta`` of the last page fetched (``None`` before the first).
        pages: How many pages have been fetched.
        total: The number of rows Venice reports for the whole result, when it reports one.

    Example::

        for character in client.characters.list("philosopher"):
            print(character.slug)
    """

    def __init__(
        self,
        client: _BaseClient,
        first: Any,
        fetch: Callable[[Any], Generator[Any, Any, tuple[Any, Any, ResponseMeta, Optional[int]]]],
    ) -> None:
        self._client = client
        self._first = first
        self._fetch = fetch  # state -> plan returning (rows, next state or None, meta, total)
        self.meta: Optional[ResponseMeta] = None
        self.pages = 0
        self.total: Optional[int] = None

    def __repr__(self) -> str:
        return f"<Pages: {self.pages} fetched>"

    def _page(self, state: Any) -> Generator[Any, Any, tuple[Any, Any]]:
        rows, following, meta, total = yield from self._fetch(state)
        self.meta, self.pages = meta, self.pages + 1
        if total is not None:
            self.total = total
        return rows, following

    def __iter__(self) -> Iterator[_Row]:
        if isinstance(self._client, AsyncVeniceClient):
            raise TypeError("these pages come from an AsyncVeniceClient: iterate with `async for`")
        return self._rows()

    def _rows(self) -> Iterator[_Row]:
        state = self._first
        while state is not None:
            rows, state = self._client._run(self._page(state))
            yield from rows

    def __aiter__(self) -> AsyncIterator[_Row]:
        if not isinstance(self._client, AsyncVeniceClient):
            raise TypeError("these pages come from a VeniceClient: iterate with `for`")
        return self._arows()

    async def _arows(self) -> AsyncIterator[_Row]:
        state = self._first
        while state is not None:
            rows, state = await self._client._run(self._page(state))
            for row in rows:
                yield row


def _whole(name: str, value: Any, low: int, high: Optional[int] = None) -> int:
    """A whole-number argument within bounds, or ``InvalidRequestError`` before anything is sent."""
    if not _is_number(value, whole=True) or value < low or (high is not None and value > high):
        bounds = f"from {low} to {high}" if high is not None else f">= {low}"
        raise InvalidRequestError(f"{name} must be a whole number {bounds}, got {value!r}")
    return int(value)


def _csv_param(name: str, value: Union[str, Sequence[str], None]) -> Optional[str]:
    """A list filter as Venice takes it in a query: comma-separated (its spec accepts both forms)."""
    if value is None or isinstance(value, str):
        return value
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise InvalidRequestError(f"{name} must be a string or a list of strings, got {value!r}")
    return ",".join(value) or None


def _slug_path(slug: Any, suffix: str = "") -> str:
    if not isinstance(slug, str) or not slug.strip():
        raise InvalidRequestError(f"slug must be a non-empty string (e.g. 'alan-watts'), got {slug!r}")
    from urllib.parse import quote

    return f"/characters/{quote(slug, safe='')}{suffix}"


def _timestamp(name: str, value: Any) -> Optional[str]:
    """An ISO 8601 UTC timestamp (``Z`` suffix, as Venice wants) from a ``datetime`` (naive: UTC),
    a ``date`` (its midnight, UTC) or a string (sent as given)."""
    if value is None:
        return None
    if isinstance(value, str):
        return str(value)  # (a str subclass as a plain str)
    import datetime

    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        text: str = value.strftime("%Y-%m-%dT%H:%M:%S")
        return text + (f".{value.microsecond // 1000:03d}Z" if value.microsecond else "Z")
    if isinstance(value, datetime.date):
        return f"{value.isoformat()}T00:00:00Z"
    raise InvalidRequestError(f"{name} must be a datetime, a date or an ISO 8601 string, got {value!r}")


def _object(body: Any, what: str, key: Optional[str] = None) -> Any:
    """A 200 JSON answer that must be an object (with ``key``, and no ``error`` then); anything else
    (a list, a bare value, an error object) is raised as ``VeniceAPIError`` with Venice's message."""
    if isinstance(body, AttrDict) and (key is None or (key in body and body.get("error") is None)):
        return body
    meta = body.meta if isinstance(body, AttrDict) else None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        error = error.get("message") or error
    missing = "with JSON that is not an object" if key is None else f"without {key!r}"
    message = str(error) if error else f"{what} answered {missing}"
    raise VeniceAPIError(message, status_code=200, body=body, request_id=getattr(meta, "request_id", None), meta=meta)


class Characters:
    """``client.characters``: Venice's public characters (a preview API at Venice). Chat with one
    with ``client.chat.complete(..., character="slug")``."""

    def __init__(self, client: _BaseClient) -> None:
        self._client = client

    def list(
        self,
        search: Optional[str] = None,
        *,
        categories: Union[str, Sequence[str], None] = None,
        tags: Union[str, Sequence[str], None] = None,
        model_id: Union[str, Sequence[str], None] = None,
        is_adult: Optional[bool] = None,
        is_pro: Optional[bool] = None,
        is_web_enabled: Optional[bool] = None,
        sort_by: Optional[str] = None,
        sort_order: Optional[str] = None,
        page_size: int = 50,
        offset: int = 0,
    ) -> Pages[Character]:
        """The characters, fetched lazily page by page (``GET /characters``, by limit and offset).

        Args:
            search: Words to find in names, descriptions or tags (``#tag`` works).
            categories, tags, model_id: Keep characters in these (a string or a list of up to 20).
            is_adult, is_pro, is_web_enabled: Keep only characters with (``True``) or without
                (``False``) adult content, a pro model, web access.
            sort_by: ``"featured"``, ``"highestRating"``, ``"highlyRated"``, ``"highlyRatedAndRecent"``,
                ``"imports"``, ``"mostRecent"`` or ``"ratingCount"``. sort_order: ``"asc"`` or ``"desc"``.
            page_size: Characters per request, 1–100. offset: Characters to skip.
        Returns:
            ``Pages`` of character objects (``.slug``, ``.name``, ``.description``, ``.stats``, …):
            iterate with ``for`` (``async for`` with ``AsyncVeniceClient``). The first request is
            sent when iteration starts; a page shorter than ``page_size`` is the last.
        Raises:
            InvalidRequestError: Bad arguments (at the call) or rejected by Venice (while iterating).
            VeniceAPIError, APIConnectionError: While iterating, as for any call.

        Example::

            for c in itertools.islice(client.characters.list(sort_by="highestRating"), 10):
                print(c.slug, c.name)
        """
        limit = _whole("page_size", page_size, 1, 100)
        params = {
            "search": search,
            "categories": _csv_param("categories", categories),
            "tags": _csv_param("tags", tags),
            "modelId": _csv_param("model_id", model_id),
            "isAdult": is_adult,
            "isPro": is_pro,
            "isWebEnabled": is_web_enabled,
            "sortBy": sort_by,
            "sortOrder": sort_order,
            "limit": limit,
        }
        client = self._client

        def fetch(start: int) -> Generator[Any, Any, tuple[Any, Any, ResponseMeta, Optional[int]]]:
            body = yield from _json_plan(client, "GET", "/characters", params={**params, "offset": start})
            rows = _data(body, list, "GET /characters")
            # Venice reports no total here: a short page is the last one.
            following = start + len(rows) if len(rows) >= limit else None
            return rows, following, body.meta, None

        pages: Pages[Character] = Pages(client, _whole("offset", offset, 0), fetch)
        return pages

    @_call
    def get(self, slug: str) -> Generator[Any, Any, Character]:
        """One character by its slug (``GET /characters/{slug}``).

        Returns:
            The character (``.name``, ``.description``, ``.modelId``, ``.stats``, …) with ``.meta``.
        Raises:
            NotFoundError: No such character. VeniceAPIError, APIConnectionError: As for any call.

        Example::

            print(client.characters.get("alan-watts").description)
        """
        path = _slug_path(slug)
        body = yield from _json_plan(self._client, "GET", path)
        character: Character = _data(body, dict, f"GET {path}")
        character.meta = body.meta
        return character

    def reviews(self, slug: str, *, page_size: int = 20, page: int = 1) -> Pages[CharacterReview]:
        """A character's public reviews, fetched lazily page by page (``GET /characters/{slug}/reviews``,
        by page and pageSize; ``x-pagination-*`` headers say how many there are).

        Args:
            slug: The character. page_size: Reviews per request, 1–100. page: The first page to fetch (1-based).
        Returns:
            ``Pages`` of reviews (``.rating``, ``.message``, ``.createdAt``, …), ``.total`` the number
            of reviews Venice reports; ``for`` (or ``async for``) as for ``list()``.
        Raises:
            InvalidRequestError: Bad arguments. NotFoundError: No such character (while iterating).

        Example::

            for review in client.characters.reviews("alan-watts"):
                print(review.rating, review.message)
        """
        path = _slug_path(slug, "/reviews")
        size = _whole("page_size", page_size, 1, 100)
        client = self._client

        def fetch(number: int) -> Generator[Any, Any, tuple[Any, Any, ResponseMeta, Optional[int]]]:
            body = yield from _json_plan(client, "GET", path, params={"page": number, "pageSize": size})
            rows = _data(body, list, f"GET {path}")
            meta: ResponseMeta = body.meta
            paging = body.get("pagination") if isinstance(body.get("pagination"), dict) else {}
            pages = _number(meta.headers.get("x-pagination-total-pages"), int)
            total = _number(meta.headers.get("x-pagination-total"), int)
            pages = pages if pages is not None else paging.get("totalPages")
            total = total if total is not None else paging.get("total")
            more = rows and (not isinstance(pages, int) or number < pages)
            return rows, number + 1 if more else None, meta, total if isinstance(total, int) else None

        pages: Pages[CharacterReview] = Pages(client, _whole("page", page, 1), fetch)
        return pages


def _csv_records(data: bytes) -> int:
    """CSV records in ``data``: line ends outside quoted fields (RFC 4180: a quoted field may hold a
    line break, and ``""`` inside one toggles twice), plus a last line without one."""
    outside = data.split(b'"')[::2]
    return sum(part.count(b"\n") for part in outside) + (1 if data and not data.endswith(b"\n") else 0)


def _csv_body(data: bytes) -> bytes:
    """``data`` without its first CSV record (the header row)."""
    offset = 0
    for i, part in enumerate(data.split(b'"')):
        if not i % 2:
            end = part.find(b"\n")
            if end >= 0:
                return data[offset + end + 1 :]
        offset += len(part) + 1
    return b""


class Billing:
    """``client.billing``: balance, usage history (JSON rows or Venice's CSV export) and analytics.
    These routes need an ADMIN key (an INFERENCE key gets ``UnauthorizedError``)."""

    def __init__(self, client: _BaseClient) -> None:
        self._client = client

    @_call
    def balance(self) -> Generator[Any, Any, Balance]:
        """The account's balances (``GET /billing/balance``).

        Returns:
            ``.balances.usd`` and ``.balances.diem`` (``None`` where there is none), ``.canConsume``,
            ``.consumptionCurrency`` and ``.diemEpochAllocation``, with ``.meta``.
        Raises:
            UnauthorizedError: Not an ADMIN key. VeniceAPIError, APIConnectionError: As for any call.

        Example::

            b = client.billing.balance()
            print(b.balances.usd, "USD", b.balances.diem, "DIEM")
        """
        body = yield from _json_plan(self._client, "GET", "/billing/balance")
        balance: Balance = _object(body, "GET /billing/balance", "balances")
        return balance

    def _history_params(self, currency: Any, start: Any, end: Any, page_size: Any) -> dict[str, Any]:
        return {
            "currency": currency,
            "startTimestamp": _timestamp("start", start),
            "endTimestamp": _timestamp("end", end),
            "pageSize": None if page_size is None else _whole("page_size", page_size, 10, 1000),
        }

    def usage_history(
        self,
        *,
        currency: Optional[str] = None,
        start: Any = None,
        end: Any = None,
        page_size: Optional[int] = None,
    ) -> Pages[UsageEntry]:
        """Usage ledger entries, oldest first, fetched lazily page by page (``GET /billing/usage-history``,
        by cursor: each page's ``nextCursor`` fetches the next; the filters travel in the cursor).

        Args:
            currency: ``"USD"``, ``"DIEM"`` or ``"BUNDLED_CREDITS"``.
            start, end: From ``start`` (inclusive) to ``end`` (exclusive): ``datetime`` (naive: UTC),
                ``date`` or an ISO 8601 string such as ``"2026-06-01T00:00:00Z"``.
            page_size: Entries per request, 10–1000 (Venice's default 1000).
        Returns:
            ``Pages`` of entries (``.timestamp``, ``.sku``, ``.units``, ``.amount``, ``.currency``,
            ``.inferenceDetails``, …); ``for`` (or ``async for``).
        Raises:
            InvalidRequestError: Bad arguments, or a cursor Venice rejected (restart the walk).
            UnauthorizedError: Not an ADMIN key.

        Example::

            spent = sum(-e.amount for e in client.billing.usage_history(currency="USD", start=date(2026, 6, 1)))
        """
        params = self._history_params(currency, start, end, page_size)
        client = self._client

        def fetch(cursor: str) -> Generator[Any, Any, tuple[Any, Any, ResponseMeta, Optional[int]]]:
            # A continuation sends the cursor alone: Venice rejects filters sent beside one.
            query = {"cursor": cursor} if cursor else params
            body = yield from _json_plan(client, "GET", "/billing/usage-history", params=query)
            rows = _data(body, list, "GET /billing/usage-history")
            following = body.get("nextCursor")
            return rows, following if isinstance(following, str) and following else None, body.meta, None

        pages: Pages[UsageEntry] = Pages(client, "", fetch)
        return pages

    @_call
    def usage_history_csv(
        self,
        path_or_file: Any,
        *,
        currency: Optional[str] = None,
        start: Any = None,
        end: Any = None,
        page_size: Optional[int] = None,
        progress: Optional[Callable[[int], Any]] = None,
    ) -> Generator[Any, Any, int]:
        """Save Venice's CSV export of the usage history (``GET /billing/usage-history`` with
        ``Accept: text/csv``), every page of it (each page's ``x-next-cursor`` header fetches the
        next), as one CSV file with one header row.

        A path is written through a temporary file beside it (readable by you only, as the result
        is) that is renamed when the last page is in: the path never holds half an export, and a
        failure leaves it as it was. A file object (binary, or text) is written to page by page.

        Args:
            path_or_file: Where to write: a path, or an open file.
            currency, start, end, page_size: As for ``usage_history()``.
            progress: Called with the number of rows written so far after each page.
        Returns:
            The number of data rows written (header not counted).
        Raises:
            VeniceAPIError: An error status, or an answer that is not CSV. OSError: The file can't be written.

        Example::

            rows = client.billing.usage_history_csv("usage.csv", start="2026-06-01T00:00:00Z")
        """
        is_path = isinstance(path_or_file, (str, os.PathLike))
        if not is_path and not callable(getattr(path_or_file, "write", None)):
            raise InvalidRequestError(f"path_or_file must be a path or a writable file, got {path_or_file!r}")
        params = self._history_params(currency, start, end, page_size)
        import io

        text = not is_path and isinstance(path_or_file, io.TextIOBase)
        out: Any = None if is_path else path_or_file
        beside: Optional[_Beside] = None
        complete = False
        rows = pages = 0
        cursor = ""
        ended_line = True
        try:
            while True:
                query = {"cursor": cursor} if cursor else params
                csv = {"Accept": "text/csv"}
                ex = yield from _send_plan(
                    self._client, "GET", "/billing/usage-history", None, query, csv, False, None, None
                )
                ctype = ex.headers.get("content-type", "").lower()
                if "csv" not in ctype:
                    raise _unexpected_answer(
                        ex, self._client._meta(ex), ex.body, f"expected CSV but got {ctype or 'no content type'}"
                    )
                data = bytes(ex.body)
                if pages:
                    data = _csv_body(data)  # one header row, however many pages
                    rows += _csv_records(data)
                else:
                    rows += max(0, _csv_records(data) - 1)
                if out is None:  # (opened once the first page is in: a failed first request leaves no file)
                    beside = _Beside(path_or_file)
                    out = beside.file
                if data:
                    if not ended_line:  # (a page that did not end its last row)
                        data = b"\n" + data
                    out.write(data.decode("utf-8") if text else data)
                    ended_line = data.endswith(b"\n")
                pages += 1
                if progress is not None:
                    progress(rows)
                cursor = ex.headers.get("x-next-cursor", "").strip()
                if not cursor:
                    break
            complete = True
            return rows
        finally:
            if beside is not None:  # renamed into place when complete; failed or cancelled: no half file
                beside.finish(complete)

    @_call
    def usage_analytics(
        self, lookback: Optional[str] = None, *, start_date: Any = None, end_date: Any = None
    ) -> Generator[Any, Any, UsageAnalytics]:
        """Usage totals by date, model and API key (``GET /billing/usage-analytics``; beta at Venice,
        cached there for 10 minutes).

        Args:
            lookback: The period, e.g. ``"7d"`` (Venice's default) up to ``"90d"``.
            start_date, end_date: Instead of ``lookback``: both, as ``date`` or ``"YYYY-MM-DD"``.
        Returns:
            ``.byDate``, ``.byModel``, ``.byKey``, ``.topModels``, … with ``.meta``.
        Raises:
            InvalidRequestError: Only one of start_date and end_date. VeniceAPIError, APIConnectionError.

        Example::

            for day in client.billing.usage_analytics("30d").byDate:
                print(day.date, day.USD)
        """
        if (start_date is None) != (end_date is None):
            raise InvalidRequestError("pass both start_date and end_date, or neither")
        # (Venice wants YYYY-MM-DD: a datetime is taken by its date)
        dates = [
            (d.date() if hasattr(d, "date") else d).isoformat() if hasattr(d, "isoformat") else d
            for d in (start_date, end_date)
        ]
        params = {"lookback": lookback, "startDate": dates[0], "endDate": dates[1]}
        body = yield from _json_plan(self._client, "GET", "/billing/usage-analytics", params=params)
        analytics: UsageAnalytics = _object(body, "GET /billing/usage-analytics", "byDate")
        return analytics


# -- API keys, web search and scraping, crypto RPC, x402 (issue 13) ---------------------------------

#: Routes Venice serves without a key whatever the method (security ``[]`` in its spec): the key
#: is not required there (it is still sent if configured, as for ``/models``).
_OPEN_ROUTES: Final = frozenset({"/crypto/rpc/networks", "/api_keys/generate_web3_key", "/x402/top-up"})
#: Wallet credentials a caller may pass instead of the key (Sign-In-With-X, x402 payment, with the
#: legacy names Venice still accepts). The stdlib can't sign them (no secp256k1 or keccak): the
#: caller's wallet code makes them, and a request carrying one is sent without the configured key.
_WALLET_HEADERS: Final = frozenset(
    {"sign-in-with-x", "x-sign-in-with-x", "payment-signature", "x-402-payment", "x-payment"}
)


def _wallet_signed(headers: Optional[Mapping[str, str]]) -> bool:
    return bool(headers) and any(str(name).lower() in _WALLET_HEADERS for name in headers)  # type: ignore[union-attr]


class _Form:
    """A ready ``multipart/form-data`` body (see ``_multipart``): ``_build_request`` sends it as is."""

    __slots__ = ("data", "content_type")

    def __init__(self, data: bytes, content_type: str) -> None:
        self.data, self.content_type = data, content_type


def _form_quote(text: str) -> str:
    """A ``name``/``filename`` parameter value: UTF-8 as is (RFC 7578 §4.2 leaves non-ASCII names
    unencoded), with backslashes and quotes escaped as in a quoted-string, and line breaks (which
    would end the header line) percent-encoded as browsers do."""
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    return text.replace("\r", "%0D").replace("\n", "%0A")


def _multipart(fields: Sequence[tuple[str, Any]]) -> _Form:
    """Encode form fields as ``multipart/form-data`` (RFC 7578).

    Args:
        fields: ``(name, value)`` pairs in order; a value is a ``str`` (a text field) or a
            ``(filename, data_bytes, content_type)`` tuple (a file).
    Returns:
        The body and its ``Content-Type`` (with the boundary), as a ``_Form``.
    """
    parts: list[tuple[bytes, bytes]] = []
    for name, value in fields:
        disposition = f'Content-Disposition: form-data; name="{_form_quote(name)}"'
        if isinstance(value, tuple):
            filename, data, ctype = value
            lines = f'{disposition}; filename="{_form_quote(filename)}"\r\nContent-Type: {ctype}'
        else:
            lines, data = disposition, str(value).encode("utf-8")
        parts.append((lines.encode("utf-8"), bytes(data)))
    while True:  # a random boundary, drawn again in the (astronomically rare) case it occurs in the data
        boundary = "venice-" + os.urandom(16).hex()
        marker = boundary.encode("ascii")
        if not any(marker in head or marker in data for head, data in parts):
            break
    out = bytearray()
    for head, data in parts:
        out += b"--" + marker + b"\r\n" + head + b"\r\n\r\n" + data + b"\r\n"
    out += b"--" + marker + b"--\r\n"
    return _Form(bytes(out), f"multipart/form-data; boundary={boundary}")


def _file_part(file: Any, filename: Optional[str], content_type: Optional[str]) -> tuple[str, bytes, str]:
    """``(filename, data, content_type)`` from a path, bytes or a binary file object."""
    if isinstance(file, (bytes, bytearray, memoryview)):
        data, name = bytes(file), filename or "file"
    elif isinstance(file, (str, os.PathLike)):
        path = os.fspath(file)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as err:
            raise InvalidRequestError(f"can't read {path!r}: {err.strerror or err}") from None
        name = filename or os.path.basename(path) or "file"
    elif callable(getattr(file, "read", None)):
        data = file.read()
        if not isinstance(data, (bytes, bytearray)):
            raise InvalidRequestError("the file must be opened in binary mode ('rb'): read() gave text")
        given = getattr(file, "name", None)
        name = filename or (os.path.basename(given) if isinstance(given, str) and given else "file")
    else:
        raise InvalidRequestError(f"file must be a path, bytes or a binary file object, not {type(file).__name__}")
    if content_type is None:
        import mimetypes

        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return name, bytes(data), content_type


def _segment(name: str, value: Any) -> str:
    """A value put in a URL path, percent-encoded (an id with a ``/`` stays one segment)."""
    if not isinstance(value, str) or not value:
        raise InvalidRequestError(f"{name} must be a non-empty string, got {value!r}")
    from urllib.parse import quote

    return quote(value, safe="")


def _expiry(value: Any) -> Any:
    """``expires_at`` as Venice takes it: a ``str`` as given (``""`` clears it on ``update``), a
    ``datetime`` as UTC ``YYYY-MM-DDTHH:MM:SSZ`` (naive ones are taken as UTC), a ``date`` as ``YYYY-MM-DD``."""
    if value is None or isinstance(value, str):
        return value
    import datetime as dt

    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc)
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, dt.date):
        return value.isoformat()
    raise InvalidRequestError(f"expires_at must be a str, date or datetime, not {type(value).__name__}")


def _key_fields(
    description: Optional[str],
    consumption_limit: Optional[Mapping[str, Any]],
    limit_period: Optional[str],
    model_privacy: Optional[str],
    expires_at: Any,
) -> dict[str, Any]:
    return {
        "description": description,
        "consumptionLimit": None if consumption_limit is None else dict(consumption_limit),
        "limitPeriod": limit_period,
        "modelPrivacy": model_privacy,
        "expiresAt": _expiry(expires_at),
    }


def _with_meta(data: Any, body: Any) -> Any:
    data.meta = getattr(body, "meta", None)
    return data


_Rows = list  # (``list`` is a method name in ApiKeys: its annotations say _Rows[…] for the builtin)


class NewApiKey(AttrDict):
    """A key just created (``api_keys.create``, ``api_keys.generate_web3_key``): the ``data`` object
    Venice answers with. ``key.apiKey`` is the secret, which Venice shows this once: store it now.
    ``repr()`` and ``str()`` mask it (``'vn-…abcd'``), so logging the object does not leak it.

    Attributes:
        apiKey: The secret key. id: Its id (for ``get``, ``update``, ``delete``). apiKeyType: ``INFERENCE``
            or ``ADMIN``. consumptionLimit, limitPeriod, modelPrivacy, expiresAt: As created.
    """

    __slots__ = ()
    if TYPE_CHECKING:
        apiKey: str
        id: str
        apiKeyType: str
        consumptionLimit: AttrDict
        limitPeriod: str
        modelPrivacy: str
        expiresAt: Optional[str]

    def __repr__(self) -> str:
        shown = {k: mask_key(v) if k == "apiKey" and isinstance(v, str) else v for k, v in self.items()}
        return f"NewApiKey({shown!r})"

    __str__ = __repr__


class ApiKeys:
    """``client.api_keys``: list, create, update and delete API keys, and read the key's rate limits.

    Most calls need an ADMIN key (an INFERENCE key gets ``UnauthorizedError``: "Admin API key
    required"); ``rate_limits()`` works with any key.
    """

    def __init__(self, client: _BaseClient) -> None:
        self._client = client

    @_call
    def list(self) -> Generator[Any, Any, _Rows[AttrDict]]:
        """The account's API keys (``GET /api_keys``); secrets are not included, only ``last6Chars``.

        Returns:
            A list of ``AttrDict`` rows (``id``, ``description``, ``apiKeyType``, ``last6Chars``,
            ``consumptionLimits``, ``expiresAt``, ``lastUsedAt``, ``usage``, …).
        Raises:
            UnauthorizedError: Not an ADMIN key. VeniceAPIError, APIConnectionError: As for any call.

        Example::

            for key in client.api_keys.list():
                print(key.id, key.description, key.last6Chars)
        """
        body = yield from _json_plan(self._client, "GET", "/api_keys")
        return _data(body, list, "GET /api_keys")  # type: ignore[no-any-return]

    @_call
    def get(self, id: str) -> Generator[Any, Any, AttrDict]:
        """One API key by id (``GET /api_keys/{id}``), with its usage over the trailing seven days.

        Returns:
            The key's ``AttrDict`` (as a row of ``list()``), with ``.meta``.
        Raises:
            NotFoundError: No such key. UnauthorizedError: Not an ADMIN key.
            VeniceAPIError, APIConnectionError: As for any call.

        Example::

            key = client.api_keys.get("e28e82dc-9df2-4b47-b726-d0a222ef2ab5")
        """
        path = f"/api_keys/{_segment('id', id)}"
        body = yield from _json_plan(self._client, "GET", path)
        return _with_meta(_data(body, dict, "GET /api_keys/{id}"), body)  # type: ignore[no-any-return]

    @_call
    def create(
        self,
        description: str,
        *,
        api_key_type: str = "INFERENCE",
        consumption_limit: Optional[Mapping[str, Any]] = None,
        limit_period: Optional[str] = None,
        model_privacy: Optional[str] = None,
        expires_at: Any = None,
    ) -> Generator[Any, Any, NewApiKey]:
        """Create an API key (``POST /api_keys``). Not retried once sent (it would make a second key).

        Args:
            description: Up to 64 characters.
            api_key_type: ``"INFERENCE"`` (default: inference endpoints only) or ``"ADMIN"`` (everything).
            consumption_limit: Spend limits per period, e.g. ``{"usd": 10, "diem": 5}``.
            limit_period: ``"EPOCH"`` (daily), ``"MONTH"`` or ``"LIFETIME"``.
            model_privacy: ``"ALL"``, ``"PRIVATE_TEXT"`` or ``"PRIVATE_ONLY"``.
            expires_at: ``"YYYY-MM-DD"``, an ISO time ending in ``Z``, a ``date`` or a ``datetime``.
        Returns:
            A ``NewApiKey``: ``.apiKey`` is the secret, shown this once (its repr masks it).
        Raises:
            InvalidRequestError: Rejected by Venice (500 active keys at most; 20 creations a minute).
            UnauthorizedError: Not an ADMIN key. VeniceAPIError, APIConnectionError: As for any call.

        Example::

            key = client.api_keys.create("ci runner", consumption_limit={"usd": 5}, expires_at="2027-01-01")
            store_secret(key.apiKey)   # print(key) shows NewApiKey({'apiKey': 'vn-…abcd', …})
        """
        body = {"apiKeyType": api_key_type}
        body.update(_key_fields(description, consumption_limit, limit_period, model_privacy, expires_at))
        answer = yield from _json_plan(self._client, "POST", "/api_keys", body)
        return _with_meta(NewApiKey(_data(answer, dict, "POST /api_keys")), answer)  # type: ignore[no-any-return]

    @_call
    def update(
        self,
        id: str,
        *,
        description: Optional[str] = None,
        consumption_limit: Optional[Mapping[str, Any]] = None,
        limit_period: Optional[str] = None,
        model_privacy: Optional[str] = None,
        expires_at: Any = None,
    ) -> Generator[Any, Any, AttrDict]:
        """Change a key's description, limits, period, privacy or expiry (``PATCH /api_keys``).

        Args:
            id: The key's id. Others: as for ``create()``; ``None`` leaves a field as it is, and
                ``expires_at=""`` removes the expiry.
        Returns:
            The updated key's ``AttrDict``, with ``.meta``.
        Raises:
            NotFoundError: No such key. UnauthorizedError: Not an ADMIN key.
            VeniceAPIError, APIConnectionError: As for any call.

        Example::

            client.api_keys.update(key.id, consumption_limit={"usd": 20})
        """
        _segment("id", id)
        body = {"id": id}
        body.update(_key_fields(description, consumption_limit, limit_period, model_privacy, expires_at))
        answer = yield from _json_plan(self._client, "PATCH", "/api_keys", body)
        return _with_meta(_data(answer, dict, "PATCH /api_keys"), answer)  # type: ignore[no-any-return]

    @_call
    def delete(self, id: str) -> Generator[Any, Any, bool]:
        """Delete a key (``DELETE /api_keys?id=…``).

        Returns:
            ``True`` if Venice says it succeeded.
        Raises:
            NotFoundError: No such key. UnauthorizedError: Not an ADMIN key.
            VeniceAPIError, APIConnectionError: As for any call.

        Example::

            client.api_keys.delete(key.id)
        """
        _segment("id", id)
        body = yield from _json_plan(self._client, "DELETE", "/api_keys", params={"id": id})
        return bool(body.get("success")) if isinstance(body, dict) else False

    @_call
    def rate_limits(self) -> Generator[Any, Any, AttrDict]:
        """The key's tier, balances and per-model limits (``GET /api_keys/rate_limits``); any key may ask.

        Returns:
            An ``AttrDict``: ``accessPermitted``, ``apiTier``, ``balances`` (``USD``, ``DIEM``),
            ``keyExpiration``, ``nextEpochBegins``, ``rateLimits`` (``[{apiModelId, rateLimits:
            [{type: RPM|RPD|TPM, amount}]}]``), with ``.meta``.
        Raises:
            VeniceAPIError, APIConnectionError: As for any call.

        Example::

            print(client.api_keys.rate_limits().balances.USD)
        """
        body = yield from _json_plan(self._client, "GET", "/api_keys/rate_limits")
        return _with_meta(_data(body, dict, "GET /api_keys/rate_limits"), body)  # type: ignore[no-any-return]

    @_call
    def rate_limit_log(self) -> Generator[Any, Any, _Rows[AttrDict]]:
        """The last 50 rate limits the account ran into (``GET /api_keys/rate_limits/log``).

        Returns:
            A list of ``AttrDict`` rows (``apiKeyId``, ``modelId``, ``rateLimitTier``, ``rateLimitType``,
            ``timestamp``).
        Raises:
            UnauthorizedError: Not an ADMIN key. VeniceAPIError, APIConnectionError: As for any call.

        Example::

            for hit in client.api_keys.rate_limit_log():
                print(hit.timestamp, hit.modelId, hit.rateLimitType)
        """
        body = yield from _json_plan(self._client, "GET", "/api_keys/rate_limits/log")
        return _data(body, list, "GET /api_keys/rate_limits/log")  # type: ignore[no-any-return]

    @_call
    def web3_token(self) -> Generator[Any, Any, str]:
        """Step 1 of minting a key with a wallet holding sVVV (``GET /api_keys/generate_web3_key``, no
        key needed): the token your wallet signs. Step 2 is ``generate_web3_key``.

        Returns:
            The token (a string) to sign.
        Raises:
            VeniceAPIError, APIConnectionError: As for any call.

        Example::

            token = client.api_keys.web3_token()
            signature = my_wallet.sign_message(token)    # outside venice.py: the stdlib can't sign
        """
        body = yield from _json_plan(self._client, "GET", "/api_keys/generate_web3_key")
        token = _data(body, dict, "GET /api_keys/generate_web3_key").get("token")
        if not isinstance(token, str):
            raise VeniceAPIError("GET /api_keys/generate_web3_key answered without a token", status_code=200, body=body)
        return token

    @_call
    def generate_web3_key(
        self,
        address: str,
        signature: str,
        token: str,
        *,
        api_key_type: str = "INFERENCE",
        description: Optional[str] = None,
        consumption_limit: Optional[Mapping[str, Any]] = None,
        limit_period: Optional[str] = None,
        model_privacy: Optional[str] = None,
        expires_at: Any = None,
    ) -> Generator[Any, Any, NewApiKey]:
        """Step 2: create a key for the wallet that signed ``web3_token()``'s token
        (``POST /api_keys/generate_web3_key``; no key needed, the signature authenticates).

        venice.py does not sign: make ``signature`` with your wallet library (an EIP-191 personal
        signature of ``token`` by ``address``).

        Args:
            address: The wallet's address (``0x…``). signature: Its signature of ``token``.
            token: From ``web3_token()``. Others: as for ``create()`` (description defaults to Venice's
                "Web3 API Key").
        Returns:
            A ``NewApiKey`` (the secret is ``.apiKey``, masked in its repr).
        Raises:
            UnauthorizedError, InvalidRequestError: Venice refused the signature or the token.
            VeniceAPIError, APIConnectionError: As for any call.

        Example::

            key = client.api_keys.generate_web3_key("0xAbC…", signature, token)
        """
        body = {"apiKeyType": api_key_type, "address": address, "signature": signature, "token": token}
        body.update(_key_fields(description, consumption_limit, limit_period, model_privacy, expires_at))
        answer = yield from _json_plan(self._client, "POST", "/api_keys/generate_web3_key", body)
        key = NewApiKey(_data(answer, dict, "POST /api_keys/generate_web3_key"))
        return _with_meta(key, answer)  # type: ignore[no-any-return]


class Augment:
    """``client.augment``: web search, scraping and document text extraction, for retrieval.

    Each call takes ``headers=`` for a wallet's ``SIGN-IN-WITH-X`` header (made by your wallet code:
    the stdlib can't sign), which is then sent instead of the configured key.
    """

    def __init__(self, client: _BaseClient) -> None:
        self._client = client

    @_call
    def search(
        self,
        query: str,
        *,
        limit: Optional[int] = None,
        search_provider: Optional[str] = None,
        headers: Optional[Mapping[str, str]] = None,
    ) -> Generator[Any, Any, AttrDict]:
        """Search the web (``POST /augment/search``).

        Args:
            query: 1 to 400 characters. limit: 1 to 20 results (Venice's default: 10).
            search_provider: ``"google"`` or ``"brave"``. headers: Extra headers (a wallet sign-in).
        Returns:
            An ``AttrDict``: ``query`` and ``results`` (``[{title, url, content, date}]``), with ``.meta``.
        Raises:
            InvalidRequestError: Rejected (e.g. an empty query). VeniceAPIError, APIConnectionError: As for any call.

        Example::

            for hit in client.augment.search("venice.ai privacy", limit=3).results:
                print(hit.title, hit.url)
        """
        body = {"query": query, "limit": limit, "search_provider": search_provider}
        answer = yield from _json_plan(self._client, "POST", "/augment/search", body, headers=headers)
        return _object(answer, "POST /augment/search")  # type: ignore[no-any-return]

    @_call
    def scrape(self, url: str, *, headers: Optional[Mapping[str, str]] = None) -> Generator[Any, Any, AttrDict]:
        """Fetch a web page as Markdown (``POST /augment/scrape``).

        Args:
            url: The page's URL. headers: Extra headers (a wallet sign-in).
        Returns:
            An ``AttrDict``: ``url``, ``content`` (the page as Markdown), ``format`` (``"markdown"``), with ``.meta``.
        Raises:
            InvalidRequestError: Not a URL Venice accepts. VeniceAPIError, APIConnectionError: As for any call.

        Example::

            print(client.augment.scrape("https://example.com").content)
        """
        answer = yield from _json_plan(self._client, "POST", "/augment/scrape", {"url": url}, headers=headers)
        return _object(answer, "POST /augment/scrape")  # type: ignore[no-any-return]

    @_call
    def parse_text(
        self,
        file: Any,
        *,
        response_format: str = "json",
        filename: Optional[str] = None,
        content_type: Optional[str] = None,
        headers: Optional[Mapping[str, str]] = None,
    ) -> Generator[Any, Any, Any]:
        """Extract the text of a document: PDF, DOCX, PPTX, XLSX or plain text (``POST /augment/text-parser``,
        a ``multipart/form-data`` upload). Venice keeps nothing.

        Args:
            file: A path, ``bytes`` or a binary file object (its ``.name`` gives the file name).
            response_format: ``"json"`` (default) or ``"text"``.
            filename: The name sent for the file (default: the path's or object's, else ``"file"``):
                Venice reads the document type from it.
            content_type: The file's type (default: guessed from its name).
            headers: Extra headers (a wallet sign-in).
        Returns:
            For ``"json"`` an ``AttrDict`` with ``text`` and ``tokens`` (and ``.meta``); for ``"text"`` a ``str``.
        Raises:
            InvalidRequestError: The file can't be read, or Venice can't parse it.
            VeniceAPIError, APIConnectionError: As for any call.

        Example::

            doc = client.augment.parse_text("report.pdf")
            print(doc.tokens, doc.text[:200])
        """
        form = _multipart([("file", _file_part(file, filename, content_type)), ("response_format", response_format)])
        if response_format == "json":
            answer = yield from _json_plan(self._client, "POST", "/augment/text-parser", form, headers=headers)
            return _object(answer, "POST /augment/text-parser")
        ex = yield from _send_plan(self._client, "POST", "/augment/text-parser", form, None, headers, False, None, None)
        value = self._client._decode(ex, ex.body, self._client._meta(ex), expect_json=False)
        if isinstance(value, dict) and isinstance(value.get("text"), str):  # JSON all the same: its text
            return value["text"]
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


class Crypto:
    """``client.crypto``: Venice's JSON-RPC proxy to blockchain nodes, billed per credit."""

    def __init__(self, client: _BaseClient) -> None:
        self._client = client

    @_call
    def networks(self) -> Generator[Any, Any, list[str]]:
        """The networks ``rpc()`` can reach (``GET /crypto/rpc/networks``; no key needed).

        Returns:
            Network names, e.g. ``["ethereum-mainnet", "base-mainnet", …]``.
        Raises:
            VeniceAPIError, APIConnectionError: As for any call.

        Example::

            print(client.crypto.networks())
        """
        body = yield from _json_plan(self._client, "GET", "/crypto/rpc/networks")
        networks = body.get("networks") if isinstance(body, dict) else None
        if not isinstance(networks, list):
            raise VeniceAPIError(
                "GET /crypto/rpc/networks answered without a networks list", status_code=200, body=body
            )
        return networks

    @_call
    def rpc(
        self,
        network: str,
        method: str,
        params: Optional[Sequence[Any]] = None,
        *,
        id: Union[int, str] = 1,
        idempotency_key: Optional[str] = None,
        headers: Optional[Mapping[str, str]] = None,
    ) -> Generator[Any, Any, AttrDict]:
        """One JSON-RPC 2.0 call on a network (``POST /crypto/rpc/{network}``).

        Each call carries an ``Idempotency-Key`` (a fresh random one unless you pass yours), the same
        on every retry: Venice replays the first answer for 24 hours instead of running (and billing)
        the call twice, so it is retried like a GET, even after a timeout.

        Args:
            network: From ``networks()``. method: e.g. ``"eth_blockNumber"``. params: Its parameters.
            id: The JSON-RPC id. idempotency_key: 1 to 255 of ``A-Z a-z 0-9 _ -``.
            headers: Extra headers (a wallet's ``SIGN-IN-WITH-X``, sent instead of the key).
        Returns:
            The JSON-RPC response as an ``AttrDict`` (``result``, or ``error`` with ``code`` and
            ``message``: the node's answer, not raised), with ``.meta``.
        Raises:
            InvalidRequestError: An unsupported method or network. RateLimitError: Over the RPC limits.
            VeniceAPIError, APIConnectionError: As for any call.

        Example::

            block = int(client.crypto.rpc("ethereum-mainnet", "eth_blockNumber").result, 16)
        """
        key = idempotency_key if idempotency_key is not None else os.urandom(16).hex()  # once: kept across retries
        body = {"jsonrpc": "2.0", "method": method, "params": list(params or ()), "id": id}
        path = f"/crypto/rpc/{_segment('network', network)}"
        sent = {**(headers or {}), "Idempotency-Key": key}
        answer = yield from _json_plan(self._client, "POST", path, body, headers=sent)
        return _object(answer, f"POST {path}")  # type: ignore[no-any-return]


class X402:
    """``client.x402``: the prepaid credit of an x402 wallet.

    These routes authenticate a wallet, not a key: pass the ``SIGN-IN-WITH-X`` header value
    (``sign_in=``) or the payment signature (``top_up(payment_signature=…)``) your wallet code made
    (the stdlib can't: no secp256k1 or keccak). A call given one sends it instead of the configured
    key; without one, the configured key is sent (and Venice decides).
    """

    def __init__(self, client: _BaseClient) -> None:
        self._client = client

    @_call
    def balance(self, wallet: str, *, sign_in: Optional[str] = None) -> Generator[Any, Any, AttrDict]:
        """A wallet's credit (``GET /x402/balance/{walletAddress}``).

        Args:
            wallet: An EVM (``0x…``) or Solana address. sign_in: A ``SIGN-IN-WITH-X`` value for that wallet.
        Returns:
            An ``AttrDict``: ``walletAddress``, ``balanceUsd``, ``canConsume``, ``minimumTopUpUsd``,
            ``suggestedTopUpUsd``, ``diemBalanceUsd``, with ``.meta``.
        Raises:
            UnauthorizedError: A missing or invalid sign-in. PermissionDeniedError: Another wallet's.
            VeniceAPIError, APIConnectionError: As for any call.

        Example::

            print(client.x402.balance("0xAbC…", sign_in=siwx).balanceUsd)
        """
        path = f"/x402/balance/{_segment('wallet', wallet)}"
        body = yield from _json_plan(self._client, "GET", path, headers=_sign_in(sign_in))
        return _with_meta(_data(body, dict, "GET /x402/balance/{walletAddress}"), body)  # type: ignore[no-any-return]

    @_call
    def transactions(
        self, wallet: str, *, sign_in: Optional[str] = None, limit: Optional[int] = None, offset: Optional[int] = None
    ) -> Generator[Any, Any, AttrDict]:
        """One page of a wallet's credit history (``GET /x402/transactions/{walletAddress}``).

        Args:
            wallet, sign_in: As for ``balance()``. limit: 1 to 100 (Venice's default 50). offset: Rows to skip.
        Returns:
            An ``AttrDict``: ``walletAddress``, ``currentBalance``, ``transactions`` (``[{id, amount,
            balanceAfter, type, createdAt, requestId, modelId}]``) and ``pagination`` (``limit``,
            ``offset``, ``hasMore``), with ``.meta``.
        Raises:
            As for ``balance()``.

        Example::

            page = client.x402.transactions("0xAbC…", sign_in=siwx, limit=20)
        """
        path = f"/x402/transactions/{_segment('wallet', wallet)}"
        params = {"limit": limit, "offset": offset}
        body = yield from _json_plan(self._client, "GET", path, params=params, headers=_sign_in(sign_in))
        return _with_meta(_data(body, dict, "GET /x402/transactions/{walletAddress}"), body)  # type: ignore[no-any-return]

    @_call
    def top_up(self, payment_signature: Optional[str] = None) -> Generator[Any, Any, AttrDict]:
        """Add credit with an x402 USDC payment (``POST /x402/top-up``). Not retried once sent.

        Args:
            payment_signature: The ``PAYMENT-SIGNATURE`` header value your wallet code made. Without it
                Venice answers 402 with its payment requirements: raised as ``PaymentRequiredError``,
                whose ``.body`` holds them (``accepts``: the Base and Solana USDC options).
        Returns:
            An ``AttrDict``: ``walletAddress``, ``amountCredited``, ``newBalance``, ``paymentId``, with ``.meta``.
        Raises:
            PaymentRequiredError: No (or an insufficient) payment. VeniceAPIError, APIConnectionError: As for any call.

        Example::

            try:
                client.x402.top_up()
            except venice.PaymentRequiredError as err:
                options = err.body["accepts"]                    # sign one with your wallet, then:
            client.x402.top_up(payment_signature=signed)
        """
        headers = None if payment_signature is None else {"PAYMENT-SIGNATURE": payment_signature}
        body = yield from _json_plan(self._client, "POST", "/x402/top-up", {}, headers=headers)
        return _with_meta(_data(body, dict, "POST /x402/top-up"), body)  # type: ignore[no-any-return]


def _sign_in(value: Optional[str]) -> Optional[dict[str, str]]:
    return None if value is None else {"SIGN-IN-WITH-X": value}


class Responses:
    """``client.responses``: Venice's Responses API (``POST /responses``; alpha, stateless)."""

    def __init__(self, client: _BaseClient) -> None:
        self._client = client

    @_overload
    def create(
        self,
        input: Union[str, Sequence[Mapping[str, Any]]],
        model: Optional[str] = None,
        *,
        stream: Literal[False] = False,
        include: Optional[Sequence[str]] = None,
        max_output_tokens: Optional[int] = None,
        temperature: Optional[float] = None,
        top_p: Optional[float] = None,
        fallbacks: Optional[Sequence[Mapping[str, Any]]] = None,
        reasoning: Optional[Mapping[str, Any]] = None,
        tools: Optional[Sequence[Mapping[str, Any]]] = None,
        tool_choice: Union[str, Mapping[str, Any], None] = None,
        web_search: Optional[bool] = None,
        venice_parameters: Optional[Mapping[str, Any]] = None,
        timeout: Optional[float] = None,
        deadline: Optional[float] = None,
        headers: Optional[Mapping[str, str]] = None,
    ) -> Response: ...

    @_overload
    def create(
        self,
        input: Union[str, Sequence[Mapping[str, Any]]],
        model: Optional[str] = None,
        *,
        stream: Literal[True],
        include: Optional[Sequence[str]] = None,
        max_output_tokens: Optional[int] = None,
        temperature: Optional[float] = None,
        top_p: Optional[float] = None,
        fallbacks: Optional[Sequence[Mapping[str, Any]]] = None,
        reasoning: Optional[Mapping[str, Any]] = None,
        tools: Optional[Sequence[Mapping[str, Any]]] = None,
        tool_choice: Union[str, Mapping[str, Any], None] = None,
        web_search: Optional[bool] = None,
        venice_parameters: Optional[Mapping[str, Any]] = None,
        timeout: Optional[float] = None,
        deadline: Optional[float] = None,
        headers: Optional[Mapping[str, str]] = None,
    ) -> ResponseStream: ...

    @_overload
    def create(
        self,
        input: Union[str, Sequence[Mapping[str, Any]]],
        model: Optional[str] = None,
        *,
        stream: bool,
        include: Optional[Sequence[str]] = None,
        max_output_tokens: Optional[int] = None,
        temperature: Optional[float] = None,
        top_p: Optional[float] = None,
        fallbacks: Optional[Sequence[Mapping[str, Any]]] = None,
        reasoning: Optional[Mapping[str, Any]] = None,
        tools: Optional[Sequence[Mapping[str, Any]]] = None,
        tool_choice: Union[str, Mapping[str, Any], None] = None,
        web_search: Optional[bool] = None,
        venice_parameters: Optional[Mapping[str, Any]] = None,
        timeout: Optional[float] = None,
        deadline: Optional[float] = None,
        headers: Optional[Mapping[str, str]] = None,
    ) -> Union[Response, ResponseStream]: ...

    def create(
        self,
        input: Union[str, Sequence[Mapping[str, Any]]],
        model: Optional[str] = None,
        *,
        stream: bool = False,
        include: Optional[Sequence[str]] = None,
        max_output_tokens: Optional[int] = None,
        temperature: Optional[float] = None,
        top_p: Optional[float] = None,
        fallbacks: Optional[Sequence[Mapping[str, Any]]] = None,
        reasoning: Optional[Mapping[str, Any]] = None,
        tools: Optional[Sequence[Mapping[str, Any]]] = None,
        tool_choice: Union[str, Mapping[str, Any], None] = None,
        web_search: Optional[bool] = None,
        venice_parameters: Optional[Mapping[str, Any]] = None,
        timeout: Optional[float] = None,
        deadline: Optional[float] = None,
        headers: Optional[Mapping[str, str]] = None,
    ) -> Union[Response, ResponseStream]:
        """Create a model response with the Responses API (``POST /responses``).

        Venice's Responses API is in alpha (alpha testers only) and stateless: nothing is stored
        between calls, so send the whole conversation as ``input`` each time. The arguments are
        exactly the fields of Venice's request schema; ``None`` values are not sent.

        Args:
            input: The prompt as a string, or a list of input items
                (``[{"role": "user", "content": "…"}, …]``, function call outputs, …).
            model: Model id; default ``config.default_model`` (``VENICE_MODEL``). E2EE models are
                not served here (use ``chat.complete``).
            stream: Return a ``ResponseStream`` that yields the events as they arrive.
            include, max_output_tokens, temperature, top_p, fallbacks, reasoning, tools, tool_choice,
                web_search, venice_parameters: Venice's fields of the same names (``reasoning``:
                ``{"effort": "low", "summary": "auto"}``; ``tools``: ``{"type": "function",
                "function": {...}}`` or ``{"type": "web_search"}``).
            timeout: Read timeout for this call (for streams: the longest wait between data events).
            deadline: Overall seconds for the call, retries and stream included.
            headers: Extra headers for this call (e.g. ``SIGN-IN-WITH-X`` for x402 wallet auth).
        Returns:
            A ``Response`` (``.output_text``), or a ``ResponseStream`` when ``stream=True``.
        Raises:
            InvalidRequestError: Bad arguments (before sending) or rejected by Venice.
            ConfigError: No model given and no default, or no API key.
            VeniceAPIError, APIConnectionError, StreamError: see the Errors section.

        Example::

            r = client.responses.create("Name three primes", model="zai-org-glm-5-1")
            print(r.output_text, r.usage.total_tokens)
        """
        if isinstance(input, str):
            if not input:
                raise InvalidRequestError("input must be a non-empty string or list of input items")
        elif not isinstance(input, (list, tuple)) or not input:
            raise InvalidRequestError(
                f"input must be a non-empty string or list of input items, got {type(input).__name__}"
            )
        if temperature is not None and (not _is_number(temperature) or not 0 <= temperature <= 2):
            raise InvalidRequestError(f"temperature must be a number from 0 to 2, got {temperature!r}")
        if top_p is not None and (not _is_number(top_p) or not 0 <= top_p <= 1):
            raise InvalidRequestError(f"top_p must be a number from 0 to 1, got {top_p!r}")
        if max_output_tokens is not None and (not _is_number(max_output_tokens, whole=True) or max_output_tokens < 1):
            raise InvalidRequestError(f"max_output_tokens must be a whole number >= 1, got {max_output_tokens!r}")
        if venice_parameters is not None:
            _check_dict("venice_parameters", venice_parameters, InvalidRequestError)
        body: dict[str, Any] = {
            "model": model,
            "input": input if isinstance(input, str) else list(input),
            "include": include,
            "max_output_tokens": max_output_tokens,
            "temperature": temperature,
            "top_p": top_p,
            "fallbacks": fallbacks,
            "reasoning": reasoning,
            "tools": tools,
            "tool_choice": tool_choice,
            "web_search": web_search,
            "venice_parameters": venice_parameters,
        }
        body = {k: v for k, v in body.items() if v is not None}
        plan = _responses_plan(self._client, body, stream, timeout, deadline, headers)
        return self._client._run(plan)  # type: ignore[no-any-return]


def _responses_plan(
    client: _BaseClient,
    body: dict[str, Any],
    stream: bool,
    timeout: Optional[float],
    deadline: Optional[float],
    headers: Optional[Mapping[str, str]],
    params: Optional[Mapping[str, Any]] = None,
) -> Generator[Any, Any, Any]:
    """POST /responses (default model and stream flag filled in); a ``Response`` or a stream."""
    body["model"] = body.get("model") or client.config.default_model
    if not body["model"]:
        raise ConfigError("No model given: pass model=… or set VENICE_MODEL.")
    if not isinstance(body["model"], str):
        raise InvalidRequestError(f"model must be a model id string, got {body['model']!r}")
    if stream:
        body["stream"] = True
    else:
        body.pop("stream", None)
    ex = yield from _send_plan(
        client, "POST", "/responses", body, params, headers, stream, timeout, deadline, "text/event-stream"
    )
    meta, data = client._meta(ex), ex.body
    if not stream:
        response = client._decode(ex, data, meta, expect_json=True, cls=Response)
        failed = isinstance(response, dict) and response.get("error") is not None  # ("error": null is none)
        if not failed and isinstance(response, Response):
            return response
        # A 200 carrying an error (a failed response) or JSON that is no response: never an answer.
        raise _unexpected_answer(ex, meta, data, None if failed else "the answer is not a response")
    ctype = ex.headers.get("content-type", "").lower()
    if "text/event-stream" not in ctype:
        raise _unexpected_answer(ex, meta, data, f"expected an event stream but got {ctype or 'no content type'}")
    cls = AsyncResponseStream if isinstance(client, AsyncVeniceClient) else ResponseStream
    return cls(ex, meta, timeout or client.config.timeout)


_AUDIO_BLOCK = 65536  # (bytes written per step when saving a streamed answer)


def _broken_download(err: APIConnectionError, received: int) -> APIConnectionError:
    """The error of a download cut short, saying how many bytes had arrived."""
    return _conn_error(f"the audio download broke after {received} bytes: {err.message}", _SENT, hint=err.hint)


def _mime_type(headers: Mapping[str, str]) -> str:
    return headers.get("content-type", "").split(";")[0].strip().lower()


class SpeechResult:
    """The audio of ``client.audio.speech(...)`` (without ``stream=True``).

    Attributes:
        content: The audio bytes.
        mime_type: Their type as Venice sent it, e.g. ``"audio/mpeg"``.
        meta: ``ResponseMeta`` of the answer (request id, balance, …).
    """

    def __init__(self, content: bytes, mime_type: str, meta: ResponseMeta) -> None:
        self.content = content
        self.mime_type = mime_type
        self.meta = meta

    def __repr__(self) -> str:
        return f"SpeechResult(mime_type={self.mime_type!r}, {len(self.content)} bytes)"

    def save(self, path: Any) -> str:
        """Write the audio to ``path`` through a temporary file beside it (readable by you only),
        renamed into place when complete: the path never holds half a file.

        Returns:
            The path written.
        """
        beside = _Beside(path)
        with beside as out:
            out.write(self.content)
        return beside.target


class SpeechStream:
    """Streamed speech (``client.audio.speech(..., stream=True)``): iterate it for the audio blocks
    as they arrive (Venice sends sentence by sentence), or ``save(path)`` it. Close it (or use
    ``with``) if you stop early.

    Attributes:
        mime_type: The audio's type, e.g. ``"audio/mpeg"``. meta: ``ResponseMeta`` of the answer.
    """

    def __init__(self, raw: RawResponse) -> None:
        self._raw = raw
        self.mime_type = _mime_type(raw.headers)
        self.meta = raw.meta

    def __iter__(self) -> Iterator[bytes]:
        return self._raw.iter_bytes()

    def save(self, path: Any) -> int:
        """Stream the audio to a temporary file beside ``path`` (readable by you only), renamed into
        place when the last block is in.

        Returns:
            The number of bytes written.
        Raises:
            APIConnectionError: The download broke (the message says how many bytes had arrived);
                nothing is left under ``path``. OSError: The file can't be written.
        """
        received = 0
        try:
            with _Beside(path) as out:
                try:
                    for block in self._raw.iter_bytes():
                        out.write(block)
                        received += len(block)
                except APIConnectionError as err:
                    raise _broken_download(err, received) from err
        finally:
            self._raw.close()
        return received

    def close(self) -> None:
        """Stop reading; the connection is closed unless the audio was read to the end."""
        self._raw.close()

    def __enter__(self) -> SpeechStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self._raw.close()


class AsyncSpeechStream:
    """``SpeechStream`` for ``AsyncVeniceClient``: ``async for block in stream``, ``await stream.save(path)``,
    ``await stream.aclose()`` (or ``async with``).

    ``save`` writes the file on the event loop, one block (at most 64 KiB) at a time: the standard
    library has no asynchronous file I/O, and no thread is started for it.

    Attributes:
        mime_type: The audio's type, e.g. ``"audio/mpeg"``. meta: ``ResponseMeta`` of the answer.
    """

    def __init__(self, raw: AsyncRawResponse) -> None:
        self._raw = raw
        self.mime_type = _mime_type(raw.headers)
        self.meta = raw.meta

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._raw.iter_bytes()

    async def save(self, path: Any) -> int:
        """As ``SpeechStream.save``, awaited (the writes happen on the event loop, see the class)."""
        received = 0
        try:
            with _Beside(path) as out:
                try:
                    async for block in self._raw.iter_bytes():
                        for start in range(0, len(block), _AUDIO_BLOCK):
                            out.write(block[start : start + _AUDIO_BLOCK])
                        received += len(block)
                except APIConnectionError as err:
                    raise _broken_download(err, received) from err
        finally:
            self._raw.close()
        return received

    def close(self) -> None:
        """Stop reading; the connection is closed unless the audio was read to the end."""
        self._raw.close()

    async def aclose(self) -> None:
        """Same as ``close()``, for ``await``."""
        self._raw.close()

    async def __aenter__(self) -> AsyncSpeechStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._raw.close()


class Audio:
    """``client.audio``: text to speech."""

    def __init__(self, client: _BaseClient) -> None:
        self._client = client

    @_overload
    def speech(
        self,
        text: str,
        *,
        voice: Optional[str] = None,
        model: Optional[str] = None,
        response_format: Optional[str] = None,
        speed: Optional[float] = None,
        stream: Literal[False] = False,
        timeout: Optional[float] = None,
        **options: Any,
    ) -> SpeechResult: ...

    @_overload
    def speech(
        self,
        text: str,
        *,
        voice: Optional[str] = None,
        model: Optional[str] = None,
        response_format: Optional[str] = None,
        speed: Optional[float] = None,
        stream: Literal[True],
        timeout: Optional[float] = None,
        **options: Any,
    ) -> SpeechStream: ...

    @_overload
    def speech(
        self,
        text: str,
        *,
        voice: Optional[str] = None,
        model: Optional[str] = None,
        response_format: Optional[str] = None,
        speed: Optional[float] = None,
        stream: bool,
        timeout: Optional[float] = None,
        **options: Any,
    ) -> Union[SpeechResult, SpeechStream]: ...

    def speech(
        self,
        text: str,
        *,
        voice: Optional[str] = None,
        model: Optional[str] = None,
        response_format: Optional[str] = None,
        speed: Optional[float] = None,
        stream: bool = False,
        timeout: Optional[float] = None,
        **options: Any,
    ) -> Union[SpeechResult, SpeechStream]:
        """Speak ``text`` (``POST /audio/speech``).

        Args:
            text: What to say (Venice takes up to 4096 characters).
            voice: A voice of the model (``"af_sky"`` for Kokoro, a cloned ``vv_…`` handle, …);
                ``None``: the model's default.
            model: A TTS model id; ``None``: Venice's ``default`` tts model, looked up once per client.
            response_format: ``"mp3"``, ``"opus"``, ``"aac"``, ``"flac"``, ``"wav"`` or ``"pcm"``;
                ``None``: the model's default. A format the model lacks is a 400 from Venice.
            speed: 0.25 to 4.0; ``None``: Venice's default (1.0).
            stream: Return the audio as it arrives (Venice sends it sentence by sentence).
            timeout: Seconds of silence allowed while waiting for the answer.
            **options: Other fields of the request, sent as given (``language``, ``prompt``,
                ``temperature``, ``top_p``).
        Returns:
            ``SpeechResult`` (``.content``, ``.mime_type``, ``.save(path)``, ``.meta``); with
            ``stream=True`` a ``SpeechStream`` (``AsyncSpeechStream`` for the async client) to iterate
            or ``save(path)``.
        Raises:
            InvalidRequestError: ``text`` is not a non-empty string, or Venice rejected the request.
            VeniceAPIError: An error status, or a 2xx answer that is not audio (JSON, HTML).

        Example::

            client.audio.speech("Hello from Venice", voice="af_sky").save("hello.mp3")
            with client.audio.speech(long_text, stream=True) as audio:
                audio.save("story.mp3")
        """
        # (a plan, run by the client's driver as @_call does; written out for the overloads' sake)
        plan = self._speech(text, voice, model, response_format, speed, stream, timeout, options)
        return self._client._run(plan)  # type: ignore[no-any-return]

    def _speech(
        self,
        text: str,
        voice: Optional[str],
        model: Optional[str],
        response_format: Optional[str],
        speed: Optional[float],
        stream: bool,
        timeout: Optional[float],
        options: dict[str, Any],
    ) -> Generator[Any, Any, Any]:
        if not isinstance(text, str) or not text:
            raise InvalidRequestError(f"text must be a non-empty string, got {text!r}")
        body: dict[str, Any] = {"input": text}
        for name, value in (("voice", voice), ("response_format", response_format), ("speed", speed)):
            if value is not None:
                body[name] = value
        body.update(options)
        if stream:
            body["streaming"] = True
        body["model"] = model or (yield from _default_model_plan(self._client, "tts"))
        client = self._client
        ex = yield from _send_plan(client, "POST", "/audio/speech", body, None, None, stream, timeout, None, "audio/")
        meta = client._meta(ex)
        ctype = ex.headers.get("content-type", "").lower()
        if not ctype.startswith("audio/"):
            # A 200 that is JSON (an error object) or an HTML page (the driver read it whole) is no audio.
            raise _unexpected_answer(ex, meta, ex.body, f"expected audio but got {ctype or 'no content type'}")
        if not stream:
            return SpeechResult(bytes(ex.body), _mime_type(ex.headers), meta)
        raw = client._raw_response(ex, meta)
        return AsyncSpeechStream(raw) if isinstance(raw, AsyncRawResponse) else SpeechStream(raw)


class Images:
    """``client.images``: image generation (``generate()``) and Venice's style presets (``styles()``)."""

    def __init__(self, client: _BaseClient) -> None:
        self._client = client

    @_call
    def generate(
        self,
        /,  # (so that **options can't take `self`: _call's type needs it positional)
        prompt: str,
        model: Optional[str] = None,
        *,
        negative_prompt: Optional[str] = None,
        width: Optional[int] = None,
        height: Optional[int] = None,
        format: Optional[str] = None,
        variants: Optional[int] = None,
        style_preset: Optional[str] = None,
        seed: Optional[int] = None,
        safe_mode: Optional[bool] = None,
        return_binary: bool = False,
        timeout: Optional[float] = None,
        deadline: Optional[float] = None,
        headers: Optional[Mapping[str, str]] = None,
        **options: Any,
    ) -> Generator[Any, Any, ImageResult]:
        """Generate images (``POST /image/generate``).

        The call is billed when it reaches Venice, so it is not sent again after it may have
        (see ``RetryPolicy.retry_unsafe``). Check ``content_violation`` and ``blurred`` on the
        result: Venice answers 200 for a blocked or blurred image too.

        Args:
            prompt: What to draw.
            model: An image model id; default Venice's ``default`` image model (looked up once
                per client with ``/models/traits?type=image``; ``config.default_model`` is a text
                model and does not apply).
            negative_prompt: What should not be in the image.
            width, height: Size in pixels (Venice's default 1024).
            format: ``"webp"`` (Venice's default), ``"png"`` or ``"jpeg"``.
            variants: 1–4 images in one call (not with ``return_binary``).
            style_preset: One of ``styles()``.
            seed: For repeatable results.
            safe_mode: ``False`` to get adult content unblurred (Venice's default is on).
            return_binary: Ask Venice for the raw image instead of base64 JSON (same result here).
            timeout: Read timeout for this call. deadline: Overall seconds, retries included.
            headers: Extra headers for this call.
            **options: Any other field of Venice's request (``cfg_scale``, ``steps``,
                ``aspect_ratio``, ``resolution``, ``quality``, ``hide_watermark``, ``lora_strength``,
                ``embed_exif_metadata``, ``enhance_prompt``, …), passed by name; ``None`` values
                are dropped.
        Returns:
            An ``ImageResult``: ``.images`` (bytes, one per variant), ``.mime_type``, the flags,
            ``.save(path)``.
        Raises:
            InvalidRequestError: Bad arguments (before sending) or rejected by Venice.
            VeniceAPIError: An error status, or a 200 that holds no image (JSON where an image was
                expected, an HTML page, an error object).
            APIConnectionError: Venice could not be reached.

        Example::

            result = client.images.generate("a lighthouse at dusk", format="png")
            if not (result.content_violation or result.blurred):
                result.save("lighthouse")  # lighthouse.png
        """
        if not isinstance(prompt, str) or not prompt.strip():
            raise InvalidRequestError(f"prompt must be a non-empty string, got {prompt!r}")
        if model is not None and (not isinstance(model, str) or not model):
            raise InvalidRequestError(f"model must be a model id string, got {model!r}")
        if variants is not None and (not _is_number(variants, whole=True) or not 1 <= variants <= 4):
            raise InvalidRequestError(f"variants must be a whole number from 1 to 4, got {variants!r}")
        if return_binary and variants is not None and variants > 1:
            raise InvalidRequestError("variants > 1 needs JSON replies: leave return_binary off")
        named = {
            "negative_prompt": negative_prompt,
            "width": width,
            "height": height,
            "format": format,
            "variants": variants,
            "style_preset": style_preset,
            "seed": seed,
            "safe_mode": safe_mode,
            "return_binary": True if return_binary else None,
        }
        body: dict[str, Any] = {"model": model, "prompt": prompt}
        body.update((k, v) for k, v in chain(named.items(), options.items()) if v is not None)
        if model is None:
            body["model"] = yield from _default_model_plan(self._client, "image")
        ex = yield from _send_plan(
            self._client, "POST", "/image/generate", body, None, headers, False, timeout, deadline
        )
        meta = self._client._meta(ex)
        ctype = ex.headers.get("content-type", "").split(";")[0].strip().lower()
        fallback = "image/" + ("jpeg" if body.get("format") == "jpg" else str(body.get("format") or "webp"))
        if ctype.startswith("image/") and ex.body:
            return ImageResult([bytes(ex.body)], ctype, meta)
        if return_binary or "json" not in ctype:
            raise _unexpected_answer(ex, meta, ex.body, f"expected an image but got {ctype or 'no content type'}")
        answer = self._client._decode(ex, ex.body, meta, expect_json=True)
        encoded = answer.get("images") if isinstance(answer, dict) and answer.get("error") is None else None
        if not isinstance(encoded, list) or not encoded or not all(isinstance(s, str) for s in encoded):
            raise _unexpected_answer(ex, meta, ex.body, "the answer holds no images")
        import base64
        import binascii

        try:
            images = [base64.b64decode(s, validate=True) for s in encoded]
        except (binascii.Error, ValueError):
            raise _unexpected_answer(ex, meta, ex.body, "the answer's images are not valid base64") from None
        timing = answer.get("timing")
        return ImageResult(
            images,
            _image_mime(images[0], fallback),
            meta,
            answer.get("id") if isinstance(answer.get("id"), str) else None,
            dict(timing) if isinstance(timing, dict) else None,
        )

    @_call
    def styles(self) -> Generator[Any, Any, list[str]]:
        """The names of Venice's image style presets (``GET /image/styles``; needs no API key), for
        ``generate(style_preset=…)``.

        Raises:
            VeniceAPIError, APIConnectionError: Venice refused the call or could not be reached.
        """
        body = yield from _json_plan(self._client, "GET", "/image/styles")
        return [s for s in _data(body, list, "GET /image/styles") if isinstance(s, str)]


###############################################################################
# Module-level helpers ########################################################
###############################################################################

_default_client: Optional[VeniceClient] = None
_default_lock = threading.Lock()


def _client() -> VeniceClient:
    """The shared client of the module-level helpers, created on first use (never at import)."""
    global _default_client
    with _default_lock:
        if _default_client is None:
            _default_client = VeniceClient()
        return _default_client


def chat(messages: Union[str, Sequence[Mapping[str, Any]]], model: Optional[str] = None, **kwargs: Any) -> Any:
    """One-liner chat with a shared default client: ``venice.chat("Hi", model="…").text``.

    Args:
        messages, model, **kwargs: As for ``VeniceClient().chat.complete``.
    Returns:
        A ``ChatResponse``, or a ``ChatStream`` with ``stream=True``.
    Raises:
        VeniceError: As ``chat.complete`` does (``ConfigError`` without a key).
    """
    return _client().chat.complete(messages, model, **kwargs)


def list_models(type: str = "text", **client_kwargs: Any) -> ModelList:
    """List models (no API key needed): ``venice.list_models("text")``.

    Args:
        type: As for ``client.models.list``.
        **client_kwargs: Passed to ``VeniceClient`` (e.g. ``base_url``).
    Raises:
        VeniceAPIError, APIConnectionError: Venice refused the call or could not be reached.
    """
    with VeniceClient(**client_kwargs) as client:
        return client.models.list(type)


###############################################################################
# OpenAI-compatible shim ######################################################
###############################################################################

# openai's exception names, as aliases into our tree (one tree, two sets of names); openai's
# UnprocessableEntityError (422) is our own subclass of InvalidRequestError, in the Errors section.
#: openai's name for ``VeniceError``.
APIError = VeniceError
#: openai's name for ``VeniceAPIError``.
APIStatusError = VeniceAPIError
#: openai's name for ``UnauthorizedError`` (401).
AuthenticationError = UnauthorizedError
#: openai's name for ``InvalidRequestError`` (400, and 413/415/422 here).
BadRequestError = InvalidRequestError
#: openai's name for ``ServerError`` (5xx).
InternalServerError = ServerError

#: Top-level keys of Venice's ``ChatCompletionRequest`` (``additionalProperties: false``: any other
#: key is a 400). Checked against ``swagger.derived.json`` by a test.
CHAT_REQUEST_KEYS: Final = frozenset(
    {
        "frequency_penalty", "logprobs", "top_logprobs", "max_completion_tokens", "max_temp", "max_tokens",
        "messages", "min_p", "min_temp", "model", "n", "presence_penalty", "prompt_cache_key",
        "prompt_cache_retention", "repetition_penalty", "reasoning", "reasoning_effort", "seed", "stop",
        "stop_token_ids", "stream", "stream_options", "temperature", "top_k", "top_p", "user", "fallbacks",
        "store", "verbosity", "text", "include", "metadata", "venice_parameters", "parallel_tool_calls",
        "response_format", "tool_choice", "tools",
    }
)  # fmt: skip
#: Keys of Venice's ``CreateEmbeddingRequestSchema`` (also strict).
EMBEDDING_REQUEST_KEYS: Final = frozenset({"dimensions", "encoding_format", "input", "model", "user"})
#: Keys of Venice's ``ResponsesRequest`` (``POST /responses``). Checked against the spec by a test.
RESPONSES_REQUEST_KEYS: Final = frozenset(
    {
        "model", "input", "include", "max_output_tokens", "temperature", "top_p", "fallbacks", "reasoning",
        "tools", "tool_choice", "web_search", "stream", "venice_parameters",
    }
)  # fmt: skip

_dropped_logged: set[str] = set()


def _extra_body(extra: Any) -> Mapping[str, Any]:
    _check_dict("extra_body", extra, InvalidRequestError)
    return extra or {}


def _venice_chat_body(body: Mapping[str, Any], dropped: Optional[list[str]] = None) -> dict[str, Any]:
    """Make an OpenAI-style chat request acceptable to Venice's strict schema.

    ``None`` values go (at every depth), legacy ``functions``/``function_call`` become
    ``tools``/``tool_choice``, and top-level keys Venice does not know (``logit_bias``,
    ``service_tier``, ``modalities``, ``prediction``, …) are dropped and logged once each.
    """
    try:
        out = _strip_none(dict(body))
    except RecursionError:
        raise InvalidRequestError("the request is nested too deeply (or refers to itself)") from None
    if "functions" in out and "tools" not in out:
        if not isinstance(out["functions"], list):
            raise InvalidRequestError(f"functions must be a list of function dicts, got {out['functions']!r:.60}")
        out["tools"] = [{"type": "function", "function": f} for f in out.pop("functions")]
    if "function_call" in out and "tool_choice" not in out:
        fc = out.pop("function_call")
        out["tool_choice"] = {"type": "function", "function": fc} if isinstance(fc, dict) else fc
    for key in [k for k in out if k not in CHAT_REQUEST_KEYS]:
        del out[key]
        if dropped is not None:
            dropped.append(key)
        if key not in _dropped_logged:
            import logging

            _dropped_logged.add(key)
            logging.getLogger("venice").warning("dropped %r: Venice's chat API does not accept it", key)
    return out  # type: ignore[no-any-return]


class _ChunkStream:
    """What ``chat.completions.create(stream=True)`` returns: an iterator of chunk objects
    (``chunk.choices[0].delta.content``), closable and usable with ``with``, like openai's ``Stream``.

    Venice ends every stream with a chunk that has no choices (usage, cost, …), asked for or not
    (``../shared/venice-api/NOTES.md`` §12). Unless the call asked for it with
    ``stream_options={"include_usage": True}``, that chunk is not yielded (openai's documented
    loop reads ``chunk.choices[0]``); what it carries stays here: ``.usage`` and ``.usage_chunk``.
    """

    def __init__(self, stream: ChatStream, include_usage: bool = True) -> None:
        self.stream = stream
        #: The chunk without choices that was kept back (``None`` if none came or it was yielded).
        self.usage_chunk: Optional[AttrDict] = None
        chunks = stream.chunks()
        self._chunks = chunks if include_usage else self._with_choices(chunks)

    def _with_choices(self, chunks: Iterator[ChatCompletionChunk]) -> Iterator[ChatCompletionChunk]:
        for chunk in chunks:
            if chunk.get("choices") or "error" in chunk:
                yield chunk
            else:
                self.usage_chunk = chunk

    @property
    def usage(self) -> Optional[CompletionUsage]:
        """Token counts from Venice's final chunk, or ``None`` until it arrives."""
        return self.stream.usage

    def __iter__(self) -> Iterator[ChatCompletionChunk]:
        return self._chunks

    def __next__(self) -> ChatCompletionChunk:
        return next(self._chunks)

    def close(self) -> None:
        """Stop reading and release the connection."""
        self.stream.close()

    def __enter__(self) -> _ChunkStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _AsyncChunkStream:
    """``_ChunkStream`` for ``AsyncOpenAI``, like openai's ``AsyncStream``: ``async for chunk in …``,
    ``await stream.close()``, ``async with``."""

    def __init__(self, stream: AsyncChatStream, include_usage: bool = True) -> None:
        self.stream = stream
        #: The chunk without choices that was kept back (``None`` if none came or it was yielded).
        self.usage_chunk: Optional[ChatCompletionChunk] = None
        self._include = include_usage

    async def _chunks(self) -> AsyncGenerator[ChatCompletionChunk, None]:
        async for chunk in self.stream.chunks():
            if self._include or chunk.get("choices") or "error" in chunk:
                yield chunk
            else:
                self.usage_chunk = chunk

    @property
    def usage(self) -> Optional[CompletionUsage]:
        """Token counts from Venice's final chunk, or ``None`` until it arrives."""
        return self.stream.usage

    def __aiter__(self) -> AsyncIterator[ChatCompletionChunk]:
        return self._chunks()

    async def close(self) -> None:
        """Stop reading and release the connection."""
        await self.stream.aclose()

    async def __aenter__(self) -> _AsyncChunkStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _asks_for_usage(body: Mapping[str, Any]) -> bool:
    """Whether an openai-style request asked for the usage chunk (``stream_options.include_usage``)."""
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


class Embeddings:
    """``client.embeddings``: ``create(input, model=…)`` → ``{"data": [{"embedding": […]}, …]}``."""

    def __init__(self, client: _BaseClient) -> None:
        self._client = client

    def create(
        self,
        input: Union[str, Sequence[str]],
        model: Optional[str] = None,
        *,
        extra_body: Optional[Mapping[str, Any]] = None,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, Any]] = None,
        timeout: Optional[float] = None,
        **kwargs: Any,
    ) -> CreateEmbeddingResponse:
        """Embed one string or up to 2048 strings. Fields Venice does not accept are dropped.

        Args:
            input: A string or a list of strings.
            model: Embedding model id (``client.models.list("embedding")``); default: Venice's ``default``
                embedding model (``/models/traits?type=embedding``, looked up once per client).
            extra_body, extra_headers, extra_query, timeout: As in the openai SDK.
            **kwargs: ``dimensions``, ``encoding_format``, ``user``.
        Returns:
            The OpenAI-shaped response (``r.data[0].embedding``, ``r.usage``), with ``.meta``.
        Raises:
            InvalidRequestError: Bad arguments (before sending) or rejected by Venice.
            VeniceAPIError, APIConnectionError: Venice refused the call or could not be reached.
        """
        body = {"input": input, "model": model, **kwargs, **_extra_body(extra_body)}
        body = {k: v for k, v in body.items() if k in EMBEDDING_REQUEST_KEYS}
        return self._client._run(self._create(body, extra_query, extra_headers, timeout))  # type: ignore[no-any-return]

    def _create(
        self,
        body: dict[str, Any],
        params: Optional[Mapping[str, Any]],
        headers: Optional[Mapping[str, str]],
        timeout: Optional[float],
    ) -> Generator[Any, Any, CreateEmbeddingResponse]:
        if body.get("model") is None:
            body["model"] = yield from _default_model_plan(self._client, "embedding")
        response = yield from _json_plan(
            self._client, "POST", "/embeddings", body, params, CreateEmbeddingResponse, headers, timeout
        )
        _data(response, list, "POST /embeddings")
        return response  # type: ignore[no-any-return]


def _venice_responses_body(body: Mapping[str, Any], dropped: Optional[list[str]] = None) -> dict[str, Any]:
    """Make an openai-style Responses request one that Venice's ``ResponsesRequest`` takes.

    ``None`` values go; ``instructions`` becomes a leading system message of ``input``; openai's flat
    function tools (``{"type": "function", "name", "parameters"}``) and ``tool_choice`` are nested
    the way Venice's spec has them (``{"type": "function", "function": {...}}``); other keys Venice
    does not know (``store``, ``metadata``, ``text``, ``truncation``, …) are dropped and logged once
    each. ``previous_response_id`` is refused: Venice keeps no state between calls.
    """
    try:
        out = _strip_none(dict(body))
    except RecursionError:
        raise InvalidRequestError("the request is nested too deeply (or refers to itself)") from None
    if "previous_response_id" in out:
        raise InvalidRequestError(
            "previous_response_id is not supported: Venice's Responses API is stateless; "
            "send the whole conversation as input"
        )
    instructions = out.pop("instructions", None)
    if instructions:
        given = out.get("input")
        items = [{"role": "user", "content": given}] if isinstance(given, str) else list(given or ())
        out["input"] = [{"role": "system", "content": instructions}, *items]
    tools = out.get("tools")
    if isinstance(tools, list):
        out["tools"] = [
            {"type": "function", "function": {k: v for k, v in t.items() if k != "type"}}
            if isinstance(t, dict) and t.get("type") == "function" and "function" not in t
            else t
            for t in tools
        ]
    choice = out.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "function" and "function" not in choice:
        out["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
    for key in [k for k in out if k not in RESPONSES_REQUEST_KEYS]:
        del out[key]
        if dropped is not None:
            dropped.append(key)
        if f"responses:{key}" not in _dropped_logged:
            import logging

            _dropped_logged.add(f"responses:{key}")
            logging.getLogger("venice").warning("dropped %r: Venice's Responses API does not accept it", key)
    return out  # type: ignore[no-any-return]


class _OpenAIResponses:
    """``OpenAI().responses``: openai's ``responses.create`` calling convention over ``Responses``."""

    def __init__(self, client: Any) -> None:  # (an OpenAI or AsyncOpenAI)
        self._client = client

    def create(
        self,
        *,
        input: Union[str, Sequence[Mapping[str, Any]]],
        model: Optional[str] = None,
        instructions: Optional[str] = None,
        stream: bool = False,
        timeout: Optional[float] = None,
        extra_body: Optional[Mapping[str, Any]] = None,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, Any]] = None,
        **kwargs: Any,
    ) -> Any:
        """Create a response with the openai SDK's arguments (``POST /responses``).

        ``instructions`` becomes a system message; fields Venice's Responses API does not accept are
        dropped (see ``_venice_responses_body``); ``extra_body`` is merged in as is.

        Returns:
            A ``Response`` (``resp.output_text``), or, when ``stream=True``, a ``ResponseStream``
            (``AsyncResponseStream``) of events (``event.type``, ``event.delta``).
        Raises:
            InvalidRequestError: Bad arguments (``previous_response_id``: Venice is stateless) or
                rejected by Venice.
            VeniceAPIError, APIConnectionError, StreamError: see the Errors section.
        """
        body = _venice_responses_body({**kwargs, "model": model, "input": input, "instructions": instructions})
        body.update(_extra_body(extra_body))
        return self._client._run(_responses_plan(self._client, body, stream, timeout, None, extra_headers, extra_query))


class _OpenAIArguments:
    """openai's constructor arguments, for ``OpenAI`` and ``AsyncOpenAI``."""

    if TYPE_CHECKING:
        responses: Any  # _OpenAIResponses: openai's calling convention

    def __init__(
        self,
        *,
        api_key: Optional[str] = None,
        base_url: Optional[str] = None,
        timeout: Optional[float] = None,
        max_retries: Optional[int] = None,
        default_headers: Optional[Mapping[str, str]] = None,
        organization: Optional[str] = None,
        project: Optional[str] = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(  # type: ignore[call-arg]  # (VeniceClient or AsyncVeniceClient, by the MRO)
            api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            default_headers=default_headers,
            **kwargs,
        )
        self.responses = _OpenAIResponses(self)  # openai's arguments (over the same plan as Responses)


class OpenAI(_OpenAIArguments, VeniceClient):
    """A drop-in for ``openai.OpenAI`` that talks to Venice: code written for the openai SDK's chat,
    streaming, tool-calling, model and embedding calls runs unchanged after ``from venice import OpenAI``.

    ``client.chat.completions.create(**kwargs)`` takes openai's arguments (``extra_body``,
    ``extra_headers``, ``extra_query`` and ``timeout`` per call too) and returns objects with attribute
    and key access; ``stream=True`` gives chunk objects. ``client.models.list()`` /
    ``.retrieve(id)``, ``client.embeddings.create(...)`` and ``client.responses.create(...)`` (openai's
    Responses API arguments: ``resp.output_text``; ``stream=True`` gives typed events) work too. The key comes from ``api_key=``
    or the usual Venice configuration (not ``OPENAI_API_KEY``).

    Args:
        api_key, base_url, timeout, max_retries, default_headers: As for ``openai.OpenAI``.
        organization, project: Accepted and ignored (Venice has no such thing).
        **kwargs: Passed to ``VeniceClient``.
    """


class AsyncOpenAI(_OpenAIArguments, AsyncVeniceClient):
    """A drop-in for ``openai.AsyncOpenAI``: ``await client.chat.completions.create(...)``,
    ``async for chunk in await client.chat.completions.create(..., stream=True)``,
    ``await client.models.list()``, ``await client.embeddings.create(...)``, openai's exception names.

    Args:
        api_key, base_url, timeout, max_retries, default_headers: As for ``openai.AsyncOpenAI``.
        organization, project: Accepted and ignored.
        **kwargs: Passed to ``AsyncVeniceClient`` (``max_concurrency`` among them).
    """


class _LegacyChatCompletion:
    """``venice.ChatCompletion.create(...)`` as in openai < 1.0 (module-level key and base)."""

    _clients: dict[tuple[Optional[str], Optional[str]], VeniceClient] = {}

    @classmethod
    def create(cls, *, model: str, messages: Sequence[Mapping[str, Any]], stream: bool = False, **kwargs: Any) -> Any:
        """Create a chat completion the openai < 1.0 way.

        Args:
            model, messages, stream, **kwargs: As for ``chat.completions.create``; openai < 1.0's
                per-call ``api_key``/``api_base``/``request_timeout`` are ignored.

        Uses ``venice.api_key`` / ``venice.api_base`` when set, else the usual configuration.
        Returns a ``ChatResponse`` (``resp["choices"][0]["message"]["content"]`` and
        ``resp.choices[0].message.content``), or an iterator of chunk objects when ``stream=True``.
        Raises:
            ConfigError: No key set (``venice.api_key`` or the usual places).
            VeniceAPIError, APIConnectionError: Venice refused the call or could not be reached.
        """
        module = sys.modules[__name__]
        key = (getattr(module, "api_key", None), getattr(module, "api_base", None))
        with _default_lock:
            client = cls._clients.get(key)
            if client is None:
                client = cls._clients[key] = VeniceClient(key[0], base_url=key[1])
        for legacy in ("api_key", "api_base", "api_type", "api_version", "organization", "request_timeout"):
            kwargs.pop(legacy, None)
        return client.chat.completions.create(model=model, messages=messages, stream=stream, **kwargs)


ChatCompletion = _LegacyChatCompletion
#: Key and base URL for the legacy ``ChatCompletion`` shim (openai < 1.0 style); ``None``: use config.
api_key: Optional[str] = None
api_base: Optional[str] = None


def _openai_error(status: int, message: str, code: Optional[str] = None, kind: Optional[str] = None) -> bytes:
    kind = kind or ("invalid_request_error" if status < 500 else "api_error")
    return json.dumps({"error": {"message": message, "type": kind, "param": None, "code": code}}).encode()


def _log_text(value: Any) -> str:
    """``value`` for a log line, control characters escaped: a request can't forge or colour a line."""
    text = str(value)
    return text if text.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


#: The proxy's routes (under ``/v1`` or not) and the one method each takes.
_PROXY_ROUTES: Final = {"/chat/completions": "POST", "/embeddings": "POST", "/models": "GET", "/responses": "POST"}
_RESPONSE_ENDS: Final = ("response.completed", "response.failed", "response.incomplete", "error")
_PROXY_MAX_BODY: Final = 8 * 1024 * 1024  # bytes: chats with a few base64 images fit
_PROXY_MAX_CONNECTIONS: Final = 256  # a busy agent framework keeps dozens open
_PROXY_CLIENT_TIMEOUT: Final = 30.0  # s: the longest silence while reading a request (headers or body)
_LIMIT_LOOKUP_TIMEOUT: Final = 5.0  # s: the model list for clamping is a nicety; a chat never waits long on it
_LIMIT_RETRY_AFTER: Final = 60.0  # s: a failed model-list lookup is not repeated sooner
_LIMIT_REFRESH: Final = 3600.0  # s: a known model list is looked up again after this


def _passed_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The upstream headers a client needs to pace itself (rate limits, when to come back)."""
    return {k: v for k, v in headers.items() if k in ("retry-after", "retry-after-ms") or k.startswith("x-ratelimit-")}


class _ProxyRefusal(Exception):
    """A request the proxy answers itself, before anything goes upstream."""

    def __init__(
        self,
        status: int,
        message: str,
        code: Optional[str] = None,
        *,
        headers: Optional[Mapping[str, str]] = None,
        kind: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.kind = status, message, code, kind
        self.headers = dict(headers or {})


class _LocalProxy:
    """What ``start_proxy`` serves, built on the client's public API only (``request``,
    ``models.list``, ``config``), so the proxy follows the library rather than re-implementing it.

    The HTTP handler hands each request to ``handle``. Checks run in this order, and every answer
    sent before the body was read closes the connection (a body left unread must never be taken
    for the next request): framing (no ``Transfer-Encoding``, one plain Content-Length), ``Host``
    and ``Origin`` (DNS rebinding, cross-site pages), the proxy key, the route and method, the
    content type, the size; then the body is read whole, checked, and only then forwarded.
    """

    def __init__(
        self,
        client: VeniceClient,
        *,
        proxy_key: Optional[str],
        model: Optional[str],
        venice_parameters: Optional[Mapping[str, Any]],
        log: Optional[Callable[[str], None]],
        allow_hosts: Sequence[str],
        max_body: int,
    ) -> None:
        self.client = client
        self.proxy_key = proxy_key
        self.model = model
        self.venice_parameters = dict(venice_parameters or {})
        self.log = log
        self.extra_hosts = {h.lower().strip("[]") for h in allow_hosts}
        self.max_body = max_body
        self.loopback = True
        self.names: set[str] = set()  # Host names accepted on a loopback bind (set by bound())
        self.port = 0
        self.poll_interval = 0.1  # s: how often a stream checks that its local client is still there
        # The model list used to clamp token limits: looked up by one request at a time, outside the
        # lock, with no retries and a short timeout; a failure is remembered for a minute.
        self._limits: Optional[dict[str, Optional[int]]] = None
        self._limits_at = 0.0
        self._lookup_failed_at: Optional[float] = None
        self._lookup_running = False
        self._lock = threading.Lock()
        self._lookup: Optional[VeniceClient] = None

    def bound(self, address: str, port: int) -> None:
        """Record where the server listens; loopback is decided by that address, not by a name."""
        import ipaddress

        self.loopback = ipaddress.ip_address(address.split("%")[0]).is_loopback
        self.names = {address.lower(), "localhost"} | self.extra_hosts
        self.port = port

    def close(self) -> None:
        if self._lookup is not None:
            self._lookup.close()

    # -- one request -----------------------------------------------------------------------------

    def handle(self, h: Any) -> None:
        """Answer one request on handler ``h`` (an ``http.server.BaseHTTPRequestHandler``)."""
        started = time.monotonic()
        h.body_read = False
        try:
            route, body = self._admit(h)
            if route == "/models":
                self._models(h, started)
            elif route == "/embeddings":
                data = {k: v for k, v in _strip_none(body).items() if k in EMBEDDING_REQUEST_KEYS}
                self._forward(h, "/embeddings", data, started, data.get("model"), (), stream=False, usage=True)
            else:
                self._generate(h, route, body, started)
        except _ProxyRefusal as refusal:
            if not refusal.status:  # 0: the client is gone, nothing to answer
                h.close_connection = True
            else:
                self._reply(
                    h,
                    refusal.status,
                    _openai_error(refusal.status, refusal.message, refusal.code, refusal.kind),
                    refusal.headers,
                )
            self._log(h, refusal.status or "-", None, started)

    def _admit(self, h: Any) -> tuple[str, dict[str, Any]]:
        """The route and the (whole, parsed) JSON body, or a ``_ProxyRefusal``."""
        headers = h.headers
        if headers.get_all("Transfer-Encoding"):
            # RFC 9112 §6.1: a server that does not decode a transfer coding answers 501. A chunked
            # body read as "no body" would leave its bytes to be taken for the next request.
            raise _ProxyRefusal(501, "Transfer-Encoding is not supported: send the body with a Content-Length")
        lengths = headers.get_all("Content-Length") or []
        if len(lengths) > 1 or any(not (v.isascii() and v.strip().isdigit()) for v in lengths):
            # int() would take "+0_2" and " 1"; "1, 1" or two headers are ambiguous (RFC 9112 §6.3)
            raise _ProxyRefusal(400, "the request has an invalid or repeated Content-Length")
        digits = (lengths[0].strip().lstrip("0") or "0") if lengths else ""
        length = (int(digits) if len(digits) < 16 else 10**16) if lengths else None  # (int() refuses 4,301 digits)
        if self.loopback:
            hosts = headers.get_all("Host") or []
            if len(hosts) != 1 or not self._local(hosts[0]):
                shown = _log_text(hosts[0]) if len(hosts) == 1 else "(none)" if not hosts else "(repeated)"
                raise _ProxyRefusal(
                    403,
                    f"Host {shown} is not allowed: use http://127.0.0.1:{self.port}/v1 or http://localhost:{self.port}/v1, "
                    "or start the proxy with --allow-host NAME",
                    "host_not_allowed",
                )
        origins = headers.get_all("Origin") or []
        if origins and (len(origins) > 1 or not self._same_origin(origins[0], headers.get("Host", ""))):
            # A web page's request (fetch, a form): the proxy spends the user's balance for local programs only.
            raise _ProxyRefusal(
                403, "requests from web pages (with an Origin header) are not allowed", "origin_not_allowed"
            )
        if self.proxy_key is not None:
            import hmac

            given = headers.get("Authorization", "").encode("utf-8", "surrogateescape")
            if not hmac.compare_digest(given, f"Bearer {self.proxy_key}".encode("utf-8", "surrogateescape")):
                raise _ProxyRefusal(401, "invalid proxy key", "invalid_api_key", kind="authentication_error")
        path = h.path.split("?")[0].rstrip("/")
        route = path[3:] if path.startswith("/v1/") else path
        method = _PROXY_ROUTES.get(route)
        if method is None:
            raise _ProxyRefusal(404, f"unknown path {_log_text(h.path)}", "not_found")
        if h.command != method:
            raise _ProxyRefusal(
                405, f"{_log_text(h.command)} is not supported on {route}; use {method}", headers={"Allow": method}
            )
        if method == "GET":
            if length:
                raise _ProxyRefusal(400, f"GET {route} takes no body")
            h.body_read = True
            h.request_read()
            return route, {}
        ctype = headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            # Only a JSON body, which a web page can't send cross-site without a CORS pre-check.
            raise _ProxyRefusal(
                415, f"send the body as Content-Type: application/json (got {_log_text(ctype) or 'none'})"
            )
        if length is None:
            raise _ProxyRefusal(411, "the request has no Content-Length")
        if length > self.max_body:
            raise _ProxyRefusal(413, f"the body is {length} bytes; this proxy takes at most {self.max_body}")
        import socket

        try:
            raw = h.rfile.read(length)
        except (socket.timeout, OSError):
            raise _ProxyRefusal(408, "the body did not arrive in time") from None
        if len(raw) < length:
            if getattr(h, "too_slow", False):
                raise _ProxyRefusal(408, "the body did not arrive in time")
            raise _ProxyRefusal(0, "the client left before sending the whole body")  # never forwarded
        h.body_read = True
        h.request_read()
        try:
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise ValueError("not a JSON object")
        except (ValueError, RecursionError) as err:
            raise _ProxyRefusal(400, f"the request body is not a JSON object: {err}") from None
        if not isinstance(body.get("venice_parameters") or {}, dict):
            raise _ProxyRefusal(400, "the request body is not a JSON object: venice_parameters is not an object")
        if route == "/chat/completions":
            messages = body.get("messages")
            if not isinstance(messages, list) or not messages:
                raise _ProxyRefusal(400, "messages must be a non-empty list")
            if not isinstance(body.get("model") or "", str):
                raise _ProxyRefusal(400, "model must be a string")
        elif route == "/responses":
            given = body.get("input")
            if not isinstance(given, (str, list)) or not given:
                raise _ProxyRefusal(400, "input must be a non-empty string or list of input items")
            if not isinstance(body.get("model") or "", str):
                raise _ProxyRefusal(400, "model must be a string")
        return route, body

    def _local(self, host: str) -> bool:
        """Whether a ``Host`` value names this loopback server: its address, ``localhost`` or an
        allowed name, with its port (``Host: :8787`` names nothing)."""
        host = host.strip().lower()
        if host.startswith("["):  # [::1]:8787
            name, bracket, rest = host[1:].partition("]")
            if not bracket or (rest and not rest.startswith(":")):
                return False
            port = rest[1:]
        else:
            name, colon, port = host.rpartition(":")
            if not colon:
                name, port = host, ""
        return bool(name) and name in self.names and (port or "80") == str(self.port)

    def _same_origin(self, origin: str, host: str) -> bool:
        scheme, sep, netloc = origin.partition("://")
        if not sep or scheme.lower() != "http" or "/" in netloc:
            return False  # includes "null" (sandboxed frames, file: pages)
        return self._local(netloc) if self.loopback else netloc.lower() == host.lower()

    # -- routes ----------------------------------------------------------------------------------

    def _models(self, h: Any, started: float) -> None:
        try:
            models = self.client.models.list("text")
        except VeniceError as err:
            self._fail(h, err, started, None)
            return
        rows = [
            {
                "id": m.id,
                "object": "model",
                "created": m.created or 0,
                "owned_by": m.owned_by or "venice.ai",
                "context_length": m.context_length,
                "max_model_len": m.context_length,
            }
            for m in models
        ]
        self._reply(h, 200, json.dumps({"object": "list", "data": rows}).encode())
        self._log(h, 200, None, started)

    def _generate(self, h: Any, route: str, body: dict[str, Any], started: float) -> None:
        """``/v1/chat/completions`` and ``/v1/responses``: the body made acceptable to Venice, the model
        (the proxy's, the request's, or the configured default, as the library's calls default), Venice's
        parameters, the model's token ceiling; then forwarded (a stream event by event)."""
        responses = route == "/responses"
        dropped: list[str] = []
        try:
            data = (_venice_responses_body if responses else _venice_chat_body)(body, dropped)
        except InvalidRequestError as err:
            self._fail(h, err, started, None)
            return
        data["model"] = self.model or data.get("model") or self.client.config.default_model
        if not data["model"]:
            self._reply(
                h, 400, _openai_error(400, "the request names no model; send one, or start the proxy with --model")
            )
            self._log(h, 400, None, started, dropped)
            return
        data["venice_parameters"] = {
            "include_venice_system_prompt": False,
            **data.get("venice_parameters", {}),
            **self.venice_parameters,
        }
        ceiling = self.completion_limit(str(data["model"]))
        for key in ("max_output_tokens",) if responses else ("max_completion_tokens", "max_tokens"):
            if ceiling and isinstance(data.get(key), int) and data[key] > ceiling:
                data[key] = ceiling
        options = data.get("stream_options")  # (the chat route's; a Responses stream always ends on its own)
        usage = responses or (isinstance(options, dict) and options.get("include_usage") is True)
        stream = data.get("stream") is True
        self._forward(h, route, data, started, data["model"], dropped, stream=stream, usage=usage, responses=responses)

    def completion_limit(self, model_id: str) -> Optional[int]:
        """The model's ``maxCompletionTokens``, or ``None`` when not known right now.

        One request at a time looks the list up, outside the lock; the others do not wait for it.
        """
        now = time.monotonic()
        with self._lock:
            fresh = self._limits is not None and now - self._limits_at < _LIMIT_REFRESH
            failed = self._lookup_failed_at is not None and now - self._lookup_failed_at < _LIMIT_RETRY_AFTER
            if fresh or failed or self._lookup_running:
                return (self._limits or {}).get(model_id)
            self._lookup_running = True
            if self._lookup is None:
                # Its own client, from the same settings: no retries (this is not the client's
                # request and must not multiply it) and a short timeout.
                pool = self.client._transport  # (its proxy and certificate settings, as the client's own)
                self._lookup = VeniceClient(
                    config=self.client.config,
                    max_retries=0,
                    timeout=_LIMIT_LOOKUP_TIMEOUT,
                    environ=getattr(pool, "environ", None) if getattr(pool, "own_environ", False) else None,
                    trust_env=getattr(pool, "trust_env", True),
                )
            lookup = self._lookup
        limits: Optional[dict[str, Optional[int]]] = None
        try:
            limits = {m.id: m.max_completion_tokens for m in lookup.models.list("text")}
        except Exception:  # noqa: BLE001 - any failure only means "forward unclamped"
            pass
        finally:
            with self._lock:
                self._lookup_running = False
                if limits is None:
                    self._lookup_failed_at = time.monotonic()
                else:
                    self._limits, self._limits_at, self._lookup_failed_at = limits, time.monotonic(), None
        return (limits or self._limits or {}).get(model_id)

    def _forward(
        self,
        h: Any,
        path: str,
        data: dict[str, Any],
        started: float,
        model_id: Any,
        dropped: Sequence[str],
        *,
        stream: bool,
        usage: bool,
        responses: bool = False,
    ) -> None:
        # stream=True on the library side for both: the answer is passed on as it comes, with its status.
        accept = None if stream else {"Accept": "application/json", "Accept-Encoding": "gzip"}
        try:
            raw = self.client.request("POST", path, json=data, stream=True, headers=accept)
            if not stream:
                body = raw.read()
        except VeniceError as err:
            self._fail(h, err, started, model_id, dropped)
            return
        ctype = raw.headers.get("content-type", "text/event-stream" if stream else "application/json")
        if stream and "text/event-stream" not in ctype.lower():  # (an error page, a JSON error): as it is
            try:
                body = raw.read()
            except VeniceError as err:
                self._fail(h, err, started, model_id, dropped)
                return
            stream = False
        if not stream:
            self._reply(h, raw.status_code, body, _passed_headers(raw.headers), ctype)
            self._log(h, raw.status_code, model_id, started, dropped)
            return
        h.send_response(raw.status_code)
        h.send_header("Content-Type", ctype)
        h.send_header("Cache-Control", "no-cache")
        h.send_header("Transfer-Encoding", "chunked")
        for name, value in _passed_headers(raw.headers).items():
            h.send_header(name, value)
        h.end_headers()
        done = threading.Event()
        gone = threading.Event()
        watcher = threading.Thread(target=self._watch, args=(h.connection, raw, done, gone), daemon=True)
        watcher.start()
        try:
            self._relay(h, raw, usage, gone, responses)
        except OSError:  # the local client went away: stop the upstream request too
            gone.set()
        finally:
            done.set()
            raw.close()
            watcher.join()
        if gone.is_set():
            h.close_connection = True
        self._log(h, raw.status_code, model_id, started, dropped, " client-left" if gone.is_set() else "")

    def _relay(self, h: Any, raw: RawResponse, usage: bool, gone: threading.Event, responses: bool = False) -> None:
        """Pass the events on as they come; without ``include_usage`` asked for, drop the chunk
        without choices that Venice sends anyway (openai's loop reads ``choices[0]``). A Responses
        API stream (``responses``) is complete at its last event (``response.completed``, or a
        failure Venice reported itself), not at ``[DONE]``."""
        decoder = _SSEDecoder()
        finished = False
        blocks = raw.iter_bytes()
        while True:
            try:
                block = next(blocks, b"")
            except VeniceError as err:
                if gone.is_set():
                    return
                error = _openai_error(502, f"upstream stream broke: {err.message}", "upstream_error")
                self._write_chunk(h, b"data: " + error + b"\n\n")
                break
            if not block:
                if gone.is_set():
                    return
                if not finished:
                    error = _openai_error(502, "upstream stream ended before [DONE]", "incomplete_stream")
                    self._write_chunk(h, b"data: " + error + b"\n\n")
                break
            out: list[bytes] = []
            for event, text, _id, _retry in decoder.feed(block):
                finished = finished or text == "[DONE]" or (responses and self._ends_response(event, text))
                # (parsed only when it may be such a chunk: one whose choices do not plainly open a list
                # with an object, as Venice writes them: `"choices":[{`; spacing or null is parsed)
                maybe = text[:1] == "{" and '"choices":[{' not in text
                if not usage and maybe and not self._has_choices(text):
                    continue
                head = b"" if event == "message" else b"event: " + event.encode() + b"\n"
                out.append(head + b"".join(b"data: " + line.encode() + b"\n" for line in text.split("\n")) + b"\n")
            self._write_chunk(h, b"".join(out) or b":\n\n")  # (a block with no event: a keep-alive)
        self._write_chunk(h, b"")

    @staticmethod
    def _ends_response(event: str, text: str) -> bool:
        """Whether a Responses API event is the stream's last (completed, failed, incomplete, error)."""
        if event in _RESPONSE_ENDS:
            return True
        if not any(end in text for end in _RESPONSE_ENDS):
            return False  # (most events: no parsing)
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError):
            return False
        return isinstance(obj, dict) and (obj.get("type") in _RESPONSE_ENDS or obj.get("error") is not None)

    @staticmethod
    def _has_choices(text: str) -> bool:
        try:
            chunk = json.loads(text)
        except (ValueError, RecursionError):
            return True  # not ours to judge: passed on
        return not isinstance(chunk, dict) or "error" in chunk or bool(chunk.get("choices"))

    def _watch(self, sock: Any, raw: RawResponse, done: threading.Event, gone: threading.Event) -> None:
        """While a stream is relayed, notice the local client leaving even when Venice is silent,
        and close the upstream request at once (rather than at Venice's next event, or never)."""
        import selectors
        import socket

        with selectors.DefaultSelector() as selector:
            selector.register(sock, selectors.EVENT_READ)
            while not done.is_set():
                if not selector.select(self.poll_interval):
                    continue
                try:
                    left = not sock.recv(1, socket.MSG_PEEK)
                except (BlockingIOError, socket.timeout):
                    left = False
                except OSError:
                    left = True
                if left:
                    gone.set()
                    raw.close()  # from this thread: the relay's blocked read ends at once
                    return
                done.wait(self.poll_interval)  # bytes of a next request: not a hang-up; don't spin

    # -- answers ---------------------------------------------------------------------------------

    def _fail(
        self, h: Any, err: VeniceError, started: float, model_id: Optional[str], dropped: Sequence[str] = ()
    ) -> None:
        headers: dict[str, str] = {}
        upstream = True  # Venice answered, or could not be reached
        if isinstance(err, VeniceAPIError) and err.status_code and err.status_code >= 400:
            status = err.status_code
            headers = _passed_headers(err.headers or {})
        elif isinstance(err, InvalidRequestError):  # refused here before sending (NaN, a lone surrogate…)
            status, upstream = 400, False
        elif isinstance(err, (APIConnectionError, VeniceAPIError)):
            status = 504 if isinstance(err, APITimeoutError) else 502
        else:
            status, upstream = 502, False
        if upstream and self.client.retry.max_retries:
            # The proxy has applied its retry policy; an openai SDK in front would retry on top of it.
            headers["x-should-retry"] = "false"
        code = err.code if isinstance(err, (VeniceAPIError, StreamError)) else None
        self._reply(h, status, _openai_error(status, err.message, code), headers)
        self._log(h, status, model_id, started, dropped)

    def _reply(
        self,
        h: Any,
        status: int,
        body: bytes,
        headers: Optional[Mapping[str, str]] = None,
        ctype: str = "application/json",
    ) -> None:
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            h.send_header(name, value)
        if not h.body_read:
            h.send_header("Connection", "close")  # what was not read must not be taken for a request
            h.close_connection = True
        h.end_headers()
        try:
            h.wfile.write(body)
        except OSError:
            h.close_connection = True

    @staticmethod
    def _write_chunk(h: Any, data: bytes) -> None:
        h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        h.wfile.flush()

    def _log(
        self, h: Any, status: Any, model_id: Any, started: float, dropped: Sequence[str] = (), extra: str = ""
    ) -> None:
        if self.log is not None:
            more = f" dropped={','.join(_log_text(k) for k in dropped)}" if dropped else ""
            ms = (time.monotonic() - started) * 1000
            self.log(
                f"{_log_text(h.command)} {_log_text(h.path)} model={_log_text(model_id or '-')} {status} {ms:.0f}ms{more}{extra}"
            )


def start_proxy(
    host: str = "127.0.0.1",
    port: int = 8787,
    *,
    client: Optional[VeniceClient] = None,
    proxy_key: Optional[str] = None,
    model: Optional[str] = None,
    venice_parameters: Optional[Mapping[str, Any]] = None,
    log: Optional[Callable[[str], None]] = None,
    background: bool = True,
    allow_hosts: Sequence[str] = (),
    max_body: int = _PROXY_MAX_BODY,
    max_connections: int = _PROXY_MAX_CONNECTIONS,
    client_timeout: float = _PROXY_CLIENT_TIMEOUT,
) -> Any:
    """Start the local OpenAI-compatible proxy (what ``python -m venice proxy`` runs).

    It serves ``/v1/chat/completions``, ``/v1/models`` and ``/v1/embeddings`` (also without ``/v1``)
    and forwards them to Venice with the client's key and retries, after making agent-framework
    requests acceptable: nulls dropped, unknown top-level keys dropped (``CHAT_REQUEST_KEYS``), the
    client's default model when none is named, token limits clamped to the model's
    ``maxCompletionTokens``, and ``venice_parameters`` defaulting to
    ``include_venice_system_prompt: false``. Streams pass through event by event (without the
    usage-only chunk unless ``stream_options.include_usage`` asked for it); an upstream error comes
    back OpenAI-shaped with the same status and its ``Retry-After``/``x-ratelimit-*`` headers; a
    stream that breaks ends with an error event.

    A web page must not be able to spend the key: on a loopback address only requests whose
    ``Host`` names this server (its address or ``localhost``, with its port, or a name in
    ``allow_hosts``) are served, any request with a foreign ``Origin`` is refused, and the JSON
    routes take ``Content-Type: application/json`` only. See README's "Security of the proxy".

    Args:
        host, port: Where to listen (port 0: any free port; see ``server.server_address``).
        client: The ``VeniceClient`` to forward with (default: built from the configuration).
        proxy_key: Bearer token clients must send; required to listen on a non-loopback address.
        model: Force this model for every chat request.
        venice_parameters: Added to (and winning over) each request's ``venice_parameters``.
        log: Called with one line per request (``None``: silent).
        background: Serve from a daemon thread and return at once; ``False``: return without serving
            (call ``serve_forever()`` yourself).
        allow_hosts: More ``Host`` names to accept on loopback (e.g. ``host.docker.internal``).
        max_body: Largest request body in bytes; a larger one is answered 413 without being read.
        max_connections: Connections served at once; more are answered 503 and closed.
        client_timeout: Seconds a client may stay silent while sending a request (or idle between
            requests on a kept-alive connection).
    Returns:
        The ``http.server.ThreadingHTTPServer``; stop it with ``shutdown()`` and ``server_close()``.
    Raises:
        ConfigError: A non-loopback address without ``proxy_key``, or an address it can't listen on.
    """
    import http.server
    import socket

    for name, limit in (("max_body", max_body), ("max_connections", max_connections)):
        if not _is_number(limit, whole=True) or limit < 1:
            raise ConfigError(f"{name} must be a whole number >= 1, got {limit!r}")
    client_timeout = _seconds("client_timeout", client_timeout, ConfigError)
    core = _LocalProxy(
        client if client is not None else VeniceClient(),
        proxy_key=proxy_key,
        model=model,
        venice_parameters=venice_parameters,
        log=log,
        allow_hosts=[allow_hosts] if isinstance(allow_hosts, str) else allow_hosts,
        max_body=max_body,
    )
    slots = threading.BoundedSemaphore(max_connections)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = f"venice.py-proxy/{__version__}"
        timeout = client_timeout  # reading headers and body; an idle kept-alive connection ends too

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per request is written by _LocalProxy._log instead

        def handle_one_request(self) -> None:
            # A request must arrive whole within client_timeout, however its bytes trickle in: the socket
            # timeout counts per read, so one byte every few seconds would hold a connection slot forever.
            # The timer stops once the body is in (request_read); serving the answer is not limited.
            self.timer = threading.Timer(client_timeout, self._too_slow)
            self.timer.daemon = True
            self.timer.start()
            try:
                super().handle_one_request()
            finally:
                self.timer.cancel()

        def request_read(self) -> None:
            self.timer.cancel()

        def _too_slow(self) -> None:
            self.too_slow = True
            try:  # the blocked read ends (nothing is forwarded); a 408 can still be written
                self.connection.shutdown(socket.SHUT_RD)
            except OSError:
                pass

        def _serve(self) -> None:
            if getattr(self, "too_slow", False):  # (the head was cut short by the timer: it is not a request)
                self.close_connection = True
                return
            core.handle(self)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _serve

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET  # "::1" too

        def process_request(self, request: Any, client_address: Any) -> None:
            if not slots.acquire(blocking=False):
                busy = _openai_error(503, "the proxy is serving too many connections; try again", "overloaded")
                try:
                    request.settimeout(1)
                    request.sendall(
                        b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                        b"Retry-After: 1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(busy), busy)
                    )
                except OSError:
                    pass
                self.shutdown_request(request)
                return
            try:
                super().process_request(request, client_address)
            except BaseException:
                slots.release()
                raise

        def process_request_thread(self, request: Any, client_address: Any) -> None:
            # ThreadingMixIn's, with the slot given back before the socket closes: a client that
            # saw its connection end can count on the slot being free again.
            try:
                self.finish_request(request, client_address)
            except Exception:
                self.handle_error(request, client_address)
            finally:
                slots.release()
                self.shutdown_request(request)

        def server_close(self) -> None:
            super().server_close()
            core.close()

    try:
        server = Server((host, port), Handler)
    except (OSError, OverflowError) as err:  # address in use, no such address, a bad port
        raise ConfigError(f"can't listen on {host}:{port} ({getattr(err, 'strerror', None) or err})") from None
    core.bound(str(server.server_address[0]), int(server.server_address[1]))
    if not core.loopback and not proxy_key:
        server.server_close()
        raise ConfigError(
            f"refusing to listen on {host} without --proxy-key: anyone who can reach it could spend your balance"
        )
    if background:
        threading.Thread(target=server.serve_forever, name="venice-proxy", daemon=True).start()
    return server


###############################################################################
# Command line ################################################################
###############################################################################

_COMMANDS: Final = ("chat", "models", "auth", "proxy", "balance", "usage", "characters", "keys", "search", "scrape")
_SPINNER: Final = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


class _Exit(Exception):
    """Ends ``main`` with an exit status (argparse's own exits included)."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class _UI:
    """The streams ``main`` was given, with the terminal facts that decide spinners and colours."""

    def __init__(self, stdin: Any, stdout: Any, stderr: Any, environ: Mapping[str, str]) -> None:
        self.stdin, self.stdout, self.stderr, self.environ = stdin, stdout, stderr, environ
        self.tty_out = _isatty(stdout)
        self.tty_err = _isatty(stderr)
        self.color = self.tty_err and "NO_COLOR" not in environ and environ.get("TERM") != "dumb"
        self.at_line_start = True
        self.debug = False  # --debug or VENICE_DEBUG: tracebacks for errors
        self.base_url: Optional[str] = None  # the API root in use, once a client exists

    def out(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()
        if text:
            self.at_line_start = text.endswith("\n")

    def err(self, text: str, style: str = "") -> None:
        if not self.at_line_start:
            self.out("\n")
        if style and self.color:
            text = f"\x1b[{style}m{text}\x1b[0m"
        self.stderr.write(text + "\n")
        self.stderr.flush()


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class _Spinner:
    """A small spinner on stderr until the first token, only when stdout and stderr are terminals."""

    def __init__(self, ui: _UI) -> None:
        self.ui = ui
        self.stop_event = threading.Event()
        self.thread: Optional[threading.Thread] = None

    def __enter__(self) -> _Spinner:
        if self.ui.tty_out and self.ui.tty_err:
            self.thread = threading.Thread(target=self._spin, daemon=True)
            self.thread.start()
        return self

    def _spin(self) -> None:
        i = 0
        while not self.stop_event.wait(0.08):
            self.ui.stderr.write(f"\r{_SPINNER[i % len(_SPINNER)]} ")
            self.ui.stderr.flush()
            i += 1

    def stop(self) -> None:
        if self.thread is not None and not self.stop_event.is_set():
            self.stop_event.set()
            self.thread.join()
            self.ui.stderr.write("\r  \r")
            self.ui.stderr.flush()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _argparser(ui: _UI, prog: str, description: str, usage: Optional[str] = None) -> Any:
    import argparse

    class Parser(argparse.ArgumentParser):
        def _print_message(self, message: str, file: Any = None) -> None:
            if message:
                (ui.stderr if file is sys.stderr else ui.stdout).write(message)

        def exit(self, status: int = 0, message: Optional[str] = None) -> Any:
            if message:
                ui.stderr.write(message)
            raise _Exit(status)

    return Parser(prog=prog, description=description, usage=usage)


def _common_options(parser: Any) -> None:
    parser.add_argument("--base-url", help="API root (default: VENICE_BASE_URL or the public API)")
    parser.add_argument("--timeout", type=float, help="read timeout in seconds")
    parser.add_argument("--debug", action="store_true", help="show tracebacks (also VENICE_DEBUG=1)")


def _chat_parser(ui: _UI) -> Any:
    p = _argparser(
        ui,
        "venice",
        "Chat with a Venice model: `venice [options] PROMPT` (or `venice chat …`, the same). The other "
        "commands come first: `venice models`, `venice auth set|status|clear`, `venice proxy`, `venice keys "
        "list|create|delete|limits`, `venice search QUERY`, `venice scrape URL`, `venice balance`, `venice "
        "usage`, `venice characters [SEARCH]` (each has "
        "--help). Piped input is put before the prompt. A one-word prompt that looks like a command "
        "(help, model, …) is refused as a likely typo; put -- before a prompt to send it as it is: "
        "`venice -- help`.",
        usage="venice [options] [--] [PROMPT ...]\n       venice {chat,models,auth,proxy,keys,search,scrape,balance,usage,characters} [options] ...",
    )
    p.add_argument("prompt", nargs="*", help="the prompt; none and a terminal: interactive chat")
    p.add_argument("-m", "--model", help="model id or trait (default: VENICE_MODEL, else the 'default' trait)")
    p.add_argument("-s", "--system", help="system prompt")
    p.add_argument(
        "-t",
        "--temperature",
        type=float,
        help=f"sampling temperature, 0-2 (default {DEFAULT_TEMPERATURE:g}, venice.py's default, sent on every call)",
    )
    p.add_argument("--max-tokens", type=int, help="most tokens to generate")
    p.add_argument("--no-stream", action="store_true", help="wait for the whole answer")
    p.add_argument("--json", action="store_true", help="print the response JSON (one chunk per line when streaming)")
    p.add_argument("--web-search", choices=("off", "on", "auto"), help="Venice web search")
    p.add_argument("--no-venice-prompt", action="store_true", help="leave out Venice's system prompt")
    p.add_argument("--character", metavar="SLUG", help="answer as this character (see `venice characters`)")
    p.add_argument("--show-reasoning", action="store_true", help="print the model's reasoning to stderr")
    p.add_argument(
        "-i", "--interactive", action="store_true", help="interactive chat even when stdin is not a terminal"
    )
    p.add_argument("-v", "--verbose", action="store_true", help="print usage, cost and balance to stderr")
    p.add_argument("-V", "--version", action="version", version=f"venice.py {__version__}")
    _common_options(p)
    return p


def main(
    argv: Optional[Sequence[str]] = None,
    *,
    stdin: Any = None,
    stdout: Any = None,
    stderr: Any = None,
    environ: Optional[Mapping[str, str]] = None,
) -> int:
    """Run the ``venice`` command line (``python -m venice …``) and return its exit status.

    Commands: ``venice "prompt"`` / ``venice chat "prompt"`` (streams the answer; no prompt on a
    terminal starts an interactive chat), ``venice models``, ``venice auth set|status|clear`` and
    ``venice proxy``. ``--help`` on each lists its options. Commands come first; a one-word prompt
    that is a command or one typo away from one (``venice help``, ``venice model``) is refused with
    "did you mean …" (exit 2) rather than sent and billed, and ``venice -- help`` sends it anyway.
    Library warnings are printed as one ``venice: warning: …`` line each.

    Args:
        argv: Arguments without the program name (default ``sys.argv[1:]``).
        stdin, stdout, stderr: Streams to use (default the process's).
        environ: Environment to read (default ``os.environ``).
    Returns:
        0 success, 1 API or network error, 2 usage or configuration error, 130 interrupted.
    """
    import warnings

    args_in = list(sys.argv[1:] if argv is None else argv)
    env = os.environ if environ is None else environ
    ui = _UI(stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr, env)
    ui.debug = "--debug" in args_in or env.get("VENICE_DEBUG", "").lower() in ("1", "true", "yes")

    def show_warning(
        message: Union[Warning, str],
        category: type[Warning],
        filename: str,
        lineno: int,
        file: Any = None,
        line: Optional[str] = None,
    ) -> None:
        ui.err(f"venice: warning: {message}", "33")

    with warnings.catch_warnings():  # restores the filters and showwarning when main returns
        # The library's warnings (a bad .env line, a readable credentials file, a deprecated model) are
        # one `venice: warning:` line each here, not Python's "file:line: UserWarning" plus source code.
        warnings.simplefilter("default", UserWarning)
        warnings.simplefilter("default", DeprecationWarning)
        warnings.showwarning = show_warning
        return _run(args_in, ui)


def _run(args_in: list[str], ui: _UI) -> int:
    """``main`` after the streams are set up: dispatch, and turn every failure into an exit status."""
    try:
        command = args_in[0] if args_in and args_in[0] in _COMMANDS else "chat"
        rest = args_in[1:] if args_in and args_in[0] in _COMMANDS else args_in
        handler = {
            "chat": _cli_chat,
            "models": _cli_models,
            "auth": _cli_auth,
            "proxy": _cli_proxy,
            "balance": _cli_balance,
            "usage": _cli_usage,
            "characters": _cli_characters,
            "keys": _cli_keys,
            "search": _cli_search,
            "scrape": _cli_scrape,
        }[command]
        return handler(rest, ui)
    except _Exit as done:
        return done.status
    except KeyboardInterrupt:
        ui.err("interrupted")
        return 130
    except BrokenPipeError:
        if ui.stdout is sys.stdout:  # keep Python from complaining again while it exits
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return 0
    except VeniceError as err:
        usage = isinstance(err, ConfigError) or (isinstance(err, InvalidRequestError) and err.status_code is None)
        _report(ui, err)
        return 2 if usage else 1
    except Exception as err:
        if ui.debug:
            raise
        ui.err(f"venice: internal error: {type(err).__name__}: {err} (run with --debug for the traceback)", "31")
        return 1


def _report(ui: _UI, err: VeniceError, prefix: str = "venice: error: ") -> None:
    """One line on stderr for an error, in the CLI's words (with the traceback under --debug)."""
    if ui.debug:
        import traceback

        traceback.print_exception(type(err), err, err.__traceback__, file=ui.stderr)
    ui.err(prefix + _error_text(err, ui.base_url), "31")


def _error_text(err: VeniceError, base_url: Optional[str] = None) -> str:
    """``str(err)`` with the library's hint replaced where the CLI knows better: a stream cut short is
    said to be incomplete once (the library's hints name ``.partial``, an attribute the user can't
    reach from here), a long ``Retry-After`` is given in hours or minutes, and a 404 points to
    ``venice models`` or to the base URL."""
    text, hint = str(err), err.hint
    if hint and text.endswith(f" — {hint}"):
        text = text[: -len(hint) - 3]
    if err.partial is not None:
        kept = hint if hint and ".partial" not in hint and "incomplete" not in hint else None
        hint = "; ".join(h for h in (kept, "the answer above is incomplete" if err.partial else None) if h) or None
    elif isinstance(err, RateLimitError) and err.retry_after:
        # (replaces "longer than max_retry_after", a library setting; "gave up after N attempts" stays)
        gave_up = hint.rpartition("; ")[2] if hint and "gave up after" in hint else None
        hint = f"Venice asks to wait: try again in {_duration(err.retry_after)}"
        hint += f" ({gave_up})" if gave_up else ""
    elif isinstance(err, NotFoundError) and err.status_code == 404:
        if err.code == "MODEL_NOT_FOUND":
            hint = "`venice models` lists the model ids"
        elif err.code is None:  # not a model, character or media id: the path itself is unknown
            where = f" (now {base_url})" if base_url else ""
            hint = f"check the API root: --base-url or VENICE_BASE_URL{where}"
    elif hint and "ca_file=" in hint:
        hint = hint.replace(" or ca_file=", "")  # a library argument; the CLI has only the variable
    elif hint and "retry_unsafe" in hint:  # (names a library setting the CLI does not offer)
        hint = "not sent again: Venice may have processed it; check before you run it again"
    return f"{text} — {hint}" if hint else text


def _duration(seconds: float) -> str:
    """A wait in the units a person would use: 30 s, 5 min, 1 h, 1 h 30 min."""
    whole = max(1, int(-(-seconds // 1)))  # rounded up: "wait 1 s" rather than "wait 0 s"
    if whole < 60:
        return f"{whole} s"
    minutes = round(whole / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def _cli_client(args: Any, ui: _UI, **kw: Any) -> VeniceClient:
    client = VeniceClient(base_url=args.base_url, timeout=args.timeout, environ=ui.environ, **kw)
    ui.base_url = client.config.base_url  # for the hint of a 404
    return client


def _cli_chat(argv: list[str], ui: _UI) -> int:
    args = _chat_parser(ui).parse_args(argv)
    if len(args.prompt) == 1 and "--" not in argv:
        meant = _near_command(args.prompt[0])
        if meant is not None:  # `venice help`, `venice model`: a typo would be billed as a prompt
            word = args.prompt[0]
            ui.err(
                f"venice: error: {word!r} looks like a command: did you mean `{meant}`? "
                f"To send it to the model as a prompt, put -- before it: venice -- {word}",
                "31",
            )
            return 2
    prompt = " ".join(args.prompt)
    if ui.stdin is not None and not _isatty(ui.stdin) and not args.interactive:
        try:
            piped = ui.stdin.read()
            piped.encode("utf-8")  # under a C locale, undecodable bytes arrive as lone surrogates
        except UnicodeError:
            raise ConfigError("the piped input is not UTF-8 text") from None
        if piped.strip():
            prompt = f"{piped.rstrip()}\n\n{prompt}" if prompt else piped
    client = _cli_client(args, ui)
    model = args.model or client.config.default_model or "default"
    options: dict[str, Any] = {"temperature": args.temperature, "max_tokens": args.max_tokens}
    params: dict[str, Any] = {}
    if args.web_search:
        params["enable_web_search"] = args.web_search
    if args.no_venice_prompt:
        params["include_venice_system_prompt"] = False
    if params:
        options["venice_parameters"] = params
    if args.temperature is None:
        del options["temperature"]
    if args.character:
        options["character"] = args.character
    if not prompt.strip():
        if args.interactive or _isatty(ui.stdin):
            return _interactive(client, model, args, options, ui)
        ui.err('venice: error: no prompt given: venice "your question" (or pipe text in)')
        return 2
    messages = [{"role": "system", "content": args.system}] if args.system else []
    messages.append({"role": "user", "content": prompt})
    _answer(client, model, messages, args, options, ui)
    return 0


_NEAR_COMMANDS: Final = {
    "help": "venice --help",
    "models": "venice models",
    "auth": "venice auth",
    "proxy": "venice proxy",
    "balance": "venice balance",
    "usage": "venice usage",
    "characters": "venice characters",
    "keys": "venice keys",
    "search": "venice search QUERY",
    "scrape": "venice scrape URL",
}


def _near_command(word: str) -> Optional[str]:
    """The command a one-word prompt is a near-miss of (``help`` → ``venice --help``), or ``None``.

    A near-miss is the command itself (``venice -m x models``: commands come first) or one typo away
    (two from the longer names ``models`` and ``proxy``: ``model``, ``mdoels``, ``proxie``), where a
    swap of two neighbours is one typo (``hlep``, ``auht``). ``chat`` counts only exactly:
    one typo from it is too many real words (what, that, cat, chart), and ``venice chat`` costs nothing."""
    word = word.strip().lower()
    if word == "chat":
        return "venice chat"
    for name, command in _NEAR_COMMANDS.items():
        if _typos(word, name) <= (1 if len(name) <= 4 else 2):
            return command
    return None


def _typos(a: str, b: str) -> int:
    """Edits (insert, delete, replace, swap two neighbours) from ``a`` to ``b``, the typist's distance."""
    if abs(len(a) - len(b)) > 2:
        return 3  # enough to say "not a near-miss" without the table
    rows = [list(range(len(b) + 1))]
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            row[j] = min(rows[-1][j] + 1, row[j - 1] + 1, rows[-1][j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], rows[-2][j - 2] + 1)
        rows.append(row)
    return rows[-1][-1]


class _Stopped(KeyboardInterrupt):
    """Ctrl-C during an answer, with the text that had arrived (kept in an interactive chat)."""

    def __init__(self, partial: str) -> None:
        super().__init__()
        self.partial = partial


def _answer(
    client: VeniceClient, model: str, messages: list[dict[str, Any]], args: Any, options: dict[str, Any], ui: _UI
) -> str:
    """Ask, print the answer as it arrives, return its text."""
    if args.no_stream:
        with _Spinner(ui):
            r = client.chat.complete(messages, model, **options)
        if args.json:
            ui.out(json.dumps(r, indent=2, ensure_ascii=False) + "\n")
        else:
            if args.show_reasoning and r.reasoning:
                ui.err(r.reasoning, "2")
            ui.out((r.text or "") + "\n")
        if args.verbose:
            _verbose(ui, r)
        return r.text or ""
    spinner = _Spinner(ui).__enter__()
    stream: Optional[ChatStream] = None
    try:
        stream = client.chat.complete(messages, model, stream=True, **options)
        with stream:
            if args.json:
                for chunk in stream.chunks():
                    spinner.stop()
                    ui.out(json.dumps(chunk, ensure_ascii=False) + "\n")
            else:
                for kind, text in stream.parts():
                    spinner.stop()
                    if kind == "text":
                        ui.out(text)
                    elif args.show_reasoning:
                        ui.stderr.write(f"\x1b[2m{text}\x1b[0m" if ui.color else text)
                        ui.stderr.flush()
                if not ui.at_line_start or not stream.text:
                    ui.out("\n")
    except KeyboardInterrupt:
        raise _Stopped(stream.text if stream is not None else "") from None
    finally:
        spinner.stop()
    if args.verbose:
        _verbose(ui, stream.response)
    return str(stream.text)


def _verbose(ui: _UI, r: ChatResponse) -> None:
    """Usage, cost and balance of an answer, on stderr (``-v``)."""
    usage, cost, meta = r.usage, r.get("cost"), r.meta
    parts = []
    if usage:
        parts.append(f"tokens: {usage.get('prompt_tokens')} in, {usage.get('completion_tokens')} out")
    if isinstance(cost, dict):
        parts.append("cost: " + ", ".join(f"{v} {k.upper()}" for k, v in cost.items()))
    if meta.balance_usd is not None or meta.balance_diem is not None:
        parts.append(f"balance before: {meta.balance_usd} USD, {meta.balance_diem} DIEM")
    if meta.model_id:
        parts.append(f"model: {meta.model_id}")
    if meta.request_id:
        parts.append(f"request id: {meta.request_id}")
    ui.err("; ".join(parts) or "no usage reported", "2")


_HELP: Final = """commands:
  /model [NAME] show or switch model  /system TEXT  set the system prompt
  /clear        forget the chat       /save FILE    save the chat as JSON
  /help         this text             /exit         leave (or Ctrl-D)
Ctrl-C stops an answer."""


def _interactive(client: VeniceClient, model: str, args: Any, options: dict[str, Any], ui: _UI) -> int:
    """A chat that keeps the conversation, with readline editing and history when available."""
    real_terminal = ui.stdin is sys.stdin and _isatty(ui.stdin)
    if real_terminal:
        try:
            import readline  # noqa: F401 - importing it gives input() line editing and history
        except ImportError:
            pass
    system = args.system
    messages: list[dict[str, Any]] = []
    ui.out(f"venice.py {__version__}, model {model}. /help for commands, Ctrl-D to leave.\n")
    prompt = "\x1b[1myou>\x1b[0m " if ui.color and ui.tty_out else "you> "
    while True:
        try:
            if real_terminal:
                line = input(prompt)
            else:
                ui.out(prompt)
                line = ui.stdin.readline()
                if not line:
                    raise EOFError
        except EOFError:
            ui.out("\n")
            return 0
        except KeyboardInterrupt:
            ui.out("\n")
            continue
        line = line.strip()
        if not line:
            continue
        if line.startswith("/"):
            name, _, arg = line.partition(" ")
            arg = arg.strip()
            if name in ("/exit", "/quit"):
                return 0
            if name == "/help":
                ui.out(_HELP + "\n")
            elif name == "/model":
                if arg:
                    model = _switch_model(client, model, arg, ui)
                ui.out(f"model: {model}\n")
            elif name == "/system":
                system = arg or None
                ui.out("system prompt set\n" if system else "system prompt cleared\n")
            elif name == "/clear":
                messages.clear()
                ui.out("conversation cleared\n")
            elif name == "/save" and arg:
                convo = ([{"role": "system", "content": system}] if system else []) + messages
                try:
                    with open(os.path.expanduser(arg), "w", encoding="utf-8") as fh:
                        json.dump({"model": model, "messages": convo}, fh, indent=2, ensure_ascii=False)
                except (OSError, ValueError) as err:  # (ValueError: a NUL in the path)
                    ui.err(f"could not save: {err}")
                else:
                    ui.out(f"saved {len(convo)} messages to {arg}\n")
            else:
                ui.out("unknown command or missing argument; /help lists them\n")
            continue
        messages.append({"role": "user", "content": line})
        convo = ([{"role": "system", "content": system}] if system else []) + messages
        try:
            text = _answer(client, model, convo, args, options, ui)
        except KeyboardInterrupt as stop:
            ui.err("[answer stopped]", "33")
            # The question and what arrived of the answer stay in the chat (and in /save), marked so
            # that the model, too, sees the answer was cut short.
            partial = getattr(stop, "partial", "")
            messages.append({"role": "assistant", "content": f"{partial.rstrip()} [interrupted]".lstrip()})
            continue
        except VeniceError as err:
            _report(ui, err, "error: ")
            messages.pop()
            continue
        messages.append({"role": "assistant", "content": text})


def _switch_model(client: VeniceClient, current: str, name: str, ui: _UI) -> str:
    """``/model NAME``: the new model if Venice lists it (as an id, a trait or a compatibility name),
    else the current one. If the list can't be fetched, the name is taken on trust, with a note."""
    import difflib

    try:
        models = client.models.list()
        known = {m.id for m in models} | {t for m in models for t in m.traits}
        if name.partition(":")[0] not in known:  # (a suffix such as `:enable_web_search=on` is a setting)
            known |= set(client.models.compatibility_mapping())
    except VeniceError as err:
        ui.err(f"could not check {name!r} against the model list ({_error_text(err)}); using it anyway", "33")
        return name
    if name.partition(":")[0] in known:
        return name
    close = difflib.get_close_matches(name, sorted(known), n=1)
    maybe = f"; did you mean {close[0]}?" if close else ""
    ui.err(f"unknown model {name!r}{maybe} (`venice models` lists them); keeping {current}", "33")
    return current


def _cli_models(argv: list[str], ui: _UI) -> int:
    p = _argparser(ui, "venice models", "List Venice models (no API key needed).")
    p.add_argument(
        "--type", default="text", help="text, image, embedding, tts, asr, video, upscale, inpaint, music, code or all"
    )
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    _common_options(p)
    args = p.parse_args(argv)
    models = _cli_client(args, ui).models.list(args.type)
    rows = sorted(models, key=lambda m: m.id)
    if args.json:
        ui.out(json.dumps([m.raw for m in rows], indent=2, ensure_ascii=False) + "\n")
        return 0
    table: list[tuple[str, ...]] = [("ID", "CONTEXT", "IN $/M", "OUT $/M", "CAPABILITIES", "TRAITS")]
    for m in rows:
        table.append(
            (
                m.id,
                _short_number(m.context_length),
                _price(m, "input"),
                _price(m, "output"),
                _capabilities(m),
                ",".join(m.traits),
            )
        )
    try:
        width = (
            int(ui.environ.get("COLUMNS", ""))
            if ui.environ.get("COLUMNS")
            else os.get_terminal_size(ui.stdout.fileno()).columns
        )
    except (OSError, ValueError, AttributeError):
        width = 100
    ui.out("\n".join(_fit_table(table, width)) + "\n")
    return 0


def _short_number(n: Optional[int]) -> str:
    if not n:
        return "-"
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else f"{n // 1000}k" if n >= 1000 else str(n)


def _price(model: Model, kind: str) -> str:
    entry = model.pricing.get(kind)
    usd = entry.get("usd") if isinstance(entry, dict) else None
    return f"{usd:g}" if isinstance(usd, (int, float)) else "-"


_CAPS: Final = (
    ("supportsFunctionCalling", "tools"),
    ("supportsVision", "vision"),
    ("supportsReasoning", "reasoning"),
    ("optimizedForCode", "code"),
    ("supportsWebSearch", "web"),
    ("supportsResponseSchema", "schema"),
    ("supportsAudioInput", "audio"),
    ("supportsVideoInput", "video"),
    ("supportsE2EE", "e2ee"),
)


def _capabilities(model: Model) -> str:
    return ",".join(short for key, short in _CAPS if model.capabilities.get(key))


def _fit_table(rows: list[tuple[str, ...]], width: int) -> list[str]:
    """Left-aligned columns; the last columns are cut (with …) so each line fits ``width``."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    over = sum(widths) + 2 * (len(widths) - 1) - width
    for i in range(len(widths) - 1, 0, -1):  # shrink from the right, never the id
        if over <= 0:
            break
        cut = min(over, widths[i] - min(3, widths[i]))
        widths[i] -= cut
        over -= cut

    def cell(text: str, w: int) -> str:
        return text if len(text) <= w else text[: max(0, w - 1)] + "…"

    return ["  ".join(cell(r[i], widths[i]).ljust(widths[i]) for i in range(len(r))).rstrip() for r in rows]


def _cli_auth(argv: list[str], ui: _UI) -> int:
    p = _argparser(ui, "venice auth", "Store, check or remove your Venice API key.")
    sub = p.add_subparsers(dest="action", required=True)
    p_set = sub.add_parser("set", help="store a key in the credentials file (asks for it if not given)")
    p_set.add_argument("key", nargs="?", help="the key (default: ask without echo, or read stdin)")
    p_set.add_argument("--no-verify", action="store_true", help="don't check the key with Venice first")
    p_status = sub.add_parser("status", help="where the key comes from, and whether Venice accepts it")
    p_status.add_argument("--no-verify", action="store_true", help="don't ask Venice")
    sub.add_parser("clear", help="remove the stored key (and the file, if nothing else is in it)")
    for q in (p_set, p_status, sub.choices["clear"]):
        _common_options(q)
    args = p.parse_args(argv)
    path = credentials_path(ui.environ)
    if args.action == "set":
        key = args.key
        if key is None:
            if _isatty(ui.stdin) and ui.stdin is sys.stdin:
                import getpass

                key = getpass.getpass("Venice API key: ")
            else:
                key = ui.stdin.readline()
        key = _check_key(key)
        if key is None:
            raise ConfigError("no key given")
        if not args.no_verify:
            checker = VeniceClient(
                key, base_url=args.base_url, timeout=args.timeout, environ=ui.environ, env_file=False
            )
            ui.base_url = checker.config.base_url
            try:
                _verify_key(checker, ui)
            except VeniceError as err:
                rejected = isinstance(err, (UnauthorizedError, PermissionDeniedError))
                err.hint = None  # the library's 401 hint points to `venice auth status`: no key is stored yet
                what = "Venice rejected the key" if rejected else "could not check the key"
                _report(ui, err, f"venice: error: {what}: ")
                ui.err("venice: the key was NOT saved; to save it without checking: venice auth set --no-verify")
                return 1
        _write_credentials(path, key)
        ui.out(f"saved API key {mask_key(key)} to {path}\n")
        return 0
    if args.action == "clear":
        removed = _write_credentials(path, None)
        ui.out(f"removed the API key from {path}\n" if removed else f"no API key stored in {path}\n")
        return 0
    client = _cli_client(args, ui)
    config = client.config
    if config.api_key is None:
        raise ConfigError("no API key configured: run `venice auth set` or set VENICE_API_KEY")
    where = {
        "environment": "the environment variable VENICE_API_KEY",
        ".env": f"the .env file {os.path.abspath('.env')}",
        "credentials": f"the credentials file {path}",
    }.get(config.key_source or "", config.key_source or "?")
    ui.out(f"API key {mask_key(config.api_key)} from {where}\n")
    ui.out(f"it would be sent to {_url_host(config.base_url)}\n")
    if not args.no_verify:
        _verify_key(client, ui)
    return 0


def _url_host(url: str) -> str:
    """The host (and port, if one is given) of a URL: where requests with the key go."""
    from urllib.parse import urlsplit

    return urlsplit(url).netloc.rpartition("@")[2] or url


def _verify_key(client: VeniceClient, ui: _UI) -> None:
    """One cheap authenticated request; prints what Venice says about the key and its balance."""
    info = client.request("GET", "/api_keys/rate_limits")
    data = info.get("data") if isinstance(info, dict) else None
    balances = data.get("balances") if isinstance(data, dict) else None
    text = "Venice accepts the key"
    if isinstance(balances, dict) and balances:
        text += " (balance: " + ", ".join(f"{v} {k}" for k, v in balances.items()) + ")"
    ui.out(text + "\n")


def _write_credentials(path: str, key: Optional[str]) -> bool:
    """Set (or, with ``None``, remove) VENICE_API_KEY in the credentials file, atomically, mode 0600.

    Other lines are kept; a file left with nothing in it is removed. Returns whether the file held a
    key before."""
    try:
        return _rewrite_credentials(path, key)
    except OSError as err:  # a folder where the file should be, a read-only disk, …
        raise ConfigError(f"can't update the credentials file {path}: {err.strerror or err}") from None


def _rewrite_credentials(path: str, key: Optional[str]) -> bool:
    import tempfile

    try:  # surrogateescape: other lines go back byte for byte, even if they are not UTF-8
        with open(path, encoding="utf-8", errors="surrogateescape") as fh:
            lines = fh.read().splitlines()
    except FileNotFoundError:
        lines = []
    kept = [
        ln for ln in lines if ln.strip().removeprefix("export ").lstrip().partition("=")[0].strip() != "VENICE_API_KEY"
    ]
    had_key = len(kept) != len(lines)
    if key is None and not had_key:
        return False
    if key is not None:
        kept.append(f"VENICE_API_KEY={key}")
    elif not any(line.strip() for line in kept):
        os.remove(path)  # nothing else was in it: leave no empty file behind
        return True
    folder = os.path.dirname(path)
    os.makedirs(folder, mode=0o700, exist_ok=True)
    if os.name == "posix":
        os.chmod(folder, 0o700)  # a folder made earlier by something else keeps its mode otherwise
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".credentials-")  # created with mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as fh:
            fh.write("".join(line + "\n" for line in kept))
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return had_key


def _port(text: str) -> int:
    import argparse

    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"a port is a number from 0 to 65535, not {text!r}")
    return int(text)


def _cli_proxy(argv: list[str], ui: _UI) -> int:
    p = _argparser(
        ui, "venice proxy", "A local OpenAI-compatible endpoint in front of Venice (for Letta and other agents)."
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=_port, default=8787, help="port (default 8787; 0 picks a free one)")
    p.add_argument(
        "--proxy-key", help="bearer token clients must send (required off loopback; or set VENICE_PROXY_KEY)"
    )
    p.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also accept requests sent to this host name, e.g. host.docker.internal (repeatable)",
    )
    p.add_argument(
        "--max-body", type=int, default=_PROXY_MAX_BODY, metavar="BYTES", help="largest request body (default 8 MiB)"
    )
    p.add_argument(
        "--max-connections",
        type=int,
        default=_PROXY_MAX_CONNECTIONS,
        metavar="N",
        help=f"connections served at once (default {_PROXY_MAX_CONNECTIONS})",
    )
    p.add_argument("--model", help="use this model for every chat request")
    p.add_argument(
        "--venice-param", action="append", default=[], metavar="KEY=VALUE", help="venice_parameters entry (repeatable)"
    )
    p.add_argument("--quiet", action="store_true", help="no per-request log lines")
    _common_options(p)
    args = p.parse_args(argv)
    params: dict[str, Any] = {}
    for item in args.venice_param:
        name, eq, raw = item.partition("=")
        if not eq or not name:
            raise ConfigError(f"--venice-param takes KEY=VALUE, got {item!r}")
        try:
            params[name] = json.loads(raw)  # true / false / numbers; anything else is a string
        except ValueError:
            params[name] = raw
    client = _cli_client(args, ui)
    client.config.require_key()
    server = start_proxy(
        args.host,
        args.port,
        client=client,
        # From the environment it was given, so the key need not show in `ps`.
        proxy_key=args.proxy_key or ui.environ.get("VENICE_PROXY_KEY") or None,
        model=args.model,
        venice_parameters=params,
        log=None if args.quiet else ui.err,
        background=False,
        allow_hosts=args.allow_host,
        max_body=args.max_body,
        max_connections=args.max_connections,
    )
    host, port = server.server_address[:2]
    import ipaddress

    if not ipaddress.ip_address(host.split("%")[0]).is_loopback:
        ui.err(f"warning: listening on {args.host}: clients must send the proxy key as their bearer token", "33")
    shown = f"[{host}]" if ":" in host else host
    ui.err(f"venice proxy: http://{shown}:{port}/v1 -> {client.config.base_url} (Ctrl-C stops it)")
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


def _terminal_width(ui: _UI) -> int:
    try:
        if ui.environ.get("COLUMNS"):
            return int(ui.environ["COLUMNS"])
        return os.get_terminal_size(ui.stdout.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return 100


def _amount(value: Any) -> str:
    return f"{value:,.2f}" if _is_number(value) else "-"


def _cli_balance(argv: list[str], ui: _UI) -> int:
    p = _argparser(ui, "venice balance", "Show the account's USD and DIEM balances (needs an ADMIN key).")
    p.add_argument("-v", "--verbose", action="store_true", help="also the key's rate-limit headroom")
    p.add_argument("--json", action="store_true", help="print Venice's answer as JSON")
    _common_options(p)
    args = p.parse_args(argv)
    b: Any = _cli_client(args, ui).billing.balance()
    if args.json:
        ui.out(json.dumps(b, indent=2, ensure_ascii=False) + "\n")
        return 0
    balances: Any = b.get("balances") if isinstance(b.get("balances"), dict) else {}
    allocation = b.get("diemEpochAllocation")
    diem = _amount(balances.get("diem"))
    if _is_number(allocation) and allocation and _is_number(balances.get("diem")):
        diem += f" (of {_amount(allocation)} this epoch)"
    lines = [f"USD   {_amount(balances.get('usd'))}", f"DIEM  {diem}"]
    if b.get("consumptionCurrency"):
        lines.append(f"paying in {b.consumptionCurrency}" + ("" if b.get("canConsume", True) else " (can't consume)"))
    if args.verbose:
        meta: ResponseMeta = b.meta
        for kind in ("requests", "tokens"):
            left = getattr(meta, f"ratelimit_remaining_{kind}")
            limit = getattr(meta, f"ratelimit_limit_{kind}")
            reset = getattr(meta, f"ratelimit_reset_{kind}")
            if left is None:
                continue
            when = f", resets in {_duration(reset - time.time())}" if reset and reset > time.time() else ""
            lines.append(f"rate limit: {left} of {limit if limit is not None else '?'} {kind} left{when}")
        if meta.ratelimit_remaining_requests is None and meta.ratelimit_remaining_tokens is None:
            lines.append("rate limit: Venice sent no rate-limit headers")
    ui.out("\n".join(lines) + "\n")
    return 0


def _since(text: str) -> str:
    """``--since``: a date (its midnight, UTC) or a full ISO 8601 timestamp (sent as given)."""
    import re

    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return f"{text}T00:00:00Z"
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}T[0-9:.]+(Z|[+-]\d{2}:\d{2})", text):
        raise ConfigError(f"--since/--until take a date (2026-06-01) or an ISO 8601 time with a zone, not {text!r}")
    if text.endswith("Z"):
        return text
    from datetime import datetime, timezone

    try:  # Venice's spec wants UTC, written with Z
        when = datetime.fromisoformat(text).astimezone(timezone.utc)
    except ValueError:
        raise ConfigError(f"--since/--until: {text!r} is not a valid time") from None
    return when.strftime("%Y-%m-%dT%H:%M:%S") + (f".{when.microsecond:06d}"[:4] if when.microsecond else "") + "Z"


def _cli_usage(argv: list[str], ui: _UI) -> int:
    p = _argparser(
        ui,
        "venice usage",
        "Show the usage history, oldest first (needs an ADMIN key); --csv FILE saves Venice's CSV export.",
    )
    p.add_argument("--since", help="from this date or time (UTC), e.g. 2026-06-01")
    p.add_argument("--until", help="up to (not including) this date or time")
    p.add_argument("--currency", choices=("USD", "DIEM", "BUNDLED_CREDITS"), help="only this currency")
    p.add_argument("--csv", metavar="FILE", help="save the CSV export to FILE (- for stdout)")
    p.add_argument("--json", action="store_true", help="one JSON entry per line")
    _common_options(p)
    args = p.parse_args(argv)
    start = _since(args.since) if args.since else None
    end = _since(args.until) if args.until else None
    client = _cli_client(args, ui)
    if args.csv:
        show = ui.tty_err and args.csv != "-"  # a count that rewrites itself: for a person at a terminal

        def progress(rows: int) -> None:
            ui.stderr.write(f"\r{rows} rows")
            ui.stderr.flush()

        target: Any = args.csv
        if args.csv == "-":
            target = getattr(ui.stdout, "buffer", ui.stdout)
        rows = client.billing.usage_history_csv(
            target, currency=args.currency, start=start, end=end, progress=progress if show else None
        )
        if show:
            ui.stderr.write("\r")
        if args.csv != "-":
            ui.err(f"{rows} row{'' if rows == 1 else 's'} written to {args.csv}")
        return 0
    entries = client.billing.usage_history(currency=args.currency, start=start, end=end)
    if args.json:
        for e in entries:
            ui.out(json.dumps(e, ensure_ascii=False) + "\n")
        return 0
    table: list[tuple[str, ...]] = [("TIME", "AMOUNT", "CURRENCY", "UNITS", "SKU")]
    for e in entries:
        table.append(
            (
                str(e.get("timestamp", "")),
                f"{e.get('amount')}",
                str(e.get("currency", "")),
                f"{e.get('units')}",
                str(e.get("sku", "")),
            )
        )
    if len(table) == 1:
        ui.err("no usage in that period")
        return 0
    ui.out("\n".join(_fit_table(table, _terminal_width(ui))) + "\n")
    return 0


def _cli_characters(argv: list[str], ui: _UI) -> int:
    p = _argparser(ui, "venice characters", "List Venice's public characters; chat with one: venice --character SLUG …")
    p.add_argument("search", nargs="?", help="words to find in names, descriptions or tags")
    p.add_argument(
        "--sort",
        choices=(
            "featured",
            "highestRating",
            "highlyRated",
            "highlyRatedAndRecent",
            "imports",
            "mostRecent",
            "ratingCount",
        ),
        help="order",
    )
    p.add_argument("--limit", type=int, default=20, help="how many to show (default 20)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    _common_options(p)
    args = p.parse_args(argv)
    if args.limit < 1:
        raise ConfigError("--limit must be at least 1")
    pages = _cli_client(args, ui).characters.list(args.search, sort_by=args.sort, page_size=min(args.limit, 100))
    found: list[Any] = list(islice(pages, args.limit))
    if args.json:
        for c in found:
            ui.out(json.dumps(c, ensure_ascii=False) + "\n")
        return 0
    if not found:
        ui.err("no characters found")
        return 0
    table: list[tuple[str, ...]] = [("SLUG", "NAME", "RATING", "MODEL", "DESCRIPTION")]
    for c in found:
        stats: Any = c.get("stats") if isinstance(c.get("stats"), dict) else {}
        rating = stats.get("averageRating")
        table.append(
            (
                str(c.get("slug", "")),
                str(c.get("name", "")),
                f"{rating:.1f}" if _is_number(rating) else "-",
                str(c.get("modelId") or "-"),
                " ".join(str(c.get("description") or "").split()),
            )
        )
    ui.out("\n".join(_fit_table(table, _terminal_width(ui))) + "\n")
    return 0


def _cli_keys(argv: list[str], ui: _UI) -> int:
    p = _argparser(ui, "venice keys", "Manage API keys (needs an ADMIN key; `limits` works with any key).")
    sub = p.add_subparsers(dest="action", required=True)
    p_list = sub.add_parser("list", help="the account's keys (id, type, description, last characters, expiry)")
    p_create = sub.add_parser("create", help="create a key and print its secret, once")
    p_create.add_argument("description", help="up to 64 characters")
    p_create.add_argument("--type", default="INFERENCE", choices=("INFERENCE", "ADMIN"), help="default INFERENCE")
    p_create.add_argument("--usd", type=float, help="USD spend limit per period")
    p_create.add_argument("--diem", type=float, help="DIEM spend limit per period")
    p_create.add_argument("--period", choices=("EPOCH", "MONTH", "LIFETIME"), help="the limits' period")
    p_create.add_argument("--expires", metavar="DATE", help="YYYY-MM-DD or an ISO time ending in Z")
    p_delete = sub.add_parser("delete", help="delete a key by id")
    p_delete.add_argument("id")
    p_limits = sub.add_parser("limits", help="this key's tier, balances and per-model rate limits")
    for q in (p_list, p_create, p_delete, p_limits):
        q.add_argument("--json", action="store_true", help="print Venice's answer as JSON")
        _common_options(q)
    args = p.parse_args(argv)
    keys = _cli_client(args, ui).api_keys
    if args.action == "list":
        rows = keys.list()
        if args.json:
            ui.out(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
            return 0
        table: list[tuple[str, ...]] = [("ID", "TYPE", "KEY", "EXPIRES", "DESCRIPTION")]
        for r in rows:
            expires = str(r.get("expiresAt") or "-")[:10]
            cells = (
                r.get("id"),
                r.get("apiKeyType") or "-",
                f"…{r.get('last6Chars') or ''}",
                expires,
                r.get("description"),
            )
            table.append(tuple(str(c or "") for c in cells))
        ui.out("\n".join(_fit_table(table, _columns(ui))) + "\n")
    elif args.action == "create":
        limit = {k: v for k, v in (("usd", args.usd), ("diem", args.diem)) if v is not None} or None
        key = keys.create(
            args.description,
            api_key_type=args.type,
            consumption_limit=limit,
            limit_period=args.period,
            expires_at=args.expires,
        )
        if args.json:
            ui.out(json.dumps(key, indent=2, ensure_ascii=False) + "\n")
        else:
            ui.out(f"{key.apiKey}\n")
        ui.err(f"created {key.apiKeyType} key {key.id}: store the secret now, Venice shows it only once", "33")
    elif args.action == "delete":
        try:
            keys.delete(args.id)
        except NotFoundError as err:  # (the CLI's generic 404 hint blames the API root: here it is the id)
            err.hint = "`venice keys list` shows the ids"
            ui.err(f"venice: error: {err}", "31")
            return 1
        ui.out(f"deleted key {args.id}\n")
    else:
        limits = keys.rate_limits()
        if args.json:
            ui.out(json.dumps(limits, indent=2, ensure_ascii=False) + "\n")
            return 0
        balances = limits.get("balances") or {}
        tier = (limits.get("apiTier") or {}).get("id", "-")
        ui.out(f"tier {tier}, balance USD {balances.get('USD', '-')}, DIEM {balances.get('DIEM', '-')}\n")
        table = [("MODEL", "LIMITS")]
        for entry in limits.get("rateLimits") or ():
            each = ", ".join(f"{x.get('type')} {x.get('amount')}" for x in entry.get("rateLimits") or ())
            table.append((str(entry.get("apiModelId") or "*"), each))
        if len(table) > 1:
            ui.out("\n".join(_fit_table(table, _columns(ui))) + "\n")
    return 0


def _columns(ui: _UI) -> int:
    """The terminal's width (``COLUMNS`` first), or 100 when it is not a terminal."""
    try:
        if ui.environ.get("COLUMNS"):
            return int(ui.environ["COLUMNS"])
        return os.get_terminal_size(ui.stdout.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return 100


def _cli_search(argv: list[str], ui: _UI) -> int:
    p = _argparser(ui, "venice search", "Search the web through Venice: title, URL and text of each result.")
    p.add_argument("query", help="what to search for (1 to 400 characters)")
    p.add_argument("-n", "--limit", type=int, help="number of results, 1 to 20 (default 10)")
    p.add_argument("--provider", choices=("google", "brave"), help="search provider")
    p.add_argument("--json", action="store_true", help="print Venice's answer as JSON")
    _common_options(p)
    args = p.parse_args(argv)
    found = _cli_client(args, ui).augment.search(args.query, limit=args.limit, search_provider=args.provider)
    if args.json:
        ui.out(json.dumps(found, indent=2, ensure_ascii=False) + "\n")
        return 0
    blocks = []
    for r in found.get("results") or ():
        date = f" ({r.get('date')})" if r.get("date") else ""
        blocks.append(f"{r.get('title') or ''}{date}\n{r.get('url') or ''}\n{(r.get('content') or '').strip()}\n")
    if not blocks:
        ui.err(f"venice: no results for {args.query!r}")
    ui.out("\n".join(blocks))
    return 0


def _cli_scrape(argv: list[str], ui: _UI) -> int:
    p = _argparser(ui, "venice scrape", "Fetch a web page through Venice and print it as Markdown.")
    p.add_argument("url", help="the page's URL")
    p.add_argument("--json", action="store_true", help="print Venice's answer as JSON")
    _common_options(p)
    args = p.parse_args(argv)
    page = _cli_client(args, ui).augment.scrape(args.url)
    if args.json:
        ui.out(json.dumps(page, indent=2, ensure_ascii=False) + "\n")
        return 0
    content = page.get("content") or ""
    ui.out(content if content.endswith("\n") else content + "\n")
    return 0


if __name__ == "__main__":
    sys.modules.setdefault("venice", sys.modules["__main__"])  # one module, not two, under -m
    sys.exit(main())
