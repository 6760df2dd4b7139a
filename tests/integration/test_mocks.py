"""The mock providers themselves (tests/mock), driven over HTTP with no gateway:
their wire formats, directives, auth checks and recording."""

import base64
import hashlib
import hmac
import http.client
import json
import os
import secrets
import select
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path
from urllib.parse import quote, unquote

MOCK_DIR = Path(__file__).resolve().parents[1] / "mock"
sys.path.insert(0, str(MOCK_DIR))

from harness import Mock  # noqa: E402  (one way to start a mock, shared with the gateway tests)


def directive(d, prompt="hello there"):
    return "%s MOCK%s" % (prompt, json.dumps(d)) if d is not None else prompt


def sse_data(body, sep="\n\n"):
    """The data: payloads of an SSE body, in order."""
    text = body.decode("utf-8")
    out = []
    for block in text.split(sep):
        if not block.strip():
            continue
        lines = [l for l in block.split(sep[:len(sep) // 2]) if l.startswith("data: ")]
        assert lines, "SSE block without data: %r" % block
        out.append("\n".join(l[6:] for l in lines))
    return out


def refused(mock, path, body, headers):
    """True if the mock closed the connection without an answer."""
    c = mock.conn()
    try:
        c.request("POST", path, body=json.dumps(body), headers=headers)
        try:
            c.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError):
            return True
        return False
    finally:
        c.close()


# --------------------------------------------------------------------------
# All mocks: READY, SIGTERM, health, recording, the Anthropic mock unchanged
# --------------------------------------------------------------------------

SCRIPTS = ("mock_provider.py", "mock_openai.py", "mock_bedrock.py", "mock_gemini.py",
           "mock_agent.py")


def test_mocks_ready_line_health_and_sigterm():
    for script in SCRIPTS:
        m = Mock(script, quiet=False)
        try:
            assert m.ready_line.strip() == "READY port=%d" % m.port, m.ready_line
            assert m.health()["ok"] is True
            marker = "secret-body-" + secrets.token_hex(4)
            m.post("/v1/nowhere", {"messages": [{"role": "user", "content": marker}]})
        finally:
            rc = m.stop()
        assert rc == 0, "%s exited %s on SIGTERM" % (script, rc)
        out, err = m.proc.stdout.read().decode(), m.proc.stderr.read().decode()
        assert out == "", "%s printed more than the READY line: %r" % (script, out)
        assert marker not in err, "%s logged a request body: %r" % (script, err)


def test_mocks_agent_echoes_what_it_received():
    with Mock("mock_agent.py", "--require-key", "agent-key") as m:
        status, _, body = m.post("/chat", {"message": "SSN <US_SSN> please"},
                                 {"authorization": "Bearer agent-key"})
        assert status == 200, body
        doc = json.loads(body)
        assert doc["echo"] == "SSN <US_SSN> please" and doc["answer"], doc
        assert doc["usage"] == {"input_tokens": 4,
                                "output_tokens": len(doc["answer"].split())}, doc
        assert m.post("/chat", {"message": "x"})[0] == 401
        assert m.post("/chat", {"message": 3}, {"authorization": "Bearer agent-key"})[0] == 400
        assert m.post("/elsewhere", {}, {"authorization": "Bearer agent-key"})[0] == 404
        assert [r["path"] for r in m.records()] == ["/chat", "/chat", "/chat", "/elsewhere"]


def test_mocks_anthropic_mock_after_refactor():
    with Mock("mock_provider.py", "--require-key", "ak") as m:
        h = {"x-api-key": "ak", "anthropic-version": "2023-06-01"}
        status, hdrs, body = m.post("/v1/messages?beta=true", {
            "model": "claude-x", "max_tokens": 10,
            "messages": [{"role": "user", "content": directive({"text": "one two three"})}]}, h)
        assert status == 200, body
        doc = json.loads(body)
        assert doc["content"] == [{"type": "text", "text": "one two three"}], doc
        assert doc["usage"]["output_tokens"] == 3, doc
        assert hdrs["request-id"] == "req_mock_1" and "anthropic-ratelimit-requests-limit" in hdrs
        rec = m.last_record()
        assert rec["path"] == "/v1/messages" and rec["query"] == {"beta": "true"}, rec
        assert rec["response_body"].encode() == body

        status, _, body = m.post("/v1/messages", {
            "model": "claude-x", "max_tokens": 10, "stream": True,
            "messages": [{"role": "user", "content": directive(
                {"chunks": 2, "tool_use": {"name": "f", "input": {"a": 1}}})}]}, h)
        names = [l[7:] for l in body.decode().splitlines() if l.startswith("event: ")]
        assert names == ["message_start", "content_block_start", "ping", "content_block_delta",
                         "content_block_delta", "content_block_stop", "content_block_start",
                         "content_block_delta", "content_block_delta", "content_block_stop",
                         "message_delta", "message_stop"], names
        status, _, body = m.post("/v1/messages", {
            "model": "claude-x", "max_tokens": 10, "stream": True,
            "messages": [{"role": "user", "content": directive({"stream_error": 529})}]}, h)
        names = [l[7:] for l in body.decode().splitlines() if l.startswith("event: ")]
        assert names == ["message_start", "content_block_start", "ping", "content_block_delta",
                         "error"], names
        assert json.loads(sse_data(body)[-1])["error"]["type"] == "overloaded_error"

        status, hdrs, body = m.post("/v1/messages", {
            "model": "claude-x", "max_tokens": 10,
            "messages": [{"role": "user", "content": directive({"status": 529,
                                                                 "retry_after": 7})}]}, h)
        assert status == 529 and hdrs.get("retry-after") == "7", (status, hdrs)
        assert json.loads(body)["error"]["type"] == "overloaded_error", body
        status, _, body = m.post("/v1/messages", {"model": "x", "messages": []},
                                 {"x-api-key": "wrong"})
        assert status == 401 and json.loads(body)["error"]["type"] == "authentication_error"
        # control paths are not recorded; a non-/v1 path is a 404 nobody records
        n = len(m.records())
        assert m.request("GET", "/elsewhere")[0] == 404
        assert len(m.records()) == n


def test_mocks_recording_fields_and_clear():
    with Mock("mock_openai.py") as m:
        assert m.clear() == {"ok": True, "cleared": 0}
        status, _, body = m.post("/v1/chat/completions?trace=1",
                                 {"model": "gpt-4o",
                                  "messages": [{"role": "user", "content": "x"}]},
                                 {"Authorization": "Bearer k1", "X-Custom": "Yes"})
        assert status == 200
        rec = m.last_record()
        want = {"method", "path", "query", "headers", "body", "status", "response_body",
                "t_received", "t_first_byte", "t_last_event", "t_done"}
        assert want <= set(rec), set(rec)
        assert rec["method"] == "POST" and rec["path"] == "/v1/chat/completions", rec
        assert rec["query"] == {"trace": "1"}, rec["query"]
        assert rec["headers"]["x-custom"] == "Yes", rec["headers"]
        assert rec["headers"]["authorization"] == "Bearer k1", rec["headers"]
        assert json.loads(rec["body"])["model"] == "gpt-4o"
        assert rec["status"] == 200 and rec["response_body"].encode() == body
        assert rec["t_received"] <= rec["t_first_byte"] <= rec["t_last_event"] <= rec["t_done"]
        assert m.clear() == {"ok": True, "cleared": 1}
        assert m.records() == []


# --------------------------------------------------------------------------
# OpenAI
# --------------------------------------------------------------------------

def chat(m, d=None, stream=False, headers=None, path="/v1/chat/completions", **extra):
    body = {"model": "gpt-4o", "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": directive(d)}]}]}
    if stream:
        body["stream"] = True
    body.update(extra)
    h = {"Authorization": "Bearer sk-test"} if headers is None else headers
    return m.post(path, body, h)


def stream_chunks(body):
    data = sse_data(body)
    assert data and data[-1] == "[DONE]", "stream does not end with [DONE]: %r" % data[-1:]
    return [json.loads(d) for d in data[:-1]]


def test_mocks_openai_chat_completion():
    with Mock("mock_openai.py", "--require-key", "sk-test") as m:
        status, hdrs, body = chat(m, {"text": "a b c", "usage": {
            "prompt_tokens": 100, "cached_tokens": 40, "reasoning_tokens": 7}})
        assert status == 200, body
        doc = json.loads(body)
        assert doc["object"] == "chat.completion" and doc["model"] == "gpt-4o", doc
        choice = doc["choices"][0]
        assert choice["message"]["role"] == "assistant" and choice["message"]["content"] == "a b c"
        assert choice["finish_reason"] == "stop", choice
        u = doc["usage"]
        assert (u["prompt_tokens"], u["completion_tokens"], u["total_tokens"]) == (100, 10, 110), u
        assert u["prompt_tokens_details"]["cached_tokens"] == 40, u
        assert u["completion_tokens_details"]["reasoning_tokens"] == 7, u
        assert hdrs["x-request-id"] and "x-ratelimit-limit-requests" in hdrs, hdrs

        status, _, body = chat(m, {"usage": {"completion_tokens": 9, "reasoning_tokens": 4}})
        u = json.loads(body)["usage"]
        assert u["completion_tokens"] == 9 and u["completion_tokens_details"][
            "reasoning_tokens"] == 4, u

        status, _, body = chat(m, {"tool_calls": [{"name": "get_weather",
                                                   "arguments": {"city": "Oslo"}}]})
        msg = json.loads(body)["choices"][0]
        assert msg["finish_reason"] == "tool_calls" and msg["message"]["content"] is None, msg
        call = msg["message"]["tool_calls"][0]
        assert call["type"] == "function" and call["function"]["name"] == "get_weather", call
        assert json.loads(call["function"]["arguments"]) == {"city": "Oslo"}, call


def test_mocks_openai_stream_usage_only_with_include_usage():
    with Mock("mock_openai.py") as m:
        status, hdrs, body = chat(m, {"text": "one two three four", "chunks": 4}, stream=True)
        assert status == 200 and hdrs["content-type"].startswith("text/event-stream"), hdrs
        assert body.endswith(b"data: [DONE]\n\n"), body[-40:]
        chunks = stream_chunks(body)
        assert all(c["object"] == "chat.completion.chunk" for c in chunks)
        assert len({c["id"] for c in chunks}) == 1
        assert all("usage" not in c for c in chunks), "usage without include_usage"
        assert all(len(c["choices"]) == 1 for c in chunks)
        assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
        assert text == "one two three four", text
        assert sum(1 for c in chunks if c["choices"][0]["delta"].get("content")) == 4
        assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
        assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])

        status, _, body = chat(m, {"usage": {"prompt_tokens": 12, "completion_tokens": 5,
                                             "cached_tokens": 3}},
                               stream=True, stream_options={"include_usage": True})
        chunks = stream_chunks(body)
        last = chunks[-1]
        assert last["choices"] == [] and last["usage"]["prompt_tokens"] == 12, last
        assert last["usage"]["total_tokens"] == 17, last
        assert last["usage"]["prompt_tokens_details"]["cached_tokens"] == 3, last
        assert all(c["usage"] is None for c in chunks[:-1]), "usage not null before the last"
        assert chunks[-2]["choices"][0]["finish_reason"] == "stop"

        status, _, body = chat(m, stream=True, stream_options={"include_usage": False})
        assert all("usage" not in c for c in stream_chunks(body))


def test_mocks_openai_stream_tool_calls():
    with Mock("mock_openai.py") as m:
        calls = [{"name": "lookup", "arguments": {"query": "tollgate gateway", "limit": 3}},
                 {"name": "second", "arguments": "{\"x\": true}"}]
        status, _, body = chat(m, {"tool_calls": calls}, stream=True)
        chunks = stream_chunks(body)
        assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
        seen = {}
        for c in chunks:
            for tc in c["choices"][0]["delta"].get("tool_calls", []):
                entry = seen.setdefault(tc["index"], {"ids": [], "name": None, "pieces": []})
                if "id" in tc:
                    entry["ids"].append(tc["id"])
                    entry["name"] = tc["function"]["name"]
                    assert tc["type"] == "function"
                if tc["function"].get("arguments"):
                    entry["pieces"].append(tc["function"]["arguments"])
        assert sorted(seen) == [0, 1], seen
        assert len(seen[0]["ids"]) == 1 and seen[0]["name"] == "lookup", seen[0]
        assert len(seen[0]["pieces"]) >= 2, "arguments not split: %s" % seen[0]
        assert json.loads("".join(seen[0]["pieces"])) == calls[0]["arguments"]
        assert json.loads("".join(seen[1]["pieces"])) == {"x": True}


def test_mocks_openai_errors_and_drops():
    with Mock("mock_openai.py", "--require-key", "sk-test") as m:
        status, hdrs, body = chat(m, {"status": 429, "retry_after": 3})
        err = json.loads(body)["error"]
        assert status == 429 and hdrs.get("retry-after") == "3", (status, hdrs)
        assert set(err) == {"message", "type", "param", "code"}, err
        assert err["code"] == "rate_limit_exceeded", err
        status, _, body = chat(m, {"status": 500, "error_type": "server_error",
                                   "error_code": "boom"})
        assert status == 500 and json.loads(body)["error"]["code"] == "boom"

        status, _, body = chat(m, headers={"Authorization": "Bearer nope"})
        err = json.loads(body)["error"]
        assert status == 401 and err["code"] == "invalid_api_key", body
        assert chat(m, headers={})[0] == 401

        status, _, body = chat(m, stream_options={"include_usage": True})
        err = json.loads(body)["error"]
        assert status == 400 and err["param"] == "stream_options", body
        status, _, body = m.post("/v1/chat/completions", {"messages": []},
                                 {"Authorization": "Bearer sk-test"})
        assert status == 400 and json.loads(body)["error"]["param"] == "model"
        status, _, body = m.post("/v1/nothing", {}, {"Authorization": "Bearer sk-test"})
        assert status == 404 and json.loads(body)["error"]["type"] == "invalid_request_error"

        h = {"Authorization": "Bearer sk-test", "Content-Type": "application/json"}
        assert refused(m, "/v1/chat/completions", {"model": "m", "messages": [
            {"role": "user", "content": directive({"drop": "before_headers"})}]}, h)
        status, hdrs, body = chat(m, {"drop": "mid_stream"}, stream=True)
        assert hdrs.get("x-test-incomplete") and b"[DONE]" not in body, body
        assert len(sse_data(body)) == 2, body
        status, hdrs, body = chat(m, {"drop": "mid_stream"})
        assert hdrs.get("x-test-incomplete"), "non-stream body not cut"

        status, hdrs, body = chat(m, {"stream_error": 503}, stream=True)
        data = sse_data(body)
        assert not hdrs.get("x-test-incomplete") and "[DONE]" not in data, data
        assert json.loads(data[-1])["error"]["type"] == "server_error", data[-1]

        t0 = time.monotonic()
        status, hdrs, body = chat(m, {"hang_after": 2, "hang_ms": 300}, stream=True)
        assert hdrs.get("x-test-incomplete") and len(sse_data(body)) == 2, body
        assert time.monotonic() - t0 >= 0.3

        t0 = time.monotonic()
        status, _, body = chat(m, {"delay_ms": 200, "event_delay_ms": 50, "chunks": 3},
                               stream=True)
        assert status == 200 and time.monotonic() - t0 >= 0.2 + 4 * 0.05
        rec = m.last_record()
        assert rec["t_first_byte"] - rec["t_received"] >= 0.2, rec


def test_mocks_openai_embeddings_and_models():
    with Mock("mock_openai.py", "--require-key", "sk-test") as m:
        h = {"Authorization": "Bearer sk-test"}
        status, _, body = m.post("/v1/embeddings", {"model": "text-embedding-3-small",
                                                    "input": "hello world"}, h)
        doc = json.loads(body)
        assert status == 200 and doc["object"] == "list", doc
        assert doc["data"][0]["object"] == "embedding" and doc["data"][0]["index"] == 0
        vec = doc["data"][0]["embedding"]
        assert len(vec) == 8 and all(isinstance(x, float) for x in vec), vec
        assert set(doc["usage"]) == {"prompt_tokens", "total_tokens"}, doc["usage"]

        inputs = ["first text", "second " + directive({"usage": {"prompt_tokens": 42}})]
        status, _, body = m.post("/v1/embeddings", {"model": "e", "input": inputs,
                                                    "dimensions": 16}, h)
        floats = json.loads(body)
        assert [d["index"] for d in floats["data"]] == [0, 1]
        assert all(len(d["embedding"]) == 16 for d in floats["data"])
        assert floats["usage"] == {"prompt_tokens": 42, "total_tokens": 42}, floats["usage"]
        status, _, body = m.post("/v1/embeddings", {"model": "e", "input": inputs,
                                                    "dimensions": 16,
                                                    "encoding_format": "base64"}, h)
        b64 = json.loads(body)
        for fd, bd in zip(floats["data"], b64["data"]):
            raw = base64.b64decode(bd["embedding"])
            assert list(struct.unpack("<16f", raw)) == fd["embedding"], "base64 != float"
        status, _, body = m.post("/v1/embeddings", {"model": "e", "input": [[1, 2, 3]]}, h)
        assert status == 200 and json.loads(body)["usage"]["prompt_tokens"] == 3
        status, _, body = m.post("/v1/embeddings", {"model": "e", "input": [{"x": 1}]}, h)
        assert status == 400 and json.loads(body)["error"]["param"] == "input"

        status, _, body = m.request("GET", "/v1/models", headers=h)
        doc = json.loads(body)
        assert status == 200 and doc["object"] == "list", doc
        assert {"id": "gpt-4o", "object": "model"}.items() <= doc["data"][0].items(), doc
        status, _, body = m.request("GET", "/v1/models/gpt-4o-mini", headers=h)
        assert status == 200 and json.loads(body)["id"] == "gpt-4o-mini"
        status, _, body = m.request("GET", "/v1/models/nope", headers=h)
        assert status == 404 and json.loads(body)["error"]["code"] == "model_not_found"
        assert m.request("GET", "/v1/models")[0] == 401


def test_mocks_azure_openai_paths():
    with Mock("mock_openai.py", "--require-key", "az-key") as m:
        path = "/openai/deployments/my-gpt4o/chat/completions?api-version=2024-10-21"
        status, hdrs, body = chat(m, {"text": "hi there"}, path=path,
                                  headers={"api-key": "az-key"})
        assert status == 200, body
        doc = json.loads(body)
        assert doc["choices"][0]["message"]["content"] == "hi there"
        assert "prompt_filter_results" in doc and "apim-request-id" in hdrs, (doc, hdrs)
        rec = m.last_record()
        assert rec["deployment"] == "my-gpt4o" and rec["api_version"] == "2024-10-21", rec
        assert rec["query"] == {"api-version": "2024-10-21"}, rec

        status, _, body = chat(m, path=path, headers={"api-key": "az-key"}, stream=True,
                               stream_options={"include_usage": True})
        chunks = stream_chunks(body)
        assert chunks[0]["choices"] == [] and "prompt_filter_results" in chunks[0], chunks[0]
        assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0

        status, _, body = chat(m, path=path, headers={"api-key": "wrong"})
        assert status == 401 and json.loads(body)["error"]["code"] == "401", body
        status, _, body = chat(m, path=path, headers={"Authorization": "Bearer az-key"})
        assert status == 401, "a Bearer header must not pass for api-key"
        status, _, body = chat(m, path="/openai/deployments/my-gpt4o/chat/completions",
                               headers={"api-key": "az-key"})
        assert status == 404 and json.loads(body)["error"]["message"] == "Resource not found"

        status, _, body = m.post("/openai/deployments/emb/embeddings?api-version=2024-10-21",
                                 {"input": ["a", "b"]}, {"api-key": "az-key"})
        doc = json.loads(body)
        assert status == 200 and len(doc["data"]) == 2 and doc["model"] == "emb", doc
        assert m.last_record()["deployment"] == "emb"


# --------------------------------------------------------------------------
# Bedrock
# --------------------------------------------------------------------------

MODEL_ID = "anthropic.claude-3-5-sonnet-20240620-v1:0"
MODEL_PATH = "/model/%s" % quote(MODEL_ID, safe="")


def converse_body(d=None, system=True):
    body = {"messages": [{"role": "user", "content": [{"text": directive(d)}]}],
            "inferenceConfig": {"maxTokens": 64}}
    if system:
        body["system"] = [{"text": "be brief"}]
    return body


def decode_frames(data):
    """Event stream messages, their CRCs checked: [(headers dict, payload bytes)]."""
    out, pos = [], 0
    while pos < len(data):
        assert len(data) - pos >= 16, "truncated frame at %d" % pos
        total, hlen, pcrc = struct.unpack(">III", data[pos:pos + 12])
        assert zlib.crc32(data[pos:pos + 8]) == pcrc, "bad prelude CRC at %d" % pos
        msg = data[pos:pos + total]
        assert len(msg) == total, "truncated frame at %d" % pos
        (mcrc,) = struct.unpack(">I", msg[-4:])
        assert zlib.crc32(msg[:-4]) == mcrc, "bad message CRC at %d" % pos
        headers, hp = {}, 12
        while hp < 12 + hlen:
            nlen = msg[hp]
            name = msg[hp + 1:hp + 1 + nlen].decode()
            vtype = msg[hp + 1 + nlen]
            assert vtype == 7, "header %s is not a string" % name
            (vlen,) = struct.unpack(">H", msg[hp + 2 + nlen:hp + 4 + nlen])
            headers[name] = msg[hp + 4 + nlen:hp + 4 + nlen + vlen].decode()
            hp += 4 + nlen + vlen
        out.append((headers, msg[12 + hlen:-4]))
        pos += total
    return out


def test_mocks_bedrock_converse():
    with Mock("mock_bedrock.py", "--require-key", "br-key") as m:
        h = {"Authorization": "Bearer br-key"}
        status, hdrs, body = m.post(MODEL_PATH + "/converse", converse_body({
            "text": "x y", "usage": {"input_tokens": 10, "output_tokens": 2,
                                     "cache_read_input_tokens": 5,
                                     "cache_creation_input_tokens": 3}}), h)
        assert status == 200, body
        doc = json.loads(body)
        assert doc["output"]["message"] == {"role": "assistant", "content": [{"text": "x y"}]}
        assert doc["stopReason"] == "end_turn", doc
        assert doc["usage"] == {"inputTokens": 10, "outputTokens": 2, "totalTokens": 20,
                                "cacheReadInputTokens": 5, "cacheWriteInputTokens": 3}, doc
        assert isinstance(doc["metrics"]["latencyMs"], int), doc
        assert "x-amzn-requestid" in hdrs, hdrs
        rec = m.last_record()
        assert rec["model_id"] == MODEL_ID and rec["path"] == MODEL_PATH + "/converse", rec
        assert rec["auth"] == {"scheme": "bearer"}, rec

        status, _, body = m.post(MODEL_PATH + "/converse", converse_body(
            {"tool_calls": [{"name": "f", "input": {"a": [1, 2]}}]}), h)
        doc = json.loads(body)
        tool = doc["output"]["message"]["content"][0]["toolUse"]
        assert doc["stopReason"] == "tool_use" and tool["name"] == "f", doc
        assert tool["input"] == {"a": [1, 2]} and tool["toolUseId"], tool

        status, hdrs, body = m.post(MODEL_PATH + "/converse", converse_body(
            {"status": 429, "retry_after": 2}), h)
        assert status == 429 and hdrs["x-amzn-errortype"].split(":")[0] == "ThrottlingException"
        assert json.loads(body) == {"message": "mock error 429"}, body
        status, hdrs, body = m.post(MODEL_PATH + "/converse", converse_body(), {
            "Authorization": "Bearer wrong"})
        assert status == 403 and "message" in json.loads(body), body
        assert hdrs["x-amzn-errortype"].startswith("UnrecognizedClientException")
        status, hdrs, _ = m.post(MODEL_PATH + "/converse", converse_body(), {})
        assert status == 403 and hdrs["x-amzn-errortype"].startswith(
            "MissingAuthenticationTokenException")
        status, hdrs, _ = m.post(MODEL_PATH + "/converse", {"messages": []}, h)
        assert status == 400 and hdrs["x-amzn-errortype"].startswith("ValidationException")


def test_mocks_bedrock_converse_stream_frames():
    with Mock("mock_bedrock.py") as m:
        h = {"Authorization": "Bearer any"}
        status, hdrs, body = m.post(MODEL_PATH + "/converse-stream", converse_body({
            "text": "alpha beta gamma", "chunks": 3,
            "tool_calls": [{"name": "search", "input": {"q": "some longer query"}}],
            "usage": {"input_tokens": 11, "output_tokens": 7}}), h)
        assert status == 200 and hdrs["content-type"] == "application/vnd.amazon.eventstream"
        frames = decode_frames(body)
        for fh, _ in frames:
            assert fh[":message-type"] == "event" and fh[":content-type"] == "application/json"
        events = [(fh[":event-type"], json.loads(p)) for fh, p in frames]
        names = [n for n, _ in events]
        assert names == ["messageStart", "contentBlockDelta", "contentBlockDelta",
                         "contentBlockDelta", "contentBlockStop", "contentBlockStart",
                         "contentBlockDelta", "contentBlockDelta", "contentBlockDelta",
                         "contentBlockStop", "messageStop", "metadata"], names
        assert events[0][1]["role"] == "assistant"
        text = "".join(p["delta"]["text"] for n, p in events[1:4])
        assert text == "alpha beta gamma" and events[1][1]["contentBlockIndex"] == 0
        start = events[5][1]
        assert start["contentBlockIndex"] == 1 and start["start"]["toolUse"]["name"] == "search"
        pieces = [p["delta"]["toolUse"]["input"] for n, p in events[6:9]]
        assert json.loads("".join(pieces)) == {"q": "some longer query"}, pieces
        assert events[10][1]["stopReason"] == "tool_use"
        meta = events[11][1]
        assert meta["usage"]["inputTokens"] == 11 and meta["usage"]["totalTokens"] == 18, meta
        assert isinstance(meta["metrics"]["latencyMs"], int), meta
        rec = m.last_record()
        assert base64.b64decode(rec["response_body"]) == body, "recorded bytes differ"
        assert [e["event_type"] for e in rec["events"]] == names

        status, hdrs, body = m.post(MODEL_PATH + "/converse-stream",
                                    converse_body({"stream_error": 429}), h)
        frames = decode_frames(body)
        assert [fh.get(":event-type") for fh, _ in frames[:2]] == [
            "messageStart", "contentBlockDelta"], frames
        fh, payload = frames[-1]
        assert fh[":message-type"] == "exception", fh
        assert fh[":exception-type"] == "throttlingException", fh
        assert json.loads(payload)["message"], payload
        assert not hdrs.get("x-test-incomplete")

        status, hdrs, body = m.post(MODEL_PATH + "/converse-stream",
                                    converse_body({"drop": "mid_stream"}), h)
        assert hdrs.get("x-test-incomplete") and len(decode_frames(body)) == 2

        status, hdrs, body = m.post(MODEL_PATH + "/converse-stream",
                                    converse_body({"status": 503}), h)
        assert status == 503 and hdrs["x-amzn-errortype"].startswith("ServiceUnavailable")
        assert json.loads(body)["message"]


def sigv4_headers(method, host, path, query, body, akid, secret, region, amz_date,
                  encode_twice=True):
    """Headers signing a request the way the AWS SDKs do (this test's own signer)."""
    date = amz_date[:8]
    headers = {"host": host, "x-amz-date": amz_date, "content-type": "application/json"}
    signed = sorted(headers)
    canon_path = quote(path if encode_twice else unquote(path), safe="/")
    canon_query = "&".join(sorted("%s=%s" % (quote(k, safe=""), quote(v, safe=""))
                                  for k, v in query))
    creq = "\n".join([method, canon_path, canon_query,
                      "".join("%s:%s\n" % (k, headers[k]) for k in signed), ";".join(signed),
                      hashlib.sha256(body).hexdigest()])
    scope = "%s/%s/bedrock/aws4_request" % (date, region)
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                     hashlib.sha256(creq.encode()).hexdigest()])
    key = ("AWS4" + secret).encode()
    for part in (date, region, "bedrock", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = ("AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, "
                                "Signature=%s" % (akid, scope, ";".join(signed), sig))
    return headers


def test_mocks_bedrock_sigv4_known_answer():
    # The get-vanilla case of AWS's SigV4 test suite.
    import mock_bedrock
    hdrs = {"host": ["example.amazonaws.com"], "x-amz-date": ["20150830T123600Z"]}
    sig = mock_bedrock.sigv4_signature(
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "GET", "/", "",
        lambda name: hdrs.get(name, []), ["host", "x-amz-date"],
        hashlib.sha256(b"").hexdigest(), "20150830T123600Z",
        "20150830/us-east-1/service/aws4_request")
    assert sig == "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31", sig
    assert mock_bedrock.canonical_uri("/model/a%3Ab/converse") == "/model/a%253Ab/converse"
    assert mock_bedrock.canonical_query("b=2&a=x%20y&a=1") == "a=1&a=x%20y&b=2"


def test_mocks_bedrock_sigv4_verification():
    akid, secret, region = "AKIDMOCKTEST", "mock/secret+key", "us-east-1"
    with Mock("mock_bedrock.py", "--access-key-id", akid, "--secret-key", secret,
              "--region", region) as m:
        body = json.dumps(converse_body({"text": "signed"})).encode()
        path = MODEL_PATH + "/converse"
        host = "127.0.0.1:%d" % m.port
        now = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())

        def send(headers, data=body, target=path):
            c = m.conn()
            try:
                c.putrequest("POST", target, skip_host=True, skip_accept_encoding=True)
                for k, v in headers.items():
                    c.putheader(k, v)
                c.putheader("Content-Length", str(len(data)))
                c.endheaders(data)
                r = c.getresponse()
                return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
            finally:
                c.close()

        good = sigv4_headers("POST", host, path, [], body, akid, secret, region, now)
        status, _, resp = send(good)
        assert status == 200, resp
        assert json.loads(resp)["output"]["message"]["content"] == [{"text": "signed"}]
        auth = m.last_record()["auth"]
        assert auth["scheme"] == "sigv4" and auth["verified"] is True, auth
        assert (auth["access_key_id"], auth["region"], auth["service"]) == (
            akid, region, "bedrock"), auth

        query = [("z", "1"), ("a", "b c/d")]
        status, _, resp = send(sigv4_headers("POST", host, path, query, body, akid, secret,
                                             region, now), target=path + "?z=1&a=b%20c%2Fd")
        assert status == 200 and m.last_record()["auth"]["verified"] is True, resp

        bad = sigv4_headers("POST", host, path, [], body, akid, "wrong-secret", region, now)
        status, hdrs, resp = send(bad)
        assert status == 403 and hdrs["x-amzn-errortype"].startswith("InvalidSignatureException")
        assert "signature" in json.loads(resp)["message"], resp
        assert m.last_record()["auth"]["verified"] is False

        status, _, _ = send(good, body.replace(b"signed", b"SIGNED"))  # body changed
        assert status == 403 and m.last_record()["auth"]["verified"] is False

        once = sigv4_headers("POST", host, path, [], body, akid, secret, region, now,
                             encode_twice=False)
        status, _, _ = send(once)
        assert status == 403
        assert "encoded once" in m.last_record()["auth"]["reason"], m.last_record()["auth"]

        other = sigv4_headers("POST", host, path, [], body, "AKIDOTHER", secret, region, now)
        status, hdrs, _ = send(other)
        assert status == 403 and hdrs["x-amzn-errortype"].startswith("UnrecognizedClient")

        stale = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() - 3600))
        status, _, resp = send(sigv4_headers("POST", host, path, [], body, akid, secret,
                                             region, stale))
        assert status == 403 and "expired" in json.loads(resp)["message"], resp

        no_date = dict(good)
        del no_date["x-amz-date"]
        status, hdrs, _ = send(no_date)
        assert status == 403 and hdrs["x-amzn-errortype"].startswith("IncompleteSignature")
        malformed = dict(good, authorization="AWS4-HMAC-SHA256 Credential=x, Signature=y")
        status, hdrs, _ = send(malformed)
        assert status == 403 and hdrs["x-amzn-errortype"].startswith("IncompleteSignature")


# --------------------------------------------------------------------------
# Gemini and Vertex
# --------------------------------------------------------------------------

GEMINI = "/v1beta/models/gemini-2.0-flash"


def gen_body(d=None):
    return {"systemInstruction": {"parts": [{"text": "be brief"}]},
            "contents": [{"role": "user", "parts": [{"text": directive(d)}]}]}


def test_mocks_gemini_generate_content():
    with Mock("mock_gemini.py", "--require-key", "g-key") as m:
        h = {"x-goog-api-key": "g-key"}
        status, _, body = m.post(GEMINI + ":generateContent", gen_body({
            "text": "four words right here", "usage": {
                "prompt_tokens": 30, "candidates_tokens": 4, "cached_tokens": 10,
                "thoughts_tokens": 6}}), h)
        assert status == 200, body
        doc = json.loads(body)
        cand = doc["candidates"][0]
        assert cand["content"] == {"parts": [{"text": "four words right here"}], "role": "model"}
        assert cand["finishReason"] == "STOP", cand
        u = doc["usageMetadata"]
        assert (u["promptTokenCount"], u["candidatesTokenCount"], u["cachedContentTokenCount"],
                u["thoughtsTokenCount"], u["totalTokenCount"]) == (30, 4, 10, 6, 40), u
        assert doc["modelVersion"] == "gemini-2.0-flash"
        rec = m.last_record()
        assert rec["model"] == "gemini-2.0-flash" and rec["auth"]["via"] == "header", rec

        status, _, body = m.post(GEMINI + ":generateContent?key=g-key", gen_body(
            {"tool_calls": [{"name": "lookup", "args": {"id": 7}}]}), {})
        parts = json.loads(body)["candidates"][0]["content"]["parts"]
        assert parts == [{"functionCall": {"name": "lookup", "args": {"id": 7}}}], parts
        assert m.last_record()["auth"]["via"] == "query"
        u = json.loads(body)["usageMetadata"]
        assert "cachedContentTokenCount" not in u and "thoughtsTokenCount" not in u, u

        status, _, body = m.post(GEMINI + ":generateContent", gen_body(), {
            "x-goog-api-key": "bad"})
        err = json.loads(body)["error"]
        assert status == 400 and err["status"] == "INVALID_ARGUMENT", err
        assert err["details"][0]["reason"] == "API_KEY_INVALID", err
        status, _, body = m.post(GEMINI + ":generateContent", gen_body(), {})
        assert status == 403 and json.loads(body)["error"]["status"] == "PERMISSION_DENIED"

        status, _, body = m.post(GEMINI + ":generateContent", gen_body(
            {"status": 429, "retry_after": 5}), h)
        err = json.loads(body)["error"]
        assert status == 429 and set(err) >= {"code", "message", "status"}, err
        assert (err["code"], err["status"]) == (429, "RESOURCE_EXHAUSTED"), err
        assert err["details"] == [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                                   "retryDelay": "5s"}], err
        status, _, body = m.post(GEMINI + ":generateContent", gen_body({"status": 503}), h)
        assert json.loads(body)["error"]["status"] == "UNAVAILABLE"
        status, _, body = m.post(GEMINI + ":generateContent", {"contents": []}, h)
        assert status == 400
        status, _, body = m.post("/v1beta/models/x:nothing", gen_body(), h)
        assert status == 404 and json.loads(body)["error"]["status"] == "NOT_FOUND"


def test_mocks_gemini_stream_sse_and_array():
    with Mock("mock_gemini.py") as m:
        h = {"x-goog-api-key": "k"}
        status, hdrs, body = m.post(GEMINI + ":streamGenerateContent?alt=sse", gen_body({
            "text": "one two three", "chunks": 3, "usage": {"candidates_tokens": 3,
                                                            "prompt_tokens": 9}}), h)
        assert status == 200 and hdrs["content-type"].startswith("text/event-stream")
        assert body.endswith(b"\r\n\r\n") and b"\n\n" not in body.replace(b"\r\n", b""), body
        chunks = [json.loads(d) for d in sse_data(body, "\r\n\r\n")]
        assert len(chunks) == 3, chunks
        text = "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks)
        assert text == "one two three", text
        assert [c["candidates"][0].get("finishReason") for c in chunks] == [None, None, "STOP"]
        last = chunks[-1]["usageMetadata"]
        assert (last["promptTokenCount"], last["candidatesTokenCount"],
                last["totalTokenCount"]) == (9, 3, 12), last
        # running totals, not increments: the last chunk's are the call's
        assert [c["usageMetadata"].get("candidatesTokenCount") for c in chunks] == [1, 2, 3]
        assert [c["usageMetadata"]["totalTokenCount"] for c in chunks] == [10, 11, 12]

        status, _, body = m.post(GEMINI + ":streamGenerateContent?alt=sse", gen_body(
            {"block_reason": "SAFETY"}), h)
        chunks = [json.loads(d) for d in sse_data(body, "\r\n\r\n")]
        assert len(chunks) == 1 and "candidates" not in chunks[0], chunks
        assert chunks[0]["promptFeedback"] == {"blockReason": "SAFETY"}, chunks

        status, _, body = m.post(GEMINI + ":streamGenerateContent?alt=sse", gen_body({
            "text": "hi", "tool_calls": [{"name": "f", "args": {"a": 1}}]}), h)
        chunks = [json.loads(d) for d in sse_data(body, "\r\n\r\n")]
        assert chunks[-1]["candidates"][0]["content"]["parts"] == [
            {"functionCall": {"name": "f", "args": {"a": 1}}}], chunks[-1]

        status, hdrs, body = m.post(GEMINI + ":streamGenerateContent", gen_body(
            {"chunks": 2}), h)
        array = json.loads(body)
        assert hdrs["content-type"].startswith("application/json") and len(array) == 2, array
        assert array[-1]["candidates"][0]["finishReason"] == "STOP"

        status, hdrs, body = m.post(GEMINI + ":streamGenerateContent?alt=sse", gen_body(
            {"stream_error": 500, "chunks": 4}), h)
        data = sse_data(body, "\r\n\r\n")
        assert len(data) == 2 and json.loads(data[-1])["error"]["status"] == "INTERNAL", data
        status, hdrs, body = m.post(GEMINI + ":streamGenerateContent?alt=sse", gen_body(
            {"drop": "mid_stream", "chunks": 4}), h)
        assert hdrs.get("x-test-incomplete") and len(sse_data(body, "\r\n\r\n")) == 1


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(claims, sign=None, alg="RS256"):
    head = b64url(json.dumps({"alg": alg, "typ": "JWT", "kid": "k1"}).encode())
    payload = b64url(json.dumps(claims).encode())
    signing_input = ("%s.%s" % (head, payload)).encode()
    sig = sign(signing_input) if sign else secrets.token_bytes(256)
    return "%s.%s.%s" % (head, payload, b64url(sig))


def sa_claims(**over):
    now = int(time.time())
    claims = {"iss": "svc@proj.iam.gserviceaccount.com",
              "scope": "https://www.googleapis.com/auth/cloud-platform",
              "aud": "https://oauth2.googleapis.com/token", "iat": now, "exp": now + 3600}
    claims.update(over)
    return claims


def get_token(m, assertion, grant="urn:ietf:params:oauth:grant-type:jwt-bearer"):
    form = "grant_type=%s&assertion=%s" % (quote(grant, safe=""), assertion)
    status, _, body = m.request("POST", "/token", form, {
        "Content-Type": "application/x-www-form-urlencoded"})
    return status, json.loads(body)


VERTEX = "/v1/projects/my-proj/locations/us-central1/publishers/google/models/gemini-2.0-flash"


def test_mocks_vertex_and_token_endpoint():
    with Mock("mock_gemini.py", "--require-key", "static-token", "--token-ttl-s", "2") as m:
        status, tok = get_token(m, jwt(sa_claims()))
        assert status == 200, tok
        assert set(tok) == {"access_token", "expires_in", "token_type"}, tok
        assert tok["token_type"] == "Bearer" and tok["expires_in"] == 2, tok
        rec = m.last_record()
        assert rec["token_number"] == 1 and rec["jwt"]["claims"]["iss"].startswith("svc@"), rec
        assert m.health()["tokens_issued"] == 1

        h = {"Authorization": "Bearer " + tok["access_token"]}
        status, _, body = m.post(VERTEX + ":generateContent", gen_body({"text": "vertex"}), h)
        assert status == 200, body
        doc = json.loads(body)
        assert doc["candidates"][0]["content"]["parts"] == [{"text": "vertex"}]
        assert "createTime" in doc, doc
        rec = m.last_record()
        assert (rec["api"], rec["project"], rec["location"], rec["model"]) == (
            "vertex", "my-proj", "us-central1", "gemini-2.0-flash"), rec
        assert rec["auth"] == {"scheme": "bearer", "issued": True, "expired": False}, rec
        status, _, body = m.post(VERTEX + ":streamGenerateContent?alt=sse", gen_body(), h)
        assert status == 200 and len(sse_data(body, "\r\n\r\n")) >= 1
        assert m.post(VERTEX + ":generateContent", gen_body(),
                      {"Authorization": "Bearer static-token"})[0] == 200

        status, _, body = m.post(VERTEX + ":generateContent", gen_body(),
                                 {"Authorization": "Bearer forged"})
        err = json.loads(body)["error"]
        assert status == 401 and err["status"] == "UNAUTHENTICATED", body
        assert m.post(VERTEX + ":generateContent", gen_body(), {})[0] == 401

        for claims, error in ((sa_claims(exp=int(time.time()) + 7200), "invalid_grant"),
                              (sa_claims(iss="not-an-email"), "invalid_grant"),
                              (sa_claims(scope=""), "invalid_scope"),
                              (sa_claims(exp=int(time.time()) - 600,
                                         iat=int(time.time()) - 1200), "invalid_grant")):
            status, doc = get_token(m, jwt(claims))
            assert status == 400 and doc["error"] == error, (claims, doc)
        status, doc = get_token(m, jwt(sa_claims(), alg="HS256"))
        assert status == 400 and doc["error"] == "invalid_grant", doc
        status, doc = get_token(m, "not.a-jwt")
        assert status == 400 and doc["error"] == "invalid_grant", doc
        status, doc = get_token(m, jwt(sa_claims()), grant="client_credentials")
        assert status == 400 and doc["error"] == "unsupported_grant_type", doc
        assert m.health()["tokens_issued"] == 1

        time.sleep(2.1)  # the token's ttl
        status, _, body = m.post(VERTEX + ":generateContent", gen_body(), h)
        assert status == 401, "an expired token was accepted"
        assert m.last_record()["auth"]["expired"] is True


def test_mocks_token_endpoint_rs256_signature():
    import mock_gemini
    with tempfile.TemporaryDirectory() as tmp:
        key, pub = os.path.join(tmp, "key.pem"), os.path.join(tmp, "pub.pem")
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                        "rsa_keygen_bits:2048", "-out", key], check=True,
                       capture_output=True, timeout=60)
        subprocess.run(["openssl", "pkey", "-in", key, "-pubout", "-out", pub], check=True,
                       capture_output=True, timeout=60)
        sa_json = os.path.join(tmp, "sa.json")
        Path(sa_json).write_text(json.dumps({"type": "service_account",
                                             "private_key": Path(key).read_text()}))
        numbers = mock_gemini.rsa_public_numbers(Path(pub).read_text())
        assert numbers == mock_gemini.rsa_public_numbers(Path(sa_json).read_text())

        def sign(data):
            return subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=data,
                                  check=True, capture_output=True, timeout=60).stdout

        with Mock("mock_gemini.py", "--jwt-key", pub, "--token-audience",
                  "https://oauth2.googleapis.com/token") as m:
            status, tok = get_token(m, jwt(sa_claims(), sign))
            assert status == 200, tok
            assert m.last_record()["jwt"]["signature_verified"] is True
            status, doc = get_token(m, jwt(sa_claims()))  # random signature bytes
            assert status == 400 and doc["error"] == "invalid_grant", doc
            assert m.last_record()["jwt"]["signature_verified"] is False
            status, doc = get_token(m, jwt(sa_claims(aud="https://elsewhere/token"), sign))
            assert status == 400 and doc["error"] == "invalid_grant", doc
            assert m.health()["tokens_issued"] == 1
