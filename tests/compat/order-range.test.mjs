// Ordering, limits, ranges and counts.
//
// orders (id: total, note):  1: 120.50 NULL             2: 35.00 'gift wrap, please'
//   3: 9.99 NULL              4: 250.00 'customer changed mind (twice)'
//   5: 64.25 NULL             6: 18.75 'Leave at door'   7: 0.00 'free sample'
//   8: 1024.99 NULL           9: 47.10 '100% satisfied'  10: -12.50 'refund: see order #4'
//   11: 35.00 NULL            12: 5.50 'Ünïcödé note ✓'
// Text sorts in code point order on every engine: the PostgreSQL database is
// created with LC_COLLATE "C" (run.sh), the MySQL fixture uses utf8mb4_bin,
// SQLite compares bytes (BINARY).

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { db, ok, ids, fails } from './helpers.mjs';

const orders = (columns = 'id', options) => db.from('orders').select(columns, options);

describe('order', () => {
  test('descending with a tie-breaker', async () => {
    const res = await orders().order('total', { ascending: false }).order('id');
    assert.deepEqual(ids(ok(res)), [8, 4, 1, 5, 9, 2, 11, 6, 3, 12, 7, 10]);
  });

  test('ascending (the default)', async () => {
    const res = await orders().order('total').order('id', { ascending: false });
    assert.deepEqual(ids(ok(res)), [10, 7, 12, 3, 6, 11, 2, 9, 5, 1, 4, 8]);
  });

  test('nullsFirst on an ascending order', async () => {
    const res = await orders().order('note', { ascending: true, nullsFirst: true }).order('id', { ascending: false });
    assert.deepEqual(ids(ok(res)), [11, 8, 5, 3, 1, 9, 6, 4, 7, 2, 10, 12]);
  });

  test('NULLs sort last ascending and first descending by default (as in PostgreSQL)', async () => {
    const asc = await orders().order('note').order('id');
    assert.deepEqual(ids(ok(asc)), [9, 6, 4, 7, 2, 10, 12, 1, 3, 5, 8, 11]);
    const desc = await orders().order('note', { ascending: false }).order('id');
    assert.deepEqual(ids(ok(desc)), [1, 3, 5, 8, 11, 12, 10, 2, 7, 4, 6, 9]);
  });

  test('nullsFirst: false on a descending order', async () => {
    const res = await orders().order('note', { ascending: false, nullsFirst: false }).order('id');
    assert.deepEqual(ids(ok(res)), [12, 10, 2, 7, 4, 6, 9, 1, 3, 5, 8, 11]);
  });

  test('order on a nullable decimal column with nullsFirst', async () => {
    const res = await db.from('products').select('id').order('price', { ascending: false, nullsFirst: true });
    assert.deepEqual(ids(ok(res)), [7, 3, 2, 4, 9, 1, 5, 6, 8]);
  });

  test('order by a JSON path', async () => {
    // ->> gives text: blue, black, indigo, red, white; 5 has a JSON null,
    // 6, 7, 8 have no color (NULL, last when ascending).
    const res = await db.from('products').select('id').order('attrs->>color').order('id');
    assert.deepEqual(ids(ok(res)), [3, 2, 9, 1, 4, 5, 6, 7, 8]);
  });

  test('order inside an embed (referencedTable)', async () => {
    const rows = ok(
      await db
        .from('customers')
        .select('id, orders(id,total)')
        .in('id', [1, 3])
        .order('id')
        .order('total', { referencedTable: 'orders', ascending: false }),
    );
    assert.deepEqual(rows, [
      {
        id: 1,
        orders: [
          { id: 1, total: 120.5 },
          { id: 2, total: 35 },
          { id: 12, total: 5.5 },
        ],
      },
      {
        id: 3,
        orders: [
          { id: 5, total: 64.25 },
          { id: 6, total: 18.75 },
          { id: 7, total: 0 },
        ],
      },
    ]);
  });

  test('order the parents by a column of a to-one embed: order=customers(name)', async () => {
    // names in code point order: Alice Anderson (1), Chloé Dubois (3),
    // Dan O'Neil (4), Eve "Evie" Park (5), bob brown (2)
    const res = await orders('id, customers(name)').order('customers(name)', { ascending: false }).order('id');
    assert.deepEqual(ids(ok(res)), [3, 4, 10, 11, 8, 9, 5, 6, 7, 1, 2, 12]);
  });

  test('an unknown order column is a 400 with code 42703', async () => {
    fails(await orders().order('nope'), 400, { code: '42703', message: 'nope' });
  });
});

describe('limit and range', () => {
  test('limit', async () => {
    assert.deepEqual(ids(ok(await orders().order('id').limit(3))), [1, 2, 3]);
    assert.deepEqual(ids(ok(await orders().order('id', { ascending: false }).limit(2))), [12, 11]);
  });

  test('range(from, to) is inclusive', async () => {
    assert.deepEqual(ids(ok(await orders().order('id').range(2, 4))), [3, 4, 5]);
    assert.deepEqual(ids(ok(await orders().order('id').range(0, 0))), [1]);
  });

  test('range past the end returns what is left', async () => {
    assert.deepEqual(ids(ok(await orders().order('id').range(10, 20))), [11, 12]);
    assert.deepEqual(ids(ok(await orders().order('id').range(20, 25))), []);
  });

  test('range combined with a filter', async () => {
    assert.deepEqual(ids(ok(await orders().eq('status', 'paid').order('id').range(1, 2))), [5, 8]);
  });

  test('a Range request header', async () => {
    const res = await orders().order('id').setHeader('Range-Unit', 'items').setHeader('Range', '1-2');
    assert.deepEqual(ids(ok(res)), [2, 3]);
  });
});

describe('count', () => {
  test("count: 'exact' on the whole result (200)", async () => {
    const res = await orders('id', { count: 'exact' }).eq('status', 'paid').order('id');
    assert.deepEqual(ids(ok(res)), [1, 5, 8, 11]);
    assert.equal(res.count, 4);
  });

  test("count: 'exact' with a range gives 206 Partial Content and the total", async () => {
    const res = await orders('id', { count: 'exact' }).order('id').range(0, 1);
    assert.deepEqual(ids(ok(res, 206)), [1, 2]);
    assert.equal(res.count, 12);
  });

  test("count: 'exact' with limit", async () => {
    const res = await orders('id', { count: 'exact' }).neq('status', 'cancelled').order('id').limit(3);
    assert.deepEqual(ids(ok(res, 206)), [1, 2, 3]);
    assert.equal(res.count, 10);
  });

  test("count: 'exact' of an empty result", async () => {
    const res = await orders('id', { count: 'exact' }).eq('customer_id', 6);
    assert.deepEqual(ok(res), []);
    assert.equal(res.count, 0);
  });

  test("count: 'planned' and 'estimated' give a number", async () => {
    // planned is the planner's estimate (PostgreSQL statistics): only its
    // type is certain. estimated is exact below the max-rows threshold,
    // which a 12-row table is.
    // As for an exact count, a total above the page's rows is a 206.
    const planned = await orders('id', { count: 'planned' }).lt('id', 3).order('id');
    assert.ok(Number.isInteger(planned.count) && planned.count >= 0, `planned count: ${planned.count}`);
    assert.deepEqual(ids(ok(planned, planned.count > 2 ? 206 : 200)), [1, 2]);
    const estimated = await orders('id', { count: 'estimated' }).lt('id', 3).order('id');
    assert.deepEqual(ids(ok(estimated)), [1, 2]);
    assert.equal(estimated.count, 2);
  });

  test('head: true without a count', async () => {
    const res = await orders('id', { head: true }).eq('status', 'pending');
    assert.equal(res.error, null);
    assert.equal(res.status, 200);
    assert.equal(res.data, null);
    assert.equal(res.count, null);
  });

  test('head: true with a count returns no data, just the count', async () => {
    const res = await orders('*', { count: 'exact', head: true }).eq('status', 'pending');
    assert.equal(res.error, null);
    assert.equal(res.status, 200);
    assert.equal(res.data, null);
    assert.equal(res.count, 3);
  });

  test('head: true on a whole table', async () => {
    const res = await db.from('products').select('*', { count: 'exact', head: true });
    assert.equal(res.error, null);
    assert.equal(res.data, null);
    assert.equal(res.count, 9);
  });

  test('an offset past the end with a count is a 416 (PGRST103)', async () => {
    const res = await orders('id', { count: 'exact' }).order('id').range(20, 25);
    fails(res, 416, { code: 'PGRST103' });
  });
});
