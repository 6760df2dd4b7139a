/*
 * netaddr.c — address allow-lists (see netaddr.h).
 */
#include "netaddr.h"

#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

#include "common.h"

int tg_netaddr_parse(const char *text, struct tg_netaddr *out)
{
    char addr[INET6_ADDRSTRLEN];
    const char *slash = strchr(text, '/');
    size_t len = slash != NULL ? (size_t)(slash - text) : strlen(text);
    unsigned int max = 0;
    memset(out, 0, sizeof(*out));
    if (len == 0 || len >= sizeof(addr))
        return TG_ERROR;
    memcpy(addr, text, len);
    addr[len] = '\0';
    if (inet_pton(AF_INET, addr, out->addr) == 1) {
        out->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, addr, out->addr) == 1) {
        out->family = AF_INET6;
        max = 128;
    } else {
        return TG_ERROR;
    }
    out->prefix_len = max;
    if (slash == NULL)
        return TG_OK;
    const char *digits = slash + 1;
    size_t n = strspn(digits, "0123456789");
    if (n == 0 || n > 3 || digits[n] != '\0')
        return TG_ERROR;
    out->prefix_len = 0;
    for (size_t i = 0; i < n; i++)
        out->prefix_len = out->prefix_len * 10 + (unsigned int)(digits[i] - '0');
    return out->prefix_len <= max ? TG_OK : TG_ERROR;
}

static bool in_network(const unsigned char *addr, const struct tg_netaddr *a)
{
    unsigned int whole = a->prefix_len / 8, bits = a->prefix_len % 8;
    if (memcmp(addr, a->addr, whole) != 0)
        return false;
    unsigned char mask = (unsigned char)(0xff << (8 - bits));
    return bits == 0 || (addr[whole] & mask) == (a->addr[whole] & mask);
}

bool tg_netaddr_allowed(const struct tg_netaddr *list, size_t n, const char *text)
{
    static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    unsigned char addr[16];
    int family = AF_INET;
    if (text == NULL)
        return false;
    if (inet_pton(AF_INET, text, addr) != 1) {
        if (inet_pton(AF_INET6, text, addr) != 1)
            return false;
        if (memcmp(addr, v4_mapped, sizeof(v4_mapped)) == 0)
            memmove(addr, addr + 12, 4);
        else
            family = AF_INET6;
    }
    for (size_t i = 0; i < n; i++)
        if (list[i].family == family && in_network(addr, &list[i]))
            return true;
    return false;
}
