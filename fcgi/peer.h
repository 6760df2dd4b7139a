/*
 * peer.h — whether the web server's TCP connection from the client is still
 * open, seen from this host through the kernel's socket table (sock_diag).
 *
 * lighttpd takes a client's FIN for a half-close and keeps a queued request's
 * FastCGI connection open, so the worker cannot tell from its own connection
 * that nobody waits for the answer. When the web server runs on this host (in
 * this network namespace), its socket for the client's connection is there to
 * look at: the FastCGI params name it (SERVER_ADDR:SERVER_PORT is the web
 * server's end, REMOTE_ADDR:REMOTE_PORT the client's). The kernel's exact
 * lookup answers for that connection, or, when it is gone, for the socket
 * listening on SERVER_ADDR:SERVER_PORT:
 *   ESTABLISHED            open;
 *   CLOSE_WAIT             the client sent its FIN (HTTP clients do not
 *                          half-close while waiting for an answer): gone;
 *   TIME_WAIT, the closing states, CLOSE
 *                          the connection is over: gone;
 *   LISTEN                 only the listener is left: the connection is gone
 *                          IF SERVER_PORT is the port it came in on (lighttpd
 *                          passes its socket's; Apache passes the Host
 *                          header's, which may name another port, and another
 *                          program may listen there): the caller decides;
 *   no socket at all       the web server is elsewhere (another host,
 *                          namespace, a proxy): unknown, never taken as gone.
 * One netlink round trip (7-10 microseconds on a thread's own netlink socket,
 * kept open), no privilege needed.
 */
#ifndef TG_PEER_H
#define TG_PEER_H

enum tg_peer_state {
    TG_PEER_UNKNOWN = 0, /* cannot tell: treat as open */
    TG_PEER_OPEN,
    TG_PEER_GONE,
    TG_PEER_LISTENING, /* no such connection, a socket listens at the server's end */
};

/*
 * The state of the TCP connection between remote_addr:remote_port (the
 * client) and server_addr:server_port (the web server), IPv4 or IPv6 text
 * addresses and decimal ports as FastCGI passes them; NULLs allowed
 * (unknown). Thread-safe (each thread keeps one netlink socket); no allocation.
 */
enum tg_peer_state tg_peer_state(const char *server_addr, const char *server_port,
                                 const char *remote_addr, const char *remote_port);

/* The kernel's TCP state number (as in /proc/net/tcp) classified: pure. */
enum tg_peer_state tg_peer_classify(int tcp_state);

#endif
