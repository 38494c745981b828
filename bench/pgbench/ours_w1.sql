-- W1: the statement dbapi-runtime renders for GET /orders?limit=25&offset=N
-- at 96c1064 (api-runtime/src/sql/read.rs, PostgreSQL dialect, as logged with
-- DBAPI_LOG=sqlx=debug), as a pgbench script. LIMIT is written as a number, OFFSET is bound ($1::bigint).
\set off random(0, 10000)
SELECT coalesce(json_agg(dbapi_row), '[]'::json)::text, COUNT(*), NULL FROM (SELECT "t1"."id" AS "id", "t1"."customer_id" AS "customer_id", "t1"."status" AS "status", "t1"."total" AS "total", "t1"."created_at" AS "created_at" FROM (SELECT "t1".* FROM "public"."orders" AS "t1" LIMIT 25 OFFSET :off) AS "t1") AS dbapi_row;
