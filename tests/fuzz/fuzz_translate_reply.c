/*
 * fuzz_translate_reply.c — the translators of a provider's whole (not
 * streamed) reply: an OpenAI chat.completion to the pivot
 * (translate_openai_backend.c), the pivot (an Anthropic message) to a
 * chat.completion (translate_openai_reply.c), a Bedrock Converse reply
 * (translate_bedrock.c) and a Gemini generateContent reply
 * (translate_gemini_reply.c) to the pivot, and each one's error body. The
 * first byte picks the translator; the rest is the reply's JSON. A pivot made
 * is translated on to OpenAI's shape, as a chat client of that provider gets it.
 */
#include <jansson.h>
#include <string.h>

#include "common.h"
#include "fuzz.h"
#include "translate_bedrock.h"
#include "translate_gemini.h"
#include "translate_openai_backend.h"
#include "translate_openai_reply.h"

static void to_openai(json_t *pivot)
{
    json_t *chat = NULL;
    char err[256];
    if (tg_translate_pivot_reply_to_openai(pivot, "m", 1700000000, &chat, err, sizeof(err)) ==
        TG_OK) {
        char *text = json_dumps(chat, 0);
        free(text);
    }
    json_decref(chat);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    int mode = data[0] % 5;
    json_t *reply = json_loadb((const char *)data + 1, size - 1, 0, NULL);
    if (reply == NULL)
        return 0;
    json_t *pivot = NULL, *error = NULL;
    char err[256];
    switch (mode) {
    case 0:
        tg_translate_openai_reply_to_pivot(reply, "gpt-4o", &pivot, err, sizeof(err));
        error = tg_translate_openai_error_to_pivot(reply, "fallback");
        break;
    case 1:
        to_openai(reply);
        error = tg_translate_pivot_error_to_openai(reply, "fallback");
        break;
    case 2:
        tg_translate_bedrock_reply(reply, "msg_fuzz", "claude-bedrock", &pivot, err, sizeof(err));
        break;
    case 3:
        tg_gemini_reply_to_pivot(reply, "gemini-2.5-flash", "seed", &pivot, err, sizeof(err));
        error = tg_gemini_error_to_pivot(reply, 400);
        break;
    default: {
        struct tg_usage usage = {0};
        tg_translate_openai_usage_read(reply, &usage);
        tg_gemini_usage_read(reply, &usage);
        json_decref(tg_translate_bedrock_usage(reply));
        tg_translate_pivot_usage_read(reply, &usage);
        break;
    }
    }
    if (pivot != NULL)
        to_openai(pivot);
    json_decref(pivot);
    json_decref(error);
    json_decref(reply);
    return 0;
}
