/*
 * guard_stream.c — masking a streamed reply's text event by event, with a
 * carry per content block (see guard_stream.h).
 */
#include "guard_stream.h"

#include <stdlib.h>
#include <string.h>

#define MAX_BLOCKS 64                   /* content blocks (choices) with text held at once */
#define MAX_HELD (2 * 1024 * 1024 + 16) /* a block's held bytes: past this, withheld */

struct block {
    json_int_t index;
    char *buf; /* [0, context) went out already; [context, len) is held */
    size_t len, cap, context;
    bool failed;   /* its text could not be checked: withheld from now on */
    json_t *shape; /* the block's last text event, the shape of a synthesized flush */
    char *event;   /* that event's name */
};

struct tg_guard_stream {
    const struct tg_guard_rules *rules;
    enum tg_guard_level level;
    enum tg_guard_stream_dialect dialect;
    size_t window;
    tg_guard_stream_emit_fn emit;
    tg_guard_finding_fn on_finding;
    void *ctx;
    struct block blocks[MAX_BLOCKS];
    size_t n_blocks;
    bool failed;
};

struct tg_guard_stream *tg_guard_stream_new(const struct tg_guard_rules *rules,
                                            enum tg_guard_level level,
                                            enum tg_guard_stream_dialect dialect, size_t window,
                                            tg_guard_stream_emit_fn emit,
                                            tg_guard_finding_fn on_finding, void *ctx)
{
    struct tg_guard_stream *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->rules = rules;
    s->level = level;
    s->dialect = dialect;
    s->window = window >= 1 && window <= TG_GUARD_STREAM_WINDOW_MAX
                    ? window
                    : TG_GUARD_STREAM_WINDOW_DEFAULT;
    s->emit = emit;
    s->on_finding = on_finding;
    s->ctx = ctx;
    return s;
}

static void block_release(struct block *b)
{
    free(b->buf);
    json_decref(b->shape);
    free(b->event);
    memset(b, 0, sizeof(*b));
}

void tg_guard_stream_free(struct tg_guard_stream *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n_blocks; i++)
        block_release(&s->blocks[i]);
    free(s);
}

bool tg_guard_stream_failed(const struct tg_guard_stream *s)
{
    return s->failed;
}

/* The block of this index; a new one if there is room; NULL when there is none. */
static struct block *block_of(struct tg_guard_stream *s, json_int_t index, bool create)
{
    for (size_t i = 0; i < s->n_blocks; i++)
        if (s->blocks[i].index == index)
            return &s->blocks[i];
    if (!create || s->n_blocks == MAX_BLOCKS)
        return NULL;
    struct block *b = &s->blocks[s->n_blocks++];
    memset(b, 0, sizeof(*b));
    b->index = index;
    return b;
}

static void block_drop(struct tg_guard_stream *s, struct block *b)
{
    block_release(b);
    size_t i = (size_t)(b - s->blocks);
    s->blocks[i] = s->blocks[--s->n_blocks];
    memset(&s->blocks[s->n_blocks], 0, sizeof(*b));
}

static void withhold(struct tg_guard_stream *s, struct block *b)
{
    s->failed = true;
    if (b == NULL)
        return;
    b->failed = true;
    free(b->buf); /* what it held is never sent */
    b->buf = NULL;
    b->len = b->cap = b->context = 0;
}

static bool is_continuation(unsigned char c)
{
    return (c & 0xC0) == 0x80;
}

/*
 * Adds text to the block and takes what may go out now (all of it when final),
 * masked: *out new (malloc'd, the caller frees; NULL: nothing goes out).
 */
static void take(struct tg_guard_stream *s, struct block *b, const char *text, size_t len,
                 bool final, char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (b == NULL || b->failed) {
        if (len > 0 || b == NULL)
            withhold(s, b);
        return;
    }
    if (b->len + len > MAX_HELD) {
        withhold(s, b);
        return;
    }
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + len)
            cap *= 2;
        char *grown = realloc(b->buf, cap);
        if (grown == NULL) {
            withhold(s, b);
            return;
        }
        b->buf = grown;
        b->cap = cap;
    }
    if (len > 0)
        memcpy(b->buf + b->len, text, len);
    b->len += len;
    size_t cut = final ? b->len : b->len - b->context > s->window ? b->len - s->window : b->context;
    while (cut > b->context && cut < b->len && is_continuation((unsigned char)b->buf[cut]))
        cut--; /* never inside a UTF-8 sequence */
    if (cut <= b->context)
        return;
    *out = tg_guard_mask_range(s->rules, s->level, b->buf, b->len, b->context, &cut, s->on_finding,
                               s->ctx, out_len);
    if (*out == NULL) {
        withhold(s, b);
        return;
    }
    /* what went out stays as context (the rules' look-behinds), at most a window of it */
    size_t start = cut > s->window ? cut - s->window : 0;
    while (start < cut && is_continuation((unsigned char)b->buf[start]))
        start++;
    memmove(b->buf, b->buf + start, b->len - start);
    b->len -= start;
    b->context = cut - start;
}

static void remember_shape(struct block *b, const char *event, json_t *doc)
{
    json_t *shape = json_deep_copy(doc);
    char *name = strdup(event);
    if (shape == NULL || name == NULL) {
        json_decref(shape);
        free(name);
        return; /* the old shape (if any) stays */
    }
    json_decref(b->shape);
    free(b->event);
    b->shape = shape;
    b->event = name;
}

static int emit_doc(struct tg_guard_stream *s, const char *event, json_t *doc)
{
    return s->emit(s->ctx, event, NULL, 0, doc);
}

/* ---- Anthropic (and the pivot) ---- */

/* Sends what the block still holds as a delta shaped like its last one, then forgets it. */
static int anthropic_flush(struct tg_guard_stream *s, struct block *b)
{
    char *out;
    size_t out_len;
    take(s, b, "", 0, true, &out, &out_len);
    int rc = TG_OK;
    if (out != NULL && out_len > 0 && b->shape != NULL) {
        json_t *ev = json_deep_copy(b->shape);
        json_t *delta = json_object_get(ev, "delta");
        if (ev != NULL && json_object_set_new(delta, "text", json_stringn(out, out_len)) == 0)
            rc = emit_doc(s, "content_block_delta", ev);
        else
            withhold(s, NULL);
        json_decref(ev);
    }
    free(out);
    block_drop(s, b);
    return rc;
}

static int flush_all(struct tg_guard_stream *s,
                     int (*flush)(struct tg_guard_stream *, struct block *))
{
    int rc = TG_OK;
    while (s->n_blocks > 0)
        if (flush(s, &s->blocks[0]) != TG_OK)
            rc = TG_ERROR;
    return rc;
}

/* data/len: the bytes as received (NULL when doc came parsed). */
static int anthropic_event(struct tg_guard_stream *s, const char *event, const char *data,
                           size_t len, json_t *doc)
{
    json_t *index = json_object_get(doc, "index");
    if (strcmp(event, "content_block_delta") == 0 && json_is_integer(index)) {
        json_t *delta = json_object_get(doc, "delta");
        json_t *text = json_object_get(delta, "text");
        const char *type = json_string_value(json_object_get(delta, "type"));
        if (type != NULL && strcmp(type, "text_delta") == 0 && json_is_string(text)) {
            struct block *b = block_of(s, json_integer_value(index), true);
            char *out;
            size_t out_len;
            take(s, b, json_string_value(text), json_string_length(text), false, &out, &out_len);
            if (b != NULL)
                remember_shape(b, event, doc);
            json_t *ev = json_deep_copy(doc);
            int rc = TG_ERROR;
            if (ev != NULL && json_object_set_new(json_object_get(ev, "delta"), "text",
                                                  out != NULL ? json_stringn(out, out_len)
                                                              : json_string("")) == 0)
                rc = emit_doc(s, event, ev);
            json_decref(ev);
            free(out);
            return rc;
        }
    }
    int rc = TG_OK;
    if (strcmp(event, "content_block_stop") == 0 && json_is_integer(index)) {
        struct block *b = block_of(s, json_integer_value(index), false);
        if (b != NULL)
            rc = anthropic_flush(s, b);
    } else if (strcmp(event, "message_delta") == 0 || strcmp(event, "message_stop") == 0 ||
               strcmp(event, "error") == 0) {
        rc = flush_all(s, anthropic_flush);
    }
    int sent = data != NULL ? s->emit(s->ctx, event, data, len, NULL) : emit_doc(s, event, doc);
    return rc == TG_OK ? sent : TG_ERROR;
}

/* ---- OpenAI chat.completion.chunk ---- */

/* A chunk with one choice carrying text, shaped like the block's last chunk. */
static int openai_send_text(struct tg_guard_stream *s, struct block *b, const char *text,
                            size_t len)
{
    json_t *chunk = json_deep_copy(b->shape);
    json_t *choice = json_pack("{s:I, s:{s:s%}, s:n}", "index", b->index, "delta", "content", text,
                               len, "finish_reason");
    int rc = TG_ERROR;
    if (chunk != NULL && choice != NULL &&
        json_object_set_new(chunk, "choices", json_pack("[O]", choice)) == 0)
        rc = emit_doc(s, b->event, chunk);
    json_decref(choice);
    json_decref(chunk);
    return rc;
}

static int openai_flush(struct tg_guard_stream *s, struct block *b)
{
    char *out;
    size_t out_len;
    take(s, b, "", 0, true, &out, &out_len);
    int rc = TG_OK;
    if (out != NULL && out_len > 0 && b->shape != NULL)
        rc = openai_send_text(s, b, out, out_len);
    free(out);
    block_drop(s, b);
    return rc;
}

/* One choice of a chunk (ev, a copy being edited): its content masked; true when it changed. */
static bool openai_choice(struct tg_guard_stream *s, const char *event, json_t *chunk,
                          json_t *choice)
{
    json_t *index = json_object_get(choice, "index");
    json_t *delta = json_object_get(choice, "delta");
    json_t *content = json_object_get(delta, "content");
    json_t *finish = json_object_get(choice, "finish_reason");
    bool finished = finish != NULL && !json_is_null(finish);
    if (!json_is_integer(index))
        return false;
    struct block *b = block_of(s, json_integer_value(index), json_is_string(content));
    if (b == NULL && !json_is_string(content))
        return false; /* nothing held, nothing to mask */
    if (b != NULL && json_is_string(content))
        remember_shape(b, event, chunk);
    char *out;
    size_t out_len;
    take(s, b, json_is_string(content) ? json_string_value(content) : "",
         json_is_string(content) ? json_string_length(content) : 0, finished, &out, &out_len);
    if (json_is_string(content) || (out != NULL && out_len > 0))
        json_object_set_new(delta, "content",
                            out != NULL ? json_stringn(out, out_len) : json_string(""));
    free(out);
    if (b != NULL && finished)
        block_drop(s, b);
    return true;
}

static int openai_event(struct tg_guard_stream *s, const char *event, const char *data, size_t len,
                        json_t *doc)
{
    json_t *choices = json_object_get(doc, "choices");
    if (doc == NULL) { /* [DONE], or not JSON: whatever is held goes first */
        int rc = flush_all(s, openai_flush);
        int sent = s->emit(s->ctx, event, data, len, NULL);
        return rc == TG_OK ? sent : TG_ERROR;
    }
    int rc = TG_OK;
    if (json_is_array(choices) && json_array_size(choices) == 0)
        rc = flush_all(s, openai_flush); /* the usage chunk: every choice ended */
    json_t *ev =
        json_is_array(choices) && json_array_size(choices) > 0 ? json_deep_copy(doc) : NULL;
    bool changed = false;
    size_t i;
    json_t *choice;
    json_array_foreach(json_object_get(ev, "choices"), i, choice) {
        /* the shape remembered is the chunk as received, less nothing: choices are replaced */
        if (openai_choice(s, event, doc, choice))
            changed = true;
    }
    int sent;
    if (changed)
        sent = emit_doc(s, event, ev);
    else
        sent = data != NULL ? s->emit(s->ctx, event, data, len, NULL) : emit_doc(s, event, doc);
    json_decref(ev);
    return rc == TG_OK ? sent : TG_ERROR;
}

/* ---- entry points ---- */

int tg_guard_stream_feed_json(struct tg_guard_stream *s, const char *event, json_t *doc)
{
    if (s->dialect == TG_GUARD_STREAM_OPENAI)
        return openai_event(s, event, NULL, 0, doc);
    return anthropic_event(s, event, NULL, 0, doc);
}

int tg_guard_stream_feed(struct tg_guard_stream *s, const char *event, const char *data, size_t len)
{
    bool parse =
        s->dialect == TG_GUARD_STREAM_OPENAI
            ? !(len == 6 && memcmp(data, "[DONE]", 6) == 0)
            : strcmp(event, "content_block_delta") == 0 || strcmp(event, "content_block_stop") == 0;
    json_t *doc = parse ? json_loadb(data, len, 0, NULL) : NULL;
    if (parse && doc == NULL && s->dialect == TG_GUARD_STREAM_ANTHROPIC &&
        strcmp(event, "content_block_delta") == 0) {
        json_decref(doc); /* a delta that is not JSON: its text cannot be checked */
        withhold(s, NULL);
        return TG_OK;
    }
    int rc = s->dialect == TG_GUARD_STREAM_OPENAI ? openai_event(s, event, data, len, doc)
                                                  : anthropic_event(s, event, data, len, doc);
    json_decref(doc);
    return rc;
}

int tg_guard_stream_finish(struct tg_guard_stream *s)
{
    return flush_all(s, s->dialect == TG_GUARD_STREAM_OPENAI ? openai_flush : anthropic_flush);
}
