import { defineConfig } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';

// wasm threads need cross-origin isolation on dev *and* preview servers, else ORT
// silently falls back to one thread.
const isolation = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

export default defineConfig({
  plugins: [svelte()],
  worker: { format: 'es' },
  server: { headers: isolation },
  preview: { headers: isolation },
  optimizeDeps: { exclude: ['onnxruntime-web'] },
});
