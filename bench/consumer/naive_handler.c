/* naive_handler.c -- THE BASELINE of bench/consumer. Not an example: do not
 * copy it. It is the design expiry-bridge's order consumer is measured
 * against: what a typical Laravel listener does when an order's payment timer
 * expires -- one autocommitted UPDATE per notification:
 *
 *     UPDATE orders SET status = 'cancelled', cancelled_at = now()
 *      WHERE id = $1 AND status = 'pending'
 *
 * What it gets wrong, on purpose (it is the thing being replaced):
 *   - stock is never returned (doing it would take more autocommitted
 *     statements, and a crash between them would leave it half done);
 *   - no dedup: were stock returned, a redelivery would return it twice;
 *   - offsets are auto-committed in the background whether or not the
 *     UPDATE ran, so a crash can lose events as well as repeat them;
 *   - a malformed message or a database error is logged and skipped.
 *
 * It reads the same Kafka events as order-consumer, with the same libraries
 * (librdkafka, jansson, libpq, a prepared statement), so the ratio in
 * bench/consumer measures the handling design, not the transport or the
 * language.
 *
 *   naive-handler BROKERS GROUP TOPIC CONNINFO [KEY=VALUE...]
 * (KEY=VALUE: librdkafka properties.) Stops on SIGTERM/SIGINT.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>

static const char CANCEL_SQL[] = "UPDATE orders SET status = 'cancelled', cancelled_at = now() "
                                 "WHERE id = $1 AND status = 'pending'";

/* data.params.order_id, or NULL. Borrowed from root. */
static const char *order_id_of(json_t *root) {
    json_t *data = json_object_get(root, "data");
    json_t *params = data ? json_object_get(data, "params") : NULL;
    return params ? json_string_value(json_object_get(params, "order_id")) : NULL;
}

static void handle(PGconn *db, const rd_kafka_message_t *m) {
    json_t *root = json_loadb(m->payload, m->len, 0, NULL);
    const char *order_id = root ? order_id_of(root) : NULL;
    if (!order_id) {
        fprintf(stderr, "naive-handler: malformed message skipped\n");
    } else {
        PGresult *res = PQexecPrepared(db, "cancel", 1, &order_id, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            fprintf(stderr, "naive-handler: skipped after error: %s", PQerrorMessage(db));
        PQclear(res);
    }
    json_decref(root);
}

int main(int argc, char **argv) {
    char errstr[512];
    if (argc < 5) {
        fprintf(stderr, "usage: naive-handler BROKERS GROUP TOPIC CONNINFO [KEY=VALUE...]\n");
        return 2;
    }
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    PGconn *db = PQconnectdb(argv[4]);
    PGresult *res = PQprepare(db, "cancel", CANCEL_SQL, 0, NULL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        fprintf(stderr, "naive-handler: %s", PQerrorMessage(db));
        return 1;
    }
    PQclear(res);

    /* Library defaults: auto-commit of auto-stored offsets every 5 s. */
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", argv[1], errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "group.id", argv[2], errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", errstr, sizeof(errstr))) {
        fprintf(stderr, "naive-handler: %s\n", errstr);
        return 1;
    }
    for (int i = 5; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq) {
            fprintf(stderr, "naive-handler: %s: expected KEY=VALUE\n", argv[i]);
            return 2;
        }
        *eq = '\0';
        if (rd_kafka_conf_set(conf, argv[i], eq + 1, errstr, sizeof(errstr))) {
            fprintf(stderr, "naive-handler: %s\n", errstr);
            return 1;
        }
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "naive-handler: %s\n", errstr);
        return 1;
    }
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, argv[3], RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);

    struct timespec zero = {0, 0};
    while (sigtimedwait(&sigs, NULL, &zero) < 0) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m)
            continue;
        if (!m->err)
            handle(db, m);
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    PQfinish(db);
    return 0;
}
