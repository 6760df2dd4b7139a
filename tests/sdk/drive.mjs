// Drives Tollgate with an official client SDK, as its users would.
//
//   echo '{"sdk":"anthropic","call":"messages.create","base_url":"http://127.0.0.1:8080",
//          "api_key":"tg-...","params":{...},"stream":false}' | node tests/sdk/drive.mjs
//
// Input (one JSON object on stdin):
//   sdk         "openai" | "anthropic"
//   call        "chat.completions.create" | "embeddings.create"   (openai)
//               "messages.create"                                 (anthropic)
//   base_url    the gateway, without /v1 (the openai client gets base_url + "/v1")
//   api_key     the Tollgate key
//   params      the call's parameters, passed to the SDK as they are
//   stream      true: stream (openai: stream: true in params; anthropic: messages.stream())
//   timeout_ms  optional, default 30000; the SDKs never retry (maxRetries 0)
//
// Output: ONE JSON line on stdout (anything the SDKs log goes to stderr):
//   ok             true if the call and (for streams) the whole stream succeeded
//   status         HTTP status of the response (the error's status if the SDK threw)
//   text           the reply text; for streams assembled from the text deltas
//   tool_calls     [{id, name, arguments}]; arguments parsed from JSON when they
//                  parse (openai: function.arguments; anthropic: tool_use input),
//                  for streams assembled from the argument deltas
//   finish_reason  openai (the first choice's);  stop_reason: anthropic
//   usage          the usage object as the SDK returned it (streams: openai's last
//                  chunk with usage; anthropic: finalMessage().usage), else null
//   request_id     the response's x-request-id header (Tollgate's id)
//   sdk_request_id the SDK's own request id (anthropic: request-id; openai: x-request-id)
//   cost           the x-tollgate-cost-usd header, or null
//   events         streams: how many events/chunks the SDK yielded
//   final          anthropic streams: {text, tool_calls, stop_reason} of finalMessage()
//   embeddings     embeddings.create: [{index, dims}], and model
//   error          when the SDK threw: {class (the SDK's error class name), status,
//                  type, message (the error body's), sdk_message, request_id,
//                  sdk_request_id}
// Exit status 0 whenever that line was printed; 2 for bad input.

import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";

const stderrLogger = {
  error: (...a) => console.error(...a),
  warn: (...a) => console.error(...a),
  info: (...a) => console.error(...a),
  debug: (...a) => console.error(...a),
};

async function readStdin() {
  const chunks = [];
  for await (const c of process.stdin) chunks.push(c);
  return Buffer.concat(chunks).toString("utf8");
}

function parseArgs(raw) {
  if (typeof raw !== "string") return raw;
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

function header(headers, name) {
  if (!headers || typeof headers.get !== "function") return null;
  return headers.get(name);
}

function fromResponse(out, response) {
  out.status = response.status;
  out.request_id = header(response.headers, "x-request-id");
  out.cost = header(response.headers, "x-tollgate-cost-usd");
}

// ---- openai --------------------------------------------------------------

async function openaiChat(client, c, out) {
  const params = { ...c.params };
  if (c.stream) params.stream = true;
  const { data, response, request_id } = await client.chat.completions
    .create(params)
    .withResponse();
  fromResponse(out, response);
  out.sdk_request_id = request_id ?? null;
  if (!c.stream) {
    const choice = data.choices?.[0] ?? {};
    out.text = choice.message?.content ?? "";
    out.tool_calls = (choice.message?.tool_calls ?? []).map((t) => ({
      id: t.id,
      name: t.function?.name,
      arguments: parseArgs(t.function?.arguments),
    }));
    out.finish_reason = choice.finish_reason ?? null;
    out.usage = data.usage ?? null;
    out.model = data.model ?? null;
    return;
  }
  let text = "";
  const calls = []; // by tool call index
  out.events = 0;
  out.usage = null;
  out.finish_reason = null;
  for await (const chunk of data) {
    out.events++;
    if (chunk.model) out.model = chunk.model;
    if (chunk.usage) out.usage = chunk.usage;
    const choice = chunk.choices?.[0];
    if (!choice) continue;
    const delta = choice.delta ?? {};
    if (typeof delta.content === "string") text += delta.content;
    for (const tc of delta.tool_calls ?? []) {
      const i = tc.index ?? 0;
      calls[i] ??= { id: null, name: null, arguments: "" };
      if (tc.id) calls[i].id = tc.id;
      if (tc.function?.name) calls[i].name = (calls[i].name ?? "") + tc.function.name;
      if (tc.function?.arguments) calls[i].arguments += tc.function.arguments;
    }
    if (choice.finish_reason) out.finish_reason = choice.finish_reason;
  }
  out.text = text;
  out.tool_calls = calls
    .filter(Boolean)
    .map((t) => ({ ...t, arguments: parseArgs(t.arguments) }));
}

async function openaiEmbeddings(client, c, out) {
  const { data, response, request_id } = await client.embeddings
    .create(c.params)
    .withResponse();
  fromResponse(out, response);
  out.sdk_request_id = request_id ?? null;
  out.embeddings = (data.data ?? []).map((e) => ({
    index: e.index,
    dims: Array.isArray(e.embedding) ? e.embedding.length : null,
  }));
  out.model = data.model ?? null;
  out.usage = data.usage ?? null;
}

// ---- anthropic -------------------------------------------------------------

function anthropicToolCalls(content) {
  return (content ?? [])
    .filter((b) => b.type === "tool_use")
    .map((b) => ({ id: b.id, name: b.name, arguments: b.input }));
}

function anthropicText(content) {
  return (content ?? [])
    .filter((b) => b.type === "text")
    .map((b) => b.text)
    .join("");
}

async function anthropicMessages(client, c, out) {
  if (!c.stream) {
    const { data, response, request_id } = await client.messages
      .create(c.params)
      .withResponse();
    fromResponse(out, response);
    out.sdk_request_id = request_id ?? null;
    out.text = anthropicText(data.content);
    out.tool_calls = anthropicToolCalls(data.content);
    out.stop_reason = data.stop_reason ?? null;
    out.usage = data.usage ?? null;
    out.model = data.model ?? null;
    return;
  }
  const stream = client.messages.stream(c.params);
  const { response, request_id } = await stream.withResponse();
  fromResponse(out, response);
  out.sdk_request_id = request_id ?? null;
  // Assemble text and tool input from the events, by content block index.
  const blocks = [];
  out.events = 0;
  for await (const ev of stream) {
    out.events++;
    if (ev.type === "content_block_start") {
      const b = ev.content_block;
      blocks[ev.index] =
        b.type === "tool_use"
          ? { type: "tool_use", id: b.id, name: b.name, json: "" }
          : { type: b.type, text: b.text ?? "" };
    } else if (ev.type === "content_block_delta") {
      const b = blocks[ev.index];
      if (!b) continue;
      if (ev.delta.type === "text_delta") b.text += ev.delta.text;
      else if (ev.delta.type === "input_json_delta") b.json += ev.delta.partial_json;
    } else if (ev.type === "message_delta") {
      out.stop_reason = ev.delta?.stop_reason ?? out.stop_reason ?? null;
    }
  }
  const final = await stream.finalMessage();
  out.text = blocks
    .filter((b) => b && b.type === "text")
    .map((b) => b.text)
    .join("");
  out.tool_calls = blocks
    .filter((b) => b && b.type === "tool_use")
    .map((b) => ({ id: b.id, name: b.name, arguments: b.json === "" ? {} : parseArgs(b.json) }));
  out.stop_reason ??= final.stop_reason ?? null;
  out.usage = final.usage ?? null;
  out.model = final.model ?? null;
  out.final = {
    text: anthropicText(final.content),
    tool_calls: anthropicToolCalls(final.content),
    stop_reason: final.stop_reason ?? null,
  };
}

// ---- errors ------------------------------------------------------------------

function describeError(sdk, e) {
  const err = {
    class: e?.constructor?.name ?? typeof e,
    status: typeof e?.status === "number" ? e.status : null,
    type: null,
    message: null,
    sdk_message: String(e?.message ?? e),
    request_id: header(e?.headers, "x-request-id"),
    sdk_request_id: e?.requestID ?? null,
  };
  const body = e?.error;
  if (sdk === "anthropic") {
    // {"type":"error","error":{"type":...,"message":...}}
    err.type = e?.type ?? body?.error?.type ?? null;
    err.message = e?.apiMessage ?? body?.error?.message ?? null;
  } else {
    // the SDK unwraps {"error":{...}} into e.error
    err.type = e?.type ?? body?.type ?? null;
    err.message = body?.message ?? null;
    if (e?.code != null) err.code = e.code;
  }
  return err;
}

// ---- main ----------------------------------------------------------------------

const CALLS = {
  openai: { "chat.completions.create": openaiChat, "embeddings.create": openaiEmbeddings },
  anthropic: { "messages.create": anthropicMessages },
};

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

async function main() {
  let c;
  try {
    c = JSON.parse(await readStdin());
  } catch (e) {
    console.error("drive.mjs: stdin is not JSON: " + e.message);
    process.exit(2);
  }
  const fn = CALLS[c?.sdk]?.[c?.call];
  if (!fn || typeof c.base_url !== "string" || typeof c.params !== "object") {
    console.error("drive.mjs: need sdk, call (one of %j), base_url and params", CALLS);
    process.exit(2);
  }
  const base = c.base_url.replace(/\/+$/, "");
  const opts = { apiKey: c.api_key, maxRetries: 0, timeout: c.timeout_ms ?? 30000, logger: stderrLogger };
  const client =
    c.sdk === "openai"
      ? new OpenAI({ ...opts, baseURL: base + "/v1" })
      : new Anthropic({ ...opts, baseURL: base });
  const out = {
    ok: false, sdk: c.sdk, call: c.call, stream: !!c.stream, status: null,
    text: null, tool_calls: [], usage: null, request_id: null, sdk_request_id: null, cost: null,
  };
  if (c.sdk === "openai") out.finish_reason = null;
  else out.stop_reason = null;
  try {
    await fn(client, c, out);
    out.ok = true;
  } catch (e) {
    out.error = describeError(c.sdk, e);
    if (out.error.status != null) out.status = out.error.status;
    out.request_id ??= out.error.request_id;
  }
  emit(out);
}

await main();
