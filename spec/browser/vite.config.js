// No @vitejs/plugin-react: esbuild's automatic JSX runtime is all this page needs (and keeps the
// install working on npm 10). Two pages: the dashboard (index.html) and the Turbo room (turbo.html).
import { defineConfig } from 'vite';

export default defineConfig({
  base: './',
  esbuild: { jsx: 'automatic' },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    rollupOptions: { input: { index: 'index.html', turbo: 'turbo.html' } },
  },
  logLevel: 'warn',
});
