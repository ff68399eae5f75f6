// Small DOM helpers shared by the collaboration panels: build elements without innerHTML (text
// people typed is always set as text, never parsed as markup).

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") el.className = value;
    else if (name === "text") el.textContent = value;
    else if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

let counter = 0;
// Ids for label/aria wiring, unique in the page.
export function uid(prefix) {
  counter += 1;
  return `${prefix}-${counter}`;
}

// A message for a failed request: the server's text, else a generic one.
export function failure(error, what) {
  const detail = error && error.message ? error.message : "please try again";
  return `Could not ${what}: ${detail}`;
}

export function percent(count, total) {
  return total > 0 ? Math.round((count / total) * 100) : 0;
}

// Keep focus where it was when a list is rebuilt or reordered.
export function keepFocus(container, work) {
  const active = document.activeElement;
  const key = active && container.contains(active) ? active.dataset.focusKey : null;
  work();
  if (key) {
    const again = container.querySelector(`[data-focus-key="${CSS.escape(key)}"]`);
    if (again && again !== document.activeElement) again.focus();
  }
}
