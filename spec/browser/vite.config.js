// No @vitejs/plugin-react: esbuild's automatic JSX runtime is all this page needs (and keeps the
// install working on npm 10).
import { defineConfig } from 'vite';

export default defineConfig({
  base: './',
  esbuild: { jsx: 'automatic' },
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: false },
  logLevel: 'warn',
});
