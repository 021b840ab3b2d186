/* buf.c -- the growable byte buffer every encoder writes into, and the
 * fixed formats appended to it (integers, base64, RFC 3339 time). */
#include <stdlib.h>

#include "core/buf.h"

void eb_buf_free(struct eb_buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->failed = false;
}

bool eb_buf_reserve(struct eb_buf *b, size_t extra) {
    if (b->failed)
        return false;
    if (b->cap - b->len >= extra)
        return true;
    size_t need = b->len + extra;
    if (need < b->len || (b->max && need > b->max)) {
        b->failed = true;
        return false;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (b->max && cap > b->max)
        cap = b->max;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->failed = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

void eb_buf_cstr(struct eb_buf *b) {
    if (eb_buf_reserve(b, 1))
        b->data[b->len] = '\0';
}

void eb_buf_put_u64(struct eb_buf *b, uint64_t v) {
    char tmp[20];
    size_t i = sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    eb_buf_append(b, tmp + i, sizeof(tmp) - i);
}

void eb_buf_put_i64(struct eb_buf *b, int64_t v) {
    if (v < 0) {
        eb_buf_putc(b, '-');
        eb_buf_put_u64(b, (uint64_t)0 - (uint64_t)v);
    } else {
        eb_buf_put_u64(b, (uint64_t)v);
    }
}

void eb_buf_put_base64(struct eb_buf *b, const void *vp, size_t n) {
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *p = vp;
    /* n == 0: nothing to write, and b->data may still be NULL (NULL + 0 is
     * undefined behaviour). */
    if (n == 0 || !eb_buf_reserve(b, (n + 2) / 3 * 4))
        return;
    char *o = b->data + b->len;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = tbl[v >> 18];
        *o++ = tbl[(v >> 12) & 63];
        *o++ = tbl[(v >> 6) & 63];
        *o++ = tbl[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
        *o++ = tbl[v >> 18];
        *o++ = tbl[(v >> 12) & 63];
        *o++ = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    b->len = (size_t)(o - b->data);
}

static void put_digits(char *o, unsigned v, int width) {
    for (int i = width - 1; i >= 0; i--) {
        o[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

/* RFC 3339 has four-digit years only: inputs outside 0000-01-01T00:00:00Z ..
 * 9999-12-31T23:59:59.999999Z are clamped to those ends, so any int64 gives
 * a valid timestamp (a garbage deadline must not produce garbage JSON). */
#define RFC3339_MIN_US (-62167219200LL * 1000000)
#define RFC3339_MAX_US (253402300799LL * 1000000 + 999999)

/* Civil date (proleptic Gregorian) of a day count since 1970-01-01, by
 * splitting it into 400-year eras of 146097 days with years starting on
 * 1 March (so the leap day is the last day of a year). Pure arithmetic:
 * gmtime_r takes glibc's timezone lock on every call and leaves its result
 * undefined for years it cannot represent. */
static void civil_from_days(int64_t days, unsigned *y, unsigned *m, unsigned *d) {
    days += 719468; /* days from 0000-03-01 to 1970-01-01 */
    int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    unsigned doe = (unsigned)(days - era * 146097);                       /* [0, 146096] */
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);               /* [0, 365] */
    unsigned mp = (5 * doy + 2) / 153;                                    /* March = 0 */
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (unsigned)(yoe + era * 400 + (*m <= 2));
}

void eb_buf_put_rfc3339(struct eb_buf *b, int64_t us, int digits) {
    if (us < RFC3339_MIN_US)
        us = RFC3339_MIN_US;
    if (us > RFC3339_MAX_US)
        us = RFC3339_MAX_US;
    /* Floor division: -1 µs is 1969-12-31T23:59:59.999999Z. No negation,
     * so INT64_MIN cannot overflow (it is clamped above anyway). */
    int64_t secs = us / 1000000, frac = us % 1000000;
    if (frac < 0) {
        secs--;
        frac += 1000000;
    }
    int64_t days = secs / 86400, sod = secs % 86400;
    if (sod < 0) {
        days--;
        sod += 86400;
    }
    unsigned year, mon, mday;
    civil_from_days(days, &year, &mon, &mday);
    char out[32];
    put_digits(out, year, 4);
    out[4] = '-';
    put_digits(out + 5, mon, 2);
    out[7] = '-';
    put_digits(out + 8, mday, 2);
    out[10] = 'T';
    put_digits(out + 11, (unsigned)(sod / 3600), 2);
    out[13] = ':';
    put_digits(out + 14, (unsigned)(sod / 60 % 60), 2);
    out[16] = ':';
    put_digits(out + 17, (unsigned)(sod % 60), 2);
    size_t n = 19;
    if (digits == 3 || digits == 6) {
        out[n++] = '.';
        put_digits(out + n, digits == 3 ? (unsigned)frac / 1000 : (unsigned)frac, digits);
        n += (size_t)digits;
    }
    out[n++] = 'Z';
    eb_buf_append(b, out, n);
}

