"""Prompt enrichment and header transformations (issue 11 item 5) on the real
stack: the config's "enrich" entries put the operator's system text before and
after the client's system prompt — Anthropic's string and block forms, OpenAI's
system messages, same dialect and translated — set and remove headers on the
call to the provider and on the reply to the client from templates over the
caller and the call, apply per group only to that group's keys, refuse at load
a header that carries a credential (naming the field), and count in the
reservation's bound before the caller is known.
"""

import json
import subprocess

import harness

PRE = "ENRICH-PRE: you answer for Acme Corp."
POST = "ENRICH-POST: keep answers short."
GROUP_TEXT = "ENRICH-GROUP: research data is confidential."
BIG = "ENRICH-BIG " + "b" * 6000  # on claude-sonnet-4-5 only: the bound grows by it
HAIKU = "claude-haiku-4-5-20251001"
RESEARCH = "enrich-research"

_env = None


def env():
    global _env
    if _env is None:
        openai = harness.Mock("mock_openai.py", "--require-key", "sk-oa-PROVIDERKEY")
        harness.atexit.register(openai.stop)
        config = {
            "providers": {"openai": {"type": "openai",
                                     "base_url": "http://127.0.0.1:%d" % openai.port,
                                     "api_key": "sk-oa-PROVIDERKEY"}},
            "models": {"gpt-4o": {"provider": "openai", "max_output_tokens": 16384}},
            "enrich": [
                {"match": {"model": "claude-haiku-*"}, "system_prepend": PRE,
                 "system_append": POST},
                {"match": {"model": "gpt-*"}, "system_prepend": PRE, "system_append": POST},
                {"request_headers": {"set": {"x-user-id": "{user_id}"}},
                 "response_headers": {"set": {"x-tollgate-model": "{model}",
                                              "x-tollgate-backend": "{backend}"}}},
                {"match": {"group": RESEARCH}, "system_append": GROUP_TEXT,
                 "request_headers": {"set": {"x-team": "team-{group_id}"},
                                     "remove": ["user-agent"]}},
                {"match": {"model": "claude-sonnet-*"}, "system_append": BIG},
            ],
        }
        st = harness.stack(tag="enrich", extra_config=config)
        st.ctl("price", "set", "gpt-4o", "--input", "1000000", "--output", "4000000")
        keys = {"research": st.key(group=RESEARCH, user="enrich-alice"),
                "sales": st.key(group="enrich-sales", user="enrich-bob")}
        _env = (st, openai, keys)
    return _env


def last_sent(st):
    recs = st.mock_requests()
    assert recs, "nothing reached the provider"
    return json.loads(recs[-1]["body"]), recs[-1]["headers"]


def post_messages(st, key, **body):
    status, headers, raw = st.request("POST", "/v1/messages", st.body(**body), st.auth(key))
    assert status == 200, (status, raw[:300])
    return headers


def test_system_text_reaches_the_provider_in_anthropics_string_and_block_forms():
    st, _, keys = env()
    st.clear_mock()
    post_messages(st, keys["sales"], system="CLIENT-SYSTEM")
    sent, _ = last_sent(st)
    assert sent["system"] == PRE + "\n\nCLIENT-SYSTEM\n\n" + POST, sent["system"]
    assert sent["messages"][0]["content"] == "Say hello."  # the client's messages untouched

    blocks = [{"type": "text", "text": "CLIENT-BLOCK", "cache_control": {"type": "ephemeral"}}]
    post_messages(st, keys["sales"], system=blocks)
    sent, _ = last_sent(st)
    assert sent["system"] == [{"type": "text", "text": PRE}] + blocks + [
        {"type": "text", "text": POST}], sent["system"]

    post_messages(st, keys["sales"])  # no system prompt: one is made
    sent, _ = last_sent(st)
    assert sent["system"] == PRE + "\n\n" + POST, sent["system"]


def test_system_messages_reach_an_openai_provider_and_a_translated_one():
    st, openai, keys = env()
    openai.request("DELETE", "/_mock/requests")
    auth = {"authorization": "Bearer " + keys["sales"]}
    status, _, raw = st.request("POST", "/v1/chat/completions", {
        "model": "gpt-4o", "messages": [{"role": "system", "content": "CLIENT-SYSTEM"},
                                        {"role": "user", "content": "hi"}]}, auth)
    assert status == 200, raw[:300]
    sent = json.loads(openai.records()[-1]["body"])
    assert sent["messages"] == [
        {"role": "system", "content": PRE}, {"role": "system", "content": "CLIENT-SYSTEM"},
        {"role": "system", "content": POST}, {"role": "user", "content": "hi"}], sent["messages"]

    # an OpenAI client of an Anthropic backend: the texts go through the translation
    st.clear_mock()
    status, _, raw = st.request("POST", "/v1/chat/completions", {
        "model": "claude-haiku-4-5", "max_tokens": 32,
        "messages": [{"role": "user", "content": "hi"}]}, auth)
    assert status == 200, raw[:300]
    sent, _ = last_sent(st)
    system = sent["system"] if isinstance(sent["system"], str) else "\n\n".join(
        b["text"] for b in sent["system"])
    assert system.index(PRE) < system.index(POST), system


def test_a_group_entry_applies_only_to_that_groups_keys():
    st, _, keys = env()
    st.clear_mock()
    post_messages(st, keys["research"], system="CLIENT-SYSTEM")
    sent, headers = last_sent(st)
    assert sent["system"] == PRE + "\n\nCLIENT-SYSTEM\n\n" + POST + "\n\n" + GROUP_TEXT, \
        sent["system"]
    assert headers.get("x-team") == "team-" + RESEARCH, headers
    assert "user-agent" not in headers, headers  # removed for this group
    post_messages(st, keys["sales"], system="CLIENT-SYSTEM")
    sent, headers = last_sent(st)
    assert GROUP_TEXT not in json.dumps(sent), sent["system"]
    assert "x-team" not in headers and headers.get("user-agent", "").startswith("tollgate/")
    # the provider's credential is still the gateway's, whatever the entries do
    assert headers.get("x-api-key") == st.provider_key


def test_the_callers_user_id_reaches_the_provider_as_a_header():
    st, openai, keys = env()
    st.clear_mock()
    post_messages(st, keys["research"])
    assert last_sent(st)[1].get("x-user-id") == "enrich-alice"
    post_messages(st, keys["sales"])
    assert last_sent(st)[1].get("x-user-id") == "enrich-bob"
    # every provider module: the OpenAI one too
    openai.request("DELETE", "/_mock/requests")
    status, _, raw = st.request("POST", "/v1/chat/completions", {
        "model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
        {"authorization": "Bearer " + keys["sales"]})
    assert status == 200, raw[:300]
    assert openai.records()[-1]["headers"].get("x-user-id") == "enrich-bob"


def test_response_headers_reach_the_client_plain_and_streamed():
    st, _, keys = env()
    headers = post_messages(st, keys["sales"], model="claude-haiku-4-5")
    assert headers.get("x-tollgate-model") == HAIKU, headers  # the served model's name
    assert headers.get("x-tollgate-backend") == "anthropic/" + HAIKU, headers
    s = st.stream(st.body(stream=True), st.auth(keys["sales"]))
    assert s.status == 200
    assert s.headers.get("x-tollgate-model") == HAIKU, s.headers
    assert "message_stop" in s.read().decode()
    # an error the provider answered goes with them too
    status, headers, _ = st.request("POST", "/v1/messages", st.body(directive={"status": 400}),
                                    st.auth(keys["sales"]))
    assert status == 400 and headers.get("x-tollgate-model") == HAIKU, (status, headers)


def test_a_header_carrying_a_credential_is_refused_at_load_naming_the_field():
    st, _, _ = env()
    base = json.loads(st.config.read_text())
    path = st.dir / "enrich-bad.json"
    cases = {
        "enrich[0].request_headers.set.authorization":
            [{"request_headers": {"set": {"authorization": "Bearer {user_id}"}}}],
        "enrich[1].request_headers.remove[0]":
            [{}, {"request_headers": {"remove": ["x-api-key"]}}],
        "enrich[0].response_headers.set.x-who": [{"response_headers": {"set": {"x-who": "{usr}"}}}],
    }
    for field, enrich in cases.items():
        path.write_text(json.dumps(dict(base, enrich=enrich)))
        p = subprocess.run([harness.build_dir() / "fcgi" / "tollgate-fcgi", "-c", path, "--check"],
                           capture_output=True, text=True, timeout=30,
                           env=harness.base_env(ANTHROPIC_API_KEY="sk-ant-test-check"))
        assert p.returncode != 0, "accepted %s" % enrich
        assert "config: %s: " % field in p.stderr, p.stderr


def test_the_reservation_bound_counts_the_enrichment():
    """A tokens quota that admits a request to a model without a large
    enrichment refuses the same body to a model whose entry appends 6 KB:
    the bound grew by the text before anything was sent."""
    st, _, _ = env()
    group = harness_uniq("enrich-bound")
    key = st.key(group=group, user=harness_uniq("enrich-bound-user"))
    st.ctl("quota", "set", "--group", group, "--metric", "tokens", "--window", "total",
           "--limit", "3000")
    st.clear_mock()
    status, _, raw = st.messages(key, model="claude-haiku-4-5", prompt="bound-small")
    assert status == 200, raw[:300]
    status, headers, raw = st.messages(key, model="claude-sonnet-4-5", prompt="bound-big")
    assert status == 429, (status, raw[:300])
    etype, message = harness.error_body(raw)
    assert etype == "rate_limit_error" and 'group "%s" tokens' % group in message, message
    assert st.mock_requests("bound-big") == [], "a refused request reached the provider"
    # with room for it, it goes, and the text is there
    st.ctl("quota", "set", "--group", group, "--metric", "tokens", "--window", "total",
           "--limit", "100000")
    status, _, raw = st.messages(key, model="claude-sonnet-4-5", prompt="bound-big")
    assert status == 200, raw[:300]
    sent = json.loads(st.mock_requests("bound-big")[-1]["body"])
    assert sent["system"].endswith(BIG)


def harness_uniq(prefix):
    return "%s-%s" % (prefix, harness.secrets.token_hex(4))
