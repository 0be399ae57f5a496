/** Entry: mounts the app. */
import { mount } from 'svelte';
import App from './App.svelte';
import './app.css';
import { installTestHooks } from './lib/clients/quant.ts';
import { registerServiceWorker } from './pwa.ts';

installTestHooks(); // only with ?test-hooks in the URL (e2e tests)
registerServiceWorker(); // offline use after the first visit (a no-op in `npm run dev`)

const target = document.getElementById('app');
if (!target) throw new Error('index.html has no #app element');
export default mount(App, { target });
