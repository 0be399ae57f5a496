/** Entry: mounts the app. */
import { mount } from 'svelte';
import App from './App.svelte';
import './app.css';
import { installTestHooks } from './lib/clients/quant.ts';

installTestHooks(); // only with ?test-hooks in the URL (e2e tests)

const target = document.getElementById('app');
if (!target) throw new Error('index.html has no #app element');
export default mount(App, { target });
