// The grid centre's console in Chromium, end to end: an operator signs in,
// filters the queue, opens the worker's incident and its photo, dispatches
// it and the phone pulls the new status; the department resolves it and is
// denied the centre's pages; the on-time rate changes; the statistics export
// as CSV; district IT sees accounts and devices. Screenshots of the main
// pages go to target/console-screenshots/.
import { test, expect } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { PASSWORD, fieldgrid } from './district.mjs';

const shots = resolve(new URL('.', import.meta.url).pathname, '../../target/console-screenshots');
const url = () => process.env.FIELDGRID_URL;
const incident = () => process.env.FIELDGRID_INCIDENT;

async function signIn(page, user) {
  await page.goto(`${url()}/console/`);
  await expect(page).toHaveURL(/\/console\/login/);
  await page.getByLabel('用户名').fill(user);
  await page.getByLabel('密码').fill(PASSWORD);
  await page.getByRole('button', { name: '登录' }).click();
  await expect(page.getByRole('button', { name: '退出' })).toBeVisible();
}

async function signOut(page) {
  await page.getByRole('button', { name: '退出' }).click();
  await expect(page).toHaveURL(/\/console\/login/);
}

/** The phone's view of the incident: its status after a sync. */
function phoneStatus() {
  const phone = process.env.FIELDGRID_PHONE;
  fieldgrid('device', 'sync', '--store', phone, '--server', url());
  const csv = fieldgrid('device', 'export', '--store', phone, 'incidents').trim().split('\n');
  const header = csv[0].split(',');
  const row = csv.map((l) => l.split(',')).find((r) => r[0] === incident());
  return row[header.indexOf('status')];
}

/** Every visible form control has a label a screen reader announces. */
async function expectLabelled(page) {
  const unlabelled = await page.evaluate(() =>
    [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
      .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
      .map((el) => el.name));
  expect(unlabelled).toEqual([]);
}

/** Text contrast of an element against the page (WCAG AA: 4.5:1). */
async function contrast(locator) {
  return locator.evaluate((el) => {
    const rgb = (s) => s.match(/[\d.]+/g).slice(0, 3).map(Number);
    const lum = ([r, g, b]) => {
      const f = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
      return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    let bgEl = el;
    let bg = getComputedStyle(bgEl).backgroundColor;
    while (bg === 'rgba(0, 0, 0, 0)' && bgEl.parentElement) {
      bgEl = bgEl.parentElement;
      bg = getComputedStyle(bgEl).backgroundColor;
    }
    const [a, b] = [lum(rgb(getComputedStyle(el).color)), lum(rgb(bg))];
    return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  });
}

test('the centre dispatches, the phone sees it, the department resolves, the rate changes', async ({ page }) => {
  // Keyboard only: the sign-in form in tab order, Enter submits.
  await page.goto(`${url()}/console/incidents?status=reported`);
  await expect(page).toHaveURL(/\/console\/login\?next=/);
  await page.screenshot({ path: `${shots}/login.png` });
  await expectLabelled(page);
  await page.keyboard.press('Tab');
  await expect(page.getByLabel('用户名')).toBeFocused();
  await page.keyboard.type('centre');
  await page.keyboard.press('Tab');
  await expect(page.getByLabel('密码')).toBeFocused();
  await page.keyboard.type(PASSWORD);
  await page.keyboard.press('Enter');
  // Back where it was going: the queue, filtered to reported incidents.
  await expect(page).toHaveURL(/\/console\/incidents\?status=reported/);
  await expect(page.getByRole('heading', { name: '事件队列' })).toBeVisible();

  // Filter the queue with the form.
  await page.getByLabel('状态').selectOption({ label: '已上报' });
  await page.getByLabel('类别').selectOption({ label: '燃气管道悬挂物品' });
  await page.getByLabel('街道').selectOption('黄河路街道');
  await page.getByRole('button', { name: '筛选' }).click();
  await expect(page).toHaveURL(/category=gas_pipe_objects/);
  const row = page.getByRole('row').filter({ hasText: '燃气管道悬挂物品' });
  await expect(row).toHaveCount(1);
  await expect(row).toContainText('汇泉第七网格');
  await expectLabelled(page);
  expect(await contrast(page.getByRole('cell').first())).toBeGreaterThanOrEqual(4.5);
  expect(await contrast(page.getByRole('link', { name: '事件队列' }))).toBeGreaterThanOrEqual(4.5);
  await page.screenshot({ path: `${shots}/queue.png`, fullPage: true });

  // The incident: details, the worker's photo, location in GCJ-02.
  await row.getByRole('link').click();
  await expect(page).toHaveURL(new RegExp(`/console/incidents/${incident()}$`));
  await expect(page.getByText('3号楼2单元燃气管道上悬挂衣物')).toBeVisible();
  await expect(page.getByText(/GCJ-02/)).toBeVisible();
  const photo = page.getByRole('img', { name: /现场照片 1/ });
  await expect(photo).toBeVisible();
  expect(await photo.evaluate((img) => img.complete && img.naturalWidth)).toBe(64);
  await expectLabelled(page);
  await page.screenshot({ path: `${shots}/incident.png`, fullPage: true });
  // Open the photo itself.
  const src = await photo.getAttribute('src');
  const shown = await page.request.get(`${url()}${src}`);
  expect(shown.status()).toBe(200);
  expect(shown.headers()['content-type']).toBe('image/png');

  // Statistics before: nothing finished yet.
  await page.goto(`${url()}/console/stats`);
  await expect(page.locator('#on-time-rate')).toHaveText('—');
  // Visit coverage, reached from the statistics.
  await page.getByRole('link', { name: '走访覆盖' }).first().click();
  await expect(page.getByRole('table', { name: '按街道统计' })).toBeVisible();
  await expect(page.getByLabel('走访规则')).toHaveValue('elderly_alone_weekly_call');
  await page.getByLabel('走访规则').selectOption({ label: '独居老人每月走访' });
  await page.getByRole('button', { name: '查看' }).click();
  await expect(page.locator('p.summary')).toContainText('独居老人每月走访');
  await expectLabelled(page);
  await page.screenshot({ path: `${shots}/coverage.png`, fullPage: true });

  // Dispatch to the gas company with the category's default deadline.
  await page.goto(`${url()}/console/incidents/${incident()}`);
  const dispatch = page.locator('form').filter({ has: page.getByRole('button', { name: '交办' }) });
  await dispatch.getByLabel('承办部门').selectOption({ label: '燃气公司' });
  await expect(dispatch.getByLabel('办理期限（北京时间）')).not.toHaveValue('');
  await dispatch.getByLabel('说明').fill('请燃气公司上门处理');
  await dispatch.getByRole('button', { name: '交办' }).click();
  await expect(page.locator('p.status')).toContainText('已交办');
  await expect(page.getByRole('cell', { name: '请燃气公司上门处理' })).toBeVisible();

  // The worker's phone pulls the new status.
  expect(phoneStatus()).toBe('dispatched');
  await signOut(page);

  // The department: its incident, resolved; the centre's pages denied.
  await signIn(page, 'gas');
  await expect(page.getByRole('heading', { name: '本部门事件' })).toBeVisible();
  await page.getByRole('row').filter({ hasText: '燃气管道悬挂物品' }).getByRole('link').click();
  const resolve = page.locator('form').filter({ has: page.getByRole('button', { name: '办结' }) });
  await resolve.getByLabel('说明').fill('已上门拆除悬挂物');
  await resolve.getByLabel(/照片/).setInputFiles(process.env.FIELDGRID_PHOTO);
  await resolve.getByRole('button', { name: '办结' }).click();
  await expect(page.locator('p.status')).toContainText('已办结');
  // The department's photo of its work is on the incident.
  const proof = page.getByRole('img', { name: /办理照片 / });
  await expect(proof).toBeVisible();
  expect(await proof.evaluate((img) => img.complete && img.naturalWidth)).toBe(64);
  await expect(page.getByRole('button', { name: '结案' })).toHaveCount(0);
  const denied = await page.goto(`${url()}/console/stats`);
  expect(denied.status()).toBe(403);
  await expect(page.getByRole('heading', { name: /无权访问/ })).toBeVisible();
  await page.screenshot({ path: `${shots}/denied.png` });
  await page.goto(`${url()}/console/`);
  await signOut(page);
  expect(phoneStatus()).toBe('resolved');

  // The centre: the on-time rate changed; the statistics as CSV.
  await signIn(page, 'centre');
  await page.goto(`${url()}/console/stats`);
  await expect(page.locator('#on-time-rate')).toHaveText('100.0%');
  await page.getByLabel('统计维度').selectOption({ label: '事件类别' });
  await page.getByRole('button', { name: '统计' }).click();
  await expect(page.getByRole('rowheader', { name: '燃气管道悬挂物品' })).toBeVisible();
  await expect(page.getByRole('img', { name: /按期办结率条形图/ })).toBeVisible();
  await expectLabelled(page);
  await page.screenshot({ path: `${shots}/stats.png`, fullPage: true });
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name: '导出 CSV' }).click(),
  ]);
  const csv = readFileSync(await download.path(), 'utf8');
  expect(csv.startsWith('\ufeff事件类别,')).toBe(true);
  expect(csv).toContain('燃气管道悬挂物品,,1,0,0,1,1,100.0%');

  // The map: the incident as a point (no tile service needed).
  await page.goto(`${url()}/console/map`);
  await expect(page.locator('svg circle')).toHaveCount(1);
  await page.screenshot({ path: `${shots}/map.png`, fullPage: true });
  await signOut(page);

  // District IT: accounts and a worker's devices.
  await signIn(page, 'it');
  await expect(page).toHaveURL(/\/console\/accounts$/);
  await page.getByRole('link', { name: 'worker7' }).click();
  await expect(page.getByRole('cell', { name: /立即擦除|无/ }).first()).toBeVisible();
  await expectLabelled(page);
  await page.screenshot({ path: `${shots}/account.png`, fullPage: true });
  await page.goto(`${url()}/console/audit`);
  await expect(page.getByRole('cell', { name: 'dispatched', exact: true })).toBeVisible();
  await page.screenshot({ path: `${shots}/audit.png`, fullPage: true });
});
