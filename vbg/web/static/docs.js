// Renders /openapi.json as a readable page with a curl example per endpoint (offline, no libraries).
"use strict";

function el(tag, text, cls) { const e = document.createElement(tag); if (text) e.textContent = text; if (cls) e.className = cls; return e; }

function schemaFields(spec, op) {
  const content = ((op.requestBody || {}).content || {});
  const media = content["multipart/form-data"] || content["application/json"];
  if (!media) return [];
  let schema = media.schema || {};
  if (schema.$ref) schema = spec.components.schemas[schema.$ref.split("/").pop()];
  const required = new Set(schema.required || []);
  return Object.entries(schema.properties || {}).map(([name, p]) => {
    const file = JSON.stringify(p).includes('"binary"') || JSON.stringify(p).includes("contentMediaType");
    return { name, file, required: required.has(name), description: p.description || "" };
  });
}

function curl(path, method, fields) {
  const parts = [`curl`];
  if (method !== "get" && !fields.length) parts.push(`-X ${method.toUpperCase()}`);
  for (const f of fields) {
    if (f.file) parts.push(`-F ${f.name}=@photo.jpg`);
    else if (f.required) parts.push(`-F ${f.name}=...`);
  }
  parts.push(`http://${location.host}${path}`);
  if (fields.some((f) => f.file)) parts.push("> result.png");
  return parts.join(" ");
}

async function main() {
  const root = document.getElementById("api");
  const spec = await (await fetch("/openapi.json")).json();
  root.replaceChildren(el("p", spec.info.description || "", "muted"));
  for (const [path, methods] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const card = el("section", null, "card");
      card.appendChild(el("h2", `${method.toUpperCase()} ${path}: ${op.summary || ""}`));
      for (const para of (op.description || "").split("\n\n")) card.appendChild(el("p", para));
      const fields = schemaFields(spec, op);
      if (fields.length) {
        const t = el("table");
        const h = t.insertRow(); for (const x of ["field", "kind", ""]) h.appendChild(el("th", x));
        for (const f of fields) {
          const r = t.insertRow();
          r.insertCell().textContent = f.name;
          r.insertCell().textContent = (f.file ? "file" : "text") + (f.required ? ", required" : "");
          r.insertCell().textContent = f.description;
        }
        card.appendChild(t);
      }
      const codes = Object.entries(op.responses || {}).map(([c, r]) => `${c} ${r.description || ""}`).join("; ");
      card.appendChild(el("p", `Responses: ${codes}`, "muted"));
      card.appendChild(el("pre", curl(path, method, fields)));
      root.appendChild(card);
    }
  }
}
main();
