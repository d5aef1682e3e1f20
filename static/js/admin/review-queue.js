// The review queue: pending drawings in a grid, one click or one key each.
//
// A decision is shown at once and sent in the background (POST, JSON, CSRF
// header); the cursor moves on to the next undecided card. When every card
// of the grid is decided the next batch, fetched ahead of time, takes its
// place, so a reviewer never waits for the server. Decisions for one drawing
// are sent in order, so "approve" then "undo" cannot arrive reversed.

import {percent} from "../percent.js";

const root = document.getElementById("review-queue");
const grid = root.querySelector(".review-queue__grid");
const emptyNote = root.querySelector(".review-queue__empty");
const message = root.querySelector(".review-queue__message");
const batchUrl = root.dataset.batchUrl;
const decideUrl = root.dataset.decideUrl;
const batchSize = Number(root.dataset.batchSize) || 24;
const csrfToken = root.dataset.csrfToken;

const KEYS = { a: "approved", r: "rejected" };
const LABELS = { approved: "Approved", rejected: "Rejected", pending: "" };

let cards = [];        // {data, status, element}
let cursor = 0;
let lastId = 0;        // the queue walks forward by id
let prefetched = null; // Promise of the next batch
let exhausted = false;
const undoStack = [];
const chains = new Map(); // drawing id -> Promise of its last decision
const tally = { approved: 0, rejected: 0 };
let pendingCount = Number(root.querySelector('[data-count="pending"]').textContent) || 0;
let decidedHere = 0;   // net decisions taken on this page, to correct the server's count

function show(text, isError = false) {
  message.textContent = text;
  message.classList.toggle("review-queue__message--error", isError);
}

function setCount(name, value) {
  const element = root.querySelector(`[data-count="${name}"]`);
  if (element) element.textContent = String(value);
}

async function fetchBatch(after) {
  const decidedBefore = decidedHere;
  const url = `${batchUrl}?after=${encodeURIComponent(after)}&limit=${batchSize}`;
  const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || `the server answered ${response.status}`);
  return { ...body, decidedBefore };
}

function prefetch() {
  if (prefetched || exhausted) return;
  const after = cards.length ? Math.max(lastId, ...cards.map((c) => c.data.id)) : lastId;
  prefetched = fetchBatch(after).catch((error) => {
    prefetched = null;
    show(`Could not load more drawings: ${error.message}`, true);
    return null;
  });
}

function cardElement(data) {
  const element = document.createElement("article");
  element.className = "rq-card";
  element.setAttribute("role", "gridcell");
  element.tabIndex = -1;
  element.dataset.id = String(data.id);
  const differs = data.label !== data.prediction;
  element.innerHTML = `
    <div class="rq-card__images">
      <div class="rq-card__drawing"></div>
      <img class="rq-card__input" alt="28x28 input" width="56" height="56">
    </div>
    <p class="rq-card__meta">
      <span class="rq-card__label" title="label">${data.label}</span>
      <span class="rq-card__arrow">→</span>
      <span class="rq-card__prediction${differs ? " differs" : ""}" title="prediction">${data.prediction}</span>
      <span class="rq-card__confidence">${percent(data.confidence)}</span>
    </p>
    ${Number.isInteger(data.player_label) ? `<p class="rq-card__player-label">The player says it is a ${data.player_label}</p>` : ""}
    <p class="rq-card__who"></p>
    <p class="rq-card__state" aria-live="polite"></p>
    <div class="rq-card__buttons">
      <button type="button" class="rq-approve" data-decision="approved" title="Approve (A)">Approve</button>
      <button type="button" class="rq-reject" data-decision="rejected" title="Reject (R)">Reject</button>
      <a class="rq-card__open" href="${data.url}" target="_blank" rel="noopener" title="open the drawing">details</a>
    </div>`;
  // The SVG is made on the server from numbers only; the text fields are
  // player input and go in as text.
  element.querySelector(".rq-card__drawing").innerHTML = data.svg || "—";
  const input = element.querySelector(".rq-card__input");
  if (data.input) input.src = data.input; else input.remove();
  element.querySelector(".rq-card__who").textContent =
    [data.player, data.room].filter(Boolean).join(" · ");
  return element;
}

function render(newCards) {
  grid.replaceChildren(...newCards.map((card) => card.element));
}

function loadBatch(batch) {
  cards = batch.drawings.map((data) => ({ data, status: "pending", element: cardElement(data) }));
  for (const card of cards) lastId = Math.max(lastId, card.data.id);
  exhausted = batch.remaining === 0;
  // The server counted before the decisions taken since the batch was asked for.
  pendingCount = batch.pending - (decidedHere - batch.decidedBefore);
  setCount("pending", pendingCount);
  render(cards);
  emptyNote.hidden = cards.length > 0;
  moveTo(0);
}

let loading = false;

async function nextBatch() {
  if (loading) return;
  if (exhausted && !prefetched) {
    cards = [];
    render(cards);
    emptyNote.hidden = false;
    return;
  }
  loading = true;
  try {
    prefetch();
    const batch = await prefetched;
    prefetched = null;
    if (batch) loadBatch(batch);
    if (batch && !exhausted) prefetch();
  } finally {
    loading = false;
  }
}

function moveTo(index) {
  if (!cards.length) return;
  cursor = Math.max(0, Math.min(cards.length - 1, index));
  cards.forEach((card, i) => card.element.classList.toggle("rq-card--cursor", i === cursor));
  cards[cursor].element.focus({ preventScroll: true });
  cards[cursor].element.scrollIntoView({ block: "nearest" });
}

function columns() {
  if (cards.length < 2) return 1;
  const top = cards[0].element.offsetTop;
  const index = cards.findIndex((card) => card.element.offsetTop !== top);
  return index === -1 ? cards.length : index;
}

function paint(card) {
  card.element.dataset.status = card.status;
  card.element.querySelector(".rq-card__state").textContent = LABELS[card.status] || "";
}

function send(id, decision) {
  const previous = chains.get(id) || Promise.resolve();
  const next = previous.then(async () => {
    const response = await fetch(decideUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken, Accept: "application/json" },
      body: JSON.stringify({ id, decision }),
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body.error || `the server answered ${response.status}`);
    return body;
  });
  chains.set(id, next.catch(() => undefined));
  return next;
}

// Moves a card from one status to another on screen and in the tallies.
function setStatus(card, status) {
  if (card.status in tally) tally[card.status] -= 1;
  if (status in tally) tally[status] += 1;
  const change = (card.status === "pending" ? 1 : 0) - (status === "pending" ? 1 : 0);
  decidedHere += change;
  pendingCount -= change;
  setCount("pending", Math.max(pendingCount, 0));
  card.status = status;
  paint(card);
  setCount("approved", tally.approved);
  setCount("rejected", tally.rejected);
}

function decide(index, decision) {
  const card = cards[index];
  if (!card || card.status === decision) return;
  const before = card.status;
  setStatus(card, decision);
  undoStack.push({ card, before });
  send(card.data.id, decision).catch((error) => {
    setStatus(card, before);
    show(`Drawing ${card.data.id} was not saved: ${error.message}`, true);
  });
  const undecided = cards.findIndex((c, i) => i > index && c.status === "pending");
  const anyLeft = cards.some((c) => c.status === "pending");
  if (!anyLeft) {
    // A short pause lets the reviewer see the last decision land.
    setTimeout(() => { if (!cards.some((c) => c.status === "pending")) nextBatch(); }, 200);
  } else {
    moveTo(undecided !== -1 ? undecided : cards.findIndex((c) => c.status === "pending"));
  }
  if (cards.filter((c) => c.status === "pending").length <= cards.length / 2) prefetch();
}

function undo() {
  const last = undoStack.pop();
  if (!last) {
    show("Nothing to undo.");
    return;
  }
  const { card, before } = last;
  if (!cards.includes(card)) {
    // Its batch has gone: bring the card back at the front of this one.
    cards.unshift(card);
    grid.prepend(card.element);
  }
  const undone = card.status;
  setStatus(card, before);
  send(card.data.id, before).catch((error) => {
    setStatus(card, undone);
    show(`Undo of drawing ${card.data.id} failed: ${error.message}`, true);
  });
  emptyNote.hidden = true;
  moveTo(cards.indexOf(card));
  show(before === "pending" ? `Drawing ${card.data.id} is back to pending.`
    : `Drawing ${card.data.id} is ${before} again.`);
}

grid.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-decision]");
  const element = event.target.closest(".rq-card");
  if (!element) return;
  const index = cards.findIndex((card) => card.element === element);
  if (button) decide(index, button.dataset.decision);
  else if (!event.target.closest("a")) moveTo(index);
});

root.addEventListener("click", (event) => {
  const command = event.target.closest("[data-command]");
  if (!command) return;
  if (command.dataset.command === "undo") undo();
  if (command.dataset.command === "next") nextBatch();
  if (command.dataset.command === "restart") {
    lastId = 0;
    exhausted = false;
    prefetched = null;
    nextBatch();
  }
});

document.addEventListener("keydown", (event) => {
  if (event.altKey || event.ctrlKey || event.metaKey) return;
  if (event.target.closest("input, select, textarea")) return;
  const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
  const moves = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -columns(), ArrowDown: columns() };
  if (key in moves) {
    moveTo(cursor + moves[key]);
  } else if (key in KEYS) {
    decide(cursor, KEYS[key]);
  } else if (key === "u") {
    undo();
  } else if (key === "n") {
    nextBatch();
  } else {
    return;
  }
  event.preventDefault();
});

nextBatch().catch((error) => show(`Could not load the queue: ${error.message}`, true));
