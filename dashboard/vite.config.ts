/// <reference types="vitest/config" />
// Builds the SPA into the Python package (operator/model_garden/readapi/static), which the read
// API serves; vitest runs the component tests in jsdom with Svelte's browser build.
import { svelte } from '@sveltejs/vite-plugin-svelte';
import tailwindcss from '@tailwindcss/vite';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig(({ mode }) => ({
  root: here,
  base: './',
  plugins: [tailwindcss(), svelte()],
  resolve: mode === 'test' ? { conditions: ['browser'] } : {},
  build: {
    // MODEL_GARDEN_DASHBOARD_OUT lets the rebuild test compare a fresh build with the committed one.
    outDir: process.env.MODEL_GARDEN_DASHBOARD_OUT ?? `${here}../operator/model_garden/readapi/static`,
    emptyOutDir: true,
    assetsDir: 'assets',
    sourcemap: false,
    reportCompressedSize: false,
  },
  test: {
    environment: 'jsdom',
    include: ['src/**/*.test.ts'],
    setupFiles: ['src/test-setup.ts'],
  },
}));
