/*
 * supervise.h — the master process: pre-forks server.processes workers on the
 * listening socket it was given (fd 0), replaces one that dies, and stops them
 * all on SIGTERM, SIGINT or SIGHUP. It serves no request itself.
 *
 * A worker that exits, whatever the cause (a crash, kill -9, the OOM killer, a
 * SIGTERM sent to it alone), is forked again at once — after a backoff that
 * doubles (0.1 s up to 10 s) while its slot's workers keep dying within 10 s
 * of their start, so a crash loop does not spin. The slots (pid, threads, busy)
 * live in the host's shared segment, for /health and /metrics (capacity.h).
 * Only one master may serve a socket: a second one refuses to start.
 */
#ifndef TG_SUPERVISE_H
#define TG_SUPERVISE_H

#include "common.h"

struct tg_config;

/*
 * Runs the master for config (scope names the shared segment, as the workers
 * name it). Returns TG_OK in the master once every worker has stopped after a
 * stop signal; TG_DECLINED in a freshly forked worker, with *slot set: the
 * caller then runs the worker and exits; TG_ERROR (logged) when it could not
 * start (another master serves the socket, fork failed for the first worker).
 */
int tg_supervise_run(const struct tg_config *config, const char *scope, int *slot);

#endif
