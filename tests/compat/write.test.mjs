// Writes through postgrest-js: insert (one, bulk, columns, missing=default),
// upsert (merge and ignore), update, delete, their representations and
// counts, and the errors of constraint violations. Every test works on its
// own `categories` rows (ids from 1000 up), which no read test looks at,
// and removes them again, so the read suites can run beside it.

import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { db, ok, ids, fails, SQLITE } from './helpers.mjs';

const MINE = [1000, 1999];
const mine = () => db.from('categories').select('id, parent_id, name').gte('id', MINE[0]).lte('id', MINE[1]);

after(async () => {
  await db.from('categories').delete().gte('id', MINE[0]).lte('id', MINE[1]);
});

describe('writes', () => {
  test('insert one row and get it back with select', async () => {
    const rows = ok(await db.from('categories').insert({ id: 1001, name: 'Garden' }).select('id, name'), 201);
    assert.deepEqual(rows, [{ id: 1001, name: 'Garden' }]);
    assert.deepEqual(ok(await mine().eq('id', 1001)), [{ id: 1001, parent_id: null, name: 'Garden' }]);
  });

  test('insert without a representation answers 201 and no body', async () => {
    const res = await db.from('categories').insert({ id: 1002, name: 'Toys' });
    assert.equal(res.status, 201);
    assert.equal(res.error, null);
    assert.equal(res.data, null);
  });

  test('bulk insert of rows with different keys (columns=) keeps every row', async () => {
    const rows = ok(
      await db
        .from('categories')
        .insert([
          { id: 1010, name: 'Parent' },
          { id: 1011, name: 'Child', parent_id: 1010 },
          { id: 1012, name: 'Other child', parent_id: 1010 },
        ])
        .select('id, parent_id')
        .order('id'),
      201,
    );
    assert.deepEqual(rows, [
      { id: 1010, parent_id: null },
      { id: 1011, parent_id: 1010 },
      { id: 1012, parent_id: 1010 },
    ]);
  });

  test('a bad row in a bulk insert keeps nothing (409, the constraint named)', async () => {
    const err = fails(
      await db.from('categories').insert([
        { id: 1020, name: 'fine' },
        { id: 1021, name: 'orphan', parent_id: 999999 },
      ]),
      409,
      { code: '23503' },
    );
    assert.ok(JSON.stringify(err).includes('fk_categories_parent') || SQLITE, JSON.stringify(err));
    assert.deepEqual(ok(await mine().in('id', [1020, 1021])), []);
  });

  test('a duplicate key is 409 23505', async () => {
    ok(await db.from('categories').insert({ id: 1030, name: 'Once' }), 201);
    fails(await db.from('categories').insert({ id: 1030, name: 'Twice' }), 409, { code: '23505' });
  });

  test('a NOT NULL violation is 400 23502; an unknown column 400 PGRST204', async () => {
    fails(await db.from('categories').insert({ id: 1031, name: null }), 400, { code: '23502' });
    fails(await db.from('categories').insert({ id: 1032, label: 'x' }), 400, { code: 'PGRST204' });
  });

  test('upsert merges on the primary key, ignoreDuplicates keeps the row', async () => {
    ok(await db.from('categories').insert({ id: 1040, name: 'Before' }), 201);
    const rows = ok(
      await db
        .from('categories')
        .upsert([
          { id: 1040, name: 'After' },
          { id: 1041, name: 'New' },
        ])
        .select('id, name')
        .order('id'),
      201,
    );
    assert.deepEqual(rows, [
      { id: 1040, name: 'After' },
      { id: 1041, name: 'New' },
    ]);
    ok(await db.from('categories').upsert({ id: 1040, name: 'Ignored' }, { ignoreDuplicates: true }), 201);
    assert.deepEqual(ids(ok(await mine().eq('name', 'After'))), [1040]);
  });

  test('update with filters returns the changed rows', async () => {
    ok(
      await db.from('categories').insert([
        { id: 1050, name: 'a' },
        { id: 1051, name: 'b' },
        { id: 1052, name: 'c' },
      ]),
      201,
    );
    const rows = ok(
      await db.from('categories').update({ parent_id: 1050 }).in('id', [1051, 1052]).select('id, parent_id').order('id'),
    );
    assert.deepEqual(rows, [
      { id: 1051, parent_id: 1050 },
      { id: 1052, parent_id: 1050 },
    ]);
    const res = await db.from('categories').update({ name: 'z' }, { count: 'exact' }).eq('id', 1050);
    assert.equal(res.status, 204);
    assert.equal(res.count, 1);
    assert.deepEqual(ok(await mine().eq('id', 1050)), [{ id: 1050, parent_id: null, name: 'z' }]);
  });

  test('delete returns the deleted rows and counts', async () => {
    ok(
      await db.from('categories').insert([
        { id: 1060, name: 'x' },
        { id: 1061, name: 'y' },
      ]),
      201,
    );
    const rows = ok(await db.from('categories').delete().eq('id', 1060).select('id, name'));
    assert.deepEqual(rows, [{ id: 1060, name: 'x' }]);
    const res = await db.from('categories').delete({ count: 'exact' }).eq('id', 1061);
    assert.equal(res.status, 204);
    assert.equal(res.count, 1);
    assert.deepEqual(ok(await mine().in('id', [1060, 1061])), []);
  });

  test('an unfiltered update or delete is refused', async () => {
    fails(await db.from('categories').update({ name: 'all' }), 400, { code: 'DBAPI104' });
    fails(await db.from('categories').delete(), 400, { code: 'DBAPI104' });
  });

  test('single(): one written row as an object', async () => {
    const row = ok(await db.from('categories').insert({ id: 1070, name: 'Solo' }).select('id, name').single(), 201);
    assert.deepEqual(row, { id: 1070, name: 'Solo' });
  });
});
