// The editbot web chat. Every message, button and control goes to POST /api/send as the same text or button press
// the other front-ends send; the engine's answers come back as server-sent events (/api/events).
"use strict";

const $ = (selector) => document.querySelector(selector);
const messages = $("#messages");
const previews = new Map();    // cid -> object URL of a photo this page sent, shown when the server echoes it
const progressItems = new Map(); // request id -> its progress bubble
let pendingPhoto = null;
let head = null;               // the current image, from /api/state
let shownFamily = null;        // the model family whose settings controls the side panel shows
let uploadLimit = Infinity;    // the largest file the server takes, from /api/state

// ---------------------------------------------------------------- sending

async function send(fields, photo = null) {
  const cid = Math.random().toString(36).slice(2);
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  if (photo) {
    form.append("file", photo, photo.name || "pasted.png");
    previews.set(cid, URL.createObjectURL(photo));
  }
  try {
    const response = await fetch(`/api/send?cid=${cid}`, { method: "POST", body: form });
    // Refusals the server explains in the chat (413, a stale button) need nothing more here.
    if (response.status === 401 || response.status === 403) {
      addText((await response.json()).error, "error");
      return false;
    } else if (response.status >= 500) {
      addText("Something went wrong on my side; nothing was changed. Please try again.", "error");
      return false;
    }
    return true;
  } catch (error) {
    addText("Could not reach the server: is editbot still running?", "error");
    return false;
  }
}

function say(text) { return send({ text }); }

function sizeAndLimit(size, limit) {  // as bot/sizes.py: just enough decimals to show the difference
  for (const decimals of [1, 2, 3]) {
    const shown = [size, limit].map((bytes) => `${(bytes / 2 ** 20).toFixed(decimals)} MB`);
    if (shown[0] !== shown[1]) return shown;
  }
  return [`${size} bytes`, `${limit} bytes`];
}

$("#composer").addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = $("#text").value.trim();
  const photo = pendingPhoto;
  if (!text && !photo) return;
  if (photo && photo.size > uploadLimit) {  // refused before uploading it; the message stays in the box
    const [size, most] = sizeAndLimit(photo.size, uploadLimit);
    addText(`That file is ${size}; the most I can take is ${most}. Nothing was sent.`, "bot error");
    return;
  }
  setText("");
  choosePhoto(null);
  // Not delivered: back in the box to send again, unless something new was typed or picked meanwhile.
  if (!(await send({ text }, photo)) && !$("#text").value && !pendingPhoto) {
    setText(text);
    choosePhoto(photo);
  }
});
function setText(value) { $("#text").value = value; fitText(); }
function fitText() {  // the box grows with what is typed (up to its max-height), so all of it can be read
  const box = $("#text");
  box.style.height = "auto";
  box.style.height = `${box.scrollHeight + box.offsetHeight - box.clientHeight}px`;
}
$("#text").addEventListener("input", fitText);
$("#text").addEventListener("keydown", (event) => {
  // Enter sends, unless it confirms a word in an input method (Japanese, Chinese, Korean…): that is typing.
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    $("#composer").requestSubmit();
  }
});

function choosePhoto(file) {
  pendingPhoto = file;
  $("#pending").hidden = !file;
  // The alt text shows the file's name where it is no picture.
  if (file) Object.assign($("#pending img"), { src: URL.createObjectURL(file), alt: file.name });
  $("#text").focus();
}
$("#attach").addEventListener("click", () => $("#file").click());
$("#file").addEventListener("change", () => { choosePhoto($("#file").files[0] || null); $("#file").value = ""; });
$("#unpick").addEventListener("click", () => choosePhoto(null));
document.addEventListener("paste", (event) => {
  const file = [...event.clipboardData.files][0];
  if (file) { event.preventDefault(); choosePhoto(file); }
});
const chat = $("#chat");
chat.addEventListener("dragover", (event) => { event.preventDefault(); $("#drop").hidden = false; });
chat.addEventListener("dragleave", () => { $("#drop").hidden = true; });
chat.addEventListener("drop", (event) => {
  event.preventDefault();
  $("#drop").hidden = true;
  const file = event.dataTransfer.files[0];
  if (file) choosePhoto(file);
});

// ---------------------------------------------------------------- the chat

function add(className) {
  const item = document.createElement("li");
  item.className = className;
  messages.append(item);
  return item;
}

function scrollToEnd() { messages.scrollTop = messages.scrollHeight; }  // the newest message is the one to read

function addText(text, className) {
  const item = add(className);
  item.textContent = text;
  scrollToEnd();
  return item;
}

function addImage(event, note = null) {
  const item = add(`bot image ${event.kind}`);
  item.dataset.node = event.node;
  const link = document.createElement("a");
  link.href = event.url;
  link.target = "_blank";
  const image = document.createElement("img");
  image.src = event.url;
  image.alt = event.caption;
  image.addEventListener("load", scrollToEnd, { once: true });
  link.append(image);
  item.append(link, event.caption);
  if (event.kind === "file") {  // what /file is for: the picture as a file on this computer
    const save = document.createElement("a");
    save.className = "save";
    save.href = event.download;
    save.textContent = "⬇ Download";
    item.append(save);
  }
  if (note) {
    const line = document.createElement("div");
    line.className = "note";
    line.textContent = note;
    item.append(line);
  }
  if (event.buttons && event.buttons.length) {
    const row = document.createElement("div");
    row.className = "buttons";
    for (const button of event.buttons) {
      const element = document.createElement("button");
      element.type = "button";
      element.textContent = button.label;
      element.addEventListener("click", () => send({ action: button.data }));
      row.append(element);
    }
    item.append(row);
  }
}

function showProgress(event) {
  let item = progressItems.get(event.request);
  if (!item) {
    item = add("bot progress");
    item.append(document.createElement("span"), document.createElement("progress"));
    progressItems.set(event.request, item);
  }
  item.firstChild.textContent = event.text;
  const bar = item.lastChild;
  if (event.total) { bar.max = event.total; bar.value = event.step; } else bar.removeAttribute("value");
}

function clearProgress(request) {
  const item = progressItems.get(request);
  if (item) { item.remove(); progressItems.delete(request); }
}

function onEvent(event) {
  switch (event.type) {
    case "user": {
      const item = add("user");
      const preview = previews.get(event.cid);
      if (event.photo && preview) {
        const image = document.createElement("img");
        image.src = preview;
        image.addEventListener("error", () => image.replaceWith("📎 not a picture\n"), { once: true });
        item.append(image);
      } else if (event.photo) item.append("📷 photo\n");
      item.append(event.text);
      break;
    }
    case "text":
      addText(event.text, event.error ? "bot error" : "bot");
      if (event.error) clearProgress(event.request);
      break;
    case "image":
      clearProgress(event.request);
      addImage(event);
      if (event.kind === "node") refresh();
      break;
    case "progress":
      showProgress(event);
      break;
    case "done":
      clearProgress(event.request);
      refresh();
      break;
    case "ready":
      if (!event.replayed && !messages.children.length) greet();
      break;
  }
  scrollToEnd();
}

async function greet() {
  await refreshState();
  if (head) {
    addImage({ kind: "node", node: head.node, url: head.url, caption: "Where you left off.", buttons: [] },
             "Type an instruction to go on; /undo, /redo and the History panel walk your edits.");
    scrollToEnd();
  } else {
    const hello = addText("Hi! Drop or paste a photo (or press 📎), say what to change, like “make it night”, and " +
                          "press Send. /help lists everything.", "bot");
    const row = document.createElement("div");
    row.className = "buttons";
    const sample = document.createElement("button");
    sample.type = "button";
    sample.textContent = "Try it on a sample photo";
    sample.addEventListener("click", trySample);
    row.append(sample);
    hello.append(row);
  }
}

async function trySample() {  // no photo at hand: the bundled one, with an instruction to send or type over
  const response = await fetch("/sample.jpg");
  if (!response.ok) return addText("The sample photo is missing: drop or paste one of yours.", "error");
  choosePhoto(new File([await response.blob()], "sample.jpg", { type: "image/jpeg" }));
  if (!$("#text").value) setText("make it night");
  $("#text").select();
}

function connect() {
  const source = new EventSource("/api/events");  // reconnects by itself, resuming after the last event seen
  // Each (re)connection sends the progress of the edits still running: one a restarted server lost shows no more.
  source.onopen = () => { for (const request of [...progressItems.keys()]) clearProgress(request); };
  source.onmessage = (message) => onEvent(JSON.parse(message.data));
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) addText("Disconnected: reload the page.", "error");
  };
}

// ---------------------------------------------------------------- the side panel

async function refresh() {
  await refreshState();
  if ($("#tree").open) await refreshTree();
}

async function refreshState() {
  const response = await fetch("/api/state");
  if (!response.ok) return;
  const state = await response.json();
  head = state.head;
  uploadLimit = state.upload_limit;
  showCurrent();
  if (state.family !== shownFamily) {
    buildControls(state.controls);
    shownFamily = state.family;
  }
  for (const control of state.controls) {
    const input = document.getElementById(controlId(control));
    const value = state.settings[control.name];
    if (document.activeElement !== input) input.value = control.kind === "text" ? value.trim() : value;
    if (control.kind !== "text") showValue(input);
  }
  if (document.activeElement !== $("#seed")) $("#seed").value = state.settings.seed ?? "";
  $("#seed-random").checked = state.settings.seed === null;
}

function showCurrent() {
  $("#no-image").hidden = !!head;
  $("#slider").hidden = !head;
  $("#download").hidden = !head;
  if (!head) return;
  $("#after").src = head.url;
  $("#slider").classList.toggle("single", !head.parent_url);
  if (head.parent_url) $("#before").src = head.parent_url;
  $("#download").href = head.download;
}

function showValue(input) { input.parentElement.querySelector("output").textContent = input.value; }

const controlId = (control) => control.name.replaceAll("_", "-");  // text_guidance -> #text-guidance

// The controls of the conversation's model family (/api/state): a slider per number, a text box per text setting.
function buildControls(controls) {
  const labels = controls.map((control) => {
    const label = document.createElement("label");
    label.title = control.meaning;
    const input = document.createElement("input");
    input.id = controlId(control);
    if (control.kind === "text") {
      input.type = "text";
      input.placeholder = "none";
      input.addEventListener("change", () => say(`${control.command} ${input.value.trim() || control.clear}`));
      label.append(`${control.label} `, input);
    } else {
      Object.assign(input, { type: "range", min: control.low, max: control.high, step: control.step });
      const output = document.createElement("output");
      output.htmlFor = input.id;
      input.addEventListener("input", () => showValue(input));
      input.addEventListener("change", () => say(`${control.command} ${input.value}`));
      label.append(`${control.label} `, output, input);
    }
    return label;
  });
  $("#controls").replaceChildren(...labels);
}
$("#seed").addEventListener("change", () => {
  const seed = $("#seed").value.trim();
  say(seed ? `/seed ${seed}` : "/seed random");
});
$("#seed-random").addEventListener("change", () => {
  if ($("#seed-random").checked) say("/seed random");
  else say(`/seed ${Math.floor(Math.random() * 2 ** 32)}`);
});
$("#split").addEventListener("input", () => {
  $("#before").style.clipPath = `inset(0 ${100 - $("#split").value}% 0 0)`;
  $("#divider").style.left = `${$("#split").value}%`;
});

async function refreshTree() {
  const response = await fetch("/api/tree");
  if (!response.ok) return;
  const tree = await response.json();
  $("#tree-note").textContent = tree.error || (tree.lines.length ? "Click a step to go there." : "");
  const lines = $("#tree-lines");
  lines.replaceChildren();
  for (const line of tree.lines) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = `${line.label}. ${line.text}`;
    button.classList.toggle("here", line.here);
    button.addEventListener("click", () => say(`/goto ${line.label}`));
    const item = document.createElement("li");
    item.append(button);
    lines.append(item);
  }
  $("#tree-picture").hidden = !tree.picture;
  if (tree.picture) $("#tree-picture").src = tree.picture;
}
$("#tree").addEventListener("toggle", () => { if ($("#tree").open) refreshTree(); });

fitText();  // the placeholder may take two lines on a phone
refreshState();
connect();
