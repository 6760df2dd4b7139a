/*
 * test_peer.c — peer.c against real sockets on loopback: a connection is open
 * while both ends hold it, gone once the client closed it (the server's socket
 * in CLOSE_WAIT), only the listener left once it was reset or closed, and
 * unknown (never gone) when no socket of this host matches or the params are
 * not addresses.
 */
/* cmocka.h needs these before it */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "peer.h"

struct conn {
    int listener, client, server;
    char family_addr[64];
    char server_port[8], client_port[8];
};

/* A listener on addr (IPv4 or IPv6 loopback), a client connected to it, the accepted socket. */
static void open_conn(struct conn *c, int family, const char *addr)
{
    struct sockaddr_storage ss = {0};
    socklen_t len;
    if (family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        in->sin_family = AF_INET;
        inet_pton(AF_INET, addr, &in->sin_addr);
        len = sizeof(*in);
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        in6->sin6_family = AF_INET6;
        inet_pton(AF_INET6, addr, &in6->sin6_addr);
        len = sizeof(*in6);
    }
    c->listener = socket(family, SOCK_STREAM, 0);
    assert_true(c->listener >= 0);
    assert_int_equal(bind(c->listener, (struct sockaddr *)&ss, len), 0);
    assert_int_equal(listen(c->listener, 4), 0);
    struct sockaddr_storage bound;
    socklen_t blen = sizeof(bound);
    assert_int_equal(getsockname(c->listener, (struct sockaddr *)&bound, &blen), 0);
    c->client = socket(family, SOCK_STREAM, 0);
    assert_int_equal(connect(c->client, (struct sockaddr *)&bound, blen), 0);
    c->server = accept(c->listener, NULL, NULL);
    assert_true(c->server >= 0);
    struct sockaddr_storage mine;
    socklen_t mlen = sizeof(mine);
    assert_int_equal(getsockname(c->client, (struct sockaddr *)&mine, &mlen), 0);
    int sport = ntohs(family == AF_INET ? ((struct sockaddr_in *)&bound)->sin_port
                                        : ((struct sockaddr_in6 *)&bound)->sin6_port);
    int cport = ntohs(family == AF_INET ? ((struct sockaddr_in *)&mine)->sin_port
                                        : ((struct sockaddr_in6 *)&mine)->sin6_port);
    snprintf(c->family_addr, sizeof(c->family_addr), "%s", addr);
    snprintf(c->server_port, sizeof(c->server_port), "%d", sport);
    snprintf(c->client_port, sizeof(c->client_port), "%d", cport);
}

static enum tg_peer_state state_of(const struct conn *c)
{
    return tg_peer_state(c->family_addr, c->server_port, c->family_addr, c->client_port);
}

static void close_conn(struct conn *c)
{
    if (c->client >= 0)
        close(c->client);
    if (c->server >= 0)
        close(c->server);
    close(c->listener);
}

static void check_family(int family, const char *addr)
{
    struct conn c;
    open_conn(&c, family, addr);
    assert_int_equal(state_of(&c), TG_PEER_OPEN);
    /* the client gave up: its FIN leaves the web server's socket in CLOSE_WAIT */
    close(c.client);
    c.client = -1;
    usleep(20 * 1000);
    assert_int_equal(state_of(&c), TG_PEER_GONE);
    /* the web server let go of it too: the listener answers the lookup */
    close(c.server);
    c.server = -1;
    usleep(20 * 1000);
    assert_int_equal(state_of(&c), TG_PEER_LISTENING);
    close_conn(&c);
}

static void test_ipv4_open_then_gone(void **state)
{
    (void)state;
    check_family(AF_INET, "127.0.0.1");
}

static void test_ipv6_open_then_gone(void **state)
{
    (void)state;
    check_family(AF_INET6, "::1");
}

static void test_reset_is_gone(void **state)
{
    (void)state;
    struct conn c;
    open_conn(&c, AF_INET, "127.0.0.1");
    struct linger now = {.l_onoff = 1, .l_linger = 0};
    assert_int_equal(setsockopt(c.client, SOL_SOCKET, SO_LINGER, &now, sizeof(now)), 0);
    close(c.client); /* RST: the server's socket is gone at once */
    c.client = -1;
    usleep(20 * 1000);
    assert_int_equal(state_of(&c), TG_PEER_LISTENING);
    close_conn(&c);
}

static void test_other_connections_do_not_count(void **state)
{
    (void)state;
    struct conn a, b;
    open_conn(&a, AF_INET, "127.0.0.1");
    open_conn(&b, AF_INET, "127.0.0.1");
    close(a.client);
    a.client = -1;
    usleep(20 * 1000);
    assert_int_equal(state_of(&a), TG_PEER_GONE);
    assert_int_equal(state_of(&b), TG_PEER_OPEN);
    close_conn(&a);
    close_conn(&b);
}

static void test_unknown_is_never_gone(void **state)
{
    (void)state;
    struct conn c;
    open_conn(&c, AF_INET, "127.0.0.1");
    char port[8];
    snprintf(port, sizeof(port), "%s", c.server_port);
    close_conn(&c);
    usleep(20 * 1000);
    /* nothing of this host listens there any more (a web server on another host) */
    assert_int_equal(tg_peer_state("127.0.0.1", port, "127.0.0.1", "40000"), TG_PEER_UNKNOWN);
    /* no socket of this host has this address (TEST-NET-1) */
    assert_int_equal(tg_peer_state("192.0.2.1", "443", "192.0.2.7", "50000"), TG_PEER_UNKNOWN);
    /* params that are not addresses, missing, or of two families */
    assert_int_equal(tg_peer_state(NULL, "80", "127.0.0.1", "1"), TG_PEER_UNKNOWN);
    assert_int_equal(tg_peer_state("127.0.0.1", "", "127.0.0.1", "1"), TG_PEER_UNKNOWN);
    assert_int_equal(tg_peer_state("127.0.0.1", "80", "127.0.0.1", "70000"), TG_PEER_UNKNOWN);
    assert_int_equal(tg_peer_state("127.0.0.1", "80x", "127.0.0.1", "1"), TG_PEER_UNKNOWN);
    assert_int_equal(tg_peer_state("localhost", "80", "127.0.0.1", "1"), TG_PEER_UNKNOWN);
    assert_int_equal(tg_peer_state("::1", "80", "127.0.0.1", "1"), TG_PEER_UNKNOWN);
}

static void test_classify(void **state)
{
    (void)state;
    assert_int_equal(tg_peer_classify(TCP_ESTABLISHED), TG_PEER_OPEN);
    assert_int_equal(tg_peer_classify(TCP_CLOSE_WAIT), TG_PEER_GONE);
    assert_int_equal(tg_peer_classify(TCP_LISTEN), TG_PEER_LISTENING);
    assert_int_equal(tg_peer_classify(TCP_TIME_WAIT), TG_PEER_GONE);
    assert_int_equal(tg_peer_classify(99), TG_PEER_UNKNOWN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipv4_open_then_gone),
        cmocka_unit_test(test_ipv6_open_then_gone),
        cmocka_unit_test(test_reset_is_gone),
        cmocka_unit_test(test_other_connections_do_not_count),
        cmocka_unit_test(test_unknown_is_never_gone),
        cmocka_unit_test(test_classify),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
