// Functions through postgrest-js's rpc(): POST with named arguments, GET
// for functions that do not write, filters and order on set-returning
// functions. SQLite has no functions: a clear 404.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { db, ok, ids, fails, PG, MYSQL, SQLITE } from './helpers.mjs';

describe('rpc', { skip: SQLITE }, () => {
  test('a scalar function by POST and by GET', async () => {
    assert.equal(ok(await db.rpc('add_them', { a: 1, b: 2 })), 3);
    assert.equal(ok(await db.rpc('add_them', { a: 40, b: 2 }, { get: true })), 42);
  });

  test('text arguments are bound, never spliced', async () => {
    const args = MYSQL ? { name: "O'Brien", greeting: 'Hi' } : { name: "O'Brien" };
    const expected = MYSQL ? "Hi, O'Brien!" : "Hello, O'Brien!";
    assert.equal(ok(await db.rpc('greet', args, { get: true })), expected);
  });

  test('unknown function: 404 PGRST202', async () => {
    fails(await db.rpc('no_such_function', {}), 404, { code: 'PGRST202' });
  });

  test('a function that writes cannot be called with GET', async () => {
    const args = { customer_name: 'Nobody', customer_city: null };
    fails(await db.rpc('add_customer', args, { get: true }), 405, { code: '25006' });
  });

  test('set-returning function with select, filters and order', { skip: !PG }, async () => {
    const rows = ok(await db.rpc('orders_of', { customer: 1 }).select('id, status').neq('status', 'pending').order('id'));
    // customer 1's orders: 1 paid, 2 shipped, 12 pending
    assert.deepEqual(rows, [
      { id: 1, status: 'paid' },
      { id: 2, status: 'shipped' },
    ]);
    const embedded = ok(await db.rpc('orders_of', { customer: 2 }).select('id, customers(name)').order('id'));
    assert.deepEqual(embedded, [
      { id: 3, customers: { name: 'bob brown' } },
      { id: 4, customers: { name: 'bob brown' } },
    ]);
  });

  test('single row function: an object; range and count on a set', { skip: !PG }, async () => {
    const row = ok(await db.rpc('order_by_id', { order_id: 3 }).select('id, total'));
    assert.deepEqual(row, { id: 3, total: 9.99 });
    const res = await db.rpc('orders_of', { customer: 1 }, { count: 'exact' }).select('id').order('id').range(0, 0);
    assert.equal(res.status, 206);
    assert.equal(res.count, 3);
    assert.deepEqual(ids(res.data), [1]);
  });

  test('a stored function reading data', { skip: !MYSQL }, async () => {
    // customer 3 has orders 5, 6 and 7
    assert.equal(ok(await db.rpc('order_count', { customer: 3 }, { get: true })), 3);
  });
});

describe('rpc on SQLite', { skip: !SQLITE }, () => {
  test('there are no functions: 404 PGRST202 naming SQLite', async () => {
    const err = fails(await db.rpc('add_them', { a: 1, b: 2 }), 404, { code: 'PGRST202' });
    assert.ok(err.hint.includes('SQLite'), JSON.stringify(err));
  });
});
