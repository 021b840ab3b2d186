/* redis_argv.h -- a Redis command's argument list, built one argument at a
 * time: the (pointer, length) pairs that eb_redis_conn_command() and
 * hiredis's *CommandArgv() take, plus storage for the arguments the list
 * formats itself (numbers, copies). Callers neither count slots nor size
 * number buffers, and a variable-length FCALL reads as the command it is.
 *
 * Ownership: arguments added with eb_redis_argv_add_str()/_add_bytes() are
 * borrowed and must outlive the send (hiredis copies them when the command
 * is queued); those added with _add_copy()/_add_i64()/_add_size() are owned
 * by the list and freed by eb_redis_argv_free(). Their addresses never move
 * while the list grows.
 *
 * Errors are sticky, as with eb_buf (json.h): an add that cannot allocate
 * sets `failed` and every later add is a no-op, so a caller checks
 * eb_redis_argv_ok() once, before sending.
 *
 * The first EB_REDIS_ARGV_INLINE arguments and EB_REDIS_ARGV_STORE bytes of
 * owned text live inside the struct: short commands allocate nothing. So
 * the struct must not be copied or moved once an argument was added.
 *
 * Pure: no I/O, no global state.
 */
#ifndef EB_REDIS_ARGV_H
#define EB_REDIS_ARGV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Every fixed-shape command the bridge sends has fewer arguments (the
 * longest, eb1_collect, has 8); batches outgrow it and allocate. */
#define EB_REDIS_ARGV_INLINE 16

/* Owned text kept inline: a handful of numbers (at most 20 digits and a
 * sign each), as in FCALL eb1_due's offset, limit and grace. */
#define EB_REDIS_ARGV_STORE 128

struct eb_redis_argv_block; /* owned text beyond `store`, in redis_argv.c */

struct eb_redis_argv {
    int argc;
    const char **argv; /* argc arguments: inline_argv or owned */
    size_t *argvlen;   /* their lengths: inline_len or owned */
    size_t cap;        /* slots in argv/argvlen */
    bool failed;       /* sticky: an add ran out of memory */

    struct eb_redis_argv_block *blocks; /* owned text, newest first */
    size_t store_used;
    const char *inline_argv[EB_REDIS_ARGV_INLINE];
    size_t inline_len[EB_REDIS_ARGV_INLINE];
    char store[EB_REDIS_ARGV_STORE];
};

/* An empty list. */
void eb_redis_argv_init(struct eb_redis_argv *a);

/* Release what the list owns; it may be reused after eb_redis_argv_init(). */
void eb_redis_argv_free(struct eb_redis_argv *a);

/* Append p[0..len), any bytes, borrowed. */
void eb_redis_argv_add_bytes(struct eb_redis_argv *a, const void *p, size_t len);

/* Append a C string (without its NUL), borrowed. */
void eb_redis_argv_add_str(struct eb_redis_argv *a, const char *s);

/* Append a copy of p[0..len), owned by the list. */
void eb_redis_argv_add_copy(struct eb_redis_argv *a, const void *p, size_t len);

/* Append v in decimal ("-12", "0", "500"), owned by the list. */
void eb_redis_argv_add_i64(struct eb_redis_argv *a, int64_t v);
void eb_redis_argv_add_size(struct eb_redis_argv *a, size_t v);

/* False when an add ran out of memory: the list is incomplete and must not
 * be sent. */
static inline bool eb_redis_argv_ok(const struct eb_redis_argv *a) {
    return !a->failed;
}

#endif
