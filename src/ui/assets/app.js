// Placeholder: replaced by the real page's script.
"use strict";
fetch("/api/session").then((r) => r.json()).then((s) => {
  const p = document.createElement("p");
  p.textContent = s.authenticated ? "signed in" : "not signed in";
  document.getElementById("app").appendChild(p);
});
