// Drives Tollgate's /mcp with the official SDK's Client and StreamableHTTPClientTransport
// (tests/integration/test_mcp.py). argv[2]: the endpoint URL, argv[3]: the API key,
// argv[4]: the scenario ("federated" or "single"). Prints one JSON object: what the SDK saw.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [url, key, scenario] = process.argv.slice(2);
const out = {};
const errorOf = (e) => ({ name: e?.constructor?.name, code: e?.code, message: String(e?.message) });

async function attempt(label, fn) {
  try { out[label] = await fn(); } catch (e) { out[label] = { error: errorOf(e) }; }
}

async function allPages(fn, key) {
  const items = [];
  let cursor, pages = 0;
  do {
    const page = await fn(cursor ? { cursor } : {});
    items.push(...page[key]);
    cursor = page.nextCursor;
    pages++;
  } while (cursor && pages < 50);
  return { items, pages };
}

const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: { authorization: "Bearer " + key } },
});
const client = new Client({ name: "tollgate-test-client", version: "1.0.0" });
await client.connect(transport);
out.sessionId = transport.sessionId;
out.protocolVersion = transport.protocolVersion;
out.serverInfo = client.getServerVersion();
out.capabilities = client.getServerCapabilities();
const p = scenario === "federated" ? "own__" : "";

await attempt("tools", async () => {
  const { items, pages } = await allPages((params) => client.listTools(params), "tools");
  return { names: items.map((t) => t.name), pages };
});
await attempt("echo", async () => (await client.callTool({ name: p + "echo", arguments: { text: "hi" } })).content[0].text);
await attempt("streamed", async () => {
  const progress = [];
  const result = await client.callTool({ name: p + "slow_count", arguments: { steps: 4 } }, undefined,
    { onprogress: (pr) => progress.push(pr.progress) });
  return { text: result.content[0].text, progress };
});
await attempt("tool_error", async () => (await client.callTool({ name: p + "fail", arguments: {} })).isError);
await attempt("unknown_tool", async () => client.callTool({ name: (p ? "nobody__" : "") + "nope", arguments: {} }));
await attempt("prompts", async () => (await allPages((params) => client.listPrompts(params), "prompts")).items.map((x) => x.name));
await attempt("prompt", async () => (await client.getPrompt({ name: p + "greet", arguments: { who: "Ada" } })).messages[0].content.text);
await attempt("resources", async () => (await allPages((params) => client.listResources(params), "resources")).items.map((x) => x.uri));
const readmeUri = scenario === "federated" ? "tollgate://own/own://readme" : "own://readme";
await attempt("resource", async () => (await client.readResource({ uri: readmeUri })).contents[0]);
await attempt("ping", async () => client.ping());
if (scenario === "federated") {
  await attempt("everything_echo", async () =>
    (await client.callTool({ name: "everything__echo", arguments: { message: "across" } })).content[0].text);
  await attempt("templates", async () =>
    (await client.listResourceTemplates()).resourceTemplates.map((t) => t.uriTemplate));
}
await attempt("cancelled", async () => {
  const controller = new AbortController();
  const started = Date.now();
  setTimeout(() => controller.abort("the test cancels"), 300);
  try {
    await client.callTool({ name: p + "hang", arguments: {} }, undefined, { signal: controller.signal });
    return { cancelled: false };
  } catch (e) {
    return { cancelled: true, ms: Date.now() - started, error: errorOf(e) };
  }
});
// after a cancellation the session goes on
await attempt("after_cancel", async () => (await client.callTool({ name: p + "echo", arguments: { text: "again" } })).content[0].text);
await attempt("terminate", async () => { await transport.terminateSession(); return transport.sessionId ?? null; });
console.log(JSON.stringify(out));
await client.close().catch(() => {});
process.exit(0);
