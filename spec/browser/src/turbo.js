// The real client: Turbo and turbo-rails' <turbo-cable-stream-source> (which subscribes with
// @rails/actioncable), unmodified from npm. The rest only observes, for the test: when each
// element appears in the page (PUBLISH -> DOM latency) and each source's connected state.
import '@hotwired/turbo-rails';
import './turbo.css';

window.__seen = {};
window.__mutations = 0;

const observer = new MutationObserver((records) => {
  const at = Date.now();
  for (const record of records) {
    window.__mutations += 1;
    for (const node of record.addedNodes) {
      if (node.id && !(node.id in window.__seen)) window.__seen[node.id] = at;
    }
  }
});

// Shows whether each source is connected (turbo-rails sets the `connected` attribute).
function showStates() {
  for (const label of document.querySelectorAll('.state')) {
    const source = document.getElementById(label.dataset.for);
    const connected = source?.hasAttribute('connected');
    label.textContent = connected ? 'connected' : 'not connected';
    label.className = `state ${connected ? 'on' : 'off'}`;
  }
}

// Turbo replaces <body> on a refresh: observe the new one.
function watch() {
  observer.observe(document.body, { subtree: true, childList: true, characterData: true });
  showStates();
}

new MutationObserver(showStates).observe(document.documentElement, { subtree: true, attributeFilter: ['connected'] });
document.addEventListener('turbo:load', watch);
watch();
