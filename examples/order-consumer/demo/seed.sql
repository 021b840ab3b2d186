-- seed.sql -- the demo shop: three products, six unpaid orders whose lines
-- reserved stock, and a snapshot of that "before" state for report.sql.
--
-- Run after the schema exists (order-consumer --migrate):
--   psql -X -v ON_ERROR_STOP=1 -d "$ORDER_CONSUMER_DB" -f seed.sql
-- It starts from empty tables each time, so the demo can be run again.
-- Order ids are 1..6: arm one timer per order in Redis,
--   SET laravel_cache:ORDER_CONFIRM:<id> 1 EX <seconds>
-- then pay some (pay.sql) before their timers expire.

BEGIN;

TRUNCATE processed_events, order_lines, orders, stock, products;

INSERT INTO products (id, name) VALUES
    (1, 'espresso machine'),
    (2, 'coffee grinder'),
    (3, 'milk jug');

-- On hand before any order was placed.
INSERT INTO stock (product_id, qty) VALUES (1, 10), (2, 20), (3, 50);

INSERT INTO orders (id) SELECT generate_series(1, 6);  -- all pending

INSERT INTO order_lines (order_id, product_id, qty) VALUES
    (1, 1, 1), (1, 3, 2),
    (2, 2, 1),
    (3, 1, 2), (3, 2, 1),
    (4, 3, 4),
    (5, 1, 1),
    (6, 2, 2), (6, 3, 1);

-- Placing an order reserves its lines: their quantities leave the stock now,
-- and come back only if the order is cancelled.
UPDATE stock SET qty = stock.qty - r.qty
FROM (SELECT product_id, sum(qty) AS qty FROM order_lines GROUP BY product_id) r
WHERE stock.product_id = r.product_id;

-- The "before" picture that report.sql compares against.
DROP TABLE IF EXISTS demo_orders_before, demo_stock_before;
CREATE TABLE demo_orders_before AS SELECT id, status FROM orders;
CREATE TABLE demo_stock_before AS SELECT product_id, qty FROM stock;

COMMIT;
