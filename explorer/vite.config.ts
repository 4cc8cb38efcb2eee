import { defineConfig } from "vitest/config";

// Built into cachetd and served at /explorer: every asset is local (no CDN), paths are
// relative to /explorer/.
export default defineConfig({
  base: "/explorer/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 400,
  },
  test: {
    include: ["test/**/*.test.ts"],
  },
});
