// Runs the provenance verifier off the page's thread: a long history means thousands of
// signature checks, and the page stays responsive meanwhile.

import { verifyBundle } from "./verify/index";

self.addEventListener("message", (event: MessageEvent<{ bundle: unknown; genesis: unknown }>) => {
  self.postMessage(verifyBundle(event.data.bundle, event.data.genesis));
});
