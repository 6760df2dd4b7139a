/*
 * guard_validate.c — the checks the guardrails engine (guard.c) runs on what a
 * pattern matched or is about to scan: the Luhn and IBAN checksums, and UTF-8
 * well-formedness. Plain byte arithmetic: no PCRE2, no allocation.
 */
#include "guard_validate.h"

/* Luhn over 13–19 digits, spaces and dashes allowed between them. */
bool tg_guard_validate_luhn(const char *s, size_t len)
{
    int digits[19];
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c >= '0' && c <= '9') {
            if (n == TG_ARRAY_LEN(digits))
                return false;
            digits[n++] = c - '0';
        } else if (c != ' ' && c != '-') {
            return false;
        }
    }
    if (n < 13)
        return false;
    int sum = 0;
    for (size_t i = 0; i < n; i++) {
        int d = digits[n - 1 - i];
        if (i % 2 == 1) {
            d *= 2;
            if (d > 9)
                d -= 9;
        }
        sum += d;
    }
    return sum % 10 == 0;
}

static bool is_upper(char c)
{
    return c >= 'A' && c <= 'Z';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* ISO 13616: 15–34 letters and digits (spaces ignored), country, check digits, mod 97 == 1. */
bool tg_guard_validate_iban(const char *s, size_t len)
{
    char iban[34];
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == ' ')
            continue;
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        if (!is_upper(c) && !is_digit(c))
            return false;
        if (n == sizeof(iban))
            return false;
        iban[n++] = c;
    }
    if (n < 15 || !is_upper(iban[0]) || !is_upper(iban[1]) || !is_digit(iban[2]) ||
        !is_digit(iban[3]))
        return false;
    unsigned rem = 0;
    for (size_t k = 0; k < n; k++) {
        char c = iban[(k + 4) % n]; /* the first four characters moved to the end */
        if (is_digit(c))
            rem = (rem * 10 + (unsigned)(c - '0')) % 97;
        else
            rem = (rem * 100 + (unsigned)(c - 'A' + 10)) % 97;
    }
    return rem == 1;
}

/* RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF. */
bool tg_guard_validate_utf8(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t extra;
        unsigned min, cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            extra = 1, min = 0x80, cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            extra = 2, min = 0x800, cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            extra = 3, min = 0x10000, cp = c & 0x07;
        } else {
            return false;
        }
        if (len - i <= extra)
            return false;
        for (size_t k = 1; k <= extra; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += extra + 1;
    }
    return true;
}

/* The length of the UTF-8 character at s[0] (1 for a byte that is not a lead byte). */
size_t tg_guard_validate_utf8_char(const char *s, size_t left)
{
    unsigned char c = (unsigned char)s[0];
    size_t n = c < 0xC0 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    return n <= left ? n : left;
}
