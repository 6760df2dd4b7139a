/*
 * fuzz_config.c — the config loader (fcgi/config*.c, the guard rules'
 * compilation in guard.c, the routes and enrichment sections) over any text,
 * through tg_config_parse, the entry tg_config_load reads a file into. A
 * refusal must say why.
 */
#include <string.h>

#include "common.h"
#include "config.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    struct tg_config *config = NULL;
    char err[512] = "";
    if (tg_config_parse(text, &config, err, sizeof(err)) == TG_OK)
        tg_config_free(config);
    else if (err[0] == '\0')
        abort();
    free(text);
    return 0;
}
