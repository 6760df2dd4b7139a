/*
 * metrics_backends.h — the routing and guarding part of GET /metrics: each
 * backend circuit's state and failure counts (balancer.c keeps them) and the
 * guardrail actions taken (guardrail.c counts them), from the host's shared
 * memory.
 *
 *   tollgate_backend_circuit_state{backend,state}  1 for the circuit's state
 *   tollgate_backend_failures_total{backend}       failed attempts (failover)
 *   tollgate_backend_circuit_opened_total{backend} times the circuit opened
 *   tollgate_guardrail_actions_total{rule,action}  guardrail findings acted on
 *                                                  (every rule of the config)
 */
#ifndef TG_METRICS_BACKENDS_H
#define TG_METRICS_BACKENDS_H

#include "common.h"

struct tg_config;
struct tg_shm;

/* The exposition text (malloc'd; *len its length), or NULL when out of memory. */
char *tg_metrics_backends_text(struct tg_shm *shm, const struct tg_config *config, size_t *len);

#endif
