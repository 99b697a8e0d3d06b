// A small district for the browser test: the real server (the `fieldgrid`
// binary) on loopback with a SQLite data folder, its accounts made by the
// server's own administration commands, and a grid worker's phone (the
// QA device commands, the real core and sync engine) that reports an
// incident with a photo.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { deflateSync } from 'node:zlib';

export const PASSWORD = 'console test password';
const here = new URL('.', import.meta.url).pathname;
export const BIN = process.env.FIELDGRID_BIN ?? resolve(here, '../../target/debug/fieldgrid');

/** Runs the CLI and returns what it printed. */
export function fieldgrid(...args) {
  return execFileSync(BIN, args, {
    encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FIELDGRID_PASSWORD: PASSWORD },
  });
}

function freePort() {
  return new Promise((ok) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

/** A 64x48 PNG of two colours (a real image for the photo pages). */
function png() {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type), data]);
    const sum = Buffer.alloc(4);
    sum.writeUInt32BE(crc(body));
    return Buffer.concat([len, body, sum]);
  };
  const [w, h] = [64, 48];
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const rows = [];
  for (let y = 0; y < h; y++) {
    rows.push(0);
    for (let x = 0; x < w; x++) rows.push(...(y < h / 2 ? [200, 60, 40] : [40, 90, 160]));
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.from(rows))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

export default async function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'fieldgrid-console-'));
  const data = join(dir, 'server');
  // FIELDGRID_CONSOLE_DATABASE: an empty PostgreSQL database instead of SQLite.
  const database = process.env.FIELDGRID_CONSOLE_DATABASE ? ['--database', process.env.FIELDGRID_CONSOLE_DATABASE] : [];
  const admin = (...args) => fieldgrid('server', '--data', data, ...database, ...args);
  admin('add-grid', '--id', 'grid-7', '--code', '370502-007', '--name', '汇泉第七网格', '--community', '汇泉社区', '--sub-district', '黄河路街道');
  admin('add-worker', '--username', 'worker7', '--grids', 'grid-7');
  admin('add-operator', '--username', 'centre');
  admin('add-department', '--id', 'dept-gas', '--name', '燃气公司');
  admin('add-department-account', '--username', 'gas', '--department', 'dept-gas');
  admin('add-admin', '--username', 'it');

  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const server = spawn(BIN, ['server', '--data', data, ...database, '--listen', `127.0.0.1:${port}`],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  server.stderr.on('data', (d) => { log += d; });
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${url}/v1/health`)).ok) break;
    } catch { /* not listening yet */ }
    if (i > 200 || server.exitCode !== null) throw new Error(`the server did not start:\n${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }

  // The phone: signs in, reports a gas hazard with a photo, syncs.
  const phone = join(dir, 'phone.db');
  const photo = join(dir, 'photo.png');
  writeFileSync(photo, png());
  fieldgrid('device', 'init', '--store', phone);
  fieldgrid('device', 'login', '--store', phone, '--server', url, '--username', 'worker7', '--password', PASSWORD);
  const reported = fieldgrid('device', 'report-incident', '--store', phone, '--grid', 'grid-7', '--category', 'gas_pipe_objects',
    '--description', '3号楼2单元燃气管道上悬挂衣物', '--lat', '37.4563', '--lon', '118.5031', '--photo', photo);
  const incident = reported.match(/reported ([0-9a-f-]{36})/)[1];
  fieldgrid('device', 'sync', '--store', phone, '--server', url);

  process.env.FIELDGRID_URL = url;
  process.env.FIELDGRID_PHONE = phone;
  process.env.FIELDGRID_INCIDENT = incident;
  process.env.FIELDGRID_PHOTO = photo;
  return async () => {
    server.kill('SIGTERM');
  };
}
