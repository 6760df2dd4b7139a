/*
 * fuzz_jscan.c — the JSON member scanner (fcgi/jscan.c) over any text: the key
 * is the input up to its first NUL byte, the text the rest. A value found must
 * lie inside the text.
 */
#include <string.h>

#include "common.h"
#include "fuzz.h"
#include "jscan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *nul = memchr(data, '\0', size);
    if (nul == NULL)
        return 0;
    const char *key = (const char *)data;
    size_t key_len = (size_t)(nul - key);
    size_t len = size - key_len - 1;
    /* its own allocation, not NUL-terminated: ASan sees a read past its end */
    char *text = malloc(len > 0 ? len : 1);
    if (text == NULL)
        return 0;
    memcpy(text, nul + 1, len);
    const char *value = NULL;
    size_t value_len = 0;
    if (tg_jscan_member(text, len, key, &value, &value_len) == TG_OK &&
        (value < text || value + value_len > text + len))
        abort();
    free(text);
    return 0;
}
