/*
 * guard_validate.h — checksums and UTF-8 checks for the guardrails engine
 * (guard.c): a pattern finds what looks like a card number or an IBAN, these say
 * whether it is one. Pure functions over bytes; nothing is allocated or kept.
 */
#ifndef TG_GUARD_VALIDATE_H
#define TG_GUARD_VALIDATE_H

#include "common.h"

/*
 * Whether s[0..len) is a payment card number: 13 to 19 digits, spaces and dashes
 * allowed between them (nothing else), passing the Luhn check.
 */
bool tg_guard_validate_luhn(const char *s, size_t len);

/*
 * Whether s[0..len) is an IBAN (ISO 13616): 15 to 34 letters and digits, spaces
 * ignored, a two-letter country, two check digits, and mod 97 of the rearranged
 * number equal to 1. Lower-case letters are accepted.
 */
bool tg_guard_validate_iban(const char *s, size_t len);

/* Whether s[0..len) is well-formed UTF-8 (RFC 3629: no overlongs, no surrogates). */
bool tg_guard_validate_utf8(const unsigned char *s, size_t len);

/*
 * The byte length of the UTF-8 character starting at s[0], at most left (1 for
 * a byte that does not start a character). left must be at least 1.
 */
size_t tg_guard_validate_utf8_char(const char *s, size_t left);

#endif
