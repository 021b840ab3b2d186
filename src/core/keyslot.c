/* keyslot.c -- Redis Cluster key slots (contract in keyslot.h). The CRC is
 * computed bytewise from a 256-entry table built at compile time by a
 * constant expression, so there is no start-up step and no mutable state. */
#include <string.h>

#include "core/keyslot.h"

/* One table entry: the CRC of byte b shifted through eight rounds of the
 * polynomial 0x1021, most significant bit first. */
#define R1(c)  ((uint16_t)(((c)&0x8000u) ? (((c) << 1) ^ 0x1021u) : ((c) << 1)))
#define R8(c)  R1(R1(R1(R1(R1(R1(R1(R1(c))))))))
#define E(b)   R8((uint16_t)((unsigned)(b) << 8))
#define E4(b)  E(b), E((b) + 1), E((b) + 2), E((b) + 3)
#define E16(b) E4(b), E4((b) + 4), E4((b) + 8), E4((b) + 12)
#define E64(b) E16(b), E16((b) + 16), E16((b) + 32), E16((b) + 48)

static const uint16_t crc_table[256] = {E64(0), E64(64), E64(128), E64(192)};

uint16_t eb_keyslot_crc16(const void *p, size_t n) {
    const unsigned char *s = p;
    uint16_t crc = 0;
    for (size_t i = 0; i < n; i++)
        crc = (uint16_t)((crc << 8) ^ crc_table[((crc >> 8) ^ s[i]) & 0xffu]);
    return crc;
}

const char *eb_keyslot_hashed_part(const char *key, size_t n, size_t *len) {
    const char *open = memchr(key, '{', n);
    if (open) {
        const char *from = open + 1;
        const char *close = memchr(from, '}', n - (size_t)(from - key));
        if (close && close > from) {
            *len = (size_t)(close - from);
            return from;
        }
    }
    *len = n;
    return key;
}

unsigned eb_keyslot_of(const char *key, size_t n) {
    size_t len;
    const char *part = eb_keyslot_hashed_part(key, n, &len);
    return eb_keyslot_crc16(part, len) & (EB_KEYSLOT_COUNT - 1);
}
