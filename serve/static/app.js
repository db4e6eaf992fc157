// The serving page: reads /v1/model, posts captions to /v1/generate (format json), shows every
// stage of every sample low to high, the caption's words as chips whose attention maps overlay
// the refinement stages, the server's one-line error for a bad request, and this page's history.
// Plain DOM code, no framework; untrusted text (captions, errors) only ever goes in textContent.
"use strict";

const state = {
  card: null,          // the model card, or null until it loaded
  history: [],         // {id, caption, seed, n, reply, when}, newest first
  current: null,       // the history entry on show
  pinned: null,        // the token slot clicked, or null
};
const HISTORY_MAX = 30;

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  node.append(...children);
  return node;
}

// ------------------------------------------------------------------------------- the model card

async function loadCard() {
  // the card is a 503 while the model loads: try again until it answers
  for (let attempt = 0; attempt < 120; attempt++) {
    try {
      const res = await fetch("/v1/model");
      if (res.ok) {
        state.card = await res.json();
        showCard(state.card);
        return;
      }
    } catch (err) {
      /* the server may be starting: retry */
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  $("model-info").textContent = "the model card did not load (is the server up?)";
}

function showCard(card) {
  const name = (card.recipe && card.recipe.name) || "model";
  const sizes = card.stages.map((s) => `${s.resolution}px`).join(" → ");
  const attention = card.attention.length
    ? `attention on stage ${card.attention.map((a) => a.stage).join(", ")}`
    : "no attention outputs (export with --attention to see them)";
  $("model-info").textContent = `${name}: ${card.stages.length} stages (${sizes}), ${attention}`;
  if (card.limits && card.limits.max_n) $("count").max = String(card.limits.max_n);
}

const hasAttention = () => Boolean(state.card && state.card.attention.length);

// --------------------------------------------------------------------------------- generating

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = false;
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

function requestBody() {
  const body = {
    captions: [$("caption").value],
    n: Number.parseInt($("count").value || "1", 10),
    stages: "all",
    attention: hasAttention(),
    format: "json",
  };
  const seed = $("seed").value.trim();
  if (seed !== "") body.seed = Number(seed);
  if (Number.isNaN(body.n)) body.n = $("count").value; // the server names the field
  return body;
}

async function generate(event) {
  event.preventDefault();
  clearError();
  const button = $("generate");
  button.disabled = true;
  $("busy").hidden = false;
  try {
    const body = requestBody();
    const res = await fetch("/v1/generate", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    let reply = null;
    try {
      reply = await res.json();
    } catch (err) {
      reply = null;
    }
    if (!res.ok) {
      const message = reply && reply.error ? reply.error : res.statusText;
      const field = reply && reply.field ? ` [${reply.field}]` : "";
      showError(`${res.status}: ${message}${field}`);
      return;
    }
    const entry = {
      id: Date.now() + Math.random(),
      caption: body.captions[0],
      seed: reply.seed,
      n: reply.n,
      reply,
      when: new Date(),
    };
    state.history.unshift(entry);
    state.history.length = Math.min(state.history.length, HISTORY_MAX);
    show(entry);
  } catch (err) {
    showError(`the request failed: ${err.message}`);
  } finally {
    button.disabled = false;
    $("busy").hidden = true;
  }
}

// ---------------------------------------------------------------------------------- showing

const pngSrc = (b64) => `data:image/png;base64,${b64}`;

function show(entry) {
  state.current = entry;
  state.pinned = null;
  renderHistory();
  const result = $("result");
  result.replaceChildren();
  const reply = entry.reply;
  const res = reply.results[0];
  result.append(
    el("p", { class: "note", text: `seed ${reply.seed}, ${reply.n} sample(s), ` +
      `run ${reply.timing ? reply.timing.run_ms.toFixed(1) : "?"} ms ` +
      `(batch of ${reply.batch ? reply.batch.calls.join("+") : "?"} rows)` }),
  );
  for (const warning of reply.warnings || []) {
    result.append(el("p", { class: "warning", text: warning }));
  }
  result.append(chips(res.tokens));
  if (!hasAttention()) {
    result.append(el("p", { class: "note", text: "this model has no attention outputs" }));
  }
  for (const sample of res.samples) result.append(sampleRow(sample));
}

function chips(tokens) {
  const box = el("div", { class: "chips", id: "chips" });
  tokens.forEach((token, slot) => {
    const chip = el("button", {
      type: "button",
      class: token.known ? "chip" : "chip oov",
      text: token.word,
      title: token.known ? `token ${slot}` : `token ${slot}: not in the vocabulary (read as <unk>)`,
      "data-token": String(slot),
    });
    chip.addEventListener("mouseenter", () => overlay(slot));
    chip.addEventListener("focus", () => overlay(slot));
    chip.addEventListener("mouseleave", () => overlay(state.pinned));
    chip.addEventListener("blur", () => overlay(state.pinned));
    chip.addEventListener("click", () => {
      state.pinned = state.pinned === slot ? null : slot;
      for (const c of box.children) c.classList.toggle("active", c === chip && state.pinned !== null);
      overlay(state.pinned);
    });
    box.append(chip);
  });
  return box;
}

function sampleRow(sample) {
  const row = el("div", { class: "sample", "data-sample": String(sample.sample) });
  const maps = new Map((sample.attention || []).map((m) => [m.stage, m]));
  for (const image of sample.images) {       // the reply lists the stages low to high
    const frame = el("div", { class: "frame" });
    frame.append(el("img", {
      class: "stage-image",
      src: pngSrc(image.png),
      alt: `sample ${sample.sample}, stage ${image.stage}, ${image.resolution} px`,
    }));
    const attention = maps.get(image.stage);
    if (attention) {
      const layer = el("img", { class: "overlay", alt: "", hidden: true });
      layer.words = new Map(attention.words.map((w) => [w.token, w]));
      frame.append(layer);
    }
    const label = attention
      ? `stage ${image.stage}: ${image.resolution} px (attention ${attention.resolution} px)`
      : `stage ${image.stage}: ${image.resolution} px`;
    row.append(el("figure", { class: "stage", "data-stage": String(image.stage) },
      frame, el("figcaption", { text: label })));
  }
  return row;
}

// the attention of token slot `slot` over every refinement stage's image (null: none)
function overlay(slot) {
  for (const layer of document.querySelectorAll("#result img.overlay")) {
    const word = slot === null ? undefined : layer.words.get(slot);
    if (word === undefined) {
      layer.hidden = true;
      layer.removeAttribute("src");
      layer.title = "";
    } else {
      layer.src = pngSrc(word.png);
      layer.title = `"${word.word}": max weight ${word.max.toFixed(3)}`;
      layer.hidden = false;
    }
  }
}

// ---------------------------------------------------------------------------------- history

function renderHistory() {
  const list = $("history");
  list.replaceChildren();
  for (const entry of state.history) {
    const button = el("button", { type: "button", text: entry.caption });
    button.addEventListener("click", () => show(entry));
    const meta = el("span", {
      class: "meta",
      text: `seed ${entry.seed} · n ${entry.n} · ${entry.when.toLocaleTimeString()}`,
    });
    list.append(el("li", { class: entry === state.current ? "current" : "" }, button, meta));
  }
}

// ------------------------------------------------------------------------------------ start

document.addEventListener("DOMContentLoaded", () => {
  $("generate-form").addEventListener("submit", generate);
  $("caption").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {   // Enter generates, Shift+Enter a new line
      event.preventDefault();
      $("generate-form").requestSubmit();
    }
  });
  loadCard();
});
