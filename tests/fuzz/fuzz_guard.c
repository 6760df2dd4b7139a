/*
 * fuzz_guard.c — the guardrails over a client's body: the texts walker
 * (providers/guard_texts.c) finds each text of a JSON document in a dialect's
 * places, and the engine (fcgi/guard.c, the rules of conf/guardrails.json)
 * scans and masks it, the mask replacing the text as guard_reply does. The
 * first byte picks the dialect (and the HTTP paths) and the level; the rest is
 * the body. The raw bytes are scanned too, valid UTF-8 or not.
 */
#include <jansson.h>
#include <string.h>

#include "common.h"
#include "fuzz.h"
#include "guard_mask.h"
#include "guard_texts.h"

static struct tg_guard_rules *rules;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/../conf/guardrails.json", fuzz_tests_dir());
    json_error_t jerr;
    json_t *section = json_load_file(path, 0, &jerr);
    char err[512] = "";
    rules = section != NULL ? tg_guard_load(section, err, sizeof(err)) : NULL;
    if (rules == NULL) {
        fprintf(stderr, "fuzz_guard: %s: %s\n", path, section == NULL ? jerr.text : err);
        abort();
    }
    json_decref(section);
    return 0;
}

struct walk {
    enum tg_guard_level level;
    bool mask;
};

static int on_text(void *ctx, const struct tg_guard_text *t)
{
    struct walk *w = ctx;
    struct tg_guard_finding found[16];
    size_t n = 0;
    tg_guard_scan(rules, w->level, t->text, t->len, found, 16, &n);
    for (size_t i = 0; i < n && i < 16; i++)
        if (found[i].offset > t->len || found[i].length > t->len - found[i].offset)
            abort();
    if (w->mask) {
        size_t masked_len = 0;
        char *masked = tg_guard_mask(rules, w->level, t->text, t->len, &masked_len);
        if (masked != NULL)
            tg_guard_texts_replace(t, masked, masked_len);
        free(masked);
    }
    return TG_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    static const char *const http_paths[] = {"prompt", "messages[*].content", "input[*]",
                                             "[*].text"};
    int mode = data[0];
    struct walk w = {.level = (enum tg_guard_level)(mode % 3), .mask = mode & 4};
    enum tg_guard_dialect dialect = (enum tg_guard_dialect)(mode >> 3 & 3);
    data++;
    size--;
    char *raw = malloc(size > 0 ? size : 1);
    if (raw == NULL)
        return 0;
    memcpy(raw, data, size);
    struct tg_guard_finding found[8];
    size_t n = 0;
    tg_guard_scan(rules, w.level, raw, size, found, 8, &n);
    free(raw);

    json_t *doc = json_loadb((const char *)data, size, JSON_ALLOW_NUL, NULL);
    if (doc == NULL)
        return 0;
    tg_guard_texts_each(doc, dialect, http_paths, sizeof(http_paths) / sizeof(http_paths[0]),
                        on_text, &w);
    char *out = json_dumps(doc, 0); /* a replaced text left the document whole */
    free(out);
    json_decref(doc);
    return 0;
}
