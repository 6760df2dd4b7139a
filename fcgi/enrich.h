/*
 * enrich.h — prompt enrichment and header transformations (the config's
 * "enrich", config_enrich.h): the operator's system text put before or after
 * the client's system prompt, headers set or removed on the call to the
 * provider and on the reply to the client, their values expanded from the
 * caller's identity, the route, the model and the backend.
 *
 * When it runs: the reservation's bound counts every system text that may
 * apply before the caller is known (tg_enrich_bound_bytes, by model and route
 * only: a key's group and role come with the reserve); after the guard step
 * (the operator's text is not the client's, so no guardrail masks or blocks
 * it) the entries that match the caller apply (tg_enrich_apply), so the cache
 * key and the provider see the enriched body. Embeddings and http routes get
 * headers only.
 *
 * Not here: the section's loading and its templates (config_enrich.c).
 */
#ifndef TG_ENRICH_H
#define TG_ENRICH_H

#include "common.h"

struct tg_request;

/* What one system text may add to a body beyond its own bytes (JSON, separators). */
#define TG_ENRICH_TEXT_OVERHEAD 32

/*
 * The bytes — hence tokens, at bound.c's rule of one token per byte at least
 * — that the system texts of every entry whose model and route criteria match
 * r (its group and role are not looked at: not known yet) may add to r's body:
 * each text's length plus TG_ENRICH_TEXT_OVERHEAD. 0 for endpoints that get
 * no system text (embeddings, http routes) or when nothing matches.
 * Needs r->model (and r->route when it has one).
 */
int64_t tg_enrich_bound_bytes(const struct tg_request *r);

/*
 * Chooses the entries that match r (group, role, model, route: every one
 * given) into r->enrich, puts their system texts into r->doc — Anthropic's
 * "system" (a string: joined with a blank line; blocks: a text block first or
 * last; absent: made), OpenAI's messages (a "system" message first, or after
 * the leading system and developer messages) — and writes r->body again from
 * it; and arranges the response headers for when they are sent
 * (r->before_headers). TG_OK, or TG_ERROR with r->error set (500, out of
 * memory). Call after the reservation and the guard step.
 */
int tg_enrich_apply(struct tg_request *r);

/*
 * The request headers of r->enrich over a provider call's headers ("Name:
 * value", *n of them in headers, which holds cap): each removed name is taken
 * out, each set one replaces any of its name or is added (a value expanding to
 * nothing is not sent), r->backend being the one called. Strings in r->arena.
 * TG_ERROR when more than cap would be needed or out of memory.
 */
int tg_enrich_call_headers(struct tg_request *r, const char **headers, size_t *n, size_t cap);

#endif
