/* db.c -- apply one event in one PostgreSQL transaction (see db.h). */
#include "db.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "schema_sql.h" /* generated from migrations/001_schema.sql by CMake */

/* The whole of what an event does, as one statement (so one transaction,
 * one round trip). Data-modifying WITH steps run exactly once and in full,
 * on one snapshot, and each step feeds the next through RETURNING:
 *
 *   1. recorded:  remember the event id. A duplicate inserts no row, so
 *                 steps 2 and 3 find nothing to do: it changes nothing.
 *   2. cancelled: cancel the order only if it is still pending. A paid or
 *                 already cancelled order is left alone. Under concurrency
 *                 (two consumers during a rebalance) the row lock makes the
 *                 second UPDATE re-check status and skip.
 *   3. returned:  put each line's reserved quantity back into stock, only
 *                 for an order that step 2 cancelled.
 *
 * The final SELECT reports what happened; status_before is read on the
 * statement's snapshot, i.e. before step 2, to tell "paid" from "unknown".
 *
 * $1 event id, $2 order id, $3 delivery, $4 topic, $5 partition, $6 offset. */
static const char APPLY_EVENT_SQL[] =
    "WITH recorded AS ("
    "    INSERT INTO processed_events"
    "        (event_id, order_id, delivery, kafka_topic, kafka_partition, kafka_offset)"
    "    VALUES ($1, $2, $3, $4, $5, $6)"
    "    ON CONFLICT (event_id) DO NOTHING"
    "    RETURNING order_id"
    "), cancelled AS ("
    "    UPDATE orders SET status = 'cancelled', cancelled_at = now(), cancelled_by = $1"
    "    WHERE id = (SELECT order_id FROM recorded) AND status = 'pending'"
    "    RETURNING id"
    "), returned AS ("
    "    UPDATE stock SET qty = stock.qty + l.qty"
    "    FROM order_lines l"
    "    WHERE l.order_id = (SELECT id FROM cancelled) AND stock.product_id = l.product_id"
    "    RETURNING l.product_id"
    ")"
    "SELECT (SELECT count(*) FROM recorded),"
    "       (SELECT count(*) FROM cancelled),"
    "       (SELECT count(*) FROM returned),"
    "       (SELECT status FROM orders WHERE id = $2)";

#define APPLY_EVENT_STMT "apply_event"

struct oc_db {
    char *conninfo;
    PGconn *conn;  /* NULL while disconnected */
    bool prepared; /* APPLY_EVENT_STMT exists on conn */
};

const char *oc_outcome_name(enum oc_outcome outcome) {
    switch (outcome) {
    case OC_CANCELLED:
        return "cancelled";
    case OC_NOT_PENDING:
        return "not_pending";
    case OC_UNKNOWN_ORDER:
        return "unknown_order";
    case OC_DUPLICATE:
        return "duplicate";
    }
    return "?";
}

oc_db_t *oc_db_new(const char *conninfo) {
    oc_db_t *db = calloc(1, sizeof(*db));
    if (!db)
        return NULL;
    db->conninfo = strdup(conninfo ? conninfo : "");
    if (!db->conninfo) {
        free(db);
        return NULL;
    }
    return db;
}

static void disconnect(oc_db_t *db) {
    PQfinish(db->conn);
    db->conn = NULL;
    db->prepared = false;
}

void oc_db_destroy(oc_db_t *db) {
    if (!db)
        return;
    disconnect(db);
    free(db->conninfo);
    free(db);
}

/* libpq messages end with a newline; errstr gets one line. */
static int set_error(char *errstr, size_t errstr_size, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errstr, errstr_size, fmt, ap);
    va_end(ap);
    errstr[strcspn(errstr, "\n")] = '\0';
    return -1;
}

/* A failed result: "SQLSTATE message", and drop the connection if it is
 * gone so that the next call reconnects. */
static int result_error(oc_db_t *db, PGresult *res, const char *what, char *errstr,
                        size_t errstr_size) {
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorMessage(res) : "";
    if (!msg[0])
        msg = PQerrorMessage(db->conn);
    set_error(errstr, errstr_size, "%s: %s%s%s", what, state ? state : "", state ? " " : "", msg);
    PQclear(res);
    if (PQstatus(db->conn) != CONNECTION_OK)
        disconnect(db);
    return -1;
}

static int connect_db(oc_db_t *db, char *errstr, size_t errstr_size) {
    if (db->conn)
        return 0;
    /* Later keywords win, and the user's conninfo comes last: these are
     * defaults it can override. connect_timeout: a host that drops packets
     * must not hang the retry loop for the OS's TCP timeout (minutes). */
    const char *const keys[] = {"connect_timeout", "application_name", "dbname", NULL};
    const char *const vals[] = {"10", "order-consumer", db->conninfo, NULL};
    db->conn = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(db->conn) != CONNECTION_OK) {
        set_error(errstr, errstr_size, "connect: %s", PQerrorMessage(db->conn));
        disconnect(db);
        return -1;
    }
    return 0;
}

int oc_db_migrate(oc_db_t *db, char *errstr, size_t errstr_size) {
    if (connect_db(db, errstr, errstr_size) != 0)
        return -1;
    PGresult *res = PQexec(db->conn, (const char *)oc_schema_sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        return result_error(db, res, "migrate", errstr, errstr_size);
    PQclear(res);
    return 0;
}

/* Connect and prepare the statement, once per connection: preparing saves
 * the server a parse and plan per event. */
int oc_db_connect(oc_db_t *db, char *errstr, size_t errstr_size) {
    if (connect_db(db, errstr, errstr_size) != 0)
        return -1;
    if (db->prepared)
        return 0;
    PGresult *res = PQprepare(db->conn, APPLY_EVENT_STMT, APPLY_EVENT_SQL, 0, NULL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        return result_error(db, res, "prepare (did you run --migrate?)", errstr, errstr_size);
    PQclear(res);
    db->prepared = true;
    return 0;
}

int oc_db_apply(oc_db_t *db, const struct oc_event *ev, const struct oc_origin *origin,
                enum oc_outcome *outcome, int *lines_returned, char *errstr, size_t errstr_size) {
    if (oc_db_connect(db, errstr, errstr_size) != 0)
        return -1;

    char order_id[24], partition[16], offset[24];
    snprintf(order_id, sizeof(order_id), "%" PRId64, ev->order_id);
    snprintf(partition, sizeof(partition), "%" PRId32, origin->partition);
    snprintf(offset, sizeof(offset), "%" PRId64, origin->offset);
    const char *params[] = {ev->id, order_id, ev->delivery, origin->topic, partition, offset};

    /* Returns after the server's ReadyForQuery, i.e. after the implicit
     * COMMIT: TUPLES_OK means committed; an error means rolled back (or, if
     * the connection died mid-way, unknown -- see db.h). */
    PGresult *res = PQexecPrepared(db->conn, APPLY_EVENT_STMT, 6, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
        return result_error(db, res, "apply event", errstr, errstr_size);

    bool recorded = strcmp(PQgetvalue(res, 0, 0), "1") == 0;
    bool cancelled = strcmp(PQgetvalue(res, 0, 1), "1") == 0;
    *lines_returned = atoi(PQgetvalue(res, 0, 2));
    bool order_exists = !PQgetisnull(res, 0, 3);
    PQclear(res);

    if (!recorded)
        *outcome = OC_DUPLICATE;
    else if (cancelled)
        *outcome = OC_CANCELLED;
    else if (order_exists)
        *outcome = OC_NOT_PENDING;
    else
        *outcome = OC_UNKNOWN_ORDER;
    return 0;
}
