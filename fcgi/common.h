/*
 * common.h — what every Tollgate module shares: the return-code enum and a few
 * small macros. Nothing here allocates or talks to a library.
 */
#ifndef TG_COMMON_H
#define TG_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/* The small return-code enum (nginx's NGX_OK / NGX_ERROR / NGX_DECLINED). */
enum tg_rc {
    TG_OK = 0,
    TG_ERROR = -1,
    TG_DECLINED = -2, /* "not mine" / "not found": the caller decides */
};

#define TG_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define TG_PRINTF(fmt_index, first_arg) __attribute__((format(printf, fmt_index, first_arg)))

/* Milliseconds on the monotonic clock, for durations only. */
int64_t tg_now_ms(void);

#endif
