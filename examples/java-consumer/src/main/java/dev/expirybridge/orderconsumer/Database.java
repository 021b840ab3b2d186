package dev.expirybridge.orderconsumer;

import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Properties;

/**
 * PostgreSQL through JDBC: one connection, opened lazily and again after it
 * was lost; one statement (= one transaction) per event, the very statement
 * of the C and Python consumers. Any SQLException leaves nothing half-done:
 * a retry is always safe (a retry after a commit whose answer was lost is a
 * duplicate, which the event id turns into a no-op).
 */
final class Database implements AutoCloseable {
    enum Outcome { CANCELLED, NOT_PENDING, UNKNOWN_ORDER, DUPLICATE }

    static final class Result {
        final Outcome outcome;
        final int linesReturned;

        Result(Outcome outcome, int linesReturned) {
            this.outcome = outcome;
            this.linesReturned = linesReturned;
        }
    }

    // One statement = one transaction (see ../order-consumer/db.c for each step).
    private static final String APPLY_EVENT_SQL = String.join("\n",
        "WITH recorded AS (              -- 1. remember the event id; a duplicate inserts nothing",
        "    INSERT INTO processed_events",
        "        (event_id, order_id, delivery, kafka_topic, kafka_partition, kafka_offset)",
        "    VALUES (?, ?, ?, ?, ?, ?)",
        "    ON CONFLICT (event_id) DO NOTHING",
        "    RETURNING order_id",
        "), cancelled AS (               -- 2. cancel the order only if it is still pending",
        "    UPDATE orders SET status = 'cancelled', cancelled_at = now(), cancelled_by = ?",
        "    WHERE id = (SELECT order_id FROM recorded) AND status = 'pending'",
        "    RETURNING id",
        "), returned AS (                -- 3. put each line's quantity back into stock",
        "    UPDATE stock SET qty = stock.qty + l.qty",
        "    FROM order_lines l",
        "    WHERE l.order_id = (SELECT id FROM cancelled) AND stock.product_id = l.product_id",
        "    RETURNING l.product_id",
        ")",
        "SELECT (SELECT count(*) FROM recorded), (SELECT count(*) FROM cancelled),",
        "       (SELECT count(*) FROM returned), (SELECT status FROM orders WHERE id = ?)");

    private final String url;
    private final Properties props;
    private Connection conn;

    Database(String conninfo) {
        this.props = new Properties();
        this.url = jdbcUrl(conninfo, props);
        props.setProperty("ApplicationName", "order-consumer-java");
        props.putIfAbsent("connectTimeout", "10");
        String pw = System.getenv("PGPASSWORD");
        if (!props.containsKey("password") && pw != null && !pw.isEmpty()) {
            props.setProperty("password", pw);
        }
    }

    /**
     * A JDBC URL for a libpq conninfo: "postgresql://user:pw@host:port/db?k=v",
     * "host=... port=... dbname=... user=... password=... sslmode=...", or a
     * "jdbc:postgresql:" URL as it is. user and password go to props.
     */
    static String jdbcUrl(String conninfo, Properties props) {
        String c = conninfo.trim();
        if (c.startsWith("jdbc:")) {
            return c;
        }
        String host = "localhost", port = "5432", db = null;
        Map<String, String> params = new LinkedHashMap<>();
        if (c.startsWith("postgresql://") || c.startsWith("postgres://")) {
            URI u = URI.create(c);
            if (u.getRawUserInfo() != null) {
                String[] up = u.getRawUserInfo().split(":", 2);
                props.setProperty("user", decode(up[0]));
                if (up.length == 2) {
                    props.setProperty("password", decode(up[1]));
                }
            }
            if (u.getHost() != null) {
                host = u.getHost();
            }
            if (u.getPort() > 0) {
                port = String.valueOf(u.getPort());
            }
            if (u.getRawPath() != null && u.getRawPath().length() > 1) {
                db = decode(u.getRawPath().substring(1));
            }
            if (u.getRawQuery() != null) {
                for (String kv : u.getRawQuery().split("&")) {
                    String[] p = kv.split("=", 2);
                    params.put(decode(p[0]), p.length == 2 ? decode(p[1]) : "");
                }
            }
        } else if (!c.isEmpty()) {
            for (String kv : c.split("\\s+")) {
                String[] p = kv.split("=", 2);
                params.put(p[0], p.length == 2 ? p[1].replaceAll("^'(.*)'$", "$1") : "");
            }
        }
        host = params.getOrDefault("host", host);
        port = params.getOrDefault("port", port);
        db = params.getOrDefault("dbname", db);
        for (String k : new String[] {"user", "password"}) {
            if (params.containsKey(k)) {
                props.setProperty(k, params.get(k));
            }
        }
        if (params.containsKey("sslmode")) {
            props.setProperty("sslmode", params.get("sslmode"));
        }
        if (params.containsKey("connect_timeout")) {
            props.setProperty("connectTimeout", params.get("connect_timeout"));
        }
        if (!props.containsKey("user")) {
            props.setProperty("user", System.getenv().getOrDefault("PGUSER",
                                                                    System.getProperty("user.name")));
        }
        if (db == null) {
            db = props.getProperty("user");
        }
        return "jdbc:postgresql://" + (host.contains(":") ? "[" + host + "]" : host) + ":" + port
            + "/" + db;
    }

    private static String decode(String s) {
        return URLDecoder.decode(s.replace("+", "%2B"), StandardCharsets.UTF_8);
    }

    private Connection connect() throws SQLException {
        if (conn == null || conn.isClosed()) {
            conn = DriverManager.getConnection(url, props);
            conn.setAutoCommit(true);  // one statement = one transaction
        }
        return conn;
    }

    /** Applies migrations/001_schema.sql (idempotent, carried in the jar). */
    void migrate() throws SQLException, IOException {
        String sql;
        try (InputStream in = Database.class.getResourceAsStream("/migrations/001_schema.sql")) {
            if (in == null) {
                throw new IOException("migrations/001_schema.sql is not in the jar");
            }
            sql = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
        try (Statement st = connect().createStatement()) {
            st.execute(sql);
        }
    }

    /** Applies one event in one transaction; throws SQLException on any failure. */
    Result apply(OrderEvent ev, String topic, int partition, long offset) throws SQLException {
        try (PreparedStatement st = connect().prepareStatement(APPLY_EVENT_SQL)) {
            st.setString(1, ev.id);
            st.setLong(2, ev.orderId);
            st.setString(3, ev.delivery);
            st.setString(4, topic);
            st.setInt(5, partition);
            st.setLong(6, offset);
            st.setString(7, ev.id);
            st.setLong(8, ev.orderId);
            try (ResultSet rs = st.executeQuery()) {
                rs.next();
                long recorded = rs.getLong(1), cancelled = rs.getLong(2);
                int lines = (int) rs.getLong(3);
                String statusBefore = rs.getString(4);
                if (recorded == 0) {
                    return new Result(Outcome.DUPLICATE, 0);
                }
                if (cancelled > 0) {
                    return new Result(Outcome.CANCELLED, lines);
                }
                return new Result(statusBefore != null ? Outcome.NOT_PENDING : Outcome.UNKNOWN_ORDER, 0);
            }
        } catch (SQLException e) {
            dropBrokenConnection();
            throw e;
        }
    }

    private void dropBrokenConnection() {
        try {
            if (conn != null && !conn.isValid(1)) {
                conn.close();
                conn = null;
            }
        } catch (SQLException ignored) {
            conn = null;
        }
    }

    @Override
    public void close() {
        try {
            if (conn != null) {
                conn.close();
            }
        } catch (SQLException ignored) {
            // closing anyway
        }
        conn = null;
    }
}
