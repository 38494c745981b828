-- W2: the statement dbapi-runtime rendered before f0f6c8c (e.g. at fb4c35a):
-- one json_build_object per row, LIMIT (and OFFSET) bound as parameters
-- (pgbench :lim / :off). JSON keys and filter values are literals here.
\set lim 25
SELECT coalesce(json_agg(json_build_object('id'::text, "t1"."id", 'customer_id'::text, "t1"."customer_id", 'status'::text, "t1"."status", 'total'::text, "t1"."total", 'created_at'::text, "t1"."created_at")), '[]'::json)::text, COUNT(*), NULL FROM (SELECT "t1".* FROM "public"."orders" AS "t1" WHERE ("t1"."status" = 'shipped'::text) AND ("t1"."total" >= 100::numeric) LIMIT :lim) AS "t1";
