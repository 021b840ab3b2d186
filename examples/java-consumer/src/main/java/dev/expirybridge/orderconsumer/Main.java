package dev.expirybridge.orderconsumer;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.AuthenticationException;
import org.apache.kafka.common.errors.AuthorizationException;
import org.apache.kafka.common.errors.UnsupportedVersionException;
import org.apache.kafka.common.errors.WakeupException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * order-consumer (Java): when expiry-bridge reports that an order's payment
 * timer expired, cancel the order if it is still unpaid and return its
 * stock, in PostgreSQL. The C consumer's story in Kafka's home ecosystem
 * (README.md explains the guarantees).
 *
 * <p>One message, start to end, on the one thread that polls:
 * <pre>
 *   poll()                    the next messages of our partitions
 *   OrderEvent.parse()        the CloudEvents SDK reads it; a checked event, or why it is malformed
 *   Database.apply()          one transaction: dedup, cancel if pending, return stock
 *     or deadLetter()         malformed: a copy to &lt;topic&gt;.dlq, acknowledged (acks=all)
 *   done.put(offset + 1)      only now may its offset be committed
 * </pre>
 * Offsets are committed every --commit-interval-ms, on partition revoke
 * and before exit, never by the client on its own (enable.auto.commit=false).
 * What can heal (the database, Kafka for a dead letter) is retried for the
 * same message with capped exponential backoff until it works; a message is
 * never skipped. SIGTERM/SIGINT: the JVM's shutdown hook wakes the loop,
 * which stops after the current message, commits and leaves the group; exit
 * 0. A signal during a retry ends the retry without storing that message's
 * offset: it is read again later.
 */
public final class Main {
    private static final Duration POLL = Duration.ofMillis(100);
    // Retry delays: 100 ms doubling to 5 s, as the C consumer.
    private static final long RETRY_FIRST_MS = 100, RETRY_MAX_MS = 5000;

    private final Options opts;
    private final Database db;
    private final Properties consumerProps = new Properties();
    /** Replaced (closed, then created anew) after a client error; see run(). */
    private volatile KafkaConsumer<byte[], byte[]> consumer;
    private final KafkaProducer<byte[], byte[]> dlq;
    private final CountDownLatch stop = new CountDownLatch(1);
    /** Offsets of fully handled messages, not yet committed ("stored"). */
    private final Map<TopicPartition, OffsetAndMetadata> done = new HashMap<>();
    private final Map<String, Long> stats = new LinkedHashMap<>();
    private long lastCommit = System.nanoTime();
    private int dbCommits;

    private Main(Options opts) {
        this.opts = opts;
        this.db = new Database(opts.db);
        for (String k : new String[] {"events", "cancelled", "not_pending", "unknown_order",
                                      "duplicates", "dead_letters", "retries"}) {
            stats.put(k, 0L);
        }
        Properties c = consumerProps;
        // A new group starts at the oldest event; -X may change that, not
        // the settings after it, on which the guarantees rest.
        c.put("auto.offset.reset", "earliest");
        c.putAll(opts.props);
        c.put("bootstrap.servers", opts.brokers);
        c.put("group.id", opts.group);
        c.put("enable.auto.commit", "false");
        consumer = newConsumer();
        Properties p = new Properties();
        p.putAll(opts.props);
        p.put("bootstrap.servers", opts.brokers);
        // Idempotence implies acks=all: acknowledged means every in-sync replica has it.
        p.put("enable.idempotence", "true");
        p.put("acks", "all");
        p.put("request.timeout.ms", "4000");
        p.put("delivery.timeout.ms", "5000");
        dlq = new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer());
    }

    private KafkaConsumer<byte[], byte[]> newConsumer() {
        return new KafkaConsumer<>(consumerProps, new ByteArrayDeserializer(),
                                   new ByteArrayDeserializer());
    }

    // ---- offsets ------------------------------------------------------------

    /** Commit what is done (synchronously on revoke and exit). */
    private void commit(boolean sync, Collection<TopicPartition> only) {
        lastCommit = System.nanoTime();
        Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>(done);
        if (only != null) {
            offsets.keySet().retainAll(only);
        }
        if (offsets.isEmpty()) {
            return;
        }
        done.keySet().removeAll(offsets.keySet());
        try {
            if (sync) {
                consumer.commitSync(offsets);
            } else {
                consumer.commitAsync(offsets, (o, err) -> {
                    if (err != null) {
                        Log.warn("offset commit failed", "error", String.valueOf(err));
                    }
                });
            }
        } catch (WakeupException e) {
            stop.countDown();
            consumer.commitSync(offsets);  // the wakeup is spent: this one runs
        } catch (KafkaException e) {  // e.g. a rebalance in progress: the next owner re-reads
            Log.warn("offset commit failed", "error", String.valueOf(e));
        }
    }

    private final ConsumerRebalanceListener rebalance = new ConsumerRebalanceListener() {
        @Override
        public void onPartitionsAssigned(Collection<TopicPartition> parts) {
            Log.info("partitions assigned", "partitions", names(parts));
        }

        @Override
        public void onPartitionsRevoked(Collection<TopicPartition> parts) {
            Log.info("partitions revoked", "partitions", names(parts));
            commit(true, parts);  // what is done, before another member takes over
        }

        // Kafka clients >= 2.4 (not an @Override on older ones): the
        // partitions are already someone else's; their offsets cannot be
        // committed by us any more, the next owner re-reads those messages.
        @SuppressWarnings("unused")
        public void onPartitionsLost(Collection<TopicPartition> parts) {
            Log.warn("partitions lost", "partitions", names(parts));
            done.keySet().removeAll(parts);
        }
    };

    private static List<String> names(Collection<TopicPartition> parts) {
        List<String> out = new ArrayList<>();
        for (TopicPartition tp : parts) {
            out.add(tp.topic() + "[" + tp.partition() + "]");
        }
        return out;
    }

    // ---- one message ----------------------------------------------------------

    @FunctionalInterface
    private interface Attempt {
        void run() throws Exception;
    }

    /** attempt until it does not throw; false if a stop came first. */
    private boolean retry(Attempt attempt, String what) {
        long delay = RETRY_FIRST_MS;
        for (int n = 1; ; n++) {
            try {
                attempt.run();
                return true;
            } catch (Exception e) {
                long wait = ThreadLocalRandom.current().nextLong(delay / 2, delay + 1);
                stats.merge("retries", 1L, Long::sum);
                Log.warn(what, "error", String.valueOf(e.getMessage()).strip(), "attempt", n,
                         "retry_in_ms", wait);
                try {
                    if (stop.await(wait, TimeUnit.MILLISECONDS)) {
                        return false;
                    }
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    return false;
                }
                delay = Math.min(delay * 2, RETRY_MAX_MS);
            }
        }
    }

    private boolean applyEvent(OrderEvent ev, ConsumerRecord<byte[], byte[]> rec) {
        Database.Result[] result = new Database.Result[1];
        if (!retry(() -> result[0] = db.apply(ev, rec.topic(), rec.partition(), rec.offset()),
                   "database error, will retry")) {
            return false;
        }
        faultAfterDbCommit();
        Database.Outcome outcome = result[0].outcome;
        stats.merge("events", 1L, Long::sum);
        stats.merge(outcome == Database.Outcome.DUPLICATE ? "duplicates"
                    : outcome.name().toLowerCase(), 1L, Long::sum);
        Object[] fields = {"event_id", ev.id, "order_id", ev.orderId, "delivery", ev.delivery,
                           "outcome", outcome.name().toLowerCase(), "lines_returned",
                           result[0].linesReturned};
        if (outcome == Database.Outcome.UNKNOWN_ORDER) {
            Log.warn("event applied", fields);
        } else {
            Log.debug("event applied", fields);
        }
        return true;
    }

    private boolean deadLetter(ConsumerRecord<byte[], byte[]> rec, String reason) {
        Log.warn("malformed event: sending it to the dead-letter topic", "error", reason,
                 "topic", rec.topic(), "partition", rec.partition(), "offset", rec.offset());
        RecordHeaders headers = new RecordHeaders();
        for (Header h : rec.headers()) {  // the original headers first, unchanged
            headers.add(h.key(), h.value());
        }
        headers.add("error", bytes(reason));
        headers.add("original.topic", bytes(rec.topic()));
        headers.add("original.partition", bytes(String.valueOf(rec.partition())));
        headers.add("original.offset", bytes(String.valueOf(rec.offset())));
        ProducerRecord<byte[], byte[]> copy =
            new ProducerRecord<>(rec.topic() + ".dlq", null, rec.key(), rec.value(), headers);
        if (!retry(() -> dlq.send(copy).get(10, TimeUnit.SECONDS),
                   "dead letter not delivered, will retry")) {
            return false;
        }
        stats.merge("dead_letters", 1L, Long::sum);
        return true;
    }

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    /** Handle one message to the end, then mark it done. False if a stop interrupted it. */
    private boolean handle(ConsumerRecord<byte[], byte[]> rec) {
        boolean ok;
        try {
            ok = applyEvent(OrderEvent.parse(rec.headers(), rec.value()), rec);
        } catch (OrderEvent.Malformed e) {
            ok = deadLetter(rec, e.getMessage());
        }
        if (ok) {
            done.put(new TopicPartition(rec.topic(), rec.partition()),
                     new OffsetAndMetadata(rec.offset() + 1));
        }
        return ok;
    }

    /**
     * TEST-ONLY: EB_CONSUMER_FAULT=crash-after-db-commit:N kills the process
     * (SIGKILL) after the N-th database commit, before its offset is stored
     * (tests/e2e/test_consumer_java.py). Never set it in production.
     */
    private void faultAfterDbCommit() {
        String spec = System.getenv().getOrDefault("EB_CONSUMER_FAULT", "");
        if (spec.startsWith("crash-after-db-commit:")
            && ++dbCommits == Integer.parseInt(spec.substring(spec.indexOf(':') + 1))) {
            try {
                new ProcessBuilder("kill", "-KILL", String.valueOf(ProcessHandle.current().pid()))
                    .start().waitFor();
                Thread.sleep(60_000);
            } catch (Exception e) {
                Runtime.getRuntime().halt(137);
            }
        }
    }

    // ---- the loop -------------------------------------------------------------

    /** Errors no retry can heal: wrong credentials or ACLs, a broker too old. */
    private static boolean fatal(KafkaException e) {
        return e instanceof AuthenticationException || e instanceof AuthorizationException
            || e instanceof UnsupportedVersionException;
    }

    private int run() {
        consumer.subscribe(opts.topics, rebalance);
        long errorDelay = RETRY_FIRST_MS;
        while (stop.getCount() > 0) {
            try {
                if (System.nanoTime() - lastCommit >= opts.commitIntervalMs * 1_000_000L) {
                    commit(false, null);
                }
                for (ConsumerRecord<byte[], byte[]> rec : consumer.poll(POLL)) {
                    if (stop.getCount() == 0 || !handle(rec)) {
                        Log.info("left unprocessed: its offset is not committed, it will be "
                                 + "read again", "topic", rec.topic(), "partition",
                                 rec.partition(), "offset", rec.offset());
                        return 0;
                    }
                }
                errorDelay = RETRY_FIRST_MS;
            } catch (WakeupException e) {
                // stop() woke a blocking call: the loop ends.
            } catch (KafkaException e) {
                if (fatal(e)) {
                    Log.error("kafka fatal error", "error", String.valueOf(e));
                    return 1;
                }
                // poll() throws what the client does not retry by itself, and
                // may leave its group membership stuck (e.g. a reply it could
                // not parse): replace the client. What is done is committed
                // if possible; the rest is read again -- duplicates, which the
                // event id makes harmless, never a gap.
                Log.warn("kafka error: replacing the consumer", "error", String.valueOf(e),
                         "retry_in_ms", errorDelay);
                replaceConsumer();
                try {
                    if (stop.await(errorDelay, TimeUnit.MILLISECONDS)) {
                        break;
                    }
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    return 1;
                }
                errorDelay = Math.min(errorDelay * 2, RETRY_MAX_MS);
                consumer = newConsumer();
                consumer.subscribe(opts.topics, rebalance);
            }
        }
        return 0;
    }

    /** Close the current client (leaving the group), committing what is done first. */
    private void replaceConsumer() {
        try {
            commit(true, null);
        } catch (KafkaException e) {
            Log.warn("offset commit failed", "error", String.valueOf(e));
        }
        done.clear();
        try {
            consumer.close(Duration.ofSeconds(5));
        } catch (KafkaException e) {
            Log.warn("consumer close failed", "error", String.valueOf(e));
        }
    }

    private void close() {
        try {
            commit(true, null);
        } catch (KafkaException e) {
            Log.warn("final offset commit failed", "error", String.valueOf(e));
        }
        try {
            consumer.close(Duration.ofSeconds(10));  // serves the final revoke, leaves the group
        } catch (KafkaException e) {
            Log.warn("consumer close failed", "error", String.valueOf(e));
        }
        dlq.close(Duration.ofSeconds(10));
        db.close();
    }

    // ---- main -----------------------------------------------------------------

    public static void main(String[] args) {
        Options opts;
        try {
            opts = Options.parse(args, System.getenv());
        } catch (Options.Usage e) {
            System.err.println("order-consumer: " + e.getMessage());
            System.exit(2);
            return;
        }
        if (opts.help) {
            System.out.print(Options.HELP);
            return;
        }
        Log.setVerbose(opts.verbose);
        // The Kafka client's own log lines (SLF4J): warnings and errors, on
        // stderr, unless -Dorg.slf4j.simpleLogger.defaultLogLevel=... says otherwise.
        if (System.getProperty("org.slf4j.simpleLogger.defaultLogLevel") == null) {
            System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
        }
        System.setProperty("org.slf4j.simpleLogger.logFile", "System.err");
        if (opts.migrate) {
            try (Database db = new Database(opts.db)) {
                db.migrate();
            } catch (Exception e) {
                Log.error("migration failed", "error", String.valueOf(e.getMessage()).strip());
                System.exit(1);
            }
            Log.info("schema is up to date");
            return;
        }

        Main app;
        try {
            app = new Main(opts);
        } catch (KafkaException e) {
            Log.error("cannot create the Kafka clients", "error", String.valueOf(e));
            System.exit(1);
            return;
        }
        // SIGTERM/SIGINT start the JVM's shutdown: the hook wakes the loop,
        // waits for it to finish (commit, leave the group) and ends the
        // process with the loop's exit status (0 when it stopped cleanly).
        Thread loop = Thread.currentThread();
        AtomicBoolean finished = new AtomicBoolean();
        int[] rc = {0};
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            if (finished.get()) {
                return;
            }
            Log.info("stopping", "signal", "SIGTERM or SIGINT");
            app.stop.countDown();
            app.consumer.wakeup();
            try {
                loop.join(60_000);
            } catch (InterruptedException ignored) {
                // halt below
            }
            Runtime.getRuntime().halt(rc[0]);
        }, "order-consumer-shutdown"));

        Log.info("started", "brokers", opts.brokers, "group", opts.group, "topics", opts.topics);
        rc[0] = app.run();
        app.close();
        Log.info("stopped", app.stats.entrySet().stream()
                 .flatMap(e -> java.util.stream.Stream.of(e.getKey(), e.getValue())).toArray());
        finished.set(app.stop.getCount() > 0);  // no signal: main ends the process itself
        if (finished.get()) {
            System.exit(rc[0]);
        }
    }
}
