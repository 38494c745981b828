-- W2 as one row_to_json per row; the runtime would join the rows.
SELECT row_to_json(r)::text FROM (SELECT "t1".* FROM "public"."orders" AS "t1" WHERE ("t1"."status" = 'shipped'::text) AND ("t1"."total" >= 100::numeric) LIMIT 25) AS r;
