import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AudientError, resolveSchema, type FieldDef } from '@audient/core';
import { parseCsv, type CsvOptions, type FileRow } from './index.js';

const profileRoot: FieldDef = resolveSchema({
  id: 'profiles',
  name: 'Profiles',
  class: 'profile',
  fieldGroups: ['profile-person-details', 'profile-loyalty-details', 'profile-consents', 'profile-personal-contact-details'],
  fields: { score: { type: 'integer' }, vip: { type: 'boolean' } },
  version: 1,
}).root;

const eventRoot: FieldDef = resolveSchema({
  id: 'events',
  name: 'Events',
  class: 'event',
  fieldGroups: ['event-commerce-details'],
  fields: {},
  version: 1,
}).root;

async function* chunks(text: string, size = 0): AsyncGenerator<Buffer> {
  const bytes = Buffer.from(text, 'utf8');
  if (size === 0) {
    yield bytes;
    return;
  }
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

async function parse(text: string, opts: Partial<CsvOptions> = {}, size = 0): Promise<FileRow[]> {
  const out: FileRow[] = [];
  for await (const row of parseCsv(chunks(text, size), { root: profileRoot, ...opts })) out.push(row);
  return out;
}

/** Rows as `[line, record]` or `[line, reason...]`, to compare whole files at a glance. */
function summary(rows: FileRow[]): Array<[number, unknown]> {
  return rows.map((r) => (r.error ? [r.line, r.error.details.map((d) => d.reason).join(',')] : [r.line, r.record]));
}

const TYPED = [
  'identityMap.email[0].id,person.name.firstName,loyalty.points,consents.marketing.email.val,vip,score,person.birthDate',
  'ann@example.com,Ann,120.5,y,yes,7,1990-02-03',
  'bo@example.com,Bo,,n,FALSE,-3,',
].join('\n');

describe('parseCsv', () => {
  it('turns typed columns into nested records shaped like XDM', async () => {
    assert.deepEqual(await parse(TYPED), [
      {
        line: 2,
        record: {
          identityMap: { email: [{ id: 'ann@example.com' }] },
          person: { name: { firstName: 'Ann' }, birthDate: '1990-02-03' },
          loyalty: { points: 120.5 },
          consents: { marketing: { email: { val: 'y' } } },
          vip: true,
          score: 7,
        },
      },
      {
        line: 3,
        record: {
          identityMap: { email: [{ id: 'bo@example.com' }] },
          person: { name: { firstName: 'Bo' } },
          consents: { marketing: { email: { val: 'n' } } },
          vip: false,
          score: -3,
        },
      },
    ]);
  });

  it('gives the same rows fed 1 byte at a time, with CRLF and a BOM', async () => {
    const text = `\ufeff${TYPED.replace(/\n/g, '\r\n')}\r\n`;
    assert.deepEqual(await parse(text, {}, 1), await parse(TYPED));
  });

  it('keeps multi-byte characters split across chunks', async () => {
    const rows = await parse('person.name.firstName,person.name.lastName\nZoë,北京🎉\n', {}, 1);
    assert.deepEqual(rows, [{ line: 2, record: { person: { name: { firstName: 'Zoë', lastName: '北京🎉' } } } }]);
  });

  it('parses numbers and booleans strictly', async () => {
    const rows = await parse('score,loyalty.points,vip\n12abc,1e3,maybe\n 4 ,.5,1\n4.5,Infinity,0\n');
    assert.equal(rows[0]?.line, 2);
    assert.deepEqual(
      rows[0]?.error?.details.map((d) => [d.path, d.expected, d.received]),
      [
        ['score', 'an integer', '"12abc"'],
        ['vip', 'a boolean (true/false, yes/no, 1/0)', '"maybe"'],
      ],
    );
    assert.match(rows[0]?.error?.message ?? '', /^line 2: column "score": expected an integer, got "12abc" \(and 1 more problem\)$/);
    assert.deepEqual(rows[1], { line: 3, record: { score: 4, loyalty: { points: 0.5 }, vip: true } });
    assert.deepEqual(summary(rows.slice(2)), [[4, 'type,type']]);
  });

  it('leaves paths unknown to the schema as text for the validator', async () => {
    const rows = await parse('person.name.frstName,custom.count\nAnn,12\n');
    assert.deepEqual(rows, [{ line: 2, record: { person: { name: { frstName: 'Ann' } }, custom: { count: '12' } } }]);
  });

  it('fills arrays by index and drops the holes of empty cells', async () => {
    const text = 'productListItems[0].SKU,productListItems[0].quantity,productListItems[1].SKU,productListItems[1].priceTotal\nA,2,B,9.99\n,,C,1\n';
    const rows: FileRow[] = [];
    for await (const r of parseCsv(chunks(text), { root: eventRoot })) rows.push(r);
    assert.deepEqual(rows, [
      { line: 2, record: { productListItems: [{ SKU: 'A', quantity: 2 }, { SKU: 'B', priceTotal: 9.99 }] } },
      { line: 3, record: { productListItems: [{ SKU: 'C', priceTotal: 1 }] } },
    ]);
  });

  it('applies a mapping: renames, constants, unmapped columns', async () => {
    const mapping = {
      columns: { Email: 'identityMap.email[0].id', 'First Name': 'person.name.firstName', Points: 'loyalty.points', Card: 'loyalty.loyaltyID[0]' },
      constants: { 'loyalty.program': 'gold-club', 'identityMap.email[0].primary': true },
    };
    const text = 'Email,First Name,Points,Card\nann@example.com,Ann,10,L-1\n';
    assert.deepEqual(await parse(text, { mapping }), [
      {
        line: 2,
        record: {
          identityMap: { email: [{ id: 'ann@example.com', primary: true }] },
          person: { name: { firstName: 'Ann' } },
          loyalty: { points: 10, loyaltyID: ['L-1'], program: 'gold-club' },
        },
      },
    ]);

    const extra = 'Email,First Name,Points,Card,Notes,Internal\nann@example.com,Ann,10,L-1,hi,x\n';
    await assert.rejects(parse(extra, { mapping }), (err: unknown) => {
      assert.ok(err instanceof AudientError);
      assert.equal(err.code, 'MALFORMED_CSV');
      assert.deepEqual(err.details.map((d) => [d.path, d.reason]), [['Notes', 'unmapped-column'], ['Internal', 'unmapped-column']]);
      return true;
    });
    const rows = await parse(extra, { mapping: { ...mapping, ignoreUnmapped: true } });
    assert.equal(rows.length, 1);
    assert.equal(rows[0]?.record?.['Notes'], undefined);

    await assert.rejects(parse('Email,Points\na@x.com,1\n', { mapping }), /mapped column "First Name" is not in the file's header/);
  });

  it('yields good rows around broken ones, each error with its file line and column', async () => {
    const text = [
      'person.name.firstName,loyalty.points', // 1
      'Ann,1', // 2
      'Bo', // 3: too few columns
      'Cy,2,extra', // 4: too many
      '"Di\nana",3', // 5-6: quoted newline
      'Ed,x"y', // 7: stray quote
      '', // 8: blank
      'Flo,4', // 9
      'Gus,"5', // 10: unterminated quote, swallows the rest
      'Hal,6',
    ].join('\n');
    const rows = await parse(text);
    assert.deepEqual(summary(rows), [
      [2, { person: { name: { firstName: 'Ann' } }, loyalty: { points: 1 } }],
      [3, 'column-count'],
      [4, 'column-count'],
      [5, { person: { name: { firstName: 'Di\nana' } }, loyalty: { points: 3 } }],
      [7, 'quote'],
      [9, { person: { name: { firstName: 'Flo' } }, loyalty: { points: 4 } }],
      [10, 'quote'],
    ]);
    const stray = rows[4];
    assert.equal(stray?.error?.details[0]?.path, 'loyalty.points');
    assert.match(stray?.error?.message ?? '', /^line 7: column "loyalty.points": a quote inside an unquoted field/);
    assert.equal(stray?.raw, 'Ed,x"y');
    assert.match(rows[6]?.error?.message ?? '', /never closed/);
    assert.equal(rows[6]?.raw, 'Gus,"5\nHal,6');
    assert.equal(rows[1]?.raw, 'Bo');
    const lines = (all: FileRow[]): Array<[number, string]> => all.map((r) => [r.line, r.error ? r.error.details[0]?.reason ?? '' : 'ok']);
    assert.deepEqual(lines(await parse(text.replace(/\n/g, '\r\n'), {}, 1)), lines(rows));
  });

  it('keeps line numbers right after quoted fields holding newlines', async () => {
    const text = 'person.name.firstName,person.name.lastName\n"A\nB\nC",x\r\n"D\r\nE",y\nF,z\n';
    assert.deepEqual(
      (await parse(text, {}, 3)).map((r) => [r.line, r.record?.['person']]),
      [
        [2, { name: { firstName: 'A\nB\nC', lastName: 'x' } }],
        [5, { name: { firstName: 'D\r\nE', lastName: 'y' } }],
        [7, { name: { firstName: 'F', lastName: 'z' } }],
      ],
    );
  });

  it('skips an over-long record to the next line and goes on', async () => {
    const text = `person.name.firstName,loyalty.points\nAnn,1\nBo,"${'x'.repeat(5000)}\nCy,3\n`;
    const rows = await parse(text, { maxRecordBytes: 1000 }, 512);
    assert.deepEqual(summary(rows), [
      [2, { person: { name: { firstName: 'Ann' } }, loyalty: { points: 1 } }],
      [3, 'too-large'],
      [4, { person: { name: { firstName: 'Cy' } }, loyalty: { points: 3 } }],
    ]);
    assert.ok((rows[1]?.raw ?? '').startsWith('Bo,"xxx'));
  });

  it('accepts another delimiter', async () => {
    const rows = await parse('person.name.firstName;loyalty.points\nAnn;1,5\n', { delimiter: ';' });
    assert.deepEqual(summary(rows), [[2, 'type']]);
  });

  it('refuses a bad header before any row', async () => {
    const cases: Array<[string, string[]]> = [
      ['a,b,a\n1,2,3\n', ['duplicate-column']],
      ['person..name,x[1001],__proto__.polluted\n1,2,3\n', ['path-syntax', 'path-syntax', 'path-syntax']],
      ['person.name,person.name.firstName\n1,2\n', ['path-conflict']],
      ['items[0],items.x\n1,2\n', ['path-conflict']],
      ['a,,b\n1,2,3\n', ['empty-header']],
    ];
    for (const [text, reasons] of cases) {
      await assert.rejects(parse(text), (err: unknown) => {
        assert.ok(err instanceof AudientError, text);
        assert.equal(err.code, 'MALFORMED_CSV');
        assert.deepEqual(err.details.map((d) => d.reason), reasons, text);
        return true;
      });
    }
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
  });

  it('yields nothing for an empty file', async () => {
    assert.deepEqual(await parse(''), []);
    assert.deepEqual(await parse('\n\n'), []);
  });
});
