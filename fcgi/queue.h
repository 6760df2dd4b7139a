/*
 * queue.h — is a request still wanted before it goes to the provider? A
 * request can wait, with every worker thread busy, in the web server and in
 * the FastCGI listen socket; its client may give up meanwhile. Such a request
 * must cost nothing: it is never forwarded, and its reservation goes back.
 *
 * Two checks, both without waiting: the client left (the web server closed or
 * aborted the request's FastCGI connection, tg_request_client_left), and the
 * request waited longer than server.queue_deadline_ms. Its age is measured from
 * the web server's stamp of arrival when there is one (an X-Request-Start
 * header, "t=" + seconds, milliseconds or microseconds since the epoch, as
 * Apache's `RequestHeader set X-Request-Start "%t"` or nginx's "t=${msec}"
 * write), else from the FastCGI accept: lighttpd passes no arrival time, so
 * behind it the client-gone check is the main guard.
 *
 * Not here: a client that leaves during the provider's call (relay.c).
 */
#ifndef TG_QUEUE_H
#define TG_QUEUE_H

#include "request.h"

/*
 * Checks r before its reserve and again just before its forward. TG_OK: go on.
 * TG_DECLINED: the client is gone; r->outcome is "client_gone", r->status 499
 * (nginx's "client closed request": nothing is sent) and r->client_gone is set,
 * so no answer is attempted. TG_ERROR: r waited past server.queue_deadline_ms;
 * r->outcome is "queue_timeout" and r->error a 503. Either way the caller gives
 * back a reservation it holds, and writes no usage row.
 */
int tg_queue_check(struct tg_request *r);

/*
 * The arrival time in an X-Request-Start value ("t=1700000000123456",
 * "t=1700000000.123", "1700000000123"; the "t=" is optional), in Unix
 * milliseconds; -1 when value is NULL or not such a stamp. The unit of an
 * integer is told by its size: up to 11 digits seconds, up to 14 milliseconds,
 * else microseconds. Pure.
 */
int64_t tg_queue_parse_start(const char *value);

#endif
