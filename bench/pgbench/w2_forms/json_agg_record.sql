-- W2 as dbapi-runtime builds it: one whole-row json_agg over the page (PostgREST's form).
SELECT coalesce(json_agg(r), '[]'::json)::text, COUNT(*), NULL FROM (SELECT "t1".* FROM "public"."orders" AS "t1" WHERE ("t1"."status" = 'shipped'::text) AND ("t1"."total" >= 100::numeric) LIMIT 25) AS r;
