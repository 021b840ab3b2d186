package dev.expirybridge.orderconsumer;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;

/**
 * One JSON object per line on stderr, the C consumer's shape:
 * {"ts":"2026-11-24T03:40:00.123Z","level":"info","msg":"started",...}.
 * Debug lines only with --verbose. Thread-safe (one line is one write).
 */
final class Log {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final DateTimeFormatter TS =
        DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss.SSS'Z'").withZone(ZoneOffset.UTC);
    private static final PrintStream ERR =
        new PrintStream(System.err, true, StandardCharsets.UTF_8);
    private static volatile boolean verbose;

    private Log() {}

    static void setVerbose(boolean on) {
        verbose = on;
    }

    static void debug(String msg, Object... fields) {
        if (verbose) {
            write("debug", msg, fields);
        }
    }

    static void info(String msg, Object... fields) {
        write("info", msg, fields);
    }

    static void warn(String msg, Object... fields) {
        write("warn", msg, fields);
    }

    static void error(String msg, Object... fields) {
        write("error", msg, fields);
    }

    /** fields: name, value, name, value, ... (values: anything Jackson writes). */
    private static void write(String level, String msg, Object... fields) {
        ObjectNode o = JSON.createObjectNode();
        o.put("ts", TS.format(Instant.now()));
        o.put("level", level);
        o.put("msg", msg);
        for (int i = 0; i + 1 < fields.length; i += 2) {
            o.set((String) fields[i], JSON.valueToTree(fields[i + 1]));
        }
        String line;
        try {
            line = JSON.writeValueAsString(o);
        } catch (Exception e) {
            line = "{\"level\":\"error\",\"msg\":\"cannot write a log line\"}";
        }
        synchronized (ERR) {
            ERR.println(line);
        }
    }
}
