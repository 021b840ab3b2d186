/* fuzz_kafka_stats.c -- libFuzzer target for the statistics reader
 * (kafka/kafka_stats.h): any bytes as librdkafka's statistics JSON.
 *
 * Checks, beyond "no crash" and no read outside the input:
 *  - the answer is -1 or a count no larger than the number of "UP"
 *    strings in the input;
 *  - reading stops at the end of "brokers": when the input is answered
 *    (>= 0), the same input with bytes appended gets the same answer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kafka/kafka_stats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int count_up(const char *p, size_t n) {
    int c = 0;
    for (size_t i = 0; i + 4 <= n; i++)
        c += memcmp(p + i, "\"UP\"", 4) == 0;
    return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *json = (const char *)data;
    int up = eb_kafka_stats_brokers_up(json, size);
    if (up < -1 || up > count_up(json, size))
        abort();
    if (up < 0)
        return 0;
    char *longer = malloc(size + 3);
    if (!longer)
        return 0;
    memcpy(longer, data, size);
    memcpy(longer + size, "}\"{", 3);
    if (eb_kafka_stats_brokers_up(longer, size + 3) != up)
        abort();
    free(longer);
    return 0;
}
