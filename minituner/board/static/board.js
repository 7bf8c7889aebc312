// The board's page: every label from /api/setup's table (locales.py), every option from the registry,
// every check by the server (the command's own); the run's curve from its server-sent events.
"use strict";
const $ = (id) => document.getElementById(id);
const S = { setup: null, lang: localStorage.getItem("lang") || "en", data: null, run: null, source: null,
            losses: [], evals: [] };
const COLOURS = ["#2a6", "#c33", "#36c", "#c80", "#83c", "#099"];

const t = (key) => S.setup.labels[key][S.lang];
function labels() {
  document.documentElement.lang = S.lang === "zh" ? "zh-CN" : "en";
  for (const el of document.querySelectorAll("[data-label]")) el.textContent = t(el.dataset.label);
  $("preset").options[0].text = t("preset_full");
  $("preset").options[1].text = t("preset_smoke");
  $("adapter").options[0].text = t("base_only");
  if (S.run) { $("run-status").textContent = t(S.run.status); showTest(); }
  listRuns();
}

async function api(path, body) {
  const init = body === undefined ? {} : body instanceof FormData ? { method: "POST", body }
    : { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  const response = await fetch(path, init);
  const out = await response.json();
  if (!response.ok) throw new Error(out.error);
  return out;
}

function field(option, into) {
  const label = document.createElement("label");
  const input = document.createElement(option.choices ? "select" : "input");
  if (option.choices) for (const c of option.choices) input.add(new Option(c, c));
  if (option.switch) { input.type = "checkbox"; input.checked = option.default === "True"; }
  else { input.value = option.default; input.placeholder = option.default === "" ? "default" : ""; }
  input.name = option.name;
  input.id = "opt-" + option.name;
  input.addEventListener("change", check);
  label.title = option.help;
  label.append(option.flag, input);
  const help = document.createElement("small");
  help.textContent = option.help + (option.domain ? " — " + option.domain : "");
  label.append(help);
  into.append(label);
}

function values(box) {
  const out = {};
  for (const el of box.querySelectorAll("input, select")) out[el.name] = el.type === "checkbox" ? el.checked : el.value;
  return out;
}

function methodOptions() {
  $("options").replaceChildren();
  for (const o of S.setup.methods.find((m) => m.key === $("method").value).options) field(o, $("options"));
}

function preset() {
  const chosen = S.setup.presets[$("preset").value];
  for (const o of S.setup.training) {
    const el = $("opt-" + o.name);
    if (!o.switch) el.value = o.name in chosen ? chosen[o.name] : o.default;
  }
  check();
}

const form = () => ({ method: $("method").value, data: S.data, training: values($("training")), options: values($("options")) });

let pending = null;
async function check() {
  const mine = pending = {};
  try {
    const c = await api("/api/check", form());
    if (mine !== pending) return;  // a newer check is on its way
    $("form-error").textContent = "";
    $("command").textContent = c.command;
    $("opt-lr").placeholder = c.lr;  // the method's own rate, used when the field is empty
    $("trainable").textContent = `${c.trainable.toLocaleString()} / ${c.total.toLocaleString()} (${(100 * c.trainable / c.total).toFixed(2)}%)`;
    const bytes = c.memory && Object.values(c.memory).reduce((a, b) => a + b, 0);
    $("memory").textContent = c.memory ? `${(bytes / 2 ** 20).toFixed(2)} MiB` : "—";
    $("sizes").textContent = `train ${c.sizes.train} · val ${c.sizes.val} · test ${c.sizes.test}`;
    $("preview").tBodies[0].replaceChildren(...c.preview.map(([p, a]) => row([p, a])));
    $("start").disabled = S.run && S.run.status === "running";
  } catch (e) {
    if (mine !== pending) return;
    $("form-error").textContent = e.message;
    $("start").disabled = true;
  }
}

function row(cells, classes = []) {
  const tr = document.createElement("tr");
  cells.forEach((c, i) => {
    const td = document.createElement("td");
    if (c instanceof Node) td.append(c); else td.textContent = c;
    if (classes[i]) td.className = classes[i];
    tr.append(td);
  });
  return tr;
}

async function chooseData(body) {
  $("data-error").textContent = "";
  try { S.data = (await api("/api/data", body)).path; check(); }
  catch (e) { $("data-error").textContent = e.message; }
}

// ---------------------------------------------------------------- a run, live
function follow(run) {
  if (S.source) S.source.close();
  S.run = run; S.losses = []; S.evals = []; S.test = null;
  $("run-id").textContent = run.id;
  $("run-status").textContent = t(run.status);
  showTest();
  $("samples").tBodies[0].replaceChildren();
  $("stop").disabled = run.status !== "running";
  $("start").disabled = run.status === "running";
  S.source = new EventSource(`/api/runs/${run.id}/events`);
  S.source.onopen = () => { S.losses = []; S.evals = []; };  // every connection replays the log from its start
  S.source.onmessage = (m) => {
    const e = JSON.parse(m.data);
    if ("step" in e) S.losses.push([e.step, e.loss]);
    if ("eval" in e) {
      S.evals.push([e.eval, e.loss, e.accuracy]);
      $("samples").tBodies[0].replaceChildren(...e.samples.map((s) =>
        row([s.prompt, s.answer, s.expected], ["", s.answer === s.expected ? "right" : "wrong", ""])));
    }
    if ("test" in e) { S.test = e.test; showTest(); }
    draw();
  };
  S.source.addEventListener("end", (m) => {
    S.source.close();
    S.run = JSON.parse(m.data);
    $("run-status").textContent = t(S.run.status);
    if (S.run.error) $("form-error").textContent = S.run.error;
    $("stop").disabled = true;
    $("start").disabled = false;
    draw();
    listRuns();
  });
}

function showTest() {
  $("test").textContent = S.test ? `${t("accuracy")} ${S.test.accuracy.toFixed(3)}, ${t("loss")} ${S.test.loss.toFixed(4)}` : "";
}

let drawing = false;
function draw() {
  if (drawing) return;
  drawing = true;
  requestAnimationFrame(() => {
    drawing = false;
    const done = S.losses.length ? S.losses[S.losses.length - 1][0] : 0;
    $("fill").style.width = `${Math.min(100, 100 * done / S.run.steps)}%`;
    $("progress-text").textContent = `${t("step")} ${done} / ${S.run.steps}`;
    $("curve").dataset.points = S.losses.length;
    $("curve").dataset.evals = S.evals.length;
    plot($("curve"), [{ label: t("train_loss"), colour: COLOURS[0], points: S.losses },
                      { label: t("val_loss"), colour: COLOURS[1], points: S.evals.map(([s, l]) => [s, l]), dots: true }],
         true);
  });
}

// One chart: x from 0 to the last step seen, y linear or log; a legend; each series a line (dots: points too).
function plot(canvas, series, log) {
  const g = canvas.getContext("2d"), W = canvas.width, H = canvas.height, L = 50, B = 24, T = 22;
  const xmax = Math.max(1, ...series.flatMap((s) => s.points.map((p) => p[0])));
  const f = log ? Math.log10 : (y) => y;
  const ys = series.flatMap((s) => s.points.map((p) => f(p[1]))).filter(Number.isFinite);
  g.clearRect(0, 0, W, H);
  g.font = "11px sans-serif";
  let lo = Math.min(...ys), hi = Math.max(...ys);
  if (!ys.length) { lo = 0; hi = 1; }
  if (hi - lo < 1e-9) { lo -= 0.5; hi += 0.5; }
  const X = (x) => L + (W - L - 10) * x / Math.max(1, xmax), Y = (y) => H - B - (H - B - T) * (f(y) - lo) / (hi - lo);
  g.strokeStyle = "#999"; g.fillStyle = "#444";
  g.strokeRect(L, T, W - L - 10, H - B - T);
  for (let i = 0; i <= 4; i++) {
    const v = lo + (hi - lo) * i / 4, y = H - B - (H - B - T) * i / 4;
    g.fillText((log ? 10 ** v : v).toPrecision(3), 4, y + 4);
    g.fillText(Math.round(xmax * i / 4), X(xmax * i / 4) - 8, H - 8);
  }
  let lx = L + 6;
  for (const s of series) {
    g.strokeStyle = g.fillStyle = s.colour;
    g.beginPath();
    s.points.forEach(([x, y], i) => (i ? g.lineTo(X(x), Y(y)) : g.moveTo(X(x), Y(y))));
    g.stroke();
    if (s.dots) for (const [x, y] of s.points) g.fillRect(X(x) - 2, Y(y) - 2, 5, 5);
    g.fillRect(lx, 8, 12, 3);
    g.fillText(s.label, lx + 16, 14);
    lx += 24 + g.measureText(s.label).width;
  }
}

// ---------------------------------------------------------------- runs
async function listRuns() {
  if (!S.setup) return;
  const { runs } = await api("/api/runs");
  const ticked = new Set([...document.querySelectorAll("#runs input:checked")].map((el) => el.value));
  $("runs").tBodies[0].replaceChildren(...runs.map((r) => {
    const box = document.createElement("input");
    box.type = "checkbox"; box.value = r.id; box.checked = ticked.has(r.id);
    box.addEventListener("change", overlay);
    return row([box, r.id, t(r.status), `${r.done} / ${r.steps}`, r.best_val === null ? "" : r.best_val.toFixed(3),
                r.test ? r.test.accuracy.toFixed(3) : "", r.command]);
  }));
  const chosen = $("adapter").value;
  $("adapter").replaceChildren(new Option(t("base_only"), ""), ...runs.filter((r) => r.adapter).map((r) => new Option(r.id, r.id)));
  $("adapter").value = [...$("adapter").options].some((o) => o.value === chosen) ? chosen : $("adapter").options[$("adapter").options.length - 1].value;
}

async function overlay() {
  const ids = [...document.querySelectorAll("#runs input:checked")].map((el) => el.value);
  const logs = await Promise.all(ids.map((id) => api(`/api/runs/${id}/log`)));
  plot($("overlay"), logs.map((l, i) => ({ label: ids[i], colour: COLOURS[i % COLOURS.length], dots: true,
    points: l.log.filter((e) => "eval" in e).map((e) => [e.eval, e.accuracy]) })), false);
  $("overlay").dataset.runs = ids.length;
}

// ---------------------------------------------------------------- start
async function main() {
  S.setup = await api("/api/setup");
  for (const task of S.setup.tasks) $("task").add(new Option(task, task));
  for (const m of S.setup.methods) $("method").add(new Option(`${m.label} (${m.key})`, m.key));
  $("method").value = "lora";
  for (const p of Object.keys(S.setup.presets)) $("preset").add(new Option(p, p));
  $("adapter").add(new Option("", ""));
  for (const o of S.setup.training) field(o, $("training"));
  methodOptions();
  labels();
  $("lang").onclick = () => { S.lang = S.lang === "en" ? "zh" : "en"; localStorage.setItem("lang", S.lang); labels(); draw(); };
  $("task").onchange = () => chooseData({ task: $("task").value });
  $("file").onchange = () => { const body = new FormData(); body.append("file", $("file").files[0]); chooseData(body); };
  $("method").onchange = () => { methodOptions(); check(); };
  $("preset").onchange = preset;
  $("start").onclick = async () => {
    try { follow(await api("/api/runs", form())); listRuns(); }
    catch (e) { $("form-error").textContent = e.message; }
  };
  $("stop").onclick = () => api(`/api/runs/${S.run.id}/stop`, {}).catch((e) => { $("form-error").textContent = e.message; });
  $("ask").onclick = async () => {
    $("chat-error").textContent = ""; $("answer").textContent = "";
    try { $("answer").textContent = $("prompt").value + (await api("/api/answer", { run: $("adapter").value, prompt: $("prompt").value })).answer; }
    catch (e) { $("chat-error").textContent = e.message; }
  };
  await chooseData({ task: "classify" });
  if (S.setup.running.length) follow((await api(`/api/runs/${S.setup.running[0]}/log`)).run);  // a reload mid-run
  document.body.dataset.ready = "yes";
}
main();
