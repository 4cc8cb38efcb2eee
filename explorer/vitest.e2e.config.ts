import { defineConfig } from "vitest/config";

// The browser tests: a real cachetd --dev with a workload (e2e/setup.ts), Debian's
// Chromium driven by playwright-core (e2e/explorer.e2e.ts). One file, run in order.
export default defineConfig({
  test: {
    include: ["e2e/**/*.e2e.ts"],
    globalSetup: ["e2e/setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 180_000,
    fileParallelism: false,
  },
});
