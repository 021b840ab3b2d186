/* ledger_keys.c -- the ledger's names, pure (contracts in ledger.h): a
 * route's ledger key, a bucket's, a Cluster slot's, the bucket a timer key
 * names in its hash tag, the table of tags that hash to each slot, and the
 * SCAN pattern of a prefix. Bytes in, bytes out: no I/O, no state.
 *
 * Every name here is part of the on-disk contract with applications (they
 * arm timers into these ledgers) and with earlier versions of the bridge
 * (entries they left behind): none may change.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "core/keyslot.h"
#include "ledger/ledger.h"

void eb_ledger_key(struct eb_buf *out, const char *prefix, const char *route) {
    if (prefix)
        eb_buf_puts(out, prefix);
    eb_buf_putc(out, '{');
    eb_buf_puts(out, route);
    eb_buf_putc(out, '}');
}

void eb_ledger_bucket_key(struct eb_buf *out, const char *prefix, const char *route,
                          unsigned bucket) {
    char num[16];
    if (prefix)
        eb_buf_puts(out, prefix);
    eb_buf_putc(out, '{');
    eb_buf_puts(out, route);
    snprintf(num, sizeof(num), ":%u}", bucket);
    eb_buf_puts(out, num);
}

void eb_ledger_slot_key(struct eb_buf *out, const char *prefix, const char *route,
                        const char *tag) {
    if (prefix)
        eb_buf_puts(out, prefix);
    eb_buf_putc(out, '{');
    eb_buf_puts(out, tag);
    eb_buf_puts(out, "}:");
    eb_buf_puts(out, route);
}

int eb_ledger_bucket_of(const char *key, size_t len, const char *route, unsigned nbuckets) {
    size_t tlen, rlen = strlen(route);
    const char *tag = eb_keyslot_hashed_part(key, len, &tlen);
    if (tag == key && tlen == len)
        return -1; /* no hash tag at all */
    /* "<route>:" then a canonical decimal: no sign, no leading zero (the
     * ledger's name spells the bucket so, and a tag is hashed as bytes). */
    if (tlen < rlen + 2 || memcmp(tag, route, rlen) != 0 || tag[rlen] != ':')
        return -1;
    const char *d = tag + rlen + 1;
    size_t n = tlen - rlen - 1;
    if (n > 5 || (n > 1 && d[0] == '0'))
        return -1;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (d[i] < '0' || d[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(d[i] - '0');
    }
    return v < nbuckets ? (int)v : -1;
}

/* The candidates, in the order they are tried: every string over
 * [0-9a-z] of length 1, then 2, then 3, then 4 (lexicographic within a
 * length). The first candidate that hashes to a slot is that slot's tag.
 * 36^4 candidates cover every slot (about 170,000 are tried). */
static const char alphabet[] = "0123456789abcdefghijklmnopqrstuvwxyz";

int eb_ledger_slot_tags_build(struct eb_ledger_slot_tags *t) {
    size_t found = 0;
    memset(t, 0, sizeof(*t));
    for (size_t len = 1; len <= EB_LEDGER_SLOT_TAG_MAX && found < EB_KEYSLOT_COUNT; len++) {
        size_t idx[EB_LEDGER_SLOT_TAG_MAX] = {0};
        char s[EB_LEDGER_SLOT_TAG_MAX + 1] = {0};
        for (;;) {
            for (size_t i = 0; i < len; i++)
                s[i] = alphabet[idx[i]];
            unsigned slot = eb_keyslot_crc16(s, len) & (EB_KEYSLOT_COUNT - 1);
            if (!t->tag[slot][0]) {
                memcpy(t->tag[slot], s, len + 1);
                if (++found == EB_KEYSLOT_COUNT)
                    break;
            }
            /* next candidate of this length: an odometer, last digit fastest */
            size_t i = len;
            while (i > 0 && ++idx[i - 1] == sizeof(alphabet) - 1)
                idx[--i] = 0;
            if (i == 0)
                break;
        }
    }
    return found == EB_KEYSLOT_COUNT ? 0 : EB_EINVAL;
}

void eb_ledger_scan_pattern(struct eb_buf *out, const char *prefix, size_t len) {
    for (size_t i = 0; i < len; i++) {
        char c = prefix[i];
        if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\')
            eb_buf_putc(out, '\\');
        eb_buf_putc(out, c);
    }
    eb_buf_putc(out, '*');
}
