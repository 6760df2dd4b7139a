#!/usr/bin/env python3
"""tests/fuzz/seeds.py — writes the seed corpora tests/fuzz/corpus/<target>/ from
the unit tests' data (tests/unit/data) and conf/, in each harness's input format
(see the harness's header comment). Run it again after adding unit cases; the
files are checked in, so scripts/fuzz does not need it."""
import base64, glob, hashlib, json, os, shutil, struct, sys, zlib

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(TOP, "tests", "unit", "data")
OUT = os.path.join(TOP, "tests", "fuzz", "corpus")
MAX = 16 * 1024  # seeds stay small


def read(path):
    with open(path, "rb") as f:
        return f.read()


def files(pattern):
    return sorted(glob.glob(os.path.join(DATA, pattern)))


corpora = {}


def seed(target, data):
    if len(data) <= MAX:
        corpora.setdefault(target, set()).add(bytes(data))


def es_message(kind, event, payload):
    """An AWS event-stream message (providers/eventstream.h) with string headers."""
    headers = b""
    for name, value in ((":message-type", kind), (":event-type" if kind == "event" else ":exception-type", event),
                        (":content-type", "application/json")):
        n, v = name.encode(), value.encode()
        headers += bytes([len(n)]) + n + b"\x07" + struct.pack(">H", len(v)) + v
    body = json.dumps(payload).encode()
    total = 12 + len(headers) + len(body) + 4
    prelude = struct.pack(">II", total, len(headers))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    msg = prelude + headers + body
    return msg + struct.pack(">I", zlib.crc32(msg))


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


# sse: a step byte, then the stream
for p in files("sse/*/input"):
    seed("sse", b"\x03" + read(p))
    seed("translate_stream", b"\x02" + read(p))  # Anthropic events through the writer

# eventstream: a step byte, a flag byte (0: CRCs as they are), the bytes
for p in files("eventstream/*/input.bin"):
    seed("eventstream", b"\x07\x00" + read(p))
for p in files("translate_bedrock/stream_*/bedrock_events"):
    stream = b""
    for line in read(p).decode().splitlines():
        if line.strip():
            kind, event, payload = json.loads(line)
            stream += es_message(kind, event, payload)
    seed("eventstream", b"\x05\x00" + stream)

# jwt: 0x00 + a token; 0x01 + header JSON + "\n" + payload JSON (the harness signs it)
for p in files("jwt/cases/*/token"):
    tok = read(p).strip()
    seed("jwt", b"\x00" + tok)
    parts = tok.split(b".")
    if len(parts) == 3:
        try:
            seed("jwt", b"\x01" + b64url_decode(parts[0].decode()) + b"\n" + b64url_decode(parts[1].decode()))
        except Exception:
            pass

# config: the config cases' inputs and the shipped configs
for p in files("config/*/input"):
    seed("config", read(p))
for p in ("conf/tollgate.json",):
    seed("config", read(os.path.join(TOP, p)))

# spool: 0x01 + JSON records, one a line (framed by the harness); 0x00 + a framed file
record = {"request_id": "00000000-0000-4000-8000-000000000001", "ts": "2025-01-01T00:00:00Z",
          "api_key_id": 1, "user_id": "alice", "group_id": "eng", "provider": "anthropic",
          "model": "claude-haiku-4-5-20251001", "input_tokens": 10, "output_tokens": 5,
          "cache_read_tokens": 0, "cache_write_tokens": 0, "cache_write_1h_tokens": 0,
          "web_search_requests": 0, "http_status": 200, "latency_ms": 12, "upstream_ms": 10,
          "stream": False, "outcome": "ok", "usage_source": "provider", "guard_rule": None}
blocked = dict(record, request_id="00000000-0000-4000-8000-000000000002", outcome="blocked",
               http_status=400, guard_rule="pii.email", input_tokens=0, output_tokens=0)
lines = [json.dumps(record).encode(), json.dumps(blocked).encode(), b"{not json", b"[]"]
seed("spool", b"\x01" + b"\n".join(lines))
seed("spool", b"\x05" + json.dumps(record).encode())
seed("spool", b"\x03" + b"\n".join(lines) + b"\n")  # an earlier version's line spool

# journal: 0x01 + B/P/E/S records, one a line
b = {"k": "B", "id": record["request_id"], "ts": record["ts"], "key": 1, "u": "alice", "g": "eng",
     "p": "anthropic", "m": "claude-haiku-4-5-20251001", "s": True, "in": 100, "out": 50}
b2 = dict(b, id=blocked["request_id"])
jl = [json.dumps(b), json.dumps({"k": "P", "id": b["id"], "in": 100, "out": 20, "cr": 0, "cw": 0}),
      json.dumps(b2), json.dumps({"k": "E", "id": b2["id"], "rec": blocked}),
      json.dumps({"k": "S", "ids": [b2["id"]]})]
seed("journal", b"\x01" + "\n".join(jl).encode())
seed("journal", b"\x01" + json.dumps(b).encode())

# jscan: key NUL text
for p in files("translate_openai/reply_to_pivot/*/input.json") + files("translate_bedrock/reply_*/converse_reply.json"):
    seed("jscan", b"usage\x00" + read(p))
seed("jscan", b"model\x00" + json.dumps(record).encode())

# dialect: endpoint byte, params, blank line, body
for p in files("bound/*/request"):
    seed("dialect", b"\x00HTTP_ANTHROPIC_BETA=prompt-caching-2024-07-31\n\n" + read(p))
    seed("dialect", b"\x03\n" + read(p))
for p in files("translate_openai/request_to_pivot/*/input.json"):
    body = json.loads(read(p))
    if isinstance(body, dict):
        for model in ("gpt-4o", "claude-haiku-4-5", "gemini-2.5-flash", "claude-bedrock"):
            body["model"] = model
            seed("dialect", b"\x01\n" + json.dumps(body).encode())
seed("dialect", b"\x02\n" + json.dumps({"model": "text-embedding-3-small", "input": ["a", "b"]}).encode())

# guard: dialect/level byte, then the body
dialects = {"anthropic": 0, "openai_chat": 1, "openai_embeddings": 2, "http": 3}
for d in sorted(glob.glob(os.path.join(DATA, "guard_texts", "*"))):
    name = read(os.path.join(d, "dialect")).decode().strip() if os.path.exists(os.path.join(d, "dialect")) else "anthropic"
    if os.path.exists(os.path.join(d, "input")):
        seed("guard", bytes([dialects.get(name, 0) << 3 | 4 | 2]) + read(os.path.join(d, "input")))
for line in read(os.path.join(DATA, "guard", "corpus.tsv")).decode().splitlines()[:40]:
    text = line.split("\t")[-1]
    seed("guard", b"\x06" + json.dumps({"model": "m", "messages": [{"role": "user", "content": text}]}).encode())

# translate_reply: translator byte (0 OpenAI, 1 pivot, 2 Bedrock, 3 Gemini, 4 usage), the reply
for p in files("translate_openai/reply_to_pivot/*/input.json"):
    seed("translate_reply", b"\x00" + read(p))
for p in files("translate_openai/reply_to_openai/*/input.json") + files("translate_bedrock/reply_*/pivot_reply.json"):
    seed("translate_reply", b"\x01" + read(p))
for p in files("translate_bedrock/reply_*/converse_reply.json"):
    seed("translate_reply", b"\x02" + read(p))
for p in files("gemini/reply_*/gemini_reply.json"):
    seed("translate_reply", b"\x03" + read(p))

# translate_stream: 0 OpenAI chunks, 1 Gemini chunks, 2 Anthropic events, as SSE
for p in files("translate_openai/stream_to_pivot/*/chunks"):
    sse = b"".join(b"data: " + l + b"\n\n" for l in read(p).splitlines() if l.strip())
    seed("translate_stream", b"\x04" + sse)
for p in files("gemini_stream/*/input"):
    seed("translate_stream", b"\x01" + read(p))
for p in files("translate_openai/stream_to_openai/*/events"):
    sse = b""
    for l in read(p).decode().splitlines():
        if "\t" in l:
            ev, data = l.split("\t", 1)
            sse += b"event: " + ev.encode() + b"\ndata: " + data.encode() + b"\n\n"
    seed("translate_stream", b"\x06" + sse)

for target, seeds in corpora.items():
    d = os.path.join(OUT, target)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for s in seeds:
        with open(os.path.join(d, hashlib.sha1(s).hexdigest()), "wb") as f:
            f.write(s)
    print("%-18s %3d seeds" % (target, len(seeds)))
