/* mock_kafka.c -- librdkafka's mock Kafka cluster as a standalone process for
 * tests, demos and benchmarks. It speaks the real Kafka protocol (kcat and
 * python3-confluent-kafka work against it).
 *
 *   eb_mock_kafka [--brokers N] [--topic NAME:PARTITIONS]...
 *                 [--api-version KEY:MIN:MAX]...
 *
 * --api-version narrows the versions the mock advertises for one request
 * type (rd_kafka_mock_set_apiversion). The Java consumer's test needs
 * `2:0:3`: librdkafka 2.0.2's mock answers ListOffsets v4/v5 in a form the
 * Java client (kafka-clients 2.3.1) cannot read (a NullPointerException in
 * its Fetcher), and v3 works. Newer Java clients cannot use this mock at
 * all: they open with ApiVersions v3+, which the mock refuses with a reply
 * whose bytes the client reads as a throttle time of about 20 minutes.
 *
 * Prints one line "BOOTSTRAP host:port,host:port,..." on stdout, then reads
 * commands from stdin, one per line, answering each with "ok" or "error: ..."
 * so a test can wait for the effect:
 *
 *   down [ID]            take broker ID (default: every broker) down
 *   up [ID]              bring it back (same port)
 *   rtt ID MS            add MS of latency to broker ID
 *   topic NAME PARTS     create a topic
 *   ensure NAME          create a topic as auto-creation would, unless it exists
 *   quit                 exit (so does EOF on stdin, SIGTERM and SIGINT)
 *
 * Test-only: rdkafka_mock.h is not part of librdkafka's stable ABI and is
 * never used under src/.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

static int set_brokers(rd_kafka_mock_cluster_t *mc, int nbrokers, int id, int up) {
    for (int b = 1; b <= nbrokers; b++) {
        if (id && b != id)
            continue;
        rd_kafka_resp_err_t err = up ? rd_kafka_mock_broker_set_up(mc, b)
                                     : rd_kafka_mock_broker_set_down(mc, b);
        if (err)
            return -1;
    }
    return 0;
}

/* One command line; returns 1 to quit. */
static int handle(rd_kafka_mock_cluster_t *mc, int nbrokers, char *line) {
    char cmd[32] = "", name[256] = "";
    long a = 0, b = 0;
    int n = sscanf(line, "%31s %255s %ld", cmd, name, &b);
    a = n >= 2 ? strtol(name, NULL, 10) : 0;
    int rc = -1;
    if (n < 1)
        return 0;
    if (strcmp(cmd, "quit") == 0)
        return 1;
    if (strcmp(cmd, "down") == 0 || strcmp(cmd, "up") == 0) {
        rc = (a < 0 || a > nbrokers) ? -1 : set_brokers(mc, nbrokers, (int)a, cmd[0] == 'u');
    } else if (strcmp(cmd, "rtt") == 0 && n == 3) {
        rc = rd_kafka_mock_broker_set_rtt(mc, (int32_t)a, (int)b) ? -1 : 0;
    } else if (strcmp(cmd, "topic") == 0 && n == 3 && b > 0) {
        rc = rd_kafka_mock_topic_create(mc, name, (int)b, 1) ? -1 : 0;
    } else if (strcmp(cmd, "ensure") == 0 && n == 2) {
        /* As the mock's auto-creation would make it: 4 partitions,
         * min(3, brokers) replicas. */
        rd_kafka_resp_err_t err =
            rd_kafka_mock_topic_create(mc, name, 4, nbrokers < 3 ? nbrokers : 3);
        rc = err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS
                 ? 0
                 : -1;
    }
    printf(rc == 0 ? "ok\n" : "error: %s\n", line);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv) {
    int nbrokers = 3;
    char errstr[512];

    /* librdkafka starts threads: block the signals first so they land here. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--brokers") == 0 && i + 1 < argc)
            nbrokers = atoi(argv[++i]);
    }
    if (nbrokers < 1)
        nbrokers = 1;

    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr));
    /* EB_MOCK_DEBUG=mock (librdkafka's debug contexts): the mock's own
     * decisions (group state, rebalances) on stderr, for debugging a test. */
    const char *debug = getenv("EB_MOCK_DEBUG");
    if (debug && *debug) {
        rd_kafka_conf_set(conf, "debug", debug, errstr, sizeof(errstr));
        rd_kafka_conf_set(conf, "log_level", "7", errstr, sizeof(errstr));
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "eb_mock_kafka: %s\n", errstr);
        return 1;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, nbrokers);
    if (!mc) {
        fprintf(stderr, "eb_mock_kafka: cannot create the mock cluster\n");
        rd_kafka_destroy(rk);
        return 1;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--topic") == 0 && i + 1 < argc) {
            char *spec = argv[++i], *colon = strrchr(spec, ':');
            int parts = colon ? atoi(colon + 1) : 4;
            if (colon)
                *colon = '\0';
            if (rd_kafka_mock_topic_create(mc, spec, parts > 0 ? parts : 4, 1)) {
                fprintf(stderr, "eb_mock_kafka: cannot create topic %s\n", spec);
                return 1;
            }
        }
    }
    for (int i = 1; i < argc; i++) {
        int key, lo, hi;
        if (strcmp(argv[i], "--api-version") == 0 && i + 1 < argc &&
            sscanf(argv[++i], "%d:%d:%d", &key, &lo, &hi) == 3) {
            if (rd_kafka_mock_set_apiversion(mc, (int16_t)key, (int16_t)lo, (int16_t)hi)) {
                fprintf(stderr, "eb_mock_kafka: cannot set the versions of API %d\n", key);
                return 1;
            }
        }
    }
    printf("BOOTSTRAP %s\n", rd_kafka_mock_cluster_bootstraps(mc));
    fflush(stdout);

    int sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
    char buf[4096];
    size_t have = 0;
    for (;;) {
        struct pollfd pfd[2] = {{0, POLLIN, 0}, {sfd, POLLIN, 0}};
        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (pfd[1].revents)
            break;
        if (!pfd[0].revents)
            continue;
        ssize_t r = read(0, buf + have, sizeof(buf) - 1 - have);
        if (r <= 0)
            break;
        have += (size_t)r;
        buf[have] = '\0';
        char *nl;
        int quit = 0;
        while (!quit && (nl = memchr(buf, '\n', have))) {
            *nl = '\0';
            quit = handle(mc, nbrokers, buf);
            size_t used = (size_t)(nl + 1 - buf);
            memmove(buf, nl + 1, have - used);
            have -= used;
        }
        if (quit || have == sizeof(buf) - 1)
            break;
    }
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    close(sfd);
    return 0;
}
