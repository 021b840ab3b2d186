-- 001_schema.sql -- the tables of the order-timeout consumers (C and Python).
--
-- An order reserves stock when it is placed: its lines' quantities are taken
-- out of `stock` at once. If the order is not paid before its timer expires,
-- the consumer cancels it and puts those quantities back. `processed_events`
-- remembers every event id it has applied, so a second delivery of the same
-- event (a Kafka redelivery, or the bridge's `recovered` copy of a timer it
-- already announced live) changes nothing.
--
-- Idempotent: every object is created IF NOT EXISTS, so applying it again is
-- a no-op; an advisory lock makes consumers that start together apply it one
-- after the other. Applied by `order-consumer --migrate` (the binary embeds
-- this file) or by hand:
--   psql -v ON_ERROR_STOP=1 -f 001_schema.sql "$DATABASE_URL"

BEGIN;

-- Serialise concurrent migrations (released at COMMIT). The key is arbitrary
-- but fixed: any two copies of this file agree on it.
SELECT pg_advisory_xact_lock(727001);

CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer     PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS products (
    id   bigint PRIMARY KEY,
    name text   NOT NULL
);

-- Units on hand, after the reservations of every open order.
CREATE TABLE IF NOT EXISTS stock (
    product_id bigint  PRIMARY KEY REFERENCES products (id),
    qty        integer NOT NULL CHECK (qty >= 0)
);

-- pending -> paid (by the shop) or pending -> cancelled (by the consumer);
-- both are final. The consumer changes only pending orders.
CREATE TABLE IF NOT EXISTS orders (
    id           bigint      PRIMARY KEY,
    status       text        NOT NULL DEFAULT 'pending'
                             CHECK (status IN ('pending', 'paid', 'cancelled')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    cancelled_at timestamptz,
    cancelled_by text        -- id of the event that cancelled it (audit)
);

-- One line per product in an order; qty is what the order reserved.
CREATE TABLE IF NOT EXISTS order_lines (
    order_id   bigint  NOT NULL REFERENCES orders (id),
    product_id bigint  NOT NULL REFERENCES products (id),
    qty        integer NOT NULL CHECK (qty > 0),
    PRIMARY KEY (order_id, product_id)
);

-- The dedup record: one row per event id ever applied, written in the same
-- transaction as the cancellation, so "applied" and "recorded" cannot
-- disagree. No foreign key to orders: an event for an unknown order is
-- recorded too (it changed nothing). The consumer bounds event_id to 200
-- bytes before it gets here, so no event can make this insert fail forever.
CREATE TABLE IF NOT EXISTS processed_events (
    event_id        text        PRIMARY KEY,
    order_id        bigint      NOT NULL,
    delivery        text        NOT NULL,  -- data.delivery as received: live | recovered
    kafka_topic     text        NOT NULL,  -- where the applied copy was read (debugging)
    kafka_partition integer     NOT NULL,
    kafka_offset    bigint      NOT NULL,
    processed_at    timestamptz NOT NULL DEFAULT now()
);

INSERT INTO schema_migrations (version) VALUES (1) ON CONFLICT (version) DO NOTHING;

COMMIT;
