package dev.expirybridge.orderconsumer;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The command line, with the C consumer's flags and environment variables; a
 * flag wins over its variable. parse() throws Usage for a bad command line
 * (exit status 2).
 */
final class Options {
    static final String HELP = String.join("\n",
        "usage: java -jar order-consumer.jar [options]",
        "",
        "Cancel unpaid orders when their payment timer expires (expiry-bridge events),",
        "and return their stock, in PostgreSQL. A flag wins over its environment variable.",
        "",
        "  -b, --brokers LIST         Kafka bootstrap servers (ORDER_CONSUMER_BROKERS; localhost:9092)",
        "  -g, --group ID             consumer group (ORDER_CONSUMER_GROUP; order-consumer)",
        "  -t, --topic LIST           topics, comma-separated, repeatable",
        "                             (ORDER_CONSUMER_TOPICS; shop.order.payment-timeout)",
        "  -d, --db CONNINFO          PostgreSQL: a postgresql:// URI, key=value conninfo or a",
        "                             jdbc:postgresql: URL (ORDER_CONSUMER_DB; PGPASSWORD is used",
        "                             when it names no password)",
        "  -X KEY=VALUE               Kafka client property for the consumer and the dead-letter",
        "                             producer (repeatable)",
        "      --commit-interval-ms N offset commit interval (default 1000)",
        "      --migrate              apply the schema and exit",
        "  -v, --verbose              log every event",
        "  -h, --help                 this text",
        "",
        "Exit codes: 0 stopped cleanly (SIGTERM/SIGINT) or schema applied; 1 runtime error;",
        "2 bad command line.",
        "");

    static final class Usage extends Exception {
        private static final long serialVersionUID = 1L;

        Usage(String msg) {
            super(msg);
        }
    }

    String brokers;
    String group;
    List<String> topics = new ArrayList<>();
    String db;
    Map<String, String> props = new LinkedHashMap<>();
    long commitIntervalMs = 1000;
    boolean migrate;
    boolean verbose;
    boolean help;

    static Options parse(String[] argv, Map<String, String> env) throws Usage {
        Options o = new Options();
        List<String> topicArgs = new ArrayList<>();
        Args args = new Args(argv);
        for (String a; (a = args.next()) != null; ) {
            switch (a) {
                case "-h": case "--help": o.help = true; break;
                case "-v": case "--verbose": o.verbose = true; break;
                case "--migrate": o.migrate = true; break;
                case "-b": case "--brokers": o.brokers = args.value(a); break;
                case "-g": case "--group": o.group = args.value(a); break;
                case "-t": case "--topic": topicArgs.add(args.value(a)); break;
                case "-d": case "--db": o.db = args.value(a); break;
                case "-X": {
                    String kv = args.value(a);
                    int at = kv.indexOf('=');
                    if (at <= 0) {
                        throw new Usage("-X expects KEY=VALUE, got \"" + kv + "\"");
                    }
                    o.props.put(kv.substring(0, at), kv.substring(at + 1));
                    break;
                }
                case "--commit-interval-ms": {
                    String n = args.value(a);
                    try {
                        o.commitIntervalMs = Long.parseLong(n);
                    } catch (NumberFormatException e) {
                        o.commitIntervalMs = -1;
                    }
                    if (o.commitIntervalMs < 1) {
                        throw new Usage("--commit-interval-ms expects a positive number, got \""
                                        + n + "\"");
                    }
                    break;
                }
                default: throw new Usage("unknown option \"" + a + "\" (see --help)");
            }
            args.noValueLeft(a);
        }
        o.brokers = first(o.brokers, env.get("ORDER_CONSUMER_BROKERS"), "localhost:9092");
        o.group = first(o.group, env.get("ORDER_CONSUMER_GROUP"), "order-consumer");
        o.db = first(o.db, env.get("ORDER_CONSUMER_DB"), "");
        String topics = topicArgs.isEmpty()
            ? first(null, env.get("ORDER_CONSUMER_TOPICS"), "shop.order.payment-timeout")
            : String.join(",", topicArgs);
        for (String t : topics.split(",")) {
            if (!t.isEmpty()) {
                o.topics.add(t);
            }
        }
        if (o.topics.isEmpty() && !o.migrate) {
            throw new Usage("no topic to consume");
        }
        return o;
    }

    /** argv, one option at a time; "--name=value" gives its value inline. */
    private static final class Args {
        private final String[] argv;
        private int next;
        private String inline;

        Args(String[] argv) {
            this.argv = argv;
        }

        String next() {
            if (next >= argv.length) {
                return null;
            }
            String a = argv[next++];
            int eq = a.indexOf('=');
            if (a.startsWith("--") && eq > 0) {
                inline = a.substring(eq + 1);
                return a.substring(0, eq);
            }
            return a;
        }

        String value(String flag) throws Usage {
            if (inline != null) {
                String v = inline;
                inline = null;
                return v;
            }
            if (next >= argv.length) {
                throw new Usage(flag + " expects a value");
            }
            return argv[next++];
        }

        void noValueLeft(String flag) throws Usage {
            if (inline != null) {
                throw new Usage(flag + " takes no value");
            }
        }
    }

    private static String first(String flag, String env, String dflt) {
        if (flag != null) {
            return flag;
        }
        return env != null && !env.isEmpty() ? env : dflt;
    }
}
