// Singular responses (single / maybeSingle), CSV, stripped nulls and the
// error objects the client receives.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { db, ok, fails, utc, parseCsv } from './helpers.mjs';

describe('single() and maybeSingle()', () => {
  test('single() with one row returns an object', async () => {
    const row = ok(await db.from('orders').select('*').eq('id', 5).single());
    assert.deepEqual(
      { ...row, created_at: utc(row.created_at) },
      {
        id: 5,
        customer_id: 3,
        status: 'paid',
        total: 64.25,
        note: null,
        created_at: '2024-03-03T08:20:00.000Z',
      },
    );
  });

  test('single() with an embed', async () => {
    const row = ok(
      await db
        .from('orders')
        .select('id, customers(name), products(id)')
        .eq('id', 2)
        .single(),
    );
    assert.deepEqual(row, { id: 2, customers: { name: 'Alice Anderson' }, products: [{ id: 3 }] });
  });

  test('single() with zero rows is a 406 with code PGRST116', async () => {
    const res = await db.from('orders').select('id').eq('id', 999).single();
    fails(res, 406, { code: 'PGRST116' });
    assert.match(res.error.details, /0 rows/);
  });

  test('single() with several rows is a 406 with code PGRST116', async () => {
    const res = await db.from('orders').select('id').eq('status', 'shipped').single();
    fails(res, 406, { code: 'PGRST116' });
    assert.match(res.error.details, /3 rows/);
  });

  test('maybeSingle() with one row returns the object', async () => {
    const row = ok(await db.from('customers').select('id,name,city').eq('email', 'chloe@example.org').maybeSingle());
    assert.deepEqual(row, { id: 3, name: 'Chloé Dubois', city: 'Paris' });
  });

  test('maybeSingle() with zero rows returns null without an error', async () => {
    const res = await db.from('customers').select('id').eq('email', 'nobody@example.com').maybeSingle();
    assert.equal(res.error, null);
    assert.equal(res.status, 200);
    assert.equal(res.data, null);
  });

  test('maybeSingle() with several rows is an error with code PGRST116', async () => {
    const res = await db.from('customers').select('id').is('city', null).maybeSingle();
    fails(res, 406, { code: 'PGRST116' });
  });
});

describe('csv()', () => {
  test('header, NULL as an empty field, quoting of double quotes', async () => {
    const res = await db.from('customers').select('id,name,city').in('id', [3, 4, 5]).order('id').csv();
    const body = ok(res);
    assert.equal(typeof body, 'string');
    assert.deepEqual(parseCsv(body), [
      ['id', 'name', 'city'],
      ['3', 'Chloé Dubois', 'Paris'],
      ['4', "Dan O'Neil", 'new york'],
      ['5', 'Eve "Evie" Park', null],
    ]);
    // A value with a double quote must be quoted, its quotes doubled.
    assert.ok(body.includes('"Eve ""Evie"" Park"'), body);
  });

  test('a value with a comma is quoted', async () => {
    const body = ok(await db.from('orders').select('id,status,note').lt('id', 4).order('id').csv());
    assert.deepEqual(parseCsv(body), [
      ['id', 'status', 'note'],
      ['1', 'paid', null],
      ['2', 'shipped', 'gift wrap, please'],
      ['3', 'pending', null],
    ]);
    assert.ok(body.includes('"gift wrap, please"'), body);
  });

  test('an empty result still has the header', async () => {
    const body = ok(await db.from('orders').select('id,status').eq('id', 999).csv());
    assert.deepEqual(parseCsv(body ?? ''), [['id', 'status']]);
  });
});

describe('stripNulls()', () => {
  test('null fields are left out of each row', async () => {
    const rows = ok(await db.from('customers').select('id,city').in('id', [1, 2]).order('id').stripNulls());
    assert.deepEqual(rows, [{ id: 1, city: 'New York' }, { id: 2 }]);
  });
});

describe('errors', () => {
  test('an unknown table is a 404 with code PGRST205', async () => {
    const res = await db.from('nope').select('*');
    fails(res, 404, { code: 'PGRST205', message: 'nope' });
    for (const key of ['code', 'message', 'details', 'hint']) assert.ok(key in res.error, `error has ${key}`);
  });

  test('an unknown column in select is a 400 with code 42703', async () => {
    const res = await db.from('orders').select('id,nope');
    fails(res, 400, { code: '42703', message: 'nope' });
  });

  test('an unknown column in a filter is a 400 with code 42703', async () => {
    const res = await db.from('orders').select('id').eq('nope', 1);
    fails(res, 400, { code: '42703', message: 'nope' });
  });

  test('a malformed select is a 400 with code PGRST100', async () => {
    const res = await db.from('orders').select('id,customers(name');
    fails(res, 400, { code: 'PGRST100' });
  });

  test('throwOnError() throws the error', async () => {
    await assert.rejects(
      async () => {
        await db.from('nope').select('*').throwOnError();
      },
      (err) => err.code === 'PGRST205',
    );
  });
});
