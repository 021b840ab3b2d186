/* fuzz_redis_reply.c -- libFuzzer target for the reply builder of a Redis
 * connection (redis_conn.h: replies built in a pool instead of hiredis's
 * tree of allocations): any bytes as a RESP stream.
 *
 * Checks, beyond "no crash" and no access outside the pool (the pool is
 * poisoned between replies under AddressSanitizer): the stream read whole,
 * and cut in two at a point taken from the input, gives exactly the replies
 * (and the protocol error) the own reader of the hiredis built against
 * gives -- 0.14, or 1.x, which also reads RESP3 (tests/support/resp_same.h).
 */
#include <stdint.h>
#include <stdlib.h>

#include "../support/resp_same.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t split = size ? (size_t)data[0] * size / 256 : 0;
    if (!resp_same_as_hiredis(data, size, size) || !resp_same_as_hiredis(data, size, split))
        abort();
    return 0;
}
