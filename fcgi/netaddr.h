/*
 * netaddr.h — address allow-lists: "127.0.0.1", "::1", "10.0.0.0/8",
 * "fd00::/8". Used by who may read GET /metrics (metrics.allow) and who may
 * reach the admin API (admin.allow); matched against FastCGI's REMOTE_ADDR.
 */
#ifndef TG_NETADDR_H
#define TG_NETADDR_H

#include <stdbool.h>
#include <stddef.h>

/* one entry: an address or a network */
struct tg_netaddr {
    int family;              /* AF_INET or AF_INET6 */
    unsigned char addr[16];  /* network byte order; the first 4 bytes for AF_INET */
    unsigned int prefix_len; /* 32 / 128 for a single address */
};

/* Parses "ADDRESS" or "ADDRESS/PREFIX" (IPv4 or IPv6) into *out: TG_OK or TG_ERROR. */
int tg_netaddr_parse(const char *text, struct tg_netaddr *out);

/*
 * Whether the address text (NULL or not an address: false) is in one of
 * list[0..n). An IPv4-mapped IPv6 address ("::ffff:10.0.0.1") counts as IPv4.
 */
bool tg_netaddr_allowed(const struct tg_netaddr *list, size_t n, const char *text);

#endif
