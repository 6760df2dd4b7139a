/*
 * registry.h — the provider modules by type: the one place that names them all,
 * so that the pipeline and exchange.c never name a provider.
 */
#ifndef TG_REGISTRY_H
#define TG_REGISTRY_H

#include "provider.h"

/* The operations of a provider type; NULL when Tollgate cannot call it. */
const struct tg_provider_ops *tg_registry_provider(enum tg_provider_type type);

#endif
