-- report.sql -- the demo's before/after tables: every order, every product's
-- stock, and the check that the stock balances exactly.
--   psql -X -P pager=off -d "$ORDER_CONSUMER_DB" -f report.sql
-- "Before" is the snapshot seed.sql took (all orders pending, stock reserved).

\echo
\echo 'Orders'
SELECT o.id AS "order",
       b.status AS before,
       o.status AS after,
       string_agg(l.qty || ' x ' || p.name, ', ' ORDER BY p.id) AS lines,
       CASE o.status WHEN 'cancelled' THEN 'timer expired unpaid: stock returned'
                     WHEN 'paid' THEN 'paid in time: keeps its stock'
                     ELSE 'still waiting' END AS what_happened
FROM orders o
JOIN demo_orders_before b USING (id)
JOIN order_lines l ON l.order_id = o.id
JOIN products p ON p.id = l.product_id
GROUP BY o.id, b.status, o.status
ORDER BY o.id;

\echo 'Stock'
-- balance: what came back must be exactly what the cancelled orders held.
SELECT p.name AS product,
       b.qty AS before,
       s.qty AS after,
       s.qty - b.qty AS returned,
       coalesce(c.qty, 0) AS held_by_cancelled_orders,
       CASE WHEN s.qty - b.qty = coalesce(c.qty, 0) THEN 'ok' ELSE 'MISMATCH' END AS balance
FROM products p
JOIN stock s ON s.product_id = p.id
JOIN demo_stock_before b ON b.product_id = p.id
LEFT JOIN (SELECT l.product_id, sum(l.qty) AS qty
           FROM order_lines l JOIN orders o ON o.id = l.order_id
           WHERE o.status = 'cancelled'
           GROUP BY l.product_id) c ON c.product_id = p.id
ORDER BY p.id;

\echo 'Events applied (one row per event id: a redelivery adds none)'
SELECT event_id, order_id, delivery, processed_at::time(3) AS at
FROM processed_events
ORDER BY processed_at, order_id;
