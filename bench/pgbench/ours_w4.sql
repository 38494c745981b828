-- W4: the statement dbapi-runtime renders for GET /orders?select=id,total,customers(name)&limit=25
-- at 96c1064 (api-runtime/src/sql/read.rs, PostgreSQL dialect, as logged with
-- DBAPI_LOG=sqlx=debug), as a pgbench script. The embed's JSON key is bound ($1::text) in the runtime, a literal here.
SELECT coalesce(json_agg(dbapi_row), '[]'::json)::text, COUNT(*), NULL FROM (SELECT "t1"."id" AS "id", "t1"."total" AS "total", (SELECT json_build_object('name'::text, "t2"."name") FROM "public"."customers" AS "t2" WHERE "t2"."id" = "t1"."customer_id" LIMIT 1) AS "customers" FROM (SELECT "t1".* FROM "public"."orders" AS "t1" LIMIT 25) AS "t1") AS dbapi_row;
