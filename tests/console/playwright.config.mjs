// The console's browser tests: Debian's Chromium (Playwright's own browser
// downloads are not reachable here), one worker (one server, one story).
import { defineConfig } from '@playwright/test';

export default defineConfig({
  testDir: '.',
  testMatch: '*.spec.mjs',
  outputDir: '../../target/console-test-results',
  globalSetup: './district.mjs',
  workers: 1,
  timeout: 120_000,
  reporter: [['list']],
  use: {
    locale: 'zh-CN',
    timezoneId: 'Asia/Shanghai',
    acceptDownloads: true,
    launchOptions: {
      executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
      // Without the background-networking flags Chromium floods a closed
      // network with refused connections.
      args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync'],
    },
  },
});
