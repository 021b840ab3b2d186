-- pay.sql -- the shop marks orders paid (their Redis timers are deleted too,
-- by the caller: DEL laravel_cache:ORDER_CONFIRM:<id>).
--   psql -X -v ON_ERROR_STOP=1 -v ids=2,5 -d "$ORDER_CONSUMER_DB" -f pay.sql
-- Only pending orders can be paid; the ids that were are printed.
UPDATE orders SET status = 'paid'
WHERE id = ANY (string_to_array(:'ids', ',')::bigint[]) AND status = 'pending'
RETURNING id AS paid;
