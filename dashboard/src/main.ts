import './app.css';
import { mount } from 'svelte';
import App from './App.svelte';
import { captureToken } from './lib/auth';

captureToken();
mount(App, { target: document.getElementById('app')! });
