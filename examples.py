"""Runnable examples for venice.py, one function each.

    python examples.py            # list them
    python examples.py basic      # run one

They read the API key (and optionally VENICE_BASE_URL / VENICE_MODEL) from the usual configuration:
VENICE_API_KEY, a .env file, or `python -m venice auth set`.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from typing import Literal

import venice

MODEL = os.environ.get("VENICE_MODEL", "venice-uncensored")


def basic() -> None:
    """One question, one answer."""
    client = venice.VeniceClient()
    r = client.chat.complete("Why is the sky blue? One sentence.", model=MODEL)
    print(r.text)
    print(f"[{r.usage.total_tokens} tokens, request id {r.meta.request_id}]")


def streaming() -> None:
    """Print the answer as it arrives; the stream keeps the whole result."""
    client = venice.VeniceClient()
    with client.chat.complete("Count from 1 to 5.", model=MODEL, stream=True) as stream:
        for text in stream:
            print(text, end="", flush=True)
    print()
    print(f"[finish_reason={stream.finish_reason}, usage={stream.usage}]")


def get_weather(city: str, unit: Literal["celsius", "fahrenheit"] = "celsius") -> dict[str, object]:
    """Current weather for a city.

    Args:
        city: City name, e.g. "Paris".
        unit: Temperature unit.
    """
    return {"city": city, "temperature": 21 if unit == "celsius" else 70, "unit": unit, "sky": "clear"}


def tools() -> None:
    """A full tool round trip: the model asks for a function, we run it, and send the result back."""
    client = venice.VeniceClient()
    messages: list[dict[str, object]] = [{"role": "user", "content": "What's the weather in Paris?"}]
    r = client.chat.complete(messages, model=MODEL, tools=[get_weather])
    for call in r.tool_calls:
        print(f"model asked for {call.name}({call.args})")
    if r.tool_calls:
        messages.append(r.message)  # the assistant message, unchanged
        messages += venice.run_tool_calls(r, [get_weather])  # one "tool" message per call
        r = client.chat.complete(messages, model=MODEL, tools=[get_weather])
    print(r.text)


def system_prompt() -> None:
    """A system prompt, without Venice's own system prompt added in front of it."""
    client = venice.VeniceClient()
    r = client.chat.complete(
        [
            {"role": "system", "content": "You are a pirate. Answer in one short sentence."},
            {"role": "user", "content": "What is Python?"},
        ],
        model=MODEL,
        venice_parameters={"include_venice_system_prompt": False},
    )
    print(r.text)


def dotenv() -> None:
    """Configuration from a .env file (read by venice.py's own parser, never into os.environ)."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, ".env")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write('# my project\nexport VENICE_API_KEY="vn-example-0000-1234"\nVENICE_MODEL=venice-uncensored\n')
        config = venice.load_config(env_file=path, environ={})
    print(f"key {venice.mask_key(config.api_key)} from {config.key_source}, model {config.default_model}")


def models() -> None:
    """List text models that can call functions (no API key needed)."""
    client = venice.VeniceClient()
    for m in client.models.list("text"):
        if m.capabilities.get("supportsFunctionCalling"):
            print(f"{m.id:40} context {m.context_length}")


def openai_shim() -> None:
    """Code written for the openai SDK, running on Venice with `from venice import OpenAI`."""
    from venice import OpenAI

    client = OpenAI()  # key from the usual Venice configuration
    completion = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Say hello in French."}],
        extra_body={"venice_parameters": {"include_venice_system_prompt": False}},
    )
    print(completion.choices[0].message.content)
    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Say hello in Spanish."}], stream=True
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            print(chunk.choices[0].delta.content, end="", flush=True)
    print()


def errors() -> None:
    """What failures look like: one exception tree, with Venice's message, status, code and request id."""
    client = venice.VeniceClient(max_retries=0)
    try:
        client.chat.complete("Hello", model="no-such-model")
    except venice.RateLimitError as err:
        print(f"rate limited; retry after {err.retry_after} s")
    except venice.NotFoundError as err:
        print(f"not found: {err.message} (status {err.status_code}, code {err.code}, request id {err.request_id})")
    except venice.VeniceAPIError as err:
        print(f"Venice said {err.status_code}: {err.message}")
    except venice.APIConnectionError as err:
        print(f"could not reach Venice: {err}")


def letta() -> None:
    """The local OpenAI-compatible proxy, started in-process, spoken to the way an agent framework does."""
    import http.client

    server = venice.start_proxy("127.0.0.1", 0)  # port 0: any free port
    host, port = server.server_address[:2]
    try:
        conn = http.client.HTTPConnection(host, port, timeout=30)
        body = {  # what Letta sends: nulls, unknown keys, a large token limit
            "model": MODEL,
            "messages": [{"role": "user", "content": "Say hi."}],
            "tools": None,
            "tool_choice": None,
            "user": "",
            "parallel_tool_calls": False,
            "max_completion_tokens": 16384,
            "service_tier": "auto",
        }
        conn.request("POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"})
        answer = json.loads(conn.getresponse().read())
        print(answer["choices"][0]["message"]["content"])
    finally:
        server.shutdown()
        server.server_close()


def async_example() -> None:
    """Many questions at once on one AsyncVeniceClient, a streamed answer with `async for`, and a
    cancelled call (its connection is closed; nothing is left running)."""
    import asyncio

    async def run() -> None:
        async with venice.AsyncVeniceClient(max_concurrency=8) as client:
            questions = ["Name a colour.", "Name a fruit.", "Name a city."]
            answers = await asyncio.gather(*(client.chat.complete(q, model=MODEL) for q in questions))
            for answer in answers:
                print(answer.text)
            async with await client.chat.complete("Count from 1 to 3.", model=MODEL, stream=True) as stream:
                async for text in stream:
                    print(text, end="", flush=True)
            print(f" [{stream.finish_reason}]")
            call = asyncio.ensure_future(client.chat.complete("Write a very long essay.", model=MODEL))
            await asyncio.sleep(0)  # (it has started)
            call.cancel()
            try:
                await call
            except asyncio.CancelledError:
                print("cancelled: the call's connection was closed")

    asyncio.run(run())


def characters() -> None:
    """Find characters (fetched page by page, only as far as you read), a character's reviews, and a chat as one."""
    import itertools

    client = venice.VeniceClient()
    for c in itertools.islice(client.characters.list("philosopher", sort_by="highestRating"), 2):
        print(f"{c.slug}: {c.name}")
    alan = client.characters.get("alan-watts")
    print(f"{alan.name}, on {alan.modelId}: {alan.description}")
    reviews = client.characters.reviews("alan-watts", page_size=10)
    for review in itertools.islice(reviews, 1):  # one page fetched, no more
        print(f"{review.rating}/5 {review.message} [{reviews.total} reviews]")
    print(client.chat.complete("Who are you?", model=MODEL, character="alan-watts").text)


def billing() -> None:
    """The balance, this month's USD spending from the usage history, and the CSV export saved to a file."""
    client = venice.VeniceClient()
    b = client.billing.balance()
    print(f"balance: {b.balances.usd} USD, {b.balances.diem} DIEM")
    entries = client.billing.usage_history(currency="USD", start="2026-06-01T00:00:00Z")
    spent = -sum(e.amount for e in entries)
    print(f"spent since June 1: {spent:.2f} USD ({entries.pages} pages)")
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "usage.csv")
        rows = client.billing.usage_history_csv(path, start="2026-06-01T00:00:00Z")
        with open(path, encoding="utf-8") as fh:
            print(f"{rows} rows saved under the header: {fh.readline().strip()}")


def keys() -> None:
    """A per-app API key with a spend limit: create, list, check the limits, delete (needs an ADMIN key)."""
    client = venice.VeniceClient()
    key = client.api_keys.create("example app", consumption_limit={"usd": 5}, limit_period="MONTH")
    print(key)  # printing (or logging) the new key masks its secret
    secret = key.apiKey  # the secret itself: Venice shows it only once, so store it now
    print(f"secret: {len(secret)} characters, ends in {secret[-4:]}")
    for row in client.api_keys.list():
        print(f"{row.id:4} {row.apiKeyType:10} …{row.last6Chars} {row.description}")
    limits = client.api_keys.rate_limits()
    print(f"balance {limits.balances.USD} USD, {limits.balances.DIEM} DIEM; tier {limits.apiTier.id}")
    client.api_keys.delete(key.id)
    print(f"deleted {key.id}")
def responses() -> None:
    """The Responses API (alpha at Venice): one answer, then a stream of typed events."""
    client = venice.VeniceClient()
    r = client.responses.create("Why is the sky blue? One sentence.", model=MODEL, max_output_tokens=200)
    print(r.output_text)
    print(f"[{r.status}, {r.usage.total_tokens} tokens]")
    with client.responses.create("Count from 1 to 5.", model=MODEL, stream=True) as stream:
        for event in stream:
            if event.type == "response.output_text.delta":
                print(event.delta, end="", flush=True)
    print()
    print(f"[{len(stream.output_text)} characters, done={stream.done}]")


def images() -> None:
    """Venice's image styles, then two variants of one prompt, checked for Venice's flags and saved."""
    client = venice.VeniceClient()
    print("styles:", ", ".join(client.images.styles()[:3]))
    result = client.images.generate("a lighthouse at dusk", variants=2, format="png", seed=42)
    if result.content_violation or result.blurred:  # Venice answers 200 for these too
        print("Venice flagged or blurred the image: not saved")
        return
    with tempfile.TemporaryDirectory() as folder:
        for path in result.save(os.path.join(folder, "lighthouse-{i}")):
            print(f"saved {os.path.basename(path)} ({os.path.getsize(path)} bytes, {result.mime_type})")


EXAMPLES = {
    f.__name__: f
    for f in (basic, streaming, tools, system_prompt, dotenv, models, openai_shim, errors, letta)
}
EXAMPLES["async"] = async_example
EXAMPLES["characters"] = characters
EXAMPLES["billing"] = billing
EXAMPLES["keys"] = keys
EXAMPLES["responses"] = responses
EXAMPLES["images"] = images


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in EXAMPLES:
        print("usage: python examples.py NAME\n\nexamples:")
        for name, fn in EXAMPLES.items():
            print(f"  {name:14} {(fn.__doc__ or '').splitlines()[0]}")
        return 0 if not argv else 2
    EXAMPLES[argv[0]]()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
