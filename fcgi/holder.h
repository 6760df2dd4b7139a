/*
 * holder.h — who holds a reservation: this worker process's instance name, as
 * tollgate.reservations.holder records it, and whether another process of the
 * same host is gone (the sweeper then releases what it held).
 *
 * A name is "HOST/BOOT/PIDNS:PID:START": the host name (for people reading
 * the table), the kernel's boot id, the PID namespace's inode, the pid and the
 * process's start time in clock ticks since boot. The part before the first
 * ':' is the domain in which kill() and /proc mean the same thing: two hosts
 * with one name, or containers in separate PID namespaces, never share one, so
 * a sweeper never judges another host's workers; START tells a pid reused
 * after a restart from the process that held the reservation.
 */
#ifndef TG_HOLDER_H
#define TG_HOLDER_H

#include <stdbool.h>

/* Per process, before any reservation: computes the names. TG_OK, or TG_ERROR. */
int tg_holder_init(void);

/* This process's instance name (above). */
const char *tg_holder_name(void);

/* This process's domain: the prefix before ':' of every holder name it may judge. */
const char *tg_holder_domain(void);

/* The host name alone (file names, logs). */
const char *tg_holder_host(void);

/*
 * Whether holder, a name of this domain, belongs to a process that is gone:
 * no such pid, or a pid now used by a process started at another time. A name
 * of another domain, or malformed, is never dead (its own host judges it).
 */
bool tg_holder_is_dead(const char *holder);

#endif
