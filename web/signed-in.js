// What every signed-in-only page does first (the dashboard, the organisation page): without a
// session, off to sign in and back; signed out in another tab, the same; and the header's
// "Sign out" button.
//
// Exports requireSignIn(path) -> true when the page may go on, false when it is leaving.
import { isSignedIn, onAuthChange, signOut } from "/api.js";

export function requireSignIn(path) {
  const toSignIn = () => location.replace(`/signin.html?next=${encodeURIComponent(path)}`);
  if (!isSignedIn()) { toSignIn(); return false; }
  let leaving = false;
  // Signed out in another tab: this page has nothing left to show.
  onAuthChange((who) => { if (!who && !isSignedIn() && !leaving) toSignIn(); });
  document.getElementById("sign-out").addEventListener("click", async () => {
    leaving = true;
    await signOut();
    location.assign("/");
  });
  return true;
}
